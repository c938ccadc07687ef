//! Tile configurations of the blocked matmul kernel, the shape classes they are chosen
//! for, and the deterministic choice used when tuning is off.
//!
//! A configuration is split in two: the register block (`tm` x `tn` outputs per
//! invocation) changes the kernel's code, because its loops are unrolled in the source;
//! the workgroup shape and the depth of a k-step are WGSL `override` constants, so configs
//! that share a register block share one shader module.

use std::fmt;

/// One tile configuration. A workgroup computes a `bm() x bn()` block of the output in
/// steps of `bk` along the inner dimension.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    /// Output rows per invocation (a multiple of 4).
    pub tm: u32,
    /// Output columns per invocation (a multiple of 4).
    pub tn: u32,
    /// Invocations along columns and rows (`override WG_X`, `WG_Y`).
    pub wg_x: u32,
    /// See `wg_x`.
    pub wg_y: u32,
    /// Depth of one k-step (`override BK`, a multiple of 4).
    pub bk: u32,
}

impl TileConfig {
    /// A configuration from its five numbers, in field order.
    pub const fn new(tm: u32, tn: u32, wg_x: u32, wg_y: u32, bk: u32) -> Self {
        TileConfig {
            tm,
            tn,
            wg_x,
            wg_y,
            bk,
        }
    }

    /// Every configuration the kernel is built and tested with.
    pub fn candidates() -> &'static [TileConfig] {
        CANDIDATES
    }

    /// Output rows per workgroup (`tm · wg_y`).
    pub fn bm(&self) -> u32 {
        self.wg_y * self.tm
    }

    /// Output columns per workgroup (`tn · wg_x`).
    pub fn bn(&self) -> u32 {
        self.wg_x * self.tn
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        self.wg_x * self.wg_y
    }

    /// Workgroup memory for both staged tiles, in bytes (they are held in f32/i32/u32).
    pub fn workgroup_bytes(&self) -> u32 {
        (self.bm() + self.bn()) * self.bk * 4
    }

    /// Whether the adapter can launch this configuration.
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        self.invocations() <= limits.max_compute_invocations_per_workgroup
            && self.wg_x <= limits.max_compute_workgroup_size_x
            && self.wg_y <= limits.max_compute_workgroup_size_y
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The override constants this configuration sets.
    pub fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("WG_X", self.wg_x as f64),
            ("WG_Y", self.wg_y as f64),
            ("BK", self.bk as f64),
        ]
    }

    /// Parses [`Display`](fmt::Display)'s form, `tm x tn / wg_x x wg_y / bk`.
    pub fn parse(s: &str) -> Option<Self> {
        let (block, rest) = s.trim().split_once('/')?;
        let (wg, bk) = rest.split_once('/')?;
        let pair = |p: &str| -> Option<(u32, u32)> {
            let (x, y) = p.split_once('x')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        };
        let ((tm, tn), (wg_x, wg_y)) = (pair(block)?, pair(wg)?);
        let c = TileConfig::new(tm, tn, wg_x, wg_y, bk.parse().ok()?);
        CANDIDATES.contains(&c).then_some(c)
    }
}

impl fmt::Display for TileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}/{}x{}/{}",
            self.tm, self.tn, self.wg_x, self.wg_y, self.bk
        )
    }
}

/// Every configuration the kernel is built and tested with; the tuner picks among those
/// that fit the adapter.
pub(crate) const CANDIDATES: &[TileConfig] = &[
    // Skinny: a few rows (matrix-vector), wide in n.
    TileConfig::new(4, 4, 32, 1, 16),
    TileConfig::new(4, 4, 64, 1, 8),
    // Small and medium outputs.
    TileConfig::new(4, 4, 8, 8, 16),
    TileConfig::new(4, 4, 16, 16, 16),
    TileConfig::new(8, 4, 16, 16, 16),
    TileConfig::new(4, 8, 16, 16, 16),
    TileConfig::new(8, 8, 8, 8, 16),
    // Large outputs: 128 x 128 blocks.
    TileConfig::new(8, 8, 16, 16, 8),
    TileConfig::new(8, 8, 16, 16, 16),
];

/// A bucket of problem sizes that share a best configuration: each of m, n, k rounded up to
/// a power of two, with the tiny and huge ends merged.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShapeClass {
    /// `m`, rounded up to its bucket.
    pub m: u32,
    /// `n`, rounded up to its bucket.
    pub n: u32,
    /// `k`, rounded up to its bucket.
    pub k: u32,
}

fn bucket(x: usize) -> u32 {
    (x.clamp(1, 1 << 14) as u32).next_power_of_two()
}

impl ShapeClass {
    /// The class of an `m x k · k x n` product.
    pub fn of(m: usize, n: usize, k: usize) -> Self {
        ShapeClass {
            m: bucket(m),
            n: bucket(n),
            k: bucket(k),
        }
    }
}

impl fmt::Display for ShapeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}n{}k{}", self.m, self.n, self.k)
    }
}

/// The configuration used when tuning is off: chosen from the output's size alone, so a
/// given shape always runs the same kernel. Falls back to the smallest configuration that
/// fits when the preferred one does not.
pub fn default_config(m: usize, n: usize, limits: &wgpu::Limits) -> TileConfig {
    let preferred = if m <= 4 {
        TileConfig::new(4, 4, 32, 1, 16)
    } else if m * n <= 128 * 128 {
        TileConfig::new(4, 4, 8, 8, 16)
    } else if m * n <= 512 * 512 {
        TileConfig::new(4, 4, 16, 16, 16)
    } else {
        TileConfig::new(8, 8, 16, 16, 8)
    };
    if preferred.fits(limits) {
        preferred
    } else {
        *CANDIDATES
            .iter()
            .filter(|c| c.fits(limits))
            .min_by_key(|c| (c.workgroup_bytes(), c.invocations()))
            .unwrap_or(&CANDIDATES[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_round_trip_and_fit_the_default_limits() {
        let limits = wgpu::Limits::default();
        for c in CANDIDATES {
            assert_eq!(TileConfig::parse(&c.to_string()), Some(*c));
            assert!(c.fits(&limits), "{c} does not fit wgpu's default limits");
            assert_eq!(c.tm % 4, 0);
            assert_eq!(c.tn % 4, 0);
            assert_eq!(c.bk % 4, 0);
        }
        assert_eq!(TileConfig::parse("8x8/16x16/12"), None, "not a candidate");
        assert_eq!(TileConfig::parse("garbage"), None);
    }

    #[test]
    fn shape_classes_bucket_by_powers_of_two() {
        assert_eq!(ShapeClass::of(1000, 1, 1000), ShapeClass::of(1024, 1, 513));
        assert_ne!(ShapeClass::of(1000, 1, 1000), ShapeClass::of(1025, 1, 1000));
        assert_eq!(ShapeClass::of(0, 0, 0).to_string(), "m1n1k1");
    }

    #[test]
    fn default_is_a_candidate_and_respects_limits() {
        let limits = wgpu::Limits::default();
        for (m, n) in [(1, 4096), (3, 5), (127, 129), (4096, 4096)] {
            assert!(CANDIDATES.contains(&default_config(m, n, &limits)));
        }
        let tight = wgpu::Limits {
            max_compute_workgroup_storage_size: 4096,
            ..wgpu::Limits::default()
        };
        let c = default_config(4096, 4096, &tight);
        assert!(c.fits(&tight), "{c}");
    }
}
