//! `fused_route`: top-k routing of router logits as one op, so a backend can compute the
//! scores, the choice, the renormalisation and the per-expert histogram in one kernel
//! instead of a softmax, a top-k, a division and a scatter.

use crate::{DType, FusedRouteSpec, Graph, Op, Result, RouteScore, Tensor, TensorType};

/// What [`Graph::fused_route`] produces for `T` tokens, `E` experts and `k` choices.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FusedRouting {
    /// `[T, k]` gate weights in the logits' dtype, best first; differentiable.
    pub gates: Tensor,
    /// `[T, k]` `u32` expert of each gate.
    pub experts: Tensor,
    /// `[E]` `u32`: how many of the `T·k` choices went to each expert.
    pub counts: Tensor,
}

impl Graph {
    /// Top-k routing of `[T, E]` float logits in one op.
    ///
    /// **Choice.** Each token's `k` experts are its `k` largest logits, in `top_k`'s order:
    /// descending, ties to the lower expert, NaN above every number. Softmax and sigmoid
    /// are increasing, so this is the choice a top-k of the scores makes, except where
    /// rounding would make two different logits' scores equal; choosing by logit keeps the
    /// choice exact and the same on every backend.
    ///
    /// **Gates**, for chosen logits `z_j`, `j < k`:
    /// - `Softmax`: `exp(z_j − m) / Σ_e exp(z_e − m)` with `m` the row's largest logit, the
    ///   softmax probability; with `renormalize`, `exp(z_j − m) / Σ_i exp(z_i − m)` over the
    ///   chosen `i` only, i.e. a softmax over the `k` chosen logits.
    /// - `Sigmoid`: `1 / (1 + exp(−z_j))`; with `renormalize`, divided by their sum.
    ///
    /// A row holding NaN, or `+inf` under softmax, gets NaN gates, as `softmax` does.
    ///
    /// **Counts** are the histogram of `experts`, computed in the same pass: the load per
    /// expert a balancing rule or a capacity planner reads without another kernel.
    ///
    /// The gradient flows from `gates` to the logits; `experts` and `counts` carry none.
    /// [`Graph::route`] uses this op for its softmax and sigmoid routers.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, RouteScore};
    /// let g = Graph::new();
    /// let logits = g.input("logits", [8192, 256], DType::F32)?;
    /// let r = g.fused_route(logits, 8, RouteScore::Softmax, true)?;
    /// assert_eq!(g.shape(r.gates)?.dims(), &[8192, 8]);
    /// assert_eq!(g.shape(r.counts)?.dims(), &[256]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn fused_route(
        &self,
        logits: Tensor,
        k: usize,
        score: RouteScore,
        renormalize: bool,
    ) -> Result<FusedRouting> {
        self.operands("fused_route", &[("logits", logits)])?;
        let (t, e) = self.router_logits("fused_route", logits)?;
        if k == 0 || k > e {
            return Err(crate::Error::Shape {
                op: "fused_route",
                detail: format!("k = {k} experts per token must be between 1 and the {e} experts"),
            });
        }
        let dtype = self.dtype(logits)?;
        let outs = self.push(
            Op::Kernel(std::sync::Arc::new(FusedRouteSpec {
                k,
                score,
                renormalize,
            })),
            &[logits],
            vec![
                TensorType::new([t, k], dtype),
                TensorType::new([t, k], DType::U32),
                TensorType::new([e], DType::U32),
            ],
        )?;
        Ok(FusedRouting {
            gates: outs[0],
            experts: outs[1],
            counts: outs[2],
        })
    }
}
