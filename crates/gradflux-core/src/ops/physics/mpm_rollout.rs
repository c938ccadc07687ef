//! An MLS-MPM rollout as one op and its backward, with their CPU references: the states at
//! the observed steps and checkpoints of the whole particle state (x, v, C, F) out of the
//! forward; the backward rebuilds every state from the first checkpoint and runs the
//! substep adjoint in reverse.

use std::sync::Arc;

use crate::kernel::{KernelOp, LowerCx, Lowering, VjpCx};
use crate::{Error, Graph, Op, Result, Tensor, TensorData, TensorType};

use super::cpu_mpm::{Prepared, Stepper};
use super::cpu_mpm3::Prepared3;
use super::real::Real;
use super::rollout::{by_dtype, tensor, values};
use super::{Mpm, RolloutOptions, RolloutStates};

/// An MPM rollout. Inputs: `x0, v0 [N, 2]`, then the controls `[steps, actuators]` when
/// the system has actuators. Outputs: positions and velocities `[K, N, 2]`
/// after the observed steps, then the checkpoints `[C, N, 12]` (x, v, C, F per particle).
#[derive(Debug)]
pub struct MpmRollout {
    /// The system (validated).
    pub system: Arc<Mpm>,
    /// The options (validated).
    pub options: RolloutOptions,
}

/// The backward of [`MpmRollout`]. Inputs: the checkpoints, the cotangents of the two
/// observed outputs, then the controls if any. Outputs: the cotangents of `x0` and `v0`,
/// then of the controls if any.
#[derive(Debug)]
pub struct MpmRolloutGrad {
    /// The system.
    pub system: Arc<Mpm>,
    /// The forward's options.
    pub options: RolloutOptions,
}

const OP: &str = "mpm_rollout";

/// The hint of a particle that left the grid.
pub const LEFT_GRID_HINT: &str = "a particle left the grid's interior: lower dt or keep the \
                                  particles inside the boundary band";

