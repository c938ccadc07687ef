//! The guard against software drivers' loop limits. Mesa's llvmpipe (lavapipe) stops a
//! shader invocation after 65 535 loop iterations in total, silently: the kernel returns
//! whatever it had computed. Each op's kernels have a worst case of loop iterations per
//! invocation that depends on the shapes; where an adapter has such a limit
//! (the wgpu backend's `AdapterSummary::loop_limit`), a node whose
//! worst case is over it is refused at compile time with a limit error naming the op,
//! instead of returning a wrong answer. Long axes of reductions and softmax, and long
//! inner dimensions of f32 matmuls, are split by their lowerings and never reach the
//! limit; custom kernels are their author's to keep within it.

use crate::{Error, Node, Op, ReduceOp, Result, TensorType};

use crate::ops::index::wgsl::scatter_tile;
use crate::ops::reduce::wgsl::reduce_trips;

/// Upper bound of the loop iterations one invocation of any of the node's launches runs;
/// `None` where gradflux cannot know (custom kernels) or the lowering bounds it itself
/// (matmul, which splits k or refuses).
pub fn loop_trips(node: &Node, ins: &[TensorType], limit: u64) -> Option<u64> {
    let trips = match &node.op {
        Op::Input { .. } | Op::Constant(_) | Op::Parameter { .. } | Op::Reshape | Op::Detach => 0,
        Op::Kernel(op) => return op.loop_trips(ins, &node.outputs, limit),
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
