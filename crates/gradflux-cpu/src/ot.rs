//! `softmin`, the entropic soft minimum of optimal transport, computed in `f64` with the
//! row's largest term subtracted before exponentiating, and rounded once.

use gradflux_core::{Element, Result, SoftminAxis, TensorData, TensorType};

use crate::num::Float;

/// `out[i] = −eps · log Σ_j exp(h[j] − cost[i, j] / eps)` per row, or the same per column.
pub(crate) fn softmin(
    eps: f64,
    axis: SoftminAxis,
    cost: &TensorData,
    h: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let dims = cost.shape().dims();
    let rank = dims.len();
    let (n, m) = (dims[rank - 2], dims[rank - 1]);
    let batch = cost.numel().checked_div(n * m).unwrap_or(0);
    let storage = by_float_dtype!(cost.dtype(), "softmin", T => {
        let (c, hv) = (cost.values::<T>()?, h.values::<T>()?);
        Ok(T::wrap(softmin_typed(eps, axis, c, hv, (batch, n, m))))
    })?;
    TensorData::from_storage(out.shape.clone(), storage)
}

fn softmin_typed<T: Float>(
    eps: f64,
    axis: SoftminAxis,
    cost: &[T],
    h: &[T],
    (batch, n, m): (usize, usize, usize),
) -> Vec<T> {
    let (kept, reduced) = match axis {
        SoftminAxis::PerRow => (n, m),
        SoftminAxis::PerColumn => (m, n),
    };
    let mut out = Vec::with_capacity(batch * kept);
    let mut terms = vec![0f64; reduced];
    for b in 0..batch {
        let c = &cost[b * n * m..][..n * m];
        let h = &h[b * reduced..][..reduced];
        for o in 0..kept {
            for (r, t) in terms.iter_mut().enumerate() {
                let (i, j) = match axis {
                    SoftminAxis::PerRow => (o, r),
                    SoftminAxis::PerColumn => (r, o),
                };
                *t = h[r].to_f64() - c[i * m + j].to_f64() / eps;
            }
            out.push(T::from_f64(-eps * log_sum_exp(&terms)));
        }
    }
    out
}

/// `log Σ exp(t)`: `-inf` for no terms or all `-inf`, NaN if any term is NaN, `+inf` if
/// any is `+inf`.
pub(crate) fn log_sum_exp(terms: &[f64]) -> f64 {
    if terms.iter().any(|t| t.is_nan()) {
        return f64::NAN;
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top.is_infinite() {
        return top;
    }
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_by_hand_both_ways() {
        // cost [[0, 1], [2, 3], [4, 5]], eps 0.5.
        let cost = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let eps = 0.5;
        let rows = softmin_typed(eps, SoftminAxis::PerRow, &cost, &[0.1, -0.2], (1, 3, 2));
        for (i, got) in rows.iter().enumerate() {
            let s = (0.1 - cost[2 * i] / eps).exp() + (-0.2 - cost[2 * i + 1] / eps).exp();
            assert!((got - (-eps * s.ln())).abs() < 1e-15, "row {i}: {got}");
        }
        let cols = softmin_typed(
            eps,
            SoftminAxis::PerColumn,
            &cost,
            &[0.0, 1.0, 2.0],
            (1, 3, 2),
        );
        for (j, got) in cols.iter().enumerate() {
            let s: f64 = (0..3)
                .map(|i| (i as f64 - cost[2 * i + j] / eps).exp())
                .sum();
            assert!((got - (-eps * s.ln())).abs() < 1e-15, "column {j}: {got}");
        }
    }

    #[test]
    fn small_eps_tends_to_the_minimum_and_special_values_propagate() {
        let got = softmin_typed(
            1e-4,
            SoftminAxis::PerRow,
            &[3.0f64, 1.0, 2.0],
            &[0.0; 3],
            (1, 1, 3),
        );
        assert!((got[0] - 1.0).abs() < 1e-12, "{got:?}");
        let inf = f64::INFINITY;
        let all_inf = softmin_typed(1.0, SoftminAxis::PerRow, &[inf, inf], &[0.0; 2], (1, 1, 2));
        assert_eq!(all_inf, [inf]);
        let nan = softmin_typed(
            1.0,
            SoftminAxis::PerRow,
            &[0.0, f64::NAN],
            &[0.0; 2],
            (1, 1, 2),
        );
        assert!(nan[0].is_nan());
    }
}
