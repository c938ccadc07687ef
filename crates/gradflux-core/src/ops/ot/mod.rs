//! Entropic optimal transport: the soft minimum over a cost matrix (`softmin`) or over
//! costs computed on the fly between point clouds (`point_softmin`, with its own backward
//! kernel), Sinkhorn iterations run to convergence inside one op (a loop plan the backend
//! drives), and the adjoint solve of implicit Sinkhorn gradients. Builder methods and the
//! solver API in `build*.rs`, the problem's attributes in `spec.rs`, CPU references in
//! `cpu*.rs`, launches in `wgsl*.rs`, kernels under `shaders/ot/`.

mod build;
mod build_implicit;
mod build_sinkhorn;
pub mod cpu;
pub mod cpu_adjoint;
pub mod cpu_points;
pub mod cpu_sinkhorn;
pub mod spec;
pub mod wgsl;
pub mod wgsl_adjoint;
pub mod wgsl_sinkhorn;

pub(crate) use build::point_dims;
pub use build_sinkhorn::{OtGeometry, OtGradient, OtSolution, SinkhornOptions};

use std::sync::Arc;

use crate::kernel::launch::{matrix_sizes, point_sizes};
use crate::kernel::loop_trips_families as trips;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, LoopPlan, LowerCx, Lowering, Schedule, StopCheck, VjpCx};
use crate::{
    not_converged, within_tolerance, Error, PointCost, Result, SinkhornSpec, SoftminAxis, Tensor,
    TensorData, TensorType,
};

shader!(SOFTMIN, "ot/softmin.wgsl");
shader!(POINT_SOFTMIN, "ot/point_softmin.wgsl");
shader!(POINT_SOFTMIN_GRAD, "ot/point_softmin_grad.wgsl");
shader!(SINKHORN, "ot/sinkhorn.wgsl");
shader!(PLAN_MATVEC, "ot/plan_matvec.wgsl");
shader!(SINKHORN_ADJOINT, "ot/sinkhorn_adjoint.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[
    SOFTMIN,
    POINT_SOFTMIN,
    POINT_SOFTMIN_GRAD,
    SINKHORN,
    PLAN_MATVEC,
    SINKHORN_ADJOINT,
];

/// The entropic soft minimum of optimal transport: inputs `cost [.., n, m]` and `h`; for
/// [`SoftminAxis::PerRow`], `out[.., i] = −eps · log Σ_j exp(h[.., j] − cost[.., i, j] /
/// eps)`, and symmetrically per column. Batch dimensions must match.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Softmin {
    /// The regularisation ε, positive, in the cost's units.
    pub eps: f64,
    /// Whether each row or each column of the cost is reduced.
    pub axis: SoftminAxis,
}

/// The soft minimum of [`Softmin`] per row, over a cost computed on the fly between
/// points: inputs `x [.., n, d]`, `y [.., m, d]`, `h [.., m]`; `out[.., i] = −eps · log
/// Σ_j exp(h[.., j] − cost(x_i, y_j) / eps)`. Swapping `x` and `y` gives the per-column
/// update. Memory is O(n + m).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PointSoftmin {
    /// The regularisation ε, positive, in the cost's units.
    pub eps: f64,
    /// The ground cost, computed from the points' coordinates.
    pub cost: PointCost,
}

/// The vector-Jacobian product of [`PointSoftmin`]: inputs `x`, `y`, `h`, its output `out`
/// and the cotangent `gy [.., n]`; outputs `dx`, `dy`, `dh`. With the weights
/// `w_ij = exp(h_j − c_ij/eps + out_i/eps)`: `dx_i = gy_i Σ_j w_ij ∂c_ij/∂x_i`,
/// `dy_j = −Σ_i gy_i w_ij ∂c_ij/∂x_i`, `dh_j = −eps Σ_i gy_i w_ij`, all online.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PointSoftminBackward {
    /// The ε of the forward [`PointSoftmin`].
    pub eps: f64,
    /// The ground cost of the forward [`PointSoftmin`].
    pub cost: PointCost,
}

