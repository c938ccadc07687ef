//! Turns one graph node into what computes it: a family op's own lowering (its module in
//! `gradflux_core::ops`), given this backend's matmul planner; a user kernel's one launch;
//! nothing for the structural ops, whose values alias their inputs' storage or are bound
//! per run.

use gradflux_core::kernel::{LowerCx, Lowering, MatmulPlanner};
use gradflux_core::{Dispatch, Error, MatMulSpec, Node, Op, Result, TensorType, Value};

pub use gradflux_core::kernel::launch::*;

use crate::matmul::{self, Chooser, Operands};

/// What computes `node` (node id `id`): launches, or the loop its op owns; `ty` gives the
/// type of any value. `choose` picks the tile configuration of matmuls; `loop_limit` is
/// the device's budget of loop iterations per invocation (`WgpuDevice::loop_limit`), which
/// long walks are split to stay within.
pub fn lower(
    node: &Node,
    id: usize,
    ty: &dyn Fn(Value) -> TensorType,
    choose: &Chooser,
    loop_limit: Option<u64>,
) -> Result<Lowering> {
    let ins: Vec<TensorType> = node.inputs.iter().map(|v| ty(*v)).collect();
    let l = match &node.op {
        Op::Input { .. } | Op::Constant(_) | Op::Parameter { .. } | Op::Reshape | Op::Detach => {
            vec![]
        }
        Op::Kernel(op) => {
            return op.lower(&gradflux_core::kernel::LowerCx {
                node: id,
                inputs: &node.inputs,
                input_types: &ins,
                output_types: &node.outputs,
                loop_limit,
                matmul: Some(&Planner { choose }),
            })
        }
        Op::Custom(op) => {
            let k = op.wgsl.as_ref().ok_or_else(|| Error::Unsupported {
                backend: "wgpu".into(),
                what: format!(
                    "custom op `{}` has no WGSL kernel; give it one with `.wgsl(...)` or run it \
                     on the CPU backend",
                    op.name
                ),
            })?;
            let n_in = node.inputs.len();
            let n_out = node.outputs.len();
            let mut read_only = vec![true; n_in];
            read_only.extend(vec![false; n_out]);
            let mut binds = values(node.inputs.iter().copied());
            binds.extend((0..n_out).map(|slot| Bind::Value(Value { node: id, slot })));
            let workgroups = match k.dispatch {
                Dispatch::Workgroups(w) => Workgroups::Fixed(w),
                Dispatch::Threads {
                    threads,
                    workgroup_size,
                } => Workgroups::Linear(threads.div_ceil(workgroup_size as u64)),
            };
            vec![Launch {
                kernel: KernelSource {
                    label: format!("custom:{}", op.name),
                    source: k.source.clone(),
                    entry_point: k.entry_point.clone(),
                    constants: vec![],
                    read_only,
                },
                binds,
                scratch: vec![],
                info: vec![],
                workgroups,
            }]
        }
    };
    Ok(l.into())
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