impl Graph {
    /// Rolls an MLS-MPM system forward `options.steps · options.substeps` substeps from
    /// positions `x0` and velocities `v0` (`[N, 2]`, every particle undeformed with zero
    /// affine velocity), with `controls` `[steps, actuators]` when the system has
    /// actuators, and returns the states after the observed steps. Gradients flow to `x0`,
    /// `v0` and the controls through a checkpointed backward. The formulas are documented on
    /// [`Mpm`]; [`Mpm::diffmpm_simple`] is DiffTaichi's system.
    ///
    /// ```
    /// use gradflux_core::{DType, Graph, Mpm, RolloutOptions};
    /// let g = Graph::new();
    /// let x0 = g.input("x0", [64, 2], DType::F32)?;
    /// let v0 = g.input("v0", [64, 2], DType::F32)?;
    /// let out = g.mpm_rollout(&Mpm::diffmpm_simple(), x0, v0, None, RolloutOptions::new(50))?;
    /// let loss = g.sum_all(out.positions)?;
    /// let grads = g.grad(loss, &[v0])?;
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn mpm_rollout(
        &self,
        system: &Mpm,
        x0: Tensor,
        v0: Tensor,
        controls: Option<Tensor>,
        options: RolloutOptions,
    ) -> Result<RolloutStates> {
        system.validate()?;
        options.validate(OP)?;
        self.operands(OP, &[("x0", x0), ("v0", v0)])?;
        if let Some(c) = controls {
            self.operands(OP, &[("controls", c)])?;
        }
        let tx = self.ty(x0)?;
        if !matches!(tx.dtype, crate::DType::F32 | crate::DType::F64) {
            return Err(Error::DType {
                op: OP,
                expected: "f32 or f64".into(),
                got: tx.dtype,
            });
        }
        let dims = tx.shape.dims().to_vec();
        if dims.len() != 2 || dims[1] != system.dim || dims[0] == 0 {
            return Err(Error::Shape {
                op: OP,
                detail: format!("`x0` is {}, expected [N, {}] with N ≥ 1", tx.shape, system.dim),
            });
        }
        let tv = self.ty(v0)?;
        if tv != tx {
            return Err(Error::Shape {
                op: OP,
                detail: format!("`v0` is {tv}, expected {tx} (the type of `x0`)"),
            });
        }
        let n = dims[0];
        let acts = system.actuator_count();
        if !system.actuators.is_empty() && system.actuators.len() != n {
            return Err(Error::Shape {
                op: OP,
                detail: format!(
                    "the system names actuators for {} particles, but `x0` has {n}",
                    system.actuators.len()
                ),
            });
        }
        let mut inputs = vec![x0, v0];
        match (controls, acts) {
            (None, 0) => {}
            (Some(c), a) if a > 0 => {
                let tc = self.ty(c)?;
                let want = TensorType::new([options.steps, a], tx.dtype);
                if tc != want {
                    return Err(Error::Shape {
                        op: OP,
                        detail: format!("`controls` is {tc}, expected {want}"),
                    });
                }
                inputs.push(c);
            }
            (None, a) => {
                return Err(Error::Shape {
                    op: OP,
                    detail: format!(
                        "the system has {a} actuators, so `controls` [{}, {a}] is required",
                        options.steps
                    ),
                })
            }
            (Some(_), _) => {
                return Err(Error::Shape {
                    op: OP,
                    detail: "`controls` given, but no particle is actuated".into(),
                })
            }
        }
        let k = options.observe.len();
        let c = options.checkpoint.count(options.substeps_total())?;
        let d = system.dim;
        let ty = |lead: usize, last: usize| TensorType::new([lead, n, last], tx.dtype);
        let op = MpmRollout {
            system: Arc::new(system.clone()),
            options,
        };
        let outs = self.push(
            Op::Kernel(Arc::new(op)),
            &inputs,
            vec![ty(k, d), ty(k, d), ty(c, system.state_floats())],
        )?;
        Ok(RolloutStates {
            positions: outs[0],
            velocities: outs[1],
        })
    }
}

/// Whether every particle is finite and inside the grid's interior (`n` nodes per axis).
fn healthy<R: Real, S: Stepper<R>>(state: &[S::Particle], n: usize) -> bool {
    state.iter().all(|q| {
        let flat = S::flat(q);
        flat.iter().all(|c| c.finite())
            && flat[..S::DIM].iter().all(|c| {
                let at = c.to_f64() * n as f64;
                (0.5..n as f64 - 1.5).contains(&at)
            })
    })
}

/// Substep `k`'s successor of `state`, or the error naming the step where a particle left
/// the grid.
fn advance<R: Real, S: Stepper<R>>(
    p: &S,
    o: &RolloutOptions,
    (state, act): (&[S::Particle], &[Option<R>]),
    k: usize,
    n: usize,
) -> Result<Vec<S::Particle>> {
    let next = p.step(state, act);
    if !healthy::<R, S>(&next, n) {
        return Err(Error::NonFinite {
            op: OP,
            step: k / o.substeps,
            hint: LEFT_GRID_HINT,
        });
    }
    Ok(next)
}

/// Every substep state from `start`.
fn states<R: Real, S: Stepper<R>>(
    p: &S,
    o: &RolloutOptions,
    (start, act): (Vec<S::Particle>, &Actuation<R>),
    n: usize,
) -> Result<Vec<Vec<S::Particle>>> {
    let mut out = vec![start];
    for k in 0..o.substeps_total() {
        let at = act.at(k / o.substeps);
        let next = advance(p, o, (out.last().expect("the first state"), &at), k, n)?;
        out.push(next);
    }
    Ok(out)
}

/// Each particle's actuation per step: `u[t, a] · strength` for its actuator `a`.
struct Actuation<R> {
    ids: Vec<u32>,
    controls: Vec<R>,
    actuators: usize,
    strength: R,
}