/// Log-domain Sinkhorn iterations run to convergence inside the op. Inputs: the cost
/// `[.., n, m]` (or points `x [.., n, d]`, `y [.., m, d]` when [`SinkhornSpec::points`] is
/// set), weights `a [.., n]`, `b [.., m]` and starting potentials `f [.., n]`, `g [.., m]`.
/// Outputs: `f`, `g`, the final marginal error per problem `[..]` (the cost's dtype) and
/// the iterations run (`u32`, `[]`). With a tolerance, a run that ends above it fails with
/// [`Error::NotConverged`]. Without [`SinkhornSpec::implicit`] the outputs carry no
/// gradient (the envelope theorem's constants); with it, the gradient of `f` and `g` comes
/// from implicit differentiation of the fixed point (see [`SinkhornAdjoint`]).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Sinkhorn(pub SinkhornSpec);

/// The adjoint solve of implicit Sinkhorn gradients. Inputs: the cost (or points), `a`,
/// `b`, the solved potentials `f`, `g`, the undamped soft minima of one iteration at the
/// final ε from them (`s [.., n]` per row against `log b + g/ε`, `t [.., m]` per column
/// against `log a + f/ε`) and cotangents `vf [.., n]`, `vg [.., m]`; outputs `wf`, `wg`
/// solving `(I − ∂T/∂(f, g))ᵀ w = v`, where `T` is one Sinkhorn iteration at the final ε:
/// `wf + λ_b Π_c wg = vf`, `wg + λ_a Π_rᵀ wf = vg`, with `Π_r` and `Π_c` the plan
/// normalised by its row and its column sums. The gradient of the inputs is then `w`
/// pulled back through `T`. For a balanced problem the system is singular along the
/// potentials' constant shift `(f + k, g − k)`; the component of `v` there (nonzero only
/// for a loss that depends on that shift) is dropped.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SinkhornAdjoint(pub SinkhornSpec);

/// `(batch, n, m, d)` of an OT op's leading inputs (`d = 0` for a dense cost).
fn ot_sizes(spec: &SinkhornSpec, ins: &[TensorType]) -> (usize, usize, usize, usize) {
    match spec.points {
        Some(_) => point_sizes(&ins[0], &ins[1]),
        None => {
            let (batch, n, m) = matrix_sizes(&ins[0]);
            (batch, n, m, 0)
        }
    }
}

impl KernelOp for Softmin {
    fn name(&self) -> &'static str {
        "softmin"
    }

    // w[i, j] = exp(h[j] − cost[i, j]/eps + out[i]/eps) (per row; per column swaps the
    // roles): d cost = gy[i] w[i, j], d h[j] = −eps Σ_i gy[i] w[i, j].
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, cost, h, y) = (cx.graph, cx.inputs[0], cx.inputs[1], cx.outputs[0]);
        let rank = g.shape(cost)?.rank();
        let (h_at, out_at) = match self.axis {
            SoftminAxis::PerRow => (rank - 2, rank - 1),
            SoftminAxis::PerColumn => (rank - 1, rank - 2),
        };
        let e = g.scalar(self.eps, g.dtype(y)?)?;
        let logits = g.sub(g.unsqueeze(h, h_at)?, g.div(cost, e)?)?;
        let w = g.exp(g.add(logits, g.div(g.unsqueeze(y, out_at)?, e)?)?)?;
        let weighted = g.mul(w, g.unsqueeze(gy, out_at)?)?;
        let dh = cx.needs[1]
            .then(|| g.mul(g.sum(weighted, h_at as isize)?, g.neg(e)?))
            .transpose()?;
        Ok(vec![cx.needs[0].then_some(weighted), dh])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (cost, h) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        Ok(vec![cpu::softmin(self.eps, self.axis, cost, h, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let cost = &cx.input_types[0];
        Ok(wgsl::softmin_op_launches(
            [cx.inputs[0], cx.inputs[1], cx.output(0)],
            cost.dtype,
            matrix_sizes(cost),
            self.eps,
            self.axis,
            cx.loop_limit,
        )?
        .into())
    }

    // softmin.wgsl per_row: ceil(m/256) columns per thread + log2(256) merges; per_column:
    // ceil(n/4) rows per thread + log2(4) merges, in spans of rows where loops are limited,
    // then a merge over the spans.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let (_, n, m) = matrix_sizes(&inputs[0]);
        Some(match self.axis {
            SoftminAxis::PerRow => trips::dense_row(m as u64),
            SoftminAxis::PerColumn => trips::split_dense_column(n, limit),
        })
    }
}

