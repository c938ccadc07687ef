//! Runs that read an app's own `wgpu::Buffer`s and write into others, on a device the app
//! shares with gradflux ([`WgpuDevice::from_wgpu`](crate::WgpuDevice::from_wgpu)): the
//! data never crosses to the host.

use gradflux_core::{Error, Result, Tensor, TensorType};

use crate::executable::WgpuExecutable;
use crate::recorder::Recorder;

/// Bytes a buffer-to-buffer copy of `ty` moves (copies are whole words).
fn copy_bytes(ty: &TensorType) -> u64 {
    ty.size_bytes().div_ceil(4) * 4
}

/// Checks that `buf` can take part in a copy of `ty` as `role` (with `usage`, named
/// `usage_name`).
fn check_buffer(
    buf: &wgpu::Buffer,
    ty: &TensorType,
    (usage, usage_name): (wgpu::BufferUsages, &str),
    role: &str,
) -> Result<()> {
    let bytes = copy_bytes(ty);
    if buf.size() < bytes {
        return Err(Error::Graph(format!(
            "{role} is a buffer of {} bytes; {ty} needs {bytes}",
            buf.size()
        )));
    }
    if !buf.usage().contains(usage) {
        return Err(Error::Graph(format!(
            "{role} lacks BufferUsages::{usage_name} (it has {:?}); create it with that usage",
            buf.usage()
        )));
    }
    Ok(())
}

impl WgpuExecutable {
    /// Runs once with every input read from an app's buffer and the chosen outputs
    /// written into the app's buffers, recorded after whatever the app submitted to the
    /// queue before and before whatever it submits after: an app's compute pass can fill
    /// the inputs and consume the outputs with no map and no host copy in between. Each
    /// buffer is copied on the device (one `copy_buffer_to_buffer` each way); nothing is
    /// read back, and the call returns once the work is submitted.
    ///
    /// `inputs` must name every input of the graph once, by the handle
    /// [`Graph::input`](gradflux_core::Graph::input) returned, each in a buffer with
    /// `COPY_SRC` and room for the tensor; `outputs` name any of the tensors given to
    /// `compile`, each into a buffer with `COPY_DST`. The data is the tensor's elements in
    /// row-major order, as `TensorData` holds them. The executable must come from a
    /// [`WgpuDevice`](crate::WgpuDevice) on the app's device
    /// ([`WgpuDevice::from_wgpu`](crate::WgpuDevice::from_wgpu)): buffers of another device
    /// are a validation error.
    pub fn run_on_buffers(
        &mut self,
        inputs: &[(Tensor, &wgpu::Buffer)],
        outputs: &[(Tensor, &wgpu::Buffer)],
    ) -> Result<()> {
        self.ctx.check_health()?;
        self.release_abandoned_mappings();
        let names = || {
            let names: Vec<&str> = self.plan.inputs.iter().map(|p| p.name.as_str()).collect();
            names.join(", ")
        };
        let mut sources: Vec<Option<&wgpu::Buffer>> = vec![None; self.plan.inputs.len()];
        for (t, buf) in inputs {
            let i = self
                .plan
                .inputs
                .iter()
                .position(|p| p.value == t.value())
                .ok_or_else(|| {
                    Error::Graph(format!(
                        "tensor %{} is not an input this executable binds (its inputs: {})",
                        t.value().node,
                        names()
                    ))
                })?;
            let p = &self.plan.inputs[i];
            if sources[i].replace(buf).is_some() {
                return Err(Error::Graph(format!("input `{}` is given twice", p.name)));
            }
            let role = format!("the buffer for input `{}`", p.name);
            check_buffer(
                buf,
                &p.ty,
                (wgpu::BufferUsages::COPY_SRC, "COPY_SRC"),
                &role,
            )?;
        }
        if let Some(i) = sources.iter().position(Option::is_none) {
            let p = &self.plan.inputs[i];
            return Err(Error::MissingInput {
                name: p.name.clone(),
                shape: p.ty.shape.clone(),
                dtype: p.ty.dtype,
            });
        }
        let mut targets = Vec::with_capacity(outputs.len());
        for (t, buf) in outputs {
            let k = self
                .plan
                .outputs
                .iter()
                .position(|&v| v == t.value())
                .ok_or_else(|| {
                    Error::Graph(format!(
                        "tensor %{} is not an output of this executable; pass it to `compile`",
                        t.value().node
                    ))
                })?;
            let ty = &self.outputs[k].ty;
            let role = format!("the buffer for output {k}");
            check_buffer(buf, ty, (wgpu::BufferUsages::COPY_DST, "COPY_DST"), &role)?;
            targets.push((k, *buf));
        }
        let scope = crate::block::push(&self.ctx.device, wgpu::ErrorFilter::Validation);
        let mut rec = Recorder::new(&self.ctx);
        for ((src, dst), p) in sources
            .iter()
            .zip(&self.input_buffers)
            .zip(&self.plan.inputs)
        {
            let src = src.expect("every input is bound");
            rec.copy(src, dst, copy_bytes(&p.ty));
        }
        let ran = self.record_stages(&mut rec);
        for &(k, dst) in &targets {
            let o = &self.outputs[k];
            rec.copy(&o.home, dst, copy_bytes(&o.ty));
        }
        self.record_updates(&mut rec);
        rec.submit();
        if let Some(e) = scope.pop() {
            return Err(Error::Device(format!("running graph on app buffers: {e}")));
        }
        ran
    }
}
