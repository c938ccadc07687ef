//! Reductions over one axis on wgpu. A workgroup reduces a lane; a lane longer than
//! [`REDUCE_CHUNK`] is cut into chunks reduced by one workgroup each, and a second launch
//! reduces the chunks' partials, so no thread walks more than `REDUCE_CHUNK / 256` elements
//! (software drivers stop long shader loops silently, and a long serial walk starves a GPU
//! anyway). The partials compose exactly: sums of sums, max of maxima, logsumexp of
//! logsumexps; argmax takes the first chunk holding the maximum and that chunk's index.
//! Softmax over a long axis merges chunks' (max, sum of exp) pairs the same way.

use crate::{DType, ReduceOp, Value};

use crate::kernel::launch::{kernel, per_element, u32s, Bind, Launch, Workgroups};
use crate::kernel::shaders::specialise;
use crate::kernel::KernelSource;
use crate::ops::select::wgsl::gather_along_launch;

/// Longest stretch of an axis one workgroup reduces: 1024 elements per thread.
pub const REDUCE_CHUNK: usize = 256 * 1024;

/// Where a reduce launch reads and writes.
#[derive(Copy, Clone)]
struct Io {
    x: Bind,
    out: Bind,
    input: DType,
    output: DType,
}

/// One reduce launch over `[outer, len, inner]`, chunked by `chunk` (`len` or less);
/// `divisor` is what a mean divides by (the whole axis's length).
fn launch(
    op: ReduceOp,
    io: Io,
    (outer, len, inner): (usize, usize, usize),
    chunk: usize,
    divisor: usize,
) -> Launch {
    let chunks = len.div_ceil(chunk.max(1)).max(1);
    let outputs = outer * chunks * inner;
    // Sums over short axes: a thread per output instead of a workgroup.
    let serial = matches!(op, ReduceOp::Sum | ReduceOp::Mean) && len <= SERIAL_REDUCE_LEN;
    let (tag, workgroups) = if serial {
        (" serial".to_string(), per_element(outputs))
    } else if chunks > 1 {
        (
            format!(" chunks of {chunk}"),
            Workgroups::Linear(outputs as u64),
        )
    } else {
        (String::new(), Workgroups::Linear(outputs as u64))
    };
    Launch {
        kernel: kernel(
            &super::REDUCE,
            format!("{}<{}>{tag}", op.name(), io.input),
            io.input,
            io.output,
            None,
            vec![
                ("OP", reduce_code(op)),
                ("SERIAL", if serial { 1.0 } else { 0.0 }),
            ],
            3,
        ),
        binds: vec![io.x, io.out],
        scratch: vec![],
        info: u32s([outputs, len, inner, chunk.max(1), chunks, divisor]),
        workgroups,
    }
}

/// One sum over axis `view` of `x` into `out`, both any binding (split-k's partials).
pub fn sum_launch(x: Bind, out: Bind, dtype: DType, view: (usize, usize, usize)) -> Launch {
    let io = Io {
        x,
        out,
        input: dtype,
        output: dtype,
    };
    launch(ReduceOp::Sum, io, view, view.1, view.1)
}

/// The sum of `spans` partial results of `count` values each (stored span after span in
/// `parts`) into `out`, in span order: the second pass of every launch split to stay
/// within a loop budget. It names the node's `scratch`.
pub fn sum_spans(
    (parts, out): (Bind, Bind),
    dtype: DType,
    (spans, count): (usize, usize),
    scratch: &[(usize, u64)],
) -> Launch {
    sum_launch(parts, out, dtype, (1, spans, count)).with_scratch(scratch)
}

