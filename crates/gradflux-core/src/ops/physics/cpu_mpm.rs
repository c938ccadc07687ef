//! The reference of one 2D MLS-MPM substep and of its adjoint, in `f64` or `f32`, in the
//! order of the formulas on [`Mpm`](super::Mpm): every grid node sums its particles in
//! particle order (what the kernels' sorted gathers reproduce), every particle its nodes
//! in `(i, j)` order.

// The formulas index 2 × 2 matrices and their rows by position, as the kernels do.
#![allow(clippy::needless_range_loop)]

use super::mpm::{Mpm, MpmMaterial};
use super::real::Real;

type V2<R> = [R; 2];
type M2<R> = [[R; 2]; 2];

/// One particle's state.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Particle<R> {
    /// Position.
    pub x: V2<R>,
    /// Velocity.
    pub v: V2<R>,
    /// Affine velocity.
    pub c: M2<R>,
    /// Deformation gradient.
    pub f: M2<R>,
}

/// Floats per particle state: x, v, C, F (row-major).
pub const STATE: usize = 12;

impl<R: Real> Particle<R> {
    /// At `x` moving at `v`, undeformed.
    pub fn at(x: V2<R>, v: V2<R>) -> Particle<R> {
        let (o, z) = (R::ONE, R::ZERO);
        Particle {
            x,
            v,
            c: [[z, z], [z, z]],
            f: [[o, z], [z, o]],
        }
    }

    /// The 12 floats of the state.
    pub fn flat(&self) -> [R; STATE] {
        let (x, v, c, f) = (self.x, self.v, self.c, self.f);
        [
            x[0], x[1], v[0], v[1], c[0][0], c[0][1], c[1][0], c[1][1], f[0][0], f[0][1],
            f[1][0], f[1][1],
        ]
    }

    /// From 12 floats.
    pub fn from_flat(s: &[R]) -> Particle<R> {
        Particle {
            x: [s[0], s[1]],
            v: [s[2], s[3]],
            c: [[s[4], s[5]], [s[6], s[7]]],
            f: [[s[8], s[9]], [s[10], s[11]]],
        }
    }
}

