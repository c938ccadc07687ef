//! Timing dispatches on the device: GPU timestamps where the adapter has them (only the
//! kernels are measured), wall clock around submit-and-wait otherwise.

use gradflux_core::Result;

use crate::device::Context;

/// How a duration was measured.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `TIMESTAMP_QUERY` at the start and end of the compute pass.
    Timestamps,
    /// Host time around submission and completion (includes submission overhead).
    WallClock,
}

/// Seconds per repetition of `reps` back-to-back dispatches of one pipeline, after one
/// warm-up dispatch.
pub(crate) fn time_dispatch(
    ctx: &Context,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    workgroups: [u32; 3],
    reps: u32,
) -> Result<(f64, Clock)> {
    time_passes(ctx, reps, &|pass: &mut wgpu::ComputePass| {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    })
}

/// Seconds per repetition of what `record` encodes into a compute pass, repeated `reps`
/// times in one pass after one warm-up repetition.
pub(crate) fn time_passes(
    ctx: &Context,
    reps: u32,
    record: &dyn Fn(&mut wgpu::ComputePass),
) -> Result<(f64, Clock)> {
    // The browser has neither a blocking wait nor `Instant`.
    crate::block::may_block("timing kernels")?;
    #[cfg(not(target_arch = "wasm32"))]
    return time_passes_native(ctx, reps, record);
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (ctx, reps, record);
        unreachable!("may_block refuses timing in the browser")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn time_passes_native(
    ctx: &Context,
    reps: u32,
    record: &dyn Fn(&mut wgpu::ComputePass),
) -> Result<(f64, Clock)> {
    let device = &ctx.device;
    let encode = |timestamps: Option<wgpu::ComputePassTimestampWrites>, reps: u32| {
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("timing"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timing"),
                timestamp_writes: timestamps,
            });
            for _ in 0..reps {
                record(&mut pass);
            }
        }
        enc
    };
    let reps = reps.max(1);
    let wait = || {
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| gradflux_core::Error::Device(format!("waiting for a timing run: {e}")))
    };
    ctx.queue.submit([encode(None, 1).finish()]);
    wait()?;

    if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        let start = std::time::Instant::now();
        ctx.queue.submit([encode(None, reps).finish()]);
        wait()?;
        return Ok((
            start.elapsed().as_secs_f64() / reps as f64,
            Clock::WallClock,
        ));
    }
    let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("timing"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolve = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps readback"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = encode(
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }),
        reps,
    );
    enc.resolve_query_set(&queries, 0..2, &resolve, 0);
    enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, 16);
    ctx.queue.submit([enc.finish()]);
    readback.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    wait()?;
    let ticks: [u64; 2] = {
        let view = readback
            .slice(..)
            .get_mapped_range()
            .map_err(|e| gradflux_core::Error::Device(format!("reading timestamps: {e}")))?;
        let t: &[u64] = bytemuck::cast_slice(&view);
        [t[0], t[1]]
    };
    readback.unmap();
    let ns = ticks[1].saturating_sub(ticks[0]) as f64 * ctx.queue.get_timestamp_period() as f64;
    Ok((ns * 1e-9 / reps as f64, Clock::Timestamps))
}
