//! Selection along an axis: `top_k`, and the per-row indexed reads and writes its gradient
//! (and routing) needs, `gather_along` and `scatter_along`. Builder methods with their
//! shape rules in `build.rs`, CPU references in `cpu.rs`, launches in `wgsl.rs`
//! (`shaders/select/topk.wgsl`; the two indexed kernels are the index family's files).

mod build;
pub mod cpu;
pub mod wgsl;

use crate::kernel::loop_trips::scatter_trips;
use crate::kernel::loop_trips_families::topk;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, Lowering, LowerCx, VjpCx};
use crate::ops::index::wgsl::{scatter_launches, sorted_along_launches, sorted_pays};
use crate::{DType, Result, Tensor, TensorData, TensorType};

shader!(TOPK, "select/topk.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[TOPK];

/// The `k` largest along `axis`, sorted, and their `u32` positions (see
/// [`Graph::top_k`](crate::Graph::top_k)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopK {
    /// The axis to select along (non-negative).
    pub axis: usize,
    /// How many values to keep, from 1 to the axis length.
    pub k: usize,
}

/// `out[.., j, ..] = x[.., idx[.., j, ..], ..]` along `axis` (numpy `take_along_axis`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatherAlong {
    /// The axis `idx` indexes (non-negative).
    pub axis: usize,
}

/// The adjoint of [`GatherAlong`]: `out[.., idx[.., j, ..], ..] += src[.., j, ..]` into
/// zeros with `dim_size` at `axis`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScatterAlong {
    /// The axis `idx` indexes (non-negative).
    pub axis: usize,
    /// The output's length along `axis`.
    pub dim_size: usize,
}

impl KernelOp for TopK {
    fn name(&self) -> &'static str {
        "top_k"
    }

    // Each selected position gets its value's cotangent (the indices of one row are
    // distinct); the indices output has no gradient.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let len = g.shape(cx.inputs[0])?.dims()[self.axis];
        let dx = g.scatter_along(gy, self.axis as isize, cx.outputs[1], len)?;
        Ok(vec![Some(dx)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        cpu::top_k(self.axis, self.k, x, [&outputs[0], &outputs[1]])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let x = &cx.input_types[0];
        Ok(wgsl::launches(
            cx.inputs[0],
            [cx.output(0), cx.output(1)],
            x.dtype,
            x.shape.split_at_axis(self.axis),
            self.k,
        )?.into())
    }

    // topk.wgsl, every pass: a bitonic sort of C = min(2048, next_pow2(len)) entries
    // (log2 C stages, Σ stride halvings, C/2/WG swaps per thread each); independent of
    // the row length, at most ~440.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        let (_, n, _) = inputs[0].shape.split_at_axis(self.axis);
        Some(topk(n as u64, self.k as u64))
    }
}

impl KernelOp for GatherAlong {
    fn name(&self) -> &'static str {
        "gather_along"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let len = g.shape(cx.inputs[0])?.dims()[self.axis];
        let dx = g.scatter_along(gy, self.axis as isize, cx.inputs[1], len)?;
        Ok(vec![Some(dx), None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (x, idx) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        Ok(vec![cpu::gather_along(self.axis, x, idx, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0];
        let len = cx.input_types[0].shape.dims()[self.axis];
        let (_, m, inner) = out.shape.split_at_axis(self.axis);
        let binds = [cx.inputs[0].into(), cx.inputs[1].into(), cx.output(0).into()];
        let numel = out.shape.numel();
        Ok(vec![wgsl::gather_along_launch(binds, (numel, m, inner, len))].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

impl KernelOp for ScatterAlong {
    fn name(&self) -> &'static str {
        "scatter_along"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let dx = cx.graph.gather_along(gy, self.axis as isize, cx.inputs[1])?;
        Ok(vec![Some(dx), None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (src, idx) = (arg(self.name(), inputs, 0)?, arg(self.name(), inputs, 1)?);
        let out = cpu::scatter_along(self.axis, self.dim_size, src, idx, &outputs[0])?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0];
        let numel = out.shape.numel();
        let (_, m, inner) = cx.input_types[0].shape.split_at_axis(self.axis);
        if sorted_pays(m, self.dim_size, cx.loop_limit) {
            return Ok(sorted_along_launches(
                &crate::ops::index::SCATTER_SORTED,
                [cx.inputs[0], cx.inputs[1], cx.output(0)],
                out.dtype,
                [numel, m, inner, self.dim_size],
            )
            .into());
        }
        Ok(scatter_launches(
            (&crate::ops::index::SCATTER_ALONG, "scatter_along"),
            [cx.inputs[0], cx.inputs[1], cx.output(0)],
            (out.dtype, DType::U32),
            (numel, m),
            [numel, m, inner, self.dim_size],
            cx.loop_limit,
        ).into())
    }

    // One thread per output walks its row's indices, in tiles where loops are limited.
    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        Some(scatter_trips(inputs[0].shape.dims()[self.axis], limit))
    }
}
