use super::{require_float, resolve_axis};
use crate::{DType, Error, Graph, Op, ReduceOp, Result, Shape, Tensor, TensorType};

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
            Op::Reduce { op, axis, keepdim },
            &[x],
            TensorType::new(Shape(dims), dtype),
        )
    }

    /// Sum over an axis (integers wrap).
    pub fn sum(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("sum", &[("x", x)])?;
        self.reduce(ReduceOp::Sum, x, axis, keepdim)
    }

    /// Mean over an axis (floats).
    pub fn mean(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("mean", &[("x", x)])?;
        self.reduce(ReduceOp::Mean, x, axis, keepdim)
    }

    /// Maximum over an axis.
    pub fn max(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("max", &[("x", x)])?;
        self.reduce(ReduceOp::Max, x, axis, keepdim)
    }

    /// Minimum over an axis.
    pub fn min(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("min", &[("x", x)])?;
        self.reduce(ReduceOp::Min, x, axis, keepdim)
    }

    /// `log(sum(exp(x)))` over an axis, computed stably (floats).
    pub fn logsumexp(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("logsumexp", &[("x", x)])?;
        self.reduce(ReduceOp::LogSumExp, x, axis, keepdim)
    }

    /// Index (`u32`) of the maximum over an axis; ties go to the smallest index.
    pub fn argmax(&self, x: Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.operands("argmax", &[("x", x)])?;
        self.reduce(ReduceOp::ArgMax, x, axis, keepdim)
    }

    /// Sum of every element, as a scalar: a chain of single-axis sums.
    pub fn sum_all(&self, x: Tensor) -> Result<Tensor> {
        self.operands("sum_all", &[("x", x)])?;
        let rank = self.shape(x)?.rank();
        if rank == 0 {
            return Ok(x);
        }
        let flat = self.reshape(x, [self.shape(x)?.numel()])?;
        self.sum(flat, 0, false)
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
        self.push1(Op::Softmax { axis, log }, &[x], ty)
    }
}
