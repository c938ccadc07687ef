//! `point_softmin` and its vector-Jacobian product: the soft minimum over a cost computed
//! on the fly between points, in `f64`, rounded once per output.

use crate::{DType, PointCost, Result, TensorData, TensorType};

use crate::ops::ot::cpu::{soft_minima, Geometry};

/// Point clouds `x [batch, n, d]` and `y [batch, m, d]` as `f64`, with their sizes.
pub struct Clouds {
    /// `[batch, n, d]` coordinates of the first cloud, row-major.
    pub x: Vec<f64>,
    /// `[batch, m, d]` coordinates of the second cloud, row-major.
    pub y: Vec<f64>,
    /// Independent problems: the product of the leading dimensions.
    pub batch: usize,
    /// Points of `x` per problem.
    pub n: usize,
    /// Points of `y` per problem.
    pub m: usize,
    /// Coordinates per point.
    pub d: usize,
    /// The ground cost between two points.
    pub cost: PointCost,
}

impl Clouds {
    /// Reads `x [.., n, d]` and `y [.., m, d]` as `f64`, the leading dimensions
    /// flattened into `batch`.
    pub fn new(x: &TensorData, y: &TensorData, cost: PointCost) -> Clouds {
        let (xd, yd) = (x.shape().dims(), y.shape().dims());
        let r = xd.len();
        let (n, m, d) = (xd[r - 2], yd[r - 2], xd[r - 1]);
        let batch = xd[..r - 2].iter().product();
        Clouds {
            x: x.to_f64_vec(),
            y: y.to_f64_vec(),
            batch,
            n,
            m,
            d,
            cost,
        }
    }

    fn point(v: &[f64], b: usize, len: usize, i: usize, d: usize) -> &[f64] {
        &v[(b * len + i) * d..][..d]
    }

    /// The coordinates of point `i` of `x` in problem `b`.
    pub fn xi(&self, b: usize, i: usize) -> &[f64] {
        Self::point(&self.x, b, self.n, i, self.d)
    }

    /// The coordinates of point `j` of `y` in problem `b`.
    pub fn yj(&self, b: usize, j: usize) -> &[f64] {
        Self::point(&self.y, b, self.m, j, self.d)
    }

    /// The cost between `x_i` and `y_j` of problem `b`.
    pub fn cost(&self, b: usize, i: usize, j: usize) -> f64 {
        let d2 = self
            .xi(b, i)
            .iter()
            .zip(self.yj(b, j))
            .map(|(p, q)| (p - q) * (p - q))
            .sum();
        self.cost.of_sq_distance(d2)
    }

    /// `∂ cost(x_i, y_j) / ∂ x_i`, added into `out` scaled by `w` (the Euclidean cost's
    /// subgradient at coincident points is 0).
    fn add_cost_gradient(&self, b: usize, (i, j): (usize, usize), w: f64, out: &mut [f64]) {
        let (p, q) = (self.xi(b, i), self.yj(b, j));
        let scale = match self.cost {
            PointCost::SqEuclidean => 2.0 * w,
            PointCost::Euclidean => {
                let c = self.cost(b, i, j);
                if c > 0.0 {
                    w / c
                } else {
                    0.0
                }
            }
        };
        for ((o, pk), qk) in out.iter_mut().zip(p).zip(q) {
            *o += scale * (pk - qk);
        }
    }
}

/// `data` rounded to `ty`'s dtype.
pub fn to_tensor(ty: &TensorType, data: &[f64]) -> Result<TensorData> {
    TensorData::new(ty.shape.clone(), data.to_vec())?.cast_to(ty.dtype)
}

/// Rounds `v` to what `dtype` holds.
pub fn round_to(dtype: DType, v: f64) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        DType::F16 => crate::half::f16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// `out[b, i] = −eps · log Σ_j exp(h[b, j] − cost(x_i, y_j) / eps)`.
pub fn point_softmin(
    eps: f64,
    cost: PointCost,
    [x, y, h]: [&TensorData; 3],
    out: &TensorType,
) -> Result<TensorData> {
    let c = Clouds::new(x, y, cost);
    let sizes = (c.batch, c.n, c.m);
    let geometry = Geometry::Points(c);
    to_tensor(
        out,
        &soft_minima(&geometry, sizes, eps, true, &h.to_f64_vec()),
    )
}

/// `dx`, `dy`, `dh` of `point_softmin` (see `PointSoftminBackward`).
pub fn point_softmin_backward(
    eps: f64,
    cost: PointCost,
    [x, y, h, s, gy]: [&TensorData; 5],
    outs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let c = Clouds::new(x, y, cost);
    let (h, s, gy) = (h.to_f64_vec(), s.to_f64_vec(), gy.to_f64_vec());
    let (n, m, d) = (c.n, c.m, c.d);
    let mut dx = vec![0.0; c.batch * n * d];
    let mut dy = vec![0.0; c.batch * m * d];
    let mut dh = vec![0.0; c.batch * m];
    for b in 0..c.batch {
        for i in 0..n {
            let u = gy[b * n + i];
            for j in 0..m {
                let w = (h[b * m + j] + (s[b * n + i] - c.cost(b, i, j)) / eps).exp();
                if w == 0.0 {
                    continue;
                }
                dh[b * m + j] -= eps * u * w;
                let mut grad = vec![0.0; d];
                c.add_cost_gradient(b, (i, j), u * w, &mut grad);
                for k in 0..d {
                    dx[(b * n + i) * d + k] += grad[k];
                    dy[(b * m + j) * d + k] -= grad[k];
                }
            }
        }
    }
    Ok(vec![
        to_tensor(&outs[0], &dx)?,
        to_tensor(&outs[1], &dy)?,
        to_tensor(&outs[2], &dh)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_formulas() {
        let x = TensorData::new([1, 1, 2], vec![0.0f64, 0.0]).unwrap();
        let y = TensorData::new([1, 2, 2], vec![3.0f64, 4.0, 0.0, 0.0]).unwrap();
        let sq = Clouds::new(&x, &y, PointCost::SqEuclidean);
        assert_eq!((sq.cost(0, 0, 0), sq.cost(0, 0, 1)), (25.0, 0.0));
        let e = Clouds::new(&x, &y, PointCost::Euclidean);
        assert_eq!(e.cost(0, 0, 0), 5.0);
        let mut g = [0.0; 2];
        e.add_cost_gradient(0, (0, 1), 1.0, &mut g);
        assert_eq!(g, [0.0, 0.0], "coincident points: subgradient 0");
        e.add_cost_gradient(0, (0, 0), 1.0, &mut g);
        assert!(
            (g[0] + 0.6).abs() < 1e-15 && (g[1] + 0.8).abs() < 1e-15,
            "{g:?}"
        );
    }
}
