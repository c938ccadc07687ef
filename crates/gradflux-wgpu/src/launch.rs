//! Turns one graph node into what computes it: its op's own lowering (a family module in
//! `gradflux_core::ops`, a custom op, or any other `KernelOp`), given this backend's matmul
//! planner; nothing for the structural ops, whose values alias their inputs' storage or
//! are bound per run.

use gradflux_core::kernel::{LowerCx, Lowering, MatmulPlanner};
use gradflux_core::{MatMulSpec, Node, Op, Result, TensorType, Value};

pub use gradflux_core::kernel::launch::*;

use crate::matmul::{self, Chooser, Operands};

/// What computes `node` (node id `id`): launches, or the loop its op owns; `ty` gives the
/// type of any value. `choose` picks the tile configuration of matmuls; `loop_limit` is
/// the device's budget of loop iterations per invocation (`WgpuDevice::loop_limit`), which
/// long walks are split to stay within; `float_atomics` whether the device adds floats
/// atomically.
pub fn lower(
    node: &Node,
    id: usize,
    ty: &dyn Fn(Value) -> TensorType,
    choose: &Chooser,
    (loop_limit, float_atomics): (Option<u64>, bool),
) -> Result<Lowering> {
    let Op::Kernel(op) = &node.op else {
        return Ok(Lowering::Launches(vec![]));
    };
    let ins: Vec<TensorType> = node.inputs.iter().map(|v| ty(*v)).collect();
    op.lower(&LowerCx {
        node: id,
        inputs: &node.inputs,
        input_types: &ins,
        output_types: &node.outputs,
        loop_limit,
        matmul: Some(&Planner { choose }),
        float_atomics,
    })
}

/// This backend's matmul planner: the tuner's choice of kernel and tiles for the adapter.
struct Planner<'a, 'c> {
    choose: &'a Chooser<'c>,
}

impl MatmulPlanner for Planner<'_, '_> {
    fn launches(&self, spec: &MatMulSpec, cx: &LowerCx<'_>) -> Result<Vec<Launch>> {
        let (ins, out) = (cx.input_types, &cx.output_types[0]);
        matmul::launch(
            spec,
            Operands {
                a: (cx.inputs[0], &ins[0]),
                b: (cx.inputs[1], &ins[1]),
                bias: spec.bias.then(|| (cx.inputs[2], &ins[2])),
                out: (cx.output(0), out),
            },
            self.choose,
            cx.loop_limit,
        )
    }
}
