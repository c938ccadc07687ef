//! The WGSL lowering of an MLS-MPM rollout and its backward, as loop plans over
//! `shaders/physics/mpm.wgsl` (2D) or `mpm3.wgsl` (3D), which share their entry points'
//! names and bindings. Each substep sorts the particles by cell (count, scan, place,
//! order) so that P2G can gather in particle order without float atomics.

use std::sync::Arc;

use crate::kernel::launch::{Bind, Launch, Workgroups};
use crate::kernel::{LoopPlan, LowerCx, Lowering, Run, Schedule, StopCheck};
use crate::ops::moe::wgsl::f32_only;
use crate::{Error, Result};

use crate::kernel::shaders::ShaderFile;

use super::kernels::{read, threads, words, write, Kernels};
use super::mpm_rollout::LEFT_GRID_HINT;
use super::{Mpm, MpmMaterial, RolloutOptions};

/// Floats per node of the grid's cotangents (momentum and mass, padded in 2D).
const GADJ: usize = 4;

/// The buffers' strides of one dimension's kernels.
#[derive(Copy, Clone)]
struct Layout {
    file: &'static ShaderFile,
    /// Floats per particle state, per node of the grid buffer, per particle of `prep`.
    state: usize,
    grid: usize,
    prep: usize,
    /// Nodes (and cells) of the grid.
    cells: usize,
}

impl Layout {
    fn of(system: &Mpm) -> Layout {
        let g = system.grid;
        if system.dim == 3 {
            Layout {
                file: &super::MPM3,
                state: 24,
                grid: 8,
                prep: 18,
                cells: g * g * g,
            }
        } else {
            Layout {
                file: &super::MPM,
                state: 12,
                grid: 6,
                prep: 8,
                cells: g * g,
            }
        }
    }
}
/// The most particles one cell may hold (each cell's list is sorted by insertion within
/// the loop budget of software drivers).
pub const CROWDED: usize = 256;
const HEADER: usize = 27;

fn table(system: &Mpm, o: &RolloutOptions, n: usize) -> Result<Vec<u32>> {
    let bits = f32::to_bits;
    let mut h = vec![0u32; HEADER];
    h[1] = n as u32;
    h[2] = system.grid as u32;
    h[3] = o.checkpoint.interval(o.substeps_total())? as u32;
    h[4] = o.substeps as u32;
    h[5] = bits(system.dx());
    h[6] = bits(system.inv_dx());
    h[7] = bits(system.dt as f32);
    h[8] = bits(system.particle_mass as f32);
    h[9] = bits(system.stress_scale());
    h[10] = bits(system.gravity_step());
    h[11] = system.bound as u32;
    match system.material {
        MpmMaterial::FixedCorotated { mu, lambda } => {
            h[12] = 0;
            h[13] = bits((2.0 * mu) as f32);
            h[14] = bits(lambda as f32);
        }
        MpmMaterial::Fluid { lambda } => {
            h[12] = 1;
            h[14] = bits(lambda as f32);
        }
        MpmMaterial::Plastic {
            mu,
            lambda,
            compression,
            stretch,
        } => {
            h[12] = 2;
            h[13] = bits((2.0 * mu) as f32);
            h[14] = bits(lambda as f32);
            h[25] = bits((1.0 - compression) as f32);
            h[26] = bits((1.0 + stretch) as f32);
        }
    }
    h[15] = o.observe.len() as u32;
    h[16] = HEADER as u32;
    h[17] = CROWDED as u32;
    h[18] = bits(o.clip.unwrap_or(f32::INFINITY));
    h[19] = system.actuator_count() as u32;
    h[20] = bits(system.actuation_strength as f32);
    h[24] = o.steps as u32;
    h.extend(o.observe.iter().map(|&t| t as u32));
    let (offsets, list) = system.actuated();
    let ids = if system.actuators.is_empty() {
        vec![u32::MAX; n]
    } else {
        system.actuators.clone()
    };
    for (k, t) in [ids, offsets, list].into_iter().enumerate() {
        h[21 + k] = h.len() as u32;
        h.extend(t);
    }
    Ok(h)
}

