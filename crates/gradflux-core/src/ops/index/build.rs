use std::sync::Arc;

use super::{Gather, ScatterAdd};
use crate::builder::resolve_axis;
use crate::{DType, Error, Graph, Op, Result, Tensor, TensorType};

pub(crate) fn require_index(op: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_int() {
        Ok(())
    } else {
        Err(Error::DType {
            op,
            expected: "an integer index tensor (i32 or u32)".into(),
            got: dtype,
        })
    }
}

impl Graph {
    /// Picks slices along `axis` by index: the result has shape
    /// `x[..axis] ++ idx.shape ++ x[axis+1..]` (numpy `take`). An index outside
    /// `0..x.shape[axis]` reads 0, on every backend.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let table = g.input("table", [10, 4], DType::F32)?;
    /// let ids = g.input("ids", [2, 3], DType::U32)?;
    /// assert_eq!(g.shape(g.gather(table, 0, ids)?)?.dims(), &[2, 3, 4]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn gather(&self, x: Tensor, axis: isize, idx: Tensor) -> Result<Tensor> {
        self.operands("gather", &[("x", x), ("idx", idx)])?;
        let tx = self.ty(x)?;
        let ti = self.ty(idx)?;
        require_index("gather", ti.dtype)?;
        let axis = resolve_axis("gather", axis, tx.shape.rank())?;
        let mut dims = tx.shape.0[..axis].to_vec();
        dims.extend(&ti.shape.0);
        dims.extend(&tx.shape.0[axis + 1..]);
        self.push1(
            Op::Kernel(Arc::new(Gather { axis })),
            &[x, idx],
            TensorType::new(dims, tx.dtype),
        )
    }

    /// The adjoint of [`Graph::gather`]: adds each slice of `src` into row `idx[j]` of a
    /// zero tensor with `dim_size` rows along `axis`. `src` must have shape
    /// `out[..axis] ++ idx.shape ++ out[axis+1..]`. Out-of-range indices are ignored.
    /// The sum is deterministic (fixed order), so runs repeat bit for bit.
    pub fn scatter_add(
        &self,
        src: Tensor,
        axis: isize,
        idx: Tensor,
        dim_size: usize,
    ) -> Result<Tensor> {
        self.operands("scatter_add", &[("src", src), ("idx", idx)])?;
        let ts = self.ty(src)?;
        let ti = self.ty(idx)?;
        require_index("scatter_add", ti.dtype)?;
        let ir = ti.shape.rank();
        if ts.shape.rank() < ir {
            return Err(Error::Shape {
                op: "scatter_add",
                detail: format!("src {} has lower rank than idx {}", ts.shape, ti.shape),
            });
        }
        // axis indexes the output, whose rank is src.rank - idx.rank + 1.
        let out_rank = ts.shape.rank() + 1 - ir;
        let axis = resolve_axis("scatter_add", axis, out_rank)?;
        if ts.shape.0[axis..axis + ir] != ti.shape.0[..] {
            return Err(Error::Shape {
                op: "scatter_add",
                detail: format!(
                    "src {} must hold idx's shape {} at axis {axis}",
                    ts.shape, ti.shape
                ),
            });
        }
        let mut dims = ts.shape.0[..axis].to_vec();
        dims.push(dim_size);
        dims.extend(&ts.shape.0[axis + ir..]);
        self.push1(
            Op::Kernel(Arc::new(ScatterAdd { axis, dim_size })),
            &[src, idx],
            TensorType::new(dims, ts.dtype),
        )
    }
}
