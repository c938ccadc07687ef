//! The WGSL lowering of a mass-spring rollout and its backward, as loop plans over
//! `shaders/physics/mass_spring.wgsl`. The whole system (settings, incidence lists,
//! masses, actuators, observed steps) travels in each launch's `info` words.

use std::sync::Arc;

use crate::kernel::launch::Bind;
use crate::kernel::{LoopPlan, LowerCx, Lowering, Run, Schedule, StopCheck};
use crate::ops::moe::wgsl::f32_only;
use crate::{Error, Result};

use super::kernels::{read, words, write, Kernels};
use super::rollout::{RolloutOptions, NON_FINITE_HINT};
use super::spring::{MassSpring, SpringForm};

/// Floats of one spring's adjoint terms (the shader's `TERMS`).
const TERMS: u64 = 8;
/// Where the header ends and the tables begin.
const HEADER: usize = 41;

/// The `info` words of every launch (word 0, the mode, is set per launch).
fn table(system: &MassSpring, o: &RolloutOptions) -> Result<Vec<u32>> {
    let bits = f32::to_bits;
    let n = system.particles();
    let ck = o.checkpoint.interval(o.substeps_total())?;
    let mut h = vec![0u32; HEADER];
    h[1] = n as u32;
    h[2] = system.springs.len() as u32;
    h[3] = system.actuators.len() as u32;
    h[4] = o.substeps as u32;
    h[5] = ck as u32;
    h[6] = bits(system.dt);
    h[7] = bits(system.damping_factor());
    for k in 0..system.dim {
        h[8 + k] = bits(system.gravity[k]);
    }
    match system.form {
        SpringForm::Warp => h[11] = 0,
        SpringForm::DiffTaichi { eps } => {
            h[11] = 1;
            h[12] = bits(eps);
        }
    }
    if let Some(v) = system.max_velocity {
        h[13] = 1;
        h[14] = bits(v);
    }
    if let Some(g) = &system.ground {
        h[15] = 1;
        for k in 0..3 {
            h[16 + k] = bits(g.normal[k]);
        }
        let rest = [g.offset, g.radius, g.ke, g.kd, g.kf, g.mu];
        for (k, v) in rest.into_iter().enumerate() {
            h[19 + k] = bits(v);
        }
    }
    if let Some(w) = &system.wall {
        h[25] = 1;
        h[26] = w.axis as u32;
        h[27] = bits(w.position);
        h[28] = bits(w.friction);
    }
    h[29] = system.dim as u32;
    h[30] = o.observe.len() as u32;
    h[31] = o.steps as u32;
    h[32] = bits(o.clip.unwrap_or(f32::INFINITY));
    let (offsets, incident) = system.incidence();
    let ends: Vec<u32> = system.springs.iter().flatten().copied().collect();
    let masses: Vec<u32> = system.inv_mass.iter().map(|&w| bits(w)).collect();
    let alphas: Vec<u32> = system.actuators.iter().map(|&(_, a)| bits(a)).collect();
    let act_springs: Vec<u32> = system.actuators.iter().map(|&(s, _)| s).collect();
    let observe: Vec<u32> = o.observe.iter().map(|&t| t as u32).collect();
    let tables = [
        offsets,
        incident,
        ends,
        masses,
        system.actuator_of(),
        alphas,
        observe,
        act_springs,
    ];
    for (k, t) in tables.into_iter().enumerate() {
        h[33 + k] = h.len() as u32;
        h.extend(t);
    }
    Ok(h)
}

/// The most loop iterations one invocation runs: a particle's springs, or the binary
/// search over the observed steps.
pub fn loop_trips(system: &MassSpring, o: &RolloutOptions) -> u64 {
    let (offsets, _) = system.incidence();
    let degree = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as u64;
    degree + 64 - (o.observe.len() as u64).leading_zeros() as u64
}

/// Forward scratch slots: the state, the spring forces, the status, the packed values.
const F_STATE: usize = 0;
const F_FORCE: usize = 1;
const F_STATUS: usize = 2;
const F_PARAMS: usize = 3;

/// The forward: pack the spring values and load the state; per substep the spring forces,
/// the particles (with the checkpoint and the status) and, at observed steps, the
/// observation; the status read once at the end.
pub fn forward(system: &MassSpring, o: &RolloutOptions, cx: &LowerCx<'_>) -> Result<Lowering> {
    f32_only("mass_spring_rollout", cx.output_types[0].dtype, "the state")?;
    let (n, s) = (system.particles(), system.springs.len());
    let k = Kernels {
        file: &super::MASS_SPRING,
        label: "mass_spring",
        info: table(system, o)?,
        placeholder: Bind::Value(cx.inputs[0]),
        scratch: vec![
            (F_STATE, words(6 * n)),
            (F_FORCE, words(3 * s)),
            (F_STATUS, 16),
            (F_PARAMS, words(3 * s)),
        ],
    };
    let v = |i: usize| Bind::Value(cx.inputs[i]);
    let controls = if system.actuators.is_empty() {
        k.placeholder
    } else {
        v(5)
    };
    let [state, force, status, params] =
        [F_STATE, F_FORCE, F_STATUS, F_PARAMS].map(Bind::Scratch);
    let setup = vec![
        k.launch_n("pack", 0, &[read(v(2)), read(v(3)), read(v(4)), write(params)], s),
        k.launch_n("load_state", 0, &[write(state), read(v(0)), read(v(1)), write(status)], n),
    ];
    let step = vec![
        k.launch_n(
            "springs",
            0,
            &[write(state), read(params), read(controls), read(Bind::Step), write(force)],
            s,
        ),
        k.launch_n(
            "particles",
            0,
            &[
                write(state),
                read(force),
                read(Bind::Step),
                write(Bind::Value(cx.output(2))),
                write(status),
            ],
            n,
        ),
    ];
    let mut observed = step.clone();
    observed.push(k.launch_n(
        "observe",
        0,
        &[
            write(state),
            read(Bind::Step),
            write(Bind::Value(cx.output(0))),
            write(Bind::Value(cx.output(1))),
        ],
        n,
    ));
    // Plain substeps, with the observing body at the last substep of each observed step.
    let mut runs = vec![];
    let mut from = 0;
    for &t in &o.observe {
        let k_obs = t * o.substeps - 1;
        runs.push(Run::forward(0, from, k_obs));
        runs.push(Run::forward(1, k_obs, k_obs + 1));
        from = k_obs + 1;
    }
    runs.push(Run::forward(0, from, o.substeps_total()));
    runs.retain(|r| r.end > r.start);
    let check = StopCheck {
        launches: vec![],
        status: (F_STATUS, 4),
        after: Arc::new(|_| false),
        decide: Arc::new(|_, _| Ok(false)),
        exhausted: Arc::new(|status, _| {
            let first = u32::from_le_bytes([status[0], status[1], status[2], status[3]]);
            match first {
                u32::MAX => Ok(()),
                step => Err(Error::NonFinite {
                    op: "mass_spring_rollout",
                    step: step as usize,
                    hint: NON_FINITE_HINT,
                }),
            }
        }),
    };
    Ok(LoopPlan {
        setup,
        bodies: vec![step, observed],
        schedule: Schedule::Runs(runs),
        check: Some(check),
        gate: None,
        finish: vec![],
        steps_out: None,
    }
    .into())
}

