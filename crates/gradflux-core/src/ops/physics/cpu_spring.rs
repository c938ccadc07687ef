//! The reference of one mass-spring substep and of its adjoint, in `f64` or `f32`, in the
//! order the kernels compute it (see [`MassSpring`](super::MassSpring) for the formulas):
//! spring forces per spring, then per particle the sum of its springs' forces in spring
//! order, the ground contact, integration and the wall; the adjoint runs the same passes
//! backwards and gathers each particle's spring terms in the same order.

use super::real::{add, dot, length, scale, sub, zero, Real, V3};
use super::spring::{GroundContact, MassSpring, SpringForm, WallFriction};

/// A system's settings in the working precision, with its incidence lists.
pub struct Prepared<R: Real> {
    /// Spatial dimension (2 or 3).
    pub dim: usize,
    /// Spring ends.
    pub springs: Vec<[usize; 2]>,
    /// Per-particle inverse masses.
    pub w: Vec<R>,
    gravity: V3<R>,
    dt: R,
    sigma: R,
    form: SpringForm,
    eps: R,
    v_max: Option<R>,
    ground: Option<GroundContact>,
    wall: Option<WallFriction>,
    /// Actuated springs: `(spring, α)`.
    pub actuators: Vec<(usize, R)>,
    offsets: Vec<usize>,
    incident: Vec<u32>,
}

impl<R: Real> Prepared<R> {
    /// `system` in precision `R` (its description was validated when it was added).
    pub fn new(system: &MassSpring) -> Prepared<R> {
        let (offsets, incident) = system.incidence();
        let mut gravity = [R::ZERO; 3];
        for (k, g) in gravity.iter_mut().enumerate().take(system.dim) {
            *g = R::lit(system.gravity[k]);
        }
        Prepared {
            dim: system.dim,
            springs: system
                .springs
                .iter()
                .map(|&[a, b]| [a as usize, b as usize])
                .collect(),
            w: system.inv_mass.iter().map(|&w| R::lit(w)).collect(),
            gravity,
            dt: R::lit(system.dt),
            sigma: R::lit(system.damping_factor()),
            form: system.form,
            eps: match system.form {
                SpringForm::DiffTaichi { eps } => R::lit(eps),
                SpringForm::Warp => R::ZERO,
            },
            v_max: system.max_velocity.map(R::lit),
            ground: system.ground,
            wall: system.wall,
            actuators: system.actuators.iter().map(|&(s, a)| (s as usize, R::lit(a))).collect(),
            offsets: offsets.into_iter().map(|o| o as usize).collect(),
            incident,
        }
    }

    /// Particles.
    pub fn particles(&self) -> usize {
        self.w.len()
    }

    fn lit3(&self, v: [f32; 3]) -> V3<R> {
        [R::lit(v[0]), R::lit(v[1]), R::lit(v[2])]
    }

    /// Spring `s`'s force on its second particle, from its ends' relative position `d` and
    /// velocity `u`, with rest length `r`, stiffness `k` and damping `c`.
    pub fn spring_force(&self, d: V3<R>, u: V3<R>, r: R, k: R, c: R) -> V3<R> {
        match self.form {
            SpringForm::Warp => {
                let l = length(d);
                let n = scale(d, R::ONE / l);
                let s = k * (l - r) + c * dot(n, u);
                scale(n, s)
            }
            SpringForm::DiffTaichi { .. } => {
                let big_l = length(d) + self.eps;
                let s = (big_l - r) * k;
                let f = scale(d, s);
                [f[0] / big_l, f[1] / big_l, f[2] / big_l]
            }
        }
    }

    /// Every spring's force (`rest` already actuated).
    pub fn spring_forces(&self, x: &[V3<R>], v: &[V3<R>], p: &SpringParams<'_, R>) -> Vec<V3<R>> {
        self.springs
            .iter()
            .enumerate()
            .map(|(s, &[a, b])| {
                let (d, u) = (sub(x[a], x[b]), sub(v[a], v[b]));
                self.spring_force(d, u, p.rest[s], p.stiffness[s], p.damping[s])
            })
            .collect()
    }

