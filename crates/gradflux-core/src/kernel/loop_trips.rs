//! The guard against software drivers' loop limits. Mesa's llvmpipe (lavapipe) stops a
//! shader invocation after 65 535 loop iterations in total, silently: the kernel returns
//! whatever it had computed. Each op's kernels have a worst case of loop iterations per
//! invocation that depends on the shapes; where an adapter has such a limit
//! ([`AdapterSummary::loop_limit`](crate::AdapterSummary::loop_limit)), a node whose
//! worst case is over it is refused at compile time with a limit error naming the op,
//! instead of returning a wrong answer. Long axes of reductions and softmax, and long
//! inner dimensions of f32 matmuls, are split by their lowerings and never reach the
//! limit; custom kernels are their author's to keep within it.

use crate::{Error, Node, Op, ReduceOp, Result, TensorType};

use crate::kernel::launch::MAX_RANK;
use crate::ops::index::wgsl::scatter_tile;
use crate::ops::reduce::wgsl::REDUCE_CHUNK;
use crate::ops::reduce::wgsl::SERIAL_REDUCE_LEN;

/// Threads per workgroup of the reduce and softmax kernels.
const REDUCE_WG: u64 = 256;

/// Upper bound of the loop iterations one invocation of any of the node's launches runs;
/// `None` where gradflux cannot know (custom kernels) or the lowering bounds it itself
/// (matmul, which splits k or refuses).
pub fn loop_trips(node: &Node, ins: &[TensorType], limit: u64) -> Option<u64> {
    let rank = MAX_RANK as u64;
    let trips = match &node.op {
        Op::Input { .. }
        | Op::Constant(_)
        | Op::Parameter { .. }
        | Op::Reshape
        | Op::Detach
        | Op::Unary(_)
        | Op::Cast => 0,
        // The broadcast offset of each operand walks the rank.
        Op::Binary(_) | Op::Compare(_) => 2 * rank,
        Op::Select => 3 * rank,
        Op::Reduce { op, axis, .. } => reduce_trips(*op, ins[0].shape.dims()[*axis]),
        Op::Softmax { axis, .. } => softmax_trips(ins[0].shape.dims()[*axis]),
        Op::MatMul(_) | Op::Custom(_) => return None,
        Op::Kernel(op) => return op.loop_trips(ins, &node.outputs, limit),
        _ => {
            return crate::kernel::loop_trips_families::family_loop_trips(
                &node.op,
                ins,
                &node.outputs,
                limit,
            )
        }
    };
    Some(trips)
}

/// A scatter's tiled walk (the guard only runs where loops are limited, which is where the
/// lowering tiles), then the sum over its tiles.
pub fn scatter_trips(walk: usize, limit: u64) -> u64 {
    let tile = scatter_tile(Some(limit));
    let tiles = walk.div_ceil(tile);
    let sum = if tiles > 1 {
        reduce_trips(ReduceOp::Sum, tiles)
    } else {
        0
    };
    (walk.min(tile) as u64 + 1).max(sum)
}

/// The reduce kernel: a strided walk of a chunk (two for logsumexp) and three trees of
/// log2(256) steps; a serial sum walks its short axis. A chunked axis adds the pass over
/// the chunks' partials.
fn reduce_trips(op: ReduceOp, len: usize) -> u64 {
    let serial = matches!(op, ReduceOp::Sum | ReduceOp::Mean) && len <= SERIAL_REDUCE_LEN;
    if serial {
        return len as u64;
    }
    let pass = |len: usize| 2 * (len as u64).div_ceil(REDUCE_WG) + 3 * 8;
    let chunks = len.div_ceil(REDUCE_CHUNK);
    pass(len.min(REDUCE_CHUNK)).max(if chunks > 1 { pass(chunks) } else { 0 })
}

/// One workgroup per row: three strided walks and two trees; a long row: one walk and a
/// tree per chunk, a thread per row merging the chunks.
fn softmax_trips(len: usize) -> u64 {
    if len <= REDUCE_CHUNK {
        return 3 * (len as u64).div_ceil(REDUCE_WG) + 2 * 8;
    }
    let per_chunk = (REDUCE_CHUNK as u64).div_ceil(REDUCE_WG) + 8;
    per_chunk.max(len.div_ceil(REDUCE_CHUNK) as u64)
}

/// A loop limit less a 10% margin for the estimate: the bounds here model how Mesa counts,
/// measured at a few points, not its compiler exactly.
pub fn with_margin(limit: u64) -> u64 {
    limit - limit / 10
}

/// How much of a walk over `len` items one invocation takes: all of it unless its loop
/// iterations (`trips` of a walk's length) pass the `limit` less the guard's margin; then
/// as many whole `unit`s as fit half the limit (at least one), the rest going to further
/// spans that a merge or sum pass combines.
pub fn span_within(
    len: usize,
    unit: usize,
    limit: Option<u64>,
    trips: impl Fn(usize) -> u64,
) -> usize {
    match limit {
        Some(limit) if trips(len) > with_margin(limit) => {
            let per_unit = (trips(unit) - trips(0)).max(1);
            let units = ((limit / 2).saturating_sub(trips(0)) / per_unit).max(1);
            units as usize * unit
        }
        _ => len.max(1),
    }
}

/// Refuses node `id` if its worst case of loop iterations per invocation is over `limit`
/// less the margin ([`with_margin`]).
pub fn check(node: &Node, id: usize, ins: &[TensorType], limit: Option<u64>) -> Result<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let Some(trips) = loop_trips(node, ins, limit) else {
        return Ok(());
    };
    let limit = with_margin(limit);
    if trips <= limit {
        return Ok(());
    }
    let shapes: Vec<String> = ins.iter().map(|t| t.to_string()).collect();
    Err(Error::Limit {
        limit: "loop iterations per shader invocation",
        what: format!(
            "`{}` (node %{id}) over {} (loop iterations in one invocation)",
            node.op.name(),
            shapes.join(", ")
        ),
        requested: trips,
        allowed: limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_reductions_stay_far_below_the_limit_at_any_length() {
        for len in [1, 33, 1 << 18, (1 << 18) + 1, 17_000_003, 1 << 32] {
            for op in ReduceOp::ALL {
                assert!(reduce_trips(op, len) < 4096, "{op:?} over {len}");
            }
            // A long row's merge walks its chunks: 16 384 at 2^32 elements.
            assert!(softmax_trips(len) <= 16_384, "softmax over {len}");
        }
        assert_eq!(reduce_trips(ReduceOp::Sum, 32), 32, "serial");
        assert_eq!(reduce_trips(ReduceOp::Max, 512), 2 * 2 + 24);
    }
}
