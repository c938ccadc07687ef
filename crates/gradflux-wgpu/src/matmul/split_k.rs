//! Split-k: a product whose inner dimension is too long for one invocation's loop budget
//! (software drivers stop an invocation after 65 535 loop iterations, silently) is computed
//! as partial products over chunks of k, one per batch entry of a scratch output, which a
//! reduction then sums; the bias and activation of `linear` follow as elementwise passes.

use gradflux_core::{Activation, DType, MatMulSpec, Shape, UnaryOp};

use super::{info, kernel, Plan, Problem, TileConfig};
use crate::launch::{Bind, Launch, Workgroups};
use gradflux_core::ops::elementwise::wgsl::{binary_expr_launch, unary_expr, unary_launch};

/// Loop iterations one invocation of the tiled kernel runs over `k`: per k-step, the two
/// staging loops and the `BK` products; then the batch loop and the stores' loops.
pub fn tiled_loop_trips(c: &TileConfig, k: usize) -> u64 {
    let threads = (c.wg_x * c.wg_y) as u64;
    let bk = c.bk as u64;
    let staging = |block: u32| (block as u64 * bk).div_ceil(threads);
    let per_step = 1 + staging(c.bm()) + staging(c.bn()) + bk;
    (k as u64).div_ceil(bk) * per_step + 8 + 8 * (c.tm * c.tn) as u64
}

/// Chunks of k that keep each invocation within half of `limit` (a margin for the loops
/// the estimate rounds), a multiple of `BK` and of 4 so vector loads stay aligned.
fn chunk_len(c: &TileConfig, k: usize, limit: u64) -> usize {
    let per_step = tiled_loop_trips(c, c.bk as usize) - tiled_loop_trips(c, 0);
    let steps = ((limit / 2).saturating_sub(tiled_loop_trips(c, 0)) / per_step).max(1);
    let align = (c.bk as usize).max(4);
    ((steps as usize * c.bk as usize) / align * align).clamp(align, k.max(align))
}

/// What the split needs from the product's launch: the problem, its plan, the operands'
/// bindings and batch layout, and the output and bias it finishes with.
pub(super) struct SplitProduct<'a> {
    pub p: Problem,
    pub config: TileConfig,
    pub spec: &'a MatMulSpec,
    pub a: Bind,
    pub b: Bind,
    pub batch: &'a Shape,
    pub strides: [&'a [usize]; 2],
    /// The output's shape and binding.
    pub out: (&'a Shape, Bind),
    /// The bias's shape and binding, if any.
    pub bias: Option<(&'a Shape, Bind)>,
}

/// The launches of a split-k product: partial products, their sum, then bias and
/// activation.
pub(super) fn launches(s: SplitProduct, limit: u64) -> Vec<Launch> {
    let SplitProduct {
        p, config, spec, ..
    } = s;
    let kc = chunk_len(&config, p.k, limit);
    let chunks = p.k.div_ceil(kc);
    let partial = Problem {
        batches: p.batches * chunks,
        ..p
    };
    let plain = MatMulSpec {
        bias: false,
        activation: Activation::Identity,
        ..*spec
    };
    let plan = Plan::Tiled(config);
    let mut words = info(
        &partial,
        plan.tiles(&partial),
        s.batch,
        [s.strides[0], s.strides[1], &[]],
        [0, 0],
    );
    let n = words.len();
    words[n - 2] = kc as u32;
    words[n - 1] = chunks as u32;
    // info[3] counts batch entries times chunks; the kernel divides the chunk back out.
    let outputs = p.batches * p.m * p.n;
    let bytes = |count: usize| (count * p.dtype.size_bytes()) as u64;
    let scratch = vec![
        (0, bytes(outputs * chunks)),
        (1, bytes(outputs)),
        (2, bytes(outputs)),
    ];
    let (out_shape, out) = s.out;
    let mut steps = vec![Launch {
        kernel: kernel(&partial.variant(&config, &plain), &config),
        binds: vec![s.a, s.b, Bind::Scratch(0)],
        scratch: vec![],
        info: words,
        workgroups: Workgroups::Linear(plan.workgroups(&partial)),
    }];
    let act = match spec.activation {
        Activation::Identity => None,
        Activation::Relu => Some(UnaryOp::Relu),
        Activation::Sigmoid => Some(UnaryOp::Sigmoid),
        Activation::Tanh => Some(UnaryOp::Tanh),
    };
    // Each later pass writes the output if it is the last, else the next scratch slot.
    let (sum_to, bias_to) = match (s.bias.is_some(), act.is_some()) {
        (false, false) => (out, out),
        (true, false) => (Bind::Scratch(1), out),
        (false, true) => (Bind::Scratch(1), Bind::Scratch(1)),
        (true, true) => (Bind::Scratch(1), Bind::Scratch(2)),
    };
    steps.push(gradflux_core::ops::reduce::wgsl::sum_launch(
        Bind::Scratch(0),
        sum_to,
        p.dtype,
        (p.batches, chunks, p.m * p.n),
    ));
    if let Some((bias_shape, bias)) = s.bias {
        steps.push(binary_expr_launch(
            "linear bias",
            p.dtype,
            binary_expr_add(p.dtype),
            [sum_to, bias, bias_to],
            out_shape,
            [out_shape, bias_shape],
        ));
    }
    if let Some(op) = act {
        steps.push(unary_launch(
            op.name(),
            p.dtype,
            unary_expr(op, p.dtype),
            [bias_to, out],
            out_shape.numel(),
        ));
    }
    steps
        .into_iter()
        .map(|l| l.with_scratch(&scratch))
        .collect()
}

fn binary_expr_add(dtype: DType) -> &'static str {
    gradflux_core::ops::elementwise::wgsl::binary_expr(gradflux_core::BinaryOp::Add, dtype)
}
