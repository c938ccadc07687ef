//! Copying a device buffer back to the host, for the few reads outside an executable's
//! own output path (parameters, kernel self-checks).

use gradflux_core::{Error, Result};

/// The first `bytes` bytes of `buf` (which needs `COPY_SRC`), waiting for the queue.
/// `what` names the read in errors.
pub(crate) fn read_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buf: &wgpu::Buffer,
    bytes: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let size = bytes.max(4).div_ceil(4) * 4;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(what),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(what) });
    if bytes > 0 {
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
    }
    queue.submit([enc.finish()]);
    let out = read_mapped(device, &staging, what)?;
    Ok(out[..bytes as usize].to_vec())
}

/// The contents of a `MAP_READ` buffer once the queue has finished with it; `what` names
/// the read in errors.
pub(crate) fn read_mapped(
    device: &wgpu::Device,
    staging: &wgpu::Buffer,
    what: &str,
) -> Result<Vec<u8>> {
    crate::block::may_block(what)?;
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    let fail = |e: &dyn std::fmt::Display| Error::Device(format!("{what}: {e}"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| fail(&e))?;
    rx.recv().map_err(|e| fail(&e))?.map_err(|e| fail(&e))?;
    let out = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| fail(&e))?
        .to_vec();
    staging.unmap();
    Ok(out)
}
