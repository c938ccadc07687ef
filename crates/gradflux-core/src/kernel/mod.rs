//! Ops as modules: the [`KernelOp`] trait holds everything gradflux knows about an op —
//! its name, its vector-Jacobian product, its CPU reference, its WGSL lowering and the
//! bound of its kernels' loops — so a new op family is a folder under `src/ops/` (and one
//! under `shaders/`) plus one registration line, and no backend has to learn its name.
//!
//! Backends are executors: the CPU backend calls [`KernelOp::eval_cpu`], the wgpu backend
//! runs the [`Launch`]es of [`KernelOp::lower`]. The node's output types were fixed by the
//! builder method that added the op (shape and dtype rules live there, beside the op), so
//! neither half re-derives them.

pub mod checkpoint;
pub mod launch;
#[doc(hidden)]
pub mod loop_trips;
#[doc(hidden)]
pub mod loop_trips_families;
pub mod looped;
pub mod shaders;

use std::fmt;

use crate::{Graph, Result, Tensor, TensorData, TensorType, Value};

pub use checkpoint::Checkpoint;
pub use launch::{values, Bind, KernelSource, Launch, Workgroups};
pub use looped::{Gate, LoopPlan, Lowering, Run, Schedule, StopCheck};

/// One op of a family living in its own module. Implementations are plain values (the op's
/// attributes); a node holds one as [`Op::Kernel`](crate::Op::Kernel).
pub trait KernelOp: std::any::Any + fmt::Debug + Send + Sync {
    /// A short name for messages, kernel labels and profiles (`cumsum`).
    fn name(&self) -> &'static str;

    /// One optional gradient per input, from the cotangents of the node's outputs, built
    /// as ordinary graph nodes (so gradients run on every backend).
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>>;

    /// The CPU reference: the outputs (types as in `outputs`) from the inputs. This is the
    /// definition of the op that every other lowering is tested against.
    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>>;

    /// The WGSL lowering: the launches that compute the node, in order, or the loop the
    /// op owns.
    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering>;

    /// The most loop iterations one invocation of any of the node's launches runs, which
    /// the wgpu backend holds against the adapter's loop limit (software drivers stop long
    /// loops silently). `limit` is that budget: a lowering that splits long walks to stay
    /// within it returns the split's bound. `None` where it cannot be known.
    fn loop_trips(&self, inputs: &[TensorType], outputs: &[TensorType], limit: u64) -> Option<u64>;

    /// Whether the WGSL lowering handles `f16` values (on adapters with `SHADER_F16`);
    /// the wgpu backend refuses an `f16` node of any other op with an error naming it.
    fn wgpu_f16(&self) -> bool {
        false
    }
}

/// What [`KernelOp::vjp`] is given.
pub struct VjpCx<'a> {
    /// The graph the gradient nodes are added to.
    pub graph: &'a Graph,
    /// The node's inputs and outputs, as handles of `graph`.
    pub inputs: Vec<Tensor>,
    /// See `inputs`.
    pub outputs: Vec<Tensor>,
    /// The cotangent of each output; `None` where no gradient reaches it.
    pub cotangents: &'a [Option<Tensor>],
    /// Which inputs need a gradient (the others may return `None` to save work).
    pub needs: &'a [bool],
}

impl VjpCx<'_> {
    /// No gradient for any input (integer outputs, no cotangent, a second derivative not
    /// provided).
    pub fn none(&self) -> Vec<Option<Tensor>> {
        vec![None; self.inputs.len()]
    }
}

/// What [`KernelOp::lower`] is given: the node's values and types, and the adapter's
/// loop budget.
pub struct LowerCx<'a> {
    /// The node's id (its outputs are `Value { node, slot }`).
    pub node: usize,
    /// The values the node reads, in order.
    pub inputs: &'a [Value],
    /// Their types.
    pub input_types: &'a [TensorType],
    /// The types of the node's outputs (fixed by the builder that added it).
    pub output_types: &'a [TensorType],
    /// Loop iterations one invocation may run on this adapter (`None`: no limit known);
    /// long walks split to stay within it.
    pub loop_limit: Option<u64>,
    /// The backend's matmul planner, for ops whose products it tunes.
    pub matmul: Option<&'a dyn MatmulPlanner>,
    /// Whether the adapter adds floats atomically (`SHADER_FLOAT32_ATOMIC`), for ops with
    /// an opt-in atomic path.
    pub float_atomics: bool,
}

/// A backend's matrix-product planner: it picks a kernel and tile configuration for its
/// adapter (timing candidates where tuning is on) and plans the launches of one product
/// (split-k where a long inner dimension would pass the loop budget).
pub trait MatmulPlanner {
    /// The launches of the [`MatMulSpec`](crate::MatMulSpec) node described by `cx`.
    fn launches(&self, spec: &crate::MatMulSpec, cx: &LowerCx<'_>) -> Result<Vec<Launch>>;
}

impl LowerCx<'_> {
    /// The value of output `slot`.
    pub fn output(&self, slot: usize) -> Value {
        Value {
            node: self.node,
            slot,
        }
    }
}

/// Loop iterations Mesa's llvmpipe (lavapipe) lets one shader invocation run in total,
/// measured; past it the invocation stops silently.
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// Input `k` of a node being evaluated, or an error naming the op when the node has
/// fewer (a malformed graph, never user input).
pub fn arg<'a>(op: &str, inputs: &[&'a TensorData], k: usize) -> Result<&'a TensorData> {
    inputs.get(k).copied().ok_or_else(|| {
        crate::Error::Graph(format!(
            "`{op}` node has {} inputs, expected at least {}",
            inputs.len(),
            k + 1
        ))
    })
}

/// An op family: its name (the same word in `src/ops/`, `shaders/`, the parity test and
/// the bench) and the WGSL files it ships, which the shader registry and the offline
/// validation pick up from here.
#[derive(Copy, Clone, Debug)]
pub struct Family {
    /// The family's word (`ot`, `select`).
    pub name: &'static str,
    /// Its kernels under `shaders/<name>/`.
    pub shaders: &'static [shaders::ShaderFile],
}

impl crate::Graph {
    /// Adds a node computing `op` on `inputs`, with outputs of the given types: the way a
    /// family module adds its ops, open to ops defined outside gradflux. The op owns its
    /// shape rule, so it must give the types its lowerings produce; `name` in messages is
    /// [`KernelOp::name`]. Prefer [`CustomOp`](crate::CustomOp) for a single user kernel:
    /// it validates the WGSL and its bindings when it is built. A `KernelOp` may instead
    /// lower to several launches or to a [`LoopPlan`].
    pub fn kernel_op(
        &self,
        op: impl KernelOp,
        inputs: &[crate::Tensor],
        outputs: Vec<TensorType>,
    ) -> Result<Vec<crate::Tensor>> {
        let name = op.name();
        for (i, t) in inputs.iter().enumerate() {
            self.operands(name, &[(&format!("input {i}"), *t)])?;
        }
        self.push(crate::Op::Kernel(std::sync::Arc::new(op)), inputs, outputs)
    }
}
