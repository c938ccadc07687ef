//! Implicit differentiation of a converged Sinkhorn solve. The potentials `z = (f, g)` are
//! a fixed point `z = T(z, θ)` of one iteration at the final ε, `θ` being the cost (or the
//! points) and the weights. Differentiating that identity gives the vector-Jacobian
//! product `θ̄ = (∂T/∂θ)ᵀ w` with `(I − ∂T/∂z)ᵀ w = z̄`: one linear solve
//! ([`SinkhornAdjoint`](crate::ops::ot::SinkhornAdjoint)) and one pull-back through a single iteration, built here from
//! the same half-steps the unrolled solver uses (so both backends and both geometries get
//! it from ops they already have).

use crate::{Graph, Op, Result, SinkhornSpec, SoftminAxis, Tensor};

impl Graph {
    /// One Sinkhorn half-step at `eps`: `λ · softmin(C, log_w + pot/eps)` per row
    /// (`rows`, giving `f` from `g`) or per column (giving `g` from `f`), over the dense
    /// cost `sources[0]` or the points `sources[0..2]`.
    pub(crate) fn sinkhorn_half_step(
        &self,
        spec: &SinkhornSpec,
        sources: &[Tensor],
        eps: f64,
        rows: bool,
        (log_w, pot): (Tensor, Tensor),
    ) -> Result<Tensor> {
        let soft = self.sinkhorn_soft_min(spec, sources, eps, rows, (log_w, pot))?;
        self.sinkhorn_damp(if rows { spec.rho_a } else { spec.rho_b }, eps, soft)
    }

    /// `soft` scaled by `ρ / (ρ + eps)` for a KL-penalised marginal (no node otherwise).
    fn sinkhorn_damp(&self, rho: Option<f64>, eps: f64, soft: Tensor) -> Result<Tensor> {
        match rho {
            Some(_) => {
                let damping = self.scalar(SinkhornSpec::damping(rho, eps), self.dtype(soft)?)?;
                self.mul(soft, damping)
            }
            None => Ok(soft),
        }
    }

    /// The soft minimum of a half-step, before its damping.
    fn sinkhorn_soft_min(
        &self,
        spec: &SinkhornSpec,
        sources: &[Tensor],
        eps: f64,
        rows: bool,
        (log_w, pot): (Tensor, Tensor),
    ) -> Result<Tensor> {
        let h = self.add(log_w, self.div(pot, self.scalar(eps, self.dtype(pot)?)?)?)?;
        match (spec.points, rows) {
            (None, true) => self.softmin(sources[0], h, eps, SoftminAxis::PerRow),
            (None, false) => self.softmin(sources[0], h, eps, SoftminAxis::PerColumn),
            (Some(cost), true) => self.point_softmin(sources[0], sources[1], h, eps, cost),
            (Some(cost), false) => self.point_softmin(sources[1], sources[0], h, eps, cost),
        }
    }

    /// The gradients of an implicit [`Sinkhorn`](crate::ops::ot::Sinkhorn) node's inputs (cost or points, `a`,
    /// `b`, then the warm start, which gets none) from the cotangents of its potentials.
    pub(crate) fn sinkhorn_implicit_vjp(
        &self,
        spec: &SinkhornSpec,
        inputs: &[Tensor],
        (f, g): (Tensor, Tensor),
        (vf, vg): (Option<Tensor>, Option<Tensor>),
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let mut grads = vec![None; inputs.len()];
        let sources = if spec.points.is_some() { 2 } else { 1 };
        let wanted: Vec<usize> = (0..sources + 2).filter(|&k| needs[k]).collect();
        if wanted.is_empty() || (vf.is_none() && vg.is_none()) {
            return Ok(grads);
        }
        let (a, b) = (inputs[sources], inputs[sources + 1]);
        // The solve and the pull-back see the potentials as data, not as functions of θ.
        let (f, g) = (self.detach(f)?, self.detach(g)?);
        let vf = vf.map_or_else(|| self.zeros_like(f), Ok)?;
        let vg = vg.map_or_else(|| self.zeros_like(g), Ok)?;
        let sources = &inputs[..sources];
        // One iteration at the final ε from the solved potentials. Its soft minima are
        // also what the solve normalises the plan with.
        let (log_a, log_b) = (self.log(a)?, self.log(b)?);
        let s = self.sinkhorn_soft_min(spec, sources, spec.eps, true, (log_b, g))?;
        let t = self.sinkhorn_soft_min(spec, sources, spec.eps, false, (log_a, f))?;
        let mut args = sources.to_vec();
        args.extend([a, b, f, g, s, t, vf, vg]);
        let w = self.push(
            Op::Kernel(std::sync::Arc::new(super::SinkhornAdjoint(*spec))),
            &args,
            vec![self.ty(f)?, self.ty(g)?],
        )?;
        let t_f = self.sinkhorn_damp(spec.rho_a, spec.eps, s)?;
        let t_g = self.sinkhorn_damp(spec.rho_b, spec.eps, t)?;
        let wrt: Vec<Tensor> = wanted.iter().map(|&k| inputs[k]).collect();
        let pulled = self.vjp(&[t_f, t_g], &[w[0], w[1]], &wrt)?;
        for (k, d) in wanted.into_iter().zip(pulled) {
            grads[k] = Some(d);
        }
        Ok(grads)
    }
}
