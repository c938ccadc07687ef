//! The description of a mass-spring system: which particles the springs join, the
//! per-particle inverse masses, and the force and integration rules of one substep, written
//! so that the update orders of Warp's semi-implicit Euler (`warp.sim`, v1.8) and of
//! DiffTaichi's `mass_spring_simple.py` are both configurations of it.
//!
//! One substep of length `dt` from positions `x` and velocities `v`, per particle `i`:
//!
//! 1. **Springs.** For spring `s` joining `a` and `b`, with `d = x_a − x_b`, `u = v_a − v_b`,
//!    rest length `r_s(t)`, stiffness `k_s` and damping `c_s`, the force `F_s` on `b` (and
//!    `−F_s` on `a`) is, by [`SpringForm`]:
//!    - `Warp`: `l = |d|`, `n = d · (1/l)`, `F_s = n · (k_s (l − r_s) + c_s (n · u))`
//!      (`eval_springs`);
//!    - `DiffTaichi`: `L = |d| + ε`, `F_s = (L − r_s) · k_s · d / L`; damping along the
//!      spring is not part of this form (`apply_spring_force`, ε = 1e-4 there).
//!
//!    An actuated spring's rest length at step `t` is `r_s (1 + α_s u_t,s)`, with `u` the
//!    per-step controls and `α_s` its actuation strength (DiffTaichi's soft robots).
//! 2. **Ground contact** (optional, [`GroundContact`], Warp's
//!    `eval_particle_ground_contacts`): with plane normal `n`, offset `o` and radius `ρ`,
//!    `c = min(n · x + o − ρ, 0)`; where `c < 0`: `vn = n · v`,
//!    `fn = c k_e + min(vn, 0) k_d`, `vt = v − n vn`, `ft = min(|vt| k_f, μ |fn|)`, and the
//!    force gains `−n fn − (vt / |vt|) ft`.
//! 3. **Integration** (semi-implicit Euler, Warp's `integrate_particles`, DiffTaichi's
//!    `time_integrate`): with `f` the sum of the spring forces on `i` (in spring order, each
//!    spring once) plus its contact force, inverse mass `w_i` and gravity `g`:
//!    `v' = σ v + (f w_i + g [w_i > 0]) dt` with `σ = exp(−dt · velocity_damping)`; if
//!    `|v'| > v_max`, `v' ← v' · (v_max / |v'|)`; `x' = x + v' dt`.
//! 4. **Wall friction** (optional, [`WallFriction`], DiffTaichi's projection): if
//!    `x'[axis] > position` and `v'[axis] > 0`, every other component `v'_k` moves toward 0
//!    by `min(|v'_k|, μ v'[axis])`, and `v'[axis] = 0` (the position keeps the velocity
//!    before the projection, as DiffTaichi's does).
//!
//! To reproduce Warp: `SpringForm::Warp`, `velocity_damping = 0`, Warp's gravity, inverse
//! masses and `v_max` (`particle_max_velocity`, 1e5 by default). To reproduce DiffTaichi's
//! `mass_spring_simple`: `SpringForm::DiffTaichi { eps: 1e-4 }`, mass 1 (`w = 1`), zero
//! gravity, `velocity_damping = 20`, a wall on axis 0 at 0.4 with friction 0.01.

use crate::{Error, Result};

/// How a spring's force is computed (see the [module docs](self)).
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum SpringForm {
    /// `F = n (k (l − r) + c (n · u))`, `n = d · (1/l)`: Warp's `eval_springs`.
    Warp,
    /// `F = (L − r) k d / L`, `L = |d| + eps`: DiffTaichi's `apply_spring_force`. The
    /// damping coefficients are not used.
    DiffTaichi {
        /// Added to the length (DiffTaichi: 1e-4), which keeps `L > 0`.
        eps: f32,
    },
}

/// A penalty ground plane `n · x + offset = 0` with Coulomb-capped friction (Warp's
/// `eval_particle_ground_contacts`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct GroundContact {
    /// Unit normal of the plane (pointing out of the ground).
    pub normal: [f32; 3],
    /// `offset` in `n · x + offset`.
    pub offset: f32,
    /// Particle radius.
    pub radius: f32,
    /// Normal stiffness `k_e`.
    pub ke: f32,
    /// Normal damping `k_d` (on approach only).
    pub kd: f32,
    /// Tangential (viscous) friction `k_f`.
    pub kf: f32,
    /// Coulomb coefficient `μ`.
    pub mu: f32,
}

/// DiffTaichi's friction projection at a wall `x[axis] = position`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct WallFriction {
    /// The axis the wall is normal to.
    pub axis: usize,
    /// Where it stands along that axis; particles beyond it moving outward are stopped.
    pub position: f32,
    /// Friction coefficient of the tangential projection.
    pub friction: f32,
}

