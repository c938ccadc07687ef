//! The vector-Jacobian product of a node: each op's rule lives with the op (its
//! [`KernelOp::vjp`](crate::kernel::KernelOp::vjp); a custom op's is its backward); this file
//! routes to it and holds the rules of the structural ops. A rule gets the cotangents of
//! the node's outputs and returns one optional gradient per input (`None`: no gradient
//! flows there, e.g. into indices, masks, or integer values).

use crate::{Graph, Node, Op, Result, Tensor, Value};

pub(super) fn vjp(
    g: &Graph,
    node: &Node,
    id: usize,
    outs: &[Option<Tensor>],
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let none = || vec![None; node.inputs.len()];
    if let Op::Kernel(op) = &node.op {
        let cx = crate::kernel::VjpCx {
            graph: g,
            inputs: node.inputs.iter().map(|v| g.tensor(*v)).collect(),
            outputs: (0..node.outputs.len())
                .map(|slot| g.tensor(Value { node: id, slot }))
                .collect(),
            cotangents: outs,
            needs,
        };
        return op.vjp(&cx);
    }
    let Some(gy) = outs[0] else {
        return Ok(none());
    };
    let grads = match &node.op {
        Op::Input { .. } | Op::Constant(_) | Op::Parameter { .. } | Op::Detach => none(),
        Op::Reshape => vec![Some(g.reshape(gy, g.shape(g.tensor(node.inputs[0]))?)?)],
        Op::Kernel(_) => unreachable!("handled above"),
    };
    Ok(grads)
}
