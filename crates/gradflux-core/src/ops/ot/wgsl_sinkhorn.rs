//! Launch planning for `Sinkhorn`, the loop that owns its iterations: what runs once
//! before the loop, the two half-steps at each ε of the schedule, and the check that
//! measures the marginal error. The executable decides at run time how many iterations
//! run and when to read the error back (the wgpu backend's loop runner).

use crate::{DType, Result, SinkhornSpec, SoftminAxis, Value};

use crate::kernel::launch::{u32s, Bind, Launch, Workgroups};
use crate::kernel::shaders::specialise;
use crate::kernel::KernelSource;
use crate::ops::moe::wgsl::f32_only;
use crate::ops::ot::wgsl::{point_softmin_launch, softmin_launch, Potential, Softmin};

/// Scratch slots of the loop.
const LOG_A: usize = 0;
const LOG_B: usize = 1;
/// The check's undamped row soft minimum.
const SOFT: usize = 2;
/// What a check reads back: `[largest error, then Σa, Σb, bad per problem]` (the weight
/// check before the loop writes the second part).
pub const STATUS: usize = 3;

/// Bytes of the `STATUS` buffer for `batch` problems.
pub fn status_bytes(batch: usize) -> u64 {
    ((1 + 3 * batch) * 4) as u64
}

/// Threads of the loop's small kernels.
const WG: usize = 256;

/// The launches of one `Sinkhorn` node.
pub struct LoopLaunches {
    /// Once per run before the first iteration: log-weights, the warm start, the weight
    /// check.
    pub prep: Vec<Launch>,
    /// Per ε level of the schedule: the `f` half-step, then the `g` half-step.
    pub levels: Vec<Vec<Launch>>,
    /// Writes each problem's marginal error to the `error` output and the largest to
    /// `STATUS[0]`.
    pub check: Vec<Launch>,
}

fn small_kernel(entry: &str, read_only: Vec<bool>) -> KernelSource {
    KernelSource {
        label: format!("sinkhorn {entry}"),
        source: specialise(&super::SINKHORN, DType::F32, DType::F32, None),
        entry_point: entry.into(),
        constants: vec![("WG", WG as f64)],
        read_only,
    }
}

fn per_element(len: usize) -> Workgroups {
    Workgroups::Linear(len.div_ceil(WG) as u64)
}

/// Plans the loop of the node `id` with inputs `inputs` (cost or points, a, b, f0, g0).
pub fn loop_launches(
    spec: &SinkhornSpec,
    inputs: &[Value],
    id: usize,
    dtype: DType,
    (batch, n, m, d): (usize, usize, usize, usize),
    loop_limit: Option<u64>,
) -> Result<LoopLaunches> {
    f32_only("sinkhorn", dtype, "the cost, weights and potentials")?;
    let sources = if spec.points.is_some() { 2 } else { 1 };
    let [a, b, f0, g0] = std::array::from_fn(|k| inputs[sources + k]);
    let [f, g, error] = std::array::from_fn(|slot| Value { node: id, slot });
    let words = |len: usize| ((batch * len).max(1) * 4) as u64;
    let elementwise = |entry: &str, src: Bind, dst: Bind, len: usize, slot: Option<usize>| Launch {
        kernel: small_kernel(entry, vec![true, false, true]),
        binds: vec![src, dst],
        scratch: slot.map(|s| vec![(s, words(len))]).unwrap_or_default(),
        info: u32s([batch * len]),
        workgroups: per_element(batch * len),
    };
    let prep = vec![
        elementwise(
            "log_weights",
            a.into(),
            Bind::Scratch(LOG_A),
            n,
            Some(LOG_A),
        ),
        elementwise(
            "log_weights",
            b.into(),
            Bind::Scratch(LOG_B),
            m,
            Some(LOG_B),
        ),
        elementwise("copy", f0.into(), f.into(), n, None),
        elementwise("copy", g0.into(), g.into(), m, None),
        Launch {
            kernel: small_kernel("check_weights", vec![true, true, false, true]),
            binds: vec![a.into(), b.into(), Bind::Scratch(STATUS)],
            scratch: vec![(STATUS, status_bytes(batch))],
            info: u32s([batch, n, m]),
            workgroups: Workgroups::Linear(batch as u64),
        },
    ];
    // One half-step: `out ← lambda · softmin(reduce over the other side)`.
    let half_step = |eps: f64, rows: bool, out: Bind, pot: Potential, lambda: f64| {
        let how = Softmin { eps, lambda };
        match spec.points {
            None => softmin_launch(
                [inputs[0].into(), out],
                pot,
                dtype,
                (batch, n, m),
                how,
                if rows {
                    SoftminAxis::PerRow
                } else {
                    SoftminAxis::PerColumn
                },
                loop_limit,
            ),
            Some(cost) => {
                let (x, y) = (inputs[0].into(), inputs[1].into());
                let (points, sizes) = if rows {
                    ([x, y, out], (batch, n, m, d))
                } else {
                    ([y, x, out], (batch, m, n, d))
                };
                point_softmin_launch(points, pot, dtype, sizes, how, cost, loop_limit)
            }
        }
    };
    let pot = |log_w: usize, v: Value, eps: f64| Potential {
        h: Bind::Scratch(log_w),
        scaled: Some((v.into(), 1.0 / eps)),
    };
    let with_logs = |mut l: Launch| {
        l.scratch.extend([(LOG_A, words(n)), (LOG_B, words(m))]);
        l
    };
    let levels = (0..spec.eps_levels())
        .map(|t| {
            let eps = spec.eps_at(t);
            let row = half_step(
                eps,
                true,
                f.into(),
                pot(LOG_B, g, eps),
                SinkhornSpec::damping(spec.rho_a, eps),
            )?;
            let column = half_step(
                eps,
                false,
                g.into(),
                pot(LOG_A, f, eps),
                SinkhornSpec::damping(spec.rho_b, eps),
            )?;
            Ok(row.into_iter().chain(column).map(with_logs).collect())
        })
        .collect::<Result<Vec<_>>>()?;
    let mut soft = half_step(
        spec.eps,
        true,
        Bind::Scratch(SOFT),
        pot(LOG_B, g, spec.eps),
        1.0,
    )?;
    for l in &mut soft {
        l.scratch.extend([(SOFT, words(n)), (LOG_B, words(m))]);
    }
    let inv_rho = spec.rho_a.map_or(0.0, |r| 1.0 / r) as f32;
    let mut check: Vec<Launch> = soft.into_iter().map(with_logs).collect();
    // A workgroup per problem writes its error, then one workgroup the largest.
    let errors = |entry: &str, workgroups: usize| Launch {
        kernel: small_kernel(entry, vec![true, true, true, false, false, true]),
        binds: vec![
            a.into(),
            f.into(),
            Bind::Scratch(SOFT),
            error.into(),
            Bind::Scratch(STATUS),
        ],
        scratch: vec![(SOFT, words(n)), (STATUS, status_bytes(batch))],
        info: vec![
            batch as u32,
            n as u32,
            (spec.eps as f32).to_bits(),
            inv_rho.to_bits(),
        ],
        workgroups: Workgroups::Linear(workgroups as u64),
    };
    check.push(errors("marginal_error", batch));
    check.push(errors("largest_error", 1));
    Ok(LoopLaunches {
        prep,
        levels,
        check,
    })
}
