//! The attributes of the optimal-transport ops and the rules both backends share: the ε
//! schedule, when the loop checks its error, how masses are validated, and the error a
//! loop that ends above its tolerance returns.

use crate::{Error, Result};

/// The ground cost between two points of [`PointSoftmin`](crate::ops::ot::PointSoftmin) and point-cloud Sinkhorn,
/// computed on the fly from the coordinates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum PointCost {
    /// `|x − y|²`.
    #[default]
    SqEuclidean,
    /// `|x − y|`.
    Euclidean,
}

impl PointCost {
    /// The cost between two points given their squared distance.
    pub fn of_sq_distance(self, d2: f64) -> f64 {
        match self {
            PointCost::SqEuclidean => d2,
            PointCost::Euclidean => d2.sqrt(),
        }
    }
}

/// Geometric ε-scaling: iteration `t` uses `max(eps, start · factor^t)`, so early
/// iterations move mass at a coarse scale and later ones refine it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct EpsScaling {
    /// ε of the first iteration, in the cost's units; positive.
    pub start: f64,
    /// Ratio of one iteration's ε to the previous one's, strictly between 0 and 1.
    pub factor: f64,
}

/// Attributes of [`Sinkhorn`](crate::ops::ot::Sinkhorn): the problem's regularisation and marginal penalties,
/// where its cost comes from, and when the loop stops.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SinkhornSpec {
    /// The final entropic regularisation, in the cost's units.
    pub eps: f64,
    /// KL penalty of the first marginal; `None` keeps it exact.
    pub rho_a: Option<f64>,
    /// KL penalty of the second marginal; `None` keeps it exact.
    pub rho_b: Option<f64>,
    /// The ε schedule that reaches `eps`; `None` runs every iteration at `eps`.
    pub eps_scaling: Option<EpsScaling>,
    /// Iterations at most (each updates `f`, then `g`).
    pub max_iterations: usize,
    /// Stop once the marginal error is at most this; `None` runs `max_iterations` with no
    /// host readback.
    pub tolerance: Option<f64>,
    /// Iterations between two checks of the marginal error (once ε has reached `eps`).
    pub check_every: usize,
    /// `None`: a dense cost matrix is the first input. `Some`: point clouds `x`, `y` are,
    /// and the cost between them is computed on the fly.
    pub points: Option<PointCost>,
    /// `Some`: gradients flow through the potentials by implicit differentiation, solving
    /// the adjoint linear system this way ([`SinkhornAdjoint`](crate::ops::ot::SinkhornAdjoint)). `None`:
    /// the outputs are constants to the gradient.
    pub implicit: Option<ImplicitSolve>,
}

/// How the adjoint system of implicit Sinkhorn gradients is solved: by conjugate gradients
/// in the inner product weighted by the plan's inverse column marginal, where the system
/// is symmetric and positive (semi-)definite, stopping once the residual has fallen by
/// `tolerance` relative to its start or after `max_iterations` steps.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ImplicitSolve {
    /// Conjugate-gradient steps at most.
    pub max_iterations: usize,
    /// Relative residual (weighted 2-norm) at which the solve stops. In `f32` the residual
    /// stalls near 1e-6, so a smaller tolerance only runs every iteration.
    pub tolerance: f64,
}

impl Default for ImplicitSolve {
    /// 200 iterations at most, relative residual 1e-6: a problem that needs `T` Sinkhorn
    /// iterations usually needs about `√T` conjugate-gradient steps.
    fn default() -> Self {
        ImplicitSolve {
            max_iterations: 200,
            tolerance: 1e-6,
        }
    }
}

impl SinkhornSpec {
    /// The ε of iteration `t`: `max(eps, start · factor^t)` under ε-scaling.
    pub fn eps_at(&self, t: usize) -> f64 {
        match self.eps_scaling {
            Some(s) => (s.start * s.factor.powi(t.min(i32::MAX as usize) as i32)).max(self.eps),
            None => self.eps,
        }
    }

    /// How many distinct ε the schedule uses: iteration `t` runs at level
    /// `min(t, levels − 1)`, the last level being `eps` itself.
    pub fn eps_levels(&self) -> usize {
        let mut t = 0;
        while self.eps_at(t) > self.eps && t < self.max_iterations {
            t += 1;
        }
        t + 1
    }

    /// The factor `ρ / (ρ + ε)` an update is scaled by (1 for an exact marginal).
    pub fn damping(rho: Option<f64>, eps: f64) -> f64 {
        rho.map_or(1.0, |r| r / (r + eps))
    }

    /// Whether the loop checks the marginal error after iteration `t` (0-based): every
    /// `check_every` iterations once ε is final, and after the last one.
    pub fn checks_after(&self, t: usize) -> bool {
        self.tolerance.is_some()
            && self.eps_at(t) == self.eps
            && ((t + 1).is_multiple_of(self.check_every.max(1)) || t + 1 == self.max_iterations)
    }
}

/// Relative difference of total masses past which a balanced problem is refused.
pub const MASS_TOLERANCE: f64 = 1e-4;

impl SinkhornSpec {
    /// Refuses a problem with no mass on a side, and (when both marginals are exact)
    /// unequal masses; `sa` and `sb` are problem `problem`'s total weights.
    pub fn check_masses(&self, problem: usize, sa: f64, sb: f64) -> Result<()> {
        if sa <= 0.0 || sb <= 0.0 {
            return Err(Error::InvalidValue {
                op: "sinkhorn",
                detail: format!(
                    "problem {problem} has total masses Σa = {sa}, Σb = {sb}: both must be positive"
                ),
            });
        }
        let balanced = self.rho_a.is_none() && self.rho_b.is_none();
        if balanced && (sa - sb).abs() > MASS_TOLERANCE * sa.max(sb) {
            return Err(Error::InvalidValue {
                op: "sinkhorn",
                detail: format!(
                    "problem {problem} is balanced but Σa = {sa} and Σb = {sb} differ by more than \
                     {MASS_TOLERANCE} relative: normalise the weights, or set rho_a or rho_b for an \
                     unbalanced problem"
                ),
            });
        }
        Ok(())
    }
}

/// The largest error, NaN if any is.
pub fn worst_error(errors: &[f64]) -> f64 {
    errors.iter().fold(0.0, |w, &e| {
        if e.is_nan() || w.is_nan() {
            f64::NAN
        } else {
            w.max(e)
        }
    })
}

/// Whether every problem's error is within `tolerance` (never, without one or with NaN).
pub fn within_tolerance(errors: &[f64], tolerance: Option<f64>) -> bool {
    let w = worst_error(errors);
    tolerance.is_some_and(|t| w <= t)
}

/// The error of a loop that ended above its tolerance.
pub fn not_converged(iterations: usize, error: f64, tolerance: f64) -> Error {
    Error::NotConverged {
        op: "sinkhorn",
        iterations,
        error,
        tolerance,
        hint: if error.is_nan() {
            "the error is NaN: check the cost and warm start for non-finite values"
        } else {
            "allow more iterations, raise eps, or start from an eps_scaling schedule"
        },
    }
}
