//! A rollout as one op: `steps` steps of `substeps` substeps each, the states at the
//! observed steps out, checkpoints for the backward; and its backward, which restores each
//! segment from its checkpoint, recomputes it and runs the per-substep adjoint in reverse.
//! The CPU references here define both.

use crate::kernel::Checkpoint;
use crate::{Error, Result, Storage, TensorData, TensorType};

use super::cpu_spring::{Prepared, SpringGrads, SpringParams};
use super::real::{Real, V3};
use super::spring::MassSpring;

/// How long a rollout runs, what comes out, and how its backward keeps states.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutOptions {
    /// Steps (controls change once per step).
    pub steps: usize,
    /// Substeps per step, each of the system's `dt`.
    pub substeps: usize,
    /// The steps (1..=steps, increasing) whose resulting states come out; by default the
    /// last.
    pub observe: Vec<usize>,
    /// Which substep states the forward keeps for the backward (over all
    /// `steps · substeps` substeps; by default every ⌈√(steps · substeps)⌉).
    pub checkpoint: Checkpoint,
    /// Gradient clipping: after each substep of the backward, every component of the
    /// state's cotangent is clamped to `[−clip, clip]`, which keeps long rollouts through
    /// stiff contact from exploding (at the cost of the exact gradient). `None` (the
    /// default) for the exact gradient.
    pub clip: Option<f32>,
}

impl RolloutOptions {
    /// `steps` steps of one substep, observing the last, with `Checkpoint::Sqrt`.
    pub fn new(steps: usize) -> RolloutOptions {
        RolloutOptions {
            steps,
            substeps: 1,
            observe: vec![steps],
            checkpoint: Checkpoint::Sqrt,
            clip: None,
        }
    }

    /// Substeps in all.
    pub fn substeps_total(&self) -> usize {
        self.steps * self.substeps
    }

    /// Checks the options, naming what is wrong.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let bad = |detail: String| Error::InvalidValue { op, detail };
        if self.steps == 0 || self.substeps == 0 {
            return Err(bad(format!(
                "{} steps of {} substeps: both must be at least 1",
                self.steps, self.substeps
            )));
        }
        if self.steps.checked_mul(self.substeps).is_none_or(|l| l > u32::MAX as usize / 2) {
            return Err(bad(format!(
                "{} steps of {} substeps is too many (at most {} substeps)",
                self.steps,
                self.substeps,
                u32::MAX / 2
            )));
        }
        if self.observe.is_empty() {
            return Err(bad("no step is observed: `observe` lists none".into()));
        }
        let mut last = 0;
        for &t in &self.observe {
            if t <= last || t > self.steps {
                return Err(bad(format!(
                    "observe must list steps in 1..={} in increasing order, got {:?}",
                    self.steps, self.observe
                )));
            }
            last = t;
        }
        self.checkpoint.interval(self.substeps_total())?;
        if let Some(c) = self.clip.filter(|c| c.is_nan() || *c <= 0.0) {
            return Err(bad(format!("clip is {c}, expected a value > 0 (or None)")));
        }
        Ok(())
    }

    /// The observation slot of the state after substep `k` (0-based), if observed.
    pub fn slot_after(&self, k: usize) -> Option<usize> {
        let done = k + 1;
        if !done.is_multiple_of(self.substeps) {
            return None;
        }
        self.observe.binary_search(&(done / self.substeps)).ok()
    }
}

/// The hint of a non-finite rollout.
pub const NON_FINITE_HINT: &str = "the substep is too long for the stiffness, or an input \
                                   was not finite: lower dt or the stiffness";

/// The inputs of a rollout as `R` values, padded to 3-vectors.
pub(super) struct Inputs<R> {
    pub x: Vec<V3<R>>,
    pub v: Vec<V3<R>>,
    pub rest: Vec<R>,
    pub stiffness: Vec<R>,
    pub damping: Vec<R>,
    /// `[steps, actuators]`, empty without actuators.
    pub controls: Vec<R>,
}

pub(super) fn values<R: Real>(d: &TensorData) -> Result<Vec<R>> {
    Ok(d.values::<R>()?.to_vec())
}

pub(super) fn vectors<R: Real>(flat: &[R], dim: usize) -> Vec<V3<R>> {
    flat.chunks(dim)
        .map(|c| {
            let mut v = [R::ZERO; 3];
            v[..dim].copy_from_slice(c);
            v
        })
        .collect()
}

pub(super) fn flatten<R: Real>(vs: &[V3<R>], dim: usize, out: &mut Vec<R>) {
    for v in vs {
        out.extend_from_slice(&v[..dim]);
    }
}

