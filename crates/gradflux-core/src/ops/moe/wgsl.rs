//! Launch planning for mixture-of-experts dispatch (`shaders/moe/dispatch_*.wgsl`) and the
//! grouped matmul (`shaders/moe/grouped_matmul*.wgsl`).
//!
//! Dispatch is four passes with no host round-trip: count (each choice's rank among its
//! expert's choices in its tile of 256, and per-tile counts), scan (one workgroup: tile
//! bases, counts, drops, padded offsets), fill (padding and the expert of each block), and
//! place (each choice to `offsets[e] + rank`). Keeping the highest gates adds passes that
//! rank each choice by gate within its expert's choices (clear, count in chunks of the
//! expert's members with integer atomics, place), so however many choices one expert
//! holds no invocation walks more than `RANK_CHUNK` of them.

use crate::{DType, DropPolicy, Error, MoeDispatchSpec, Result, Value};

use crate::kernel::launch::{per_element, u32s, values, Bind, Launch, Workgroups, ELEMENTWISE_WG};
use crate::kernel::shaders::{self, ShaderFile};
use crate::kernel::KernelSource;

/// Choices per tile of the count pass (its `TILE`).
const TILE: usize = 256;
/// Members of an expert one invocation of the rank-by-gate count walks (its `CHUNK`).
pub const RANK_CHUNK: usize = 16384;

/// A kernel from `file` (no dtype specialisation); `read_only` covers every binding.
pub fn source(
    file: &ShaderFile,
    what: &str,
    constants: Vec<(&'static str, f64)>,
    read_only: &[bool],
) -> KernelSource {
    let name = file
        .path
        .trim_start_matches("moe/")
        .trim_end_matches(".wgsl");
    KernelSource {
        label: format!("{name} {what}").trim_end().to_string(),
        source: shaders::composed(file),
        entry_point: "main".into(),
        constants,
        read_only: read_only.to_vec(),
    }
}

/// Refuses a dtype other than f32 for `what`, saying what to cast.
pub fn f32_only(what: &str, dtype: DType, cast: &str) -> Result<()> {
    if dtype == DType::F32 {
        Ok(())
    } else {
        Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!("{what} on {dtype}; cast {cast} to f32 first"),
        })
    }
}

/// Members one invocation of the rank-by-gate count walks: [`RANK_CHUNK`], or half a
/// smaller loop limit.
pub fn rank_chunk(loop_limit: Option<u64>) -> usize {
    loop_limit.map_or(RANK_CHUNK, |l| RANK_CHUNK.min((l / 2) as usize))
}

/// The passes of `moe_dispatch`: `inputs` are `experts` and, for the highest-gate
/// policy, `gates`; `outs` are the op's six outputs in order; `n` choices, `rows` padded
/// rows.
pub fn dispatch_launches(
    spec: &MoeDispatchSpec,
    inputs: &[Value],
    gate_dtype: Option<DType>,
    outs: [Value; 6],
    (n, rows): (usize, usize),
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    let [sorted_ids, block_experts, positions, counts, dropped, offsets] = outs;
    let e = spec.num_experts;
    let highest = spec.policy == DropPolicy::HighestGate;
    if let Some(d) = gate_dtype.filter(|_| highest) {
        f32_only("moe_dispatch gates", d, "them")?;
    }
    let tiles = n.div_ceil(TILE);
    let capacity = spec.capacity.unwrap_or(n).min(n);
    let info = u32s([n, e, spec.block, capacity, rows, tiles, highest as usize]);
    // Ranks in tile, per-(tile, expert) counts, segment starts, then the members list.
    let scratch_words = n + tiles * e + e + 1 + if highest { n } else { 0 };
    let scratch = vec![(0, (scratch_words * 4) as u64)];
    let wg = vec![("WG", ELEMENTWISE_WG as f64)];
    // Every pass but the fill binds the scratch buffer after its values.
    let launch = |kernel, binds: Vec<Value>, workgroups| Launch {
        kernel,
        binds: values(binds)
            .into_iter()
            .chain([Bind::Scratch(0)])
            .collect(),
        scratch: scratch.clone(),
        info: info.clone(),
        workgroups,
    };
    let mut out = vec![
        launch(
            source(&super::MOE_COUNT, "count", vec![], &[true, false, true]),
            vec![inputs[0]],
            Workgroups::Linear(tiles as u64),
        ),
        launch(
            source(
                &super::MOE_SCAN,
                "scan",
                vec![],
                &[false, false, false, false, true],
            ),
            vec![counts, dropped, offsets],
            Workgroups::Linear(1),
        ),
        Launch {
            scratch: vec![],
            binds: values([offsets, sorted_ids, block_experts]),
            ..launch(
                source(
                    &super::MOE_FILL,
                    "fill",
                    wg.clone(),
                    &[true, false, false, true],
                ),
                vec![offsets, sorted_ids, block_experts],
                per_element(rows),
            )
        },
        launch(
            source(
                &super::MOE_PLACE,
                "place",
                wg.clone(),
                &[true, true, false, false, false, true],
            ),
            vec![inputs[0], offsets, sorted_ids, positions],
            per_element(n),
        ),
    ];
    if highest {
        // Clear the ranks, count them in chunks of an expert's members, then place.
        let chunk = rank_chunk(loop_limit);
        let chunks = n.div_ceil(chunk).max(1);
        let mut rank_info = info.clone();
        rank_info.push(chunks as u32);
        let read_only = [true, true, true, false, false, true, false, true];
        let pass = |entry: &str, workgroups| {
            let mut kernel = source(
                &super::MOE_RANK_GATE,
                &format!("rank by gate {entry}"),
                vec![("WG", ELEMENTWISE_WG as f64), ("CHUNK", chunk as f64)],
                &read_only,
            );
            kernel.entry_point = entry.into();
            Launch {
                kernel,
                binds: values([inputs[0], inputs[1], offsets, sorted_ids, positions])
                    .into_iter()
                    .chain([Bind::Scratch(0), Bind::Scratch(1)])
                    .collect(),
                scratch: vec![scratch[0], (1, (n.max(1) * 4) as u64)],
                info: rank_info.clone(),
                workgroups,
            }
        };
        out.push(pass("clear", per_element(n)));
        out.push(pass("count", per_element(n * chunks)));
        out.push(pass("place", per_element(n)));
    }
    Ok(out)
}

