//! Ops that own a loop: the loop as data. An op's lowering is either launches run once
//! or a [`LoopPlan`] — set-up launches, a schedule of step bodies, a stop check read back
//! every few steps, launches after the loop — which a backend runs without knowing which op
//! made it. Sinkhorn's iterations are one; a physics rollout is the next.

use std::fmt;
use std::sync::Arc;

use crate::{Result, Value};

use super::Launch;

/// What a lowering asks the backend to run for one node.
#[derive(Debug)]
pub enum Lowering {
    /// Launches run once, in order.
    Launches(Vec<Launch>),
    /// A loop the backend drives (see [`LoopPlan`]).
    Loop(Box<LoopPlan>),
}

impl From<Vec<Launch>> for Lowering {
    fn from(launches: Vec<Launch>) -> Lowering {
        Lowering::Launches(launches)
    }
}

impl From<LoopPlan> for Lowering {
    fn from(plan: LoopPlan) -> Lowering {
        Lowering::Loop(Box::new(plan))
    }
}

/// A loop the backend runs for one node: it records `setup`, then the steps the
/// `schedule` lists (each runs one of the `bodies`, and launches that bind
/// [`Bind::Step`](super::Bind::Step) see that step's index), and after the last step
/// `finish`. Without a `check` every step is recorded at once, with no readback; with one,
/// the backend submits at each step the check asks for, reads the status back and lets the
/// check decide whether to stop. With a `gate`, the device itself turns finished work off:
/// the bodies dispatch indirectly and dispatch nothing once the gate says so. Launches of
/// one plan share scratch slots (one buffer per slot, sized for the largest request).
///
/// A rollout that keeps checkpoints is a plan too: its forward writes the state into a
/// checkpoint output every k steps (the body reads the step index to know when), and its
/// backward is a plan whose [`Schedule::Runs`] restore, recompute and reverse each segment
/// ([`Checkpoint::reverse_runs`](super::Checkpoint::reverse_runs)).
#[derive(Debug)]
pub struct LoopPlan {
    /// Launches recorded once, before the first step.
    pub setup: Vec<Launch>,
    /// The step bodies the schedule picks from.
    pub bodies: Vec<Vec<Launch>>,
    /// Which steps run, in order, and the body each runs.
    pub schedule: Schedule,
    /// An early stop decided on the host from a status read back every few steps.
    pub check: Option<StopCheck>,
    /// An early stop decided on the device: finished work dispatches nothing.
    pub gate: Option<Gate>,
    /// Launches recorded once, after the last step.
    pub finish: Vec<Launch>,
    /// A `u32` output that receives the number of steps run.
    pub steps_out: Option<Value>,
}

impl LoopPlan {
    /// A plan running `steps` steps of one body, with nothing before or after.
    pub fn repeat(body: Vec<Launch>, steps: usize) -> LoopPlan {
        LoopPlan {
            setup: vec![],
            bodies: vec![body],
            schedule: Schedule::Settling(steps),
            check: None,
            gate: None,
            finish: vec![],
            steps_out: None,
        }
    }

    /// The steps of the schedule in order, as `(step index, body)`.
    pub fn steps(&self) -> Box<dyn Iterator<Item = (usize, usize)> + '_> {
        self.schedule.steps(self.bodies.len())
    }

    /// A clear error when the schedule names a body the plan does not have.
    pub fn validate(&self, op: &str) -> Result<()> {
        if let Schedule::Runs(runs) = &self.schedule {
            if let Some(run) = runs.iter().find(|r| r.body >= self.bodies.len()) {
                return Err(crate::Error::Graph(format!(
                    "`{op}`'s loop schedule runs body {} of a plan with {} bodies",
                    run.body,
                    self.bodies.len()
                )));
            }
        }
        if let Some(gate) = &self.gate {
            if gate.every == 0 {
                return Err(crate::Error::Graph(format!(
                    "`{op}`'s loop gate is evaluated every 0 steps (at least 1)"
                )));
            }
        }
        Ok(())
    }
}

/// Which steps a [`LoopPlan`] runs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Steps `0..n`; step `t` runs body `min(t, bodies − 1)`: a schedule that changes over
    /// the first steps and then settles, as ε-scaling does.
    Settling(usize),
    /// Runs in order, each running one body over a range of step indices.
    Runs(Vec<Run>),
}

