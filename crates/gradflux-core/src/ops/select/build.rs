//! Selection along an axis: `top_k`, and the per-row indexed reads and writes its gradient
//! (and routing) needs, `gather_along` and `scatter_along`.

use std::sync::Arc;

use super::{GatherAlong, ScatterAlong, TopK};
use crate::builder::{require_index, resolve_axis};
use crate::{DType, Error, Graph, Op, Result, Tensor, TensorType};

impl Graph {
    /// The `k` largest elements along `axis` (negative counts from the end), sorted
    /// descending, and their positions along that axis: `(values, indices)`, both with
    /// `k` in place of the axis's length; `indices` are `u32`.
    ///
    /// The order is total and the same on every backend:
    /// - equal values keep the lower index first (so `-0.0` and `0.0` tie);
    /// - NaN ranks above every number, `+inf` included (as `torch.topk` does), and NaNs
    ///   among themselves keep index order.
    ///
    /// `k` must lie in `1..=len`. The gradient flows to `values` only: each selected
    /// position receives its cotangent, every other position zero.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let logits = g.input("logits", [8192, 64], DType::F32)?; // tokens x experts
    /// let (gates, experts) = g.top_k(logits, 2, -1)?;
    /// assert_eq!(g.shape(gates)?.dims(), &[8192, 2]);
    /// assert_eq!(g.dtype(experts)?, DType::U32);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn top_k(&self, x: Tensor, k: usize, axis: isize) -> Result<(Tensor, Tensor)> {
        self.operands("top_k", &[("x", x)])?;
        let ty = self.ty(x)?;
        let axis = resolve_axis("top_k", axis, ty.shape.rank())?;
        let len = ty.shape.0[axis];
        if k == 0 || k > len {
            return Err(Error::Shape {
                op: "top_k",
                detail: format!(
                    "k = {k} must be between 1 and the length of axis {axis} ({len}) of {}",
                    ty.shape
                ),
            });
        }
        let mut dims = ty.shape.0.clone();
        dims[axis] = k;
        let outs = self.push(
            Op::Kernel(Arc::new(TopK { axis, k })),
            &[x],
            vec![
                TensorType::new(dims.clone(), ty.dtype),
                TensorType::new(dims, DType::U32),
            ],
        )?;
        Ok((outs[0], outs[1]))
    }

    /// Reads `x` along `axis` at per-position indices (numpy `take_along_axis`):
    /// `out[.., j, ..] = x[.., idx[.., j, ..], ..]`. `idx` (i32 or u32) has `x`'s shape
    /// except at `axis`, and the result has `idx`'s shape. An index outside the axis reads
    /// 0, on every backend.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let probs = g.input("probs", [16, 8], DType::F32)?;
    /// let chosen = g.input("chosen", [16, 2], DType::U32)?;
    /// assert_eq!(g.shape(g.gather_along(probs, -1, chosen)?)?.dims(), &[16, 2]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn gather_along(&self, x: Tensor, axis: isize, idx: Tensor) -> Result<Tensor> {
        self.operands("gather_along", &[("x", x), ("idx", idx)])?;
        let (tx, ti) = (self.ty(x)?, self.ty(idx)?);
        require_index("gather_along", ti.dtype)?;
        let axis = resolve_axis("gather_along", axis, tx.shape.rank())?;
        same_except_axis("gather_along", "x", &tx, &ti, axis)?;
        self.push1(
            Op::Kernel(Arc::new(GatherAlong { axis })),
            &[x, idx],
            TensorType::new(ti.shape.clone(), tx.dtype),
        )
    }

    /// The adjoint of [`Graph::gather_along`]: adds each `src[.., j, ..]` into position
    /// `idx[.., j, ..]` along `axis` of a zero tensor with `dim_size` there. `idx` has
    /// `src`'s shape. Indices outside `0..dim_size` are ignored; repeated indices add, in
    /// increasing `j`, so runs repeat bit for bit.
    pub fn scatter_along(
        &self,
        src: Tensor,
        axis: isize,
        idx: Tensor,
        dim_size: usize,
    ) -> Result<Tensor> {
        self.operands("scatter_along", &[("src", src), ("idx", idx)])?;
        let (ts, ti) = (self.ty(src)?, self.ty(idx)?);
        require_index("scatter_along", ti.dtype)?;
        let axis = resolve_axis("scatter_along", axis, ts.shape.rank())?;
        if ts.shape != ti.shape {
            return Err(Error::Shape {
                op: "scatter_along",
                detail: format!("idx {} must have src's shape {}", ti.shape, ts.shape),
            });
        }
        let mut dims = ts.shape.0.clone();
        dims[axis] = dim_size;
        self.push1(
            Op::Kernel(Arc::new(ScatterAlong { axis, dim_size })),
            &[src, idx],
            TensorType::new(dims, ts.dtype),
        )
    }
}

/// `idx` must match `x`'s rank and every dimension but `axis`.
fn same_except_axis(
    op: &'static str,
    name: &str,
    tx: &TensorType,
    ti: &TensorType,
    axis: usize,
) -> Result<()> {
    let (dx, di) = (tx.shape.dims(), ti.shape.dims());
    let matches = dx.len() == di.len()
        && dx
            .iter()
            .zip(di)
            .enumerate()
            .all(|(d, (a, b))| d == axis || a == b);
    if matches {
        Ok(())
    } else {
        Err(Error::Shape {
            op,
            detail: format!(
                "idx {} must have {name}'s shape {} except at axis {axis}",
                ti.shape, tx.shape
            ),
        })
    }
}
