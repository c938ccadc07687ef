//! Writes the WGSL of the blocked matmul kernel for one variant.
//!
//! Why generated: naga emits loops as written, and the register block (`tm x tn` outputs
//! per invocation, each a `vec4` accumulator) only reaches registers when every access to
//! it uses a constant index. So the inner product and the epilogue are unrolled here, once
//! per variant. What does not change the code (workgroup shape, k-step depth) stays a WGSL
//! `override` constant, set per configuration at pipeline creation.
//!
//! The kernel: each workgroup owns a `BM x BN` output block of one batch entry. Per k-step
//! it stages a `BM x BK` slice of `op(a)` and a `BK x BN` slice of `op(b)` in workgroup
//! memory, k-major (`sa[kk][row / 4]` holds four rows as a `vec4`), so the inner product
//! reads one `vec4` of `a` and one of `b` per row group and column group and does four
//! `fma`s per pair. An invocation's rows are `(p * WG_Y + lid.y) * 4 + i` and its columns
//! `(q * WG_X + lid.x) * 4 + j`: neighbouring invocations read neighbouring `vec4`s of
//! workgroup memory and write neighbouring `vec4`s of the output.

use std::fmt::Write;

use gradflux_core::{Activation, DType};

/// Everything that changes the kernel's code.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Storage type of `a`, `b`, bias and the result.
    pub dtype: DType,
    /// `a` is stored as `[k, m]` and read transposed.
    pub transpose_a: bool,
    /// `b` is stored as `[n, k]` and read transposed.
    pub transpose_b: bool,
    /// Operands read as `vec4`s: their contiguous dimension is a multiple of 4.
    pub vec_a: bool,
    /// See `vec_a`.
    pub vec_b: bool,
    /// The result is written as `vec4`s: `n` is a multiple of 4.
    pub vec_c: bool,
    /// Bounds checks on loads and stores; dropped only when the launcher guarantees every
    /// dimension is a multiple of its block size.
    pub checked: bool,
    /// A bias is added before the activation.
    pub bias: bool,
    /// The activation applied before the result is written.
    pub activation: Activation,
    /// Register block: output rows and columns per invocation (multiples of 4).
    pub tm: u32,
    /// See `tm`.
    pub tn: u32,
}

impl Variant {
    /// Type the products are summed in: f32 for f16 storage, the storage type otherwise.
    fn acc(&self) -> &'static str {
        match self.dtype {
            DType::F16 => "f32",
            t => t.wgsl_name(),
        }
    }

    /// A short label for pipelines and reports.
    pub fn label(&self) -> String {
        let t = |x: bool| if x { "t" } else { "n" };
        format!(
            "matmul<{}>{}{} {}x{}{}{}{}{}",
            self.dtype,
            t(self.transpose_a),
            t(self.transpose_b),
            self.tm,
            self.tn,
            if self.vec_a && self.vec_b { " v4" } else { "" },
            if self.checked { "" } else { " unchecked" },
            if self.bias { " +bias" } else { "" },
            match self.activation {
                Activation::Identity => String::new(),
                a => format!(" {}", a.name()),
            }
        )
    }

    /// Bindings in order: a, b, [bias], c, info. True marks read-only ones.
    pub fn read_only(&self) -> Vec<bool> {
        let mut r = vec![true, true];
        if self.bias {
            r.push(true);
        }
        r.extend([false, true]);
        r
    }
}

/// Where an operand's contiguous dimension lies in the tile being staged.
enum Layout {
    /// Stored `[outer, k]`: `a` as is, or `b` transposed.
    OuterK,
    /// Stored `[k, outer]`: `b` as is, or `a` transposed.
    KOuter,
}

struct Operand<'a> {
    buf: &'a str,
    shared: &'a str,
    offset: &'a str,
    /// Global index of the block's first row (or column) and the extent along it.
    start: &'a str,
    extent: &'a str,
    /// Block size along outer.
    block: &'a str,
    layout: Layout,
    vec: bool,
}

