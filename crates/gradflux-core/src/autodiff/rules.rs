//! The vector-Jacobian product of every op. Each rule gets the cotangents of the node's
//! outputs and returns one optional gradient per input (`None`: no gradient flows there,
//! e.g. into indices, masks, or integer values).
//!
//! Tie rules, where the derivative does not exist: `maximum`/`minimum` split the gradient
//! evenly between equal operands; `max`/`min` reductions split it evenly among every element
//! equal to the result; `abs` and `relu` have gradient 0 at 0.

use crate::{Activation, Error, Graph, Node, Op, Result, Tensor, Value};

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
    let x = |k: usize| g.tensor(node.inputs[k]);
    let xs = |k: usize| g.shape(x(k));
    let y = g.tensor(Value { node: id, slot: 0 });
    let dtype = node.ty().dtype;
    let c = |v: f64| g.scalar(v, dtype);
    let as_dtype = |mask: Tensor| g.cast(mask, dtype);

    let grads = match &node.op {
        Op::Input { .. } | Op::Constant(_) | Op::Parameter { .. } => none(),
        Op::Reshape => vec![Some(g.reshape(gy, xs(0)?)?)],
        Op::Detach => none(),
        Op::MatMul(spec) => {
            // The activation's derivative is written in terms of its output, which the
            // fused kernel keeps; the pre-activation product is never stored.
            let gz = match spec.activation {
                Activation::Identity => gy,
                Activation::Relu => g.mul(gy, as_dtype(g.gt(y, c(0.0)?)?)?)?,
                Activation::Sigmoid => g.mul(gy, g.mul(y, g.sub(c(1.0)?, y)?)?)?,
                Activation::Tanh => g.mul(gy, g.sub(c(1.0)?, g.mul(y, y)?)?)?,
            };
            let (a, b) = (x(0), x(1));
            let (ta, tb) = (spec.transpose_a, spec.transpose_b);
            // With C = op(a)·op(b): dop(a) = dC·op(b)ᵀ and dop(b) = op(a)ᵀ·dC, each written
            // in the operand's stored layout so no transpose is materialised.
            let ga = || {
                let d = if ta {
                    g.matmul_t(b, tb, gz, true)?
                } else {
                    g.matmul_t(gz, false, b, !tb)?
                };
                g.sum_to(d, &xs(0)?)
            };
            let gb = || {
                let d = if tb {
                    g.matmul_t(gz, true, a, ta)?
                } else {
                    g.matmul_t(a, !ta, gz, false)?
                };
                g.sum_to(d, &xs(1)?)
            };
            let mut grads = vec![
                needs[0].then(ga).transpose()?,
                needs[1].then(gb).transpose()?,
            ];
            if spec.bias {
                grads.push(needs[2].then(|| g.sum_to(gz, &xs(2)?)).transpose()?);
            }
            grads
        }
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
