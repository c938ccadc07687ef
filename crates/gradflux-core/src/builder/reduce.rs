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

    /// Sum over an axis (integers wrap), which the result drops; [`Graph::sum_keepdim`]
    /// keeps it as size 1, and [`Graph::reduce`] takes the choice as a value.
    pub fn sum(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("sum", &[("x", x)])?;
        self.reduce(ReduceOp::Sum, x, axis, false)
    }

    /// Mean over an axis (floats), which the result drops.
    pub fn mean(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("mean", &[("x", x)])?;
        self.reduce(ReduceOp::Mean, x, axis, false)
    }

    /// Maximum over an axis, which the result drops.
    pub fn max(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("max", &[("x", x)])?;
        self.reduce(ReduceOp::Max, x, axis, false)
    }

    /// Minimum over an axis, which the result drops.
    pub fn min(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("min", &[("x", x)])?;
        self.reduce(ReduceOp::Min, x, axis, false)
    }

    /// `log(sum(exp(x)))` over an axis, computed stably (floats), which the result drops.
    pub fn logsumexp(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("logsumexp", &[("x", x)])?;
        self.reduce(ReduceOp::LogSumExp, x, axis, false)
    }

    /// Index (`u32`) of the maximum over an axis, which the result drops; ties go to the
    /// smallest index.
    pub fn argmax(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("argmax", &[("x", x)])?;
        self.reduce(ReduceOp::ArgMax, x, axis, false)
    }

    /// [`Graph::sum`] keeping the axis as size 1 (so the result broadcasts against `x`).
    pub fn sum_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("sum", &[("x", x)])?;
        self.reduce(ReduceOp::Sum, x, axis, true)
    }

    /// [`Graph::mean`] keeping the axis as size 1.
    pub fn mean_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("mean", &[("x", x)])?;
        self.reduce(ReduceOp::Mean, x, axis, true)
    }

    /// [`Graph::max`] keeping the axis as size 1.
    pub fn max_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("max", &[("x", x)])?;
        self.reduce(ReduceOp::Max, x, axis, true)
    }

    /// [`Graph::min`] keeping the axis as size 1.
    pub fn min_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("min", &[("x", x)])?;
        self.reduce(ReduceOp::Min, x, axis, true)
    }

    /// [`Graph::logsumexp`] keeping the axis as size 1.
    pub fn logsumexp_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("logsumexp", &[("x", x)])?;
        self.reduce(ReduceOp::LogSumExp, x, axis, true)
    }

    /// [`Graph::argmax`] keeping the axis as size 1.
    pub fn argmax_keepdim(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.operands("argmax", &[("x", x)])?;
        self.reduce(ReduceOp::ArgMax, x, axis, true)
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
        self.push1(Op::Softmax { axis, log }, &[x], ty)
    }
}
