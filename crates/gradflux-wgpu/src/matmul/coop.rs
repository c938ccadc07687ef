//! The cooperative-matrix matmul: the inner products run on the adapter's matrix units
//! (tensor cores, simdgroup matrices) through wgpu's experimental cooperative-matrix
//! feature, for the storage types whose products the adapter can multiply with f32
//! accumulation: f16 (`f16 x f16 -> f32`) and f32 (`f32 x f32 -> f32`).
//!
//! One workgroup is one subgroup, and owns an `RM x RN` grid of `S x S` output tiles
//! (`S` = 16 or 8, whichever the adapter offers). Operand tiles are loaded straight from
//! the storage buffers in their stored layout (`coopLoadT` for row-major, `coopLoad` for
//! column-major, so transposes cost nothing), the accumulators are stored to workgroup
//! memory, and the whole workgroup runs the shared epilogue (bias, activation, one
//! rounding to the storage type) from there.
//!
//! Cooperative loads have no bounds checks, so the path is taken only when `S` divides
//! m, n and k; the tiles of the last grid that fall past m or n load the last full tile
//! instead (in bounds) and are not stored. Everything else runs the portable kernel.

use std::fmt::{self, Write};

use gradflux_core::{DType, MatMulSpec};
use wgpu::{CooperativeMatrixProperties, CooperativeScalarType};

use super::codegen::{header, write_store_fn, Variant, BATCH_OFFSETS, BLOCK_PROLOGUE};
use super::Problem;
use crate::pipelines::KernelSource;

/// What the adapter's matrix units can do for gradflux: the tile size for each storage
/// type that has an f32-accumulating configuration, and the workgroup size (the largest
/// subgroup), so one workgroup is never more than one subgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoopCaps {
    /// Tile size (16 preferred over 8) for f16 storage, if the adapter has `f16 x f16 -> f32`.
    pub f16: Option<u32>,
    /// Tile size for f32 storage, if the adapter has `f32 x f32 -> f32`.
    pub f32: Option<u32>,
    /// The subgroup size every cooperative workgroup uses.
    pub subgroup: u32,
}

impl CoopCaps {
    /// Reads the adapter's cooperative-matrix configurations; `None` when none serves.
    pub fn of(props: &[CooperativeMatrixProperties], subgroup_max: u32) -> Option<Self> {
        let size = |ab: CooperativeScalarType| {
            props
                .iter()
                .filter(|p| {
                    p.ab_type == ab
                        && p.cr_type == CooperativeScalarType::F32
                        && !p.saturating_accumulation
                        && p.m_size == p.n_size
                        && p.n_size == p.k_size
                        && matches!(p.m_size, 8 | 16)
                })
                .map(|p| p.m_size)
                .max()
        };
        let caps = CoopCaps {
            f16: size(CooperativeScalarType::F16),
            f32: size(CooperativeScalarType::F32),
            subgroup: subgroup_max,
        };
        ((caps.f16.is_some() || caps.f32.is_some()) && subgroup_max > 0).then_some(caps)
    }

    /// Tile size for `dtype`, if the matrix units take it.
    pub fn size(&self, dtype: DType) -> Option<u32> {
        match dtype {
            DType::F16 => self.f16,
            DType::F32 => self.f32,
            _ => None,
        }
    }

    /// Every tiling the cooperative kernel may use for `p`, or none when `p` does not
    /// qualify (storage type, sizes not multiples of the tile, a single row).
    pub fn tilings(&self, p: &Problem) -> Vec<CoopTile> {
        let Some(size) = self.size(p.dtype) else {
            return Vec::new();
        };
        let s = size as usize;
        if p.m < 2 || !(p.m.is_multiple_of(s) && p.n.is_multiple_of(s) && p.k.is_multiple_of(s)) {
            return Vec::new();
        }
        GRIDS
            .iter()
            .map(|&(rm, rn)| CoopTile {
                size,
                rm,
                rn,
                subgroup: self.subgroup,
            })
            .collect()
    }

    /// The tiling used when tuning is off: the larger grid once the output is big enough
    /// to keep every core busy with it.
    pub fn default_tiling(&self, p: &Problem) -> Option<CoopTile> {
        let all = self.tilings(p);
        let big = p.m * p.n >= 512 * 512;
        all.iter()
            .copied()
            .find(|t| (t.rm, t.rn) == if big { (4, 4) } else { (2, 2) })
    }
}

/// Output tiles per workgroup, rows x columns.
const GRIDS: &[(u32, u32)] = &[(2, 2), (2, 4), (4, 4)];

