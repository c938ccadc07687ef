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

/// A loop of up to `steps` steps. The backend records `setup`, then step `t`'s body
/// (`bodies[min(t, bodies.len() − 1)]`: a schedule that changes over the first steps and
/// then settles, as ε-scaling does), and after the last step `finish`. Without a `check`
/// every step is recorded at once, with no readback; with one, the backend submits at each
/// step the check asks for, reads the status back and lets the check decide whether to
/// stop. Launches of one plan share scratch slots (one buffer per slot, sized for the
/// largest request).
#[derive(Debug)]
pub struct LoopPlan {
    pub setup: Vec<Launch>,
    pub bodies: Vec<Vec<Launch>>,
    pub steps: usize,
    pub check: Option<StopCheck>,
    pub finish: Vec<Launch>,
    /// A `u32` output that receives the number of steps run.
    pub steps_out: Option<Value>,
}

impl LoopPlan {
    /// The body step `t` runs.
    pub fn body(&self, t: usize) -> &[Launch] {
        match self.bodies.len() {
            0 => &[],
            n => &self.bodies[t.min(n - 1)],
        }
    }
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
    pub launches: Vec<Launch>,
    pub status: (usize, u64),
    /// Whether to check after step `t` (counting from 0).
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
