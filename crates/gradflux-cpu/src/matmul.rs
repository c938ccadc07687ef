//! Batched matrix product `[..batch_a, m, k] x [..batch_b, k, n]` with broadcast batches.
//!
//! The builder has already turned rank-1 operands into matrices, so both inputs here have
//! rank >= 2 and the output is `[..batch, m, n]`.

use gradflux_core::{Element, Result, Shape, TensorData, TensorType};

use crate::num::Num;
use crate::strided::broadcast_offsets;

pub(crate) fn matmul(a: &TensorData, b: &TensorData, out: &TensorType) -> Result<TensorData> {
    let (da, db, dout) = (a.shape().dims(), b.shape().dims(), out.shape.dims());
    let (m, k) = (da[da.len() - 2], da[da.len() - 1]);
    let n = db[db.len() - 1];
    let batch = Shape::from(&dout[..dout.len() - 2]);
    // Broadcast offsets over the batch part count whole matrices, not elements.
    let a_mats = broadcast_offsets(&Shape::from(&da[..da.len() - 2]), &batch);
    let b_mats = broadcast_offsets(&Shape::from(&db[..db.len() - 2]), &batch);
    let storage = by_dtype!(out.dtype, T => {
        let (av, bv) = (a.values::<T>()?, b.values::<T>()?);
        let mut values: Vec<T> = Vec::with_capacity(out.shape.numel());
        for (&ma, &mb) in a_mats.iter().zip(&b_mats) {
            let lhs = &av[ma * m * k..(ma + 1) * m * k];
            let rhs = &bv[mb * k * n..(mb + 1) * k * n];
            matmul_2d(lhs, rhs, (m, k, n), &mut values);
        }
        T::wrap(values)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// Appends `lhs [m, k] x rhs [k, n]` to `out`. The sum runs over `p = 0..k` in order in the
/// accumulator type, so an `f32` result is a single rounding of an `f64` dot product and
/// does not depend on how a kernel happens to tile the loop.
fn matmul_2d<T: Num>(lhs: &[T], rhs: &[T], (m, k, n): (usize, usize, usize), out: &mut Vec<T>) {
    for i in 0..m {
        for j in 0..n {
            let acc = (0..k).fold(T::ACC_ZERO, |acc, p| {
                T::acc_mul_add(acc, lhs[i * k + p], rhs[p * n + j])
            });
            out.push(T::acc_finish(acc));
        }
    }
}
