//! Upper bounds of the loop passes one shader invocation runs, for the launches of top-k,
//! MoE dispatch and routing, the grouped matmuls, the optimal-transport ops and the
//! Sinkhorn loop. llvmpipe / lavapipe counts every pass through every loop of an
//! invocation in one counter and silently stops the invocation past 65 535, so the caller
//! refuses at compile time a launch whose bound exceeds that. A bound follows the
//! launcher's kernel, constants and `info` for the op's shapes, and counts as llvmpipe
//! does: each entry of a loop costs its body passes plus one for the exit test (the
//! counter is decremented at the loop's end, which the last pass still reaches), nested
//! loops multiply, a helper's loops are paid at every call, and a loop under a branch
//! counts even when the branch may not be taken (it is entered with a zero SIMD mask).

use crate::{SinkhornSpec, TensorType};

use crate::kernel::launch::{matrix_sizes, point_sizes};

/// A loop entered once whose body runs `trips` times: llvmpipe also counts the pass that
/// fails the exit test.
fn looped(trips: u64) -> u64 {
    trips.saturating_add(1)
}

/// `ceil(len / step)`: the passes of `for (var i = t; i < len; i += step)`.
fn div_ceil(len: u64, step: u64) -> u64 {
    len.div_ceil(step.max(1))
}

/// Passes of a tree reduction `for (var s = width / 2; s > 0; s >>= 1)`.
fn halvings(width: u64) -> u64 {
    u64::from(u64::BITS - (width / 2).leading_zeros())
}

fn add(terms: &[u64]) -> u64 {
    terms.iter().fold(0, |acc, &t| acc.saturating_add(t))
}

