//! The WGSL lowering of the running sums (`shaders/scan/cumsum.wgsl`): a pass over
//! chunks of each lane, and past one chunk a pass over the chunks' totals and one adding
//! each chunk's offset.

use super::CUMSUM;
use crate::kernel::loop_trips::with_margin;
use crate::kernel::shaders::specialise;
use crate::kernel::{Bind, KernelSource, Launch, LowerCx, Workgroups};
use crate::DType;

/// Threads per workgroup (the kernel's `WG`).
const WG: u64 = 256;
/// The chunk length when loops are not limited: long enough that the chunks' totals are
/// few, short enough that a single long axis still spreads over many threads.
const CHUNK: u64 = 1024;
/// Scratch slot of the chunks' totals.
const TOTALS: usize = 0;

/// How a `[outer, n, inner]` running sum is cut.
pub(super) struct Plan {
    lanes: u64,
    n: u64,
    inner: u64,
    /// Elements per chunk, and chunks per lane.
    len: u64,
    chunks: u64,
}

impl Plan {
    /// Chunks of [`CHUNK`] elements, longer where a lane would otherwise have more chunks
    /// than an invocation may walk; `loop_limit` is the adapter's budget.
    pub(super) fn new((outer, n, inner): (usize, usize, usize), loop_limit: Option<u64>) -> Plan {
        let (n64, inner64) = (n as u64, inner as u64);
        // The guard's margin, as the other split kernels keep.
        let budget = loop_limit.map_or(u64::MAX, |l| with_margin(l).max(1));
        let len = CHUNK.max(n64.div_ceil(budget)).min(n64.max(1));
        Plan {
            lanes: outer as u64 * inner64,
            n: n64,
            inner: inner64.max(1),
            len,
            chunks: n64.div_ceil(len).max(1),
        }
    }

    /// The longest walk of one invocation: a chunk, or a lane's totals.
    pub(super) fn loop_trips(&self) -> u64 {
        self.len.max(if self.chunks > 1 { self.chunks } else { 0 })
    }
}

pub(super) fn launches(plan: &Plan, dtype: DType, reverse: bool, cx: &LowerCx<'_>) -> Vec<Launch> {
    let numel = plan.lanes * plan.n;
    if numel == 0 {
        return vec![];
    }
    let source = specialise(&CUMSUM, dtype, dtype, None);
    let totals_bytes = (plan.lanes * plan.chunks * 4).max(4);
    let launch = |entry: &str, threads: u64| Launch {
        kernel: KernelSource {
            label: format!("cumsum {entry}<{dtype}>"),
            source: source.clone(),
            entry_point: entry.into(),
            constants: vec![("WG", WG as f64)],
            // x, y, the totals, then `info`.
            read_only: vec![true, false, false, true],
        },
        binds: vec![
            Bind::Value(cx.inputs[0]),
            Bind::Value(cx.output(0)),
            Bind::Scratch(TOTALS),
        ],
        scratch: vec![(TOTALS, totals_bytes)],
        info: [threads, plan.n, plan.inner, plan.len, plan.chunks, reverse as u64]
            .map(|v| v as u32)
            .to_vec(),
        workgroups: Workgroups::Linear(threads.div_ceil(WG)),
    };
    let mut out = vec![launch("chunks", plan.lanes * plan.chunks)];
    if plan.chunks > 1 {
        out.push(launch("lane_totals", plan.lanes));
        out.push(launch("offsets", numel));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_walk_stays_within_the_budget() {
        for limit in [4096u64, 65_535, 1 << 20] {
            for n in [0usize, 1, 1023, 1024, 1025, 100_000, 5_000_000, 13_000_000] {
                let plan = Plan::new((3, n, 2), Some(limit));
                assert!(plan.loop_trips() <= limit - limit / 10, "n {n} limit {limit}");
                assert!(plan.len * plan.chunks >= n as u64, "n {n} limit {limit}");
            }
        }
        // Past budget² elements two levels cannot stay within it: the bound says so,
        // and the backend's guard refuses the node.
        let budget = 4096 - 409;
        assert!(Plan::new((1, 200_000_000, 1), Some(4096)).loop_trips() > budget);
        // Without a limit, chunks stay at their preferred length.
        let plan = Plan::new((1, 5_000_000, 1), None);
        assert_eq!((plan.len, plan.chunks), (1024, 4883));
    }
}