/// The WGSL source of `v`.
pub fn source(v: &Variant) -> String {
    let mut s = header(v);
    s.push_str(
        "var<workgroup> sa: array<V, BK * WG_Y * (TM / 4u)>;
var<workgroup> sb: array<V, BK * WG_X * (TN / 4u)>;

",
    );
    write_store_fn(&mut s, v);
    write_main(&mut s, v);
    s
}

/// The workgroup's place in a blocked launch: sizes from `info`, the batch entry and the
/// output block (`tile`) it owns; workgroups past the last block return.
pub(super) const BLOCK_PROLOGUE: &str = "    let w = wg.x + wg.y * nwg.x;
    let m = info[0];
    let n = info[1];
    let k = info[2];
    let tiles_n = info[5];
    let tiles = info[4] * tiles_n;
    if w >= info[3] * tiles {
        return;
    }
    let batch = w / tiles;
    let tile = w % tiles;
";

/// Offsets of this workgroup's batch entry in `a`, `b` and the bias, from `batch`. A
/// split-k launch (`info[43]` chunks of `info[42]` along k) numbers its batch entries
/// `batch · chunks + chunk`; the operands' offsets come from the batch part.
pub(super) const BATCH_OFFSETS: &str = "    var rem = batch / info[43];
    var a_off = 0u;
    var b_off = 0u;
    var bias_off = 0u;
    let rank = info[6];
    for (var d = 0u; d < rank; d++) {
        let axis = rank - 1u - d;
        let dim = info[8u + axis];
        let coord = rem % dim;
        rem /= dim;
        a_off += coord * info[8u + MAX_RANK + axis];
        b_off += coord * info[8u + 2u * MAX_RANK + axis];
        bias_off += coord * info[8u + 3u * MAX_RANK + axis];
    }
";

/// Types, overrides, bindings, the activation and the bias reader: what every matmul
/// kernel of a variant shares.
pub(super) fn header(v: &Variant) -> String {
    let mut s = String::new();
    let acc = v.acc();
    let t = v.dtype.wgsl_name();
    let float = v.dtype.is_float();
    if v.dtype == DType::F16 {
        s.push_str("enable f16;\n\n");
    }
    let _ = writeln!(s, "// {}", v.label());
    let _ = write!(
        s,
        "alias T = {t};
alias ACC = {acc};
alias V = vec4<ACC>;

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
const TM: u32 = {tm}u;
const TN: u32 = {tn}u;
const MAX_RANK: u32 = 8u;

",
        tm = v.tm,
        tn = v.tn
    );
    let elem = |vec: bool| if vec { "vec4<T>" } else { "T" };
    let mut binding = 0;
    let mut bind = |s: &mut String, name: &str, access: &str, ty: &str| {
        let _ = writeln!(
            s,
            "@group(0) @binding({binding}) var<storage, {access}> {name}: array<{ty}>;"
        );
        binding += 1;
    };
    bind(&mut s, "a", "read", elem(v.vec_a));
    bind(&mut s, "b", "read", elem(v.vec_b));
    if v.bias {
        bind(&mut s, "bias", "read", "T");
    }
    bind(&mut s, "c", "read_write", elem(v.vec_c));
    s.push_str(
        "// info: [m, n, k, batches, tiles_m, tiles_n, batch_rank, 0, batch dims[8],
//        a, b and bias batch strides[8 each], bias row stride, bias column stride]
",
    );
    bind(&mut s, "info", "read", "u32");
    s.push('\n');
    if float {
        s.push_str(
            "fn act(v: V) -> V {
",
        );
        let body = match v.activation {
            Activation::Identity => "    return v;".to_string(),
            Activation::Relu => "    return max(v, V(0));".to_string(),
            // Stable in both tails: exp only ever sees a non-positive argument.
            Activation::Sigmoid => "    let e = exp(-abs(v));
    let s = V(1) / (V(1) + e);
    return select(e * s, s, v >= V(0));"
                .to_string(),
            // tanh saturates in f32 well before 15; the clamp keeps drivers that expand it
            // through exp from overflowing.
            Activation::Tanh => "    return tanh(clamp(v, V(-15), V(15)));".to_string(),
        };
        let _ = writeln!(s, "{body}\n}}\n");
    } else {
        let body = match v.activation {
            Activation::Relu => "max(v, V(0))",
            _ => "v",
        };
        let _ = writeln!(s, "fn act(v: V) -> V {{\n    return {body};\n}}\n");
    }
    write_bias_fn(&mut s, v);
    s
}

