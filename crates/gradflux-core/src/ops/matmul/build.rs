use std::sync::Arc;

use crate::ops::layout::Permute;
use crate::{Activation, Error, Graph, MatMulSpec, Op, Result, Shape, Tensor, TensorType};

impl Graph {
    /// Matrix product with numpy `matmul` rules: `[..., m, k] x [..., k, n] -> [..., m, n]`,
    /// batch dimensions broadcast, and a rank-1 operand is treated as a row (left) or a
    /// column (right) vector whose unit dimension is dropped from the result.
    ///
    /// An operand that is the [`transpose`](Graph::transpose) of its last two axes is read
    /// in place by the kernel instead of being copied first, so `matmul(transpose(a), b)`
    /// costs the same as `matmul(a, b)`.
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
        self.operands("matmul", &[("a", a), ("b", b)])?;
        self.matmul_impl("matmul", a, b, None, Activation::Identity)
    }

    /// `activation(x · w + bias)` as one fused kernel: the bias add and the activation run
    /// on the product while it is still in registers. `x` and `w` follow [`matmul`]'s rules
    /// (transposed operands are read in place); `bias` broadcasts to the result's shape,
    /// typically `[n]`.
    ///
    /// [`matmul`]: Graph::matmul
    ///
    /// ```
    /// # use gradflux_core::{Activation, Graph, DType};
    /// let g = Graph::new();
    /// let x = g.input("x", [32, 64], DType::F32)?;
    /// let w = g.input("w", [64, 16], DType::F32)?;
    /// let b = g.input("b", [16], DType::F32)?;
    /// let h = g.linear(x, w, Some(b), Activation::Relu)?;
    /// assert_eq!(g.shape(h)?.dims(), &[32, 16]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn linear(
        &self,
        x: Tensor,
        w: Tensor,
        bias: Option<Tensor>,
        activation: Activation,
    ) -> Result<Tensor> {
        self.operands("linear", &[("x", x), ("w", w)])?;
        if let Some(t) = bias {
            self.operands("linear", &[("bias", t)])?;
        }
        self.matmul_impl("linear", x, w, bias, activation)
    }

    /// A matmul node with explicit transpose flags, for graph transforms (gradients)
    /// that know the layout they want: `op(a) x op(b)` with both operands of rank >= 2.
    pub(crate) fn matmul_t(&self, a: Tensor, ta: bool, b: Tensor, tb: bool) -> Result<Tensor> {
        let (a, ta) = self.fold_transpose(a, ta)?;
        let (b, tb) = self.fold_transpose(b, tb)?;
        let spec = MatMulSpec {
            transpose_a: ta,
            transpose_b: tb,
            ..MatMulSpec::default()
        };
        let dims = self.matmul_dims("matmul", a, b, spec)?;
        let dtype = self.dtype(a)?;
        self.push1(Op::Kernel(Arc::new(spec)), &[a, b], TensorType::new(dims, dtype))
    }

    fn matmul_impl(
        &self,
        op: &'static str,
        a: Tensor,
        b: Tensor,
        bias: Option<Tensor>,
        activation: Activation,
    ) -> Result<Tensor> {
        let dtype = self.same_dtype(op, a, b)?;
        if let Some(bias) = bias {
            self.same_dtype(op, a, bias)?;
        }
        if activation.unary().is_some_and(|u| u.float_only()) && !dtype.is_float() {
            return Err(Error::DType {
                op,
                expected: format!("a float dtype for activation `{}`", activation.name()),
                got: dtype,
            });
        }
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        if sa.rank() == 0 || sb.rank() == 0 {
            return Err(Error::Shape {
                op,
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
        let (a2, ta) = self.fold_transpose(a2, false)?;
        let (b2, tb) = self.fold_transpose(b2, false)?;
        let spec = MatMulSpec {
            transpose_a: ta,
            transpose_b: tb,
            bias: bias.is_some(),
            activation,
        };
        let dims = self.matmul_dims(op, a2, b2, spec)?;
        // Drop the unit dimensions introduced for rank-1 operands.
        let (m, n) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let mut final_dims = dims[..dims.len() - 2].to_vec();
        if sa.rank() > 1 {
            final_dims.push(m);
        }
        if sb.rank() > 1 {
            final_dims.push(n);
        }
        let mut inputs = vec![a2, b2];
        if let Some(bias) = bias {
            let sbias = self.shape(bias)?;
            let target = Shape(final_dims.clone());
            if Shape::broadcast(&sbias, &target).as_ref() != Some(&target) {
                return Err(Error::Shape {
                    op,
                    detail: format!("bias {sbias} does not broadcast to the result {target}"),
                });
            }
            // The kernel broadcasts the bias against the rank >= 2 result; a rank-1 operand
            // changed that shape, so spell the bias out in the kernel's shape.
            let bias = if final_dims != dims {
                self.reshape(self.broadcast_to(bias, target)?, dims.clone())?
            } else {
                bias
            };
            inputs.push(bias);
        }
        let out = self.push1(
            Op::Kernel(Arc::new(spec)),
            &inputs,
            TensorType::new(dims.clone(), dtype),
        )?;
        if final_dims != dims {
            self.reshape(out, final_dims)
        } else {
            Ok(out)
        }
    }

    /// The result dims of `op(a) x op(b)` for operands of rank >= 2.
    fn matmul_dims(
        &self,
        op: &'static str,
        a: Tensor,
        b: Tensor,
        spec: MatMulSpec,
    ) -> Result<Vec<usize>> {
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        let (ra, rb) = (sa.rank(), sb.rank());
        let (mut m, mut k) = (sa.0[ra - 2], sa.0[ra - 1]);
        if spec.transpose_a {
            std::mem::swap(&mut m, &mut k);
        }
        let (mut k2, mut n) = (sb.0[rb - 2], sb.0[rb - 1]);
        if spec.transpose_b {
            std::mem::swap(&mut k2, &mut n);
        }
        if k != k2 {
            return Err(Error::Shape {
                op,
                detail: format!("inner dimensions differ: {sa} x {sb} ({k} vs {k2})"),
            });
        }
        let batch_a = Shape(sa.0[..ra - 2].to_vec());
        let batch_b = Shape(sb.0[..rb - 2].to_vec());
        let batch = Shape::broadcast(&batch_a, &batch_b).ok_or_else(|| Error::Shape {
            op,
            detail: format!("batch dimensions of {sa} and {sb} do not broadcast"),
        })?;
        let mut dims = batch.0;
        dims.extend([m, n]);
        Ok(dims)
    }

    /// If `t` is a permute that only swaps its last two axes, the matmul reads its source
    /// with the transpose flag flipped, and the permute (now unused) is pruned at compile.
    fn fold_transpose(&self, t: Tensor, transposed: bool) -> Result<(Tensor, bool)> {
        let value = self.check(t)?;
        let source = self.with_node(value, |node| match node.op.kernel::<Permute>() {
            Some(Permute { perm }) => {
                let r = perm.len();
                let swaps_last_two = r >= 2
                    && perm[r - 2] == r - 1
                    && perm[r - 1] == r - 2
                    && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p);
                swaps_last_two.then(|| node.inputs[0])
            }
            _ => None,
        });
        Ok(match source {
            Some(v) => (self.tensor(v), !transposed),
            None => (t, transposed),
        })
    }
}
