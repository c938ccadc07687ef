//! `Graph::mass_spring_rollout`: the shape and dtype rules of a rollout.

use std::sync::Arc;

use super::{MassSpring, RolloutOptions, SpringRollout};
use crate::{DType, Error, Graph, Op, Result, Tensor, TensorType};

/// The observed states of a rollout.
#[derive(Copy, Clone, Debug)]
pub struct RolloutStates {
    /// Positions `[K, N, D]` after each observed step.
    pub positions: Tensor,
    /// Velocities `[K, N, D]` after each observed step.
    pub velocities: Tensor,
}

/// A spring's per-spring values, as tensors `[S]`.
#[derive(Copy, Clone, Debug)]
pub struct SpringValues {
    /// Rest lengths.
    pub rest: Tensor,
    /// Stiffnesses (`k`).
    pub stiffness: Tensor,
    /// Dampings along the spring (`c`; unused by `SpringForm::DiffTaichi`).
    pub damping: Tensor,
}

impl Graph {
    /// Rolls a mass-spring system forward `options.steps` steps from positions `x0` and
    /// velocities `v0` (`[N, D]`), with the springs' values `springs` (`[S]` each) and, when
    /// the system has actuators, `controls` `[steps, actuators]` (one row per step). Returns
    /// the states after the observed steps. One node: on a GPU every substep is recorded
    /// into one submission with nothing read back until the end, when a status says whether
    /// the state stayed finite (if not, the run fails naming the first step that was not).
    /// Gradients flow to `x0`, `v0`, every spring value and the controls; the backward
    /// recomputes each checkpointed segment, so memory is O(√(steps·substeps)) states with
    /// the default `Checkpoint::Sqrt`, and the gradients do not depend on the checkpoint
    /// interval. The formulas of a substep are documented on [`MassSpring`].
    ///
    /// ```
    /// use gradflux_core::{DType, Graph, MassSpring, RolloutOptions, SpringValues, TensorData};
    /// // Two particles on a spring, the first pinned.
    /// let mut system = MassSpring::new(2, 2, vec![[0, 1]], 1e-3);
    /// system.inv_mass[0] = 0.0;
    /// let g = Graph::new();
    /// let x0 = g.input("x0", [2, 2], DType::F32)?;
    /// let v0 = g.input("v0", [2, 2], DType::F32)?;
    /// let springs = SpringValues {
    ///     rest: g.input("rest", [1], DType::F32)?,
    ///     stiffness: g.input("k", [1], DType::F32)?,
    ///     damping: g.input("c", [1], DType::F32)?,
    /// };
    /// let out = g.mass_spring_rollout(&system, x0, v0, springs, None, RolloutOptions::new(100))?;
    /// let loss = g.sum_all(out.positions)?;
    /// let grads = g.grad(loss, &[x0, springs.stiffness])?;
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn mass_spring_rollout(
        &self,
        system: &MassSpring,
        x0: Tensor,
        v0: Tensor,
        springs: SpringValues,
        controls: Option<Tensor>,
        options: RolloutOptions,
    ) -> Result<RolloutStates> {
        const OP: &str = "mass_spring_rollout";
        system.validate()?;
        options.validate(OP)?;
        let mut operands = vec![
            ("x0", x0),
            ("v0", v0),
            ("rest", springs.rest),
            ("stiffness", springs.stiffness),
            ("damping", springs.damping),
        ];
        operands.extend(controls.map(|c| ("controls", c)));
        self.operands(OP, &operands)?;
        let shape_err = |detail: String| Error::Shape { op: OP, detail };
        let (n, d, s, a) = (
            system.particles(),
            system.dim,
            system.springs.len(),
            system.actuators.len(),
        );
        let tx = self.ty(x0)?;
        if !matches!(tx.dtype, DType::F32 | DType::F64) {
            return Err(Error::DType {
                op: OP,
                expected: "f32 or f64".into(),
                got: tx.dtype,
            });
        }
        let want = |name: &str, t: Tensor, dims: &[usize]| -> Result<()> {
            let ty = self.ty(t)?;
            if ty.dtype != tx.dtype {
                return Err(Error::DType {
                    op: OP,
                    expected: format!("{} (the dtype of x0) for `{name}`", tx.dtype),
                    got: ty.dtype,
                });
            }
            if ty.shape.dims() != dims {
                return Err(shape_err(format!(
                    "`{name}` is {}, expected {dims:?} for a system of {n} particles in {d}D, \
                     {s} springs, {a} actuators and {} steps",
                    ty.shape, options.steps
                )));
            }
            Ok(())
        };
        want("x0", x0, &[n, d])?;
        want("v0", v0, &[n, d])?;
        want("rest", springs.rest, &[s])?;
        want("stiffness", springs.stiffness, &[s])?;
        want("damping", springs.damping, &[s])?;
        let mut inputs = vec![x0, v0, springs.rest, springs.stiffness, springs.damping];
        match (controls, a) {
            (None, 0) => {}
            (Some(c), a) if a > 0 => {
                want("controls", c, &[options.steps, a])?;
                inputs.push(c);
            }
            (None, a) => {
                return Err(shape_err(format!(
                    "the system has {a} actuators, so `controls` [{}, {a}] is required",
                    options.steps
                )))
            }
            (Some(_), _) => {
                return Err(shape_err(
                    "`controls` given, but the system has no actuators".into(),
                ))
            }
        }
        let k = options.observe.len();
        let c = options.checkpoint.count(options.substeps_total())?;
        let ty = |lead: usize| TensorType::new([lead, n, d], tx.dtype);
        // The checkpoints, each particle's position then velocity padded to 3 components.
        let checkpoints = TensorType::new([c, n, 6], tx.dtype);
        let op = SpringRollout {
            system: Arc::new(system.clone()),
            options,
        };
        let outs = self.push(
            Op::Kernel(Arc::new(op)),
            &inputs,
            vec![ty(k), ty(k), checkpoints],
        )?;
        Ok(RolloutStates {
            positions: outs[0],
            velocities: outs[1],
        })
    }
}
