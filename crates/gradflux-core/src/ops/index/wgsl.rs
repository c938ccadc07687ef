//! The scatters on wgpu (`shaders/index/scatter_*.wgsl`): one thread per output element
//! walks the indices in order, so sums are deterministic without atomics; with many
//! indices and many rows, the positions are sorted by index first and each output sums
//! only its run, in the same order ([`sorted_pays`]). Where the adapter limits loop
//! iterations per invocation, the direct walk cuts the indices into tiles of half that
//! limit: each tile's sums land in a scratch buffer and a reduction over the tiles (in tile
//! order) gives the output.

use crate::{DType, Value};

use crate::kernel::launch::{kernel, per_element, u32s, Bind, Launch, ELEMENTWISE_WG};
use crate::kernel::shaders::ShaderFile;
use crate::ops::reduce::wgsl::sum_spans;

/// Indices one invocation walks where loops are limited: half the limit (32 767 on
/// llvmpipe); all of them without one.
pub fn scatter_tile(loop_limit: Option<u64>) -> usize {
    loop_limit.map_or(usize::MAX, |l| (l / 2) as usize)
}

/// Tiles a walk of `walk` indices takes: one unless the device's loop budget is passed.
pub fn scatter_tiles(walk: usize, loop_limit: Option<u64>) -> usize {
    walk.div_ceil(scatter_tile(loop_limit)).max(1)
}

/// The launches of a scatter kernel `file` over `[src, idx, out]`: `numel` outputs of
/// `dtype` (indices of `index_dtype`), each walking `walk` indices; `sizes` are the
/// kernel's first four `info` words.
pub fn scatter_launches(
    (file, name): (&ShaderFile, &str),
    [src, idx, out]: [Value; 3],
    (dtype, index_dtype): (DType, DType),
    (numel, walk): (usize, usize),
    sizes: [usize; 4],
    loop_limit: Option<u64>,
) -> Vec<Launch> {
    let tiles = scatter_tiles(walk, loop_limit);
    let tile_len = if tiles > 1 {
        scatter_tile(loop_limit)
    } else {
        walk.max(1)
    };
    let mut info = u32s(sizes);
    info.extend(u32s([tile_len, tiles]));
    let scatter = |out: Bind| Launch {
        kernel: kernel(
            file,
            format!("{name}<{dtype}>{}", if tiles > 1 { " tiled" } else { "" }),
            dtype,
            index_dtype,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            4,
        ),
        binds: vec![src.into(), idx.into(), out],
        scratch: vec![],
        info: info.clone(),
        workgroups: per_element(numel * tiles),
    };
    if tiles == 1 {
        return vec![scatter(out.into())];
    }
    let scratch = [(0, (tiles * numel * dtype.size_bytes()) as u64)];
    vec![
        scatter(Bind::Scratch(0)).with_scratch(&scratch),
        sum_spans(
            (Bind::Scratch(0), out.into()),
            dtype,
            (tiles, numel),
            &scratch,
        ),
    ]
}

/// Whether a scatter (`scatter_add`, `scatter_along`) sorts its indices first: when many
/// rows would each walk many indices (the direct walk costs outputs × indices), and a
/// row's run fits the loop budget (a run is at most every index).
pub fn sorted_pays(n_idx: usize, dim_size: usize, loop_limit: Option<u64>) -> bool {
    n_idx >= 256 && dim_size >= 16 && scatter_tiles(n_idx, loop_limit) == 1
}

/// One launch of an entry point of `shaders/index/scatter_sorted.wgsl` over `binds` (the
/// one at `writes` written), with the positions' buffer as scratch 0.
fn sorted_launch(
    file: &ShaderFile,
    (op, entry, dtype): (&str, &str, DType),
    binds: Vec<Bind>,
    writes: usize,
    (info, threads): (Vec<u32>, usize),
    scratch: &[(usize, u64)],
) -> Launch {
    let mut k = kernel(
        file,
        format!("{op} sorted {entry}<{dtype}>"),
        dtype,
        DType::U32,
        None,
        vec![("WG", ELEMENTWISE_WG as f64)],
        binds.len() + 1,
    );
    k.entry_point = entry.into();
    k.read_only = vec![true; binds.len() + 1];
    k.read_only[writes] = false;
    Launch {
        kernel: k,
        binds,
        scratch: vec![],
        info,
        workgroups: per_element(threads),
    }
    .with_scratch(scratch)
}

