//! Mixture-of-experts routing and expert compute: grouping routing choices by expert on
//! the device (`moe_dispatch`), top-k routing in one kernel (`fused_route`), and the
//! grouped expert matmul with its weight gradient. Builder methods and the routing API in
//! `build*.rs`, CPU references in `cpu*.rs`, launches in `wgsl*.rs`, kernels under
//! `shaders/moe/`.

mod build;
mod build_fused_route;
mod build_routing;
pub mod cpu;
pub mod cpu_route;
pub mod wgsl;
pub mod wgsl_route;

pub use build::{Capacity, DispatchOptions, ExpertDispatch};
pub use build_fused_route::FusedRouting;
pub use build_routing::{ExpertChoice, GroupedTopK, Router, Routing};

use crate::kernel::loop_trips_families as trips;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, Lowering, LowerCx, VjpCx};
use crate::{
    DropPolicy, Error, FusedRouteSpec, MoeDispatchSpec, Result, RouteScore, Tensor, TensorData,
    TensorType,
};

shader!(MOE_COUNT, "moe/dispatch_count.wgsl");
shader!(MOE_SCAN, "moe/dispatch_scan.wgsl");
shader!(MOE_FILL, "moe/dispatch_fill.wgsl");
shader!(MOE_PLACE, "moe/dispatch_place.wgsl");
shader!(MOE_RANK_GATE, "moe/dispatch_rank_gate.wgsl");
shader!(ROUTE_CLEAR, "moe/route_clear.wgsl");
shader!(ROUTE_FUSED, "moe/route_fused.wgsl");
shader!(GROUPED_MATMUL, "moe/grouped_matmul.wgsl");
shader!(GROUPED_MATMUL_WGRAD, "moe/grouped_matmul_wgrad.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[
    MOE_COUNT,
    MOE_SCAN,
    MOE_FILL,
    MOE_PLACE,
    MOE_RANK_GATE,
    ROUTE_CLEAR,
    ROUTE_FUSED,
    GROUPED_MATMUL,
    GROUPED_MATMUL_WGRAD,
];

/// `out[p] = x[p] · w[e]` for each row `p` of `x: [P, K]`, where
/// `e = block_experts[p / block]` and `w` is `[E, K, N]` (`[E, N, K]` read transposed when
/// `transpose_b`); rows of blocks whose expert is `>= E` are zero.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupedMatMul {
    /// Rows per block of `x`; a block's rows all use one expert's weights.
    pub block: usize,
    /// `w` is stored `[E, N, K]` and read transposed.
    pub transpose_b: bool,
}

/// The weight gradient of [`GroupedMatMul`]: `dw[e] = Σ_{p in e's blocks} x[p]ᵀ · dy[p]`,
/// `[E, K, N]` from `x: [P, K]`, `dy: [P, N]` and `block_experts`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupedMatMulWeightGrad {
    /// Rows per block, as in the forward [`GroupedMatMul`].
    pub block: usize,
    /// `E`, the leading dimension of `dw`; blocks whose expert is `>= E` add nothing.
    pub num_experts: usize,
}

/// Groups `[T, k]` routing choices by expert on the device. Inputs: `experts` (`u32`),
/// then `gates` for [`DropPolicy::HighestGate`] with a capacity. Outputs, in order:
/// `sorted_ids [P]`, `block_experts [P / block]`, `positions [T, k]`, `counts [E]`,
/// `dropped [E]`, `offsets [E + 1]` (see `Graph::moe_dispatch`).
impl KernelOp for MoeDispatchSpec {
    fn name(&self) -> &'static str {
        "moe_dispatch"
    }

    // Integer outputs only.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let experts = arg(self.name(), inputs, 0)?;
        let gates = inputs.get(1).copied();
        cpu::dispatch(self, experts, gates, outputs)
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let outs = std::array::from_fn(|slot| cx.output(slot));
        let (n, rows) = (
            cx.input_types[0].shape.numel(),
            cx.output_types[0].shape.numel(),
        );
        Ok(wgsl::dispatch_launches(
            self,
            cx.inputs,
            cx.input_types.get(1).map(|t| t.dtype),
            outs,
            (n, rows),
            cx.loop_limit,
        )?.into())
    }

    // dispatch_scan.wgsl (one workgroup): ceil(E/256) experts per thread × `tiles` tile
    // counts each; dispatch_rank_gate.wgsl (highest gate): a chunk of one expert's choices.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let n = inputs[0].shape.numel() as u64;
        let highest = self.policy == DropPolicy::HighestGate;
        Some(trips::moe_dispatch(n, self.num_experts as u64, highest, limit))
    }
}

