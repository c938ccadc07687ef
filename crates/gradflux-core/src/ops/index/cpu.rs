//! Indexed reads and writes along one axis: `gather` and its adjoint `scatter_add`.
//!
//! Out-of-range indices are defined (read 0, write nowhere) instead of being errors,
//! because a GPU kernel cannot report them; the reference must give the same answer.

use crate::{Element, Result, Storage, TensorData, TensorType};

use crate::ops::num::{unsupported, Num};

/// `out[o, j, i] = x[o, idx[j], i]` over the `[outer, len, inner]` view of `x`, with `j`
/// running over `idx` flattened.
pub fn gather(
    axis: usize,
    x: &TensorData,
    idx: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let rows = checked_rows(indices(idx, "gather")?, len);
    let storage = by_dtype!(out.dtype, T => {
        let v = x.values::<T>()?;
        let mut values: Vec<T> = Vec::with_capacity(out.shape.numel());
        for o in 0..outer {
            for row in &rows {
                match row {
                    Some(r) => {
                        let start = (o * len + r) * inner;
                        values.extend_from_slice(&v[start..start + inner]);
                    }
                    None => values.extend(std::iter::repeat_n(T::ZERO, inner)),
                }
            }
        }
        T::wrap(values)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// `out[o, idx[j], i] += src[o, j, i]` into zeros, for `j` in increasing order, so float
/// sums are reproducible run to run.
pub fn scatter_add(
    axis: usize,
    dim_size: usize,
    src: &TensorData,
    idx: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (outer, _, inner) = out.shape.split_at_axis(axis);
    let rows = checked_rows(indices(idx, "scatter_add")?, dim_size);
    let n_idx = rows.len();
    let storage = by_dtype!(out.dtype, T => {
        let v = src.values::<T>()?;
        let mut acc = vec![T::ACC_ZERO; out.shape.numel()];
        for o in 0..outer {
            for (j, row) in rows.iter().enumerate() {
                let Some(r) = row else { continue };
                for i in 0..inner {
                    let dst = &mut acc[(o * dim_size + r) * inner + i];
                    *dst = T::acc_add(*dst, v[(o * n_idx + j) * inner + i]);
                }
            }
        }
        T::wrap(acc.into_iter().map(T::acc_finish).collect())
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// The index tensor's values, widened so `i32` and `u32` indices share one range check.
pub fn indices(idx: &TensorData, op: &str) -> Result<Vec<i64>> {
    match idx.storage() {
        Storage::I32(v) => Ok(v.iter().map(|&i| i64::from(i)).collect()),
        Storage::U32(v) => Ok(v.iter().map(|&i| i64::from(i)).collect()),
        other => Err(unsupported(op, other.dtype())),
    }
}

/// Each index as a row number, or `None` where it falls outside `0..len`.
pub fn checked_rows(indices: Vec<i64>, len: usize) -> Vec<Option<usize>> {
    indices
        .into_iter()
        .map(|i| usize::try_from(i).ok().filter(|&r| r < len))
        .collect()
}
