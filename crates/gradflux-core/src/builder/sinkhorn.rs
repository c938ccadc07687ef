//! Entropic optimal transport by log-domain Sinkhorn iterations over a dense cost, built
//! from `softmin` half-steps, and the quantities read off the potentials: the plan, the
//! transport cost, the entropic objective and the debiased Sinkhorn divergence.
//!
//! Conventions (those of POT with `reg_type = "kl"`): for weights `a [.., n]`,
//! `b [.., m]`, cost `C [.., n, m]` and `eps > 0`, the problem is
//! `min_P ⟨P, C⟩ + eps·KL(P | a⊗b) + ρ_a·KL(P1 | a) + ρ_b·KL(Pᵀ1 | b)`, the marginal terms
//! present only when unbalanced (as hard constraints when balanced). Potentials `f [.., n]`,
//! `g [.., m]` give the plan `P_ij = a_i b_j exp((f_i + g_j − C_ij) / eps)`.

use super::{require_float, require_positive, shape_error};
use crate::{Error, Graph, Result, SoftminAxis, Tensor};

/// How gradients flow back through a Sinkhorn solve.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum OtGradient {
    /// The potentials are constants to the gradient (the envelope theorem): the entropic
    /// objective's gradient is then exact at convergence (`∂/∂C = P`), and costs nothing
    /// beyond evaluating the objective.
    #[default]
    Envelope,
    /// Back through every iteration, as written: exact for the finite number of
    /// iterations run, at the memory and time of that many steps again.
    Unrolled,
}

/// Geometric ε-scaling: iteration `t` uses `max(eps, start · factor^t)`, so early
/// iterations move mass at a coarse scale and later ones refine it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct EpsScaling {
    pub start: f64,
    pub factor: f64,
}

/// Options of [`Graph::sinkhorn`].
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SinkhornOptions {
    /// The entropic regularisation, in the cost's units.
    pub eps: f64,
    /// Iterations (each updates `f`, then `g`).
    pub iterations: usize,
    /// KL penalty on the first marginal; `None` keeps it exact (balanced).
    pub rho_a: Option<f64>,
    /// KL penalty on the second marginal; `None` keeps it exact.
    pub rho_b: Option<f64>,
    pub eps_scaling: Option<EpsScaling>,
    pub gradient: OtGradient,
}

impl SinkhornOptions {
    /// Balanced, no ε-scaling, envelope gradients.
    pub fn new(eps: f64, iterations: usize) -> Self {
        SinkhornOptions {
            eps,
            iterations,
            rho_a: None,
            rho_b: None,
            eps_scaling: None,
            gradient: OtGradient::Envelope,
        }
    }

    /// The ε of iteration `t`.
    fn eps_at(&self, t: usize) -> f64 {
        match self.eps_scaling {
            Some(s) => (s.start * s.factor.powi(t.min(i32::MAX as usize) as i32)).max(self.eps),
            None => self.eps,
        }
    }
}

/// What [`Graph::sinkhorn`] returns: the problem it solved and its potentials.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct OtSolution {
    /// `[.., n]` potential of the first marginal.
    pub f: Tensor,
    /// `[.., m]` potential of the second marginal.
    pub g: Tensor,
    pub cost: Tensor,
    pub a: Tensor,
    pub b: Tensor,
    pub options: SinkhornOptions,
}

