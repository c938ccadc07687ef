//! A [`CustomOp`] is a [`KernelOp`] like the built-in ops: its CPU closure is the
//! reference, its one WGSL entry point the lowering, and its backward (another custom op)
//! the vector-Jacobian product. Nothing in a backend knows custom ops apart.

use crate::kernel::Workgroups;
use crate::kernel::{values, Bind, KernelOp, KernelSource, Launch, LowerCx, Lowering, VjpCx};
use crate::{CustomOp, Dispatch, Error, Result, Tensor, TensorData, TensorType};

impl KernelOp for CustomOp {
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Runs the op's backward on (inputs, outputs, cotangents); outputs without a
    /// cotangent get zeros, and inputs that are not floats get no gradient.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let bw = self.backward.as_ref().ok_or_else(|| Error::Unsupported {
            backend: "autodiff".into(),
            what: format!(
                "custom op `{}` has no backward, so no gradient flows through it; give it one \
                 with `.backward(...)`",
                self.name
            ),
        })?;
        let mut args = cx.inputs.clone();
        args.extend(&cx.outputs);
        for (o, ct) in cx.outputs.iter().zip(cx.cotangents) {
            args.push(match ct {
                Some(t) => *t,
                None => cx.graph.zeros_like(*o)?,
            });
        }
        let grads = cx.graph.custom(bw, &args)?;
        Ok(grads
            .into_iter()
            .zip(&self.inputs)
            .map(|(t, ty)| ty.dtype.is_float().then_some(t))
            .collect())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], _: &[TensorType]) -> Result<Vec<TensorData>> {
        self.run_cpu(inputs)
    }

    /// The one entry point, bound by the convention of [`CustomOp`]: inputs, then outputs.
    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let k = self.wgsl.as_ref().ok_or_else(|| Error::Unsupported {
            backend: "wgpu".into(),
            what: format!(
                "custom op `{}` has no WGSL kernel; give it one with `.wgsl(...)` or run it \
                 on the CPU backend",
                self.name
            ),
        })?;
        let n_out = cx.output_types.len();
        let mut read_only = vec![true; cx.inputs.len()];
        read_only.extend(vec![false; n_out]);
        let mut binds = values(cx.inputs.iter().copied());
        binds.extend((0..n_out).map(|slot| Bind::Value(cx.output(slot))));
        let workgroups = match k.dispatch {
            Dispatch::Workgroups(w) => Workgroups::Fixed(w),
            Dispatch::Threads {
                threads,
                workgroup_size,
            } => Workgroups::Linear(threads.div_ceil(workgroup_size as u64)),
        };
        Ok(vec![Launch {
            kernel: KernelSource {
                label: format!("custom:{}", self.name),
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
        .into())
    }

    /// Unknown: a user kernel's loops are its own.
    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        None
    }
}