/// The settings in the working precision.
pub struct Prepared<R> {
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

/// Where a particle sits: its base node, fractional offset and weights.
struct Stencil<R> {
    base: [usize; 2],
    fx: V2<R>,
    /// `w[axis][i]`.
    w: [[R; 3]; 2],
    /// `∂w[axis][i] / ∂fx[axis]`.
    dw: [[R; 3]; 2],
}

/// What P2G computes per particle.
struct Pushed<R> {
    /// `F' = (I + dt C) F` before any projection.
    f_pushed: M2<R>,
    /// `F'` after the plastic projection (if any), before a fluid's reset.
    f_new: M2<R>,
    /// The state's new `F` (`F'`, or `√J I` for a fluid).
    f_stored: M2<R>,
    affine: M2<R>,
    j: R,
    r: M2<R>,
}

/// The grid of one substep, and what P2G computed per particle.
pub struct Grid<R> {
    momentum: Vec<V2<R>>,
    mass: Vec<R>,
    /// Node velocities after gravity and the walls.
    v: Vec<V2<R>>,
    /// Each particle's new `F` as the state keeps it.
    f_stored: Vec<M2<R>>,
}

fn lit<R: Real>(v: f64) -> R {
    R::lit(v as f32)
}

fn matvec<R: Real>(a: M2<R>, v: V2<R>) -> V2<R> {
    [a[0][0] * v[0] + a[0][1] * v[1], a[1][0] * v[0] + a[1][1] * v[1]]
}

impl<R: Real> Prepared<R> {
    /// `mpm`'s constants in `R` (each rounded to `f32` first, as the kernels use them).
    pub fn new(mpm: &Mpm) -> Prepared<R> {
        Prepared {
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

    /// Nodes in the grid.
    pub fn nodes(&self) -> usize {
        self.n * self.n
    }

    fn stencil(&self, x: V2<R>) -> Stencil<R> {
        let half = lit::<R>(0.5);
        let mut s = Stencil {
            base: [0; 2],
            fx: [R::ZERO; 2],
            w: [[R::ZERO; 3]; 2],
            dw: [[R::ZERO; 3]; 2],
        };
        for k in 0..2 {
            // Truncation toward zero, as a cast to an integer (particles sit inside).
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

    fn node(&self, s: &Stencil<R>, i: usize, j: usize) -> usize {
        (s.base[0] + i) * self.n + s.base[1] + j
    }

    fn pushed(&self, p: &Particle<R>, act: Option<R>) -> Pushed<R> {
        let (dt, c, f) = (self.dt, p.c, p.f);
        let m = [
            [R::ONE + dt * c[0][0], dt * c[0][1]],
            [dt * c[1][0], R::ONE + dt * c[1][1]],
        ];
        let mut f_pushed = [[R::ZERO; 2]; 2];
        for i in 0..2 {
            for k in 0..2 {
                f_pushed[i][k] = m[i][0] * f[0][k] + m[i][1] * f[1][k];
            }
        }
        let f_new = match self.material {
            MpmMaterial::Plastic {
                compression,
                stretch,
                ..
            } => project(f_pushed, lit(1.0 - compression), lit(1.0 + stretch)),
            _ => f_pushed,
        };
        let j = f_new[0][0] * f_new[1][1] - f_new[0][1] * f_new[1][0];
        let (cauchy, f_stored, r) = match self.material {
            MpmMaterial::FixedCorotated { mu, lambda } | MpmMaterial::Plastic { mu, lambda, .. } => {
                let r = polar(f_new);
                let two_mu = lit::<R>(2.0 * mu);
                let mut cauchy = [[R::ZERO; 2]; 2];
                for i in 0..2 {
                    for k in 0..2 {
                        let (d0, d1) = (f_new[i][0] - r[i][0], f_new[i][1] - r[i][1]);
                        cauchy[i][k] = two_mu * d0 * f_new[k][0] + two_mu * d1 * f_new[k][1];
                    }
                }
                let s = lit::<R>(lambda) * (j - R::ONE) * j;
                cauchy[0][0] = cauchy[0][0] + s;
                cauchy[1][1] = cauchy[1][1] + s;
                (cauchy, f_new, r)
            }
            MpmMaterial::Fluid { lambda } => {
                let s = lit::<R>(lambda) * (j - R::ONE) * j;
                let root = j.sqrt();
                let z = R::ZERO;
                ([[s, z], [z, s]], [[root, z], [z, root]], [[z; 2]; 2])
            }
        };
        // Actuation (DiffTaichi's diffmpm): σ += F' diag(0, a) F'ᵀ.
        let mut cauchy = cauchy;
        if let Some(act) = act {
            for i in 0..2 {
                for k in 0..2 {
                    cauchy[i][k] = cauchy[i][k] + f_new[i][1] * act * f_new[k][1];
                }
            }
        }
        let mut affine = [[R::ZERO; 2]; 2];
        for i in 0..2 {
            for k in 0..2 {
                affine[i][k] = self.stress_scale * cauchy[i][k] + self.mass * c[i][k];
            }
        }
        Pushed {
            f_pushed,
            f_new,
            f_stored,
            affine,
            j,
            r,
        }
    }

    /// P2G and the grid update; `act[p]` is particle `p`'s actuation this substep (`None`
    /// for a passive one; empty: none actuated).
    pub fn grid(&self, particles: &[Particle<R>], act: &[Option<R>]) -> Grid<R> {
        let mut momentum = vec![[R::ZERO; 2]; self.nodes()];
        let mut mass = vec![R::ZERO; self.nodes()];
        let mut f_stored = Vec::with_capacity(particles.len());
        for (q, p) in particles.iter().enumerate() {
            let s = self.stencil(p.x);
            let pushed = self.pushed(p, act.get(q).copied().flatten());
            f_stored.push(pushed.f_stored);
            let a = pushed.affine;
            let mv = [self.mass * p.v[0], self.mass * p.v[1]];
            for i in 0..3 {
                for j in 0..3 {
                    let d = [
                        (R::from_f64(i as f64) - s.fx[0]) * self.dx,
                        (R::from_f64(j as f64) - s.fx[1]) * self.dx,
                    ];
                    let w = s.w[0][i] * s.w[1][j];
                    let ad = matvec(a, d);
                    let k = self.node(&s, i, j);
                    momentum[k][0] = momentum[k][0] + w * (mv[0] + ad[0]);
                    momentum[k][1] = momentum[k][1] + w * (mv[1] + ad[1]);
                    mass[k] = mass[k] + w * self.mass;
                }
            }
        }
        let v = (0..self.nodes())
            .map(|k| {
                let inv_m = R::ONE / (mass[k] + R::lit(1e-10));
                let mut v = [inv_m * momentum[k][0], inv_m * momentum[k][1]];
                v[1] = v[1] - self.gravity_step;
                for (axis, at) in [(0, k / self.n), (1, k % self.n)] {
                    if self.walled(at, v[axis]) {
                        v[axis] = R::ZERO;
                    }
                }
                v
            })
            .collect();
        Grid {
            momentum,
            mass,
            v,
            f_stored,
        }
    }

    /// Whether the wall band stops a node at `at` along an axis with velocity `v` there.
    fn walled(&self, at: usize, v: R) -> bool {
        (at < self.bound && v < R::ZERO) || (at > self.n - self.bound && v > R::ZERO)
    }

    /// One substep, with per-particle actuation `act` (empty: none).
    pub fn substep(&self, particles: &[Particle<R>], act: &[Option<R>]) -> Vec<Particle<R>> {
        let grid = self.grid(particles, act);
        particles
            .iter()
            .zip(&grid.f_stored)
            .map(|(p, &f_stored)| {
                let s = self.stencil(p.x);
                let mut v = [R::ZERO; 2];
                let mut c = [[R::ZERO; 2]; 2];
                for i in 0..3 {
                    for j in 0..3 {
                        let d = [R::from_f64(i as f64) - s.fx[0], R::from_f64(j as f64) - s.fx[1]];
                        let g = grid.v[self.node(&s, i, j)];
                        let w = s.w[0][i] * s.w[1][j];
                        v = [v[0] + w * g[0], v[1] + w * g[1]];
                        let w4 = lit::<R>(4.0) * w;
                        for r in 0..2 {
                            for q in 0..2 {
                                c[r][q] = c[r][q] + w4 * (g[r] * d[q]) * self.inv_dx;
                            }
                        }
                    }
                }
                let x = [p.x[0] + self.dt * v[0], p.x[1] + self.dt * v[1]];
                Particle { x, v, c, f: f_stored }
            })
            .collect()
    }

    /// The adjoint of [`substep`](Self::substep) at `particles`: from the cotangents of the
    /// new states, those of the old, and of each particle's actuation (empty without).
    pub fn substep_adjoint(
        &self,
        particles: &[Particle<R>],
        act: &[Option<R>],
        grads: &[Particle<R>],
    ) -> (Vec<Particle<R>>, Vec<R>) {
        let grid = self.grid(particles, act);
        let four = lit::<R>(4.0);
        // G2P: the cotangents of the node velocities, summed per node in particle order.
        let mut g_node = vec![[R::ZERO; 2]; self.nodes()];
        for (p, g) in particles.iter().zip(grads) {
            let s = self.stencil(p.x);
            let gv = [g.v[0] + self.dt * g.x[0], g.v[1] + self.dt * g.x[1]];
            for i in 0..3 {
                for j in 0..3 {
                    let d = [R::from_f64(i as f64) - s.fx[0], R::from_f64(j as f64) - s.fx[1]];
                    let w = s.w[0][i] * s.w[1][j];
                    let k = self.node(&s, i, j);
                    for r in 0..2 {
                        let along = g.c[r][0] * d[0] + g.c[r][1] * d[1];
                        g_node[k][r] = g_node[k][r] + w * gv[r] + four * w * self.inv_dx * along;
                    }
                }
            }
        }
        // The grid update: walls, then v = momentum / (mass + ε).
        let mut g_momentum = vec![[R::ZERO; 2]; self.nodes()];
        let mut g_mass = vec![R::ZERO; self.nodes()];
        for k in 0..self.nodes() {
            let inv_m = R::ONE / (grid.mass[k] + R::lit(1e-10));
            let mut g = g_node[k];
            for (axis, at) in [(0, k / self.n), (1, k % self.n)] {
                let before = if axis == 1 {
                    inv_m * grid.momentum[k][1] - self.gravity_step
                } else {
                    inv_m * grid.momentum[k][0]
                };
                if self.walled(at, before) {
                    g[axis] = R::ZERO;
                }
            }
            g_momentum[k] = [inv_m * g[0], inv_m * g[1]];
            let g_inv = g[0] * grid.momentum[k][0] + g[1] * grid.momentum[k][1];
            g_mass[k] = -(g_inv * inv_m * inv_m);
        }
        // Per particle: G2P's and P2G's shares.
        let mut g_act = vec![R::ZERO; act.len()];
        let out = particles
            .iter()
            .zip(grads)
            .enumerate()
            .map(|(q, (p, g))| {
                let s = self.stencil(p.x);
                let a_q = act.get(q).copied().flatten();
                let pushed = self.pushed(p, a_q);
                let a = pushed.affine;
                let mv = [self.mass * p.v[0], self.mass * p.v[1]];
                let gv = [g.v[0] + self.dt * g.x[0], g.v[1] + self.dt * g.x[1]];
                let mut g_fx = [R::ZERO; 2];
                let mut g_v = [R::ZERO; 2];
                let mut g_a = [[R::ZERO; 2]; 2];
                for i in 0..3 {
                    for j in 0..3 {
                        let k = self.node(&s, i, j);
                        let w = s.w[0][i] * s.w[1][j];
                        let dw = [s.dw[0][i] * s.w[1][j], s.w[0][i] * s.dw[1][j]];
                        // G2P: v' = Σ w v_node, C' = Σ 4w v_node ⊗ (ij − f) / dx.
                        let e = [R::from_f64(i as f64) - s.fx[0], R::from_f64(j as f64) - s.fx[1]];
                        let vn = grid.v[k];
                        let mut c_term = R::ZERO;
                        for r in 0..2 {
                            c_term = c_term + g.c[r][0] * vn[r] * e[0] + g.c[r][1] * vn[r] * e[1];
                        }
                        let vg = vn[0] * gv[0] + vn[1] * gv[1];
                        for axis in 0..2 {
                            let direct = -(four * w * self.inv_dx)
                                * (g.c[0][axis] * vn[0] + g.c[1][axis] * vn[1]);
                            g_fx[axis] =
                                g_fx[axis] + dw[axis] * (vg + four * self.inv_dx * c_term) + direct;
                        }
                        // P2G: momentum += w (m v + A d), mass += w m, d = (ij − f) dx.
                        let d = [e[0] * self.dx, e[1] * self.dx];
                        let ad = matvec(a, d);
                        let gm = g_momentum[k];
                        let pushed_w = gm[0] * (mv[0] + ad[0])
                            + gm[1] * (mv[1] + ad[1])
                            + g_mass[k] * self.mass;
                        for axis in 0..2 {
                            let through_d = -(w * self.dx)
                                * (a[0][axis] * gm[0] + a[1][axis] * gm[1]);
                            g_fx[axis] = g_fx[axis] + dw[axis] * pushed_w + through_d;
                            g_v[axis] = g_v[axis] + w * self.mass * gm[axis];
                        }
                        for r in 0..2 {
                            for q in 0..2 {
                                g_a[r][q] = g_a[r][q] + w * gm[r] * d[q];
                            }
                        }
                    }
                }
                let (g_c, g_f, g_a_q) = self.pushed_adjoint(p, &pushed, a_q, g_a, g.f);
                if let Some(slot) = g_act.get_mut(q) {
                    *slot = g_a_q;
                }
                Particle {
                    x: [
                        g.x[0] + g_fx[0] * self.inv_dx,
                        g.x[1] + g_fx[1] * self.inv_dx,
                    ],
                    v: g_v,
                    c: g_c,
                    f: g_f,
                }
            })
            .collect();
        (out, g_act)
    }

    /// The cotangents of `C`, `F` and the actuation from those of the affine matrix and
    /// the new `F`.
    fn pushed_adjoint(
        &self,
        p: &Particle<R>,
        pu: &Pushed<R>,
        act: Option<R>,
        g_a: M2<R>,
        g_f_stored: M2<R>,
    ) -> (M2<R>, M2<R>, R) {
        let fnw = pu.f_new;
        let cof = [[fnw[1][1], -fnw[1][0]], [-fnw[0][1], fnw[0][0]]];
        // A = s·σ + m C.
        let mut g_c = [[R::ZERO; 2]; 2];
        let mut g_sigma = [[R::ZERO; 2]; 2];
        for i in 0..2 {
            for k in 0..2 {
                g_c[i][k] = self.mass * g_a[i][k];
                g_sigma[i][k] = self.stress_scale * g_a[i][k];
            }
        }
        let mut g_fnew = [[R::ZERO; 2]; 2];
        let j = pu.j;
        let g_s = g_sigma[0][0] + g_sigma[1][1];
        // Actuation: σ[i][k] += F'[i][1] a F'[k][1].
        let mut g_act = R::ZERO;
        let mut g_col = [R::ZERO; 2];
        if let Some(act) = act {
            for i in 0..2 {
                for k in 0..2 {
                    g_act = g_act + g_sigma[i][k] * fnw[i][1] * fnw[k][1];
                }
                g_col[i] = act * ((g_sigma[i][0] + g_sigma[0][i]) * fnw[0][1]
                    + (g_sigma[i][1] + g_sigma[1][i]) * fnw[1][1]);
            }
        }
        match self.material {
            MpmMaterial::FixedCorotated { mu, lambda } | MpmMaterial::Plastic { mu, lambda, .. } => {
                let two_mu = lit::<R>(2.0 * mu);
                let m2 = [
                    [two_mu * (fnw[0][0] - pu.r[0][0]), two_mu * (fnw[0][1] - pu.r[0][1])],
                    [two_mu * (fnw[1][0] - pu.r[1][0]), two_mu * (fnw[1][1] - pu.r[1][1])],
                ];
                let mut g_m2 = [[R::ZERO; 2]; 2];
                for i in 0..2 {
                    for k in 0..2 {
                        // σ[i][j] = Σ_k M2[i][k] F'[j][k].
                        g_m2[i][k] = g_sigma[i][0] * fnw[0][k] + g_sigma[i][1] * fnw[1][k];
                        g_fnew[i][k] = g_sigma[0][i] * m2[0][k] + g_sigma[1][i] * m2[1][k];
                    }
                }
                let mut g_r = [[R::ZERO; 2]; 2];
                for i in 0..2 {
                    for k in 0..2 {
                        g_fnew[i][k] = g_fnew[i][k] + two_mu * g_m2[i][k];
                        g_r[i][k] = -(two_mu * g_m2[i][k]);
                    }
                }
                let g_polar = polar_adjoint(fnw, g_r);
                let g_j = g_s * lit::<R>(lambda) * (lit::<R>(2.0) * j - R::ONE);
                for i in 0..2 {
                    for k in 0..2 {
                        g_fnew[i][k] =
                            g_fnew[i][k] + g_polar[i][k] + g_j * cof[i][k] + g_f_stored[i][k];
                    }
                }
                g_fnew[0][1] = g_fnew[0][1] + g_col[0];
                g_fnew[1][1] = g_fnew[1][1] + g_col[1];
            }
            MpmMaterial::Fluid { lambda } => {
                let root = j.sqrt();
                let g_root = g_f_stored[0][0] + g_f_stored[1][1];
                let g_j = g_s * lit::<R>(lambda) * (lit::<R>(2.0) * j - R::ONE)
                    + g_root * lit::<R>(0.5) / root;
                for i in 0..2 {
                    for k in 0..2 {
                        g_fnew[i][k] = g_j * cof[i][k];
                    }
                }
                g_fnew[0][1] = g_fnew[0][1] + g_col[0];
                g_fnew[1][1] = g_fnew[1][1] + g_col[1];
            }
        }
        // The plastic projection F_e = P(F').
        if let MpmMaterial::Plastic {
            compression,
            stretch,
            ..
        } = self.material
        {
            let (lo, hi) = (lit(1.0 - compression), lit(1.0 + stretch));
            g_fnew = project_adjoint(pu.f_pushed, lo, hi, g_fnew);
        }
        // F' = (I + dt C) F.
        let (f, c, dt) = (p.f, p.c, self.dt);
        let m = [
            [R::ONE + dt * c[0][0], dt * c[0][1]],
            [dt * c[1][0], R::ONE + dt * c[1][1]],
        ];
        let mut g_f = [[R::ZERO; 2]; 2];
        for i in 0..2 {
            for k in 0..2 {
                let g_m = g_fnew[i][0] * f[k][0] + g_fnew[i][1] * f[k][1];
                g_c[i][k] = g_c[i][k] + dt * g_m;
                g_f[i][k] = m[0][i] * g_fnew[0][k] + m[1][i] * g_fnew[1][k];
            }
        }
        (g_c, g_f, g_act)
    }
}

/// Taichi's 2 × 2 polar decomposition's rotation (or reflection, where `det A < 0`):
/// `U = B / √|det B|` with `B` from the sums and differences of `A`'s entries; `I` for
/// the zero matrix.
pub fn polar<R: Real>(a: M2<R>) -> M2<R> {
    let z = R::ZERO;
    if a[0][0] == z && a[0][1] == z && a[1][0] == z && a[1][1] == z {
        return [[R::ONE, z], [z, R::ONE]];
    }
    let det = a[0][0] * a[1][1] - a[1][0] * a[0][1];
    let b = if det < z {
        [
            [a[0][0] - a[1][1], a[0][1] + a[1][0]],
            [a[1][0] + a[0][1], a[1][1] - a[0][0]],
        ]
    } else {
        [
            [a[0][0] + a[1][1], a[0][1] - a[1][0]],
            [a[1][0] - a[0][1], a[1][1] + a[0][0]],
        ]
    };
    let k = R::ONE / (b[0][0] * b[1][1] - b[1][0] * b[0][1]).abs().sqrt();
    [[b[0][0] * k, b[0][1] * k], [b[1][0] * k, b[1][1] * k]]
}

/// The cotangent of `A` through [`polar`], given that of `U`. With `(p, q)` the entries
/// `B` is built from, `U = B / √(p² + q²)` depends on `(p, q)` alone.
pub fn polar_adjoint<R: Real>(a: M2<R>, g: M2<R>) -> M2<R> {
    let z = R::ZERO;
    let det = a[0][0] * a[1][1] - a[1][0] * a[0][1];
    let reflect = det < z;
    let (p, q, gp, gq) = if reflect {
        (
            a[0][0] - a[1][1],
            a[0][1] + a[1][0],
            g[0][0] - g[1][1],
            g[0][1] + g[1][0],
        )
    } else {
        (
            a[0][0] + a[1][1],
            a[0][1] - a[1][0],
            g[0][0] + g[1][1],
            g[0][1] - g[1][0],
        )
    };
    let rho2 = p * p + q * q;
    if rho2 == z {
        return [[z; 2]; 2];
    }
    let rho = rho2.sqrt();
    let along = (p * gp + q * gq) / (rho2 * rho);
    let (dp, dq) = (gp / rho - p * along, gq / rho - q * along);
    if reflect {
        [[dp, dq], [dq, -dp]]
    } else {
        [[dp, dq], [-dq, dp]]
    }
}

/// The symmetric eigen-decomposition of `S` (2 × 2): the rotation `V` (columns the
/// eigenvectors) and the eigenvalues.
fn eigen<R: Real>(s: M2<R>) -> (M2<R>, [R; 2]) {
    let (a, b, d) = (s[0][0], s[0][1], s[1][1]);
    let theta = lit::<R>(0.5) * (b + b).atan2(a - d);
    let (c, n) = (theta.cos(), theta.sin());
    let v = [[c, -n], [n, c]];
    let l0 = a * c * c + (b + b) * c * n + d * n * n;
    let l1 = a * n * n - (b + b) * c * n + d * c * c;
    (v, [l0, l1])
}

/// `Rᵀ A` made symmetric (the `S` of `A = R S`).
fn stretch_of<R: Real>(r: M2<R>, a: M2<R>) -> M2<R> {
    let mut s = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            s[i][k] = r[0][i] * a[0][k] + r[1][i] * a[1][k];
        }
    }
    let off = lit::<R>(0.5) * (s[0][1] + s[1][0]);
    s[0][1] = off;
    s[1][0] = off;
    s
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

/// The plastic projection: `A = R S`, `S = V Σ Vᵀ`, `R V clamp(Σ) Vᵀ`.
pub fn project<R: Real>(a: M2<R>, lo: R, hi: R) -> M2<R> {
    let r = polar(a);
    let (v, l) = eigen(stretch_of(r, a));
    let c = [clamp_r(l[0], lo, hi), clamp_r(l[1], lo, hi)];
    // G = V diag(c) Vᵀ, then R G.
    let mut g = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            g[i][k] = v[i][0] * c[0] * v[k][0] + v[i][1] * c[1] * v[k][1];
        }
    }
    let mut out = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            out[i][k] = r[i][0] * g[0][k] + r[i][1] * g[1][k];
        }
    }
    out
}

