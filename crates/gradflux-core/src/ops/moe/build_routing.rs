//! Mixture-of-experts routers: how a `[tokens, experts]` matrix of router logits becomes
//! each token's experts and gate weights.
//!
//! Every router is built from primitive ops (`softmax`, `top_k`, `gather_along`, ...), so
//! it runs on every backend, its CPU reference is the primitives' references, and its
//! gradient is the chain of their VJPs: gates are differentiable with respect to the
//! logits; expert choices (integers) are not.

use crate::builder::{require_float, require_positive, shape_error};
use crate::{DType, Graph, Result, RouteScore, Tensor, TensorData};

/// Which top-k router [`Graph::route`] builds. `k` is the number of experts per token.
///
/// The softmax and sigmoid routers compile to one [`Graph::fused_route`] op, which
/// chooses by logit: the same experts as choosing by score, since both scores are
/// increasing, except that two logits whose scores round to equal values still rank by
/// logit.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Router {
    /// `p = softmax(logits)` over the experts, then the `k` largest `p`; with
    /// `renormalize` the `k` gates are divided by their sum (Mixtral, Qwen-MoE), otherwise
    /// they are the probabilities themselves (Switch, GShard).
    SoftmaxTopK {
        /// Experts per token, from 1 to the number of experts.
        k: usize,
        /// Divide the `k` gates by their sum.
        renormalize: bool,
    },
    /// The `k` largest logits, then a softmax over those `k` only. Gates equal
    /// `SoftmaxTopK` with `renormalize`; the graph differs (no softmax over every expert).
    TopKSoftmax {
        /// Experts per token, from 1 to the number of experts.
        k: usize,
    },
    /// `s = sigmoid(logits)`, the `k` largest `s`, optionally divided by their sum.
    SigmoidTopK {
        /// Experts per token, from 1 to the number of experts.
        k: usize,
        /// Divide the `k` gates by their sum.
        renormalize: bool,
    },
    /// The DeepSeek-V3 scheme, see [`GroupedTopK`].
    Grouped(GroupedTopK),
}

/// Grouped top-k with a selection bias (DeepSeek-V3):
///
/// 1. `s = sigmoid(logits)`; selection scores are `s + bias` (`bias` is `[experts]`, used
///    to choose experts and never in the gates; it is balanced by a rule outside the
///    gradient, so no gradient flows into it).
/// 2. The experts form `groups` equal groups of consecutive experts; a group's score is
///    the sum of its two largest selection scores (its largest if it has one expert).
/// 3. Only the `topk_groups` best groups stay eligible; the `k` largest selection scores
///    among their experts are chosen.
/// 4. Gates are the chosen `s` (without bias) divided by their sum, times
///    `routed_scaling`.
///
/// With `groups = 1` and no bias this is `SigmoidTopK` with renormalisation and a scale.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct GroupedTopK {
    /// Experts per token, at most the experts of the `topk_groups` kept groups.
    pub k: usize,
    /// Groups of consecutive experts; must divide the number of experts.
    pub groups: usize,
    /// Groups kept eligible, `1..=groups`.
    pub topk_groups: usize,
    /// Factor the renormalised gates are multiplied by.
    pub routed_scaling: f64,
    /// `[experts]` selection bias in the logits' dtype, or none.
    pub bias: Option<Tensor>,
}

/// What a top-k router produces for `T` tokens and `E` experts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// `[T, k]` gate weights, in the logits' dtype; differentiable.
    pub gates: Tensor,
    /// `[T, k]` `u32` expert of each gate, best first; ties go to the lower expert.
    pub experts: Tensor,
    /// `[T, E]` each token's distribution over all experts, for
    /// [`Graph::load_balancing_loss`]: the softmax for the softmax routers, `s / sum(s)`
    /// for the sigmoid ones.
    pub probs: Tensor,
    /// `[E]` `u32`: how many of the `T·k` choices went to each expert.
    pub counts: Tensor,
}

/// What expert-choice routing produces for `E` experts each taking `C` tokens.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExpertChoice {
    /// `[E, C]` the weight of each taken token in its expert's output; differentiable.
    pub gates: Tensor,
    /// `[E, C]` `u32` tokens each expert takes, best first; ties go to the lower token.
    pub tokens: Tensor,
}

impl Graph {
    /// `[T, E]` router logits (float) → the shape, or an error naming what is wrong.
    pub(super) fn router_logits(&self, op: &'static str, logits: Tensor) -> Result<(usize, usize)> {
        let ty = self.ty(logits)?;
        require_float(op, ty.dtype)?;
        match ty.shape.dims() {
            &[t, e] if e > 0 => Ok((t, e)),
            _ => Err(shape_error(
                op,
                format!(
                    "logits {} must be [tokens, experts] with at least one expert",
                    ty.shape
                ),
            )),
        }
    }