/// The launches of `op` over axis `(outer, len, inner)` of `x` into `out`.
pub fn launches(
    op: ReduceOp,
    (x, out): (Value, Value),
    (input, output): (DType, DType),
    (outer, len, inner): (usize, usize, usize),
) -> Vec<Launch> {
    let whole = Io {
        x: x.into(),
        out: out.into(),
        input,
        output,
    };
    if len <= REDUCE_CHUNK {
        return vec![launch(op, whole, (outer, len, inner), len, len)];
    }
    let chunks = len.div_ceil(REDUCE_CHUNK);
    let partial_bytes = |dtype: DType| (outer * chunks * inner * dtype.size_bytes()) as u64;
    let (partials, best_chunk, indices) = (Bind::Scratch(0), Bind::Scratch(1), Bind::Scratch(2));
    let chunk_view = (outer, chunks, inner);
    // A pass over every chunk of the axis into the partials.
    let per_chunk = |op: ReduceOp, out: Bind, output: DType| {
        launch(
            op,
            Io {
                out,
                output,
                ..whole
            },
            (outer, len, inner),
            REDUCE_CHUNK,
            len,
        )
    };
    if op != ReduceOp::ArgMax {
        // Means sum the chunks, then divide the total by the whole length.
        let first = if op == ReduceOp::Mean {
            ReduceOp::Sum
        } else {
            op
        };
        let scratch = [(0, partial_bytes(input))];
        let pass1 = per_chunk(first, partials, input).with_scratch(&scratch);
        let pass2 = launch(
            op,
            Io {
                x: partials,
                input,
                ..whole
            },
            chunk_view,
            chunks,
            len,
        )
        .with_scratch(&scratch);
        return vec![pass1, pass2];
    }
    // argmax: the maximum of each chunk, the first chunk holding the largest (NaN beats
    // every number, ties go to the earlier chunk), each chunk's own argmax along the whole
    // axis, and that chunk's index picked by gather_along.
    let scratch = vec![
        (0, partial_bytes(input)),
        (1, (outer * inner * 4) as u64),
        (2, partial_bytes(DType::U32)),
    ];
    let maxima = per_chunk(ReduceOp::Max, partials, input);
    let which = launch(
        ReduceOp::ArgMax,
        Io {
            x: partials,
            out: best_chunk,
            input,
            output: DType::U32,
        },
        chunk_view,
        chunks,
        chunks,
    );
    let argmaxes = per_chunk(ReduceOp::ArgMax, indices, output);
    let pick = gather_along_launch(
        [indices, best_chunk, out.into()],
        (outer * inner, 1, inner, chunks),
    );
    [maxima, which, argmaxes, pick]
        .into_iter()
        .map(|l| l.with_scratch(&scratch))
        .collect()
}

/// Softmax (or log-softmax) over axis `(outer, len, inner)` of `x`: one workgroup per row
/// up to [`REDUCE_CHUNK`] elements, else chunk statistics, a merge per row and an
/// elementwise pass (`shaders/reduce/softmax_long.wgsl`).
pub fn softmax_launches(
    log: bool,
    (x, out): (Value, Value),
    dtype: DType,
    (outer, len, inner): (usize, usize, usize),
) -> Vec<Launch> {
    let rows = outer * inner;
    let log_constant = ("LOG", if log { 1.0 } else { 0.0 });
    let name = if log { "log_softmax" } else { "softmax" };
    if len <= REDUCE_CHUNK {
        return vec![Launch {
            kernel: kernel(
                &super::SOFTMAX,
                format!("{name}<{dtype}>"),
                dtype,
                dtype,
                None,
                vec![log_constant],
                3,
            ),
            binds: vec![x.into(), out.into()],
            scratch: vec![],
            info: u32s([rows, len, inner]),
            workgroups: Workgroups::Linear(rows as u64),
        }];
    }
    let chunks = len.div_ceil(REDUCE_CHUNK);
    let stats_bytes = ((rows * chunks + rows) * 2 * 4) as u64;
    let pass = |entry: &str, workgroups: Workgroups| Launch {
        kernel: KernelSource {
            label: format!("{name}<{dtype}> {entry}, chunks of {REDUCE_CHUNK}"),
            source: specialise(&super::SOFTMAX_LONG, dtype, dtype, None),
            entry_point: entry.into(),
            constants: vec![log_constant],
            read_only: vec![true, false, false, true],
        },
        binds: vec![x.into(), Bind::Scratch(0), out.into()],
        scratch: vec![(0, stats_bytes)],
        info: u32s([rows, len, inner, REDUCE_CHUNK, chunks]),
        workgroups,
    };
    vec![
        pass("chunk_stats", Workgroups::Linear((rows * chunks) as u64)),
        pass("merge_rows", per_element(rows)),
        pass("apply", per_element(rows * len)),
    ]
}

/// Longest axis a sum or mean reduces with one thread per output (the reduce kernel's
/// `SERIAL` path); longer axes take a workgroup per output.
pub const SERIAL_REDUCE_LEN: usize = 32;

/// The reduce kernel's `OP` override for `op`.
pub fn reduce_code(op: ReduceOp) -> f64 {
    match op {
        ReduceOp::Sum => 0.0,
        ReduceOp::Mean => 1.0,
        ReduceOp::Max => 2.0,
        ReduceOp::Min => 3.0,
        ReduceOp::LogSumExp => 4.0,
        ReduceOp::ArgMax => 5.0,
    }
}

/// Threads per workgroup of the reduce and softmax kernels.
const REDUCE_WG: u64 = 256;

/// The reduce kernel: a strided walk of a chunk (two for logsumexp) and three trees of
/// log2(256) steps; a serial sum walks its short axis. A chunked axis adds the pass over
/// the chunks' partials.
pub fn reduce_trips(op: ReduceOp, len: usize) -> u64 {
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
pub fn softmax_trips(len: usize) -> u64 {
    if len <= REDUCE_CHUNK {
        return 3 * (len as u64).div_ceil(REDUCE_WG) + 2 * 8;
    }
    let per_chunk = (REDUCE_CHUNK as u64).div_ceil(REDUCE_WG) + 8;
    per_chunk.max(len.div_ceil(REDUCE_CHUNK) as u64)
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