/// The cotangent of `A` through [`project`], given that of its result. The clamp's
/// derivative on the eigenbasis uses divided differences `(c_i − c_j) / (σ_i − σ_j)`,
/// replaced by the mean of the two slopes where the singular values meet, so it stays
/// finite.
pub fn project_adjoint<R: Real>(a: M2<R>, lo: R, hi: R, g_out: M2<R>) -> M2<R> {
    let r = polar(a);
    let s = stretch_of(r, a);
    let (v, l) = eigen(s);
    let c = [clamp_r(l[0], lo, hi), clamp_r(l[1], lo, hi)];
    let mut gm = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            gm[i][k] = v[i][0] * c[0] * v[k][0] + v[i][1] * c[1] * v[k][1];
        }
    }
    // out = R G: g_R = g_out Gᵀ, g_G = Rᵀ g_out.
    let mut g_r = [[R::ZERO; 2]; 2];
    let mut g_g = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            g_r[i][k] = g_out[i][0] * gm[k][0] + g_out[i][1] * gm[k][1];
            g_g[i][k] = r[0][i] * g_out[0][k] + r[1][i] * g_out[1][k];
        }
    }
    // G = g(S) on the eigenbasis: g_S = V (Γ ∘ (Vᵀ sym(g_G) V)) Vᵀ.
    let half = lit::<R>(0.5);
    let sym = [
        [g_g[0][0], half * (g_g[0][1] + g_g[1][0])],
        [half * (g_g[0][1] + g_g[1][0]), g_g[1][1]],
    ];
    let mut m = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            let mut acc = R::ZERO;
            for p in 0..2 {
                for q in 0..2 {
                    acc = acc + v[p][i] * sym[p][q] * v[q][k];
                }
            }
            m[i][k] = acc;
        }
    }
    let slope = |x: R| if x < lo || x > hi { R::ZERO } else { R::ONE };
    let (d0, d1) = (slope(l[0]), slope(l[1]));
    let gap = l[0] - l[1];
    let cross = if gap.abs() > lit(1e-6) {
        (c[0] - c[1]) / gap
    } else {
        half * (d0 + d1)
    };
    let gamma = [[d0, cross], [cross, d1]];
    let mut g_s = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            let mut acc = R::ZERO;
            for p in 0..2 {
                for q in 0..2 {
                    acc = acc + v[i][p] * gamma[p][q] * m[p][q] * v[k][q];
                }
            }
            g_s[i][k] = acc;
        }
    }
    // S = sym(Rᵀ A): g_A += R g_S, g_R += A g_Sᵀ (g_S is symmetric).
    let mut g_a = [[R::ZERO; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            g_a[i][k] = r[i][0] * g_s[0][k] + r[i][1] * g_s[1][k];
            g_r[i][k] = g_r[i][k] + a[i][0] * g_s[k][0] + a[i][1] * g_s[k][1];
        }
    }
    let g_polar = polar_adjoint(a, g_r);
    for i in 0..2 {
        for k in 0..2 {
            g_a[i][k] = g_a[i][k] + g_polar[i][k];
        }
    }
    g_a
}

