//! The CPU reference of the running sums: floats carried in f64 and rounded once per
//! element, integers wrapping as they do on the GPU.

use half::f16;

use crate::{Result, Storage, TensorData};

/// The running sums of `x` seen as `[outer, n, inner]` lanes along the middle axis.
pub(super) fn cumsum(
    x: &TensorData,
    lanes: (usize, usize, usize),
    reverse: bool,
) -> Result<TensorData> {
    let storage = match x.storage() {
        Storage::F16(v) => Storage::F16(scan(v, lanes, reverse, 0.0, |a, x| a + x.to_f64(), f16::from_f64)),
        Storage::F32(v) => Storage::F32(scan(v, lanes, reverse, 0.0, |a, x| a + x as f64, |a| a as f32)),
        Storage::F64(v) => Storage::F64(scan(v, lanes, reverse, 0.0, |a, x| a + x, |a| a)),
        Storage::I32(v) => Storage::I32(scan(v, lanes, reverse, 0, i32::wrapping_add, |a| a)),
        Storage::U32(v) => Storage::U32(scan(v, lanes, reverse, 0, u32::wrapping_add, |a| a)),
    };
    TensorData::from_storage(x.shape().clone(), storage)
}

/// One pass per lane, in the axis' order (from its end when `reverse`), carrying `A`.
fn scan<T: Copy, A: Copy>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    reverse: bool,
    zero: A,
    add: impl Fn(A, T) -> A,
    round: impl Fn(A) -> T,
) -> Vec<T> {
    let mut out = x.to_vec();
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = zero;
            for step in 0..n {
                let j = if reverse { n - 1 - step } else { step };
                let at = (o * n + j) * inner + i;
                acc = add(acc, x[at]);
                out[at] = round(acc);
            }
        }
    }
    out
}
