//! Reductions over one axis (`sum mean max min logsumexp argmax`) and softmax /
//! log-softmax. Builder methods in `build.rs`, CPU references in `cpu.rs`, launches in
//! `wgsl.rs` (`shaders/reduce/`: a workgroup per output, axes past 2^18 in chunks and a
//! second pass).

mod build;
pub mod cpu;
pub mod wgsl;

use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, Lowering, LowerCx, VjpCx};
use crate::{ReduceOp, Result, Tensor, TensorData, TensorType};

shader!(REDUCE, "reduce/reduce.wgsl");
shader!(SOFTMAX, "reduce/softmax.wgsl");
shader!(SOFTMAX_LONG, "reduce/softmax_long.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[REDUCE, SOFTMAX, SOFTMAX_LONG];

/// `op` over `axis`; `keepdim` keeps the axis as size 1 (the output's shape says which).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reduce {
    /// The reduction.
    pub op: ReduceOp,
    /// The reduced axis of the input (non-negative).
    pub axis: usize,
    /// The output keeps the axis as size 1 instead of dropping it.
    pub keepdim: bool,
}

/// Softmax (or log-softmax, when `log`) along `axis`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Softmax {
    /// The axis softmax normalises over (non-negative).
    pub axis: usize,
    /// Log-softmax, computed stably, instead of softmax.
    pub log: bool,
}

impl KernelOp for Reduce {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    // max/min split the gradient evenly among every element equal to the result.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, x, y) = (cx.graph, cx.inputs[0], cx.outputs[0]);
        let shape = g.shape(x)?;
        let dtype = g.dtype(x)?;
        let mut kept = shape.dims().to_vec();
        kept[self.axis] = 1;
        let gyk = g.reshape(gy, kept.clone())?;
        let d = match self.op {
            ReduceOp::Sum => g.broadcast_to(gyk, shape)?,
            ReduceOp::Mean => {
                let len = shape.dims()[self.axis] as f64;
                g.broadcast_to(g.div(gyk, g.scalar(len, dtype)?)?, shape)?
            }
            ReduceOp::Max | ReduceOp::Min => {
                let yk = g.reshape(y, kept)?;
                let hit = g.cast(g.eq(x, yk)?, dtype)?;
                let count = g.sum_keepdim(hit, self.axis as isize)?;
                g.mul(hit, g.div(gyk, count)?)?
            }
            ReduceOp::LogSumExp => {
                let yk = g.reshape(y, kept)?;
                g.mul(gyk, g.exp(g.sub(x, yk)?)?)?
            }
            ReduceOp::ArgMax => return Ok(cx.none()),
        };
        Ok(vec![Some(d)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        Ok(vec![cpu::reduce(self.op, self.axis, x, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let x = &cx.input_types[0];
        Ok(wgsl::launches(
            self.op,
            (cx.inputs[0], cx.output(0)),
            (x.dtype, cx.output_types[0].dtype),
            x.shape.split_at_axis(self.axis),
        ).into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(wgsl::reduce_trips(self.op, inputs[0].shape.dims()[self.axis]))
    }
}

impl KernelOp for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, y, ax) = (cx.graph, cx.outputs[0], self.axis as isize);
        let d = if self.log {
            g.sub(gy, g.mul(g.exp(y)?, g.sum_keepdim(gy, ax)?)?)?
        } else {
            let dot = g.sum_keepdim(g.mul(gy, y)?, ax)?;
            g.mul(y, g.sub(gy, dot)?)?
        };
        Ok(vec![Some(d)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(self.name(), inputs, 0)?;
        Ok(vec![cpu::softmax(self.axis, self.log, x, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(wgsl::softmax_launches(
            self.log,
            (cx.inputs[0], cx.output(0)),
            cx.output_types[0].dtype,
            cx.input_types[0].shape.split_at_axis(self.axis),
        ).into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(wgsl::softmax_trips(inputs[0].shape.dims()[self.axis]))
    }
}
