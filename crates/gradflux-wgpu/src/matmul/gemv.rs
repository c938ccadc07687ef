//! Matrix-vector products (`m == 1` after the launcher's `n == 1` swap): the blocked
//! kernel would launch only `n / BN` workgroups and leave most of a large GPU idle, so
//! here the inner dimension is split across a workgroup's invocations and summed in
//! workgroup memory, and every workgroup owns only a few output columns.
//!
//! Two layouts of `op(b)`:
//! - **columns contiguous** (`b` stored `[k, n]`, needs `n % 4 == 0`): invocation `(x, y)`
//!   owns the `vec4` of columns `x` and the rows `k ≡ y (mod WG_Y)`;
//! - **rows contiguous** (`b` stored `[n, k]`, needs `k % 4 == 0`): invocations `x` of row
//!   `y` read column `y`'s weights as `vec4`s strided by `WG_X` (coalesced along `k`).

use std::fmt::Write;

use gradflux_core::MatMulSpec;

use super::codegen::{header, write_store_fn, Variant, BATCH_OFFSETS};
use super::Problem;
use crate::pipelines::KernelSource;

/// Invocations `(WG_X, WG_Y)` per layout.
const COLUMNS_CONTIGUOUS: (u32, u32) = (8, 32);
const ROWS_CONTIGUOUS: (u32, u32) = (32, 8);

/// A matrix-vector launch: the kernel variant and its workgroup shape.
pub struct Gemv {
    variant: Variant,
    workgroup: (u32, u32),
    /// Output columns per workgroup.
    columns: u32,
}

impl Gemv {
    /// The matrix-vector kernel for `p`, if it applies: one output row, and the matrix's
    /// contiguous dimension a multiple of 4.
    pub fn of(p: &Problem, spec: &MatMulSpec) -> Option<Self> {
        let aligned = if p.transpose_b {
            p.k.is_multiple_of(4)
        } else {
            p.n.is_multiple_of(4)
        };
        if p.m != 1 || !aligned {
            return None;
        }
        // The register block does not apply here; bounds are always checked.
        let mut variant = p.variant_with(spec, (4, 4), true);
        // With rows contiguous the result is written one element at a time.
        variant.vec_c &= !p.transpose_b;
        let (workgroup, columns) = if p.transpose_b {
            (ROWS_CONTIGUOUS, ROWS_CONTIGUOUS.1)
        } else {
            (COLUMNS_CONTIGUOUS, COLUMNS_CONTIGUOUS.0 * 4)
        };
        Some(Gemv {
            variant,
            workgroup,
            columns,
        })
    }

    /// Loop iterations one invocation runs: its share of k (strided by the invocations
    /// along k, four at a time when rows are contiguous), the batch loop and the tree.
    pub fn loop_trips(&self, k: usize) -> u64 {
        let (x, y) = self.workgroup;
        let walk = if self.variant.transpose_b {
            (k as u64 / 4).div_ceil(x as u64)
        } else {
            (k as u64).div_ceil(y as u64)
        };
        walk + 8 + 8
    }

    /// Workgroups along n.
    pub fn tiles_n(&self, n: usize) -> usize {
        n.div_ceil(self.columns as usize)
    }

    /// The matrix-vector kernel with this configuration's override constants.
    pub fn kernel(&self) -> KernelSource {
        KernelSource {
            label: format!("{} gemv", self.variant.label()),
            source: source(&self.variant),
            entry_point: "main".into(),
            constants: vec![
                ("WG_X", self.workgroup.0 as f64),
                ("WG_Y", self.workgroup.1 as f64),
            ],
            read_only: self.variant.read_only(),
        }
    }
}

/// The WGSL of the matrix-vector kernel for `v` (`v.vec_b` must hold; with rows contiguous
/// the result is written one element at a time, so `v.vec_c` must be false).
pub fn source(v: &Variant) -> String {
    let mut s = header(v);
    s.push_str("var<workgroup> red: array<V, WG_X * WG_Y>;\n\n");
    // `a` is a vector (m == 1): element `i` whatever its binding's vector width.
    let a_at = if v.vec_a { "a[i / 4u][i % 4u]" } else { "a[i]" };
    let _ = writeln!(
        s,
        "fn a_at(i: u32) -> ACC {{\n    return ACC({a_at});\n}}\n"
    );
    if !v.transpose_b {
        write_store_fn(&mut s, v);
    }
    s.push_str(
        "@compute @workgroup_size(WG_X, WG_Y)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let w = wg.x + wg.y * nwg.x;
    let n = info[1];
    let k = info[2];
    let tiles_n = info[5];
    if w >= info[3] * tiles_n {
        return;
    }
    let batch = w / tiles_n;
    let tile = w % tiles_n;
",
    );
    s.push_str(BATCH_OFFSETS);
    s.push_str("    let c_off = batch * n;\n    let slot = lid.y * WG_X + lid.x;\n");
    if v.transpose_b {
        let mul = if v.dtype.is_float() {
            "acc = fma(av, bv, acc);"
        } else {
            "acc += av * bv;"
        };
        let _ = write!(
            s,
            "    let col = tile * WG_Y + lid.y;
    var acc = V(0);
    if col < n {{
        let row = (b_off + col * k) / 4u;
        for (var kq = lid.x; kq < k / 4u; kq += WG_X) {{
            let i = a_off + kq * 4u;
            let av = V(a_at(i), a_at(i + 1u), a_at(i + 2u), a_at(i + 3u));
            let bv = V(b[row + kq]);
            {mul}
        }}
    }}
    red[slot] = acc;
    workgroupBarrier();
    for (var s = WG_X / 2u; s > 0u; s /= 2u) {{
        if lid.x < s {{
            red[slot] += red[slot + s];
        }}
        workgroupBarrier();
    }}
    if lid.x == 0u && col < n {{
        let t = red[slot];
        var v = V(t.x + t.y + t.z + t.w, ACC(0), ACC(0), ACC(0));
{bias}        c[c_off + col] = T(act(v).x);
    }}
}}
",
            bias = if v.bias {
                "        v.x += ACC(bias[bias_off + col * info[41]]);\n"
            } else {
                ""
            }
        );
    } else {
        let mul = if v.dtype.is_float() {
            "acc = fma(V(a_at(a_off + kk)), V(b[(b_off + kk * n + col) / 4u]), acc);"
        } else {
            "acc += V(a_at(a_off + kk)) * V(b[(b_off + kk * n + col) / 4u]);"
        };
        let _ = write!(
            s,
            "    let col = (tile * WG_X + lid.x) * 4u;
    var acc = V(0);
    if col < n {{
        for (var kk = lid.y; kk < k; kk += WG_Y) {{
            {mul}
        }}
    }}
    red[slot] = acc;
    workgroupBarrier();
    for (var s = WG_Y / 2u; s > 0u; s /= 2u) {{
        if lid.y < s {{
            red[slot] += red[slot + s * WG_X];
        }}
        workgroupBarrier();
    }}
    if lid.y == 0u {{
        store(c_off, bias_off, 0u, col, 1u, n, red[slot]);
    }}
}}
"
        );
    }
    s
}
