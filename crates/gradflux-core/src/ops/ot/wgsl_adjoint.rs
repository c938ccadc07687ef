//! Launch planning for `SinkhornAdjoint`, the linear solve of implicit Sinkhorn
//! gradients (the method is described in `cpu_adjoint.rs`, which
//! this follows step for step). Every conjugate-gradient step is three fixed dispatches
//! (`Π_c p`, `Π_rᵀ` of that, then `cg_step`); a problem that has converged skips its
//! steps on the device (the products return at once, `cg_step` changes nothing), so the
//! solve is a loop plan with no stop check and no readback, and a converged solve costs
//! little more than its dispatches.

use crate::{DType, Error, Result, SinkhornSpec, SoftminAxis, Value};

use crate::kernel::launch::{Bind, Launch, Workgroups};
use crate::kernel::{Gate, LoopPlan, Schedule};
use crate::kernel::shaders::specialise;
use crate::kernel::KernelSource;
use crate::ops::moe::wgsl::f32_only;
use crate::ops::ot::wgsl::{plan_products_launch, point_products_launch};

/// Scratch slots: the potentials `α = log a + f/ε` (n) and `β = log b + g/ε` (m), the
/// column sums `c` and weights `1/c`, two product results, the residual, the direction,
/// and the per-problem scalars.
const ALPHA: usize = 0;
const BETA: usize = 1;
const C: usize = 2;
const W: usize = 3;
const ROWS: usize = 4;
const COLUMNS: usize = 5;
const RESIDUAL: usize = 6;
const DIRECTION: usize = 7;
const SCALARS: usize = 8;
/// The loop gate's flag: non-zero while some problem's solve goes on.
const GATE: usize = 9;

/// Steps between evaluations of the gate: a finished solve runs at most this many steps
/// more, and the gate's two small dispatches are paid once per this many steps.
const GATE_EVERY: usize = 4;

/// Threads of the solve's small kernels.
const WG: usize = 256;

fn kernel(entry: &str, read_only: Vec<bool>) -> KernelSource {
    KernelSource {
        label: format!("sinkhorn_adjoint {entry}"),
        source: specialise(&super::SINKHORN_ADJOINT, DType::F32, DType::F32, None),
        entry_point: entry.into(),
        constants: vec![("WG", WG as f64)],
        read_only,
    }
}

fn bits(v: f64) -> u32 {
    (v as f32).to_bits()
}

/// The problem's sizes, where its cost comes from, and the iteration's soft minima.
struct Problem<'a> {
    spec: &'a SinkhornSpec,
    sources: &'a [Value],
    /// `s` per row, `t` per column (inputs of the op).
    soft: [Bind; 2],
    dtype: DType,
    batch: usize,
    n: usize,
    m: usize,
    d: usize,
    /// The adapter's loop limit (point products split their walk to stay within it).
    loop_limit: Option<u64>,
}

