//! Launch planning for the soft minimum of optimal transport: over a dense cost
//! (`shaders/ot/softmin.wgsl`: a workgroup per row, or per tile of adjacent columns read in
//! place), and over costs computed on the fly between points
//! (`shaders/ot/point_softmin.wgsl`, with its gradient in `point_softmin_grad.wgsl`).

use crate::{DType, PointCost, Result, SoftminAxis, Value};

use crate::kernel::launch::{u32s, Bind, Launch, Workgroups};
use crate::kernel::loop_trips::span_within;
use crate::kernel::shaders::{self, specialise};
use crate::kernel::KernelSource;
use crate::ops::moe::wgsl::f32_only;
use crate::ops::reduce::wgsl::sum_spans;

/// Threads per workgroup of the dense kernels.
const WG: usize = 256;
/// Adjacent columns per workgroup of the per-column kernel (`WG / COLS` row slices).
const COLS: usize = 64;
/// Output points per workgroup of the point kernels (one thread each).
const POINT_WG: usize = 64;
/// Coordinates of the gradient one workgroup of `point_softmin_grad` writes (its `GD`).
const GRAD_COORDS: usize = 16;

/// The potential a soft minimum reads: `h`, or `h + h2 · scale` (a Sinkhorn step's
/// log-weights plus its potential over ε, fused into the read).
#[derive(Copy, Clone, Debug)]
pub struct Potential {
    /// `h` itself.
    pub h: Bind,
    /// `(h2, scale)`: `h2 · scale` is added to `h` as it is read.
    pub scaled: Option<(Bind, f64)>,
}

impl Potential {
    /// `h` alone, nothing added.
    pub fn plain(h: Value) -> Potential {
        Potential {
            h: h.into(),
            scaled: None,
        }
    }

    /// `[h2, use h2, scale bits]` for the `info` arrays.
    fn words(&self) -> (Bind, [u32; 2]) {
        match self.scaled {
            Some((h2, scale)) => (h2, [1, (scale as f32).to_bits()]),
            None => (self.h, [0, 0]),
        }
    }
}

/// How a soft minimum is taken and scaled: `lambda · (−eps · log Σ ...)`.
#[derive(Copy, Clone, Debug)]
pub struct Softmin {
    /// The regularisation ε of this soft minimum.
    pub eps: f64,
    /// The damping `ρ / (ρ + ε)` of a KL-penalised marginal; 1 for an exact one or
    /// an undamped minimum.
    pub lambda: f64,
}

