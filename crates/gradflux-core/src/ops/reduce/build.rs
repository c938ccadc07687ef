use std::sync::Arc;

use super::{Reduce, Softmax};
use crate::builder::{require_float, resolve_axis};
use crate::{DType, Error, Graph, Op, ReduceOp, Result, Shape, Tensor, TensorType};

/// The named reductions: `$name` drops the reduced axis, `$keep` keeps it as size 1 (so
/// the result broadcasts against the input); [`Graph::reduce`] takes the choice as a value.
macro_rules! named_reductions {
    ($($op:ident => $name:ident, $keep:ident, $doc:literal;)*) => {
        impl Graph {
            $(
                #[doc = $doc]
                #[doc = ""]
                #[doc = concat!("The reduced axis is dropped; [`Graph::", stringify!($keep), "`] keeps it.")]
                pub fn $name(&self, x: Tensor, axis: isize) -> Result<Tensor> {
                    self.operands(stringify!($name), &[("x", x)])?;
                    self.reduce(ReduceOp::$op, x, axis, false)
                }

                #[doc = concat!("[`Graph::", stringify!($name), "`] keeping the reduced axis as size 1.")]
                pub fn $keep(&self, x: Tensor, axis: isize) -> Result<Tensor> {
                    self.operands(stringify!($name), &[("x", x)])?;
                    self.reduce(ReduceOp::$op, x, axis, true)
                }
            )*
        }
    };
}

named_reductions! {
    Sum => sum, sum_keepdim, "Sum over an axis (integers wrap).";
    Mean => mean, mean_keepdim, "Mean over an axis (floats).";
    Max => max, max_keepdim, "Maximum over an axis (NaN propagates).";
    Min => min, min_keepdim, "Minimum over an axis (NaN propagates).";
    LogSumExp => logsumexp, logsumexp_keepdim, "`log(sum(exp(x)))` over an axis, computed stably (floats).";
    ArgMax => argmax, argmax_keepdim, "Index (`u32`) of the maximum over an axis; ties go to the smallest index, NaN ranks first.";
}

impl Graph {
    /// Reduces over one axis (negative counts from the end); `keepdim` keeps it as size 1.
    pub fn reduce(&self, op: ReduceOp, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands(op.name(), &[("x", x)])?;
        let ty = self.ty(x)?;
        let axis = resolve_axis(op.name(), axis, ty.shape.rank())?;
        if op.float_only() {
            require_float(op.name(), ty.dtype)?;
        }
        if matches!(op, ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax) && ty.shape.0[axis] == 0 {
            return Err(Error::Shape {
                op: op.name(),
                detail: format!("cannot reduce the empty axis {axis} of shape {}", ty.shape),
            });
        }
        let mut dims = ty.shape.0.clone();
        if keepdim {
            dims[axis] = 1;
        } else {
            dims.remove(axis);
        }
        let dtype = if op == ReduceOp::ArgMax {
            DType::U32
        } else {
            ty.dtype
        };
        self.push1(
            Op::Kernel(Arc::new(Reduce { op, axis, keepdim })),
            &[x],
            TensorType::new(Shape(dims), dtype),
        )
    }

    /// Sum of every element, as a scalar: a chain of single-axis sums.
    pub fn sum_all(&self, x: Tensor) -> Result<Tensor> {
        self.operands("sum_all", &[("x", x)])?;
        let rank = self.shape(x)?.rank();
        if rank == 0 {
            return Ok(x);
        }
        let flat = self.reshape(x, [self.shape(x)?.numel()])?;
        self.sum(flat, 0)
    }

    /// Softmax along an axis (floats).
    pub fn softmax(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("softmax", &[("x", x)])?;
        self.softmax_impl(x, axis, false)
    }

    /// Log-softmax along an axis (floats), computed stably.
    pub fn log_softmax(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("log_softmax", &[("x", x)])?;
        self.softmax_impl(x, axis, true)
    }

    fn softmax_impl(&self, x: Tensor, axis: isize, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        let ty = self.ty(x)?;
        let axis = resolve_axis(name, axis, ty.shape.rank())?;
        require_float(name, ty.dtype)?;
        self.push1(Op::Kernel(Arc::new(Softmax { axis, log })), &[x], ty)
    }
}