    /// Particle `i`'s spring forces, summed in its incidence order.
    fn gathered(&self, i: usize, forces: &[V3<R>]) -> V3<R> {
        let mut f = zero();
        for &e in &self.incident[self.offsets[i]..self.offsets[i + 1]] {
            let s = (e / 2) as usize;
            f = if e % 2 == 0 { sub(f, forces[s]) } else { add(f, forces[s]) };
        }
        f
    }

    /// `f` plus the ground's force on a particle at `x` moving at `v`.
    fn with_contact(&self, f: V3<R>, x: V3<R>, v: V3<R>) -> V3<R> {
        let Some(g) = &self.ground else { return f };
        let n = self.lit3(g.normal);
        let c = (dot(n, x) + R::lit(g.offset) - R::lit(g.radius)).min(R::ZERO);
        // Not penetrating (or NaN): no contact force.
        if c >= R::ZERO || !c.finite() {
            return f;
        }
        let vn = dot(n, v);
        let f_n = c * R::lit(g.ke) + vn.min(R::ZERO) * R::lit(g.kd);
        let mut vt = sub(v, scale(n, vn));
        let vs = length(vt);
        if vs > R::ZERO {
            vt = [vt[0] / vs, vt[1] / vs, vt[2] / vs];
        }
        let ft = (vs * R::lit(g.kf)).min(R::lit(g.mu) * f_n.abs());
        sub(sub(f, scale(n, f_n)), scale(vt, ft))
    }

    /// The velocity before the speed limit and the wall, from force `f`.
    fn pushed(&self, i: usize, v: V3<R>, f: V3<R>) -> V3<R> {
        let w = self.w[i];
        let gate = if w > R::ZERO { R::ONE } else { R::ZERO };
        let a = add(scale(f, w), scale(self.gravity, gate));
        add(scale(v, self.sigma), scale(a, self.dt))
    }

    fn limited(&self, u: V3<R>) -> V3<R> {
        match self.v_max {
            Some(m) if length(u) > m => scale(u, m / length(u)),
            _ => u,
        }
    }

    /// Whether the wall stops a particle now at `x` moving at `v`.
    fn wall_hit(&self, x: V3<R>, v: V3<R>) -> Option<&WallFriction> {
        self.wall
            .as_ref()
            .filter(|w| x[w.axis] > R::lit(w.position) && v[w.axis] > R::ZERO)
    }

    fn projected(&self, w: &WallFriction, mut v: V3<R>) -> V3<R> {
        let push = R::lit(w.friction) * v[w.axis];
        for k in (0..self.dim).filter(|&k| k != w.axis) {
            if v[k] > R::ZERO {
                v[k] = v[k] - v[k].min(push);
            } else if v[k] < R::ZERO {
                v[k] = v[k] + (-v[k]).min(push);
            }
        }
        v[w.axis] = R::ZERO;
        v
    }

    /// One substep: the new positions and velocities.
    pub fn substep(
        &self,
        x: &[V3<R>],
        v: &[V3<R>],
        p: &SpringParams<'_, R>,
    ) -> (Vec<V3<R>>, Vec<V3<R>>) {
        let forces = self.spring_forces(x, v, p);
        (0..self.particles())
            .map(|i| {
                let f = self.with_contact(self.gathered(i, &forces), x[i], v[i]);
                let v1 = self.limited(self.pushed(i, v[i], f));
                let x1 = add(x[i], scale(v1, self.dt));
                let v1 = match self.wall_hit(x1, v1) {
                    Some(w) => self.projected(w, v1),
                    None => v1,
                };
                (x1, v1)
            })
            .unzip()
    }

