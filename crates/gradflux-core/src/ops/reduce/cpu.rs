//! Reductions and softmax over one axis, both seen as lanes of an `[outer, len, inner]` view.
//!
//! Where a float result needs more than one rounding (sums, means, exponent sums) the work
//! is done in `f64` and rounded once at the end, so the reference is as close to exact as a
//! cheap implementation gets and the GPU is judged against that rather than against another
//! rounding order.

use crate::{Element, Error, ReduceOp, Result, Storage, TensorData, TensorType};

use crate::ops::num::{unsupported, Num};

/// `op` over `axis` of `x`; `out`'s shape says whether the axis is kept. Float
/// sums are taken in `f64` and rounded once.
pub fn reduce(op: ReduceOp, axis: usize, x: &TensorData, out: &TensorType) -> Result<TensorData> {
    if op.float_only() && !x.dtype().is_float() {
        return Err(unsupported(op.name(), x.dtype()));
    }
    let view = x.shape().split_at_axis(axis);
    if view.1 == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax) {
        return Err(Error::Shape {
            op: op.name(),
            detail: format!("cannot reduce the empty axis {axis} of shape {}", x.shape()),
        });
    }
    let storage = by_dtype!(x.dtype(), T => {
        let v = x.values::<T>()?;
        match op {
            ReduceOp::Sum => T::wrap(per_lane(v, view, sum::<T>)),
            ReduceOp::Mean => T::wrap(per_lane(v, view, mean::<T>)),
            ReduceOp::Max => T::wrap(per_lane(v, view, |l| fold_first(l, Num::maximum))),
            ReduceOp::Min => T::wrap(per_lane(v, view, |l| fold_first(l, Num::minimum))),
            ReduceOp::LogSumExp => T::wrap(per_lane(v, view, logsumexp::<T>)),
            ReduceOp::ArgMax => Storage::U32(per_lane(v, view, argmax::<T>)),
        }
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// Softmax, or log-softmax when `log`, along `axis` (floats).
pub fn softmax(axis: usize, log: bool, x: &TensorData, out: &TensorType) -> Result<TensorData> {
    let view = x.shape().split_at_axis(axis);
    let name = if log { "log_softmax" } else { "softmax" };
    let storage = by_float_dtype!(x.dtype(), name, T => {
        let v = x.values::<T>()?;
        Ok(T::wrap(per_lane_map(v, view, |lane| softmax_lane(lane, log))))
    })?;
    TensorData::from_storage(out.shape.clone(), storage)
}

/// Applies `f` to every lane `x[o, 0..len, i]` of the `(outer, len, inner)` view; the result
/// for lane `(o, i)` lands at `o * inner + i`, which is the reduced tensor's row-major
/// order whether or not the axis is kept as size 1.
fn per_lane<T: Copy, U>(
    x: &[T],
    (outer, len, inner): (usize, usize, usize),
    mut f: impl FnMut(&[T]) -> U,
) -> Vec<U> {
    let mut lane = Vec::with_capacity(len);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            lane.clear();
            lane.extend((0..len).map(|r| x[(o * len + r) * inner + i]));
            out.push(f(&lane));
        }
    }
    out
}

/// Like [`per_lane`], but `f` returns a whole lane that is written back in place.
fn per_lane_map<T: Copy + Default>(
    x: &[T],
    (outer, len, inner): (usize, usize, usize),
    mut f: impl FnMut(&[T]) -> Vec<T>,
) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let mut lane = Vec::with_capacity(len);
    for o in 0..outer {
        for i in 0..inner {
            lane.clear();
            lane.extend((0..len).map(|r| x[(o * len + r) * inner + i]));
            for (r, y) in f(&lane).into_iter().enumerate() {
                out[(o * len + r) * inner + i] = y;
            }
        }
    }
    out
}

fn sum<T: Num>(lane: &[T]) -> T {
    T::acc_finish(lane.iter().fold(T::ACC_ZERO, |acc, &x| T::acc_add(acc, x)))
}

/// An empty lane gives `0 / 0`, NaN, as the mean of nothing should.
fn mean<T: Num>(lane: &[T]) -> T {
    let total: f64 = lane.iter().map(|x| x.to_f64()).sum();
    T::from_f64(total / lane.len() as f64)
}

/// Callers have already rejected empty lanes.
fn fold_first<T: Copy>(lane: &[T], f: fn(T, T) -> T) -> T {
    lane[1..].iter().fold(lane[0], |acc, &x| f(acc, x))
}

/// `m + ln(sum(exp(x - m)))` with `m` the maximum, so no `exp` overflows. An entry equal
/// to the maximum contributes `exp(0)` (see [`shift`]), so a lane holding `+inf` gives
/// `+inf`, an all `-inf` lane (including an empty one) `-inf`, and any NaN gives NaN.
fn logsumexp<T: Num>(lane: &[T]) -> T {
    let m = lane_max_f64(lane);
    let s: f64 = lane.iter().map(|x| shift(x.to_f64(), m).exp()).sum();
    T::from_f64(m + s.ln())
}

/// NaN counts as larger than every number (NumPy's and PyTorch's `argmax`): the first NaN
/// wins. Otherwise a strict `>` while scanning upward keeps the first of equal maxima.
fn argmax<T: Num>(lane: &[T]) -> u32 {
    let is_nan = |x: &T| x.to_f64().is_nan();
    if let Some(first_nan) = lane.iter().position(is_nan) {
        return first_nan as u32;
    }
    let mut best = 0;
    for (r, x) in lane.iter().enumerate().skip(1) {
        if *x > lane[best] {
            best = r;
        }
    }
    best as u32
}

/// The shift `x - m` by the lane maximum `m`, taken as 0 where `x == m`: so a lane whose
/// maximum is infinite treats its infinite entries as tied maxima (softmax shares the
/// mass among them) instead of forming the NaN `inf - inf`.
pub fn shift(x: f64, m: f64) -> f64 {
    if x == m {
        0.0
    } else {
        x - m
    }
}

fn softmax_lane<T: Num>(lane: &[T], log: bool) -> Vec<T> {
    let m = lane_max_f64(lane);
    let s: f64 = lane.iter().map(|x| shift(x.to_f64(), m).exp()).sum();
    let ln_s = s.ln();
    lane.iter()
        .map(|x| {
            let shifted = shift(x.to_f64(), m);
            T::from_f64(if log {
                shifted - ln_s
            } else {
                shifted.exp() / s
            })
        })
        .collect()
}

/// The lane's maximum, NaN if any entry is NaN, `-inf` for an empty lane.
fn lane_max_f64<T: Num>(lane: &[T]) -> f64 {
    lane.iter()
        .map(|x| x.to_f64())
        .fold(f64::NEG_INFINITY, |m, x| {
            if m.is_nan() || x.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        })
}
