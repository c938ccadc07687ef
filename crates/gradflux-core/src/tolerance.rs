//! Comparing results across backends: a tolerance value type and a report that says where
//! and by how much two tensors differ.

use std::fmt;

use crate::TensorData;

/// Allowed difference: `|a - b| <= abs + rel * |expected|` between finite values. Special
/// values must match exactly: an expected infinity is met only by the same infinity (not by
/// a finite value however large, which `rel * |inf|` would otherwise allow), an expected
/// NaN only by a NaN, and a finite expectation never by an infinity or a NaN.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Tolerance {
    /// Allowed difference as a fraction of `|expected|`.
    pub rel: f64,
    /// Allowed difference in absolute terms, added to the relative part.
    pub abs: f64,
}

impl Tolerance {
    /// Bit-exact (integers, copies).
    pub const EXACT: Tolerance = Tolerance { rel: 0.0, abs: 0.0 };

    /// Allows `abs + rel * |expected|`.
    pub const fn new(rel: f64, abs: f64) -> Self {
        Tolerance { rel, abs }
    }

    fn allows(&self, expected: f64, actual: f64) -> bool {
        if expected == actual || (expected.is_nan() && actual.is_nan()) {
            return true;
        }
        if !expected.is_finite() || !actual.is_finite() {
            return false;
        }
        (expected - actual).abs() <= self.abs + self.rel * expected.abs()
    }
}

/// How two tensors differ; `Display` gives the worst index, both values and the mean error.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// The report `Display` prints.
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Checks `actual` against `expected`: same shape, same dtype, every element within `tol`.
pub fn compare(expected: &TensorData, actual: &TensorData, tol: Tolerance) -> Result<(), Mismatch> {
    if expected.shape() != actual.shape() || expected.dtype() != actual.dtype() {
        return Err(Mismatch {
            detail: format!(
                "expected {} {}, got {} {}",
                expected.dtype(),
                expected.shape(),
                actual.dtype(),
                actual.shape()
            ),
        });
    }
    let (e, a) = (expected.to_f64_vec(), actual.to_f64_vec());
    let mut worst: Option<(usize, f64)> = None;
    let mut failures = 0usize;
    let mut err_sum = 0.0;
    for i in 0..e.len() {
        let diff = if e[i] == a[i] {
            0.0
        } else {
            (e[i] - a[i]).abs()
        };
        if diff.is_finite() {
            err_sum += diff;
        }
        if !tol.allows(e[i], a[i]) {
            failures += 1;
            let score = if diff.is_nan() { f64::INFINITY } else { diff };
            if worst.is_none_or(|(_, w)| score > w) {
                worst = Some((i, score));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(Mismatch {
            detail: format!(
                "{failures} of {} elements outside rel {:e} abs {:e}; worst at flat index {i} \
                 (coords {:?}): expected {}, got {}; mean abs error {:e}",
                e.len(),
                tol.rel,
                tol.abs,
                unravel(i, expected.shape().dims()),
                e[i],
                a[i],
                err_sum / e.len().max(1) as f64
            ),
        }),
    }
}

fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut out = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        out[d] = i % dims[d].max(1);
        i /= dims[d].max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_worst_index_and_values() {
        let e = TensorData::new([2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let a = TensorData::new([2, 2], vec![1.0f32, 2.0, 3.5, 4.0]).unwrap();
        let m = compare(&e, &a, Tolerance::new(1e-3, 1e-3)).unwrap_err();
        assert!(m.detail.contains("flat index 2"), "{m}");
        assert!(m.detail.contains("[1, 0]"), "{m}");
        assert!(m.detail.contains("expected 3, got 3.5"), "{m}");
        assert!(compare(&e, &e, Tolerance::EXACT).is_ok());
    }

    #[test]
    fn special_values_must_match_exactly() {
        let loose = Tolerance::new(1e3, 1e3);
        let t = |v: f32| TensorData::new([1], vec![v]).unwrap();
        let inf = f32::INFINITY;
        for (expected, actual, ok) in [
            (inf, inf, true),
            (-inf, -inf, true),
            (f32::NAN, f32::NAN, true),
            (inf, 1e30, false),
            (inf, -inf, false),
            (inf, f32::NAN, false),
            (1e30, inf, false),
            (f32::NAN, 0.0, false),
            (0.0, f32::NAN, false),
            (-0.0, 0.0, true),
            (1.0, 500.0, true),
        ] {
            assert_eq!(
                compare(&t(expected), &t(actual), loose).is_ok(),
                ok,
                "expected {expected}, got {actual}"
            );
        }
    }
}