/// One cooperative tiling: an `rm x rn` grid of `size x size` tiles per workgroup of
/// `subgroup` invocations.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoopTile {
    /// Side of one cooperative tile.
    pub size: u32,
    /// Tiles per workgroup along rows.
    pub rm: u32,
    /// Tiles per workgroup along columns.
    pub rn: u32,
    /// Invocations per workgroup (one subgroup).
    pub subgroup: u32,
}

impl CoopTile {
    /// Output rows per workgroup.
    pub fn bm(&self) -> u32 {
        self.size * self.rm
    }

    /// Output columns per workgroup.
    pub fn bn(&self) -> u32 {
        self.size * self.rn
    }

    /// Workgroup memory for the accumulators (f32), in bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        self.bm() * self.bn() * 4
    }

    /// Whether the adapter's workgroup limits allow this tiling.
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        self.subgroup <= limits.max_compute_invocations_per_workgroup
            && self.subgroup <= limits.max_compute_workgroup_size_x
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The kernel variant: scalar operand bindings (cooperative loads take a pointer to an
    /// element), `vec4` output (n is a multiple of the tile), bounds checked in the
    /// epilogue only.
    pub fn variant(&self, p: &Problem, spec: &MatMulSpec) -> Variant {
        let mut v = p.variant_with(spec, (4, 4), true);
        v.vec_a = false;
        v.vec_b = false;
        v.vec_c = true;
        v
    }

    /// The kernel source of `v` with this tiling's override constants.
    pub fn kernel(&self, v: &Variant) -> KernelSource {
        KernelSource {
            label: format!("{} {self}", v.label()),
            source: source(v, self),
            entry_point: "main".into(),
            constants: vec![("SG", self.subgroup as f64)],
            read_only: v.read_only(),
        }
    }

    /// Parses [`Display`](fmt::Display)'s form, `coop{size}/{rm}x{rn}/sg{subgroup}`.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.trim().strip_prefix("coop")?;
        let mut parts = rest.split('/');
        let size = parts.next()?.parse().ok()?;
        let (rm, rn) = parts.next()?.split_once('x')?;
        let subgroup = parts.next()?.strip_prefix("sg")?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let t = CoopTile {
            size,
            rm: rm.parse().ok()?,
            rn: rn.parse().ok()?,
            subgroup,
        };
        (matches!(size, 8 | 16) && GRIDS.contains(&(t.rm, t.rn))).then_some(t)
    }
}

impl fmt::Display for CoopTile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coop{}/{}x{}/sg{}",
            self.size, self.rm, self.rn, self.subgroup
        )
    }
}

