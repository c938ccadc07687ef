//! Checkpointing for ops that roll a state forward over many steps: which states the
//! forward keeps, and the backward schedule that restores each segment from its checkpoint,
//! recomputes it, and runs the per-step adjoint in reverse. Memory and work trade off
//! through one interval k: ⌈T/k⌉ checkpoints plus a segment of k states.

use crate::{Error, Result};

use super::looped::Run;

/// How a rollout of T steps keeps its states for the backward pass.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Checkpoint {
    /// A checkpoint every ⌈√T⌉ steps: O(√T) states stored, each step recomputed once.
    #[default]
    Sqrt,
    /// A checkpoint every k steps (k ≥ 1).
    Every(usize),
    /// Every state (k = 1): the most memory, nothing recomputed.
    All,
}

impl Checkpoint {
    /// The interval k between checkpoints for a rollout of `steps` steps (at least 1).
    pub fn interval(self, steps: usize) -> Result<usize> {
        match self {
            Checkpoint::Sqrt => {
                Ok(steps.isqrt() + usize::from(steps.isqrt().pow(2) < steps)).map(|k| k.max(1))
            }
            Checkpoint::All => Ok(1),
            Checkpoint::Every(0) => Err(Error::InvalidValue {
                op: "checkpoint",
                detail: "Checkpoint::Every(0): the interval must be at least 1 step".into(),
            }),
            Checkpoint::Every(k) => Ok(k),
        }
    }

    /// How many states the forward keeps: those before steps 0, k, 2k, … (< `steps`).
    pub fn count(self, steps: usize) -> Result<usize> {
        Ok(steps.div_ceil(self.interval(steps)?))
    }

    /// The backward schedule over `steps` steps, segment by segment from the last. For the
    /// segment of steps `s..e`: body `restore` once at step `s` (the checkpoint becomes the
    /// segment's first state), body `recompute` at steps `s..e − 1` (state `t + 1` from
    /// state `t`), then body `adjoint` at steps `e − 1` down to `s`. Every interval gives
    /// the adjoint the same states in the same order, so gradients do not depend on it.
    pub fn reverse_runs(
        self,
        steps: usize,
        [restore, recompute, adjoint]: [usize; 3],
    ) -> Result<Vec<Run>> {
        let k = self.interval(steps)?;
        let mut runs = Vec::new();
        for segment in (0..steps.div_ceil(k)).rev() {
            let (s, e) = (segment * k, ((segment + 1) * k).min(steps));
            runs.push(Run::forward(restore, s, s + 1));
            if e - s > 1 {
                runs.push(Run::forward(recompute, s, e - 1));
            }
            runs.push(Run::backward(adjoint, s, e));
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Schedule;

    #[test]
    fn sqrt_interval_is_the_ceiling_of_the_root() {
        let k = |t| Checkpoint::Sqrt.interval(t).unwrap();
        assert_eq!(
            [k(0), k(1), k(2), k(4), k(5), k(100), k(101)],
            [1, 1, 2, 2, 3, 10, 11]
        );
        assert_eq!(Checkpoint::Sqrt.count(10_000).unwrap(), 100);
        assert!(Checkpoint::Every(0).interval(5).is_err());
    }

    #[test]
    fn reverse_runs_visit_every_step_once_in_reverse_after_its_segment_is_rebuilt() {
        for every in [Checkpoint::All, Checkpoint::Every(3), Checkpoint::Sqrt] {
            let runs = every.reverse_runs(10, [0, 1, 2]).unwrap();
            let steps: Vec<_> = Schedule::Runs(runs).steps(3).collect();
            let adjoint: Vec<usize> = steps.iter().filter(|s| s.1 == 2).map(|s| s.0).collect();
            assert_eq!(adjoint, (0..10).rev().collect::<Vec<_>>(), "{every:?}");
            // Before the adjoint of step t runs, its segment was restored at its start and
            // recomputed up to t.
            let k = every.interval(10).unwrap();
            for (i, &(t, body)) in steps.iter().enumerate() {
                if body == 2 {
                    let start = t / k * k;
                    let restored = steps[..i].iter().rposition(|&s| s == (start, 0)).unwrap();
                    let rebuilt: Vec<usize> = steps[restored..i]
                        .iter()
                        .filter(|s| s.1 == 1)
                        .map(|s| s.0)
                        .collect();
                    assert!(
                        (start..t).all(|u| rebuilt.contains(&u)),
                        "{every:?} step {t}"
                    );
                }
            }
        }
    }
}
