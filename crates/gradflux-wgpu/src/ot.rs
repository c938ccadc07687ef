//! Launch planning for `softmin` (`shaders/ot/softmin.wgsl`): a workgroup per row, or a
//! workgroup per tile of adjacent columns that reads the cost in place.

use gradflux_core::{DType, Result, SoftminAxis, Value};

use crate::launch::{Launch, Workgroups};
use crate::moe::f32_only;
use crate::pipelines::KernelSource;
use crate::shaders::{self, specialise};

/// Threads per workgroup of both kernels.
const WG: usize = 256;
/// Adjacent columns per workgroup of the per-column kernel (`WG / COLS` row slices).
const COLS: usize = 64;

/// The launch computing `softmin` of `cost [batch, n, m]` against `h` into `out`.
pub fn softmin_launch(
    [cost, h, out]: [Value; 3],
    dtype: DType,
    (batch, n, m): (usize, usize, usize),
    eps: f64,
    axis: SoftminAxis,
) -> Result<Launch> {
    f32_only("softmin", dtype, "the cost and h")?;
    let tiles = m.div_ceil(COLS);
    let (entry_point, workgroups) = match axis {
        SoftminAxis::PerRow => ("per_row", batch * n),
        SoftminAxis::PerColumn => ("per_column", batch * tiles),
    };
    Ok(Launch {
        kernel: KernelSource {
            label: format!("softmin {axis:?}"),
            source: specialise(&shaders::SOFTMIN, dtype, dtype, None),
            entry_point: entry_point.into(),
            constants: vec![("WG", WG as f64), ("COLS", COLS as f64)],
            read_only: vec![true, true, false, true],
        },
        binds: vec![cost, h, out],
        scratch: vec![],
        info: vec![
            batch as u32,
            n as u32,
            m as u32,
            (eps as f32).to_bits(),
            tiles as u32,
        ],
        workgroups: Workgroups::Linear(workgroups as u64),
    })
}
