//! Batched matrix product `op(a) [..batch_a, m, k] x op(b) [..batch_b, k, n]` with broadcast
//! batches, optional transposed operands, and the fused bias-and-activation epilogue.
//!
//! The builder has already turned rank-1 operands into matrices, so both inputs here have
//! rank >= 2 and the output is `[..batch, m, n]`.

use crate::{Element, MatMulSpec, Result, Shape, TensorData, TensorType};

use crate::ops::elementwise::cpu as elementwise;
use crate::ops::num::Num;
use crate::ops::strided::broadcast_offsets;

/// `op(a) · op(b)`, then the bias and activation `spec` asks for. Float products are
/// summed in `f64` and rounded once; integers wrap.
pub fn matmul(
    spec: MatMulSpec,
    a: &TensorData,
    b: &TensorData,
    bias: Option<&TensorData>,
    out: &TensorType,
) -> Result<TensorData> {
    let (da, db, dout) = (a.shape().dims(), b.shape().dims(), out.shape.dims());
    let (m, n) = (dout[dout.len() - 2], dout[dout.len() - 1]);
    let k = if spec.transpose_a {
        da[da.len() - 2]
    } else {
        da[da.len() - 1]
    };
    let batch = Shape::from(&dout[..dout.len() - 2]);
    // Broadcast offsets over the batch part count whole matrices, not elements.
    let a_mats = broadcast_offsets(&Shape::from(&da[..da.len() - 2]), &batch);
    let b_mats = broadcast_offsets(&Shape::from(&db[..db.len() - 2]), &batch);
    // Element strides of op(a) and op(b) as [row, column] of the logical operand.
    let sa = if spec.transpose_a { [1, m] } else { [k, 1] };
    let sb = if spec.transpose_b { [1, k] } else { [n, 1] };
    let bias_at = bias.map(|t| broadcast_offsets(t.shape(), &out.shape));
    let storage = by_dtype!(out.dtype, T => {
        let (av, bv) = (a.values::<T>()?, b.values::<T>()?);
        let biases = bias.map(|t| t.values::<T>()).transpose()?;
        let mut values: Vec<T> = Vec::with_capacity(out.shape.numel());
        for (&ma, &mb) in a_mats.iter().zip(&b_mats) {
            let lhs = &av[ma * m * k..(ma + 1) * m * k];
            let rhs = &bv[mb * k * n..(mb + 1) * k * n];
            for i in 0..m {
                for j in 0..n {
                    // The sum runs over p in order in the accumulator type, so an f32
                    // result is one rounding of an f64 dot product and does not depend on
                    // how a kernel tiles the loop.
                    let acc = (0..k).fold(T::ACC_ZERO, |acc, p| {
                        T::acc_mul_add(acc, lhs[i * sa[0] + p * sa[1]], rhs[p * sb[0] + j * sb[1]])
                    });
                    let mut v = T::acc_finish(acc);
                    if let (Some(bv), Some(at)) = (&biases, &bias_at) {
                        v = v.add(bv[at[values.len()]]);
                    }
                    values.push(v);
                }
            }
        }
        T::wrap(values)
    });
    let product = TensorData::from_storage(out.shape.clone(), storage)?;
    // The activation is the elementwise op of the same name, so fused and unfused graphs
    // share one definition.
    match spec.activation.unary() {
        Some(op) => elementwise::unary(op, &product, out),
        None => Ok(product),
    }
}