impl<R: Real> Actuation<R> {
    fn new(system: &Mpm, controls: Vec<R>) -> Actuation<R> {
        Actuation {
            ids: system.actuators.clone(),
            controls,
            actuators: system.actuator_count(),
            strength: R::lit(system.actuation_strength as f32),
        }
    }

    /// The actuation of every particle at step `t` (`None` for a passive one; empty
    /// without actuators).
    fn at(&self, t: usize) -> Vec<Option<R>> {
        if self.actuators == 0 {
            return vec![];
        }
        self.ids
            .iter()
            .map(|&a| match a {
                u32::MAX => None,
                a => Some(self.controls[t * self.actuators + a as usize] * self.strength),
            })
            .collect()
    }
}

/// The controls (the input at `at`, if any) as an actuation schedule.
fn actuation<R: Real>(system: &Mpm, inputs: &[&TensorData], at: usize) -> Result<Actuation<R>> {
    let controls = match inputs.get(at) {
        Some(c) => values::<R>(c)?,
        None => vec![],
    };
    Ok(Actuation::new(system, controls))
}

fn forward<R: Real, S: Stepper<R>>(
    p: &S,
    system: &Mpm,
    o: &RolloutOptions,
    inputs: &[&TensorData],
    outputs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let (x, v) = (values::<R>(inputs[0])?, values::<R>(inputs[1])?);
    let f32s = |s: &[R]| s.iter().map(|c| c.to_f64() as f32).collect::<Vec<f32>>();
    system.check_particles(&f32s(&x), &f32s(&v))?;
    let d = S::DIM;
    let start: Vec<S::Particle> = x
        .chunks(d)
        .zip(v.chunks(d))
        .map(|(x, v)| S::start(x, v))
        .collect();
    let act = actuation(system, inputs, 2)?;
    // Streamed: only the current state is held; checkpoints and observations are copied
    // out as the rollout passes them.
    let every = o.checkpoint.interval(o.substeps_total())?;
    let (mut ox, mut ov, mut ck) = (vec![], vec![], vec![]);
    let mut state = start;
    for k in 0..o.substeps_total() {
        if k % every == 0 {
            for q in &state {
                ck.extend(S::flat(q));
            }
        }
        let at = act.at(k / o.substeps);
        state = advance(p, o, (&state, &at), k, system.grid)?;
        if o.slot_after(k).is_some() {
            for q in &state {
                let flat = S::flat(q);
                ox.extend_from_slice(&flat[..d]);
                ov.extend_from_slice(&flat[d..2 * d]);
            }
        }
    }
    [ox, ov, ck]
        .into_iter()
        .zip(outputs)
        .map(|(vals, ty)| tensor(ty, vals))
        .collect()
}