pub(super) fn tensor<R: Real>(ty: &TensorType, values: Vec<R>) -> Result<TensorData> {
    TensorData::from_storage(ty.shape.clone(), R::wrap(values))
}

/// The rest lengths of step `t`: `r (1 + α u[t, k])` for actuated springs.
pub(super) fn actuated<R: Real>(p: &Prepared<R>, rest: &[R], controls: &[R], t: usize) -> Vec<R> {
    let mut r = rest.to_vec();
    let a = p.actuators.len();
    for (k, &(s, alpha)) in p.actuators.iter().enumerate() {
        r[s] = rest[s] * (R::ONE + alpha * controls[t * a + k]);
    }
    r
}

/// Positions and velocities of every particle.
pub(super) type State<R> = (Vec<V3<R>>, Vec<V3<R>>);

/// Every substep state `0..=L` from `(x, v)`, or the first non-finite step.
pub(super) fn states<R: Real>(
    p: &Prepared<R>,
    o: &RolloutOptions,
    inp: &Inputs<R>,
    op: &'static str,
) -> Result<Vec<State<R>>> {
    let mut out = vec![(inp.x.clone(), inp.v.clone())];
    for k in 0..o.substeps_total() {
        let t = k / o.substeps;
        let rest = actuated(p, &inp.rest, &inp.controls, t);
        let params = SpringParams {
            rest: &rest,
            stiffness: &inp.stiffness,
            damping: &inp.damping,
        };
        let (x, v) = out.last().expect("the initial state");
        let next = p.substep(x, v, &params);
        let finite = |s: &[V3<R>]| s.iter().flatten().all(|c| c.finite());
        if !(finite(&next.0) && finite(&next.1)) {
            return Err(Error::NonFinite {
                op,
                step: t,
                hint: NON_FINITE_HINT,
            });
        }
        out.push(next);
    }
    Ok(out)
}

/// The forward reference: observed positions and velocities, then the checkpoints.
pub(super) fn forward<R: Real>(
    system: &MassSpring,
    o: &RolloutOptions,
    inputs: &[&TensorData],
    outputs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let p = Prepared::<R>::new(system);
    let inp = read_inputs::<R>(system, inputs, true)?;
    let all = states(&p, o, &inp, "mass_spring_rollout")?;
    let dim = system.dim;
    let [mut ox, mut ov, mut ck] = [vec![], vec![], vec![]];
    for (k, (x, v)) in all.iter().enumerate().skip(1) {
        if o.slot_after(k - 1).is_some() {
            flatten(x, dim, &mut ox);
            flatten(v, dim, &mut ov);
        }
    }
    let every = o.checkpoint.interval(o.substeps_total())?;
    for (x, v) in all.iter().step_by(every).take(o.substeps_total().div_ceil(every)) {
        for (xi, vi) in x.iter().zip(v) {
            ck.extend_from_slice(xi);
            ck.extend_from_slice(vi);
        }
    }
    [ox, ov, ck]
        .into_iter()
        .zip(outputs)
        .map(|(vals, ty)| tensor(ty, vals))
        .collect()
}

/// `x0, v0` (when `with_state`), then rest, stiffness, damping and the controls if any.
pub(super) fn read_inputs<R: Real>(
    system: &MassSpring,
    inputs: &[&TensorData],
    with_state: bool,
) -> Result<Inputs<R>> {
    let dim = system.dim;
    let mut at = 0;
    let mut next = || {
        at += 1;
        inputs.get(at - 1).copied().ok_or_else(|| {
            Error::Graph(format!("mass_spring_rollout node lacks input {}", at - 1))
        })
    };
    let (x, v) = if with_state {
        (vectors(&values(next()?)?, dim), vectors(&values(next()?)?, dim))
    } else {
        (vec![], vec![])
    };
    let rest = values(next()?)?;
    let stiffness = values(next()?)?;
    let damping = values(next()?)?;
    let controls = if system.actuators.is_empty() {
        vec![]
    } else {
        values(next()?)?
    };
    Ok(Inputs {
        x,
        v,
        rest,
        stiffness,
        damping,
        controls,
    })
}