impl Graph {
    /// Solves entropic optimal transport between weights `a [.., n]` and `b [.., m]` for a
    /// dense cost `[.., n, m]` (leading dimensions: independent problems, solved together)
    /// by `options.iterations` log-domain Sinkhorn iterations:
    ///
    /// `f ← λ_a · softmin_eps(C, log b + g/eps)` per row, then
    /// `g ← λ_b · softmin_eps(C, log a + f/eps)` per column,
    ///
    /// with `λ = ρ / (ρ + eps)` for a KL-penalised marginal and 1 for an exact one. `warm`
    /// gives starting potentials `(f, g)` (zeros otherwise; only `g` is read unless no
    /// iteration runs). Weights must be positive; balanced problems need equal total mass.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, SinkhornOptions};
    /// let g = Graph::new();
    /// let cost = g.input("cost", [200, 300], DType::F32)?;
    /// let a = g.input("a", [200], DType::F32)?;
    /// let b = g.input("b", [300], DType::F32)?;
    /// let ot = g.sinkhorn(cost, a, b, None, SinkhornOptions::new(0.05, 100))?;
    /// let loss = g.ot_objective(&ot)?; // differentiable in cost, a and b
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn sinkhorn(
        &self,
        cost: Tensor,
        a: Tensor,
        b: Tensor,
        warm: Option<(Tensor, Tensor)>,
        options: SinkhornOptions,
    ) -> Result<OtSolution> {
        let ct = self.ty(cost)?;
        require_float("sinkhorn", ct.dtype)?;
        require_positive("sinkhorn", "eps", options.eps)?;
        for (name, rho) in [("rho_a", options.rho_a), ("rho_b", options.rho_b)] {
            if let Some(r) = rho {
                require_positive("sinkhorn", name, r)?;
            }
        }
        if let Some(s) = options.eps_scaling {
            require_positive("sinkhorn", "eps_scaling.start", s.start)?;
            if !(s.factor > 0.0 && s.factor < 1.0) {
                return Err(shape_error(
                    "sinkhorn",
                    format!(
                        "eps_scaling.factor = {} must lie strictly between 0 and 1",
                        s.factor
                    ),
                ));
            }
        }
        let dims = ct.shape.dims();
        if dims.len() < 2 || dims[dims.len() - 2] == 0 || dims[dims.len() - 1] == 0 {
            return Err(shape_error(
                "sinkhorn",
                format!(
                    "cost {} must be [.., n, m] with n and m at least 1",
                    ct.shape
                ),
            ));
        }
        let (batch, n, m) = (
            &dims[..dims.len() - 2],
            dims[dims.len() - 2],
            dims[dims.len() - 1],
        );
        let expect = |name: &str, t: Tensor, len: usize| -> Result<()> {
            let ty = self.ty(t)?;
            let mut want = batch.to_vec();
            want.push(len);
            if ty.shape.dims() != want.as_slice() || ty.dtype != ct.dtype {
                return Err(shape_error(
                    "sinkhorn",
                    format!(
                        "{name} must be {want:?} {} for cost {}, got {} {}",
                        ct.dtype, ct.shape, ty.shape, ty.dtype
                    ),
                ));
            }
            Ok(())
        };
        expect("a", a, n)?;
        expect("b", b, m)?;
        if let Some((f0, g0)) = warm {
            expect("the warm-start f", f0, n)?;
            expect("the warm-start g", g0, m)?;
        }
        let dtype = ct.dtype;
        let scalar = |v: f64| self.scalar(v, dtype);
        let (log_a, log_b) = (self.log(a)?, self.log(b)?);
        let (mut f, mut g) = match warm {
            Some(fg) => fg,
            None => (self.zeros_like(a)?, self.zeros_like(b)?),
        };
        let damp = |rho: Option<f64>, eps: f64, x: Tensor| match rho {
            Some(r) => self.mul(x, scalar(r / (r + eps))?),
            None => Ok(x),
        };
        for t in 0..options.iterations {
            let eps = options.eps_at(t);
            let h = self.add(log_b, self.div(g, scalar(eps)?)?)?;
            f = damp(
                options.rho_a,
                eps,
                self.softmin(cost, h, eps, SoftminAxis::PerRow)?,
            )?;
            let h = self.add(log_a, self.div(f, scalar(eps)?)?)?;
            g = damp(
                options.rho_b,
                eps,
                self.softmin(cost, h, eps, SoftminAxis::PerColumn)?,
            )?;
        }
        if options.gradient == OtGradient::Envelope {
            f = self.detach(f)?;
            g = self.detach(g)?;
        }
        Ok(OtSolution {
            f,
            g,
            cost,
            a,
            b,
            options,
        })
    }

    /// The transport plan `P_ij = a_i b_j exp((f_i + g_j − C_ij) / eps)`, `[.., n, m]`.
    pub fn ot_plan(&self, s: &OtSolution) -> Result<Tensor> {
        let rank = self.shape(s.cost)?.rank();
        let ab = self.mul(
            self.unsqueeze(s.a, rank - 1)?,
            self.unsqueeze(s.b, rank - 2)?,
        )?;
        let fg = self.add(
            self.unsqueeze(s.f, rank - 1)?,
            self.unsqueeze(s.g, rank - 2)?,
        )?;
        let eps = self.scalar(s.options.eps, self.dtype(s.cost)?)?;
        let log_kernel = self.div(self.sub(fg, s.cost)?, eps)?;
        self.mul(ab, self.exp(log_kernel)?)
    }

    /// `⟨P, C⟩` per problem (`[..]`): the quantity POT's `sinkhorn2` returns.
    pub fn ot_transport_cost(&self, s: &OtSolution) -> Result<Tensor> {
        self.sum_matrix(self.mul(self.ot_plan(s)?, s.cost)?)
    }

