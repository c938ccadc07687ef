//! Selection along an axis: `top_k`, `gather_along` and `scatter_along`, over the
//! `[outer, len, inner]` view of a tensor, where a "row" is one `(outer, inner)` pair.

use std::cmp::Ordering;

use crate::{Element, Result, TensorData, TensorType};

use crate::ops::index::cpu::{checked_rows, indices};
use crate::ops::num::Num;

/// The rank order of `top_k`: NaN above everything (NaNs equal among themselves), numbers
/// by value, so `-0.0 == 0.0`.
fn rank<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    #[allow(clippy::eq_op)]
    let (nan_a, nan_b) = (a != a, b != b);
    match (nan_a, nan_b) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// Values and `u32` positions of the `k` largest of each row, descending, lower index
/// first among equals.
pub fn top_k(
    axis: usize,
    k: usize,
    x: &TensorData,
    outs: [&TensorType; 2],
) -> Result<Vec<TensorData>> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let mut positions = vec![0u32; outer * k * inner];
    let storage = by_dtype!(x.dtype(), T => {
        let v = x.values::<T>()?;
        let mut values: Vec<T> = vec![T::ZERO; outer * k * inner];
        let mut order: Vec<usize> = Vec::with_capacity(len);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| &v[(o * len + j) * inner + i];
                order.clear();
                order.extend(0..len);
                // Best first, equal ranks in index order: a strict total order, so
                // selecting the k best and sorting only those gives the full sort's prefix.
                let best_first = |&a: &usize, &b: &usize| rank(at(b), at(a)).then(a.cmp(&b));
                if k < len {
                    order.select_nth_unstable_by(k - 1, best_first);
                }
                order[..k].sort_unstable_by(best_first);
                for (j, &p) in order[..k].iter().enumerate() {
                    let dst = (o * k + j) * inner + i;
                    values[dst] = *at(p);
                    positions[dst] = p as u32;
                }
            }
        }
        T::wrap(values)
    });
    Ok(vec![
        TensorData::from_storage(outs[0].shape.clone(), storage)?,
        TensorData::new(outs[1].shape.clone(), positions)?,
    ])
}

/// `out[o, j, i] = x[o, idx[o, j, i], i]`, 0 where the index is out of range.
pub fn gather_along(
    axis: usize,
    x: &TensorData,
    idx: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let m = out.shape.dims()[axis];
    let rows = checked_rows(indices(idx, "gather_along")?, len);
    let storage = by_dtype!(out.dtype, T => {
        let v = x.values::<T>()?;
        let mut values: Vec<T> = vec![T::ZERO; out.shape.numel()];
        for o in 0..outer {
            for j in 0..m {
                for i in 0..inner {
                    let at = (o * m + j) * inner + i;
                    if let Some(r) = rows[at] {
                        values[at] = v[(o * len + r) * inner + i];
                    }
                }
            }
        }
        T::wrap(values)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// `out[o, idx[o, j, i], i] += src[o, j, i]` into zeros, `j` increasing.
pub fn scatter_along(
    axis: usize,
    dim_size: usize,
    src: &TensorData,
    idx: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (outer, m, inner) = src.shape().split_at_axis(axis);
    let rows = checked_rows(indices(idx, "scatter_along")?, dim_size);
    let storage = by_dtype!(out.dtype, T => {
        let v = src.values::<T>()?;
        let mut acc = vec![T::ACC_ZERO; out.shape.numel()];
        for o in 0..outer {
            for j in 0..m {
                for i in 0..inner {
                    let at = (o * m + j) * inner + i;
                    if let Some(r) = rows[at] {
                        let dst = &mut acc[(o * dim_size + r) * inner + i];
                        *dst = T::acc_add(*dst, v[at]);
                    }
                }
            }
        }
        T::wrap(acc.into_iter().map(T::acc_finish).collect())
    });
    TensorData::from_storage(out.shape.clone(), storage)
}