impl Problem<'_> {
    fn words(&self, len: usize) -> u64 {
        ((self.batch * len).max(1) * 4) as u64
    }

    /// Every scratch buffer with its size (launches name the ones they bind; declaring all
    /// of them on each keeps the sizes in one place).
    fn scratch(&self) -> Vec<(usize, u64)> {
        let (n, m) = (self.n, self.m);
        vec![
            (ALPHA, self.words(n)),
            (BETA, self.words(m)),
            (C, self.words(m)),
            (W, self.words(m)),
            (ROWS, self.words(n)),
            (COLUMNS, self.words(m)),
            (RESIDUAL, self.words(m)),
            (DIRECTION, self.words(m)),
            (SCALARS, self.words(4)),
            (GATE, 16),
        ]
    }

    fn with_scratch(&self, mut l: Launch) -> Launch {
        l.scratch.extend(self.scratch());
        l
    }

    /// `out = Π_c u` (`rows`: `Σ_j exp(α_i + t_j/ε − C_ij/ε) u_j`) or `out = Π_rᵀ u`
    /// (`Σ_i exp(β_j + s_i/ε − C_ij/ε) u_i`). Inside the iterations (`in_loop`) a problem
    /// whose solve has finished skips the product.
    fn product(&self, rows: bool, u: Bind, out: Bind, in_loop: bool) -> Result<Vec<Launch>> {
        let skip = in_loop.then_some(Bind::Scratch(SCALARS));
        let [s, t] = self.soft;
        let (out_pot, red_pot) = if rows {
            (Bind::Scratch(ALPHA), t)
        } else {
            (Bind::Scratch(BETA), s)
        };
        let (batch, n, m, d) = (self.batch, self.n, self.m, self.d);
        let eps = self.spec.eps;
        let launches = match self.spec.points {
            None => plan_products_launch(
                [self.sources[0].into(), out_pot, red_pot, u, out],
                skip,
                self.dtype,
                (batch, n, m),
                eps,
                if rows {
                    SoftminAxis::PerRow
                } else {
                    SoftminAxis::PerColumn
                },
                self.loop_limit,
            )?,
            Some(cost) => {
                let (x, y): (Bind, Bind) = (self.sources[0].into(), self.sources[1].into());
                let (p, q, sizes) = if rows {
                    (x, y, (batch, n, m, d))
                } else {
                    (y, x, (batch, m, n, d))
                };
                point_products_launch(
                    [p, q, out_pot, red_pot, u, out],
                    skip,
                    self.dtype,
                    sizes,
                    eps,
                    cost,
                    self.loop_limit,
                )?
            }
        };
        Ok(launches.into_iter().map(|l| self.with_scratch(l)).collect())
    }

    /// A one-thread-per-element kernel over `len` values per problem; its last `outputs`
    /// bindings are written.
    fn elementwise(
        &self,
        (entry, outputs): (&str, usize),
        binds: Vec<Bind>,
        info: Vec<u32>,
        len: usize,
    ) -> Launch {
        let mut read_only = vec![true; binds.len() + 1];
        read_only[binds.len() - outputs..binds.len()].fill(false);
        self.with_scratch(Launch {
            kernel: kernel(entry, read_only),
            binds,
            scratch: vec![],
            info,
            workgroups: Workgroups::Linear((self.batch * len).div_ceil(WG) as u64),
        })
    }

    /// A one-workgroup-per-problem kernel whose first three bindings are read.
    fn per_problem(&self, entry: &str, binds: Vec<Bind>, info: Vec<u32>) -> Launch {
        let mut read_only = vec![false; binds.len() + 1];
        read_only[..3].fill(true);
        read_only[binds.len()] = true;
        self.with_scratch(Launch {
            kernel: kernel(entry, read_only),
            binds,
            scratch: vec![],
            info,
            workgroups: Workgroups::Fixed([self.batch as u32, 1, 1]),
        })
    }
}