fn backward<R: Real, S: Stepper<R>>(
    p: &S,
    system: &Mpm,
    o: &RolloutOptions,
    inputs: &[&TensorData],
    outputs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let (d, state) = (S::DIM, S::STATE);
    let n = outputs[0].shape.dims()[0];
    let ck = values::<R>(inputs[0])?;
    let (g_ox, g_ov) = (values::<R>(inputs[1])?, values::<R>(inputs[2])?);
    let start: Vec<S::Particle> = (0..n).map(|i| S::from_flat(&ck[i * state..])).collect();
    let act = actuation(system, inputs, 3)?;
    let all = states(p, o, (start, &act), system.grid)?;
    let mut g_controls = vec![R::ZERO; act.controls.len()];
    let zero = S::from_flat(&vec![R::ZERO; state]);
    let mut grads = vec![zero; n];
    for k in (0..o.substeps_total()).rev() {
        if let Some(slot) = o.slot_after(k) {
            for (i, g) in grads.iter_mut().enumerate() {
                let at = (slot * n + i) * d;
                let mut flat = S::flat(g);
                for c in 0..d {
                    flat[c] = flat[c] + g_ox[at + c];
                    flat[d + c] = flat[d + c] + g_ov[at + c];
                }
                *g = S::from_flat(&flat);
            }
        }
        let t = k / o.substeps;
        let g_act;
        (grads, g_act) = p.step_adjoint(&all[k], &act.at(t), &grads);
        for (q, g) in g_act.iter().enumerate() {
            if let Some(&a) = act.ids.get(q).filter(|&&a| a != u32::MAX) {
                let at = t * act.actuators + a as usize;
                g_controls[at] = g_controls[at] + *g * act.strength;
            }
        }
        if let Some(c) = o.clip {
            for g in grads.iter_mut() {
                let mut flat = S::flat(g);
                for v in flat.iter_mut() {
                    let (lo, hi) = (R::lit(-c), R::lit(c));
                    *v = if *v < lo { lo } else if *v > hi { hi } else { *v };
                }
                *g = S::from_flat(&flat);
            }
        }
    }
    let flats: Vec<Vec<R>> = grads.iter().map(|g| S::flat(g)).collect();
    let gx: Vec<R> = flats.iter().flat_map(|f| f[..d].to_vec()).collect();
    let gv: Vec<R> = flats.iter().flat_map(|f| f[d..2 * d].to_vec()).collect();
    let mut out = vec![tensor(&outputs[0], gx)?, tensor(&outputs[1], gv)?];
    if let Some(ty) = outputs.get(2) {
        out.push(tensor(ty, g_controls)?);
    }
    Ok(out)
}

impl KernelOp for MpmRollout {
    fn name(&self) -> &'static str {
        OP
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        if cx.cotangents[..2].iter().all(Option::is_none) {
            return Ok(cx.none());
        }
        let g = cx.graph;
        let cot = |k: usize| match cx.cotangents[k] {
            Some(t) => Ok(t),
            None => g.zeros_like(cx.outputs[k]),
        };
        let op = MpmRolloutGrad {
            system: self.system.clone(),
            options: self.options.clone(),
        };
        let mut inputs = vec![cx.outputs[2], cot(0)?, cot(1)?];
        inputs.extend(cx.inputs.get(2).copied());
        let types: Vec<TensorType> =
            cx.inputs.iter().map(|&t| g.ty(t)).collect::<Result<_>>()?;
        let grads = g.kernel_op(op, &inputs, types)?;
        Ok(grads.into_iter().map(Some).collect())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (s, o) = (&self.system, &self.options);
        match s.dim {
            3 => by_dtype(
                &outputs[0],
                || forward::<f32, _>(&Prepared3::<f32>::new(s), s, o, inputs, outputs),
                || forward::<f64, _>(&Prepared3::<f64>::new(s), s, o, inputs, outputs),
            ),
            _ => by_dtype(
                &outputs[0],
                || forward::<f32, _>(&Prepared::<f32>::new(s), s, o, inputs, outputs),
                || forward::<f64, _>(&Prepared::<f64>::new(s), s, o, inputs, outputs),
            ),
        }
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        super::wgsl_mpm::forward(&self.system, &self.options, cx)
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        None
    }
}

impl KernelOp for MpmRolloutGrad {
    fn name(&self) -> &'static str {
        "mpm_rollout_grad"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (s, o) = (&self.system, &self.options);
        match s.dim {
            3 => by_dtype(
                &outputs[0],
                || backward::<f32, _>(&Prepared3::<f32>::new(s), s, o, inputs, outputs),
                || backward::<f64, _>(&Prepared3::<f64>::new(s), s, o, inputs, outputs),
            ),
            _ => by_dtype(
                &outputs[0],
                || backward::<f32, _>(&Prepared::<f32>::new(s), s, o, inputs, outputs),
                || backward::<f64, _>(&Prepared::<f64>::new(s), s, o, inputs, outputs),
            ),
        }
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        super::wgsl_mpm::backward(&self.system, &self.options, cx)
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        None
    }
}
