//! The reference of one 3D MLS-MPM substep and of its adjoint, in `f64` or `f32`: the
//! formulas of the 2D reference ([`cpu_mpm`](super::cpu_mpm)) on a 27-node stencil, with
//! the polar decomposition from the symmetric eigen-decomposition of `FᵀF` (cyclic Jacobi,
//! a fixed number of sweeps) and its closed-form adjoint. Every node sums its particles in
//! particle order.

// The formulas index 3 × 3 matrices by position.
#![allow(clippy::needless_range_loop)]

use super::cpu_mpm::Stepper;
use super::mpm::{Mpm, MpmMaterial};
use super::real::Real;

type V3<R> = [R; 3];
type M3<R> = [[R; 3]; 3];

/// Floats per 3D particle state: x (3), v (3), C (9), F (9), row-major.
pub const STATE3: usize = 24;

/// One 3D particle's state.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Particle3<R> {
    x: V3<R>,
    v: V3<R>,
    c: M3<R>,
    f: M3<R>,
}

fn lit<R: Real>(v: f64) -> R {
    R::lit(v as f32)
}

fn zeros<R: Real>() -> M3<R> {
    [[R::ZERO; 3]; 3]
}

fn eye<R: Real>() -> M3<R> {
    let mut m = zeros();
    for i in 0..3 {
        m[i][i] = R::ONE;
    }
    m
}

/// `a b`.
fn mul<R: Real>(a: &M3<R>, b: &M3<R>) -> M3<R> {
    let mut m = zeros();
    for i in 0..3 {
        for k in 0..3 {
            m[i][k] = a[i][0] * b[0][k] + a[i][1] * b[1][k] + a[i][2] * b[2][k];
        }
    }
    m
}

fn transpose<R: Real>(a: &M3<R>) -> M3<R> {
    let mut m = zeros();
    for i in 0..3 {
        for k in 0..3 {
            m[i][k] = a[k][i];
        }
    }
    m
}

fn det<R: Real>(a: &M3<R>) -> R {
    a[0][0] * (a[1][1] * a[2][2] - a[2][1] * a[1][2])
        - a[1][0] * (a[0][1] * a[2][2] - a[2][1] * a[0][2])
        + a[2][0] * (a[0][1] * a[1][2] - a[1][1] * a[0][2])
}

/// `∂ det a / ∂ a`.
fn cofactor<R: Real>(a: &M3<R>) -> M3<R> {
    let mut m = zeros();
    for i in 0..3 {
        for j in 0..3 {
            let (i1, i2) = ((i + 1) % 3, (i + 2) % 3);
            let (j1, j2) = ((j + 1) % 3, (j + 2) % 3);
            m[i][j] = a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1];
        }
    }
    m
}