/// The passes `(k, j)` of a bitonic network over `padded` (a power of two) entries.
fn bitonic_passes(padded: usize) -> Vec<(usize, usize)> {
    let mut passes = vec![];
    let mut k = 2;
    while k <= padded {
        let mut j = k / 2;
        while j > 0 {
            passes.push((k, j));
            j /= 2;
        }
        k *= 2;
    }
    passes
}

/// `scatter_add` by sorted indices (`shaders/index/scatter_sorted.wgsl`): a bitonic sort
/// of the positions by (index, position), each row's run by binary search, then each
/// output summing its run in position order — the same sums as the direct walk. `sizes`
/// are `[numel, inner, n_idx, dim_size]`.
pub fn sorted_scatter_launches(
    file: &ShaderFile,
    [src, idx, out]: [Value; 3],
    dtype: DType,
    [numel, inner, n_idx, dim]: [usize; 4],
) -> Vec<Launch> {
    let padded = n_idx.next_power_of_two();
    let scratch = [(0, ((padded + dim + 1) * 4) as u64)];
    let launch = |entry: &str, binds: Vec<Bind>, info: Vec<u32>, threads: usize, writes: usize| {
        sorted_launch(
            file,
            ("scatter_add", entry, dtype),
            binds,
            writes,
            (info, threads),
            &scratch,
        )
    };
    let perm = Bind::Scratch(0);
    let sort = |info: Vec<u32>, entry: &str| {
        launch(entry, vec![idx.into(), perm, idx.into()], info, padded, 1)
    };
    let mut launches = vec![sort(u32s([n_idx, padded, 0, 0]), "sort_init")];
    for (k, j) in bitonic_passes(padded) {
        launches.push(sort(u32s([n_idx, padded, k, j]), "sort_pass"));
    }
    launches.push(launch(
        "bounds",
        vec![idx.into(), perm, idx.into()],
        u32s([n_idx, padded, dim]),
        dim + 1,
        1,
    ));
    launches.push(launch(
        "gather_sum",
        vec![src.into(), perm, out.into()],
        u32s([numel, inner, n_idx, dim, padded]),
        numel,
        2,
    ));
    launches
}

/// `scatter_along` by sorted indices: each lane `(o, i)` of `idx [outer, m, inner]` sorts
/// its own positions by (index, position) in a span of the next power of two of `m`, and
/// each output element binary-searches its row's run in its lane and sums it in position
/// order — the same sums as the direct walk. `sizes` are `[numel, m, inner, dim_size]`.
pub fn sorted_along_launches(
    file: &ShaderFile,
    [src, idx, out]: [Value; 3],
    dtype: DType,
    [numel, m, inner, dim]: [usize; 4],
) -> Vec<Launch> {
    let padded = m.next_power_of_two();
    let lanes = numel / dim.max(1);
    let scratch = [(0, (lanes * padded * 4) as u64)];
    let perm = Bind::Scratch(0);
    let sort = |entry: &str, k: usize, j: usize| {
        sorted_launch(
            file,
            ("scatter_along", entry, dtype),
            vec![idx.into(), perm, idx.into()],
            1,
            (u32s([lanes, m, inner, padded, k, j]), lanes * padded),
            &scratch,
        )
    };
    let mut launches = vec![sort("lane_sort_init", 0, 0)];
    for (k, j) in bitonic_passes(padded) {
        launches.push(sort("lane_sort_pass", k, j));
    }
    launches.push(sorted_launch(
        file,
        ("scatter_along", "lane_gather_sum", dtype),
        vec![src.into(), perm, out.into(), idx.into()],
        2,
        (u32s([numel, m, inner, dim, padded]), numel),
        &scratch,
    ));
    launches
}
