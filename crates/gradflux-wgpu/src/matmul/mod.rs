//! The matmul family: one blocked kernel, generated per variant ([`codegen`]), launched
//! with a tile configuration ([`config`]) chosen per adapter and shape class by the tuner
//! ([`tune`]); a matrix-vector kernel ([`gemv`]) for single rows; and a cooperative-matrix
//! kernel ([`coop`]) the tuner may choose where the adapter has matrix units.

pub mod codegen;
pub mod config;
pub mod coop;
pub mod gemv;
mod split_k;
pub mod tune;
mod verify;

use std::fmt;

use gradflux_core::{DType, MatMulSpec, Result, Shape, TensorType, Value};

use crate::launch::{padded, u32s, Launch, Workgroups, MAX_RANK};
use crate::pipelines::KernelSource;
pub use codegen::Variant;
pub use config::{ShapeClass, TileConfig};
pub use coop::{CoopCaps, CoopTile};
use gradflux_core::kernel::loop_trips::with_margin;
pub use split_k::tiled_loop_trips;

/// One matmul as the kernel sees it, after the launcher's rewrites (rank-2 views, the
/// `n == 1` swap): what a configuration is chosen for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// Storage type of the operands and the result.
    pub dtype: DType,
    /// Rows of the result.
    pub m: usize,
    /// Columns of the result.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// Products in the batch (broadcast batch dimensions multiplied out).
    pub batches: usize,
    /// `a` is read transposed.
    pub transpose_a: bool,
    /// `b` is read transposed.
    pub transpose_b: bool,
}

impl Problem {
    /// Contiguous dimension of each operand's storage, and of the result.
    fn vec_flags(&self) -> (bool, bool, bool) {
        let a = if self.transpose_a { self.m } else { self.k };
        let b = if self.transpose_b { self.k } else { self.n };
        (
            a.is_multiple_of(4),
            b.is_multiple_of(4),
            self.n.is_multiple_of(4),
        )
    }

    /// The kernel variant for `config`, with bounds checks only where the blocks do not
    /// divide the problem.
    pub fn variant(&self, config: &TileConfig, spec: &MatMulSpec) -> Variant {
        let exact = self.m.is_multiple_of(config.bm() as usize)
            && self.n.is_multiple_of(config.bn() as usize)
            && self.k.is_multiple_of(config.bk as usize);
        self.variant_with(spec, (config.tm, config.tn), !exact)
    }

    /// The kernel variant with an explicit register block and bounds-check choice.
    pub fn variant_with(&self, spec: &MatMulSpec, (tm, tn): (u32, u32), checked: bool) -> Variant {
        let (vec_a, vec_b, vec_c) = self.vec_flags();
        Variant {
            dtype: self.dtype,
            transpose_a: self.transpose_a,
            transpose_b: self.transpose_b,
            vec_a,
            vec_b,
            vec_c,
            checked,
            bias: spec.bias,
            activation: spec.activation,
            tm,
            tn,
        }
    }

    /// The bucket of sizes whose tuned choice this product uses.
    pub fn class(&self) -> ShapeClass {
        ShapeClass::of(self.m, self.n, self.k)
    }

    /// Multiply-adds times two.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64 * self.batches as f64
    }
}

/// How one matmul runs: the portable blocked kernel with a tile configuration, or the
/// cooperative-matrix kernel with a tiling.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Plan {
    /// The portable register-blocked kernel.
    Tiled(TileConfig),
    /// The cooperative-matrix kernel.
    Coop(CoopTile),
}

impl Plan {
    /// Output rows and columns per workgroup.
    fn block(&self) -> (u32, u32) {
        match self {
            Plan::Tiled(c) => (c.bm(), c.bn()),
            Plan::Coop(t) => (t.bm(), t.bn()),
        }
    }

    /// Output blocks along m and n.
    pub fn tiles(&self, p: &Problem) -> [usize; 2] {
        let (bm, bn) = self.block();
        [p.m.div_ceil(bm as usize), p.n.div_ceil(bn as usize)]
    }