/// A mass-spring system: topology, masses and the rules of a substep (see the
/// [module docs](self) for each formula). The springs' rest lengths, stiffnesses and
/// dampings, the state and the controls are tensors given to
/// [`Graph::mass_spring_rollout`](crate::Graph::mass_spring_rollout), so they can be
/// differentiated.
#[derive(Clone, Debug, PartialEq)]
pub struct MassSpring {
    /// Spatial dimension: 2 or 3.
    pub dim: usize,
    /// The particles each spring joins, `(a, b)`; the force `F` acts on `b`, `−F` on `a`.
    pub springs: Vec<[u32; 2]>,
    /// Per-particle inverse mass; 0 pins a particle (no force or gravity moves it).
    pub inv_mass: Vec<f32>,
    /// Gravity, applied to particles with `inv_mass > 0` (only the first `dim` components
    /// are used).
    pub gravity: [f32; 3],
    /// Substep length.
    pub dt: f32,
    /// The spring force law.
    pub form: SpringForm,
    /// Velocity damping rate: each substep scales the velocity by `exp(−dt · rate)`.
    pub velocity_damping: f32,
    /// Speed limit `v_max` (Warp's `particle_max_velocity`); `None` for none.
    pub max_velocity: Option<f32>,
    /// An optional ground plane.
    pub ground: Option<GroundContact>,
    /// An optional friction wall.
    pub wall: Option<WallFriction>,
    /// Actuated springs: `(spring, α)`, in the order of the controls' last axis; the rest
    /// length at step `t` is `r (1 + α u[t, k])`.
    pub actuators: Vec<(u32, f32)>,
}

impl MassSpring {
    /// A system of `particles` particles joined by `springs`, all of unit inverse mass,
    /// with Warp's defaults: `SpringForm::Warp`, gravity `−9.81` along y, no damping, no
    /// speed limit, no ground, no wall, no actuators.
    pub fn new(dim: usize, particles: usize, springs: Vec<[u32; 2]>, dt: f32) -> MassSpring {
        MassSpring {
            dim,
            springs,
            inv_mass: vec![1.0; particles],
            gravity: [0.0, -9.81, 0.0],
            dt,
            form: SpringForm::Warp,
            velocity_damping: 0.0,
            max_velocity: None,
            ground: None,
            wall: None,
            actuators: vec![],
        }
    }

    /// Number of particles.
    pub fn particles(&self) -> usize {
        self.inv_mass.len()
    }

    /// `σ = exp(−dt · velocity_damping)`, as the kernels use it (rounded to `f32`).
    pub fn damping_factor(&self) -> f32 {
        (-(self.dt as f64) * self.velocity_damping as f64).exp() as f32
    }