/// The eigen-decomposition of a symmetric `a`: `V` (columns the eigenvectors) and the
/// eigenvalues, by cyclic Jacobi rotations: sweeps until the off-diagonal part is below
/// the precision's epsilon relative to the diagonal (at most six, enough for `f64`).
fn eigen<R: Real>(a: &M3<R>) -> (M3<R>, V3<R>) {
    let mut a = *a;
    let mut v = eye();
    for _ in 0..6 {
        let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        let diag = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
        if off <= R::EPSILON * R::EPSILON * diag {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == R::ZERO {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (lit::<R>(2.0) * a[p][q]);
            let sign = if theta < R::ZERO { -R::ONE } else { R::ONE };
            let t = sign / (theta.abs() + (theta * theta + R::ONE).sqrt());
            let c = R::ONE / (t * t + R::ONE).sqrt();
            let s = t * c;
            // A ← Jᵀ A J, V ← V J, with J the rotation in the (p, q) plane.
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for k in 0..3 {
                let (vkp, vkq) = (v[k][p], v[k][q]);
                v[k][p] = c * vkp - s * vkq;
                v[k][q] = s * vkp + c * vkq;
            }
        }
    }
    (v, [a[0][0], a[1][1], a[2][2]])
}

/// `V diag(d) Vᵀ`.
fn spectral<R: Real>(v: &M3<R>, d: V3<R>) -> M3<R> {
    let mut m = zeros();
    for i in 0..3 {
        for k in 0..3 {
            m[i][k] = v[i][0] * d[0] * v[k][0] + v[i][1] * d[1] * v[k][1] + v[i][2] * d[2] * v[k][2];
        }
    }
    m
}

/// The polar decomposition `A = R S`: `R`, `V` and the singular values `σ` (`S = V σ Vᵀ`).
fn polar<R: Real>(a: &M3<R>) -> (M3<R>, M3<R>, V3<R>) {
    let (v, l) = eigen(&mul(&transpose(a), a));
    let tiny = lit::<R>(1e-20);
    let sigma = l.map(|x| (if x > tiny { x } else { tiny }).sqrt());
    let inv = spectral(&v, sigma.map(|s| R::ONE / s));
    (mul(a, &inv), v, sigma)
}

/// The cotangent of `A` through `polar`'s `R`: `R (Z − Zᵀ)` with
/// `Z = V ((Vᵀ Rᵀ g V) / (σ_i + σ_j)) Vᵀ`.
fn polar_adjoint<R: Real>(r: &M3<R>, v: &M3<R>, sigma: V3<R>, g: &M3<R>) -> M3<R> {
    let m = mul(&transpose(r), g);
    let mp = mul(&mul(&transpose(v), &m), v);
    let mut zp = zeros();
    for i in 0..3 {
        for j in 0..3 {
            zp[i][j] = mp[i][j] / (sigma[i] + sigma[j]);
        }
    }
    let z = mul(&mul(v, &zp), &transpose(v));
    let mut skew = zeros();
    for i in 0..3 {
        for j in 0..3 {
            skew[i][j] = z[i][j] - z[j][i];
        }
    }
    mul(r, &skew)
}

fn clamp_r<R: Real>(v: R, lo: R, hi: R) -> R {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// The plastic projection `R V clamp(σ) Vᵀ`.
fn project<R: Real>(a: &M3<R>, lo: R, hi: R) -> M3<R> {
    let (r, v, sigma) = polar(a);
    mul(&r, &spectral(&v, sigma.map(|s| clamp_r(s, lo, hi))))
}

/// The cotangent of `A` through `project` (divided differences of the clamp, their mean
/// slope where singular values meet).
fn project_adjoint<R: Real>(a: &M3<R>, lo: R, hi: R, g_out: &M3<R>) -> M3<R> {
    let (r, v, sigma) = polar(a);
    let c = sigma.map(|s| clamp_r(s, lo, hi));
    let gm = spectral(&v, c);
    let mut g_r = mul(g_out, &transpose(&gm));
    let g_g = mul(&transpose(&r), g_out);
    let half = lit::<R>(0.5);
    let mut sym = zeros();
    for i in 0..3 {
        for k in 0..3 {
            sym[i][k] = half * (g_g[i][k] + g_g[k][i]);
        }
    }
    let m = mul(&mul(&transpose(&v), &sym), &v);
    let slope = sigma.map(|s| if s < lo || s > hi { R::ZERO } else { R::ONE });
    let mut gamma = zeros();
    for i in 0..3 {
        for j in 0..3 {
            let gap = sigma[i] - sigma[j];
            gamma[i][j] = if i == j {
                slope[i]
            } else if gap.abs() > lit(1e-6) {
                (c[i] - c[j]) / gap
            } else {
                half * (slope[i] + slope[j])
            };
        }
    }
    let mut gm_e = zeros();
    for i in 0..3 {
        for j in 0..3 {
            gm_e[i][j] = gamma[i][j] * m[i][j];
        }
    }
    let g_s = mul(&mul(&v, &gm_e), &transpose(&v));
    // S = Rᵀ A: g_A += R g_S, g_R += A g_Sᵀ.
    let mut g_a = mul(&r, &g_s);
    let a_gs = mul(a, &transpose(&g_s));
    for i in 0..3 {
        for k in 0..3 {
            g_r[i][k] = g_r[i][k] + a_gs[i][k];
        }
    }
    let g_p = polar_adjoint(&r, &v, sigma, &g_r);
    for i in 0..3 {
        for k in 0..3 {
            g_a[i][k] = g_a[i][k] + g_p[i][k];
        }
    }
    g_a
}

/// The settings in the working precision.
pub struct Prepared3<R> {
    n: usize,
    dx: R,
    inv_dx: R,
    dt: R,
    mass: R,
    stress_scale: R,
    gravity_step: R,
    bound: usize,
    material: MpmMaterial,
}

struct Stencil<R> {
    base: [usize; 3],
    fx: V3<R>,
    w: [[R; 3]; 3],
    dw: [[R; 3]; 3],
}

struct Pushed<R> {
    f_pushed: M3<R>,
    f_new: M3<R>,
    f_stored: M3<R>,
    affine: M3<R>,
    j: R,
    /// `R` of the polar decomposition of `f_new`, its `V` and `σ` (corotated, plastic).
    polar: Option<(M3<R>, M3<R>, V3<R>)>,
}

impl<R: Real> Prepared3<R> {
    /// `mpm`'s constants in `R`.
    pub fn new(mpm: &Mpm) -> Prepared3<R> {
        Prepared3 {
            n: mpm.grid,
            dx: R::lit(mpm.dx()),
            inv_dx: R::lit(mpm.inv_dx()),
            dt: lit(mpm.dt),
            mass: lit(mpm.particle_mass),
            stress_scale: R::lit(mpm.stress_scale()),
            gravity_step: R::lit(mpm.gravity_step()),
            bound: mpm.bound,
            material: mpm.material,
        }
    }

    fn nodes(&self) -> usize {
        self.n * self.n * self.n
    }

    fn stencil(&self, x: V3<R>) -> Stencil<R> {
        let half = lit::<R>(0.5);
        let mut s = Stencil {
            base: [0; 3],
            fx: [R::ZERO; 3],
            w: [[R::ZERO; 3]; 3],
            dw: [[R::ZERO; 3]; 3],
        };
        for k in 0..3 {
            let b = (x[k] * self.inv_dx - half).to_f64().trunc().max(0.0);
            s.base[k] = b as usize;
            let f = x[k] * self.inv_dx - R::from_f64(b);
            s.fx[k] = f;
            let (a, m, c) = (lit::<R>(1.5) - f, f - R::ONE, f - half);
            s.w[k] = [half * (a * a), lit::<R>(0.75) - m * m, half * (c * c)];
            s.dw[k] = [-a, -(m + m), c];
        }
        s
    }

    fn node(&self, s: &Stencil<R>, o: [usize; 3]) -> usize {
        ((s.base[0] + o[0]) * self.n + s.base[1] + o[1]) * self.n + s.base[2] + o[2]
    }

    fn offsets() -> impl Iterator<Item = [usize; 3]> {
        (0..27).map(|t| [t / 9, (t / 3) % 3, t % 3])
    }

    fn pushed(&self, p: &Particle3<R>, act: Option<R>) -> Pushed<R> {
        let mut m = eye();
        for i in 0..3 {
            for k in 0..3 {
                m[i][k] = m[i][k] + self.dt * p.c[i][k];
            }
        }
        let f_pushed = mul(&m, &p.f);
        let f_new = match self.material {
            MpmMaterial::Plastic {
                compression,
                stretch,
                ..
            } => project(&f_pushed, lit(1.0 - compression), lit(1.0 + stretch)),
            _ => f_pushed,
        };
        let j = det(&f_new);
        let (mut cauchy, f_stored, polar_of) = match self.material {
            MpmMaterial::FixedCorotated { mu, lambda } | MpmMaterial::Plastic { mu, lambda, .. } => {
                let (r, v, sigma) = polar(&f_new);
                let two_mu = lit::<R>(2.0 * mu);
                let mut d = zeros();
                for i in 0..3 {
                    for k in 0..3 {
                        d[i][k] = two_mu * (f_new[i][k] - r[i][k]);
                    }
                }
                let mut cauchy = mul(&d, &transpose(&f_new));
                let s = lit::<R>(lambda) * (j - R::ONE) * j;
                for i in 0..3 {
                    cauchy[i][i] = cauchy[i][i] + s;
                }
                (cauchy, f_new, Some((r, v, sigma)))
            }
            MpmMaterial::Fluid { lambda } => {
                let s = lit::<R>(lambda) * (j - R::ONE) * j;
                let mut cauchy = zeros();
                let mut f = zeros();
                for i in 0..3 {
                    cauchy[i][i] = s;
                    f[i][i] = j.cbrt();
                }
                (cauchy, f, None)
            }
        };
        if let Some(a) = act {
            for i in 0..3 {
                for k in 0..3 {
                    cauchy[i][k] = cauchy[i][k] + f_new[i][1] * a * f_new[k][1];
                }
            }
        }
        let mut affine = zeros();
        for i in 0..3 {
            for k in 0..3 {
                affine[i][k] = self.stress_scale * cauchy[i][k] + self.mass * p.c[i][k];
            }
        }
        Pushed {
            f_pushed,
            f_new,
            f_stored,
            affine,
            j,
            polar: polar_of,
        }
    }

    fn walled(&self, at: usize, v: R) -> bool {
        (at < self.bound && v < R::ZERO) || (at > self.n - self.bound && v > R::ZERO)
    }

    /// P2G and the grid update: momentum, mass and node velocity per node, and each
    /// particle's new `F`.
    fn grid(&self, ps: &[Particle3<R>], act: &[Option<R>]) -> Grid3<R> {
        let mut momentum = vec![[R::ZERO; 3]; self.nodes()];
        let mut mass = vec![R::ZERO; self.nodes()];
        let mut f_stored = Vec::with_capacity(ps.len());
        for (q, p) in ps.iter().enumerate() {
            let s = self.stencil(p.x);
            let pu = self.pushed(p, act.get(q).copied().flatten());
            f_stored.push(pu.f_stored);
            let mv = p.v.map(|v| self.mass * v);
            for o in Self::offsets() {
                let d: V3<R> = std::array::from_fn(|k| (R::from_f64(o[k] as f64) - s.fx[k]) * self.dx);
                let w = s.w[0][o[0]] * s.w[1][o[1]] * s.w[2][o[2]];
                let a = pu.affine;
                let k = self.node(&s, o);
                for r in 0..3 {
                    let ad = a[r][0] * d[0] + a[r][1] * d[1] + a[r][2] * d[2];
                    momentum[k][r] = momentum[k][r] + w * (mv[r] + ad);
                }
                mass[k] = mass[k] + w * self.mass;
            }
        }
        let n = self.n;
        let v = (0..self.nodes())
            .map(|k| {
                let inv_m = R::ONE / (mass[k] + R::lit(1e-10));
                let mut v = momentum[k].map(|m| inv_m * m);
                v[1] = v[1] - self.gravity_step;
                for (axis, at) in [(0, k / (n * n)), (1, (k / n) % n), (2, k % n)] {
                    if self.walled(at, v[axis]) {
                        v[axis] = R::ZERO;
                    }
                }
                v
            })
            .collect();
        Grid3 {
            momentum,
            mass,
            v,
            f_stored,
        }
    }

    fn substep(&self, ps: &[Particle3<R>], act: &[Option<R>]) -> Vec<Particle3<R>> {
        let grid = self.grid(ps, act);
        ps.iter()
            .zip(&grid.f_stored)
            .map(|(p, &f)| {
                let s = self.stencil(p.x);
                let mut v = [R::ZERO; 3];
                let mut c = zeros();
                for o in Self::offsets() {
                    let e: V3<R> = std::array::from_fn(|k| R::from_f64(o[k] as f64) - s.fx[k]);
                    let g = grid.v[self.node(&s, o)];
                    let w = s.w[0][o[0]] * s.w[1][o[1]] * s.w[2][o[2]];
                    for r in 0..3 {
                        v[r] = v[r] + w * g[r];
                    }
                    let w4 = lit::<R>(4.0) * w;
                    for r in 0..3 {
                        for q in 0..3 {
                            c[r][q] = c[r][q] + w4 * (g[r] * e[q]) * self.inv_dx;
                        }
                    }
                }
                let x = std::array::from_fn(|k| p.x[k] + self.dt * v[k]);
                Particle3 { x, v, c, f }
            })
            .collect()
    }

    fn substep_adjoint(
        &self,
        ps: &[Particle3<R>],
        act: &[Option<R>],
        grads: &[Particle3<R>],
    ) -> (Vec<Particle3<R>>, Vec<R>) {
        let grid = self.grid(ps, act);
        let four = lit::<R>(4.0);
        let n = self.n;
        let mut g_node = vec![[R::ZERO; 3]; self.nodes()];
        for (p, g) in ps.iter().zip(grads) {
            let s = self.stencil(p.x);
            let gv: V3<R> = std::array::from_fn(|k| g.v[k] + self.dt * g.x[k]);
            for o in Self::offsets() {
                let e: V3<R> = std::array::from_fn(|k| R::from_f64(o[k] as f64) - s.fx[k]);
                let w = s.w[0][o[0]] * s.w[1][o[1]] * s.w[2][o[2]];
                let k = self.node(&s, o);
                for r in 0..3 {
                    let along = g.c[r][0] * e[0] + g.c[r][1] * e[1] + g.c[r][2] * e[2];
                    g_node[k][r] = g_node[k][r] + w * gv[r] + four * w * self.inv_dx * along;
                }
            }
        }
        let mut g_momentum = vec![[R::ZERO; 3]; self.nodes()];
        let mut g_mass = vec![R::ZERO; self.nodes()];
        for k in 0..self.nodes() {
            let inv_m = R::ONE / (grid.mass[k] + R::lit(1e-10));
            let mut g = g_node[k];
            for (axis, at) in [(0, k / (n * n)), (1, (k / n) % n), (2, k % n)] {
                let mut before = inv_m * grid.momentum[k][axis];
                if axis == 1 {
                    before = before - self.gravity_step;
                }
                if self.walled(at, before) {
                    g[axis] = R::ZERO;
                }
            }
            g_momentum[k] = g.map(|x| inv_m * x);
            let g_inv = g[0] * grid.momentum[k][0] + g[1] * grid.momentum[k][1] + g[2] * grid.momentum[k][2];
            g_mass[k] = -(g_inv * inv_m * inv_m);
        }
        let mut g_act = vec![R::ZERO; act.len()];
        let out = ps
            .iter()
            .zip(grads)
            .enumerate()
            .map(|(q, (p, g))| {
                let s = self.stencil(p.x);
                let a_q = act.get(q).copied().flatten();
                let pu = self.pushed(p, a_q);
                let a = pu.affine;
                let mv = p.v.map(|v| self.mass * v);
                let gv: V3<R> = std::array::from_fn(|k| g.v[k] + self.dt * g.x[k]);
                let mut g_fx = [R::ZERO; 3];
                let mut g_v = [R::ZERO; 3];
                let mut g_a = zeros();
                for o in Self::offsets() {
                    let k = self.node(&s, o);
                    let wk = [s.w[0][o[0]], s.w[1][o[1]], s.w[2][o[2]]];
                    let w = wk[0] * wk[1] * wk[2];
                    let dw = [
                        s.dw[0][o[0]] * wk[1] * wk[2],
                        wk[0] * s.dw[1][o[1]] * wk[2],
                        wk[0] * wk[1] * s.dw[2][o[2]],
                    ];
                    let e: V3<R> = std::array::from_fn(|x| R::from_f64(o[x] as f64) - s.fx[x]);
                    let vn = grid.v[k];
                    let mut c_term = R::ZERO;
                    for r in 0..3 {
                        for c in 0..3 {
                            c_term = c_term + g.c[r][c] * vn[r] * e[c];
                        }
                    }
                    let vg = vn[0] * gv[0] + vn[1] * gv[1] + vn[2] * gv[2];
                    let d = e.map(|x| x * self.dx);
                    let gm = g_momentum[k];
                    let mut pushed_w = g_mass[k] * self.mass;
                    for r in 0..3 {
                        let ad = a[r][0] * d[0] + a[r][1] * d[1] + a[r][2] * d[2];
                        pushed_w = pushed_w + gm[r] * (mv[r] + ad);
                    }
                    for axis in 0..3 {
                        let direct = -(four * w * self.inv_dx)
                            * (g.c[0][axis] * vn[0] + g.c[1][axis] * vn[1] + g.c[2][axis] * vn[2]);
                        let through_d = -(w * self.dx)
                            * (a[0][axis] * gm[0] + a[1][axis] * gm[1] + a[2][axis] * gm[2]);
                        g_fx[axis] = g_fx[axis]
                            + dw[axis] * (vg + four * self.inv_dx * c_term)
                            + direct
                            + dw[axis] * pushed_w
                            + through_d;
                        g_v[axis] = g_v[axis] + w * self.mass * gm[axis];
                    }
                    for r in 0..3 {
                        for c in 0..3 {
                            g_a[r][c] = g_a[r][c] + w * gm[r] * d[c];
                        }
                    }
                }
                let (g_c, g_f, ga) = self.pushed_adjoint(p, &pu, a_q, &g_a, &g.f);
                if let Some(slot) = g_act.get_mut(q) {
                    *slot = ga;
                }
                Particle3 {
                    x: std::array::from_fn(|k| g.x[k] + g_fx[k] * self.inv_dx),
                    v: g_v,
                    c: g_c,
                    f: g_f,
                }
            })
            .collect();
        (out, g_act)
    }

    fn pushed_adjoint(
        &self,
        p: &Particle3<R>,
        pu: &Pushed<R>,
        act: Option<R>,
        g_a: &M3<R>,
        g_fs: &M3<R>,
    ) -> (M3<R>, M3<R>, R) {
        let fnw = pu.f_new;
        let cof = cofactor(&fnw);
        let mut g_c = zeros();
        let mut g_sigma = zeros();
        for i in 0..3 {
            for k in 0..3 {
                g_c[i][k] = self.mass * g_a[i][k];
                g_sigma[i][k] = self.stress_scale * g_a[i][k];
            }
        }
        let j = pu.j;
        let g_s = g_sigma[0][0] + g_sigma[1][1] + g_sigma[2][2];
        let mut g_act = R::ZERO;
        let mut g_fnew = zeros();
        if let Some(a) = act {
            for i in 0..3 {
                for k in 0..3 {
                    g_act = g_act + g_sigma[i][k] * fnw[i][1] * fnw[k][1];
                }
                let mut col = R::ZERO;
                for k in 0..3 {
                    col = col + (g_sigma[i][k] + g_sigma[k][i]) * fnw[k][1];
                }
                g_fnew[i][1] = a * col;
            }
        }
        match self.material {
            MpmMaterial::FixedCorotated { mu, lambda } | MpmMaterial::Plastic { mu, lambda, .. } => {
                let (r, v, sigma) = pu.polar.expect("the corotated stress's rotation");
                let two_mu = lit::<R>(2.0 * mu);
                let mut m2 = zeros();
                for i in 0..3 {
                    for k in 0..3 {
                        m2[i][k] = two_mu * (fnw[i][k] - r[i][k]);
                    }
                }
                // σ = M2 F'ᵀ: g_M2 = gσ F', g_F' += gσᵀ M2.
                let g_m2 = mul(&g_sigma, &fnw);
                let g_ft = mul(&transpose(&g_sigma), &m2);
                let mut g_r = zeros();
                for i in 0..3 {
                    for k in 0..3 {
                        g_fnew[i][k] = g_fnew[i][k] + g_ft[i][k] + two_mu * g_m2[i][k];
                        g_r[i][k] = -(two_mu * g_m2[i][k]);
                    }
                }
                let g_polar = polar_adjoint(&r, &v, sigma, &g_r);
                let g_j = g_s * lit::<R>(lambda) * (lit::<R>(2.0) * j - R::ONE);
                for i in 0..3 {
                    for k in 0..3 {
                        g_fnew[i][k] = g_fnew[i][k] + g_polar[i][k] + g_j * cof[i][k] + g_fs[i][k];
                    }
                }
            }
            MpmMaterial::Fluid { lambda } => {
                let g_root = g_fs[0][0] + g_fs[1][1] + g_fs[2][2];
                let root = j.cbrt();
                let g_j = g_s * lit::<R>(lambda) * (lit::<R>(2.0) * j - R::ONE)
                    + g_root / (lit::<R>(3.0) * root * root);
                for i in 0..3 {
                    for k in 0..3 {
                        g_fnew[i][k] = g_fnew[i][k] + g_j * cof[i][k];
                    }
                }
            }
        }
        if let MpmMaterial::Plastic {
            compression,
            stretch,
            ..
        } = self.material
        {
            let (lo, hi) = (lit(1.0 - compression), lit(1.0 + stretch));
            g_fnew = project_adjoint(&pu.f_pushed, lo, hi, &g_fnew);
        }
        let mut m = eye();
        for i in 0..3 {
            for k in 0..3 {
                m[i][k] = m[i][k] + self.dt * p.c[i][k];
            }
        }
        let g_m = mul(&g_fnew, &transpose(&p.f));
        for i in 0..3 {
            for k in 0..3 {
                g_c[i][k] = g_c[i][k] + self.dt * g_m[i][k];
            }
        }
        let g_f = mul(&transpose(&m), &g_fnew);
        (g_c, g_f, g_act)
    }
}

/// The grid of one 3D substep and each particle's new `F`.
struct Grid3<R> {
    momentum: Vec<V3<R>>,
    mass: Vec<R>,
    v: Vec<V3<R>>,
    f_stored: Vec<M3<R>>,
}

impl<R: Real> Stepper<R> for Prepared3<R> {
    type Particle = Particle3<R>;
    const DIM: usize = 3;
    const STATE: usize = STATE3;

    fn start(x: &[R], v: &[R]) -> Particle3<R> {
        Particle3 {
            x: [x[0], x[1], x[2]],
            v: [v[0], v[1], v[2]],
            c: zeros(),
            f: eye(),
        }
    }

    fn flat(p: &Particle3<R>) -> Vec<R> {
        let mut out = Vec::with_capacity(STATE3);
        out.extend(p.x);
        out.extend(p.v);
        out.extend(p.c.iter().flatten());
        out.extend(p.f.iter().flatten());
        out
    }

    fn from_flat(s: &[R]) -> Particle3<R> {
        let m = |at: usize| std::array::from_fn(|i| std::array::from_fn(|k| s[at + 3 * i + k]));
        Particle3 {
            x: [s[0], s[1], s[2]],
            v: [s[3], s[4], s[5]],
            c: m(6),
            f: m(15),
        }
    }

    fn step(&self, ps: &[Particle3<R>], act: &[Option<R>]) -> Vec<Particle3<R>> {
        self.substep(ps, act)
    }

    fn step_adjoint(
        &self,
        ps: &[Particle3<R>],
        act: &[Option<R>],
        grads: &[Particle3<R>],
    ) -> (Vec<Particle3<R>>, Vec<R>) {
        self.substep_adjoint(ps, act, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `⟨g, d project(a)[e]⟩` by central differences.
    fn numeric(a: M3<f64>, e: (usize, usize), g: &M3<f64>, (lo, hi): (f64, f64)) -> f64 {
        let h = 1e-7;
        let (mut p, mut m) = (a, a);
        p[e.0][e.1] += h;
        m[e.0][e.1] -= h;
        let (fp, fm) = (project(&p, lo, hi), project(&m, lo, hi));
        let mut d = 0.0;
        for i in 0..3 {
            for k in 0..3 {
                d += g[i][k] * (fp[i][k] - fm[i][k]) / (2.0 * h);
            }
        }
        d
    }

    #[test]
    fn the_3d_plastic_projection_has_finite_exact_gradients_where_singular_values_meet() {
        let g = [[0.3, -1.1, 0.2], [0.7, 0.4, -0.5], [0.1, 0.9, -0.3]];
        let limits = (0.95, 1.05);
        let (c, s) = (0.8f64, 0.6f64);
        let rot = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let scaled = |k: f64| rot.map(|row| row.map(|x| x * k));
        let cases: [M3<f64>; 4] = [
            // Three equal singular values, all clamped (a scaled rotation).
            scaled(1.2),
            // Two equal and inside, one clamped.
            [[1.01, 0.0, 0.0], [0.0, 1.01, 0.0], [0.0, 0.0, 0.8]],
            // Nearly equal (1e-9 apart), clamped.
            [[1.2, 0.0, 0.0], [0.0, 1.2 + 1e-9, 0.0], [0.0, 0.0, 1.0]],
            // Sheared, all distinct.
            [[1.2, 0.1, 0.0], [-0.05, 0.99, 0.03], [0.02, 0.0, 0.9]],
        ];
        for a in cases {
            let analytic = project_adjoint(&a, limits.0, limits.1, &g);
            for e in (0..9).map(|t| (t / 3, t % 3)) {
                let want = numeric(a, e, &g, limits);
                let got = analytic[e.0][e.1];
                assert!(got.is_finite(), "{a:?} {e:?}: not finite");
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{a:?} {e:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_polar_decomposition_is_a_rotation_times_a_stretch() {
        let a = [[1.2, 0.1, 0.0], [-0.05, 0.99, 0.03], [0.02, 0.0, 0.9]];
        let (r, v, sigma) = polar(&a);
        let rtr = mul(&transpose(&r), &r);
        let back = mul(&r, &spectral(&v, sigma));
        for i in 0..3 {
            for k in 0..3 {
                let id = if i == k { 1.0 } else { 0.0 };
                assert!((rtr[i][k] - id).abs() < 1e-12, "RᵀR = I");
                assert!((back[i][k] - a[i][k]).abs() < 1e-12, "R S = A");
            }
        }
        assert!(det(&r) > 0.0, "a rotation");
    }
}
