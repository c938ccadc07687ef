//! Matrix products: `matmul` (numpy rules, batched with broadcast batches) and the fused
//! linear layer `act(x·w + bias)`, one op, [`MatMulSpec`]. Builder methods in `build.rs`,
//! the CPU reference in `cpu.rs`. The WGSL is generated and its tile configuration picked
//! per adapter (timed where tuning is on), so the lowering is the backend's
//! [`MatmulPlanner`](crate::kernel::MatmulPlanner): in gradflux-wgpu, `src/matmul/`.

mod build;
pub mod cpu;

use crate::kernel::{arg, KernelOp, LowerCx, Lowering, VjpCx};
use crate::{Activation, Error, MatMulSpec, Result, Tensor, TensorData, TensorType};

/// No shader files: the kernels are generated.
pub const SHADERS: &[crate::kernel::shaders::ShaderFile] = &[];

/// `act(op(a) x op(b) + bias)`: `[..., m, k] x [..., k, n]` with broadcast batch
/// dimensions, where `op` transposes the last two axes of an operand when its flag is set.
/// Inputs are `a`, `b`, then `bias` when [`MatMulSpec::bias`] is set.
impl KernelOp for MatMulSpec {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, y) = (cx.graph, cx.outputs[0]);
        let dtype = g.dtype(y)?;
        let c = |v: f64| g.scalar(v, dtype);
        // The activation's derivative is written in terms of its output, which the fused
        // kernel keeps; the pre-activation product is never stored.
        let gz = match self.activation {
            Activation::Identity => gy,
            Activation::Relu => g.mul(gy, g.cast(g.gt(y, c(0.0)?)?, dtype)?)?,
            Activation::Sigmoid => g.mul(gy, g.mul(y, g.sub(c(1.0)?, y)?)?)?,
            Activation::Tanh => g.mul(gy, g.sub(c(1.0)?, g.mul(y, y)?)?)?,
        };
        let (a, b) = (cx.inputs[0], cx.inputs[1]);
        let (ta, tb) = (self.transpose_a, self.transpose_b);
        // With C = op(a)·op(b): dop(a) = dC·op(b)ᵀ and dop(b) = op(a)ᵀ·dC, each written in
        // the operand's stored layout so no transpose is materialised.
        let ga = || {
            let d = if ta {
                g.matmul_t(b, tb, gz, true)?
            } else {
                g.matmul_t(gz, false, b, !tb)?
            };
            g.sum_to(d, &g.shape(a)?)
        };
        let gb = || {
            let d = if tb {
                g.matmul_t(gz, true, a, ta)?
            } else {
                g.matmul_t(a, !ta, gz, false)?
            };
            g.sum_to(d, &g.shape(b)?)
        };
        let mut grads = vec![
            cx.needs[0].then(ga).transpose()?,
            cx.needs[1].then(gb).transpose()?,
        ];
        if self.bias {
            let bias = cx.inputs[2];
            grads.push(
                cx.needs[2]
                    .then(|| g.sum_to(gz, &g.shape(bias)?))
                    .transpose()?,
            );
        }
        Ok(grads)
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg("matmul", inputs, k);
        let bias = if self.bias { Some(x(2)?) } else { None };
        Ok(vec![cpu::matmul(*self, x(0)?, x(1)?, bias, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let planner = cx.matmul.ok_or_else(|| Error::Unsupported {
            backend: "this backend".into(),
            what: "matmul: no matmul planner was given to the lowering".into(),
        })?;
        Ok(planner.launches(self, cx)?.into())
    }

    // The planner bounds its own loops: f32 products split k past the budget, the others
    // are refused with a limit error.
    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        None
    }

    fn wgpu_f16(&self) -> bool {
        true
    }
}
