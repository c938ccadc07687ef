//! The description of an MLS-MPM system (moving least squares material point method, as
//! DiffTaichi's `diffmpm_simple.py` and FluidLab use it), in two dimensions (three work the
//! same way on a 3 × 3 × 3 stencil, with the polar decomposition from the eigenvectors of
//! `FᵀF`; on the CPU backend for now): particles carry
//! a position `x`, velocity `v`, affine velocity `C` and deformation gradient `F`; each
//! substep of length `dt` on a grid of `n × n` nodes over `[0, 1)²` (`dx = 1/n`) is, for
//! particle `p` with `base = ⌊x/dx − 0.5⌋`, `f = x/dx − base` and quadratic B-spline
//! weights `w = [½(1.5 − f)², 0.75 − (f − 1)², ½(f − 0.5)²]` per axis:
//!
//! 1. **P2G.** `F' = (I + dt C) F`, `J = det F'`; the material's Cauchy stress `σ`
//!    ([`MpmMaterial`]); `A = −(dt · V · 4 / dx²) σ + m C`; to each of the 3 × 3 nodes
//!    `base + (i, j)` with weight `w = w_i(f₀) w_j(f₁)` and `d = ((i, j) − f) dx`: momentum
//!    `w (m v + A d)` and mass `w m`. A node sums its particles in particle order.
//! 2. **Grid.** `v = momentum · (1/(mass + 1e-10))`, then `v_y −= dt g`, then within
//!    `bound` nodes of a wall the component pointing into it is zeroed (`i < bound` and
//!    `v_x < 0`, `i > n − bound` and `v_x > 0`, likewise in y).
//! 3. **G2P.** `v' = Σ w v_node`, `C' = Σ (4 w) (v_node ⊗ ((i, j) − f)) / dx`,
//!    `x' = x + dt v'`.
//!
//! **Actuation** (DiffTaichi's `diffmpm.py`): a particle driven by actuator `a` adds
//! `F' diag(0, s) F'ᵀ` to its stress, with `s = u[t, a] · strength` and `u` the per-step
//! controls, which contracts or stretches the body along its material's second axis.
//!
//! Constants that the anchor computes in double precision (`dt · V · 4 / dx²`, `dt · g`,
//! `dx`) are computed in `f64` and rounded once, which is why the settings are `f64`.

use crate::{Error, Result};

/// The material law of every particle.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum MpmMaterial {
    /// Fixed-corotated elasticity (`diffmpm_simple`): with `R` the rotation of the polar
    /// decomposition of `F'` (Taichi's 2 × 2 formula), `σ = 2μ (F' − R) F'ᵀ + λ (J − 1) J I`.
    FixedCorotated {
        /// Shear modulus μ.
        mu: f64,
        /// Lamé's λ.
        lambda: f64,
    },
    /// A weakly compressible fluid (FluidLab's liquid): `σ = λ (J − 1) J I`, and `F'` is
    /// reset to `√J I` after the stress, so shear never accumulates.
    Fluid {
        /// Bulk stiffness λ.
        lambda: f64,
    },
    /// Elastoplastic (snow-like, FluidLab's plasticine): `F'`'s singular values are clamped
    /// to `[1 − compression, 1 + stretch]` (with `F' = R S`, `S = V Σ Vᵀ`, the plastic
    /// part is dropped: `F_e = R V clamp(Σ) Vᵀ`), then `F_e` is kept and stressed as
    /// fixed-corotated. Its gradient uses divided differences of the clamp, which stay
    /// finite where two singular values meet.
    Plastic {
        /// Shear modulus μ.
        mu: f64,
        /// Lamé's λ.
        lambda: f64,
        /// How far a singular value may fall below 1 before the excess is plastic.
        compression: f64,
        /// How far it may rise above 1.
        stretch: f64,
    },
}

/// An MLS-MPM system (see the [module docs](self) for each formula).
#[derive(Clone, Debug, PartialEq)]
pub struct Mpm {
    /// Spatial dimension: 2 or 3 (both backends; 3D uses a 27-node stencil).
    pub dim: usize,
    /// Grid nodes per axis: the domain `[0, 1)` is cut into cells of `dx = 1 / grid`.
    pub grid: usize,
    /// Substep length.
    pub dt: f64,
    /// Mass of each particle.
    pub particle_mass: f64,
    /// Volume of each particle.
    pub particle_volume: f64,
    /// The material.
    pub material: MpmMaterial,
    /// Gravity along −y.
    pub gravity: f64,
    /// Width of the boundary band (in nodes) whose inward velocity is zeroed.
    pub bound: usize,
    /// Each particle's actuator (an index into the controls' last axis), or `u32::MAX`
    /// for a passive one; empty when nothing is actuated.
    pub actuators: Vec<u32>,
    /// The actuation stress per unit of control (DiffTaichi's `act_strength`).
    pub actuation_strength: f64,
    /// Opt-in: on adapters with `SHADER_FLOAT32_ATOMIC`, the forward's P2G adds into the
    /// grid with float atomics instead of sorting the particles. Faster, but each node's
    /// sum then runs in whatever order the threads arrive, so results change in their
    /// last bits from run to run (and drift further over a long rollout). The CPU backend,
    /// adapters without the feature, 3D systems and the backward's recomputation take the
    /// deterministic path.
    pub atomic_p2g: bool,
}