    /// Top-k routing of `[T, E]` router logits by `router`: each token's `k` experts and
    /// their gates, plus the per-token distribution the load-balancing loss needs.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, Router};
    /// let g = Graph::new();
    /// let logits = g.input("logits", [512, 8], DType::F32)?;
    /// let r = g.route(logits, Router::SoftmaxTopK { k: 2, renormalize: true })?;
    /// assert_eq!(g.shape(r.gates)?.dims(), &[512, 2]);
    /// let aux = g.load_balancing_loss(r.probs, r.experts, 0.01)?;
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn route(&self, logits: Tensor, router: Router) -> Result<Routing> {
        self.operands("route", &[("logits", logits)])?;
        let (_, e) = self.router_logits("route", logits)?;
        let k = match router {
            Router::SoftmaxTopK { k, .. }
            | Router::TopKSoftmax { k }
            | Router::SigmoidTopK { k, .. }
            | Router::Grouped(GroupedTopK { k, .. }) => k,
        };
        if k == 0 || k > e {
            return Err(shape_error(
                "route",
                format!("k = {k} experts per token must be between 1 and the {e} experts"),
            ));
        }
        // The softmax and sigmoid routers are one fused op each (see `fused_route`):
        // choosing by logit is choosing by score, as both are increasing.
        let (score, renormalize, probs) = match router {
            Router::SoftmaxTopK { renormalize, .. } => {
                (RouteScore::Softmax, renormalize, self.softmax(logits, -1)?)
            }
            Router::TopKSoftmax { .. } => (RouteScore::Softmax, true, self.softmax(logits, -1)?),
            Router::SigmoidTopK { renormalize, .. } => (
                RouteScore::Sigmoid,
                renormalize,
                self.normalize_rows(self.sigmoid(logits)?)?,
            ),
            Router::Grouped(gk) => return self.grouped_top_k(logits, e, gk),
        };
        let fused = self.fused_route(logits, k, score, renormalize)?;
        Ok(Routing {
            gates: fused.gates,
            experts: fused.experts,
            probs,
            counts: fused.counts,
        })
    }

    /// `[E]` `u32` histogram of `experts` (any shape, `u32` ids below `e`).
    fn expert_counts(&self, experts: Tensor, e: usize) -> Result<Tensor> {
        let n = self.shape(experts)?.numel();
        let ones = self.full(1.0, [n], DType::U32)?;
        self.scatter_add(ones, 0, self.reshape(experts, [n])?, e)
    }

    /// Each row of `x` divided by its sum over the last axis.
    fn normalize_rows(&self, x: Tensor) -> Result<Tensor> {
        self.div(x, self.sum_keepdim(x, -1)?)
    }

    fn grouped_top_k(&self, logits: Tensor, e: usize, gk: GroupedTopK) -> Result<Routing> {
        let GroupedTopK {
            k,
            groups,
            topk_groups,
            routed_scaling,
            bias,
        } = gk;
        let t = self.shape(logits)?.dims()[0];
        let dtype = self.dtype(logits)?;
        if groups == 0 || !e.is_multiple_of(groups) {
            return Err(shape_error(
                "route",
                format!("{groups} expert groups must divide the {e} experts evenly"),
            ));
        }
        if topk_groups == 0 || topk_groups > groups {
            return Err(shape_error(
                "route",
                format!("topk_groups = {topk_groups} must be between 1 and the {groups} groups"),
            ));
        }
        let per_group = e / groups;
        if k > topk_groups * per_group {
            return Err(shape_error(
                "route",
                format!(
                    "k = {k} exceeds the {} experts in the {topk_groups} kept groups of \
                     {per_group}",
                    topk_groups * per_group
                ),
            ));
        }
        let s = self.sigmoid(logits)?;
        let choice = match bias {
            Some(b) => {
                let bt = self.ty(b)?;
                if bt.shape.dims() != [e] || bt.dtype != dtype {
                    return Err(shape_error(
                        "route",
                        format!(
                            "the selection bias must be [{e}] {dtype}, got {} {}",
                            bt.shape, bt.dtype
                        ),
                    ));
                }
                self.add(s, b)?
            }
            None => s,
        };
        let eligible = if topk_groups < groups {
            let by_group = self.reshape(choice, [t, groups, per_group])?;
            let (best, _) = self.top_k(by_group, per_group.min(2), -1)?;
            let group_score = self.sum(best, -1)?;
            let (_, kept) = self.top_k(group_score, topk_groups, -1)?;
            let ones = self.constant(TensorData::new(
                [t, topk_groups],
                vec![1u32; t * topk_groups],
            )?)?;
            let group_mask = self.scatter_along(ones, -1, kept, groups)?;
            let mask = self.reshape(
                self.broadcast_to(self.unsqueeze(group_mask, 2)?, [t, groups, per_group])?,
                [t, e],
            )?;
            self.select(mask, choice, self.scalar(f64::NEG_INFINITY, dtype)?)?
        } else {
            choice
        };
        let (_, experts) = self.top_k(eligible, k, -1)?;
        let chosen = self.gather_along(s, -1, experts)?;
        let gates = self.mul(
            self.normalize_rows(chosen)?,
            self.scalar(routed_scaling, dtype)?,
        )?;
        Ok(Routing {
            gates,
            experts,
            probs: self.normalize_rows(s)?,
            counts: self.expert_counts(experts, e)?,
        })
    }

