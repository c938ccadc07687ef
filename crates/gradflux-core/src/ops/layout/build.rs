use std::sync::Arc;

use super::{BroadcastTo, Concat, Permute, Slice};
use crate::builder::resolve_axis;
use crate::{Error, Graph, Op, Result, Shape, Tensor, TensorType};

impl Graph {
    /// Same data under a new shape with the same number of elements.
    pub fn reshape(&self, x: Tensor, shape: impl Into<Shape>) -> Result<Tensor> {
        self.operands("reshape", &[("x", x)])?;
        let ty = self.ty(x)?;
        let shape = shape.into();
        if shape.numel() != ty.shape.numel() {
            return Err(Error::Shape {
                op: "reshape",
                detail: format!(
                    "cannot reshape {} ({} elements) to {} ({} elements)",
                    ty.shape,
                    ty.shape.numel(),
                    shape,
                    shape.numel()
                ),
            });
        }
        if shape == ty.shape {
            return Ok(x);
        }
        self.push1(Op::Reshape, &[x], TensorType::new(shape, ty.dtype))
    }

    /// `x` unchanged, but no gradient flows back through the result (a stop-gradient): what
    /// is computed from it is treated as a constant by [`Graph::grad`]. Costs nothing at
    /// run time (the result shares `x`'s buffer).
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let x = g.input("x", [3], DType::F32)?;
    /// let y = g.sum_all(g.mul(x, g.detach(x)?)?)?; // d y / d x = x, not 2x
    /// let dx = g.grad(y, &[x])?[0];
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn detach(&self, x: Tensor) -> Result<Tensor> {
        self.operands("detach", &[("x", x)])?;
        let ty = self.ty(x)?;
        self.push1(Op::Detach, &[x], ty)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, x: Tensor, perm: &[usize]) -> Result<Tensor> {
        self.operands("permute", &[("x", x)])?;
        let ty = self.ty(x)?;
        let rank = ty.shape.rank();
        let mut seen = vec![false; rank];
        let valid = perm.len() == rank
            && perm
                .iter()
                .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::Shape {
                op: "permute",
                detail: format!(
                    "{perm:?} is not a permutation of the {rank} axes of {}",
                    ty.shape
                ),
            });
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x);
        }
        let dims = perm.iter().map(|&p| ty.shape.0[p]).collect::<Vec<_>>();
        self.push1(
            Op::Kernel(Arc::new(Permute {
                perm: perm.to_vec(),
            })),
            &[x],
            TensorType::new(dims, ty.dtype),
        )
    }

    /// Swaps two axes (negative counts from the end).
    pub fn transpose(&self, x: Tensor, a: isize, b: isize) -> Result<Tensor> {
        self.operands("transpose", &[("x", x)])?;
        let rank = self.shape(x)?.rank();
        let a = resolve_axis("transpose", a, rank)?;
        let b = resolve_axis("transpose", b, rank)?;
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.swap(a, b);
        self.permute(x, &perm)
    }

    /// Elements `start..end` along an axis (`0 <= start <= end <= len`).
    pub fn slice(&self, x: Tensor, axis: isize, start: usize, end: usize) -> Result<Tensor> {
        self.operands("slice", &[("x", x)])?;
        self.slice_step(x, axis, start, end, 1)
    }

    /// Elements `start, start + step, ...` below `end` along an axis.
    pub fn slice_step(
        &self,
        x: Tensor,
        axis: isize,
        start: usize,
        end: usize,
        step: usize,
    ) -> Result<Tensor> {
        self.operands("slice_step", &[("x", x)])?;
        let ty = self.ty(x)?;
        let axis = resolve_axis("slice", axis, ty.shape.rank())?;
        let len = ty.shape.0[axis];
        if start > end || end > len || step == 0 {
            return Err(Error::Shape {
                op: "slice",
                detail: format!(
                    "range {start}..{end} step {step} does not fit axis {axis} of length {len} \
                     (need start <= end <= {len} and step >= 1)"
                ),
            });
        }
        let mut dims = ty.shape.0.clone();
        dims[axis] = (end - start).div_ceil(step);
        self.push1(
            Op::Kernel(Arc::new(Slice { axis, start, step })),
            &[x],
            TensorType::new(dims, ty.dtype),
        )
    }

    /// Joins tensors along an axis; all other dimensions and the dtype must match.
    pub fn concat(&self, xs: &[Tensor], axis: isize) -> Result<Tensor> {
        for t in xs {
            self.operands("concat", &[("xs", *t)])?;
        }
        let first = xs.first().ok_or_else(|| Error::Shape {
            op: "concat",
            detail: "needs at least one tensor".into(),
        })?;
        let ty0 = self.ty(*first)?;
        let axis = resolve_axis("concat", axis, ty0.shape.rank())?;
        let mut dims = ty0.shape.0.clone();
        dims[axis] = 0;
        for &x in xs {
            let ty = self.ty(x)?;
            let same_other_dims = ty.shape.rank() == ty0.shape.rank()
                && (0..ty.shape.rank()).all(|d| d == axis || ty.shape.0[d] == ty0.shape.0[d]);
            if !same_other_dims {
                return Err(Error::Shape {
                    op: "concat",
                    detail: format!("{} and {} differ outside axis {axis}", ty0.shape, ty.shape),
                });
            }
            if ty.dtype != ty0.dtype {
                return Err(Error::DType {
                    op: "concat",
                    expected: format!("every tensor to be {}", ty0.dtype),
                    got: ty.dtype,
                });
            }
            dims[axis] += ty.shape.0[axis];
        }
        if xs.len() == 1 {
            return Ok(*first);
        }
        self.push1(Op::Kernel(Arc::new(Concat { axis })), xs, TensorType::new(dims, ty0.dtype))
    }

    /// Repeats size-1 (or missing leading) dimensions to reach `shape` (numpy rules).
    pub fn broadcast_to(&self, x: Tensor, shape: impl Into<Shape>) -> Result<Tensor> {
        self.operands("broadcast_to", &[("x", x)])?;
        let ty = self.ty(x)?;
        let shape = shape.into();
        if !ty.shape.broadcasts_to(&shape) {
            return Err(Error::Shape {
                op: "broadcast_to",
                detail: format!("{} cannot be broadcast to {shape}", ty.shape),
            });
        }
        if shape == ty.shape {
            return Ok(x);
        }
        self.push1(Op::Kernel(Arc::new(BroadcastTo)), &[x], TensorType::new(shape, ty.dtype))
    }

    /// Inserts a size-1 axis at `axis` (which may equal the rank, to append).
    pub fn unsqueeze(&self, x: Tensor, axis: usize) -> Result<Tensor> {
        self.operands("unsqueeze", &[("x", x)])?;
        let mut dims = self.shape(x)?.0;
        if axis > dims.len() {
            return Err(Error::Shape {
                op: "unsqueeze",
                detail: format!("axis {axis} is past the rank {} of the tensor", dims.len()),
            });
        }
        dims.insert(axis, 1);
        self.reshape(x, dims)
    }
}