    /// `[.., n, m]` summed over its last two axes.
    fn sum_matrix(&self, x: Tensor) -> Result<Tensor> {
        self.sum(self.sum(x, -1, false)?, -1, false)
    }

    /// The entropic objective per problem (`[..]`), as the dual value
    /// `⟨a, φ_a(f)⟩ + ⟨b, φ_b(g)⟩ − eps·⟨a⊗b, exp((f⊕g − C)/eps) − 1⟩`, with `φ(f) = f` for an
    /// exact marginal and `φ(f) = ρ(1 − exp(−f/ρ))` for a KL-penalised one. At the optimum
    /// it equals the primal `⟨P, C⟩ + eps·KL(P | a⊗b) + ...`; with [`OtGradient::Envelope`]
    /// its gradient is the envelope theorem's (`∂/∂C = P`).
    pub fn ot_objective(&self, s: &OtSolution) -> Result<Tensor> {
        let dtype = self.dtype(s.cost)?;
        let scalar = |v: f64| self.scalar(v, dtype);
        let phi = |x: Tensor, rho: Option<f64>| -> Result<Tensor> {
            match rho {
                None => Ok(x),
                Some(r) => {
                    let e = self.exp(self.div(x, scalar(-r)?)?)?;
                    self.mul(self.sub(scalar(1.0)?, e)?, scalar(r)?)
                }
            }
        };
        let dot = |w: Tensor, x: Tensor| self.sum(self.mul(w, x)?, -1, false);
        let fa = dot(s.a, phi(s.f, s.options.rho_a)?)?;
        let gb = dot(s.b, phi(s.g, s.options.rho_b)?)?;
        // ⟨a⊗b, exp(..) − 1⟩ = Σ P − (Σ a)(Σ b).
        let mass = self.sum_matrix(self.ot_plan(s)?)?;
        let ab = self.mul(self.sum(s.a, -1, false)?, self.sum(s.b, -1, false)?)?;
        let excess = self.sub(mass, ab)?;
        self.sub(self.add(fa, gb)?, self.mul(excess, scalar(s.options.eps)?)?)
    }

    /// Squared Euclidean costs `|x_i − y_j|²` between point clouds `x [.., n, d]` and
    /// `y [.., m, d]`, as a dense `[.., n, m]` matrix (differentiable in both).
    pub fn sq_euclidean_cost(&self, x: Tensor, y: Tensor) -> Result<Tensor> {
        let (xt, yt) = (self.ty(x)?, self.ty(y)?);
        let (xr, yr) = (xt.shape.rank(), yt.shape.rank());
        if xr < 2 || xr != yr || xt.shape.dims()[xr - 1] != yt.shape.dims()[yr - 1] {
            return Err(Error::Shape {
                op: "sq_euclidean_cost",
                detail: format!(
                    "points must be [.., n, d] and [.., m, d] with the same d and rank, got {} \
                     and {}",
                    xt.shape, yt.shape
                ),
            });
        }
        let xx = self.sum(self.mul(x, x)?, -1, true)?;
        let yy = self.unsqueeze(self.sum(self.mul(y, y)?, -1, false)?, xr - 2)?;
        let xy = self.matmul(x, self.transpose(y, -1, -2)?)?;
        let two = self.scalar(2.0, xt.dtype)?;
        self.sub(self.add(xx, yy)?, self.mul(xy, two)?)
    }

    /// The debiased Sinkhorn divergence between weighted point clouds under the squared
    /// Euclidean cost: `S = OT(a, b) − ½ OT(a, a) − ½ OT(b, b)`, each `OT` the entropic
    /// objective of [`Graph::ot_objective`] (`[..]`). `S` is zero when the clouds are
    /// equal and positive otherwise, and its gradient moves `x` towards `y`.
    pub fn sinkhorn_divergence(
        &self,
        (x, a): (Tensor, Tensor),
        (y, b): (Tensor, Tensor),
        options: SinkhornOptions,
    ) -> Result<Tensor> {
        let ot = |p: Tensor, wp: Tensor, q: Tensor, wq: Tensor| -> Result<Tensor> {
            let cost = self.sq_euclidean_cost(p, q)?;
            self.ot_objective(&self.sinkhorn(cost, wp, wq, None, options)?)
        };
        let xy = ot(x, a, y, b)?;
        let half = self.scalar(0.5, self.dtype(x)?)?;
        let self_terms = self.add(ot(x, a, x, a)?, ot(y, b, y, b)?)?;
        self.sub(xy, self.mul(self_terms, half)?)
    }
}