    /// The adjoint of [`substep`](Self::substep) at state `(x, v)`: from the cotangents of
    /// the new state, those of the old state and of each spring's (actuated) rest length
    /// this substep (returned), and of the stiffnesses and dampings (added to `grads`).
    pub fn substep_adjoint(
        &self,
        (x, v): (&[V3<R>], &[V3<R>]),
        p: &SpringParams<'_, R>,
        (gx1, gv1): (&[V3<R>], &[V3<R>]),
        grads: &mut SpringGrads<R>,
    ) -> (Vec<V3<R>>, Vec<V3<R>>, Vec<R>) {
        let forces = self.spring_forces(x, v, p);
        let n = self.particles();
        let mut gf = vec![zero(); n];
        let mut gx = vec![zero(); n];
        let mut gv = vec![zero(); n];
        for i in 0..n {
            let f = self.with_contact(self.gathered(i, &forces), x[i], v[i]);
            let u = self.pushed(i, v[i], f);
            let v1 = self.limited(u);
            let x1 = add(x[i], scale(v1, self.dt));
            let mut g_v1 = match self.wall_hit(x1, v1) {
                Some(w) => self.projected_adjoint(w, v1, gv1[i]),
                None => gv1[i],
            };
            g_v1 = add(g_v1, scale(gx1[i], self.dt));
            let g_u = self.limited_adjoint(u, g_v1);
            gv[i] = scale(g_u, self.sigma);
            gx[i] = gx1[i];
            gf[i] = scale(g_u, self.w[i] * self.dt);
            let (cx, cv) = self.contact_adjoint(x[i], v[i], gf[i]);
            gx[i] = add(gx[i], cx);
            gv[i] = add(gv[i], cv);
        }
        let terms: Vec<SpringTerms<R>> = self
            .springs
            .iter()
            .enumerate()
            .map(|(s, &[a, b])| {
                let g_force = sub(gf[b], gf[a]);
                let (d, u) = (sub(x[a], x[b]), sub(v[a], v[b]));
                self.spring_adjoint(s, d, u, p, g_force, grads)
            })
            .collect();
        for i in 0..n {
            for &e in &self.incident[self.offsets[i]..self.offsets[i + 1]] {
                let t = &terms[(e / 2) as usize];
                if e % 2 == 0 {
                    gx[i] = add(gx[i], t.d);
                    gv[i] = add(gv[i], t.u);
                } else {
                    gx[i] = sub(gx[i], t.d);
                    gv[i] = sub(gv[i], t.u);
                }
            }
        }
        (gx, gv, terms.iter().map(|t| t.rest).collect())
    }

    fn projected_adjoint(&self, w: &WallFriction, v1: V3<R>, g: V3<R>) -> V3<R> {
        // `v1` is the velocity before the projection.
        let fr = R::lit(w.friction);
        let push = fr * v1[w.axis];
        let mut out = zero();
        let mut g_axis = R::ZERO;
        for k in (0..self.dim).filter(|&k| k != w.axis) {
            if v1[k] > R::ZERO && v1[k] > push {
                out[k] = g[k];
                g_axis = g_axis - fr * g[k];
            } else if v1[k] < R::ZERO && -v1[k] > push {
                out[k] = g[k];
                g_axis = g_axis + fr * g[k];
            }
        }
        out[w.axis] = g_axis;
        out
    }

    fn limited_adjoint(&self, u: V3<R>, g: V3<R>) -> V3<R> {
        match self.v_max {
            Some(m) if length(u) > m => {
                let l = length(u);
                let hat = scale(u, R::ONE / l);
                scale(sub(g, scale(hat, dot(hat, g))), m / l)
            }
            _ => g,
        }
    }