/// `grouped_matmul` of `x: [rows, k]` by `w` into `[rows, n]`: one workgroup per
/// `bm x 64` tile, `bm` the largest power of two up to 64 dividing `block`.
pub fn grouped_matmul_launch(
    [x, w, block_experts, out]: [Value; 4],
    dtype: DType,
    (rows, k, n, experts): (usize, usize, usize, usize),
    (block, transpose_b): (usize, bool),
) -> Result<Launch> {
    f32_only("grouped_matmul", dtype, "the operands")?;
    let bm = 1usize << block.trailing_zeros().min(6);
    let col_tiles = n.div_ceil(64);
    Ok(Launch {
        kernel: source(
            &super::GROUPED_MATMUL,
            &format!("bm {bm}{}", if transpose_b { " wT" } else { "" }),
            vec![
                ("BM", bm as f64),
                ("TRANSPOSE_B", if transpose_b { 1.0 } else { 0.0 }),
            ],
            &[true, true, true, false, true],
        ),
        binds: values([x, w, block_experts, out]),
        scratch: vec![],
        info: u32s([rows, k, n, experts, block, col_tiles]),
        workgroups: Workgroups::Linear(((rows / bm) * col_tiles) as u64),
    })
}

/// `grouped_matmul_weight_grad` into `dw: [experts, k, n]`: one workgroup per 64 x 64
/// tile of one expert's gradient.
pub fn grouped_matmul_weight_grad_launch(
    [x, dy, block_experts, dw]: [Value; 4],
    dtype: DType,
    (rows, k, n, experts): (usize, usize, usize, usize),
    block: usize,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("grouped_matmul_weight_grad", dtype, "the operands")?;
    let (k_tiles, n_tiles) = (k.div_ceil(64), n.div_ceil(64));
    let blocks = rows / block.max(1);
    let span = wgrad_span(blocks, block, loop_limit);
    let spans = blocks.div_ceil(span).max(1);
    let out = if spans > 1 {
        Bind::Scratch(0)
    } else {
        dw.into()
    };
    let weights = experts * k * n;
    let scratch = if spans > 1 {
        vec![(0, (spans * weights * 4) as u64)]
    } else {
        vec![]
    };
    let mut steps = vec![Launch {
        kernel: source(
            &super::GROUPED_MATMUL_WGRAD,
            if spans > 1 { "in spans" } else { "" },
            vec![],
            &[true, true, true, false, true],
        ),
        binds: vec![x.into(), dy.into(), block_experts.into(), out],
        scratch: scratch.clone(),
        info: u32s([rows, k, n, experts, block, k_tiles, n_tiles, span, spans]),
        workgroups: Workgroups::Linear((experts * k_tiles * n_tiles * spans) as u64),
    }];
    if spans > 1 {
        steps.push(crate::ops::reduce::wgsl::sum_spans(
            (Bind::Scratch(0), dw.into()),
            DType::F32,
            (spans, weights),
            &scratch,
        ));
    }
    Ok(steps)
}

/// Blocks of rows one invocation of the weight gradient walks: all of them, unless the
/// adapter's `loop_limit` would cut that short, then as many as fit half the limit.
pub fn wgrad_span(blocks: usize, block: usize, loop_limit: Option<u64>) -> usize {
    crate::kernel::loop_trips::span_within(blocks, 1, loop_limit, |b| {
        crate::kernel::loop_trips_families::grouped_wgrad(b as u64, block as u64)
    })
}