fn mul(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

/// grouped_matmul.wgsl: ceil(K/16) k-steps, each 16 multiply-adds plus the tile loads.
pub fn grouped_matmul(k: u64, block: usize) -> u64 {
    let bm = 1u64 << block.trailing_zeros().min(6);
    let per_step = add(&[1, looped(div_ceil(bm * 16, 256)), looped(4), looped(16)]);
    add(&[mul(div_ceil(k, 16), per_step), 1, 4 * looped(4)])
}

/// grouped_matmul_wgrad.wgsl: every block of the expert (at most P / block), each
/// ceil(block/16) row steps of 16 rows: about 1.8 passes per row of x. In spans of blocks
/// where loops are limited, then a sum over the spans.
pub fn split_grouped_wgrad(rows: usize, block: usize, limit: u64) -> u64 {
    let blocks = rows / block.max(1);
    let span = crate::ops::moe::wgsl::wgrad_span(blocks, block, Some(limit));
    let spans = blocks.div_ceil(span).max(1) as u64;
    let sum = if spans > 1 {
        2 * div_ceil(spans, 256) + 3 * 8 + spans
    } else {
        0
    };
    grouped_wgrad(span.min(blocks) as u64, block as u64).max(sum)
}

/// One pass of `topk.wgsl` on rows of `n`, keeping `k` (every pass uses the same chunk).
pub fn topk(n: u64, k: u64) -> u64 {
    // topk.rs: the chunk and the workgroup size.
    let c = n
        .next_power_of_two()
        .clamp(2, crate::ops::select::wgsl::MAX_CHUNK as u64);
    let wg = (c / 2).min(256);
    let stages = u64::from(c.trailing_zeros());
    // Σ over stages s = 1..=log2 C of the s stride halvings.
    let strides = stages * (stages + 1) / 2;
    let swaps = div_ceil(c / 2, wg);
    let load = looped(div_ceil(c, wg));
    // The size loop, its stride loops, and the swap loop of every stride.
    let sort = add(&[
        looped(stages),
        strides + stages,
        mul(strides, looped(swaps)),
    ]);
    // The last pass writes k results (other passes keep min(k, C) <= k).
    let write = looped(div_ceil(k, wg));
    add(&[load, sort, write])
}

/// The passes of `moe_dispatch` over `n` choices and `e` experts.
pub fn moe_dispatch(n: u64, e: u64, highest: bool, limit: u64) -> u64 {
    const TILE: u64 = 256;
    const WG: u64 = 256;
    let tiles = div_ceil(n, TILE);
    // dispatch_count.wgsl: zero the tile's counters, then compare with the whole tile.
    let count = add(&[looped(div_ceil(e, TILE)), looped(TILE)]);
    // dispatch_scan.wgsl: each thread's experts × every tile, thread 0's scan over the
    // WG partial sums, then the thread's experts again.
    let per = div_ceil(e, WG);
    let scan = add(&[
        looped(per),
        mul(per, looped(tiles)),
        looped(WG),
        looped(per),
    ]);
    // dispatch_fill.wgsl: a binary search over [0, E] (at most bit-length(E) halvings).
    let fill = looped(u64::from(u64::BITS - e.leading_zeros()));
    // dispatch_rank_gate.wgsl count: one chunk of the expert's members, at most n.
    let rank = if highest {
        looped(n.min(crate::ops::moe::wgsl::rank_chunk(Some(limit)) as u64))
    } else {
        0
    };
    count.max(scan).max(fill).max(rank)
}

/// `grouped_matmul_wgrad.wgsl` walking `blocks` blocks of `block` rows (all of one
/// expert, the worst case): per block, ceil(block/16) row steps of 16 rows.
pub fn grouped_wgrad(blocks: u64, block: u64) -> u64 {
    let steps = div_ceil(block.max(1), 16);
    let per_step = add(&[1, looped(4), looped(4), looped(16)]);
    let per_block = add(&[1, 1, mul(steps, per_step)]);
    add(&[mul(blocks, per_block), 1, 4 * looped(4)])
}

/// `route_fused.wgsl` over `e` experts with `k` rounds (route_clear.wgsl has no loop).
pub fn fused_route(e: u64, k: u64) -> u64 {
    let g = crate::ops::moe::wgsl_route::lanes_per_token(e as usize) as u64;
    let scan = looped(div_ceil(e, g));
    let reduce = looped(halvings(g));
    // Each round: the lanes' reduction, then (the owner lane) a rescan of its experts.
    let rounds = add(&[k, 1, mul(k, add(&[reduce, scan]))]);
    // The softmax sum's reduction, then each lane's share of the k gates.
    add(&[scan, rounds, reduce, looped(div_ceil(k, g))])
}

/// Threads per workgroup and column tile width of the dense OT kernels (ot.rs).
const DENSE_WG: u64 = 256;
const DENSE_COLS: u64 = 64;

/// `softmin.wgsl` / `plan_matvec.wgsl` `per_row` over rows of `m`.
pub fn dense_row(m: u64) -> u64 {
    add(&[looped(div_ceil(m, DENSE_WG)), looped(halvings(DENSE_WG))])
}

/// `softmin.wgsl` `per_column` over `n` rows as it runs on llvmpipe: in spans of rows,
/// then a merge over the spans.
pub fn split_dense_column(n: usize, limit: u64) -> u64 {
    let span = crate::ops::ot::wgsl::column_span(n, Some(limit));
    let spans = n.div_ceil(span).max(1) as u64;
    dense_column(span.min(n) as u64).max(if spans > 1 { looped(spans) } else { 0 })
}

/// `softmin.wgsl` / `plan_matvec.wgsl` `per_column` over columns of `n`.
fn dense_column(n: u64) -> u64 {
    let slices = DENSE_WG / DENSE_COLS;
    add(&[looped(div_ceil(n, slices)), looped(halvings(slices))])
}

/// Points per tile (PT), coordinates per chunk (PD), threads (WG) and gradient
/// coordinates per dispatch row (GD) of the point kernels.
const PT: u64 = 64;
const PD: u64 = 8;
const POINT_WG: u64 = 64;
const GD: u64 = 16;

/// A loop with a trip count fixed when the pipeline is made (a constant or an override):
/// Mesa unrolls those of at most 8 passes, which then cost nothing (measured on lavapipe:
/// point_softmin over 19 500 points of d = 2 is right and 20 000 is cut short, as this
/// count predicts; counting its 8-pass loops would refuse it from 5 249).
fn fixed(trips: u64) -> u64 {
    if trips <= 8 {
        0
    } else {
        looped(trips)
    }
}

/// One chunk of PD coordinates of a tile: stage the tile's coordinates, read the thread's
/// own (PD, unrolled), then PT × PD distance terms (the PD loop unrolled).
fn distance_chunk() -> u64 {
    add(&[
        looped(div_ceil(PT * PD, POINT_WG)),
        fixed(PD),
        fixed(PT),
        mul(PT, fixed(PD)),
    ])
}

/// `point_softmin.wgsl` reducing over `m` points of dimension `d`.
pub fn point_softmin(m: u64, d: u64) -> u64 {
    let chunks = div_ceil(d, PD);
    let tile = add(&[
        1, // the tile loop's own pass
        looped(div_ceil(PT, POINT_WG)),
        looped(chunks),
        mul(chunks, distance_chunk()),
        looped(PT), // the tile's largest term
        looped(PT), // the rescaled sum
    ]);
    add(&[mul(div_ceil(m, PT), tile), 1])
}

/// `point_softmin.wgsl` over `m` points as it runs on llvmpipe: in spans, then a merge.
pub fn split_point_softmin(m: usize, d: usize, limit: u64) -> u64 {
    let limit = Some(limit);
    let span = crate::ops::ot::wgsl::point_span(m, d, limit);
    let spans = m.div_ceil(span).max(1) as u64;
    point_softmin(span.min(m) as u64, d as u64).max(if spans > 1 { looped(spans) } else { 0 })
}

/// A gradient pass of `point_softmin_grad.wgsl` over `other` points as it runs on
/// llvmpipe: in spans, then sums over the spans.
pub fn split_point_grad(other: usize, d: usize, limit: u64) -> u64 {
    split_point_pass(other, d, true, limit)
}

/// A pass of `point_softmin_grad.wgsl` (with the gradient, or a plan product) over `other`
/// points as it runs on llvmpipe: in spans, then sums over the spans.
fn split_point_pass(other: usize, d: usize, grad: bool, limit: u64) -> u64 {
    let limit = Some(limit);
    let span = crate::ops::ot::wgsl::grad_span(other, d, grad, limit);
    let spans = other.div_ceil(span).max(1);
    let sum = if spans > 1 {
        2 * div_ceil(spans as u64, 256) + 3 * 8 + spans as u64
    } else {
        0
    };
    point_grad(span.min(other) as u64, d as u64, grad).max(sum)
}

/// `point_softmin_grad.wgsl` reducing over `other` points of dimension `d`, with the
/// coordinate gradient (`grad`) or as a plan-vector product.
pub fn point_grad(other: u64, d: u64, grad: bool) -> u64 {
    let chunks = div_ceil(d, PD);
    // Without the gradient its loops are still entered (and pay their exit pass).
    let gd = if grad { GD } else { 0 };
    let tile = add(&[
        1,
        looped(div_ceil(PT, POINT_WG)),
        looped(div_ceil(PT * gd, POINT_WG)),
        looped(chunks),
        mul(chunks, distance_chunk()),
        looped(PT),
        mul(PT, looped(gd)), // the gradient terms of each point
    ]);
    add(&[
        looped(GD), // the thread's own coordinates
        mul(div_ceil(other, PT), tile),
        1,
        looped(gd), // writing the gradient
    ])
}

/// The Sinkhorn problem's `(batch, n, m, d)` as the launchers read it (`d` = 0 for a
/// dense cost).
fn ot_sizes(spec: &SinkhornSpec, ins: &[TensorType]) -> (u64, u64, u64, u64) {
    let (batch, n, m, d) = match spec.points {
        Some(_) => point_sizes(&ins[0], &ins[1]),
        None => {
            let (batch, n, m) = matrix_sizes(&ins[0]);
            (batch, n, m, 0)
        }
    };
    (batch as u64, n as u64, m as u64, d as u64)
}

/// The two half-steps of one Sinkhorn iteration (and the check's soft minimum, a row
/// half-step): reducing over the m columns for f, over the n rows for g.
fn half_steps(spec: &SinkhornSpec, (n, m, d): (u64, u64, u64), limit: u64) -> u64 {
    match spec.points {
        None => dense_row(m).max(split_dense_column(n as usize, limit)),
        Some(_) => split_point_softmin(m as usize, d as usize, limit)
            .max(split_point_softmin(n as usize, d as usize, limit)),
    }
}

/// `sinkhorn.wgsl`'s workgroup sum: a tree over its 256 threads.
fn workgroup_sum() -> u64 {
    looped(halvings(256))
}

pub fn sinkhorn(spec: &SinkhornSpec, ins: &[TensorType], limit: u64) -> u64 {
    let (batch, n, m, d) = ot_sizes(spec, ins);
    let wg = 256;
    // sum_weights: a strided pass over one marginal, then two workgroup sums.
    let sum_weights = |len: u64| add(&[looped(div_ceil(len, wg)), 2 * workgroup_sum()]);
    // check_weights: its problem's two marginals.
    let check_weights = add(&[sum_weights(n), sum_weights(m)]);
    // marginal_error: a strided pass over its problem's n rows and a sum.
    let marginal_error = add(&[looped(div_ceil(n, wg)), workgroup_sum()]);
    // largest_error: a strided pass over the problems, a sum and a max tree.
    let largest_error = add(&[looped(div_ceil(batch, wg)), 2 * workgroup_sum()]);
    // log_weights and copy have no loop.
    half_steps(spec, (n, m, d), limit)
        .max(check_weights)
        .max(marginal_error)
        .max(largest_error)
}

pub fn sinkhorn_adjoint(spec: &SinkhornSpec, ins: &[TensorType], limit: u64) -> u64 {
    let (_, n, m, d) = ot_sizes(spec, ins);
    let wg = 256;
    let strided = looped(div_ceil(m, wg));
    let sum = looped(halvings(wg));
    // residual: two passes over the m columns, three sums; cg_step: four passes, three
    // sums (potentials, column_weights, start, finish have no loop).
    let residual = add(&[mul(2, strided), mul(3, sum)]);
    let cg_step = add(&[mul(4, strided), mul(3, sum)]);
    // The products Π_c u (reducing over m) and Π_rᵀ u (reducing over n).
    let products = match spec.points {
        None => dense_row(m).max(split_dense_column(n as usize, limit)),
        Some(_) => split_point_pass(m as usize, d as usize, false, limit)
            .max(split_point_pass(n as usize, d as usize, false, limit)),
    };
    residual.max(cg_step).max(products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DType, DropPolicy, FusedRouteSpec, MoeDispatchSpec, Op, PointCost, RouteScore, SoftminAxis,
    };

    fn t(shape: &[usize]) -> TensorType {
        TensorType::new(shape, DType::F32)
    }

    fn trips(op: &Op, ins: &[&[usize]]) -> u64 {
        let ins: Vec<TensorType> = ins.iter().map(|s| t(s)).collect();
        let limit = crate::kernel::LLVMPIPE_LOOP_LIMIT;
        match op {
            Op::Kernel(k) => k.loop_trips(&ins, &[], limit),
            _ => None,
        }
        .unwrap()
    }

    fn spec(points: Option<PointCost>) -> SinkhornSpec {
        SinkhornSpec {
            eps: 0.1,
            rho_a: None,
            rho_b: None,
            eps_scaling: None,
            max_iterations: 100,
            tolerance: None,
            check_every: 10,
            points,
            implicit: None,
        }
    }

    #[test]
    fn softmin_by_hand() {
        let row = Op::Kernel(std::sync::Arc::new(crate::ops::ot::Softmin {
            eps: 0.1,
            axis: SoftminAxis::PerRow,
        }));
        let column = Op::Kernel(std::sync::Arc::new(crate::ops::ot::Softmin {
            eps: 0.1,
            axis: SoftminAxis::PerColumn,
        }));
        // ceil(300 / 256) = 2 columns per thread (+1 exit), 8 merges (+1 exit).
        assert_eq!(trips(&row, &[&[2, 3, 300], &[2, 300]]), 12);
        // ceil(9 / 4) = 3 rows per thread (+1), 2 merges (+1).
        assert_eq!(trips(&column, &[&[9, 300], &[9]]), 7);
        // Growth along the reduced axis only.
        assert!(trips(&row, &[&[3, 100_000], &[100_000]]) > trips(&row, &[&[3, 300], &[300]]));
        assert_eq!(
            trips(&column, &[&[9, 100_000], &[9]]),
            trips(&column, &[&[9, 300], &[9]])
        );
        // One walk of the column kernel crosses the budget past ~262k rows (measured: right
        // at 262 137 rows, cut short at 262 141); past the guard's margin it runs in spans
        // of rows, each within half the limit.
        assert!(dense_column(262_000) <= 65_535 && dense_column(263_000) > 65_535);
        assert!(trips(&column, &[&[263_000, 8], &[263_000]]) <= 65_535 / 2);
        assert!(trips(&column, &[&[10_000_000, 1], &[10_000_000]]) <= 65_535 / 2);
    }

    #[test]
    fn point_softmin_by_hand() {
        let op = Op::Kernel(std::sync::Arc::new(crate::ops::ot::PointSoftmin {
            eps: 0.1,
            cost: PointCost::SqEuclidean,
        }));
        // m = 100: 2 tiles; d = 3: one chunk. Per tile: 1 + 2 (potentials) + 2 (chunk
        // loop) + [9 (stage) + 0 (own coords, unrolled) + 65 + 64 · 0] + 65 + 65 = 209.
        assert_eq!(
            trips(&op, &[&[1, 10, 3], &[1, 100, 3], &[1, 100]]),
            2 * 209 + 1
        );
        let more = trips(&op, &[&[1, 10, 3], &[1, 1000, 3], &[1, 1000]]);
        let wider = trips(&op, &[&[1, 10, 30], &[1, 100, 30], &[1, 100]]);
        assert!(more > 2 * 209 + 1 && wider > 2 * 209 + 1);
        // The measured edge on lavapipe (d = 2): one walk over 19 500 points is right and
        // over 20 000 cut short; the count of one walk is within the guard's 10% margin of
        // that edge. Past the margin the op runs in spans, each within half the limit.
        let walk = |m: u64| point_softmin(m, 2);
        assert!(walk(19_500) <= 65_535 && walk(20_000) > 65_535 * 9 / 10);
        let at = |m: usize| trips(&op, &[&[1, 10, 2], &[1, m, 2], &[1, m]]);
        assert_eq!(at(10_000), walk(10_000), "no split below the margin");
        for m in [20_000, 100_000, 10_000_000] {
            assert!(at(m) <= 65_535 / 2, "{m} points: {}", at(m));
        }
        let backward = Op::Kernel(std::sync::Arc::new(crate::ops::ot::PointSoftminBackward {
            eps: 0.1,
            cost: PointCost::SqEuclidean,
        }));
        let b = |n: usize, m: usize| trips(&backward, &[&[1, n, 3], &[1, m, 3]]);
        assert!(b(10, 100) > trips(&op, &[&[1, 10, 3], &[1, 100, 3], &[1, 100]]));
        // Both passes count: the bound follows the larger side.
        assert_eq!(b(10, 1000), b(1000, 10));
        assert!(b(10, 1000) > b(10, 100));
    }

    #[test]
    fn topk_is_bounded_by_its_chunk() {
        let op = |k| Op::Kernel(std::sync::Arc::new(crate::ops::select::TopK { axis: 1, k }));
        // n = 2, k = 2: C = 2, WG = 1: load 2 + 1, sort (1 + 1) + (1 + 1) + 1 · 2, write 2 + 1.
        assert_eq!(trips(&op(2), &[&[5, 2]]), 3 + 6 + 3);
        let long = trips(&op(8), &[&[1, 1 << 20]]);
        assert_eq!(long, trips(&op(8), &[&[1, 4096]]));
        assert!(long > trips(&op(8), &[&[1, 64]]));
        assert!(trips(&op(2048), &[&[1, 2048]]) < 1000);
    }

    #[test]
    fn moe_bounds_grow_with_the_choices() {
        let dispatch = |policy| {
            Op::Kernel(std::sync::Arc::new(MoeDispatchSpec {
                num_experts: 8,
                block: 16,
                capacity: Some(64),
                policy,
            }))
        };
        let first = dispatch(DropPolicy::FirstCome);
        let highest = dispatch(DropPolicy::HighestGate);
        // n = 256 choices, 8 experts: the scan pass (1 + 1) + 1 · (1 + 1) + (256 + 1) +
        // (1 + 1) dominates.
        assert_eq!(trips(&first, &[&[128, 2]]), 263);
        // Highest gate: one invocation ranks against one chunk of the expert's choices,
        // however many choices there are.
        assert_eq!(trips(&highest, &[&[4_000, 2], &[4_000, 2]]), 8_001);
        assert_eq!(trips(&highest, &[&[40_000, 2], &[40_000, 2]]), 16_385);
        assert_eq!(trips(&highest, &[&[400_000, 2], &[400_000, 2]]), 16_385);
        assert!(trips(&first, &[&[4_000_000, 8]]) > trips(&first, &[&[40_000, 8]]));

        let gmm = |block| {
            Op::Kernel(std::sync::Arc::new(crate::ops::moe::GroupedMatMul {
                block,
                transpose_b: false,
            }))
        };
        // K = 32: 2 k-steps of 1 + (4 + 1) + (4 + 1) + (16 + 1), then 4 stores of 4 + 1.
        assert_eq!(
            trips(&gmm(64), &[&[128, 32], &[4, 32, 8], &[2]]),
            2 * 28 + 21
        );
        assert!(
            trips(&gmm(64), &[&[128, 4096], &[4, 4096, 8], &[2]])
                > trips(&gmm(64), &[&[128, 32], &[4, 32, 8], &[2]])
        );
        let wgrad = Op::Kernel(std::sync::Arc::new(
            crate::ops::moe::GroupedMatMulWeightGrad {
                block: 16,
                num_experts: 4,
            },
        ));
        // 4 blocks of 16 rows, all of one expert: 4 · (1 + 2 + 27) + 1 + 20.
        assert_eq!(trips(&wgrad, &[&[64, 8], &[64, 8], &[4]]), 4 * 30 + 21);

        let route = |k| {
            Op::Kernel(std::sync::Arc::new(FusedRouteSpec {
                k,
                score: RouteScore::Softmax,
                renormalize: false,
            }))
        };
        // E = 8: G = 1 lane, 8 experts each; k = 2 rounds of (0 + 1) + (8 + 1).
        assert_eq!(trips(&route(2), &[&[4, 8]]), 9 + (2 + 1 + 2 * 10) + 1 + 3);
        assert!(trips(&route(2), &[&[4, 4096]]) > trips(&route(2), &[&[4, 64]]));
    }

    #[test]
    fn sinkhorn_counts_its_batch_loops_and_half_steps() {
        let dense = Op::Kernel(std::sync::Arc::new(crate::ops::ot::Sinkhorn(spec(None))));
        let ins = |batch: usize, n: usize, m: usize| {
            trips(
                &dense,
                &[
                    &[batch, n, m],
                    &[batch, n],
                    &[batch, m],
                    &[batch, n],
                    &[batch, m],
                ],
            )
        };
        // One problem of 8 x 8: check_weights 2 · (2 + 2 · 9) = 40.
        assert_eq!(ins(1, 8, 8), 40);
        // A workgroup per problem: a large batch only grows largest_error's walk.
        assert!(ins(2000, 8, 8) < 100);
        assert!(ins(10_000_000, 8, 8) <= 65_535);
        // Dense half-steps over many rows run in spans: only the batch loops grow.
        assert!(ins(1, 400_000, 8) <= 65_535);

        let points = Op::Kernel(std::sync::Arc::new(crate::ops::ot::Sinkhorn(spec(Some(
            PointCost::SqEuclidean,
        )))));
        let p = |n: usize, m: usize| {
            trips(
                &points,
                &[&[1, n, 2], &[1, m, 2], &[1, n], &[1, m], &[1, n], &[1, m]],
            )
        };
        assert_eq!(p(100, 10), p(10, 100));
        assert!(p(19_500, 10) <= 65_535);
        assert!(p(200_000, 10) <= 65_535 / 2, "the half-steps run in spans");

        let adjoint = Op::Kernel(std::sync::Arc::new(crate::ops::ot::SinkhornAdjoint(spec(
            None,
        ))));
        // Inputs: cost, a, b, f, g, s, t, vf, vg.
        let a = |n: usize, m: usize| {
            trips(
                &adjoint,
                &[&[n, m], &[n], &[m], &[n], &[m], &[n], &[m], &[n], &[m]],
            )
        };
        // m = 300: cg_step 4 · (2 + 1) + 3 · 9 = 39.
        assert_eq!(a(8, 300), 39);
        assert!(a(8, 3_000_000) > a(8, 300));
    }
}