/// Steps `start..end` (in reverse when `reverse`), each running body `body`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Index into [`LoopPlan::bodies`].
    pub body: usize,
    /// First step index (inclusive).
    pub start: usize,
    /// Last step index (exclusive).
    pub end: usize,
    /// Whether the steps run from `end − 1` down to `start`.
    pub reverse: bool,
}

impl Run {
    /// Steps `start..end` of `body`, forward.
    pub fn forward(body: usize, start: usize, end: usize) -> Run {
        Run {
            body,
            start,
            end,
            reverse: false,
        }
    }

    /// Steps `end − 1` down to `start` of `body`.
    pub fn backward(body: usize, start: usize, end: usize) -> Run {
        Run {
            reverse: true,
            ..Run::forward(body, start, end)
        }
    }
}

impl Schedule {
    /// The steps in order as `(step index, body)`, for a plan with `bodies` bodies.
    pub fn steps(&self, bodies: usize) -> Box<dyn Iterator<Item = (usize, usize)> + '_> {
        match self {
            Schedule::Settling(n) => {
                let last = bodies.saturating_sub(1);
                Box::new((0..*n).map(move |t| (t, t.min(last))))
            }
            Schedule::Runs(runs) => Box::new(runs.iter().flat_map(|r| {
                let ts: Box<dyn Iterator<Item = usize>> = if r.reverse {
                    Box::new((r.start..r.end).rev())
                } else {
                    Box::new(r.start..r.end)
                };
                ts.map(move |t| (t, r.body))
            })),
        }
    }

    /// How many steps run.
    pub fn len(&self) -> usize {
        match self {
            Schedule::Settling(n) => *n,
            Schedule::Runs(runs) => runs.iter().map(|r| r.end.saturating_sub(r.start)).sum(),
        }
    }

    /// Whether no step runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest step index, if any step runs.
    pub fn last_index(&self) -> Option<usize> {
        match self {
            Schedule::Settling(n) => n.checked_sub(1),
            Schedule::Runs(runs) => runs
                .iter()
                .filter(|r| r.end > r.start)
                .map(|r| r.end - 1)
                .max(),
        }
    }
}

/// An early stop on the device. Every `every` steps the backend records `launches`, which
/// write a `u32` into the first word of scratch slot `flag`: non-zero while work remains.
/// From then on each body launch dispatches its workgroups while the flag is non-zero and
/// none once it is zero, so a finished loop costs no work and no readback. The op promises
/// that a body run after its gate closes would change nothing (its kernels already skip
/// finished work), so a backend without indirect dispatch may run every step instead and
/// get the same result.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Launches that write the flag.
    pub launches: Vec<Launch>,
    /// The scratch slot whose first `u32` is the flag.
    pub flag: usize,
    /// Evaluate the gate after every `every` steps (at least 1).
    pub every: usize,
}

/// [`StopCheck::decide`]: reads a status (and whether it is the run's first) and says
/// whether to stop.
pub type Decide = Arc<dyn Fn(&[u8], bool) -> Result<bool> + Send + Sync>;

/// [`StopCheck::exhausted`]: judges the last status once every step ran.
pub type Exhausted = Arc<dyn Fn(&[u8], usize) -> Result<()> + Send + Sync>;

/// When to stop a loop early: `launches` write a status into scratch slot `status.0`,
/// whose first `status.1` bytes the backend reads back after the steps `after` names.
#[derive(Clone)]
pub struct StopCheck {
    /// Launches that write the status.
    pub launches: Vec<Launch>,
    /// The scratch slot holding the status, and how many of its bytes to read.
    pub status: (usize, u64),
    /// Whether to check after the `k`-th step run (counting from 0).
    pub after: Arc<dyn Fn(usize) -> bool + Send + Sync>,
    /// Reads a status: `Ok(true)` stops the loop, an error ends the run with it. The flag
    /// is true for the first status of a run.
    pub decide: Decide,
    /// Called with the last status when every step ran without a stop, and the number of
    /// steps run: an error (say, not converged) ends the run with it.
    pub exhausted: Exhausted,
}

impl fmt::Debug for StopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopCheck")
            .field("launches", &self.launches)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
