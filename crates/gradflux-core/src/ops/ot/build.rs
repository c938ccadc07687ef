//! Optimal-transport building blocks: the entropic soft minimum that a log-domain
//! Sinkhorn iteration applies to each potential in turn.

use super::{PointSoftmin, Softmin};
use crate::builder::{require_float, require_positive};
use crate::{Error, Graph, Op, PointCost, Result, SoftminAxis, Tensor, TensorType};

impl Graph {
    /// The entropic soft minimum of a cost matrix against a log-weighted potential, one
    /// half of a log-domain Sinkhorn iteration:
    ///
    /// - [`SoftminAxis::PerRow`]: `out[i] = −eps · log Σ_j exp(h[j] − cost[i, j] / eps)`,
    ///   with `cost [.., n, m]`, `h [.., m]` and `out [.., n]`;
    /// - [`SoftminAxis::PerColumn`]: `out[j] = −eps · log Σ_i exp(h[i] − cost[i, j] / eps)`,
    ///   with `h [.., n]` and `out [.., m]`, reading the cost in place.
    ///
    /// With `h = log b + g / eps` this is the update `f = −eps · LSE(log b + (g − C) / eps)`;
    /// as `eps → 0` it tends to `min_j (cost[i, j] − eps·h[j])`. Leading (batch) dimensions
    /// of `cost` and `h` must be equal. A row whose terms are all `-inf` gives `+inf`; a
    /// NaN anywhere in a row gives NaN.
    ///
    /// Differentiable in `cost` and `h`: with `w[i, j] = exp(h[j] − cost[i, j]/eps +
    /// out[i]/eps)` (each row's softmax weights), `∂out[i]/∂cost[i, j] = w[i, j]` and
    /// `∂out[i]/∂h[j] = −eps · w[i, j]`.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, SoftminAxis};
    /// let g = Graph::new();
    /// let cost = g.input("cost", [4, 300, 200], DType::F32)?; // 4 problems
    /// let h = g.input("h", [4, 200], DType::F32)?;
    /// let f = g.softmin(cost, h, 0.05, SoftminAxis::PerRow)?;
    /// assert_eq!(g.shape(f)?.dims(), &[4, 300]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn softmin(&self, cost: Tensor, h: Tensor, eps: f64, axis: SoftminAxis) -> Result<Tensor> {
        self.operands("softmin", &[("cost", cost), ("h", h)])?;
        let op = "softmin";
        let (ct, ht) = (self.ty(cost)?, self.ty(h)?);
        require_float(op, ct.dtype)?;
        if ht.dtype != ct.dtype {
            return Err(Error::DType {
                op,
                expected: format!("h in the cost's dtype {}", ct.dtype),
                got: ht.dtype,
            });
        }
        require_positive(op, "eps", eps)?;
        let dims = ct.shape.dims();
        let rank = dims.len();
        if rank < 2 {
            return Err(Error::Shape {
                op,
                detail: format!("cost {} must be [.., n, m] with rank 2 or more", ct.shape),
            });
        }
        let (batch, n, m) = (&dims[..rank - 2], dims[rank - 2], dims[rank - 1]);
        let (reduced, kept) = match axis {
            SoftminAxis::PerRow => (m, n),
            SoftminAxis::PerColumn => (n, m),
        };
        let mut want = batch.to_vec();
        want.push(reduced);
        if ht.shape.dims() != want.as_slice() {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "h must be {want:?} for cost {} reduced {axis:?}, got {}",
                    ct.shape, ht.shape
                ),
            });
        }
        let mut out = batch.to_vec();
        out.push(kept);
        self.push1(
            Op::Kernel(std::sync::Arc::new(Softmin { eps, axis })),
            &[cost, h],
            TensorType::new(out, ct.dtype),
        )
    }

    /// The row soft minimum of [`Graph::softmin`] over a cost computed on the fly between
    /// points `x [.., n, d]` and `y [.., m, d]`:
    /// `out[.., i] = −eps · log Σ_j exp(h[.., j] − cost(x_i, y_j) / eps)` with `h [.., m]`.
    /// Memory is O(n + m); swap `x` and `y` (and give `h [.., n]`) for the column update.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, PointCost};
    /// let g = Graph::new();
    /// let x = g.input("x", [1000, 3], DType::F32)?;
    /// let y = g.input("y", [800, 3], DType::F32)?;
    /// let h = g.input("h", [800], DType::F32)?;
    /// let f = g.point_softmin(x, y, h, 0.05, PointCost::SqEuclidean)?; // [1000]
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn point_softmin(
        &self,
        x: Tensor,
        y: Tensor,
        h: Tensor,
        eps: f64,
        cost: PointCost,
    ) -> Result<Tensor> {
        self.operands("point_softmin", &[("x", x), ("y", y), ("h", h)])?;
        let op = "point_softmin";
        let (xt, yt, ht) = (self.ty(x)?, self.ty(y)?, self.ty(h)?);
        require_float(op, xt.dtype)?;
        require_positive(op, "eps", eps)?;
        let (batch, n, m, _) = point_dims(op, &xt, &yt)?;
        let mut want = batch.clone();
        want.push(m);
        if ht.shape.dims() != want.as_slice() || ht.dtype != xt.dtype {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "h must be {want:?} {} for y {}, got {} {}",
                    xt.dtype, yt.shape, ht.shape, ht.dtype
                ),
            });
        }
        let mut out = batch;
        out.push(n);
        self.push1(
            Op::Kernel(std::sync::Arc::new(PointSoftmin { eps, cost })),
            &[x, y, h],
            TensorType::new(out, xt.dtype),
        )
    }
}

/// `(batch, n, m, d)` of point clouds `x [.., n, d]` and `y [.., m, d]` with the same batch
/// dimensions, dimension and dtype.
pub(crate) fn point_dims(
    op: &'static str,
    x: &TensorType,
    y: &TensorType,
) -> Result<(Vec<usize>, usize, usize, usize)> {
    let (xd, yd) = (x.shape.dims(), y.shape.dims());
    let r = xd.len();
    if r < 2 || yd.len() != r || xd[..r - 2] != yd[..r - 2] || xd[r - 1] != yd[r - 1] {
        return Err(Error::Shape {
            op,
            detail: format!(
                "points must be x [.., n, d] and y [.., m, d] with the same batch dimensions \
                 and d, got {} and {}",
                x.shape, y.shape
            ),
        });
    }
    if x.dtype != y.dtype {
        return Err(Error::DType {
            op,
            expected: format!("y in x's dtype {}", x.dtype),
            got: y.dtype,
        });
    }
    Ok((xd[..r - 2].to_vec(), xd[r - 2], yd[r - 2], xd[r - 1]))
}
