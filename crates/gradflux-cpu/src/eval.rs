//! One node at a time: routes an op to its kernel. Shapes and dtypes are read from the node
//! (the builder already derived and checked them) instead of being recomputed here, so the
//! kernels cannot drift from what the graph promised.

use gradflux_core::{Error, Node, Op, Result, TensorData};

use gradflux_core::ops::layout::cpu as layout;

use crate::BACKEND_NAME;

/// Computes every output of `node` (slot order) from its input values. `Input` nodes are
/// bound by the executable, not here.
pub(crate) fn eval_node(node: &Node, inputs: &[&TensorData]) -> Result<Vec<TensorData>> {
    let out = node.ty();
    let arg = |i: usize| {
        inputs.get(i).copied().ok_or_else(|| {
            Error::Graph(format!(
                "`{}` node has {} inputs, expected at least {}",
                node.op.name(),
                inputs.len(),
                i + 1
            ))
        })
    };
    let value = match &node.op {
        Op::Input { name } | Op::Parameter { name, .. } => {
            return Err(Error::Unsupported {
                backend: BACKEND_NAME.to_string(),
                what: format!(
                    "evaluating `{name}` as an op (inputs and parameters are bound per run)"
                ),
            })
        }
        Op::Constant(data) => TensorData::clone(data),
        Op::Reshape => layout::reshape(arg(0)?, out)?,
        Op::Detach => arg(0)?.clone(),
        Op::Kernel(op) => return op.eval_cpu(inputs, &node.outputs),
    };
    Ok(vec![value])
}