/// Backward scratch slots: the segment's states, spring forces, packed values, the state's
/// cotangents, the force's, the springs' terms and the accumulated value cotangents.
const B_SEG: usize = 0;
const B_FORCE: usize = 1;
const B_PARAMS: usize = 2;
const B_LAM: usize = 3;
const B_GF: usize = 4;
const B_TERMS: usize = 5;
const B_GP: usize = 6;

/// The backward: per segment from the last, restore its first state, rebuild the rest,
/// then run the adjoint of each substep in reverse; the cotangents of x0, v0 and the
/// spring values come out of their accumulators at the end.
pub fn backward(system: &MassSpring, o: &RolloutOptions, cx: &LowerCx<'_>) -> Result<Lowering> {
    f32_only("mass_spring_rollout", cx.output_types[0].dtype, "the state")?;
    let (n, s, a) = (
        system.particles(),
        system.springs.len(),
        system.actuators.len(),
    );
    let ck = o.checkpoint.interval(o.substeps_total())?;
    let k = Kernels {
        file: &super::MASS_SPRING,
        label: "mass_spring",
        info: table(system, o)?,
        placeholder: Bind::Value(cx.inputs[0]),
        scratch: vec![
            (B_SEG, words(ck * 6 * n)),
            (B_FORCE, words(3 * s)),
            (B_PARAMS, words(3 * s)),
            (B_LAM, words(6 * n)),
            (B_GF, words(3 * n)),
            (B_TERMS, words(TERMS as usize * s)),
            (B_GP, words(3 * s)),
        ],
    };
    let v = |i: usize| Bind::Value(cx.inputs[i]);
    let out = |i: usize| Bind::Value(cx.output(i));
    let c_in = usize::from(a > 0);
    let controls = if a > 0 { v(3) } else { k.placeholder };
    let (ckpts, g_ox, g_ov) = (v(3 + c_in), v(4 + c_in), v(5 + c_in));
    let [seg, force, params, lam, gf, terms, gp] =
        [B_SEG, B_FORCE, B_PARAMS, B_LAM, B_GF, B_TERMS, B_GP].map(Bind::Scratch);
    let step = Bind::Step;
    let mut setup = vec![
        k.launch_n("pack", 0, &[read(v(0)), read(v(1)), read(v(2)), write(params)], s),
        k.launch_n("zero_backward", 0, &[write(lam), write(gp)], (6 * n).max(3 * s)),
    ];
    if a > 0 {
        setup.push(k.launch_n("zero_controls", 0, &[write(out(5))], o.steps * a));
    }
    let springs = k.launch_n(
        "springs",
        1,
        &[write(seg), read(params), read(controls), read(step), write(force)],
        s,
    );
    let restore = vec![k.launch_n("restore", 1, &[write(seg), read(ckpts), read(step)], n)];
    let recompute = vec![
        springs.clone(),
        k.launch_n("recompute", 1, &[write(seg), read(force), read(step)], n),
    ];
    let mut adjoint = vec![
        springs,
        k.launch_n(
            "particle_adjoint",
            1,
            &[
                write(seg),
                read(force),
                read(step),
                write(lam),
                read(g_ox),
                read(g_ov),
                write(gf),
            ],
            n,
        ),
        k.launch_n(
            "spring_adjoint",
            1,
            &[
                write(seg),
                read(params),
                read(controls),
                read(step),
                read(gf),
                write(terms),
                write(gp),
            ],
            s,
        ),
    ];
    if a > 0 {
        adjoint.push(k.launch_n(
            "control_adjoint",
            1,
            &[read(terms), read(params), read(step), write(out(5))],
            a,
        ));
    }
    adjoint.push(k.launch_n("gather_adjoint", 1, &[read(terms), write(lam)], n));
    let finish = vec![
        k.launch_n("finish_state", 0, &[read(lam), write(out(0)), write(out(1))], n),
        k.launch_n(
            "finish_params",
            0,
            &[read(gp), write(out(2)), write(out(3)), write(out(4))],
            s,
        ),
    ];
    let runs = o
        .checkpoint
        .reverse_runs(o.substeps_total(), [0, 1, 2])?;
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