/// Top-k routing in one kernel: input `logits [T, E]`; outputs `gates [T, k]` (the
/// logits' dtype), `experts [T, k]` (`u32`) and `counts [E]` (`u32`, how many of the
/// `T·k` choices went to each expert). Experts are chosen by logit with `top_k`'s order
/// (NaN first, ties to the lower expert); gates are the chosen experts' scores, optionally
/// renormalised (see `Graph::fused_route`).
impl KernelOp for FusedRouteSpec {
    fn name(&self) -> &'static str {
        "fused_route"
    }

    // With g the gates, gy their cotangent and dot = Σ_j gy_j g_j per token, the chosen
    // logits get (the others only through the softmax denominator): softmax over the
    // chosen: g (gy − dot); softmax over all: gy g at the chosen, minus p · dot
    // everywhere; sigmoid: gy g (1 − g); sigmoid renormalised by S = Σ s_j:
    // (gy − dot) / S · s (1 − s).
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, logits, y, experts) = (cx.graph, cx.inputs[0], cx.outputs[0], cx.outputs[1]);
        let e = g.shape(logits)?.dims()[1];
        let one = g.scalar(1.0, g.dtype(y)?)?;
        let dot = g.sum_keepdim(g.mul(gy, y)?, -1)?;
        let to_logits = |chosen: Tensor| g.scatter_along(chosen, -1, experts, e);
        let d = match (self.score, self.renormalize) {
            (RouteScore::Softmax, true) => to_logits(g.mul(y, g.sub(gy, dot)?)?)?,
            (RouteScore::Softmax, false) => {
                let p = g.softmax(logits, -1)?;
                g.sub(to_logits(g.mul(gy, y)?)?, g.mul(p, dot)?)?
            }
            (RouteScore::Sigmoid, false) => to_logits(g.mul(g.mul(gy, y)?, g.sub(one, y)?)?)?,
            (RouteScore::Sigmoid, true) => {
                let s = g.sigmoid(g.gather_along(logits, -1, experts)?)?;
                let total = g.sum_keepdim(s, -1)?;
                let ds = g.div(g.sub(gy, dot)?, total)?;
                to_logits(g.mul(ds, g.mul(s, g.sub(one, s)?)?)?)?
            }
        };
        Ok(vec![Some(d)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        cpu_route::fused_route(self, arg(self.name(), inputs, 0)?, outputs)
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let logits = &cx.input_types[0];
        let dims = logits.shape.dims();
        Ok(wgsl_route::launches(
            self,
            cx.inputs[0],
            logits.dtype,
            std::array::from_fn(|slot| cx.output(slot)),
            (dims[0], dims[1]),
        )?.into())
    }

    // route_fused.wgsl: k rounds, each a log2(G)-step lane reduction and a rescan of
    // ceil(E/G) experts, G = lanes_per_token(E).
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        let e = inputs[0].shape.dims()[1] as u64;
        Some(trips::fused_route(e, self.k as u64))
    }
}

impl KernelOp for GroupedMatMul {
    fn name(&self) -> &'static str {
        "grouped_matmul"
    }

    // out = a · B with B = w[e] (or its transpose): da = gy · Bᵀ reads w the other way; dw
    // sums aᵀ · gy over each expert's blocks, or gyᵀ · a (its transpose, [E, N, K] as w
    // is) when w is read transposed.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, a, w, experts) = (cx.graph, cx.inputs[0], cx.inputs[1], cx.inputs[2]);
        let (block, transposed) = (self.block, self.transpose_b);
        let da = cx.needs[0]
            .then(|| g.grouped_matmul(gy, w, experts, block, !transposed))
            .transpose()?;
        let dw = cx.needs[1]
            .then(|| {
                let e = g.shape(w)?.dims()[0];
                if transposed {
                    g.grouped_matmul_weight_grad(gy, a, experts, block, e)
                } else {
                    g.grouped_matmul_weight_grad(a, gy, experts, block, e)
                }
            })
            .transpose()?;
        Ok(vec![da, dw, None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg(self.name(), inputs, k);
        let out = cpu::grouped_matmul(
            (self.block, self.transpose_b),
            x(0)?,
            x(1)?,
            x(2)?,
            &outputs[0],
        )?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let (x, w, out) = (&cx.input_types[0], &cx.input_types[1], &cx.output_types[0]);
        let (rows, k) = (x.shape.dims()[0], x.shape.dims()[1]);
        let values = [cx.inputs[0], cx.inputs[1], cx.inputs[2], cx.output(0)];
        Ok(vec![wgsl::grouped_matmul_launch(
            values,
            out.dtype,
            (rows, k, out.shape.dims()[1], w.shape.dims()[0]),
            (self.block, self.transpose_b),
        )?].into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        let k = inputs[0].shape.dims()[1] as u64;
        Some(trips::grouped_matmul(k, self.block))
    }
}

impl KernelOp for GroupedMatMulWeightGrad {
    fn name(&self) -> &'static str {
        "grouped_matmul_weight_grad"
    }

    fn vjp(&self, _: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Err(Error::Unsupported {
            backend: "autodiff".into(),
            what: "a second derivative through grouped_matmul".into(),
        })
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg(self.name(), inputs, k);
        let out = cpu::grouped_matmul_weight_grad(self.block, x(0)?, x(1)?, x(2)?, &outputs[0])?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let (x, dy) = (&cx.input_types[0], &cx.input_types[1]);
        let (rows, k) = (x.shape.dims()[0], x.shape.dims()[1]);
        let values = [cx.inputs[0], cx.inputs[1], cx.inputs[2], cx.output(0)];
        Ok(wgsl::grouped_matmul_weight_grad_launch(
            values,
            cx.output_types[0].dtype,
            (rows, k, dy.shape.dims()[1], self.num_experts),
            self.block,
            cx.loop_limit,
        )?.into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let rows = inputs[0].shape.dims()[0];
        Some(trips::split_grouped_wgrad(rows, self.block, limit))
    }
}