/// Scratch slots shared by both plans.
const STATE_SLOT: usize = 0;
const CELL_OF: usize = 1;
const CELLS: usize = 2;
const OFFSETS: usize = 3;
const LIST: usize = 4;
const PREP_SLOT: usize = 5;
const GRID_SLOT: usize = 6;
const STATUS: usize = 7;
const LAM: usize = 8;
const GADJ_SLOT: usize = 9;
const GACT: usize = 10;
const ATOMIC_SUMS: usize = 11;

/// The launches of the sort and P2G of one substep, in `mode` (`controls`: the controls'
/// value, or a placeholder).
fn p2g(k: &Kernels, mode: u32, n: usize, cells: usize, controls: Bind) -> Vec<Launch> {
    let s = Bind::Scratch;
    let step = Bind::Step;
    vec![
        k.launch("clear", mode, &[write(s(STATE_SLOT)), write(s(CELLS))], threads(2 * cells)),
        k.launch(
            "count",
            mode,
            &[write(s(STATE_SLOT)), read(step), write(s(CELL_OF)), write(s(CELLS))],
            threads(n),
        ),
        k.launch(
            "scan",
            mode,
            &[write(s(STATE_SLOT)), read(s(CELLS)), write(s(OFFSETS))],
            Workgroups::Fixed([1, 1, 1]),
        ),
        k.launch(
            "place",
            mode,
            &[
                write(s(STATE_SLOT)),
                read(s(CELL_OF)),
                write(s(CELLS)),
                read(s(OFFSETS)),
                write(s(LIST)),
            ],
            threads(n),
        ),
        k.launch(
            "order",
            mode,
            &[
                write(s(STATE_SLOT)),
                read(s(OFFSETS)),
                write(s(LIST)),
                read(step),
                write(s(STATUS)),
            ],
            threads(cells),
        ),
        k.launch(
            "prep",
            mode,
            &[
                write(s(STATE_SLOT)),
                read(step),
                write(s(PREP_SLOT)),
                read(controls),
            ],
            threads(n),
        ),
        k.launch(
            "p2g",
            mode,
            &[
                write(s(STATE_SLOT)),
                read(step),
                read(s(OFFSETS)),
                read(s(LIST)),
                read(s(PREP_SLOT)),
                write(s(GRID_SLOT)),
            ],
            threads(cells),
        ),
    ]
}

/// The opt-in P2G with float atomics (mode 0): prep, each particle's sums added into its
/// nodes, then the grid update.
fn atomic_p2g(k: &Kernels, n: usize, cells: usize, controls: Bind) -> Vec<Launch> {
    let s = Bind::Scratch;
    let step = Bind::Step;
    let atomic = |entry: &str, binds: &[(Bind, bool)], workgroups| {
        k.launch_from(&super::MPM_ATOMIC, entry, 0, binds, workgroups)
    };
    vec![
        atomic(
            "clear_atomic",
            &[write(s(STATE_SLOT)), write(s(ATOMIC_SUMS))],
            threads(3 * cells),
        ),
        k.launch(
            "prep",
            0,
            &[
                write(s(STATE_SLOT)),
                read(step),
                write(s(PREP_SLOT)),
                read(controls),
            ],
            threads(n),
        ),
        atomic(
            "p2g_atomic",
            &[
                write(s(STATE_SLOT)),
                read(step),
                read(s(PREP_SLOT)),
                write(s(ATOMIC_SUMS)),
            ],
            threads(n),
        ),
        atomic(
            "grid_atomic",
            &[
                write(s(STATE_SLOT)),
                read(s(ATOMIC_SUMS)),
                write(s(GRID_SLOT)),
            ],
            threads(cells),
        ),
    ]
}

