//! `softmin`, the entropic soft minimum of optimal transport, computed in `f64` with the
//! row's largest term subtracted before exponentiating, and rounded once.

use crate::{Result, SoftminAxis, TensorData, TensorType};

use crate::ops::ot::cpu_points::{to_tensor, Clouds};

/// Where the costs of a soft minimum come from.
pub enum Geometry {
    /// A dense `[batch, n, m]` matrix.
    Dense {
        /// The costs, row-major.
        cost: Vec<f64>,
        /// Rows per problem.
        n: usize,
        /// Columns per problem.
        m: usize,
    },
    /// Computed on the fly between point clouds.
    Points(Clouds),
}

impl Geometry {
    /// The cost between row `i` and column `j` of problem `b`.
    pub fn cost(&self, b: usize, i: usize, j: usize) -> f64 {
        match self {
            Geometry::Dense { cost, n, m } => cost[(b * n + i) * m + j],
            Geometry::Points(c) => c.cost(b, i, j),
        }
    }
}

/// `out[i] = −eps · log Σ_j exp(h[j] − cost[i, j] / eps)` per row, or the same per column.
pub fn softmin(
    eps: f64,
    axis: SoftminAxis,
    cost: &TensorData,
    h: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let dims = cost.shape().dims();
    let rank = dims.len();
    let (n, m) = (dims[rank - 2], dims[rank - 1]);
    let batch = dims[..rank - 2].iter().product();
    let geometry = Geometry::Dense {
        cost: cost.to_f64_vec(),
        n,
        m,
    };
    let rows = axis == SoftminAxis::PerRow;
    to_tensor(
        out,
        &soft_minima(&geometry, (batch, n, m), eps, rows, &h.to_f64_vec()),
    )
}

/// `−eps · log Σ_r exp(h[b, r] − cost / eps)` for every row of every problem (`rows`),
/// reducing over the columns, or for every column reducing over the rows; in `f64`, with
/// the row's largest term taken out before exponentiating.
pub fn soft_minima(
    geometry: &Geometry,
    (batch, n, m): (usize, usize, usize),
    eps: f64,
    rows: bool,
    h: &[f64],
) -> Vec<f64> {
    let reduced = if rows { m } else { n };
    per_output(geometry, (batch, n, m), rows, |b, _, costs, terms| {
        for (r, t) in terms.iter_mut().enumerate() {
            *t = h[b * reduced + r] - costs(r) / eps;
        }
        -eps * log_sum_exp(terms)
    })
}

/// `Σ_r exp(out_pot[b, o] + red_pot[b, r] − cost / eps) · u[b, r]` for every output `o`:
/// a product of the plan-like kernel with a vector, per row (`rows`, reducing over the
/// columns) or per column. The caller keeps the exponent at most about 0 (a normalised
/// plan), so the terms are summed as they are.
pub fn kernel_products(
    geometry: &Geometry,
    (batch, n, m): (usize, usize, usize),
    eps: f64,
    rows: bool,
    (out_pot, red_pot): (&[f64], &[f64]),
    u: &[f64],
) -> Vec<f64> {
    let (kept, reduced) = if rows { (n, m) } else { (m, n) };
    per_output(geometry, (batch, n, m), rows, |b, o, costs, _| {
        let alpha = out_pot[b * kept + o];
        (0..reduced)
            .map(|r| {
                let k = b * reduced + r;
                (alpha + red_pot[k] - costs(r) / eps).exp() * u[k]
            })
            .sum()
    })
}

/// Terms below which `per_output` does not spread over threads.
const PARALLEL_TERMS: usize = 1 << 15;

/// One value per output of every problem (per row when `rows`, else per column), each
/// from `value(problem, output, cost at reduced index r, scratch of the reduced length)`. The
/// outputs are independent, so they are split over the machine's cores; each is computed
/// the same way whatever the split.
fn per_output<F>(
    geometry: &Geometry,
    (batch, n, m): (usize, usize, usize),
    rows: bool,
    value: F,
) -> Vec<f64>
where
    F: Fn(usize, usize, &dyn Fn(usize) -> f64, &mut [f64]) -> f64 + Sync,
{
    let (kept, reduced) = if rows { (n, m) } else { (m, n) };
    let mut out = vec![0.0; batch * kept];
    // Small problems run on this thread: a thread costs more than they do.
    let threads = if out.len() * reduced < PARALLEL_TERMS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |t| t.get())
    };
    let chunk = out.len().div_ceil(threads).max(1);
    let fill = |c: usize, part: &mut [f64]| {
        let mut scratch = vec![0.0; reduced];
        for (k, slot) in part.iter_mut().enumerate() {
            let (b, o) = ((c * chunk + k) / kept, (c * chunk + k) % kept);
            let costs = |r: usize| {
                let (i, j) = if rows { (o, r) } else { (r, o) };
                geometry.cost(b, i, j)
            };
            *slot = value(b, o, &costs, &mut scratch);
        }
    };
    if threads == 1 {
        fill(0, &mut out);
        return out;
    }
    let fill = &fill;
    std::thread::scope(|scope| {
        for (c, part) in out.chunks_mut(chunk).enumerate() {
            scope.spawn(move || fill(c, part));
        }
    });
    out
}

/// `log Σ exp(t)`: `-inf` for no terms or all `-inf`, NaN if any term is NaN, `+inf` if
/// any is `+inf`.
pub fn log_sum_exp(terms: &[f64]) -> f64 {
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

    fn softmin_typed(
        eps: f64,
        axis: SoftminAxis,
        cost: &[f64],
        h: &[f64],
        (batch, n, m): (usize, usize, usize),
    ) -> Vec<f64> {
        let geometry = Geometry::Dense {
            cost: cost.to_vec(),
            n,
            m,
        };
        soft_minima(
            &geometry,
            (batch, n, m),
            eps,
            axis == SoftminAxis::PerRow,
            h,
        )
    }

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