impl KernelOp for PointSoftmin {
    fn name(&self) -> &'static str {
        "point_softmin"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let types = cx.inputs.iter().map(|x| g.ty(*x)).collect::<Result<Vec<_>>>()?;
        let backward = PointSoftminBackward {
            eps: self.eps,
            cost: self.cost,
        };
        let mut args = cx.inputs.clone();
        args.extend([cx.outputs[0], gy]);
        let d = g.push(crate::Op::Kernel(Arc::new(backward)), &args, types)?;
        Ok((0..3).map(|k| cx.needs[k].then_some(d[k])).collect())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg(self.name(), inputs, k);
        let out = cpu_points::point_softmin(self.eps, self.cost, [x(0)?, x(1)?, x(2)?], &outputs[0])?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let how = wgsl::Softmin {
            eps: self.eps,
            lambda: 1.0,
        };
        Ok(wgsl::point_softmin_launch(
            [cx.inputs[0].into(), cx.inputs[1].into(), cx.output(0).into()],
            wgsl::Potential::plain(cx.inputs[2]),
            cx.input_types[0].dtype,
            point_sizes(&cx.input_types[0], &cx.input_types[1]),
            how,
            self.cost,
            cx.loop_limit,
        )?
        .into())
    }

    // point_softmin.wgsl: ceil(m/64) tiles of y, each ceil(d/8) chunks of 64 × 8 distance
    // terms: about 10 passes per point of y and 8 coordinates. Split into spans of y where
    // loops are limited, then a merge over the spans.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let (_, _, m, d) = point_sizes(&inputs[0], &inputs[1]);
        Some(trips::split_point_softmin(m, d, limit))
    }
}

impl KernelOp for PointSoftminBackward {
    fn name(&self) -> &'static str {
        "point_softmin_backward"
    }

    // Second derivatives of the point softmin are not provided.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg(self.name(), inputs, k);
        let args = [x(0)?, x(1)?, x(2)?, x(3)?, x(4)?];
        cpu_points::point_softmin_backward(self.eps, self.cost, args, outputs)
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(wgsl::point_softmin_backward_launches(
            std::array::from_fn(|k| cx.inputs[k]),
            std::array::from_fn(|slot| cx.output(slot)),
            cx.input_types[0].dtype,
            point_sizes(&cx.input_types[0], &cx.input_types[1]),
            self.eps,
            self.cost,
            cx.loop_limit,
        )?
        .into())
    }

    // point_softmin_grad.wgsl with the gradient, over y (dx) then over x (dy, dh):
    // ceil(other/64) tiles, each ceil(d/8) distance chunks and 64 × 16 gradient terms.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let (_, n, m, d) = point_sizes(&inputs[0], &inputs[1]);
        Some(trips::split_point_grad(n, d, limit).max(trips::split_point_grad(m, d, limit)))
    }
}

