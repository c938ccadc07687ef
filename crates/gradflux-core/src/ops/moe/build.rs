//! Mixture-of-experts dispatch: grouping routed tokens by expert on the device, the
//! grouped matmul over expert segments, and the weighted combine back to token order.
//!
//! The layout is the block-padded one of vLLM's `moe_align_block_size`: the `T·k`
//! routing choices, grouped by expert, each expert's segment padded to a multiple of
//! `block` rows, padding rows holding the sentinel choice `T·k`. A grouped matmul then
//! takes one expert per block of rows, with no host round-trip anywhere.

use super::{GroupedMatMul, GroupedMatMulWeightGrad};
use crate::builder::{invalid_value, shape_error};
use crate::{DType, DropPolicy, Error, Graph, MoeDispatchSpec, Op, Result, Tensor, TensorType};

/// How many routing choices an expert may keep.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub enum Capacity {
    /// Every choice is kept; segments are as long as they need to be.
    #[default]
    Dropless,
    /// At most this many choices per expert.
    PerExpert(usize),
    /// `ceil(factor · T · k / E)` choices per expert (the Switch Transformer's capacity
    /// factor; 1.0 is a perfectly balanced share).
    Factor(f64),
}

/// Options of [`Graph::moe_dispatch`].
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct DispatchOptions {
    /// `E`; an expert id `>= E` routes nowhere.
    pub num_experts: usize,
    /// Segments are padded to a multiple of this many rows, the row block of the grouped
    /// matmul (16 to 128 suit GPUs; 1 means no padding).
    pub block: usize,
    /// How many choices each expert may keep.
    pub capacity: Capacity,
    /// Which choices an expert over capacity keeps; ignored when dropless.
    pub policy: DropPolicy,
}

impl DispatchOptions {
    /// Dropless dispatch to `num_experts` experts in blocks of `block` rows.
    pub fn dropless(num_experts: usize, block: usize) -> Self {
        DispatchOptions {
            num_experts,
            block,
            capacity: Capacity::Dropless,
            policy: DropPolicy::FirstCome,
        }
    }
}

/// The outputs of [`Graph::moe_dispatch`] for `T` tokens, `k` choices each, `E` experts
/// and `P` padded rows (all `u32`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExpertDispatch {
    /// `[P]` the choice `t·k + j` at each padded row; `T·k` marks padding.
    pub sorted_ids: Tensor,
    /// `[P / block]` the expert of each block of rows; `E` marks unused blocks.
    pub block_experts: Tensor,
    /// `[T, k]` the padded row of each choice; `P` (out of range) if it was dropped or
    /// its expert was out of range.
    pub positions: Tensor,
    /// `[E]` choices routed to each expert, before dropping.
    pub counts: Tensor,
    /// `[E]` choices each expert dropped for lack of capacity.
    pub dropped: Tensor,
    /// `[E + 1]` where each expert's padded segment starts; the last entry is the number
    /// of rows in use.
    pub offsets: Tensor,
}

