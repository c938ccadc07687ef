//! Entropic optimal transport by log-domain Sinkhorn iterations over a dense cost, built
//! from `softmin` half-steps, and the quantities read off the potentials: the plan, the
//! transport cost, the entropic objective and the debiased Sinkhorn divergence.
//!
//! Conventions (those of POT with `reg_type = "kl"`): for weights `a [.., n]`,
//! `b [.., m]`, cost `C [.., n, m]` and `eps > 0`, the problem is
//! `min_P ⟨P, C⟩ + eps·KL(P | a⊗b) + ρ_a·KL(P1 | a) + ρ_b·KL(Pᵀ1 | b)`, the marginal terms
//! present only when unbalanced (as hard constraints when balanced). Potentials `f [.., n]`,
//! `g [.., m]` give the plan `P_ij = a_i b_j exp((f_i + g_j − C_ij) / eps)`.

use super::point_dims;
use crate::builder::{require_float, require_positive, shape_error};
use crate::{
    DType, EpsScaling, Error, Graph, ImplicitSolve, Op, PointCost, Result, SinkhornSpec, Tensor,
    TensorType,
};

/// How gradients flow back through a Sinkhorn solve.
///
/// | | gradient of | exact when | costs |
/// |---|---|---|---|
/// | `Envelope` | the entropic objective only (potentials are constants) | converged | nothing extra |
/// | `Unrolled` | anything | always (for the iterations run) | the iterations again, all kept in memory |
/// | `Implicit` | anything | converged | one linear solve per backward pass |
///
/// Use `Envelope` for [`Graph::ot_objective`] and [`Graph::sinkhorn_divergence`] losses;
/// `Implicit` when the loss reads the potentials, the plan or the transport cost;
/// `Unrolled` to differentiate a deliberately short, unconverged solve.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub enum OtGradient {
    /// The potentials are constants to the gradient (the envelope theorem): the entropic
    /// objective's gradient is then exact at convergence (`∂/∂C = P`), and costs nothing
    /// beyond evaluating the objective. The iterations run inside one [`Sinkhorn`](crate::ops::ot::Sinkhorn)
    /// node, which can stop on a tolerance.
    #[default]
    Envelope,
    /// Back through every iteration, as written: exact for the finite number of
    /// iterations run, at the memory and time of that many steps again. The graph holds
    /// every iteration, so it needs a fixed iteration count (no tolerance) and a dense
    /// cost.
    Unrolled,
    /// Implicit differentiation of the fixed point: the gradient of `f` and `g` is that of
    /// the converged solution whatever path the iterations took (ε-scaling, warm start),
    /// found by one linear solve at the final ε (conjugate gradients; each step costs about
    /// one Sinkhorn iteration). Works with a tolerance and with point clouds (online,
    /// memory O(n + m)). For a balanced problem the potentials are only defined up to a
    /// shift `(f + k, g − k)`; a loss that depends on that shift gets the gradient of its
    /// shift-free part.
    Implicit(ImplicitSolve),
}

impl OtGradient {
    /// Implicit gradients with the default solve.
    pub fn implicit() -> OtGradient {
        OtGradient::Implicit(ImplicitSolve::default())
    }
}

/// Options of [`Graph::sinkhorn`] and [`Graph::sinkhorn_points`].
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SinkhornOptions {
    /// The entropic regularisation, in the cost's units.
    pub eps: f64,
    /// Iterations (each updates `f`, then `g`); the most that run when `tolerance` is set.
    pub iterations: usize,
    /// KL penalty on the first marginal; `None` keeps it exact (balanced).
    pub rho_a: Option<f64>,
    /// KL penalty on the second marginal; `None` keeps it exact.
    pub rho_b: Option<f64>,
    /// Start at a coarser ε and shrink it geometrically to `eps`; `None` uses `eps`
    /// throughout.
    pub eps_scaling: Option<EpsScaling>,
    /// Stop once the marginal error (see [`Graph::sinkhorn`]) is at most this, and fail
    /// the run with [`Error::NotConverged`] if `iterations` pass first. `None` runs all
    /// `iterations` with no host readback.
    pub tolerance: Option<f64>,
    /// Iterations between two checks of the marginal error: each check costs half an
    /// iteration of work and one scalar readback.
    pub check_every: usize,
    /// How gradients flow back through the solve.
    pub gradient: OtGradient,
}

