//! Encoding a run's commands: dispatches (consecutive ones share a compute pass) and buffer
//! copies, submitted in order, split into several submissions past
//! [`MAX_DISPATCHES_PER_SUBMIT`] and wherever a loop must read a value back.

use crate::device::Context;

/// Dispatches encoded per submission; past it a run is split into several submissions so
/// no single one runs long enough to trip a driver watchdog.
pub const MAX_DISPATCHES_PER_SUBMIT: usize = 2048;

/// One dispatch, ready to encode.
pub(crate) struct Step {
    pub pipeline: std::sync::Arc<crate::pipelines::CachedPipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Where a gated loop body reads its workgroup counts at run time (a buffer of
    /// indirect arguments and the byte offset of this dispatch's three words).
    pub indirect: Option<(wgpu::Buffer, u64)>,
}

impl Step {
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        match &self.indirect {
            Some((args, offset)) => pass.dispatch_workgroups_indirect(args, *offset),
            None => {
                let [x, y, z] = self.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }

    /// Records the dispatch with its full workgroup counts, gated or not (for timing,
    /// which measures the whole schedule).
    pub fn record_full(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

enum Command<'a> {
    Dispatch(&'a Step),
    Copy {
        src: &'a wgpu::Buffer,
        src_offset: u64,
        dst: &'a wgpu::Buffer,
        bytes: u64,
    },
}

/// Commands waiting to be submitted.
pub(crate) struct Recorder<'a> {
    ctx: &'a Context,
    commands: Vec<Command<'a>>,
    dispatches: usize,
}

impl<'a> Recorder<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Recorder {
            ctx,
            commands: vec![],
            dispatches: 0,
        }
    }

    pub fn context(&self) -> &'a Context {
        self.ctx
    }

    pub fn dispatch(&mut self, step: &'a Step) {
        self.commands.push(Command::Dispatch(step));
        self.dispatches += 1;
        if self.dispatches >= MAX_DISPATCHES_PER_SUBMIT {
            self.submit();
        }
    }

    /// Copies the first `bytes` of `src` to `dst` (both rounded up to whole words).
    pub fn copy(&mut self, src: &'a wgpu::Buffer, dst: &'a wgpu::Buffer, bytes: u64) {
        self.copy_from(src, 0, dst, bytes);
    }

    /// Copies `bytes` of `src` from byte `src_offset` (a whole word) to the start of `dst`.
    pub fn copy_from(
        &mut self,
        src: &'a wgpu::Buffer,
        src_offset: u64,
        dst: &'a wgpu::Buffer,
        bytes: u64,
    ) {
        if bytes > 0 {
            self.commands.push(Command::Copy {
                src,
                src_offset,
                dst,
                bytes: bytes.div_ceil(4) * 4,
            });
        }
    }

    /// Encodes and submits everything recorded so far (an empty submission if nothing).
    pub fn submit(&mut self) {
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gradflux run"),
            });
        let mut commands = std::mem::take(&mut self.commands).into_iter().peekable();
        while let Some(c) = commands.next() {
            match c {
                Command::Copy {
                    src,
                    src_offset,
                    dst,
                    bytes,
                } => {
                    enc.copy_buffer_to_buffer(src, src_offset, dst, 0, bytes);
                }
                Command::Dispatch(first) => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                    first.record(&mut pass);
                    while let Some(Command::Dispatch(s)) = commands.peek() {
                        s.record(&mut pass);
                        commands.next();
                    }
                }
            }
        }
        self.ctx.queue.submit([enc.finish()]);
        self.dispatches = 0;
    }
}
