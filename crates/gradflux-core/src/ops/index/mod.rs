//! Indexed reads and writes along an axis: `gather` (numpy `take`), its adjoint
//! `scatter_add`, and the row gather whose gradient is a gather too (`gather_rows`, for
//! MoE dispatch). Builder methods in `build.rs`, CPU references in `cpu.rs`, launches in
//! `wgsl.rs`; the kernels under `shaders/index/` (also the per-row reads and writes of
//! the select family).

mod build;
pub mod cpu;
pub mod wgsl;

pub(crate) use build::require_index;

use crate::kernel::launch::{kernel, per_element, u32s, ELEMENTWISE_WG};
use crate::kernel::loop_trips::scatter_trips;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, Launch, LowerCx, Lowering, VjpCx};
use crate::{DType, Result, Tensor, TensorData, TensorType};

shader!(GATHER, "index/gather.wgsl");
shader!(SCATTER_ADD, "index/scatter_add.wgsl");
shader!(GATHER_ALONG, "index/gather_along.wgsl");
shader!(SCATTER_ALONG, "index/scatter_along.wgsl");
shader!(SCATTER_SORTED, "index/scatter_sorted.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[
    GATHER,
    SCATTER_ADD,
    GATHER_ALONG,
    SCATTER_ALONG,
    SCATTER_SORTED,
];

/// `out = x[.., idx[j], ..]` along `axis`: output shape `x[..axis] ++ idx.shape ++
/// x[axis+1..]`; an out-of-range index reads 0.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gather {
    /// The axis of `x` that `idx` indexes (non-negative).
    pub axis: usize,
}

/// The adjoint of [`Gather`]: sums `src` slices into `dim_size` rows along `axis`;
/// out-of-range indices are ignored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScatterAdd {
    /// The axis of the output that `idx` indexes; `src` holds `idx`'s shape from there.
    pub axis: usize,
    /// The output's length along `axis`; indices outside `0..dim_size` are ignored.
    pub dim_size: usize,
}

/// [`Gather`] along axis 0 whose adjoint is a gather too: inputs `x`, `idx`, and
/// `inverse: [x rows, r]`, listing for each row of `x` the (flattened) positions of `idx`
/// that read it, out-of-range entries for none. The builder only emits it where the inverse
/// is exact by construction (MoE dispatch), so the backward pass costs a gather instead of
/// a scatter over every index.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatherRows;

/// The one-thread-per-output gather of `x` viewed as `[outer, dim, inner]`.
fn gather_launch(axis: usize, cx: &LowerCx<'_>) -> Launch {
    let numel = cx.output_types[0].shape.numel();
    let (_, dim, inner) = cx.input_types[0].shape.split_at_axis(axis);
    let n_idx = cx.input_types[1].shape.numel();
    Launch {
        kernel: kernel(
            &GATHER,
            "gather".into(),
            DType::U32,
            DType::U32,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            4,
        ),
        binds: crate::kernel::values([cx.inputs[0], cx.inputs[1], cx.output(0)]),
        scratch: vec![],
        info: u32s([numel, inner, n_idx, dim]),
        workgroups: per_element(numel),
    }
}

impl KernelOp for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let len = g.shape(cx.inputs[0])?.dims()[self.axis];
        let dx = g.scatter_add(gy, self.axis as isize, cx.inputs[1], len)?;
        Ok(vec![Some(dx), None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (x, idx) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        Ok(vec![cpu::gather(self.axis, x, idx, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(vec![gather_launch(self.axis, cx)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

impl KernelOp for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let dx = cx.graph.gather(gy, self.axis as isize, cx.inputs[1])?;
        Ok(vec![Some(dx), None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (src, idx) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        let out = cpu::scatter_add(self.axis, self.dim_size, src, idx, &outputs[0])?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0];
        let numel = out.shape.numel();
        let (_, _, inner) = out.shape.split_at_axis(self.axis);
        let n_idx = cx.input_types[1].shape.numel();
        if wgsl::sorted_pays(n_idx, self.dim_size, cx.loop_limit) {
            return Ok(wgsl::sorted_scatter_launches(
                &SCATTER_SORTED,
                [cx.inputs[0], cx.inputs[1], cx.output(0)],
                out.dtype,
                [numel, inner, n_idx, self.dim_size],
            )
            .into());
        }
        Ok(wgsl::scatter_launches(
            (&SCATTER_ADD, "scatter_add"),
            [cx.inputs[0], cx.inputs[1], cx.output(0)],
            (out.dtype, out.dtype),
            (numel, n_idx),
            [numel, inner, n_idx, self.dim_size],
            cx.loop_limit,
        ).into())
    }

    // One thread per output walks the indices in order, in tiles where loops are limited.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        Some(scatter_trips(inputs[1].shape.numel(), limit))
    }
}

impl KernelOp for GatherRows {
    fn name(&self) -> &'static str {
        "gather_rows"
    }

    // x row m was read at the flattened positions inverse[m, ..] of idx.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let mut flat = vec![g.shape(cx.inputs[1])?.numel()];
        flat.extend(&g.shape(cx.inputs[0])?.dims()[1..]);
        let picked = g.gather(g.reshape(gy, flat)?, 0, cx.inputs[2])?;
        Ok(vec![Some(g.sum(picked, 1)?), None, None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (x, idx) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        Ok(vec![cpu::gather(0, x, idx, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(vec![gather_launch(0, cx)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}
