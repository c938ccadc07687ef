//! The WGSL lowering of the elementwise ops (`shaders/elementwise/`): one thread per
//! output element, numpy broadcasting through per-operand strides.

use crate::kernel::launch::{kernel, padded, per_element, Bind, Launch, ELEMENTWISE_WG};
use crate::kernel::shaders::ShaderFile;
use crate::kernel::KernelSource;
use crate::{BinaryOp, CompareOp, DType, Shape, UnaryOp};

/// Kernels with the output followed by `info`: `bindings` counts both.
pub fn elementwise_kernel(
    file: &ShaderFile,
    label: &str,
    t: DType,
    r: DType,
    expr: Option<&str>,
    bindings: usize,
) -> KernelSource {
    kernel(
        file,
        format!("{label}<{t},{r}>"),
        t,
        r,
        expr,
        vec![("WG", ELEMENTWISE_WG as f64)],
        bindings,
    )
}

/// A broadcasting two-input elementwise launch of `expr` over bindings `[a, b, out]`.
pub fn binary_expr_launch(
    label: &str,
    dtype: DType,
    expr: &str,
    binds: [Bind; 3],
    out: &Shape,
    operands: [&Shape; 2],
) -> Launch {
    Launch {
        kernel: elementwise_kernel(&super::BINARY, label, dtype, dtype, Some(expr), 4),
        binds: binds.to_vec(),
        scratch: vec![],
        info: broadcast_info(out, &operands),
        workgroups: per_element(out.numel()),
    }
}

/// A one-input elementwise launch of `expr` over bindings `[x, out]`.
pub fn unary_launch(
    label: &str,
    dtype: DType,
    expr: &str,
    binds: [Bind; 2],
    numel: usize,
) -> Launch {
    Launch {
        kernel: elementwise_kernel(&super::UNARY, label, dtype, dtype, Some(expr), 3),
        binds: binds.to_vec(),
        scratch: vec![],
        info: vec![numel as u32],
        workgroups: per_element(numel),
    }
}

/// `[numel, rank, contiguous mask, dims[8], strides per operand[8]...]` for the
/// broadcasting elementwise kernels.
pub fn broadcast_info(out: &Shape, operands: &[&Shape]) -> Vec<u32> {
    let mut mask = 0u32;
    for (k, s) in operands.iter().enumerate() {
        if *s == out {
            mask |= 1 << k;
        }
    }
    let mut info = vec![out.numel() as u32, out.rank() as u32, mask];
    info.extend(padded(out.dims()));
    for s in operands {
        info.extend(padded(&s.broadcast_strides(out)));
    }
    info
}

/// The WGSL expression of `op` on `a` (of element type `T`) for `dtype`, for the
/// `@op` line of a specialised kernel.
pub fn unary_expr(op: UnaryOp, dtype: DType) -> &'static str {
    match (op, dtype) {
        (UnaryOp::Neg, _) => "-a",
        (UnaryOp::Abs, DType::U32) => "a",
        (UnaryOp::Abs, _) => "abs(a)",
        (UnaryOp::Relu, DType::I32 | DType::U32) => "max(a, T(0))",
        (UnaryOp::Relu, _) => "select(max(a, T(0)), a, is_nan(f32(a)))",
        (UnaryOp::Exp, _) => "exp(a)",
        (UnaryOp::Log, _) => "log_f32(a)",
        (UnaryOp::Sqrt, _) => "sqrt_f32(a)",
        (UnaryOp::Sigmoid, _) => "sigmoid_f32(a)",
        (UnaryOp::Tanh, _) => "tanh_f32(a)",
    }
}

/// The WGSL expression of `op` on `x` and `y` for `dtype`: integer division follows
/// [`BinaryOp::Div`], float `maximum`/`minimum` propagate NaN.
pub fn binary_expr(op: BinaryOp, dtype: DType) -> &'static str {
    match (op, dtype) {
        (BinaryOp::Add, _) => "x + y",
        (BinaryOp::Sub, _) => "x - y",
        (BinaryOp::Mul, _) => "x * y",
        (BinaryOp::Div, DType::I32) => "div_i32(x, y)",
        (BinaryOp::Div, DType::U32) => "div_u32(x, y)",
        (BinaryOp::Div, _) => "x / y",
        (BinaryOp::Pow, _) => "pow_f32(x, y)",
        (BinaryOp::Maximum, DType::I32 | DType::U32) => "max(x, y)",
        (BinaryOp::Minimum, DType::I32 | DType::U32) => "min(x, y)",
        (BinaryOp::Maximum, _) => "max_nan(x, y)",
        (BinaryOp::Minimum, _) => "min_nan(x, y)",
    }
}

/// IEEE comparisons: with a NaN operand every comparison is false but `ne`, which is true
/// (so `ne(x, x)` is the usual NaN test). The NaN test is by bits, never folded away.
pub fn compare_expr(op: CompareOp, dtype: DType) -> String {
    let sym = match op {
        CompareOp::Eq => "==",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    };
    if !dtype.is_float() {
        return format!("select(0u, 1u, x {sym} y)");
    }
    if op == CompareOp::Ne {
        return "select(0u, 1u, x != y || unordered(x, y))".into();
    }
    format!("select(0u, 1u, x {sym} y && !unordered(x, y))")
}

/// A float-to-integer conversion gives 0 for NaN (WGSL leaves it to the driver).
pub fn cast_expr(from: DType, to: DType) -> &'static str {
    if from.is_float() && !to.is_float() {
        "R(select(a, T(0), is_nan(f32(a))))"
    } else {
        "R(a)"
    }
}