impl Mpm {
    /// `diffmpm_simple.py`'s system: 120 × 120 nodes, `dt = 3e-4`, unit mass and volume,
    /// fixed-corotated with `μ = λ = 100`, `g = 9.8`, a band of 3.
    pub fn diffmpm_simple() -> Mpm {
        Mpm {
            dim: 2,
            grid: 120,
            dt: 3e-4,
            particle_mass: 1.0,
            particle_volume: 1.0,
            material: MpmMaterial::FixedCorotated {
                mu: 100.0,
                lambda: 100.0,
            },
            gravity: 9.8,
            bound: 3,
            actuators: vec![],
            actuation_strength: 0.0,
            atomic_p2g: false,
        }
    }

    /// Number of actuators: one more than the largest actuator index (0 without).
    pub fn actuator_count(&self) -> usize {
        self.actuators
            .iter()
            .filter(|&&a| a != u32::MAX)
            .map(|&a| a as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The particles each actuator drives, in particle order: actuator `a`'s are
    /// `particles[offsets[a]..offsets[a + 1]]`.
    pub fn actuated(&self) -> (Vec<u32>, Vec<u32>) {
        let count = self.actuator_count();
        let mut offsets = vec![0u32; count + 1];
        for &a in self.actuators.iter().filter(|&&a| a != u32::MAX) {
            offsets[a as usize + 1] += 1;
        }
        for a in 0..count {
            offsets[a + 1] += offsets[a];
        }
        let mut next = offsets.clone();
        let mut particles = vec![0u32; offsets[count] as usize];
        for (p, &a) in self.actuators.iter().enumerate().filter(|(_, &a)| a != u32::MAX) {
            particles[next[a as usize] as usize] = p as u32;
            next[a as usize] += 1;
        }
        (offsets, particles)
    }

    /// Floats per particle state: position, velocity, affine velocity and deformation
    /// gradient.
    pub fn state_floats(&self) -> usize {
        2 * self.dim + 2 * self.dim * self.dim
    }

    /// `dx` in `f32`.
    pub fn dx(&self) -> f32 {
        (1.0 / self.grid as f64) as f32
    }

    /// `1/dx` in `f32`.
    pub fn inv_dx(&self) -> f32 {
        (1.0 / (1.0 / self.grid as f64)) as f32
    }

    /// The stress scale `−dt · V · 4 / dx²` in `f32`.
    pub fn stress_scale(&self) -> f32 {
        let inv_dx = 1.0 / (1.0 / self.grid as f64);
        (-(self.dt * self.particle_volume * 4.0 * inv_dx * inv_dx)) as f32
    }

    /// `dt · g` in `f32`.
    pub fn gravity_step(&self) -> f32 {
        (self.dt * self.gravity) as f32
    }

    /// Checks the description, naming what is wrong and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::InvalidValue { op: "mpm", detail };
        if self.dim != 2 && self.dim != 3 {
            return Err(bad(format!("dim is {}, expected 2 or 3", self.dim)));
        }
        if !(self.dt > 0.0 && self.dt.is_finite()) {
            return Err(bad(format!("dt is {}, expected a finite value > 0", self.dt)));
        }
        let most = if self.dim == 3 { 512 } else { 4096 };
        if self.grid < 2 * self.bound + 3 || self.grid > most {
            return Err(bad(format!(
                "a grid of {} nodes per axis with a band of {}: expected 2·bound + 3 to {most} \
                 in {}D",
                self.grid, self.bound, self.dim
            )));
        }
        for (what, v) in [
            ("particle_mass", self.particle_mass),
            ("particle_volume", self.particle_volume),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(bad(format!("{what} is {v}, expected a finite value > 0")));
            }
        }
        let moduli = match self.material {
            MpmMaterial::FixedCorotated { mu, lambda } => vec![mu, lambda],
            MpmMaterial::Fluid { lambda } => vec![lambda],
            MpmMaterial::Plastic {
                mu,
                lambda,
                compression,
                stretch,
            } => {
                if !(compression > 0.0 && compression < 1.0 && stretch > 0.0) {
                    return Err(bad(format!(
                        "plastic limits: compression {compression} must be in (0, 1) and \
                         stretch {stretch} > 0"
                    )));
                }
                vec![mu, lambda]
            }
        };
        if !self.actuation_strength.is_finite() {
            return Err(bad(format!(
                "actuation_strength is {}, expected a finite value",
                self.actuation_strength
            )));
        }
        if moduli.iter().any(|m| !(m.is_finite() && *m >= 0.0)) {
            return Err(bad(format!(
                "the material's moduli must be finite and ≥ 0: {:?}",
                self.material
            )));
        }
        Ok(())
    }

    /// Checks that every particle sits where its 3 × 3 nodes are inside the grid, and
    /// that a substep cannot carry one past a cell (the CFL condition `|v| dt < dx`).
    pub fn check_particles(&self, x: &[f32], v: &[f32]) -> Result<()> {
        let bad = |detail: String| Error::InvalidValue { op: "mpm", detail };
        let (lo, hi) = (self.dx() * 0.5, 1.0 - self.dx() * 1.5);
        if let Some(i) = x.iter().position(|&c| c.is_nan() || c < lo || c >= hi) {
            return Err(bad(format!(
                "particle {} has coordinate {} {}, outside the grid's interior [{lo}, {hi})",
                i / self.dim,
                i % self.dim,
                x[i]
            )));
        }
        let limit = self.dx() as f64 / self.dt;
        if let Some(i) = v.iter().position(|&c| c.is_nan() || (c as f64).abs() >= limit) {
            return Err(bad(format!(
                "particle {}'s speed {} breaks the CFL condition |v| dt < dx (|v| < {limit})",
                i / self.dim,
                v[i]
            )));
        }
        Ok(())
    }
}