    /// Workgroups a launch of `p` needs.
    pub fn workgroups(&self, p: &Problem) -> u64 {
        let [tm, tn] = self.tiles(p);
        (p.batches * tm * tn) as u64
    }

    /// The kernel source this plan runs for `p`.
    pub fn kernel(&self, p: &Problem, spec: &MatMulSpec) -> KernelSource {
        match self {
            Plan::Tiled(c) => kernel(&p.variant(c, spec), c),
            Plan::Coop(t) => t.kernel(&t.variant(p, spec)),
        }
    }

    /// Whether the adapter's workgroup limits allow this plan.
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        match self {
            Plan::Tiled(c) => c.fits(limits),
            Plan::Coop(t) => t.fits(limits),
        }
    }

    /// Parses [`Display`](fmt::Display)'s form (either kind's).
    pub fn parse(s: &str) -> Option<Self> {
        TileConfig::parse(s)
            .map(Plan::Tiled)
            .or_else(|| CoopTile::parse(s).map(Plan::Coop))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Tiled(c) => c.fmt(f),
            Plan::Coop(t) => t.fmt(f),
        }
    }
}

/// Picks how a problem runs (the tuner, or the fixed default).
pub type Chooser<'a> = dyn Fn(&Problem) -> Result<Plan> + 'a;

/// The kernel source of `variant` with `config`'s override constants.
pub fn kernel(variant: &Variant, config: &TileConfig) -> KernelSource {
    KernelSource {
        label: format!("{} {config}", variant.label()),
        source: codegen::source(variant),
        entry_point: "main".into(),
        constants: config.constants(),
        read_only: variant.read_only(),
    }
}

/// The `info` words of a launch: sizes, batch shape and the batch strides (in elements) of
/// `a`, `b` and the bias, then the bias's row and column strides.
pub fn info(
    p: &Problem,
    [tiles_m, tiles_n]: [usize; 2],
    batch: &Shape,
    strides: [&[usize]; 3],
    bias_rc: [usize; 2],
) -> Vec<u32> {
    let mut info = u32s([p.m, p.n, p.k, p.batches, tiles_m, tiles_n, batch.rank(), 0]);
    info.extend(padded(batch.dims()));
    for s in strides {
        info.extend(padded(s));
    }
    info.extend([bias_rc[0] as u32, bias_rc[1] as u32]);
    // Split-k: chunks of k and their count (one chunk of all of k when not split).
    info.extend([p.k as u32, 1]);
    debug_assert_eq!(info.len(), 8 + 4 * MAX_RANK + 4);
    info
}