fn write_bias_fn(s: &mut String, v: &Variant) {
    if !v.bias {
        return;
    }
    // The bias is broadcast to the output, so it is read through strides (0 where it
    // repeats) one element at a time.
    let _ = writeln!(
        s,
        "fn bias_at(off: u32, r: u32, col: u32, n: u32) -> V {{
    let rs = info[40];
    let cs = info[41];
    var out = V(0);
    for (var j = 0u; j < 4u; j++) {{
        if col + j < n {{
            out[j] = ACC(bias[off + r * rs + (col + j) * cs]);
        }}
    }}
    return out;
}}
"
    );
}

pub(super) fn write_store_fn(s: &mut String, v: &Variant) {
    let mut body = String::new();
    if v.checked {
        body.push_str("    if r >= m {\n        return;\n    }\n");
    }
    if v.bias {
        body.push_str("    let out = act(acc + bias_at(bias_off, r, col, n));\n");
    } else {
        body.push_str("    let out = act(acc);\n");
    }
    if v.vec_c {
        let store = "c[(off + r * n + col) / 4u] = vec4<T>(out);";
        if v.checked {
            let _ = writeln!(body, "    if col < n {{\n        {store}\n    }}");
        } else {
            let _ = writeln!(body, "    {store}");
        }
    } else {
        let _ = writeln!(
            body,
            "    for (var j = 0u; j < 4u; j++) {{
        if col + j < n {{
            c[off + r * n + col + j] = T(out[j]);
        }}
    }}"
        );
    }
    let _ = writeln!(
        s,
        "fn store(off: u32, bias_off: u32, r: u32, col: u32, m: u32, n: u32, acc: V) {{\n{body}}}\n"
    );
}

/// Stages one operand's slice for the k-step starting at `k0` into workgroup memory.
///
/// Invocations walk the slice in storage order (consecutive `idx` read consecutive
/// addresses). Each element or `vec4` lands at depth `kk` and outer index `r` of the
/// k-major tile; a `vec4` along the outer dimension is stored whole, one along `k` is
/// scattered over four depths.
fn write_load(s: &mut String, o: &Operand, checked: bool) {
    let (buf, sh, off, start, ext, block) = (o.buf, o.shared, o.offset, o.start, o.extent, o.block);
    let outer_k = matches!(o.layout, Layout::OuterK);
    // Names and ranges of the two indices `idx` splits into (slow, fast), where the
    // fast one runs along the contiguous dimension, and the global element they address.
    let (count, slow, fast, divisor, g, gk, at) = match (outer_k, o.vec) {
        (true, true) => (
            "BK / 4u",
            "r",
            "kq",
            "(BK / 4u)",
            "r",
            "kq * 4u",
            "g * k + gk",
        ),
        (true, false) => ("BK", "r", "kk", "BK", "r", "kk", "g * k + gk"),
        (false, true) => (
            "BK / 4u",
            "kk",
            "rq",
            "({block} / 4u)",
            "rq * 4u",
            "kk",
            "gk * {ext} + g",
        ),
        (false, false) => ("BK", "kk", "r", "{block}", "r", "kk", "gk * {ext} + g"),
    };
    let (divisor, at) = (divisor.replace("{block}", block), at.replace("{ext}", ext));
    let (zero, read) = if o.vec {
        ("V(0)", format!("V({buf}[({off} + {at}) / 4u])"))
    } else {
        ("ACC(0)", format!("ACC({buf}[{off} + {at}])"))
    };
    let load = if checked {
        format!("if g < {ext} && gk < k_hi {{\n                v = {read};\n            }}")
    } else {
        format!("v = {read};")
    };
    let row = format!("{block} / 4u");
    let write = match (outer_k, o.vec) {
        (true, true) => format!(
            "let base = kq * 4u * ({row}) + r / 4u;
            let lane = r % 4u;
            {sh}[base][lane] = v.x;
            {sh}[base + {row}][lane] = v.y;
            {sh}[base + 2u * ({row})][lane] = v.z;
            {sh}[base + 3u * ({row})][lane] = v.w;"
        ),
        (false, true) => format!("{sh}[kk * ({row}) + rq] = v;"),
        (_, false) => format!("{sh}[kk * ({row}) + r / 4u][r % 4u] = v;"),
    };
    let _ = writeln!(
        s,
        "        for (var idx = li; idx < {block} * {count}; idx += threads) {{
            let {slow} = idx / {divisor};
            let {fast} = idx % {divisor};
            let g = {start} + {g};
            let gk = k0 + {gk};
            var v = {zero};
            {load}
            {write}
        }}"
    );
}

