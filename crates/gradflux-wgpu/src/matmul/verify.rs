//! A self-check that two matmul plans compute the same thing on this adapter, run before
//! a cooperative-matrix kernel is first trusted: the cooperative path rests on an
//! experimental wgpu feature and on drivers' matrix units, so each (dtype, layout, tiling)
//! is compared once against the portable kernel before any graph uses it.
//!
//! The operands hold small integers (-2..=2), so every product and every partial sum is
//! exact in f32 and the result exact in f16: any correct kernel gives identical bytes, in
//! whatever order it sums. The problem is one block plus one tile in m and n, so the edge
//! handling (clamped tiles that are not stored) is exercised too.

use gradflux_core::{DType, Error, MatMulSpec, Result, Shape};
use wgpu::util::DeviceExt;

use super::{info, Plan, Problem};
use crate::device::Context;
use crate::pipelines::bind_buffers;
use crate::readback::read_buffer;

/// Operand values: small integers in a pattern with no short period.
fn operand(dtype: DType, len: usize, seed: usize) -> Vec<u8> {
    let value = |i: usize| ((i * 7 + seed * 3 + i / 5) % 5) as f32 - 2.0;
    match dtype {
        DType::F16 => (0..len)
            .flat_map(|i| gradflux_core::half::f16::from_f32(value(i)).to_le_bytes())
            .collect(),
        DType::F32 => (0..len).flat_map(|i| value(i).to_le_bytes()).collect(),
        DType::I32 => (0..len)
            .flat_map(|i| (value(i) as i32).to_le_bytes())
            .collect(),
        // Non-negative for unsigned storage.
        _ => (0..len)
            .flat_map(|i| ((value(i) + 2.0) as u32).to_le_bytes())
            .collect(),
    }
}

/// The result bytes of `plan` on `q` with the fixed operands.
fn run(ctx: &Context, q: &Problem, plan: &Plan) -> Result<Vec<u8>> {
    let device = &ctx.device;
    let elem = q.dtype.size_bytes();
    let storage = |label: &str, contents: &[u8]| {
        let mut padded = contents.to_vec();
        padded.resize(contents.len().max(4).div_ceil(4) * 4, 0);
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &padded,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        })
    };
    let a = storage("check a", &operand(q.dtype, q.m * q.k, 1));
    let b = storage("check b", &operand(q.dtype, q.k * q.n, 2));
    let c = storage("check c", &vec![0u8; q.m * q.n * elem]);
    let words = info(q, plan.tiles(q), &Shape(vec![]), [&[], &[], &[]], [0, 0]);
    let info_buf = storage("check info", bytemuck::cast_slice(&words));
    let pipeline = ctx
        .pipelines
        .get(device, &plan.kernel(q, &MatMulSpec::default()))?;
    let bind_group = bind_buffers(
        device,
        "matmul check",
        &pipeline.layout,
        &[&a, &b, &c, &info_buf],
    );
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("matmul check"),
    });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul check"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(plan.workgroups(q) as u32, 1, 1);
    }
    ctx.queue.submit([enc.finish()]);
    read_buffer(
        device,
        &ctx.queue,
        &c,
        (q.m * q.n * elem) as u64,
        &format!("matmul check of {plan}"),
    )
}

/// Whether `candidate` gives the same bytes as `reference` on a small problem with `p`'s
/// dtype and layout, sized for `block` (the candidate's output rows and columns per
/// workgroup) and `step` (a size every dimension must be a multiple of). `Err` carries
/// why not: a different result, or a kernel the adapter refused.
pub(crate) fn plans_agree(
    ctx: &Context,
    p: &Problem,
    (block_m, block_n, step): (usize, usize, usize),
    reference: &Plan,
    candidate: &Plan,
) -> Result<()> {
    let q = Problem {
        m: block_m + step,
        n: block_n + step,
        k: 3 * step,
        batches: 1,
        ..*p
    };
    let scope = crate::block::push(&ctx.device, wgpu::ErrorFilter::Validation);
    let results = (|| Ok((run(ctx, &q, reference)?, run(ctx, &q, candidate)?)))();
    if let Some(e) = scope.pop() {
        return Err(Error::Device(format!("{candidate} was refused: {e}")));
    }
    let (want, got) = results?;
    if want != got {
        let elem = q.dtype.size_bytes();
        let first = want
            .chunks(elem)
            .zip(got.chunks(elem))
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        return Err(Error::Device(format!(
            "{candidate} disagrees with {reference} on a {}x{}x{} {} product \
             (first at row {}, column {})",
            q.m,
            q.n,
            q.k,
            q.dtype,
            first / q.n,
            first % q.n
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::TileConfig;
    use crate::WgpuDevice;

    /// No adapter in CI fails; elsewhere the check is skipped with a warning.
    fn device() -> Option<WgpuDevice> {
        match WgpuDevice::best() {
            Ok(d) => Some(d),
            Err(e) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(!ci, "CI=true but no wgpu adapter was found: {e}");
                eprintln!("WARNING: no wgpu adapter ({e}); the matmul self-check is NOT tested");
                None
            }
        }
    }

    /// The premise of the check: correct kernels that sum in different orders give the
    /// same bytes on the integer-valued operands, for every storage type and layout.
    #[test]
    fn differently_blocked_kernels_agree_exactly() {
        let Some(d) = device() else { return };
        let ctx = &d.ctx;
        let f16 = ctx.device.features().contains(wgpu::Features::SHADER_F16);
        let big = Plan::Tiled(TileConfig::new(8, 8, 16, 16, 8));
        let small = Plan::Tiled(TileConfig::new(4, 4, 8, 8, 16));
        for dtype in [DType::F32, DType::F16, DType::I32, DType::U32] {
            if dtype == DType::F16 && !f16 {
                continue;
            }
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let p = Problem {
                    dtype,
                    m: 0,
                    n: 0,
                    k: 0,
                    batches: 1,
                    transpose_a: ta,
                    transpose_b: tb,
                };
                plans_agree(ctx, &p, (32, 64, 16), &big, &small)
                    .unwrap_or_else(|e| panic!("{dtype} t{ta}{tb}: {e}"));
            }
        }
    }

    /// A candidate the adapter cannot build is reported, not trusted: here a
    /// cooperative kernel on a device opened without matrix units.
    #[test]
    fn a_refused_candidate_fails_the_check() {
        let Some(d) = device() else { return };
        if d.ctx
            .device
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        {
            eprintln!("this adapter has matrix units; the refusal is not exercised here");
            return;
        }
        let p = Problem {
            dtype: DType::F32,
            m: 0,
            n: 0,
            k: 0,
            batches: 1,
            transpose_a: false,
            transpose_b: false,
        };
        let ok = Plan::Tiled(TileConfig::new(4, 4, 8, 8, 16));
        let coop = Plan::Coop(crate::matmul::CoopTile {
            size: 16,
            rm: 2,
            rn: 2,
            subgroup: 32,
        });
        let err = plans_agree(&d.ctx, &p, (32, 32, 16), &ok, &coop).unwrap_err();
        assert!(err.to_string().contains("coop16/2x2/sg32"), "{err}");
    }
}
