//! Differentiable physics: a rollout of many steps as one op, memory-bounded by
//! checkpoints, deterministic (every sum in a fixed order, no float atomics), with its
//! backward as a loop of per-substep adjoint kernels in reverse. The first system is the
//! mass-spring system ([`MassSpring`]).

mod build;
mod cpu_mpm;
mod cpu_mpm3;
mod cpu_spring;
mod kernels;
mod mpm;
mod mpm_rollout;
mod real;
mod rollout;
mod spring;
mod wgsl;
mod wgsl_mpm;

use std::sync::Arc;

use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{KernelOp, LowerCx, Lowering, VjpCx};
use crate::{Result, Tensor, TensorData, TensorType};

pub use build::{RolloutStates, SpringValues};
pub use cpu_mpm::{polar, polar_adjoint};
pub use mpm::{Mpm, MpmMaterial};
pub use mpm_rollout::{MpmRollout, MpmRolloutGrad};
pub use rollout::RolloutOptions;
pub use spring::{GroundContact, Lattice, MassSpring, SpringForm, WallFriction};

shader!(MASS_SPRING, "physics/mass_spring.wgsl");
shader!(MPM, "physics/mpm.wgsl");
shader!(MPM3, "physics/mpm3.wgsl");
shader!(MPM_ATOMIC, "physics/mpm_atomic.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[MASS_SPRING, MPM, MPM3, MPM_ATOMIC];

/// A mass-spring rollout. Inputs: `x0, v0 [N, D]`, rest lengths, stiffnesses, dampings
/// `[S]`, and the controls `[steps, actuators]` when the system has actuators. Outputs: the
/// observed positions and velocities `[K, N, D]`, then the checkpoints `[C, N, 6]` (for
/// the backward: each particle's position then velocity, padded to 3 components).
#[derive(Debug)]
pub struct SpringRollout {
    /// The system (validated).
    pub system: Arc<MassSpring>,
    /// The rollout's options (validated).
    pub options: RolloutOptions,
}

/// The backward of [`SpringRollout`]. Inputs: rest lengths, stiffnesses, dampings, the
/// controls if any, the checkpoints and the cotangents of the two observed outputs. Outputs: the cotangents of `x0`, `v0`, rest lengths, stiffnesses, dampings
/// and the controls if any.
#[derive(Debug)]
pub struct SpringRolloutGrad {
    /// The system.
    pub system: Arc<MassSpring>,
    /// The forward's options.
    pub options: RolloutOptions,
}

impl KernelOp for SpringRollout {
    fn name(&self) -> &'static str {
        "mass_spring_rollout"
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
        let mut inputs = cx.inputs[2..].to_vec();
        inputs.extend([cx.outputs[2], cot(0)?, cot(1)?]);
        let types: Vec<TensorType> =
            cx.inputs.iter().map(|&t| g.ty(t)).collect::<Result<_>>()?;
        let op = SpringRolloutGrad {
            system: self.system.clone(),
            options: self.options.clone(),
        };
        let grads = g.kernel_op(op, &inputs, types)?;
        Ok(grads.into_iter().map(Some).collect())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (s, o) = (&self.system, &self.options);
        rollout::by_dtype(
            &outputs[0],
            || rollout::forward::<f32>(s, o, inputs, outputs),
            || rollout::forward::<f64>(s, o, inputs, outputs),
        )
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        wgsl::forward(&self.system, &self.options, cx)
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(wgsl::loop_trips(&self.system, &self.options))
    }
}

impl KernelOp for SpringRolloutGrad {
    fn name(&self) -> &'static str {
        "mass_spring_rollout_grad"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (s, o) = (&self.system, &self.options);
        rollout::by_dtype(
            &outputs[0],
            || rollout::backward::<f32>(s, o, inputs, outputs),
            || rollout::backward::<f64>(s, o, inputs, outputs),
        )
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        wgsl::backward(&self.system, &self.options, cx)
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(wgsl::loop_trips(&self.system, &self.options))
    }
}