/// What a rollout needs from an MLS-MPM reference of one dimension: its particle state,
/// a substep and the substep's adjoint.
pub trait Stepper<R: Real> {
    /// One particle's state.
    type Particle: Copy;
    /// Spatial dimension.
    const DIM: usize;
    /// Floats per particle state (position, velocity, C, F).
    const STATE: usize;
    /// An undeformed particle at `x` moving at `v` (`DIM` values each).
    fn start(x: &[R], v: &[R]) -> Self::Particle;
    /// The state's floats: position first, then velocity, C and F.
    fn flat(p: &Self::Particle) -> Vec<R>;
    /// From [`flat`](Self::flat)'s layout.
    fn from_flat(s: &[R]) -> Self::Particle;
    /// One substep, with per-particle actuation (empty: none).
    fn step(&self, particles: &[Self::Particle], act: &[Option<R>]) -> Vec<Self::Particle>;
    /// The substep's adjoint: the old states' cotangents and each particle's actuation's.
    fn step_adjoint(
        &self,
        particles: &[Self::Particle],
        act: &[Option<R>],
        grads: &[Self::Particle],
    ) -> (Vec<Self::Particle>, Vec<R>);
}

impl<R: Real> Stepper<R> for Prepared<R> {
    type Particle = Particle<R>;
    const DIM: usize = 2;
    const STATE: usize = STATE;