impl Graph {
    /// Groups the `[T, k]` routing choices `experts` (`u32`, e.g. from
    /// [`Graph::route`]) by expert, stably (in increasing `t·k + j` within an expert),
    /// pads each expert's segment to a multiple of `opts.block` rows, and drops choices
    /// past the capacity by `opts.policy`. `gates` (`[T, k]`) is needed only to keep the
    /// highest gates. An expert id `>= E` routes nowhere (position `P`).
    ///
    /// `P` is fixed when the graph is built: the most rows any routing can need,
    /// `E·ceil(C / block)·block` with a capacity `C`, and at most
    /// `floor((T·k + E·(block − 1)) / block)·block`; rows past `offsets[E]` are padding.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, DispatchOptions};
    /// let g = Graph::new();
    /// let experts = g.input("experts", [1000, 2], DType::U32)?;
    /// let d = g.moe_dispatch(experts, None, DispatchOptions::dropless(8, 16))?;
    /// assert_eq!(g.shape(d.sorted_ids)?.dims(), &[2112]); // 2000 + 8 * 15, in blocks of 16
    /// assert_eq!(g.shape(d.block_experts)?.dims(), &[132]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn moe_dispatch(
        &self,
        experts: Tensor,
        gates: Option<Tensor>,
        opts: DispatchOptions,
    ) -> Result<ExpertDispatch> {
        self.operands("moe_dispatch", &[("experts", experts)])?;
        if let Some(t) = gates {
            self.operands("moe_dispatch", &[("gates", t)])?;
        }
        let op = "moe_dispatch";
        let te = self.ty(experts)?;
        let (t, k) = match te.shape.dims() {
            &[t, k] if te.dtype == DType::U32 && t * k > 0 => (t, k),
            _ => {
                return Err(shape_error(
                    op,
                    format!(
                        "experts must be a non-empty [tokens, k] u32 tensor, got {} {}",
                        te.shape, te.dtype
                    ),
                ))
            }
        };
        let DispatchOptions {
            num_experts: e,
            block,
            capacity,
            policy,
        } = opts;
        if e == 0 || block == 0 {
            return Err(invalid_value(
                op,
                format!("num_experts ({e}) and block ({block}) must be at least 1"),
            ));
        }
        let n = t * k;
        let capacity = match capacity {
            Capacity::Dropless => None,
            Capacity::PerExpert(c) => Some(c),
            Capacity::Factor(f) if f > 0.0 && f.is_finite() => {
                // Saturating float-to-int: a huge factor is simply no cap.
                Some((f * n as f64 / e as f64).ceil() as usize)
            }
            Capacity::Factor(f) => {
                return Err(invalid_value(
                    op,
                    format!("capacity factor {f} must be a positive finite number"),
                ))
            }
        };
        if capacity == Some(0) {
            return Err(invalid_value(
                op,
                "a capacity of 0 drops every token".into(),
            ));
        }
        // No expert holds more than all n choices, so a larger capacity (usize::MAX is the
        // natural "no cap") is the same as n and keeps every count below in range.
        let capacity = capacity.map(|c| c.min(n));
        let mut inputs = vec![experts];
        let policy = if capacity.is_some() {
            policy
        } else {
            DropPolicy::FirstCome
        };
        if policy == DropPolicy::HighestGate {
            let Some(gates) = gates else {
                return Err(shape_error(
                    op,
                    "keeping the highest gates needs the [tokens, k] gates".into(),
                ));
            };
            let tg = self.ty(gates)?;
            if tg.shape != te.shape || !tg.dtype.is_float() {
                return Err(shape_error(
                    op,
                    format!(
                        "gates must be float with the experts' shape {}, got {} {}",
                        te.shape, tg.shape, tg.dtype
                    ),
                ));
            }
            inputs.push(gates);
        }
        let too_many = || {
            shape_error(
                op,
                format!("{n} choices over {e} experts in blocks of {block} rows overflow"),
            )
        };
        let dropless_rows = e
            .checked_mul(block - 1)
            .and_then(|pad| pad.checked_add(n))
            .ok_or_else(too_many)?
            / block
            * block;
        let rows = match capacity {
            Some(c) => {
                let capped = c
                    .div_ceil(block)
                    .checked_mul(block)
                    .and_then(|r| r.checked_mul(e));
                capped.map_or(dropless_rows, |r| dropless_rows.min(r))
            }
            None => dropless_rows,
        };
        let u32_of = |dims: Vec<usize>| TensorType::new(dims, DType::U32);
        let outs = self.push(
            Op::Kernel(std::sync::Arc::new(MoeDispatchSpec {
                num_experts: e,
                block,
                capacity,
                policy,
            })),
            &inputs,
            vec![
                u32_of(vec![rows]),
                u32_of(vec![rows / block]),
                u32_of(vec![t, k]),
                u32_of(vec![e]),
                u32_of(vec![e]),
                u32_of(vec![e + 1]),
            ],
        )?;
        Ok(ExpertDispatch {
            sorted_ids: outs[0],
            block_experts: outs[1],
            positions: outs[2],
            counts: outs[3],
            dropped: outs[4],
            offsets: outs[5],
        })
    }

    /// The rows of `x: [T, K]` in dispatch order: `[P, K]`, row `p` being token
    /// `sorted_ids[p] / k`; padding rows are zero. Differentiable in `x`.
    pub fn moe_gather(&self, x: Tensor, d: &ExpertDispatch) -> Result<Tensor> {
        self.operands("moe_gather", &[("x", x)])?;
        let k = self.check_dispatch("moe_gather", d)?;
        let tokens = self.div(d.sorted_ids, self.scalar(k as f64, DType::U32)?)?;
        // Token t was read at rows positions[t, ..].
        self.gather_rows_with_inverse(x, tokens, d.positions)
    }

    /// Checks the parts of an [`ExpertDispatch`] the gather and combine index (its fields
    /// are public, so it may be built by hand): `sorted_ids [P]` and `positions [T, k]`,
    /// both `u32`. Returns `k`.
    fn check_dispatch(&self, op: &'static str, d: &ExpertDispatch) -> Result<usize> {
        let (ids, pos) = (self.ty(d.sorted_ids)?, self.ty(d.positions)?);
        if ids.shape.rank() != 1 || ids.dtype != DType::U32 {
            return Err(shape_error(
                op,
                format!("the dispatch's sorted_ids must be u32 [P], got {ids}"),
            ));
        }
        match pos.shape.dims() {
            &[_, k] if pos.dtype == DType::U32 && k > 0 => Ok(k),
            _ => Err(shape_error(
                op,
                format!("the dispatch's positions must be u32 [T, k] with k >= 1, got {pos}"),
            )),
        }
    }

    /// `gather(x, 0, idx)` whose gradient gathers through `inverse` (see
    /// [`GatherRows`](crate::ops::index::GatherRows)); callers guarantee `inverse` is exact.
    fn gather_rows_with_inverse(&self, x: Tensor, idx: Tensor, inverse: Tensor) -> Result<Tensor> {
        let (tx, ti, tv) = (self.ty(x)?, self.ty(idx)?, self.ty(inverse)?);
        let rows = tx.shape.dims().first().copied().unwrap_or(0);
        if tv.shape.rank() != 2 || tv.shape.dims()[0] != rows || ti.dtype != DType::U32 {
            return Err(Error::Graph(format!(
                "gather_rows: inverse {} must be [{rows}, r] for x {} and u32 idx {}",
                tv.shape, tx.shape, ti.shape
            )));
        }
        let mut dims = ti.shape.0.clone();
        dims.extend(&tx.shape.0[1..]);
        self.push1(
            Op::Kernel(std::sync::Arc::new(crate::ops::index::GatherRows)),
            &[x, idx, inverse],
            TensorType::new(dims, tx.dtype),
        )
    }

    /// Back to token order: `out[t] = Σ_j gates[t, j] · y[positions[t, j]]` for
    /// `y: [P, N]` in dispatch order; dropped choices add nothing. Differentiable in `y`
    /// and `gates`.
    pub fn moe_combine(&self, y: Tensor, d: &ExpertDispatch, gates: Tensor) -> Result<Tensor> {
        self.operands("moe_combine", &[("y", y), ("gates", gates)])?;
        self.check_dispatch("moe_combine", d)?;
        let (pos, tg) = (self.shape(d.positions)?, self.ty(gates)?);
        if tg.shape != pos {
            return Err(shape_error(
                "moe_combine",
                format!("gates {} must have the positions' shape {pos}", tg.shape),
            ));
        }
        // [T, k, N]; dropped choices read 0. Row p of y was read at choice sorted_ids[p].
        let rows = self.shape(d.sorted_ids)?.numel();
        let inverse = self.reshape(d.sorted_ids, [rows, 1])?;
        let picked = self.gather_rows_with_inverse(y, d.positions, inverse)?;
        let weighted = self.mul(picked, self.unsqueeze(gates, 2)?)?;
        self.sum(weighted, 1)
    }

    /// One matmul per expert over its rows: `out[p] = x[p] · w[e]` with
    /// `e = block_experts[p / block]`, for `x: [P, K]`, `w: [E, K, N]` (`[E, N, K]` when
    /// `transpose_b`, read in place) and `block_experts: [P / block]` `u32`. Rows of a
    /// block whose expert is `>= E` are zero. Differentiable in `x` and `w`.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, DispatchOptions};
    /// let g = Graph::new();
    /// let x = g.input("x", [64, 32], DType::F32)?;
    /// let experts = g.input("experts", [64, 2], DType::U32)?;
    /// let w1 = g.input("w1", [4, 32, 128], DType::F32)?;
    /// let d = g.moe_dispatch(experts, None, DispatchOptions::dropless(4, 16))?;
    /// let h = g.grouped_matmul(g.moe_gather(x, &d)?, w1, d.block_experts, 16, false)?;
    /// assert_eq!(g.shape(h)?.dims(), &[176, 128]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn grouped_matmul(
        &self,
        x: Tensor,
        w: Tensor,
        block_experts: Tensor,
        block: usize,
        transpose_b: bool,
    ) -> Result<Tensor> {
        self.operands(
            "grouped_matmul",
            &[("x", x), ("w", w), ("block_experts", block_experts)],
        )?;
        let op = "grouped_matmul";
        let (tx, tw, tb) = (self.ty(x)?, self.ty(w)?, self.ty(block_experts)?);
        let dtype = self.same_dtype(op, x, w)?;
        crate::builder::require_float(op, dtype)?;
        let (p, kx) = match tx.shape.dims() {
            &[p, k] => (p, k),
            _ => return Err(shape_error(op, format!("x {} must be [rows, K]", tx.shape))),
        };
        let (kw, n) = match (tw.shape.dims(), transpose_b) {
            (&[_, k, n], false) => (k, n),
            (&[_, n, k], true) => (k, n),
            _ => return Err(shape_error(op, format!("w {} must be [E, K, N]", tw.shape))),
        };
        if kx != kw {
            return Err(shape_error(
                op,
                format!(
                    "x {} and w {} disagree on K ({kx} vs {kw}){}",
                    tx.shape,
                    tw.shape,
                    if transpose_b {
                        ", w read as [E, N, K]"
                    } else {
                        ""
                    }
                ),
            ));
        }
        self.check_blocks(op, p, block, &tb)?;
        self.push1(
            Op::Kernel(std::sync::Arc::new(GroupedMatMul { block, transpose_b })),
            &[x, w, block_experts],
            TensorType::new(vec![p, n], dtype),
        )
    }

    /// The weight gradient of [`Graph::grouped_matmul`]: `[E, K, N]`,
    /// `dw[e] = Σ_{p in e's blocks} x[p]ᵀ · dy[p]`, for `x: [P, K]`, `dy: [P, N]`.
    pub fn grouped_matmul_weight_grad(
        &self,
        x: Tensor,
        dy: Tensor,
        block_experts: Tensor,
        block: usize,
        num_experts: usize,
    ) -> Result<Tensor> {
        self.operands(
            "grouped_matmul_weight_grad",
            &[("x", x), ("dy", dy), ("block_experts", block_experts)],
        )?;
        let op = "grouped_matmul_weight_grad";
        let (tx, ty, tb) = (self.ty(x)?, self.ty(dy)?, self.ty(block_experts)?);
        let dtype = self.same_dtype(op, x, dy)?;
        match (tx.shape.dims(), ty.shape.dims()) {
            (&[p, k], &[q, n]) if p == q => {
                self.check_blocks(op, p, block, &tb)?;
                self.push1(
                    Op::Kernel(std::sync::Arc::new(GroupedMatMulWeightGrad { block, num_experts })),
                    &[x, dy, block_experts],
                    TensorType::new(vec![num_experts, k, n], dtype),
                )
            }
            _ => Err(shape_error(
                op,
                format!(
                    "x {} and dy {} must be [P, K] and [P, N]",
                    tx.shape, ty.shape
                ),
            )),
        }
    }

    /// `block_experts` must be `[rows / block]` `u32`, with `block` dividing `rows`.
    fn check_blocks(
        &self,
        op: &'static str,
        rows: usize,
        block: usize,
        tb: &TensorType,
    ) -> Result<()> {
        if block == 0 || !rows.is_multiple_of(block) {
            return Err(shape_error(
                op,
                format!("block = {block} must divide the {rows} rows"),
            ));
        }
        if tb.dtype != DType::U32 || tb.shape.dims() != [rows / block] {
            return Err(shape_error(
                op,
                format!(
                    "block_experts must be [{}] u32 (one per block of {block} rows), got {} {}",
                    rows / block,
                    tb.shape,
                    tb.dtype
                ),
            ));
        }
        Ok(())
    }
}