fn write_main(s: &mut String, v: &Variant) {
    let (gm, gn) = (v.tm / 4, v.tn / 4);
    let float = v.dtype.is_float();
    s.push_str(
        "@compute @workgroup_size(WG_X, WG_Y)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
",
    );
    s.push_str(BLOCK_PROLOGUE);
    s.push_str(
        "    let bm = WG_Y * TM;
    let bn = WG_X * TN;
    let row0 = (tile / tiles_n) * bm;
    let col0 = (tile % tiles_n) * bn;
    let threads = WG_X * WG_Y;

",
    );
    s.push_str(BATCH_OFFSETS);
    s.push_str("    let c_off = batch * m * n;\n\n");
    for p in 0..gm {
        for i in 0..4 {
            for q in 0..gn {
                let _ = writeln!(s, "    var acc_{p}_{i}_{q} = V(0);");
            }
        }
    }
    // This workgroup's stretch of k: all of it, or one chunk of a split-k launch, whose
    // partial product lands at its own batch entry of the output.
    s.push_str(
        "    let k_lo = (batch % info[43]) * info[42];
    let k_hi = min(k, k_lo + info[42]);
",
    );
    s.push_str("\n    for (var k0 = k_lo; k0 < k_hi; k0 += BK) {\n");
    let a = Operand {
        buf: "a",
        shared: "sa",
        offset: "a_off",
        start: "row0",
        extent: "m",
        block: "bm",
        layout: if v.transpose_a {
            Layout::KOuter
        } else {
            Layout::OuterK
        },
        vec: v.vec_a,
    };
    let b = Operand {
        buf: "b",
        shared: "sb",
        offset: "b_off",
        start: "col0",
        extent: "n",
        block: "bn",
        layout: if v.transpose_b {
            Layout::OuterK
        } else {
            Layout::KOuter
        },
        vec: v.vec_b,
    };
    write_load(s, &a, v.checked);
    write_load(s, &b, v.checked);
    s.push_str("        workgroupBarrier();\n        for (var kk = 0u; kk < BK; kk++) {\n");
    for p in 0..gm {
        let _ = writeln!(
            s,
            "            let a{p} = sa[kk * (bm / 4u) + {p}u * WG_Y + lid.y];"
        );
    }
    for q in 0..gn {
        let _ = writeln!(
            s,
            "            let b{q} = sb[kk * (bn / 4u) + {q}u * WG_X + lid.x];"
        );
    }
    let lane = ["x", "y", "z", "w"];
    for p in 0..gm {
        for (i, l) in lane.iter().enumerate() {
            for q in 0..gn {
                let acc = format!("acc_{p}_{i}_{q}");
                if float {
                    let _ = writeln!(s, "            {acc} = fma(V(a{p}.{l}), b{q}, {acc});");
                } else {
                    let _ = writeln!(s, "            {acc} += V(a{p}.{l}) * b{q};");
                }
            }
        }
    }
    s.push_str("        }\n        workgroupBarrier();\n    }\n\n");
    for p in 0..gm {
        for i in 0..4 {
            for q in 0..gn {
                let _ = writeln!(
                    s,
                    "    store(c_off, bias_off, row0 + ({p}u * WG_Y + lid.y) * 4u + {i}u, \
                     col0 + ({q}u * WG_X + lid.x) * 4u, m, n, acc_{p}_{i}_{q});"
                );
            }
        }
    }
    s.push_str("}\n");
}
