//! Running `Op::Sinkhorn`'s loop: the iterations are encoded on the host one after the
//! other, a check of the marginal error every `check_every` iterations is read back as one
//! small buffer, and the loop stops at the tolerance or at the iteration limit. With no
//! tolerance there is no readback: the whole schedule is encoded at once.

use std::collections::HashMap;

use gradflux_core::{
    not_converged, within_tolerance, Error, Result, SinkhornSpec, TensorType, Value,
};

use crate::device::Context;
use crate::executable::{make_step, scratch_buffers};
use crate::launch::{point_sizes, Launch};
use crate::readback::read_mapped;
use crate::recorder::{Recorder, Step};
use gradflux_core::ops::ot::wgsl_sinkhorn::{loop_launches, status_bytes, STATUS};

/// One compiled `Op::Sinkhorn` node.
pub(crate) struct SinkhornLoop {
    prep: Vec<Step>,
    /// Each ε level's row and column half-steps (none for an empty batch).
    levels: Vec<Vec<Step>>,
    check: Vec<Step>,
    spec: SinkhornSpec,
    batch: usize,
    /// The scratch `[largest error, then Σa, Σb, bad per problem]`, and where a check
    /// copies it to be read.
    status: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Holds the iteration count written by the host, copied into `iterations_out`.
    iterations_src: wgpu::Buffer,
    iterations_out: wgpu::Buffer,
}

impl SinkhornLoop {
    /// Plans node `id` and makes its pipelines, bind groups and buffers; also returns the
    /// bytes of its scratch buffers.
    pub fn build(
        ctx: &Context,
        (spec, inputs, id): (&SinkhornSpec, &[Value], usize),
        types: &dyn Fn(&Value) -> TensorType,
        buffer_of: &dyn Fn(&Value) -> wgpu::Buffer,
        max_wg: u32,
    ) -> Result<(SinkhornLoop, u64)> {
        let device = &ctx.device;
        let first = types(&inputs[0]);
        let sizes = match spec.points {
            Some(_) => point_sizes(&first, &types(&inputs[1])),
            None => {
                let (batch, n, m) = crate::launch::matrix_sizes(&first);
                (batch, n, m, 0)
            }
        };
        let l = loop_launches(spec, inputs, id, first.dtype, sizes, ctx.loop_limit())?;
        let all: Vec<Launch> = l
            .prep
            .iter()
            .chain(l.levels.iter().flatten())
            .chain(&l.check)
            .cloned()
            .collect();
        let scratch: HashMap<usize, wgpu::Buffer> = scratch_buffers(ctx, &all, "sinkhorn")?;
        let scratch_bytes = scratch.values().map(wgpu::Buffer::size).sum();
        // A launch with no work (an empty batch) is left out.
        let steps = |launches: Vec<Launch>| -> Result<Vec<Step>> {
            let mut steps = Vec::new();
            for launch in launches {
                steps.extend(make_step(
                    ctx, launch, buffer_of, &scratch, max_wg, "sinkhorn",
                )?);
            }
            Ok(steps)
        };
        let levels = l
            .levels
            .into_iter()
            .map(steps)
            .collect::<Result<Vec<_>>>()?;
        let buffer = |label, size, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let batch = sizes.0;
        let looped = SinkhornLoop {
            prep: steps(l.prep)?,
            levels,
            check: steps(l.check)?,
            spec: *spec,
            batch,
            status: scratch[&STATUS].clone(),
            staging: buffer(
                "sinkhorn status readback",
                status_bytes(batch),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            iterations_src: buffer(
                "sinkhorn iterations",
                4,
                wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            ),
            iterations_out: buffer_of(&Value { node: id, slot: 3 }),
        };
        Ok((looped, scratch_bytes))
    }

    fn level(&self, t: usize) -> &[Step] {
        &self.levels[t.min(self.levels.len() - 1)]
    }

    /// Every dispatch of the full schedule (all `max_iterations`, then the check), as
    /// timing records it.
    pub fn schedule(&self) -> impl Iterator<Item = &Step> {
        let iterations = (0..self.spec.max_iterations).flat_map(|t| self.level(t).iter());
        self.prep.iter().chain(iterations).chain(&self.check)
    }

    /// Records the loop into `rec`, submitting and reading the error back at each check
    /// when there is a tolerance.
    pub fn run<'a>(&'a self, rec: &mut Recorder<'a>) -> Result<()> {
        let spec = &self.spec;
        for s in &self.prep {
            rec.dispatch(s);
        }
        let mut iterations = 0;
        let mut weights_checked = false;
        let mut last_error = None;
        for t in 0..spec.max_iterations {
            for s in self.level(t) {
                rec.dispatch(s);
            }
            iterations = t + 1;
            last_error = None;
            if spec.checks_after(t) {
                let error = self.measure(rec, &mut weights_checked)?;
                last_error = Some(error);
                if within_tolerance(&[error], spec.tolerance) {
                    break;
                }
            }
        }
        match (spec.tolerance, last_error) {
            // No tolerance: the error output is still written, with no readback.
            (None, _) => self.check.iter().for_each(|s| rec.dispatch(s)),
            (Some(tolerance), last) => {
                let error = match last {
                    Some(e) => e,
                    None => self.measure(rec, &mut weights_checked)?,
                };
                if !within_tolerance(&[error], spec.tolerance) {
                    return Err(not_converged(iterations, error, tolerance));
                }
            }
        }
        let queue = &rec.context().queue;
        // Written before the next submission, which is the one holding the copy.
        queue.write_buffer(&self.iterations_src, 0, &(iterations as u32).to_le_bytes());
        rec.copy(&self.iterations_src, &self.iterations_out, 4);
        Ok(())
    }

    /// Runs the check, submits it with the copy of the status, and reads the largest error
    /// back (checking the weights the first time).
    fn measure<'a>(&'a self, rec: &mut Recorder<'a>, weights_checked: &mut bool) -> Result<f64> {
        for s in &self.check {
            rec.dispatch(s);
        }
        rec.copy(&self.status, &self.staging, status_bytes(self.batch));
        rec.submit();
        let raw = read_mapped(
            &rec.context().device,
            &self.staging,
            "reading sinkhorn's error",
        )?;
        let status: Vec<f32> = bytemuck::pod_collect_to_vec(&raw);
        if !*weights_checked {
            *weights_checked = true;
            for (p, m) in status[1..].chunks_exact(3).enumerate() {
                check_problem(&self.spec, p, m)?;
            }
        }
        Ok(status[0] as f64)
    }
}

/// The weight check of problem `p` from its `[Σa, Σb, bad]`.
fn check_problem(spec: &SinkhornSpec, p: usize, m: &[f32]) -> Result<()> {
    let bad = m[2] as u32;
    for (bit, side) in [(1, "a"), (2, "b")] {
        if bad & bit != 0 {
            return Err(Error::InvalidValue {
                op: "sinkhorn",
                detail: format!(
                    "problem {p}: {side} holds a negative or non-finite weight; weights must be \
                     finite and non-negative"
                ),
            });
        }
    }
    spec.check_masses(p, m[0] as f64, m[1] as f64)
}
