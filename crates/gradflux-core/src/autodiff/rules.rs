//! The vector-Jacobian product of a node: each op's rule lives with the op (its
//! [`KernelOp::vjp`](crate::kernel::KernelOp::vjp), or a custom op's backward); this file
//! routes to it and holds the rules of the structural ops. A rule gets the cotangents of
//! the node's outputs and returns one optional gradient per input (`None`: no gradient
//! flows there, e.g. into indices, masks, or integer values).

use crate::{Error, Graph, Node, Op, Result, Tensor, Value};

pub(super) fn vjp(
    g: &Graph,
    node: &Node,
    id: usize,
    outs: &[Option<Tensor>],
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let none = || vec![None; node.inputs.len()];
    if let Op::Custom(op) = &node.op {
        return custom(g, op, node, id, outs);
    }
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
        Op::Custom(_) | Op::Kernel(_) => unreachable!("handled above"),
    };
    Ok(grads)
}

/// Runs the op's backward on (inputs, outputs, cotangents); outputs without a cotangent
/// get zeros.
fn custom(
    g: &Graph,
    op: &crate::CustomOp,
    node: &Node,
    id: usize,
    outs: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let bw = op.backward.as_ref().ok_or_else(|| Error::Unsupported {
        backend: "autodiff".into(),
        what: format!(
            "custom op `{}` has no backward, so no gradient flows through it; give it one \
             with `.backward(...)`",
            op.name
        ),
    })?;
    let mut args: Vec<Tensor> = node.inputs.iter().map(|v| g.tensor(*v)).collect();
    let outputs: Vec<Tensor> = (0..node.outputs.len())
        .map(|slot| g.tensor(Value { node: id, slot }))
        .collect();
    args.extend(&outputs);
    for (o, ct) in outputs.iter().zip(outs) {
        args.push(match ct {
            Some(t) => *t,
            None => g.zeros_like(*o)?,
        });
    }
    let grads = g.custom(bw, &args)?;
    Ok(grads
        .into_iter()
        .zip(&op.inputs)
        .map(|(t, ty)| ty.dtype.is_float().then_some(t))
        .collect())
}