    /// The BlockFFN router: `r = relu(logits)`, then RMSNorm over the experts,
    /// `r / sqrt(mean_e(r²) + eps)`. There is no top-k: a token's active experts are its
    /// non-zero gates, so the number of experts per token varies and is learned. A row
    /// whose logits are all non-positive activates no expert (gates all 0). Returns the
    /// `[T, E]` gates; scale them by a learned weight if the model has one.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let logits = g.input("logits", [64, 16], DType::F32)?;
    /// let gates = g.relu_router(logits, 1e-6)?;
    /// assert_eq!(g.shape(gates)?.dims(), &[64, 16]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn relu_router(&self, logits: Tensor, eps: f64) -> Result<Tensor> {
        self.operands("relu_router", &[("logits", logits)])?;
        self.router_logits("relu_router", logits)?;
        require_positive("relu_router", "eps", eps)?;
        let dtype = self.dtype(logits)?;
        let r = self.relu(logits)?;
        let ms = self.mean_keepdim(self.mul(r, r)?, -1)?;
        self.div(r, self.sqrt(self.add(ms, self.scalar(eps, dtype)?)?)?)
    }

    /// Expert-choice routing (Zhou et al., 2022): `p = softmax(logits)` over the experts
    /// for each token, then every expert takes the `capacity` tokens with the largest `p`
    /// for it. A token may be taken by several experts or by none. Gates are those `p`.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let logits = g.input("logits", [256, 8], DType::F32)?;
    /// let ec = g.expert_choice(logits, 64)?; // capacity = 2 * 256 / 8
    /// assert_eq!(g.shape(ec.tokens)?.dims(), &[8, 64]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn expert_choice(&self, logits: Tensor, capacity: usize) -> Result<ExpertChoice> {
        self.operands("expert_choice", &[("logits", logits)])?;
        let (t, _) = self.router_logits("expert_choice", logits)?;
        if capacity == 0 || capacity > t {
            return Err(shape_error(
                "expert_choice",
                format!("capacity = {capacity} must be between 1 and the {t} tokens"),
            ));
        }
        let probs = self.transpose(self.softmax(logits, -1)?, 0, 1)?;
        let (gates, tokens) = self.top_k(probs, capacity, -1)?;
        Ok(ExpertChoice { gates, tokens })
    }

    /// The Switch Transformer load-balancing loss for `T` tokens routed to `k` of `E`
    /// experts:
    ///
    /// `L = alpha · E · Σ_e f_e · P_e`, with
    /// - `f_e = (1 / (T·k)) · #{(t, j) : experts[t, j] = e}`, the fraction of the `T·k`
    ///   routing choices that went to `e` (so `Σ_e f_e = 1`, and `L = alpha` when both
    ///   `f` and `P` are uniform);
    /// - `P_e = (1 / T) · Σ_t probs[t, e]`, the mean router probability of `e`.
    ///
    /// `f` counts choices and carries no gradient; `L` is differentiable through `P`.
    /// Implementations that sum `f` over the `k` choices without dividing by `k` (as
    /// Hugging Face's Mixtral does) give `k` times this value.
    pub fn load_balancing_loss(
        &self,
        probs: Tensor,
        experts: Tensor,
        alpha: f64,
    ) -> Result<Tensor> {
        self.operands(
            "load_balancing_loss",
            &[("probs", probs), ("experts", experts)],
        )?;
        let op = "load_balancing_loss";
        let (t, e) = self.router_logits(op, probs)?;
        let ti = self.ty(experts)?;
        let dtype = self.dtype(probs)?;
        if ti.dtype != DType::U32 || ti.shape.rank() != 2 || ti.shape.dims()[0] != t {
            return Err(shape_error(
                op,
                format!(
                    "experts must be [{t}, k] u32 (one row per token of probs {}), got {} {}",
                    self.shape(probs)?,
                    ti.shape,
                    ti.dtype
                ),
            ));
        }
        let choices = ti.shape.numel();
        if choices == 0 {
            return Err(shape_error(op, "there are no routing choices".into()));
        }
        let counts = self.cast(self.expert_counts(experts, e)?, dtype)?;
        let p = self.mean(probs, 0)?;
        let dot = self.sum(self.mul(counts, p)?, 0)?;
        self.mul(dot, self.scalar(alpha * e as f64 / choices as f64, dtype)?)
    }

    /// The router z-loss (ST-MoE): `mean_t (logsumexp_e logits[t, e])²`, which keeps
    /// router logits small. Scale it by its coefficient (ST-MoE uses 1e-3).
    pub fn router_z_loss(&self, logits: Tensor) -> Result<Tensor> {
        self.operands("router_z_loss", &[("logits", logits)])?;
        self.router_logits("router_z_loss", logits)?;
        let z = self.logsumexp(logits, -1)?;
        self.mean(self.mul(z, z)?, 0)
    }
}
