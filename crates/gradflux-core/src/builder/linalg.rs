use crate::{Error, Graph, Op, Result, Shape, Tensor, TensorType};

impl Graph {
    /// Matrix product with numpy `matmul` rules: `[..., m, k] x [..., k, n] -> [..., m, n]`,
    /// batch dimensions broadcast, and a rank-1 operand is treated as a row (left) or a
    /// column (right) vector whose unit dimension is dropped from the result.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let a = g.input("a", [8, 2, 3], DType::F32)?;
    /// let b = g.input("b", [3, 5], DType::F32)?; // broadcast over the batch
    /// assert_eq!(g.shape(g.matmul(a, b)?)?.dims(), &[8, 2, 5]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn matmul(&self, a: Tensor, b: Tensor) -> Result<Tensor> {
        let dtype = self.same_dtype("matmul", a, b)?;
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        if sa.rank() == 0 || sb.rank() == 0 {
            return Err(Error::Shape {
                op: "matmul",
                detail: format!("operands must have rank >= 1, got {sa} and {sb}"),
            });
        }
        let a2 = if sa.rank() == 1 {
            self.reshape(a, [1, sa.0[0]])?
        } else {
            a
        };
        let b2 = if sb.rank() == 1 {
            self.reshape(b, [sb.0[0], 1])?
        } else {
            b
        };
        let (sa2, sb2) = (self.shape(a2)?, self.shape(b2)?);
        let (ra, rb) = (sa2.rank(), sb2.rank());
        let (m, k) = (sa2.0[ra - 2], sa2.0[ra - 1]);
        let (k2, n) = (sb2.0[rb - 2], sb2.0[rb - 1]);
        if k != k2 {
            return Err(Error::Shape {
                op: "matmul",
                detail: format!("inner dimensions differ: {sa} x {sb} ({k} vs {k2})"),
            });
        }
        let batch_a = Shape(sa2.0[..ra - 2].to_vec());
        let batch_b = Shape(sb2.0[..rb - 2].to_vec());
        let batch = Shape::broadcast(&batch_a, &batch_b).ok_or_else(|| Error::Shape {
            op: "matmul",
            detail: format!("batch dimensions of {sa} and {sb} do not broadcast"),
        })?;
        let mut dims = batch.0.clone();
        dims.extend([m, n]);
        let out = self.push1(Op::MatMul, &[a2, b2], TensorType::new(dims.clone(), dtype))?;
        // Drop the unit dimensions introduced for rank-1 operands.
        let mut final_dims = batch.0;
        if sa.rank() > 1 {
            final_dims.push(m);
        }
        if sb.rank() > 1 {
            final_dims.push(n);
        }
        if final_dims != dims {
            self.reshape(out, final_dims)
        } else {
            Ok(out)
        }
    }
}
