//! The scatters on wgpu (`shaders/index/scatter_*.wgsl`): one thread per output element
//! walks the indices in order, so sums are deterministic without atomics. Where the adapter
//! limits loop iterations per invocation, the indices are cut into tiles of half that
//! limit: each tile's sums land in a scratch buffer and a reduction over the
//! tiles (in tile order) gives the output.

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