/// Values and types of one matmul node's operands.
pub struct Operands<'a> {
    /// The left operand's value and type.
    pub a: (Value, &'a TensorType),
    /// The right operand's value and type.
    pub b: (Value, &'a TensorType),
    /// The bias, when the product adds one.
    pub bias: Option<(Value, &'a TensorType)>,
    /// Where the result goes, and its type.
    pub out: (Value, &'a TensorType),
}

/// Refuses a product whose kernel would run more than `limit` loop iterations in one
/// invocation (where it is not split: integer and f16 products, matrix-vector).
fn over_loop_limit(trips: u64, limit: Option<u64>, p: &Problem) -> Result<()> {
    match limit.map(with_margin) {
        Some(limit) if trips > limit => Err(gradflux_core::Error::Limit {
            limit: "loop iterations per shader invocation",
            what: format!(
                "`matmul` of {} [{}, {}] x [{}, {}] (loop iterations in one invocation; f32 \
                 and integer products with more rows split k, f16 ones do not)",
                p.dtype, p.m, p.k, p.k, p.n
            ),
            requested: trips,
            allowed: limit,
        }),
        _ => Ok(()),
    }
}

/// The launches that compute one matmul node: one, or a split-k product where the inner
/// dimension is too long for the adapter's `loop_limit`.
pub fn launch(
    spec: &MatMulSpec,
    ops: Operands,
    choose: &Chooser,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    let (a, b, out) = (ops.a.1, ops.b.1, ops.out.1);
    let r = out.shape.rank();
    let (m, n) = (out.shape.dims()[r - 2], out.shape.dims()[r - 1]);
    let da = a.shape.dims();
    let k = if spec.transpose_a {
        da[da.len() - 2]
    } else {
        da[da.len() - 1]
    };
    let batch = Shape(out.shape.dims()[..r - 2].to_vec());
    let batch_strides = |t: &TensorType, per_matrix: usize| -> Vec<usize> {
        let d = t.shape.dims();
        Shape(d[..d.len() - 2].to_vec())
            .broadcast_strides(&batch)
            .iter()
            .map(|s| s * per_matrix)
            .collect()
    };
    let mut sa = batch_strides(a, m * k);
    let mut sb = batch_strides(b, k * n);
    let (mut s_bias, mut bias_rc) = (vec![0; batch.rank()], [0, 0]);
    if let Some((_, t)) = ops.bias {
        let s = t.shape.broadcast_strides(&out.shape);
        s_bias = s[..r - 2].to_vec();
        bias_rc = [s[r - 2], s[r - 1]];
    }
    let mut p = Problem {
        dtype: out.dtype,
        m,
        n,
        k,
        batches: batch.numel(),
        transpose_a: spec.transpose_a,
        transpose_b: spec.transpose_b,
    };
    let (mut va, mut vb) = (ops.a.0, ops.b.0);
    // A single output column is a single output row of the transposed product, which the
    // row-blocked kernel tiles far better: C = A·B has the same memory as Cᵀ = op(B)ᵀ·op(A)ᵀ
    // when n == 1.
    if n == 1 && m > 1 {
        p = Problem {
            m: n,
            n: m,
            transpose_a: !spec.transpose_b,
            transpose_b: !spec.transpose_a,
            ..p
        };
        std::mem::swap(&mut va, &mut vb);
        std::mem::swap(&mut sa, &mut sb);
        bias_rc.swap(0, 1);
    }
    let mut binds = vec![va.into(), vb.into()];
    if let Some((v, _)) = ops.bias {
        binds.push(v.into());
    }
    binds.push(ops.out.0.into());
    let strides = [&sa[..], &sb[..], &s_bias[..]];
    if let Some(g) = gemv::Gemv::of(&p, spec) {
        over_loop_limit(g.loop_trips(p.k), loop_limit, &p)?;
        let tiles_n = g.tiles_n(p.n);
        return Ok(vec![Launch {
            kernel: g.kernel(),
            binds,
            scratch: vec![],
            info: info(&p, [1, tiles_n], &batch, strides, bias_rc),
            workgroups: Workgroups::Linear((p.batches * tiles_n) as u64),
        }]);
    }
    let plan = choose(&p)?;
    if let (Plan::Tiled(config), Some(limit)) = (plan, loop_limit) {
        let trips = tiled_loop_trips(&config, p.k);
        // f16 partials would round each chunk's sum to f16: refused rather than split.
        if trips > with_margin(limit) && p.dtype == DType::F16 {
            over_loop_limit(trips, loop_limit, &p)?;
        }
        if trips > with_margin(limit) {
            return Ok(split_k::launches(
                split_k::SplitProduct {
                    p,
                    config,
                    spec,
                    a: binds[0],
                    b: binds[1],
                    batch: &batch,
                    strides: [strides[0], strides[1]],
                    out: (&out.shape, ops.out.0.into()),
                    bias: ops.bias.map(|(v, t)| (&t.shape, v.into())),
                },
                limit,
            ));
        }
    }
    Ok(vec![Launch {
        kernel: plan.kernel(&p, spec),
        binds,
        scratch: vec![],
        info: info(&p, plan.tiles(&p), &batch, strides, bias_rc),
        workgroups: Workgroups::Linear(plan.workgroups(&p)),
    }])
}
