//! Every WGSL file gradflux ships, registered in one place next to the pipeline cache, and
//! the text substitutions that specialise a file for a dtype and an op.
//!
//! Each file is valid WGSL as written (its f32 version), so it validates offline. A
//! specialisation rewrites the `alias T = ...;` / `alias R = ...;` lines (input and output
//! element types) and the line marked `// @op` (the op's expression).

use gradflux_core::DType;

/// A WGSL file under `shaders/`, embedded at compile time.
#[derive(Copy, Clone, Debug)]
pub struct ShaderFile {
    /// Path relative to `shaders/`.
    pub path: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($name:ident, $path:literal) => {
        pub const $name: ShaderFile = ShaderFile {
            path: $path,
            source: include_str!(concat!("../../../shaders/", $path)),
        };
    };
}

shader!(UNARY, "elementwise/unary.wgsl");
shader!(BINARY, "elementwise/binary.wgsl");
shader!(SELECT, "elementwise/select.wgsl");
shader!(STRIDED_COPY, "layout/strided_copy.wgsl");
shader!(REDUCE, "reduce/reduce.wgsl");
shader!(SOFTMAX, "reduce/softmax.wgsl");
shader!(SOFTMAX_LONG, "reduce/softmax_long.wgsl");
shader!(GATHER, "index/gather.wgsl");
shader!(SCATTER_ADD, "index/scatter_add.wgsl");
shader!(GATHER_ALONG, "index/gather_along.wgsl");
shader!(SCATTER_ALONG, "index/scatter_along.wgsl");
shader!(TOPK, "select/topk.wgsl");
shader!(MOE_COUNT, "moe/dispatch_count.wgsl");
shader!(MOE_SCAN, "moe/dispatch_scan.wgsl");
shader!(MOE_FILL, "moe/dispatch_fill.wgsl");
shader!(MOE_PLACE, "moe/dispatch_place.wgsl");
shader!(MOE_RANK_GATE, "moe/dispatch_rank_gate.wgsl");
shader!(ROUTE_CLEAR, "moe/route_clear.wgsl");
shader!(ROUTE_FUSED, "moe/route_fused.wgsl");
shader!(GROUPED_MATMUL, "moe/grouped_matmul.wgsl");
shader!(SOFTMIN, "ot/softmin.wgsl");
shader!(POINT_SOFTMIN, "ot/point_softmin.wgsl");
shader!(POINT_SOFTMIN_GRAD, "ot/point_softmin_grad.wgsl");
shader!(SINKHORN, "ot/sinkhorn.wgsl");
shader!(PLAN_MATVEC, "ot/plan_matvec.wgsl");
shader!(SINKHORN_ADJOINT, "ot/sinkhorn_adjoint.wgsl");
shader!(GROUPED_MATMUL_WGRAD, "moe/grouped_matmul_wgrad.wgsl");

/// All shipped shader files.
pub const ALL: &[ShaderFile] = &[
    UNARY,
    BINARY,
    SELECT,
    STRIDED_COPY,
    REDUCE,
    SOFTMAX,
    SOFTMAX_LONG,
    GATHER,
    SCATTER_ADD,
    GATHER_ALONG,
    SCATTER_ALONG,
    TOPK,
    MOE_COUNT,
    MOE_SCAN,
    MOE_FILL,
    MOE_PLACE,
    MOE_RANK_GATE,
    ROUTE_CLEAR,
    ROUTE_FUSED,
    GROUPED_MATMUL,
    GROUPED_MATMUL_WGRAD,
    SOFTMIN,
    POINT_SOFTMIN,
    POINT_SOFTMIN_GRAD,
    SINKHORN,
    PLAN_MATVEC,
    SINKHORN_ADJOINT,
];

/// Specialises a file: element types `t` (inputs) and `r` (output), and optionally the
/// expression on the `@op` line. An f16 type adds the `enable f16;` directive.
pub fn specialise(file: &ShaderFile, t: DType, r: DType, op_expr: Option<&str>) -> String {
    let mut out = String::with_capacity(file.source.len() + 64);
    if t == DType::F16 || r == DType::F16 {
        out.push_str("enable f16;\n");
    }
    for line in file.source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("alias T = ") {
            out.push_str(&format!("alias T = {};", t.wgsl_name()));
        } else if trimmed.starts_with("alias R = ") {
            out.push_str(&format!("alias R = {};", r.wgsl_name()));
        } else if let (Some(expr), true) = (op_expr, line.contains("// @op")) {
            out.push_str(&format!("    return {expr};"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_distinct_path_and_source() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.path, b.path);
                assert_ne!(a.source, b.source, "{} and {} share source", a.path, b.path);
            }
        }
    }

    #[test]
    fn specialise_rewrites_types_and_op() {
        let s = specialise(
            &BINARY,
            DType::I32,
            DType::U32,
            Some("select(0u, 1u, x < y)"),
        );
        assert!(s.contains("alias T = i32;"));
        assert!(s.contains("alias R = u32;"));
        assert!(s.contains("return select(0u, 1u, x < y);"));
        assert!(!s.contains("// @op"));
    }
}