impl KernelOp for Sinkhorn {
    fn name(&self) -> &'static str {
        "sinkhorn"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        if self.0.implicit.is_none() {
            return Ok(cx.none());
        }
        let (f, g) = (cx.outputs[0], cx.outputs[1]);
        let (vf, vg) = (cx.cotangents[0], cx.cotangents[1]);
        cx.graph
            .sinkhorn_implicit_vjp(&self.0, &cx.inputs, (f, g), (vf, vg), cx.needs)
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        cpu_sinkhorn::sinkhorn(&self.0, inputs, outputs)
    }

    /// The loop: the weight check and warm start once, the two half-steps at each ε of the
    /// schedule, and, with a tolerance, the marginal error read back every `check_every`
    /// iterations (the first read also checks the weights); without one, the error output
    /// is written once after the last iteration and nothing is read back.
    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let spec = self.0;
        let first = &cx.input_types[0];
        let sizes = ot_sizes(&spec, cx.input_types);
        let l = wgsl_sinkhorn::loop_launches(
            &spec,
            cx.inputs,
            cx.node,
            first.dtype,
            sizes,
            cx.loop_limit,
        )?;
        let batch = sizes.0;
        let (check, finish) = match spec.tolerance {
            None => (None, l.check),
            Some(tolerance) => {
                let status = |raw: &[u8]| -> Vec<f32> {
                    raw.chunks_exact(4)
                        .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                        .collect()
                };
                let check = StopCheck {
                    launches: l.check,
                    status: (wgsl_sinkhorn::STATUS, wgsl_sinkhorn::status_bytes(batch)),
                    after: Arc::new(move |t| spec.checks_after(t)),
                    decide: Arc::new(move |raw, first| {
                        let status = status(raw);
                        if first {
                            for (p, m) in status[1..].chunks_exact(3).enumerate() {
                                check_problem(&spec, p, m)?;
                            }
                        }
                        Ok(within_tolerance(&[status[0] as f64], spec.tolerance))
                    }),
                    exhausted: Arc::new(move |raw, ran| {
                        let error = status(raw)[0] as f64;
                        if within_tolerance(&[error], spec.tolerance) {
                            Ok(())
                        } else {
                            Err(not_converged(ran, error, tolerance))
                        }
                    }),
                };
                (Some(check), vec![])
            }
        };
        Ok(LoopPlan {
            setup: l.prep,
            bodies: l.levels,
            schedule: Schedule::Settling(spec.max_iterations),
            check,
            gate: None,
            finish,
            steps_out: Some(cx.output(3)),
        }
        .into())
    }

    // sinkhorn.wgsl check_weights / marginal_error (a workgroup per problem: ceil(n/256)),
    // largest_error (one workgroup: ceil(batch/256)); the half-steps: softmin.wgsl or
    // point_softmin.wgsl in both directions.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        Some(trips::sinkhorn(&self.0, inputs, limit))
    }
}

/// The weight check of problem `p` from its `[Σa, Σb, bad]`.
fn check_problem(spec: &SinkhornSpec, p: usize, m: &[f32]) -> Result<()> {
    let bad = m[2] as u32;
    for (bit, side) in [(1, "a"), (2, "b")] {
        if bad & bit != 0 {
            return Err(Error::InvalidValue {
                op: "sinkhorn",
                detail: format!(
                    "problem {p}: {side} holds a negative or non-finite weight; weights must be \
                     finite and non-negative"
                ),
            });
        }
    }
    spec.check_masses(p, m[0] as f64, m[1] as f64)
}

impl KernelOp for SinkhornAdjoint {
    fn name(&self) -> &'static str {
        "sinkhorn_adjoint"
    }

    // Second derivatives of implicit Sinkhorn gradients are not provided.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        cpu_adjoint::sinkhorn_adjoint(&self.0, inputs, outputs)
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(wgsl_adjoint::adjoint_loop(
            &self.0,
            cx.inputs,
            cx.node,
            cx.input_types[0].dtype,
            ot_sizes(&self.0, cx.input_types),
            cx.loop_limit,
        )?
        .into())
    }

    // sinkhorn_adjoint.wgsl cg_step: 4 strided passes over the m columns + 3 sums; the plan
    // products: plan_matvec.wgsl (as softmin) or point_softmin_grad.wgsl without the
    // gradient, over both sides.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        Some(trips::sinkhorn_adjoint(&self.0, inputs, limit))
    }
}