impl SinkhornOptions {
    /// Balanced, no ε-scaling, a fixed iteration count, envelope gradients.
    pub fn new(eps: f64, iterations: usize) -> Self {
        SinkhornOptions {
            eps,
            iterations,
            rho_a: None,
            rho_b: None,
            eps_scaling: None,
            tolerance: None,
            check_every: 10,
            gradient: OtGradient::Envelope,
        }
    }

    /// Stops at marginal error `tolerance`, with `iterations` as the most allowed.
    pub fn with_tolerance(self, tolerance: f64) -> Self {
        SinkhornOptions {
            tolerance: Some(tolerance),
            ..self
        }
    }

    fn spec(&self, points: Option<PointCost>) -> SinkhornSpec {
        SinkhornSpec {
            eps: self.eps,
            rho_a: self.rho_a,
            rho_b: self.rho_b,
            eps_scaling: self.eps_scaling,
            max_iterations: self.iterations,
            tolerance: self.tolerance,
            check_every: self.check_every,
            points,
            implicit: match self.gradient {
                OtGradient::Implicit(solve) => Some(solve),
                _ => None,
            },
        }
    }

    fn validate(&self, op: &'static str) -> Result<()> {
        require_positive(op, "eps", self.eps)?;
        for (name, rho) in [("rho_a", self.rho_a), ("rho_b", self.rho_b)] {
            if let Some(r) = rho {
                require_positive(op, name, r)?;
            }
        }
        if let Some(t) = self.tolerance {
            require_positive(op, "tolerance", t)?;
        }
        if self.check_every == 0 {
            return Err(shape_error(op, "check_every must be at least 1".into()));
        }
        if let OtGradient::Implicit(solve) = self.gradient {
            require_positive(op, "the implicit solve's tolerance", solve.tolerance)?;
            if solve.max_iterations == 0 {
                return Err(shape_error(
                    op,
                    "the implicit solve needs max_iterations of at least 1".into(),
                ));
            }
        }
        if let Some(s) = self.eps_scaling {
            require_positive(op, "eps_scaling.start", s.start)?;
            if !(s.factor > 0.0 && s.factor < 1.0) {
                return Err(shape_error(
                    op,
                    format!(
                        "eps_scaling.factor = {} must lie strictly between 0 and 1",
                        s.factor
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Where a solved problem's cost comes from.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum OtGeometry {
    /// A dense `[.., n, m]` cost matrix.
    Dense(Tensor),
    /// Point clouds `x [.., n, d]` and `y [.., m, d]`, the cost computed on the fly.
    Points {
        /// The first marginal's points.
        x: Tensor,
        /// The second marginal's points.
        y: Tensor,
        /// The ground cost between two points.
        cost: PointCost,
    },
}

/// What [`Graph::sinkhorn`] returns: the problem it solved, its potentials, and how the
/// solve went.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct OtSolution {
    /// `[.., n]` potential of the first marginal.
    pub f: Tensor,
    /// `[.., m]` potential of the second marginal.
    pub g: Tensor,
    /// Where the cost came from: the dense matrix or the point clouds.
    pub geometry: OtGeometry,
    /// `[.., n]` weights of the first marginal.
    pub a: Tensor,
    /// `[.., m]` weights of the second marginal.
    pub b: Tensor,
    /// The options solved with; the plan and objective read `eps` and the marginal
    /// penalties from them.
    pub options: SinkhornOptions,
    /// `[..]` final marginal error per problem (`None` when unrolled).
    pub error: Option<Tensor>,
    /// `[]` (`u32`) iterations run (`None` when unrolled).
    pub iterations: Option<Tensor>,
}

impl Graph {
    /// Solves entropic optimal transport between weights `a [.., n]` and `b [.., m]` for a
    /// dense cost `[.., n, m]` (leading dimensions: independent problems, solved together)
    /// by log-domain Sinkhorn iterations:
    ///
    /// `f ← λ_a · softmin_eps(C, log b + g/eps)` per row, then
    /// `g ← λ_b · softmin_eps(C, log a + f/eps)` per column,
    ///
    /// with `λ = ρ / (ρ + eps)` for a KL-penalised marginal and 1 for an exact one. `warm`
    /// gives starting potentials `(f, g)` (zeros otherwise; only `g` is read unless no
    /// iteration runs). Weights must be non-negative, with positive total mass; balanced
    /// problems need equal total mass (checked at run time when a tolerance is set).
    ///
    /// The marginal error is the L1 distance between the plan's first marginal and its
    /// target, `Σ_i |(P1)_i − a_i exp(−f_i/ρ_a)|` (the exponential is 1 for an exact
    /// marginal), after an iteration (whose `g` update makes the second marginal exact).
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, SinkhornOptions};
    /// let g = Graph::new();
    /// let cost = g.input("cost", [200, 300], DType::F32)?;
    /// let a = g.input("a", [200], DType::F32)?;
    /// let b = g.input("b", [300], DType::F32)?;
    /// // At most 1000 iterations, stopping once the marginal error is below 1e-5.
    /// let options = SinkhornOptions::new(0.05, 1000).with_tolerance(1e-5);
    /// let ot = g.sinkhorn(cost, a, b, None, options)?;
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
        self.operands("sinkhorn", &[("cost", cost), ("a", a), ("b", b)])?;
        if let Some((first, second)) = warm {
            self.operands("sinkhorn", &[("warm f", first), ("warm g", second)])?;
        }
        let op = "sinkhorn";
        let ct = self.ty(cost)?;
        require_float(op, ct.dtype)?;
        options.validate(op)?;
        let dims = ct.shape.dims();
        if dims.len() < 2 || dims[dims.len() - 2] == 0 || dims[dims.len() - 1] == 0 {
            return Err(shape_error(
                op,
                format!(
                    "cost {} must be [.., n, m] with n and m at least 1",
                    ct.shape
                ),
            ));
        }
        let batch = &dims[..dims.len() - 2];
        let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        self.check_marginals(op, (batch, ct.dtype, &ct.shape), (a, b), warm, (n, m))?;
        if options.gradient == OtGradient::Unrolled {
            return self.sinkhorn_unrolled(cost, a, b, warm, options);
        }
        self.sinkhorn_loop(
            &[cost],
            (a, b),
            warm,
            options,
            OtGeometry::Dense(cost),
            (batch, n, m),
        )
    }

    /// [`Graph::sinkhorn`] between point clouds `x [.., n, d]` and `y [.., m, d]`, with
    /// the cost between points computed on the fly: memory is O(n + m), so `n` and `m`
    /// can be far past what a dense cost would fit. Gradients are the envelope theorem's
    /// or implicit ones ([`OtGradient::Unrolled`] needs a dense cost).
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, PointCost, SinkhornOptions};
    /// let g = Graph::new();
    /// let x = g.input("x", [100_000, 3], DType::F32)?;
    /// let y = g.input("y", [80_000, 3], DType::F32)?;
    /// let (a, b) = (g.input("a", [100_000], DType::F32)?, g.input("b", [80_000], DType::F32)?);
    /// let options = SinkhornOptions::new(0.01, 500).with_tolerance(1e-4);
    /// let ot = g.sinkhorn_points(x, y, a, b, None, PointCost::SqEuclidean, options)?;
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn sinkhorn_points(
        &self,
        x: Tensor,
        y: Tensor,
        a: Tensor,
        b: Tensor,
        warm: Option<(Tensor, Tensor)>,
        cost: PointCost,
        options: SinkhornOptions,
    ) -> Result<OtSolution> {
        self.operands("sinkhorn_points", &[("x", x), ("y", y), ("a", a), ("b", b)])?;
        if let Some((first, second)) = warm {
            self.operands("sinkhorn_points", &[("warm f", first), ("warm g", second)])?;
        }
        let op = "sinkhorn_points";
        let (xt, yt) = (self.ty(x)?, self.ty(y)?);
        require_float(op, xt.dtype)?;
        options.validate(op)?;
        let (batch, n, m, _) = point_dims(op, &xt, &yt)?;
        if n == 0 || m == 0 {
            return Err(shape_error(
                op,
                format!(
                    "x {} and y {} need at least one point each",
                    xt.shape, yt.shape
                ),
            ));
        }
        self.check_marginals(op, (&batch, xt.dtype, &xt.shape), (a, b), warm, (n, m))?;
        if options.gradient == OtGradient::Unrolled {
            return Err(shape_error(
                op,
                "unrolled gradients need a dense cost: build one with sq_euclidean_cost and \
                 call sinkhorn, or use OtGradient::Envelope or OtGradient::Implicit"
                    .into(),
            ));
        }
        self.sinkhorn_loop(
            &[x, y],
            (a, b),
            warm,
            options,
            OtGeometry::Points { x, y, cost },
            (&batch, n, m),
        )
    }

    /// Checks that `a`, `b` and the warm start fit the problem's batch, sizes and dtype.
    fn check_marginals(
        &self,
        op: &'static str,
        (batch, dtype, source): (&[usize], DType, &crate::Shape),
        (a, b): (Tensor, Tensor),
        warm: Option<(Tensor, Tensor)>,
        (n, m): (usize, usize),
    ) -> Result<()> {
        let expect = |name: &str, t: Tensor, len: usize| -> Result<()> {
            let ty = self.ty(t)?;
            let mut want = batch.to_vec();
            want.push(len);
            if ty.shape.dims() != want.as_slice() || ty.dtype != dtype {
                return Err(shape_error(
                    op,
                    format!(
                        "{name} must be {want:?} {dtype} for input {source}, got {} {}",
                        ty.shape, ty.dtype
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
        Ok(())
    }

    /// One [`Sinkhorn`](crate::ops::ot::Sinkhorn) node running the whole loop.
    fn sinkhorn_loop(
        &self,
        sources: &[Tensor],
        (a, b): (Tensor, Tensor),
        warm: Option<(Tensor, Tensor)>,
        options: SinkhornOptions,
        geometry: OtGeometry,
        (batch, n, m): (&[usize], usize, usize),
    ) -> Result<OtSolution> {
        let dtype = self.dtype(a)?;
        let (f0, g0) = match warm {
            Some(fg) => fg,
            None => (self.zeros_like(a)?, self.zeros_like(b)?),
        };
        let points = match geometry {
            OtGeometry::Dense(_) => None,
            OtGeometry::Points { cost, .. } => Some(cost),
        };
        let with = |len: usize| {
            let mut d = batch.to_vec();
            d.push(len);
            TensorType::new(d, dtype)
        };
        let mut inputs = sources.to_vec();
        inputs.extend([a, b, f0, g0]);
        let outs = self.push(
            Op::Kernel(std::sync::Arc::new(super::Sinkhorn(options.spec(points)))),
            &inputs,
            vec![
                with(n),
                with(m),
                TensorType::new(batch.to_vec(), dtype),
                TensorType::new(Vec::<usize>::new(), DType::U32),
            ],
        )?;
        Ok(OtSolution {
            f: outs[0],
            g: outs[1],
            geometry,
            a,
            b,
            options,
            error: Some(outs[2]),
            iterations: Some(outs[3]),
        })
    }

    /// The loop written out as graph nodes, so gradients flow through every iteration.
    fn sinkhorn_unrolled(
        &self,
        cost: Tensor,
        a: Tensor,
        b: Tensor,
        warm: Option<(Tensor, Tensor)>,
        options: SinkhornOptions,
    ) -> Result<OtSolution> {
        if options.tolerance.is_some() {
            return Err(shape_error(
                "sinkhorn",
                "unrolled gradients need a fixed iteration count: set tolerance to None".into(),
            ));
        }
        let spec = options.spec(None);
        let (mut f, mut g) = match warm {
            Some(fg) => fg,
            None => (self.zeros_like(a)?, self.zeros_like(b)?),
        };
        let (log_a, log_b) = (self.log(a)?, self.log(b)?);
        for t in 0..options.iterations {
            let eps = spec.eps_at(t);
            f = self.sinkhorn_half_step(&spec, &[cost], eps, true, (log_b, g))?;
            g = self.sinkhorn_half_step(&spec, &[cost], eps, false, (log_a, f))?;
        }
        Ok(OtSolution {
            f,
            g,
            geometry: OtGeometry::Dense(cost),
            a,
            b,
            options,
            error: None,
            iterations: None,
        })
    }

    /// The solution's cost matrix: the dense input, or computed from the points (which
    /// materialises `[.., n, m]`: for small point problems).
    pub fn ot_cost_matrix(&self, s: &OtSolution) -> Result<Tensor> {
        self.check_solution("ot_cost_matrix", s)?;
        match s.geometry {
            OtGeometry::Dense(cost) => Ok(cost),
            OtGeometry::Points { x, y, cost } => self.point_cost_matrix(x, y, cost),
        }
    }

    /// Checks an [`OtSolution`] (its fields are public, so it may be built by hand) before
    /// anything indexes it: a cost `[.., n, m]` (or clouds `[.., n, d]`, `[.., m, d]`),
    /// `a` and `f` `[.., n]`, `b` and `g` `[.., m]`, all of one float dtype.
    fn check_solution(&self, op: &'static str, s: &OtSolution) -> Result<()> {
        let (batch, n, m, dtype) = match s.geometry {
            OtGeometry::Dense(cost) => {
                let t = self.ty(cost)?;
                let d = t.shape.dims();
                if d.len() < 2 {
                    return Err(Error::Shape {
                        op,
                        detail: format!("the cost {} must be [.., n, m]", t.shape),
                    });
                }
                (
                    d[..d.len() - 2].to_vec(),
                    d[d.len() - 2],
                    d[d.len() - 1],
                    t.dtype,
                )
            }
            OtGeometry::Points { x, y, .. } => {
                let xt = self.ty(x)?;
                let (batch, n, m, _) = point_dims(op, &xt, &self.ty(y)?)?;
                (batch, n, m, xt.dtype)
            }
        };
        require_float(op, dtype)?;
        let with = |last: usize| {
            let mut v = batch.clone();
            v.push(last);
            v
        };
        for (name, t, want) in [
            ("a", s.a, with(n)),
            ("f", s.f, with(n)),
            ("b", s.b, with(m)),
            ("g", s.g, with(m)),
        ] {
            let ty = self.ty(t)?;
            if ty.shape.dims() != want.as_slice() || ty.dtype != dtype {
                return Err(Error::Shape {
                    op,
                    detail: format!(
                        "the solution's `{name}` must be {dtype} {want:?} for its cost, got {ty}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The dense `[.., n, m]` cost between point clouds `x [.., n, d]` and `y [.., m, d]`.
    pub fn point_cost_matrix(&self, x: Tensor, y: Tensor, cost: PointCost) -> Result<Tensor> {
        self.operands("point_cost_matrix", &[("x", x), ("y", y)])?;
        let d2 = self.sq_euclidean_cost(x, y)?;
        match cost {
            PointCost::SqEuclidean => Ok(d2),
            PointCost::Euclidean => {
                let zero = self.scalar(0.0, self.dtype(x)?)?;
                self.sqrt(self.maximum(d2, zero)?)
            }
        }
    }

    /// The transport plan `P_ij = a_i b_j exp((f_i + g_j − C_ij) / eps)`, `[.., n, m]`.
    pub fn ot_plan(&self, s: &OtSolution) -> Result<Tensor> {
        self.check_solution("ot_plan", s)?;
        let cost = self.ot_cost_matrix(s)?;
        let rank = self.shape(cost)?.rank();
        let ab = self.mul(
            self.unsqueeze(s.a, rank - 1)?,
            self.unsqueeze(s.b, rank - 2)?,
        )?;
        let fg = self.add(
            self.unsqueeze(s.f, rank - 1)?,
            self.unsqueeze(s.g, rank - 2)?,
        )?;
        let eps = self.scalar(s.options.eps, self.dtype(cost)?)?;
        let log_kernel = self.div(self.sub(fg, cost)?, eps)?;
        self.mul(ab, self.exp(log_kernel)?)
    }

    /// `⟨P, C⟩` per problem (`[..]`): the quantity POT's `sinkhorn2` returns. It
    /// materialises the plan, also for point clouds.
    pub fn ot_transport_cost(&self, s: &OtSolution) -> Result<Tensor> {
        let cost = self.ot_cost_matrix(s)?;
        self.sum_matrix(self.mul(self.ot_plan(s)?, cost)?)
    }

    /// `[.., n, m]` summed over its last two axes.
    fn sum_matrix(&self, x: Tensor) -> Result<Tensor> {
        self.sum(self.sum(x, -1)?, -1)
    }

    /// The entropic objective per problem (`[..]`), as the dual value
    /// `⟨a, φ_a(f)⟩ + ⟨b, φ_b(g)⟩ − eps·⟨a⊗b, exp((f⊕g − C)/eps) − 1⟩`, with `φ(f) = f` for an
    /// exact marginal and `φ(f) = ρ(1 − exp(−f/ρ))` for a KL-penalised one. At the optimum
    /// it equals the primal `⟨P, C⟩ + eps·KL(P | a⊗b) + ...`; with [`OtGradient::Envelope`]
    /// its gradient is the envelope theorem's (`∂/∂C = P`). For point clouds the plan's
    /// mass comes from one more online pass, so memory stays O(n + m).
    pub fn ot_objective(&self, s: &OtSolution) -> Result<Tensor> {
        self.check_solution("ot_objective", s)?;
        let dtype = self.dtype(s.a)?;
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
        let dot = |w: Tensor, x: Tensor| self.sum(self.mul(w, x)?, -1);
        let fa = dot(s.a, phi(s.f, s.options.rho_a)?)?;
        let gb = dot(s.b, phi(s.g, s.options.rho_b)?)?;
        // ⟨a⊗b, exp(..) − 1⟩ = Σ P − (Σ a)(Σ b).
        let mass = match s.geometry {
            OtGeometry::Dense(_) => self.sum_matrix(self.ot_plan(s)?)?,
            OtGeometry::Points { x, y, cost } => {
                // Row i of the plan holds a_i exp((f_i − s_i)/eps), s the row softmin.
                let eps = scalar(s.options.eps)?;
                let h = self.add(self.log(s.b)?, self.div(s.g, eps)?)?;
                let soft = self.point_softmin(x, y, h, s.options.eps, cost)?;
                let rows = self.exp(self.div(self.sub(s.f, soft)?, eps)?)?;
                dot(s.a, rows)?
            }
        };
        let ab = self.mul(self.sum(s.a, -1)?, self.sum(s.b, -1)?)?;
        let excess = self.sub(mass, ab)?;
        self.sub(self.add(fa, gb)?, self.mul(excess, scalar(s.options.eps)?)?)
    }

    /// Squared Euclidean costs `|x_i − y_j|²` between point clouds `x [.., n, d]` and
    /// `y [.., m, d]`, as a dense `[.., n, m]` matrix (differentiable in both).
    pub fn sq_euclidean_cost(&self, x: Tensor, y: Tensor) -> Result<Tensor> {
        self.operands("sq_euclidean_cost", &[("x", x), ("y", y)])?;
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
        let xx = self.sum_keepdim(self.mul(x, x)?, -1)?;
        let yy = self.unsqueeze(self.sum(self.mul(y, y)?, -1)?, xr - 2)?;
        let xy = self.matmul(x, self.transpose(y, -1, -2)?)?;
        let two = self.scalar(2.0, xt.dtype)?;
        self.sub(self.add(xx, yy)?, self.mul(xy, two)?)
    }

    /// The debiased Sinkhorn divergence between weighted point clouds `(x [.., n, d], a)`
    /// and `(y [.., m, d], b)`: `S = OT(a, b) − ½ OT(a, a) − ½ OT(b, b)`, each `OT` the
    /// entropic objective of [`Graph::ot_objective`] (`[..]`). `S` is zero when the clouds
    /// are equal and positive otherwise, and its gradient moves `x` towards `y`. The three
    /// problems run online (O(n + m) memory) unless `options` asks for unrolled gradients,
    /// which need dense costs.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, PointCost, SinkhornOptions};
    /// let g = Graph::new();
    /// let (x, a) = (g.input("x", [500, 2], DType::F32)?, g.input("a", [500], DType::F32)?);
    /// let (y, b) = (g.input("y", [400, 2], DType::F32)?, g.input("b", [400], DType::F32)?);
    /// let options = SinkhornOptions::new(0.01, 100);
    /// let s = g.sinkhorn_divergence((x, a), (y, b), PointCost::SqEuclidean, options)?;
    /// let dx = g.grad(s, &[x])?[0]; // the flow that moves x onto y
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn sinkhorn_divergence(
        &self,
        (x, a): (Tensor, Tensor),
        (y, b): (Tensor, Tensor),
        cost: PointCost,
        options: SinkhornOptions,
    ) -> Result<Tensor> {
        let ot = |p: Tensor, wp: Tensor, q: Tensor, wq: Tensor| -> Result<Tensor> {
            let solution = if options.gradient == OtGradient::Unrolled {
                let matrix = self.point_cost_matrix(p, q, cost)?;
                self.sinkhorn(matrix, wp, wq, None, options)?
            } else {
                self.sinkhorn_points(p, q, wp, wq, None, cost, options)?
            };
            self.ot_objective(&solution)
        };
        let xy = ot(x, a, y, b)?;
        let half = self.scalar(0.5, self.dtype(x)?)?;
        let self_terms = self.add(ot(x, a, x, a)?, ot(y, b, y, b)?)?;
        self.sub(xy, self.mul(self_terms, half)?)
    }
}