    /// The cotangents of `x` and `v` through the ground force, given that of the force.
    fn contact_adjoint(&self, x: V3<R>, v: V3<R>, gf: V3<R>) -> (V3<R>, V3<R>) {
        let none = (zero(), zero());
        let Some(g) = &self.ground else { return none };
        let n = self.lit3(g.normal);
        let c = (dot(n, x) + R::lit(g.offset) - R::lit(g.radius)).min(R::ZERO);
        if c >= R::ZERO || !c.finite() {
            return none;
        }
        let vn = dot(n, v);
        let f_n = c * R::lit(g.ke) + vn.min(R::ZERO) * R::lit(g.kd);
        let vt = sub(v, scale(n, vn));
        let vs = length(vt);
        let hat = if vs > R::ZERO { scale(vt, R::ONE / vs) } else { vt };
        let (kf, mu) = (R::lit(g.kf), R::lit(g.mu));
        let kinetic = vs * kf < mu * f_n.abs();
        let ft = if kinetic { vs * kf } else { mu * f_n.abs() };
        // f_out = f − n f_n − hat · ft.
        let mut g_fn = -dot(n, gf);
        let g_ft = -dot(hat, gf);
        let mut g_vs = R::ZERO;
        if kinetic {
            g_vs = g_ft * kf;
        } else {
            let sign = if f_n < R::ZERO { -R::ONE } else { R::ONE };
            g_fn = g_fn + g_ft * mu * sign;
        }
        let mut g_vt = zero();
        if vs > R::ZERO {
            // hat = vt / vs: its cotangent −ft·gf, projected off hat, over vs.
            let g_hat = scale(gf, -ft);
            let along = dot(hat, g_hat);
            g_vt = scale(sub(g_hat, scale(hat, along)), R::ONE / vs);
            g_vt = add(g_vt, scale(hat, g_vs));
        }
        let mut g_vn = -dot(n, g_vt);
        if vn < R::ZERO {
            g_vn = g_vn + g_fn * R::lit(g.kd);
        }
        let gx = scale(n, g_fn * R::lit(g.ke));
        let gv = add(g_vt, scale(n, g_vn));
        (gx, gv)
    }

    /// Spring `s`'s terms: the cotangents of `d = x_a − x_b` and `u = v_a − v_b` (added to
    /// `a`, subtracted from `b`), and its parameters' (added to `grads`), given that of its
    /// force on `b`. Both forms are `F = d ψ` with `L = |d| + ε`,
    /// `ψ = k (L − r) / L + c (d · u) / L²` (DiffTaichi's form has no damping term).
    fn spring_adjoint(
        &self,
        s: usize,
        d: V3<R>,
        u: V3<R>,
        p: &SpringParams<'_, R>,
        g_force: V3<R>,
        grads: &mut SpringGrads<R>,
    ) -> SpringTerms<R> {
        let (r, k) = (p.rest[s], p.stiffness[s]);
        let c = match self.form {
            SpringForm::Warp => p.damping[s],
            SpringForm::DiffTaichi { .. } => R::ZERO,
        };
        let l = length(d);
        let big_l = l + self.eps;
        let l2 = big_l * big_l;
        let du = dot(d, u);
        let psi = k * (big_l - r) / big_l + c * du / l2;
        let q = dot(d, g_force);
        let hat = if l > R::ZERO { scale(d, R::ONE / l) } else { zero() };
        // ∇_d ψ = k r / L² · n̂ + c (u / L² − 2 (d · u) n̂ / L³).
        let grad_psi = add(
            scale(hat, k * r / l2 - R::lit(2.0) * c * du / (l2 * big_l)),
            scale(u, c / l2),
        );
        grads.stiffness[s] = grads.stiffness[s] + q * (big_l - r) / big_l;
        if let SpringForm::Warp = self.form {
            grads.damping[s] = grads.damping[s] + q * du / l2;
        }
        SpringTerms {
            d: add(scale(g_force, psi), scale(grad_psi, q)),
            u: scale(d, q * c / l2),
            rest: -(q * k / big_l),
        }
    }
}

/// The per-spring values of one substep (rest lengths already actuated).
pub struct SpringParams<'a, R> {
    /// Rest lengths.
    pub rest: &'a [R],
    /// Stiffnesses.
    pub stiffness: &'a [R],
    /// Dampings.
    pub damping: &'a [R],
}

/// One spring's share of a substep's adjoint.
struct SpringTerms<R> {
    /// Cotangent of `d = x_a − x_b`.
    d: V3<R>,
    /// Cotangent of `u = v_a − v_b`.
    u: V3<R>,
    /// Cotangent of the (actuated) rest length.
    rest: R,
}

/// Cotangents of the springs' stiffnesses and dampings, accumulated over substeps.
pub struct SpringGrads<R> {
    /// Of the stiffnesses.
    pub stiffness: Vec<R>,
    /// Of the dampings.
    pub damping: Vec<R>,
}

impl<R: Real> SpringGrads<R> {
    /// Zeros for `springs` springs.
    pub fn zeros(springs: usize) -> SpringGrads<R> {
        SpringGrads {
            stiffness: vec![R::ZERO; springs],
            damping: vec![R::ZERO; springs],
        }
    }
}