/// The backward reference: from the parameters, the checkpoints and the cotangents of the
/// observed states, the cotangents of `x0, v0`, rest lengths, stiffnesses, dampings and
/// controls. Every state is rebuilt from the first checkpoint (the same arithmetic as the
/// forward's, so the same values).
pub(super) fn backward<R: Real>(
    system: &MassSpring,
    o: &RolloutOptions,
    inputs: &[&TensorData],
    outputs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let p = Prepared::<R>::new(system);
    let dim = system.dim;
    let n = p.particles();
    let mut inp = read_inputs::<R>(system, inputs, false)?;
    let rest_in = usize::from(!system.actuators.is_empty()) + 3;
    let [ck, g_ox, g_ov] = std::array::from_fn(|k| inputs.get(rest_in + k).copied());
    let missing = || Error::Graph("mass_spring_rollout_grad node lacks an input".into());
    let ck = values::<R>(ck.ok_or_else(missing)?)?;
    let g_ox = values::<R>(g_ox.ok_or_else(missing)?)?;
    let g_ov = values::<R>(g_ov.ok_or_else(missing)?)?;
    // The first checkpoint is the initial state.
    inp.x = (0..n).map(|i| [ck[6 * i], ck[6 * i + 1], ck[6 * i + 2]]).collect();
    inp.v = (0..n).map(|i| [ck[6 * i + 3], ck[6 * i + 4], ck[6 * i + 5]]).collect();
    let all = states(&p, o, &inp, "mass_spring_rollout")?;
    let springs = p.springs.len();
    let acts = p.actuators.len();
    let mut grads = SpringGrads::zeros(springs);
    let mut g_rest = vec![R::ZERO; springs];
    let mut g_controls = vec![R::ZERO; inp.controls.len()];
    let mut gx = vec![[R::ZERO; 3]; n];
    let mut gv = vec![[R::ZERO; 3]; n];
    let of = system.actuator_of();
    for k in (0..o.substeps_total()).rev() {
        if let Some(slot) = o.slot_after(k) {
            let at = slot * n * dim;
            let (cx, cv) = (vectors(&g_ox[at..at + n * dim], dim), vectors(&g_ov[at..at + n * dim], dim));
            for i in 0..n {
                gx[i] = super::real::add(gx[i], cx[i]);
                gv[i] = super::real::add(gv[i], cv[i]);
            }
        }
        let t = k / o.substeps;
        let rest = actuated(&p, &inp.rest, &inp.controls, t);
        let params = SpringParams {
            rest: &rest,
            stiffness: &inp.stiffness,
            damping: &inp.damping,
        };
        let (x, v) = &all[k];
        let (nx, nv, g_rt) = p.substep_adjoint((x, v), &params, (&gx, &gv), &mut grads);
        (gx, gv) = (nx, nv);
        if let Some(c) = o.clip {
            clip_all(&mut gx, c);
            clip_all(&mut gv, c);
        }
        for s in 0..springs {
            match of[s] {
                u32::MAX => g_rest[s] = g_rest[s] + g_rt[s],
                a => {
                    let (a, alpha) = (a as usize, p.actuators[a as usize].1);
                    let u = inp.controls[t * acts + a];
                    g_rest[s] = g_rest[s] + g_rt[s] * (R::ONE + alpha * u);
                    g_controls[t * acts + a] = g_controls[t * acts + a] + g_rt[s] * inp.rest[s] * alpha;
                }
            }
        }
    }
    let (mut fx, mut fv) = (vec![], vec![]);
    flatten(&gx, dim, &mut fx);
    flatten(&gv, dim, &mut fv);
    let mut out = vec![fx, fv, g_rest, grads.stiffness, grads.damping];
    if acts > 0 {
        out.push(g_controls);
    }
    out.into_iter()
        .zip(outputs)
        .map(|(vals, ty)| tensor(ty, vals))
        .collect()
}

/// Clamps every component to `[−c, c]`.
pub(super) fn clip_all<R: Real, const K: usize>(values: &mut [[R; K]], c: f32) {
    let (lo, hi) = (R::lit(-c), R::lit(c));
    for v in values.iter_mut().flatten() {
        *v = if *v < lo {
            lo
        } else if *v > hi {
            hi
        } else {
            *v
        };
    }
}

/// Runs `f32` or `f64` by the dtype of `ty`.
pub(super) fn by_dtype(
    ty: &TensorType,
    f32_version: impl FnOnce() -> Result<Vec<TensorData>>,
    f64_version: impl FnOnce() -> Result<Vec<TensorData>>,
) -> Result<Vec<TensorData>> {
    match Storage::zeros(ty.dtype, 0) {
        Storage::F32(_) => f32_version(),
        Storage::F64(_) => f64_version(),
        _ => Err(Error::Graph(format!("a rollout in {}", ty.dtype))),
    }
}