/// The solve of the `SinkhornAdjoint` node `id` with inputs (cost or points, a, b, f, g,
/// s, t, vf, vg) as a loop: the start (potentials, column weights, the first residual),
/// one conjugate-gradient step per iteration, and the finish (`wf` from `wg`).
pub fn adjoint_loop(
    spec: &SinkhornSpec,
    inputs: &[Value],
    id: usize,
    dtype: DType,
    (batch, n, m, d): (usize, usize, usize, usize),
    loop_limit: Option<u64>,
) -> Result<LoopPlan> {
    f32_only(
        "sinkhorn_adjoint",
        dtype,
        "the cost, weights and potentials",
    )?;
    if batch > u16::MAX as usize {
        return Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!(
                "implicit Sinkhorn gradients of {batch} problems at once (the solve runs a \
                 workgroup per problem, at most {})",
                u16::MAX
            ),
        });
    }
    let sources = if spec.points.is_some() { 2 } else { 1 };
    let [a, b, f, g, s, t, vf, vg] = std::array::from_fn(|k| Bind::Value(inputs[sources + k]));
    let [wf, wg] = std::array::from_fn(|slot| Bind::Value(Value { node: id, slot }));
    let p = Problem {
        spec,
        sources: &inputs[..sources],
        soft: [s, t],
        dtype,
        batch,
        n,
        m,
        d,
        loop_limit,
    };
    let solve = spec.implicit.unwrap_or_default();
    let eps = spec.eps;
    let (lambda_a, lambda_b) = (
        SinkhornSpec::damping(spec.rho_a, eps),
        SinkhornSpec::damping(spec.rho_b, eps),
    );
    let balanced = u32::from(spec.rho_a.is_none() && spec.rho_b.is_none());
    let scratch = Bind::Scratch;
    let per_problem_info = vec![
        batch as u32,
        m as u32,
        bits(lambda_a * lambda_b),
        balanced,
        bits(solve.tolerance * solve.tolerance),
    ];

    let mut launches = vec![
        p.elementwise(
            ("potentials", 1),
            vec![a, f, scratch(ALPHA)],
            vec![(batch * n) as u32, bits(eps)],
            n,
        ),
        p.elementwise(
            ("potentials", 1),
            vec![b, g, scratch(BETA)],
            vec![(batch * m) as u32, bits(eps)],
            m,
        ),
        p.elementwise(
            ("column_weights", 2),
            vec![scratch(BETA), t, scratch(C), scratch(W)],
            vec![(batch * m) as u32, bits(eps)],
            m,
        ),
    ];
    launches.extend(p.product(false, vf, scratch(COLUMNS), false)?);
    launches.push(p.elementwise(
        ("start", 2),
        vec![vg, scratch(COLUMNS), scratch(W), wg, scratch(RESIDUAL)],
        vec![(batch * m) as u32, bits(lambda_a)],
        m,
    ));
    launches.extend(p.product(true, wg, scratch(ROWS), false)?);
    launches.extend(p.product(false, scratch(ROWS), scratch(COLUMNS), false)?);
    launches.push(p.per_problem(
        "residual",
        vec![
            scratch(COLUMNS),
            scratch(C),
            scratch(W),
            scratch(RESIDUAL),
            scratch(DIRECTION),
            scratch(SCALARS),
        ],
        per_problem_info[..4].to_vec(),
    ));
    let mut step = p.product(true, scratch(DIRECTION), scratch(ROWS), true)?;
    step.extend(p.product(false, scratch(ROWS), scratch(COLUMNS), true)?);
    step.push(p.per_problem(
        "cg_step",
        vec![
            scratch(COLUMNS),
            scratch(C),
            scratch(W),
            wg,
            scratch(RESIDUAL),
            scratch(DIRECTION),
            scratch(SCALARS),
        ],
        per_problem_info,
    ));
    let mut finish = p.product(true, wg, scratch(ROWS), false)?;
    finish.push(p.elementwise(
        ("finish", 1),
        vec![vf, scratch(ROWS), wf],
        vec![(batch * n) as u32, bits(lambda_b)],
        n,
    ));
    let open = p.with_scratch(Launch {
        kernel: kernel("gate", vec![true, false, true]),
        binds: vec![scratch(SCALARS), scratch(GATE)],
        scratch: vec![],
        info: vec![batch as u32],
        workgroups: Workgroups::Fixed([1, 1, 1]),
    });
    Ok(LoopPlan {
        setup: launches,
        bodies: vec![step],
        schedule: Schedule::Settling(solve.max_iterations),
        check: None,
        // A finished problem's steps change nothing (its products and CG step skip it), so
        // once every problem is done the remaining steps need not dispatch at all.
        gate: Some(Gate {
            launches: vec![open],
            flag: GATE,
            every: GATE_EVERY,
        }),
        finish,
        steps_out: None,
    })
}