fn kernels(system: &Mpm, o: &RolloutOptions, cx: &LowerCx<'_>, n: usize, segment: usize) -> Result<Kernels> {
    let Layout {
        file,
        state,
        grid,
        prep,
        cells,
    } = Layout::of(system);
    Ok(Kernels {
        file,
        label: "mpm",
        info: table(system, o, n)?,
        placeholder: Bind::Value(cx.inputs[0]),
        scratch: vec![
            (STATE_SLOT, words(segment * state * n)),
            (CELL_OF, words(n)),
            (CELLS, words(2 * cells)),
            (OFFSETS, words(cells + 1)),
            (LIST, words(n)),
            (PREP_SLOT, words(prep * n)),
            (GRID_SLOT, words(grid * cells)),
            (STATUS, 16),
            (LAM, words(state * n)),
            (GADJ_SLOT, words(GADJ * cells)),
            (GACT, words(n)),
        ],
    })
}

/// The forward: load the state; per substep the sort, P2G with the grid update and G2P
/// (with the checkpoint and the status), and the observation at observed steps; the
/// status read once at the end.
pub fn forward(system: &Mpm, o: &RolloutOptions, cx: &LowerCx<'_>) -> Result<Lowering> {
    f32_only("mpm_rollout", cx.output_types[0].dtype, "the state")?;
    let n = cx.input_types[0].shape.dims()[0];
    let cells = Layout::of(system).cells;
    let mut k = kernels(system, o, cx, n, 1)?;
    // The forward needs no cotangents.
    k.scratch
        .retain(|(slot, _)| ![LAM, GADJ_SLOT, GACT].contains(slot));
    let s = Bind::Scratch;
    let [x0, v0] = [cx.inputs[0], cx.inputs[1]].map(Bind::Value);
    let out = |i: usize| Bind::Value(cx.output(i));
    let setup = vec![k.launch(
        "load_state",
        0,
        &[write(s(STATE_SLOT)), read(x0), read(v0), write(s(STATUS))],
        threads(n),
    )];
    let controls = cx.inputs.get(2).map_or(k.placeholder, |&c| Bind::Value(c));
    // The float-atomic P2G is 2D; 3D always takes the sorted path.
    let atomic = system.atomic_p2g && cx.float_atomics && system.dim == 2;
    if atomic {
        k.scratch.push((ATOMIC_SUMS, words(3 * cells)));
    }
    let mut body = if atomic {
        atomic_p2g(&k, n, cells, controls)
    } else {
        p2g(&k, 0, n, cells, controls)
    };
    body.push(k.launch(
        "g2p",
        0,
        &[
            write(s(STATE_SLOT)),
            read(Bind::Step),
            read(s(GRID_SLOT)),
            read(s(PREP_SLOT)),
            write(out(2)),
            write(s(STATUS)),
        ],
        threads(n),
    ));
    let mut observed = body.clone();
    observed.push(k.launch(
        "observe",
        0,
        &[write(s(STATE_SLOT)), read(Bind::Step), write(out(0)), write(out(1))],
        threads(n),
    ));
    let mut runs = vec![];
    let mut from = 0;
    for &t in &o.observe {
        let at = t * o.substeps - 1;
        runs.push(Run::forward(0, from, at));
        runs.push(Run::forward(1, at, at + 1));
        from = at + 1;
    }
    runs.push(Run::forward(0, from, o.substeps_total()));
    runs.retain(|r| r.end > r.start);
    let check = StopCheck {
        launches: vec![],
        status: (STATUS, 8),
        after: Arc::new(|_| false),
        decide: Arc::new(|_, _| Ok(false)),
        exhausted: Arc::new(|status, _| {
            let word = |k: usize| u32::from_le_bytes([status[4 * k], status[4 * k + 1], status[4 * k + 2], status[4 * k + 3]]);
            let (step, flags) = (word(0), word(1));
            if step == u32::MAX {
                return Ok(());
            }
            if flags & 2 != 0 {
                return Err(Error::InvalidValue {
                    op: "mpm_rollout",
                    detail: format!(
                        "at step {step} a grid cell holds more than {CROWDED} particles, more \
                         than the wgpu backend sorts per cell; use a finer grid or fewer \
                         particles per cell"
                    ),
                });
            }
            Err(Error::NonFinite {
                op: "mpm_rollout",
                step: step as usize,
                hint: LEFT_GRID_HINT,
            })
        }),
    };
    Ok(LoopPlan {
        setup,
        bodies: vec![body, observed],
        schedule: Schedule::Runs(runs),
        check: Some(check),
        gate: None,
        finish: vec![],
        steps_out: None,
    }
    .into())
}