    /// Checks the description, naming what is wrong and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::InvalidValue {
            op: "mass_spring",
            detail,
        };
        if self.dim != 2 && self.dim != 3 {
            return Err(bad(format!("dim is {}, expected 2 or 3", self.dim)));
        }
        if !(self.dt > 0.0 && self.dt.is_finite()) {
            return Err(bad(format!("dt is {}, expected a finite value > 0", self.dt)));
        }
        let n = self.particles();
        if n == 0 {
            return Err(bad("the system has no particles".into()));
        }
        if n > u32::MAX as usize / 4 {
            return Err(bad(format!("{n} particles, at most {}", u32::MAX / 4)));
        }
        for (s, &[a, b]) in self.springs.iter().enumerate() {
            if a as usize >= n || b as usize >= n {
                return Err(bad(format!(
                    "spring {s} joins particles {a} and {b}, but there are {n} (0..{n})"
                )));
            }
            if a == b {
                return Err(bad(format!("spring {s} joins particle {a} to itself")));
            }
        }
        if let Some(i) = self.inv_mass.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(bad(format!(
                "inv_mass[{i}] is {}, expected a finite value ≥ 0 (0 pins the particle)",
                self.inv_mass[i]
            )));
        }
        if !(self.velocity_damping.is_finite() && self.velocity_damping >= 0.0) {
            return Err(bad(format!(
                "velocity_damping is {}, expected a finite value ≥ 0",
                self.velocity_damping
            )));
        }
        if let Some(v) = self.max_velocity.filter(|v| v.is_nan() || *v <= 0.0) {
            return Err(bad(format!("max_velocity is {v}, expected > 0 (or None)")));
        }
        if let SpringForm::DiffTaichi { eps } = self.form {
            if !(eps >= 0.0 && eps.is_finite()) {
                return Err(bad(format!("the spring length eps is {eps}, expected ≥ 0")));
            }
        }
        if let Some(g) = &self.ground {
            let len = g.normal.iter().map(|c| c * c).sum::<f32>().sqrt();
            if (len - 1.0).abs() > 1e-4 {
                return Err(bad(format!(
                    "the ground normal {:?} has length {len}, expected a unit vector",
                    g.normal
                )));
            }
            let w_max = self.inv_mass.iter().copied().fold(0.0f32, f32::max);
            // Explicit friction overshoots (and its gradients blow up) once one substep's
            // friction impulse can exceed the velocity it opposes.
            if g.kf * self.dt * w_max >= 1.0 {
                return Err(bad(format!(
                    "ground friction kf·dt·max(inv_mass) = {} ≥ 1: explicit friction \
                     overshoots; lower kf or dt",
                    g.kf * self.dt * w_max
                )));
            }
            if [g.ke, g.kd, g.kf, g.mu, g.radius].iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(bad(format!(
                    "ground coefficients must be finite and ≥ 0: {g:?}"
                )));
            }
        }
        if let Some(w) = &self.wall {
            if w.axis >= self.dim {
                return Err(bad(format!(
                    "the wall's axis is {}, expected < dim = {}",
                    w.axis, self.dim
                )));
            }
        }
        for (k, &(s, alpha)) in self.actuators.iter().enumerate() {
            if s as usize >= self.springs.len() {
                return Err(bad(format!(
                    "actuator {k} drives spring {s}, but there are {} springs",
                    self.springs.len()
                )));
            }
            if !alpha.is_finite() {
                return Err(bad(format!("actuator {k}'s strength is {alpha}")));
            }
        }
        Ok(())
    }

    /// The springs touching each particle, as a compressed list: particle `i`'s entries are
    /// `incident[offsets[i]..offsets[i + 1]]`, each `2 s` for a spring where `i` is `a` or
    /// `2 s + 1` where it is `b`, in increasing spring order. Every backend sums a
    /// particle's spring forces in this order, so results do not depend on scheduling.
    pub fn incidence(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.particles();
        let mut counts = vec![0u32; n + 1];
        for &[a, b] in &self.springs {
            counts[a as usize + 1] += 1;
            counts[b as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut incident = vec![0u32; 2 * self.springs.len()];
        for (s, &[a, b]) in self.springs.iter().enumerate() {
            for (end, p) in [(0, a), (1, b)] {
                let at = &mut next[p as usize];
                incident[*at as usize] = 2 * s as u32 + end;
                *at += 1;
            }
        }
        (counts, incident)
    }

    /// Each spring's actuator index, or `u32::MAX` for a passive spring.
    pub fn actuator_of(&self) -> Vec<u32> {
        let mut of = vec![u32::MAX; self.springs.len()];
        for (k, &(s, _)) in self.actuators.iter().enumerate() {
            of[s as usize] = k as u32;
        }
        of
    }
}

/// A block of particles on a regular grid, joined by springs: what
/// [`MassSpring::lattice`] builds.
#[derive(Clone, Debug)]
pub struct Lattice {
    /// The system (unit inverse masses and [`MassSpring::new`]'s defaults otherwise).
    pub system: MassSpring,
    /// Positions `[N, D]`, particle `i` at grid coordinates `i mod c₀, (i / c₀) mod c₁, …`.
    pub positions: Vec<f32>,
    /// Each spring's length at those positions (its rest length, unstretched).
    pub rest: Vec<f32>,
}

impl MassSpring {
    /// A block of `counts[0] × counts[1] (× counts[2])` particles `spacing` apart from
    /// `origin` (2 or 3 axes), with a spring to each neighbour along an axis and across each
    /// face diagonal: cloth in 2D, a jelly block in 3D.
    pub fn lattice(counts: &[usize], spacing: f32, origin: [f32; 3], dt: f32) -> Lattice {
        let dim = counts.len();
        let n: usize = counts.iter().product();
        let coords = |mut i: usize| {
            let mut c = [0usize; 3];
            for (k, &m) in counts.iter().enumerate() {
                c[k] = i % m;
                i /= m;
            }
            c
        };
        let id = |c: [isize; 3]| -> Option<usize> {
            let mut i = 0;
            for k in (0..dim).rev() {
                if c[k] < 0 || c[k] as usize >= counts[k] {
                    return None;
                }
                i = i * counts[k] + c[k] as usize;
            }
            Some(i)
        };
        let mut positions = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = coords(i);
            positions.extend((0..dim).map(|k| origin[k] + spacing * c[k] as f32));
        }
        // Neighbours along each axis, and both diagonals of each face.
        let mut offsets: Vec<[isize; 3]> = vec![];
        for a in 0..dim {
            let mut o = [0isize; 3];
            o[a] = 1;
            offsets.push(o);
            for b in a + 1..dim {
                for sign in [1, -1] {
                    let mut p = o;
                    p[b] = sign;
                    offsets.push(p);
                }
            }
        }
        let mut springs = vec![];
        for i in 0..n {
            let c = coords(i).map(|v| v as isize);
            for o in &offsets {
                if let Some(j) = id([c[0] + o[0], c[1] + o[1], c[2] + o[2]]) {
                    springs.push([i as u32, j as u32]);
                }
            }
        }
        let rest = springs
            .iter()
            .map(|&[a, b]| {
                let (a, b) = (a as usize, b as usize);
                (0..dim)
                    .map(|k| (positions[a * dim + k] - positions[b * dim + k]).powi(2))
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        Lattice {
            system: MassSpring::new(dim, n, springs, dt),
            positions,
            rest,
        }
    }
}