    fn start(x: &[R], v: &[R]) -> Particle<R> {
        Particle::at([x[0], x[1]], [v[0], v[1]])
    }

    fn flat(p: &Particle<R>) -> Vec<R> {
        p.flat().to_vec()
    }

    fn from_flat(s: &[R]) -> Particle<R> {
        Particle::from_flat(s)
    }

    fn step(&self, particles: &[Particle<R>], act: &[Option<R>]) -> Vec<Particle<R>> {
        self.substep(particles, act)
    }

    fn step_adjoint(
        &self,
        particles: &[Particle<R>],
        act: &[Option<R>],
        grads: &[Particle<R>],
    ) -> (Vec<Particle<R>>, Vec<R>) {
        self.substep_adjoint(particles, act, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `⟨g, d project(a)[e]⟩` by central differences.
    fn numeric(a: M2<f64>, e: (usize, usize), g: M2<f64>, (lo, hi): (f64, f64)) -> f64 {
        let h = 1e-7;
        let (mut p, mut m) = (a, a);
        p[e.0][e.1] += h;
        m[e.0][e.1] -= h;
        let (fp, fm) = (project(p, lo, hi), project(m, lo, hi));
        let mut d = 0.0;
        for i in 0..2 {
            for k in 0..2 {
                d += g[i][k] * (fp[i][k] - fm[i][k]) / (2.0 * h);
            }
        }
        d
    }

    #[test]
    fn the_plastic_projection_has_finite_exact_gradients_where_singular_values_meet() {
        let g = [[0.3, -1.1], [0.7, 0.4]];
        let limits = (0.95, 1.05);
        let cases: [M2<f64>; 5] = [
            // Equal singular values, both clamped (a scaled rotation).
            [[1.2 * 0.8, -1.2 * 0.6], [1.2 * 0.6, 1.2 * 0.8]],
            // Equal, both inside the limits.
            [[1.01, 0.0], [0.0, 1.01]],
            // Nearly equal (1e-9 apart), both clamped.
            [[1.2, 0.0], [0.0, 1.2 + 1e-9]],
            // One clamped, one not, sheared.
            [[1.2, 0.1], [-0.05, 0.99]],
            // Both clamped on opposite sides.
            [[0.8, 0.2], [0.1, 1.3]],
        ];
        for a in cases {
            let analytic = project_adjoint(a, limits.0, limits.1, g);
            for e in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let want = numeric(a, e, g, limits);
                let got = analytic[e.0][e.1];
                assert!(got.is_finite(), "{a:?} {e:?}: not finite");
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{a:?} {e:?}: {got} vs {want}"
                );
            }
        }
    }
}