fn source(
    file: &shaders::ShaderFile,
    label: String,
    entry: &str,
    read_only: Vec<bool>,
    constants: Vec<(&'static str, f64)>,
) -> KernelSource {
    KernelSource {
        label,
        source: specialise(file, DType::F32, DType::F32, None),
        entry_point: entry.into(),
        constants,
        read_only,
    }
}

/// The entry point, workgroup count and column tiles of a dense kernel that reduces each
/// row of `[batch, n, m]` with a workgroup (`per_row`) or tiles of `COLS` adjacent columns
/// read in place (`per_column`).
fn dense_grid(
    axis: SoftminAxis,
    (batch, n, m): (usize, usize, usize),
) -> (&'static str, usize, usize) {
    let tiles = m.div_ceil(COLS);
    match axis {
        SoftminAxis::PerRow => ("per_row", batch * n, tiles),
        SoftminAxis::PerColumn => ("per_column", batch * tiles, tiles),
    }
}

/// The dense launch writing `softmin` of `cost [batch, n, m]` against `pot` into `out`.
pub fn softmin_launch(
    [cost, out]: [Bind; 2],
    pot: Potential,
    dtype: DType,
    (batch, n, m): (usize, usize, usize),
    how: Softmin,
    axis: SoftminAxis,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("softmin", dtype, "the cost and h")?;
    let (entry_point, workgroups, tiles) = dense_grid(axis, (batch, n, m));
    let (span, spans) = dense_spans(axis, n, loop_limit);
    let (h2, fused) = pot.words();
    let mut info = u32s([batch, n, m]);
    info.extend([(how.eps as f32).to_bits(), tiles as u32]);
    info.extend(fused);
    info.push((how.lambda as f32).to_bits());
    info.extend(u32s([span, spans]));
    let parts = if spans > 1 {
        batch * m * spans * 3 * 4
    } else {
        16
    };
    let pass = |entry: &str, workgroups: usize| Launch {
        kernel: source(
            &super::SOFTMIN,
            format!("softmin {entry}"),
            entry,
            vec![true, true, true, false, false, true],
            vec![("WG", WG as f64), ("COLS", COLS as f64)],
        ),
        binds: vec![cost, pot.h, h2, out, Bind::Scratch(SOFTMIN_PARTS)],
        scratch: vec![(SOFTMIN_PARTS, parts as u64)],
        info: info.clone(),
        workgroups: Workgroups::Linear(workgroups as u64),
    };
    let main = pass(entry_point, workgroups * spans);
    if spans == 1 {
        return Ok(vec![main]);
    }
    Ok(vec![
        main,
        pass("per_column_merge", (batch * m).div_ceil(WG)),
    ])
}

/// Rows per span and spans of a dense pass over `n` rows: a column pass walks its rows in
/// spans where the budget asks (see [`column_span`]); a row pass reduces along its row.
fn dense_spans(axis: SoftminAxis, n: usize, loop_limit: Option<u64>) -> (usize, usize) {
    let span = match axis {
        SoftminAxis::PerColumn => column_span(n, loop_limit),
        SoftminAxis::PerRow => n.max(1),
    };
    (span, n.div_ceil(span).max(1))
}

/// Scratch slot of a split column soft minimum's per-span pairs.
const SOFTMIN_PARTS: usize = 10;

/// Rows one workgroup of the column soft minimum walks (each of its `WG / COLS` row slices
/// a share): all `n`, unless the adapter's `loop_limit` would cut that short.
pub fn column_span(n: usize, loop_limit: Option<u64>) -> usize {
    let slices = WG / COLS;
    span_within(n, slices, loop_limit, |rows| {
        (rows.div_ceil(slices) + 8) as u64
    })
}

/// `Softmin`'s launches.
pub fn softmin_op_launches(
    [cost, h, out]: [Value; 3],
    dtype: DType,
    dims: (usize, usize, usize),
    eps: f64,
    axis: SoftminAxis,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    let how = Softmin { eps, lambda: 1.0 };
    softmin_launch(
        [cost.into(), out.into()],
        Potential::plain(h),
        dtype,
        dims,
        how,
        axis,
        loop_limit,
    )
}

/// The launch writing the point soft minimum of each `x_i` against every `y_j` (roles of
/// `x [batch, n, d]` and `y [batch, m, d]`; swap them for the column update).
#[allow(clippy::too_many_arguments)]
pub fn point_softmin_launch(
    [x, y, out]: [Bind; 3],
    pot: Potential,
    dtype: DType,
    (batch, n, m, d): (usize, usize, usize, usize),
    how: Softmin,
    cost: PointCost,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("point_softmin", dtype, "the points and h")?;
    let tiles = n.div_ceil(POINT_WG);
    let span = point_span(m, d, loop_limit);
    let spans = m.div_ceil(span).max(1);
    let (h2, fused) = pot.words();
    let mut info = u32s([batch, n, m, d]);
    info.push((how.eps as f32).to_bits());
    info.extend(fused);
    info.push((how.lambda as f32).to_bits());
    info.extend(u32s([cost_code(cost), tiles, span, spans]));
    let parts = (batch * n * spans * 3 * 4) as u64;
    let pass = |entry: &str, workgroups| Launch {
        kernel: source(
            &super::POINT_SOFTMIN,
            format!("point_softmin {entry}"),
            entry,
            vec![true, true, true, true, false, false, true],
            vec![("WG", POINT_WG as f64)],
        ),
        binds: vec![x, y, pot.h, h2, out, Bind::Scratch(POINT_PARTS)],
        scratch: vec![(POINT_PARTS, if spans > 1 { parts } else { 16 })],
        info: info.clone(),
        workgroups,
    };
    let main = pass("main", Workgroups::Linear((batch * tiles * spans) as u64));
    if spans == 1 {
        return Ok(vec![main]);
    }
    // One thread per x point, in workgroups of POINT_WG.
    let merge = Workgroups::Linear((batch * n).div_ceil(POINT_WG) as u64);
    Ok(vec![main, pass("merge", merge)])
}

/// Scratch slot of the spans' running pairs of a split point soft minimum.
const POINT_PARTS: usize = 13;

/// Points of the reduced cloud one workgroup of `point_softmin.wgsl` walks: all `m`,
/// unless the adapter's `loop_limit` would cut that walk short, then a multiple of the
/// tile that keeps an invocation within half the limit.
pub fn point_span(m: usize, d: usize, loop_limit: Option<u64>) -> usize {
    span_within(m, POINT_TILE, loop_limit, |m| {
        crate::kernel::loop_trips_families::point_softmin(m as u64, d as u64)
    })
}

/// Points per tile of the point kernels (their `PT`).
const POINT_TILE: usize = 64;

fn cost_code(cost: PointCost) -> usize {
    match cost {
        PointCost::SqEuclidean => 0,
        PointCost::Euclidean => 1,
    }
}

/// One pass of `point_softmin_grad.wgsl`: for each point `p_o` of the output side, the
/// weights `w_or = exp(alpha_o · alpha_scale + beta_r · beta_scale − cost(p_o, q_r)/eps) ·
/// u` summed against the reduced side `q`.
struct PointPass {
    /// Output side, reduced side, their potentials, the cotangent.
    p: Bind,
    q: Bind,
    alpha: Bind,
    beta: Bind,
    u: Bind,
    scales: (f32, f32),
    /// `u` indexes the output points (else the reduced ones).
    u_per_output: bool,
    /// `Some(buffer)`: write the cost gradient there.
    grad: Option<Bind>,
    /// `Some((buffer, k))`: write `k · Σ_r w_or` there.
    scalar: Option<(Bind, f32)>,
    /// Points on the output side and on the reduced side.
    sizes: (usize, usize),
    /// `Some(scalars)`: skip the problems whose solve has finished (see `adjoint.rs`).
    skip: Option<Bind>,
}

/// Scratch slot a pass binds where it writes nothing (the grad or the scalar it skips).
const UNUSED: usize = 15;
/// Scratch slot a launch binds where it reads no skip flags.
const NO_SKIP: usize = 14;

/// The skip binding, `[use skip]` for `info`, and the scratch a missing one needs.
fn skip_binding(skip: Option<Bind>) -> (Bind, u32, Vec<(usize, u64)>) {
    match skip {
        Some(b) => (b, 1, vec![]),
        None => (Bind::Scratch(NO_SKIP), 0, vec![(NO_SKIP, 16)]),
    }
}

fn point_pass(
    pass: PointPass,
    (batch, d): (usize, usize),
    eps: f64,
    cost: PointCost,
    loop_limit: Option<u64>,
) -> Vec<Launch> {
    let (len, other) = pass.sizes;
    let tiles = len.div_ceil(POINT_WG);
    // The gradient needs a dispatch row per block of coordinates; a product needs one.
    let blocks = if pass.grad.is_some() {
        d.div_ceil(GRAD_COORDS).max(1)
    } else {
        1
    };
    let span = grad_span(other, d, pass.grad.is_some(), loop_limit);
    let spans = other.div_ceil(span).max(1);
    let mut info = u32s([batch, len, other, d]);
    info.extend([
        (eps as f32).to_bits(),
        pass.scales.0.to_bits(),
        pass.scales.1.to_bits(),
        u32::from(pass.u_per_output),
    ]);
    info.extend(u32s([cost_code(cost), tiles, blocks]));
    info.extend([
        u32::from(pass.scalar.is_some()),
        u32::from(pass.grad.is_some()),
        pass.scalar.map_or(0.0, |(_, k)| k).to_bits(),
    ]);
    // Split passes recompute finished problems: their spans' sums are summed afresh.
    let skip = if spans > 1 { None } else { pass.skip };
    let (skip, use_skip, mut scratch) = skip_binding(skip);
    info.push(use_skip);
    info.extend(u32s([span, spans]));
    let mut unused = || {
        scratch.push((UNUSED, 4));
        Bind::Scratch(UNUSED)
    };
    let grad_out = pass.grad.unwrap_or_else(&mut unused);
    let scalar_out = pass.scalar.map(|(b, _)| b).unwrap_or_else(&mut unused);
    // Split: each span writes its own slice of a scratch buffer, summed below.
    let points = batch * len;
    let (grad, scalar) = if spans > 1 {
        scratch.push((GRAD_PARTS, (spans * points * d * 4) as u64));
        scratch.push((SCALAR_PARTS, (spans * points * 4) as u64));
        (Bind::Scratch(GRAD_PARTS), Bind::Scratch(SCALAR_PARTS))
    } else {
        (grad_out, scalar_out)
    };
    scratch.dedup();
    let mut steps = vec![Launch {
        kernel: source(
            &super::POINT_SOFTMIN_GRAD,
            "point_softmin_grad".into(),
            "main",
            vec![true, true, true, true, true, false, false, true, true],
            vec![("WG", POINT_WG as f64)],
        ),
        binds: vec![
            pass.p, pass.q, pass.alpha, pass.beta, pass.u, grad, scalar, skip,
        ],
        scratch: scratch.clone(),
        info,
        workgroups: Workgroups::Linear((batch * tiles * blocks * spans) as u64),
    }];
    if spans > 1 {
        let sum = |parts: Bind, out: Bind, count: usize| {
            sum_spans((parts, out), DType::F32, (spans, count), &scratch)
        };
        if pass.grad.is_some() {
            steps.push(sum(grad, grad_out, points * d));
        }
        if pass.scalar.is_some() {
            steps.push(sum(scalar, scalar_out, points));
        }
    }
    steps
}

/// Scratch slots of a split gradient pass's per-span sums.
const GRAD_PARTS: usize = 12;
const SCALAR_PARTS: usize = 11;

/// Points of the reduced side one invocation of `point_softmin_grad.wgsl` walks: all
/// `other`, unless the adapter's `loop_limit` would cut that short (see [`point_span`]).
pub fn grad_span(other: usize, d: usize, grad: bool, loop_limit: Option<u64>) -> usize {
    span_within(other, POINT_TILE, loop_limit, |r| {
        crate::kernel::loop_trips_families::point_grad(r as u64, d as u64, grad)
    })
}

/// The two launches of `PointSoftminBackward`: one thread per `x_i` writes `dx`, then
/// one per `y_j` writes `dy` and `dh`.
pub fn point_softmin_backward_launches(
    [x, y, h, s, gy]: [Value; 5],
    [dx, dy, dh]: [Value; 3],
    dtype: DType,
    (batch, n, m, d): (usize, usize, usize, usize),
    eps: f64,
    cost: PointCost,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("point_softmin backward", dtype, "the points")?;
    let inv_eps = (1.0 / eps) as f32;
    let mut steps = point_pass(
        PointPass {
            p: x.into(),
            q: y.into(),
            alpha: s.into(),
            beta: h.into(),
            u: gy.into(),
            scales: (inv_eps, 1.0),
            u_per_output: true,
            grad: Some(dx.into()),
            scalar: None,
            sizes: (n, m),
            skip: None,
        },
        (batch, d),
        eps,
        cost,
        loop_limit,
    );
    steps.extend(point_pass(
        PointPass {
            p: y.into(),
            q: x.into(),
            alpha: h.into(),
            beta: s.into(),
            u: gy.into(),
            scales: (1.0, inv_eps),
            u_per_output: false,
            grad: Some(dy.into()),
            scalar: Some((dh.into(), -eps as f32)),
            sizes: (m, n),
            skip: None,
        },
        (batch, d),
        eps,
        cost,
        loop_limit,
    ));
    Ok(steps)
}

/// The launches writing `out_o = Σ_r exp(out_pot_o + (red_pot_r − cost) / eps) · u_r` over
/// points: `p [batch, len, d]` the output side, `q [batch, other, d]` the reduced one (a
/// normalised plan times a vector, online); in spans of `q` where `loop_limit` asks.
/// `skip`: see `plan_matvec.wgsl` (a split product recomputes finished problems).
pub fn point_products_launch(
    [p, q, out_pot, red_pot, u, out]: [Bind; 6],
    skip: Option<Bind>,
    dtype: DType,
    (batch, len, other, d): (usize, usize, usize, usize),
    eps: f64,
    cost: PointCost,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("sinkhorn_adjoint", dtype, "the points")?;
    Ok(point_pass(
        PointPass {
            p,
            q,
            alpha: out_pot,
            beta: red_pot,
            u,
            scales: (1.0, (1.0 / eps) as f32),
            u_per_output: false,
            grad: None,
            scalar: Some((out, 1.0)),
            sizes: (len, other),
            skip,
        },
        (batch, d),
        eps,
        cost,
        loop_limit,
    ))
}

/// The dense launch writing `out_o = Σ_r exp(out_pot_o + (red_pot_r − cost) / eps) · u_r`
/// per row of `cost [batch, n, m]` (`axis`), or per column; `skip` names the flags of
/// finished problems (see `plan_matvec.wgsl`).
pub fn plan_products_launch(
    [cost, out_pot, red_pot, u, out]: [Bind; 5],
    skip: Option<Bind>,
    dtype: DType,
    (batch, n, m): (usize, usize, usize),
    eps: f64,
    axis: SoftminAxis,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    f32_only("sinkhorn_adjoint", dtype, "the cost")?;
    let (entry_point, workgroups, tiles) = dense_grid(axis, (batch, n, m));
    let (span, spans) = dense_spans(axis, n, loop_limit);
    // A split product recomputes finished problems: their spans' sums are summed afresh.
    let (skip, use_skip, mut scratch) = skip_binding(if spans > 1 { None } else { skip });
    let mut info = u32s([batch, n, m]);
    info.extend([((1.0 / eps) as f32).to_bits(), tiles as u32, use_skip]);
    info.extend(u32s([span, spans]));
    let sums = if spans > 1 {
        scratch.push((PLAN_PARTS, (spans * batch * m * 4) as u64));
        Bind::Scratch(PLAN_PARTS)
    } else {
        out
    };
    let mut steps = vec![Launch {
        kernel: source(
            &super::PLAN_MATVEC,
            format!("plan_matvec {axis:?}"),
            entry_point,
            vec![true, true, true, true, false, true, true],
            vec![("WG", WG as f64), ("COLS", COLS as f64)],
        ),
        binds: vec![cost, out_pot, red_pot, u, sums, skip],
        scratch: scratch.clone(),
        info,
        workgroups: Workgroups::Linear((workgroups * spans) as u64),
    }];
    if spans > 1 {
        steps.push(sum_spans(
            (sums, out),
            DType::F32,
            (spans, batch * m),
            &scratch,
        ));
    }
    Ok(steps)
}

/// Scratch slot of a split plan product's per-span sums.
const PLAN_PARTS: usize = 9;
