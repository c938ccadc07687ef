//! Moving elements without computing: `permute`, `slice`, `concat`, `broadcast_to`, each a
//! strided copy (`shaders/layout/strided_copy.wgsl`), and `reshape`, which moves nothing
//! (a structural `Op` variant backends alias). Builder methods in `build.rs`, CPU
//! references in `cpu.rs`, launches in `wgsl.rs`.

mod build;
pub mod cpu;
pub mod wgsl;

use crate::kernel::launch::MAX_RANK;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, LowerCx, Lowering, VjpCx};
use crate::{Result, Tensor, TensorData, TensorType};

use wgsl::{copy_info, copy_launch};

shader!(STRIDED_COPY, "layout/strided_copy.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[STRIDED_COPY];

/// Output axis `i` is input axis `perm[i]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permute {
    /// A permutation of the input's axes, one entry per output axis.
    pub perm: Vec<usize>,
}

/// Elements `start, start + step, ...` along `axis` (the end is in the output's shape).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slice {
    /// The sliced axis (non-negative).
    pub axis: usize,
    /// Index of the first element taken.
    pub start: usize,
    /// Distance between taken elements, at least 1.
    pub step: usize,
}

/// The inputs one after the other along `axis`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The axis the inputs are joined along (non-negative); the others must match.
    pub axis: usize,
}

/// The input repeated along its size-1 (or missing leading) axes to the output's shape.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastTo;

/// Every strided copy walks the rank once per element.
const COPY_TRIPS: u64 = MAX_RANK as u64;

impl KernelOp for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(cx.graph.permute(gy, &inverse)?)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        Ok(vec![cpu::permute(&self.perm, x, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0].shape;
        let src = cx.input_types[0].shape.strides();
        let src_strides: Vec<usize> = self.perm.iter().map(|&p| src[p]).collect();
        let info = copy_info(out.dims(), 0, &src_strides, 0, &out.strides());
        Ok(vec![copy_launch(cx.inputs[0], cx.output(0), info)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(COPY_TRIPS)
    }
}

impl KernelOp for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let len = g.shape(cx.inputs[0])?.dims()[self.axis];
        let picked = g.shape(cx.outputs[0])?.dims()[self.axis];
        let rows: Vec<u32> = (0..picked)
            .map(|k| (self.start + k * self.step) as u32)
            .collect();
        let idx = g.constant(TensorData::new([picked], rows)?)?;
        Ok(vec![Some(g.scatter_add(gy, self.axis as isize, idx, len)?)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        let out = cpu::slice(self.axis, self.start, self.step, x, &outputs[0])?;
        Ok(vec![out])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0].shape;
        let mut src_strides = cx.input_types[0].shape.strides();
        let base = self.start * src_strides[self.axis];
        src_strides[self.axis] *= self.step;
        let info = copy_info(out.dims(), base, &src_strides, 0, &out.strides());
        Ok(vec![copy_launch(cx.inputs[0], cx.output(0), info)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(COPY_TRIPS)
    }
}

impl KernelOp for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let mut offset = 0;
        let mut grads = Vec::new();
        for (x, need) in cx.inputs.iter().zip(cx.needs) {
            let len = g.shape(*x)?.dims()[self.axis];
            let part = need.then(|| g.slice(gy, self.axis as isize, offset, offset + len));
            grads.push(part.transpose()?);
            offset += len;
        }
        Ok(grads)
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        Ok(vec![cpu::concat(self.axis, inputs, &outputs[0])?])
    }

    // One copy per non-empty input, into its place along the axis.
    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let dst_strides = cx.output_types[0].shape.strides();
        let mut along = 0;
        let mut parts = Vec::new();
        for (input, t) in cx.inputs.iter().zip(cx.input_types) {
            if t.shape.numel() > 0 {
                let base = along * dst_strides[self.axis];
                let info = copy_info(t.shape.dims(), 0, &t.shape.strides(), base, &dst_strides);
                parts.push(copy_launch(*input, cx.output(0), info));
            }
            along += t.shape.dims()[self.axis];
        }
        Ok(parts.into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(COPY_TRIPS)
    }
}

impl KernelOp for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        Ok(vec![Some(g.sum_to(gy, &g.shape(cx.inputs[0])?)?)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        Ok(vec![cpu::broadcast_to(x, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let out = &cx.output_types[0].shape;
        let src_strides = cx.input_types[0].shape.broadcast_strides(out);
        let info = copy_info(out.dims(), 0, &src_strides, 0, &out.strides());
        Ok(vec![copy_launch(cx.inputs[0], cx.output(0), info)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(COPY_TRIPS)
    }
}