/// The WGSL of the cooperative kernel for variant `v` and tiling `t`.
pub fn source(v: &Variant, t: &CoopTile) -> String {
    let (size, rm, rn) = (t.size, t.rm, t.rn);
    let mat = |elem: &str, role: &str| format!("coop_mat{size}x{size}<{elem}, {role}>");
    let elem = v.dtype.wgsl_name();
    let mut s = String::from("enable wgpu_cooperative_matrix;\n");
    s.push_str(&header(v));
    let _ = write!(
        s,
        "override SG: u32 = 32u;
const S: u32 = {size}u;
const RM: u32 = {rm}u;
const RN: u32 = {rn}u;
var<workgroup> acc_tiles: array<f32, RM * RN * S * S>;

"
    );
    write_store_fn(&mut s, v);
    s.push_str(
        "@compute @workgroup_size(SG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
",
    );
    s.push_str(BLOCK_PROLOGUE);
    s.push_str(
        "    let row0 = (tile / tiles_n) * RM * S;
    let col0 = (tile % tiles_n) * RN * S;
",
    );
    s.push_str(BATCH_OFFSETS);
    s.push_str("    let c_off = batch * m * n;\n");
    // Tiles past the edge reload the last full one (kept in bounds) and are not stored.
    for i in 0..rm {
        let _ = writeln!(s, "    let r{i} = min(row0 + {i}u * S, m - S);");
    }
    for j in 0..rn {
        let _ = writeln!(s, "    let c{j} = min(col0 + {j}u * S, n - S);");
    }
    for i in 0..rm {
        for j in 0..rn {
            let _ = writeln!(s, "    var acc_{i}_{j} = {}();", mat("f32", "C"));
        }
    }
    s.push_str("    for (var k0 = 0u; k0 < k; k0 += S) {\n");
    for i in 0..rm {
        // op(a) row-major with stride k, or (transposed) column-major with stride m.
        let (load, at, stride) = if v.transpose_a {
            ("coopLoad", format!("k0 * m + r{i}"), "m")
        } else {
            ("coopLoadT", format!("r{i} * k + k0"), "k")
        };
        let _ = writeln!(
            s,
            "        let x{i} = {load}<{}>(&a[a_off + {at}], {stride});",
            mat(elem, "A")
        );
    }
    for j in 0..rn {
        // op(b) row-major with stride n, or (transposed) column-major with stride k.
        let (load, at, stride) = if v.transpose_b {
            ("coopLoad", format!("c{j} * k + k0"), "k")
        } else {
            ("coopLoadT", format!("k0 * n + c{j}"), "n")
        };
        let _ = writeln!(
            s,
            "        let y{j} = {load}<{}>(&b[b_off + {at}], {stride});",
            mat(elem, "B")
        );
    }
    for i in 0..rm {
        for j in 0..rn {
            let _ = writeln!(
                s,
                "        acc_{i}_{j} = coopMultiplyAdd(x{i}, y{j}, acc_{i}_{j});"
            );
        }
    }
    s.push_str("    }\n");
    for i in 0..rm {
        for j in 0..rn {
            let _ = writeln!(
                s,
                "    coopStoreT(acc_{i}_{j}, &acc_tiles[{}u * S * S], S);",
                i * rn + j
            );
        }
    }
    s.push_str(
        "    workgroupBarrier();
    let quads = S * S / 4u;
    for (var e = li; e < RM * RN * quads; e += SG) {
        let t = e / quads;
        let rr = (e % quads) / (S / 4u);
        let cc = (e % quads) % (S / 4u) * 4u;
        let at = t * S * S + rr * S + cc;
        let acc = V(acc_tiles[at], acc_tiles[at + 1u], acc_tiles[at + 2u], acc_tiles[at + 3u]);
        let r = row0 + (t / RN) * S + rr;
        let col = col0 + (t % RN) * S + cc;
        store(c_off, bias_off, r, col, m, n, acc);
    }
}
",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(
        size: u32,
        ab: CooperativeScalarType,
        cr: CooperativeScalarType,
    ) -> CooperativeMatrixProperties {
        CooperativeMatrixProperties {
            m_size: size,
            n_size: size,
            k_size: size,
            ab_type: ab,
            cr_type: cr,
            saturating_accumulation: false,
        }
    }

    #[test]
    fn caps_take_only_f32_accumulating_square_tiles() {
        use CooperativeScalarType::*;
        assert_eq!(CoopCaps::of(&[], 32), None);
        // f16 accumulation only: not precise enough to stand in for the portable path.
        assert_eq!(CoopCaps::of(&[prop(16, F16, F16)], 32), None);
        let caps = CoopCaps::of(
            &[prop(8, F16, F32), prop(16, F16, F32), prop(8, F32, F32)],
            32,
        )
        .expect("caps");
        assert_eq!((caps.f16, caps.f32), (Some(16), Some(8)));
        assert_eq!(caps.size(DType::I32), None);
    }

    #[test]
    fn only_tile_multiples_qualify() {
        use CooperativeScalarType::*;
        let caps = CoopCaps::of(&[prop(16, F16, F32)], 32).expect("caps");
        let p = |m, n, k, dtype| Problem {
            dtype,
            m,
            n,
            k,
            batches: 1,
            transpose_a: false,
            transpose_b: false,
        };
        assert_eq!(caps.tilings(&p(64, 48, 32, DType::F16)).len(), GRIDS.len());
        assert!(caps.tilings(&p(64, 48, 33, DType::F16)).is_empty());
        assert!(caps.tilings(&p(1, 48, 32, DType::F16)).is_empty(), "gemv");
        assert!(
            caps.tilings(&p(64, 48, 32, DType::F32)).is_empty(),
            "no f32"
        );
        assert_eq!(
            caps.default_tiling(&p(4096, 4096, 64, DType::F16))
                .map(|t| (t.rm, t.rn)),
            Some((4, 4))
        );
    }

    #[test]
    fn tilings_round_trip_through_text() {
        for &(rm, rn) in GRIDS {
            let t = CoopTile {
                size: 16,
                rm,
                rn,
                subgroup: 32,
            };
            assert_eq!(CoopTile::parse(&t.to_string()), Some(t));
        }
        assert_eq!(CoopTile::parse("coop12/2x2/sg32"), None);
        assert_eq!(CoopTile::parse("coop16/3x3/sg32"), None);
        assert_eq!(CoopTile::parse("8x8/16x16/8"), None);
    }
}