/// The backward: per segment from the last, restore its first state, rebuild the rest,
/// then reverse each substep: its sort and P2G again, the observation's cotangents, the
/// nodes' cotangents (gathered in particle order) and the particles'.
pub fn backward(system: &Mpm, o: &RolloutOptions, cx: &LowerCx<'_>) -> Result<Lowering> {
    f32_only("mpm_rollout", cx.output_types[0].dtype, "the state")?;
    let n = cx.output_types[0].shape.dims()[0];
    let Layout { cells, state, .. } = Layout::of(system);
    let ck = o.checkpoint.interval(o.substeps_total())?;
    let k = kernels(system, o, cx, n, ck)?;
    let s = Bind::Scratch;
    let step = Bind::Step;
    let [ckpts, g_ox, g_ov] = [cx.inputs[0], cx.inputs[1], cx.inputs[2]].map(Bind::Value);
    let out = |i: usize| Bind::Value(cx.output(i));
    let acts = system.actuator_count();
    let controls = cx.inputs.get(3).map_or(k.placeholder, |&c| Bind::Value(c));
    let mut setup = vec![k.launch("zero_lam", 1, &[write(s(LAM))], threads(state * n))];
    if acts > 0 {
        setup.push(k.launch(
            "zero_controls",
            1,
            &[write(out(2))],
            threads(o.steps * acts),
        ));
    }
    let restore = vec![k.launch(
        "restore",
        1,
        &[write(s(STATE_SLOT)), read(step), read(ckpts)],
        threads(n),
    )];
    let mut recompute = p2g(&k, 1, n, cells, controls);
    recompute.push(k.launch(
        "g2p_segment",
        1,
        &[
            write(s(STATE_SLOT)),
            read(step),
            read(s(GRID_SLOT)),
            read(s(PREP_SLOT)),
        ],
        threads(n),
    ));
    let mut adjoint = p2g(&k, 1, n, cells, controls);
    adjoint.extend([
        k.launch(
            "obs_adjoint",
            1,
            &[write(s(LAM)), read(step), read(g_ox), read(g_ov)],
            threads(n),
        ),
        k.launch(
            "node_adjoint",
            1,
            &[
                write(s(STATE_SLOT)),
                read(step),
                read(s(OFFSETS)),
                read(s(LIST)),
                read(s(LAM)),
                read(s(GRID_SLOT)),
                write(s(GADJ_SLOT)),
            ],
            threads(cells),
        ),
        k.launch(
            "particle_adjoint",
            1,
            &[
                write(s(STATE_SLOT)),
                read(step),
                read(s(GRID_SLOT)),
                read(s(GADJ_SLOT)),
                write(s(LAM)),
                read(controls),
                write(s(GACT)),
            ],
            threads(n),
        ),
    ]);
    if acts > 0 {
        adjoint.push(k.launch(
            "control_adjoint",
            1,
            &[read(s(GACT)), read(step), write(out(2))],
            threads(acts),
        ));
    }
    let finish = vec![k.launch(
        "finish",
        1,
        &[read(s(LAM)), write(out(0)), write(out(1))],
        threads(n),
    )];
    let runs = o.checkpoint.reverse_runs(o.substeps_total(), [0, 1, 2])?;
    Ok(LoopPlan {
        setup,
        bodies: vec![restore, recompute, adjoint],
        schedule: Schedule::Runs(runs),
        check: None,
        gate: None,
        finish,
        steps_out: None,
    }
    .into())
}
