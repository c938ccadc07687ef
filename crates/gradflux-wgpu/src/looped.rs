//! Running a node's [`LoopPlan`]: the steps are encoded on the host one after the other;
//! where the plan has a stop check, the status it writes is read back as one small buffer
//! at the steps the check asks for, and the check decides whether the loop stops. Without
//! one there is no readback: the whole schedule is encoded at once. The runner knows
//! nothing of the op that made the plan.

use std::collections::HashMap;

use gradflux_core::kernel::{Launch, LoopPlan, StopCheck};
use gradflux_core::{Error, Result, Value};

use crate::device::Context;
use crate::executable::{make_step, scratch_buffers};
use crate::readback::read_mapped;
use crate::recorder::{Recorder, Step};

/// The stop check with its pipelines and the buffers its status travels through.
struct Check {
    steps: Vec<Step>,
    plan: StopCheck,
    status: wgpu::Buffer,
    staging: wgpu::Buffer,
}

/// One compiled loop.
pub(crate) struct LoopStage {
    setup: Vec<Step>,
    /// The step bodies (empty launches left out).
    bodies: Vec<Vec<Step>>,
    steps: usize,
    check: Option<Check>,
    finish: Vec<Step>,
    /// Holds the step count written by the host, and the output it is copied to.
    steps_out: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

impl LoopStage {
    /// Makes the plan's pipelines, bind groups and buffers; also returns the bytes of its
    /// scratch buffers. `op` names the node in errors.
    pub fn build(
        ctx: &Context,
        plan: LoopPlan,
        buffer_of: &dyn Fn(&Value) -> wgpu::Buffer,
        max_wg: u32,
        op: &'static str,
    ) -> Result<(LoopStage, u64)> {
        let check_launches = plan.check.as_ref().map(|c| c.launches.clone());
        let all: Vec<Launch> = plan
            .setup
            .iter()
            .chain(plan.bodies.iter().flatten())
            .chain(check_launches.iter().flatten())
            .chain(&plan.finish)
            .cloned()
            .collect();
        let scratch: HashMap<usize, wgpu::Buffer> = scratch_buffers(ctx, &all, op)?;
        let scratch_bytes = scratch.values().map(wgpu::Buffer::size).sum();
        // A launch with no work (an empty batch) is left out.
        let steps = |launches: Vec<Launch>| -> Result<Vec<Step>> {
            let mut steps = Vec::new();
            for launch in launches {
                steps.extend(make_step(ctx, launch, buffer_of, &scratch, max_wg, op)?);
            }
            Ok(steps)
        };
        let buffer = |label, size, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let check = match plan.check {
            None => None,
            Some(mut c) => {
                let (slot, bytes) = c.status;
                let status = scratch.get(&slot).cloned().ok_or_else(|| {
                    Error::Graph(format!(
                        "`{op}`'s stop check reads scratch slot {slot}, which no launch names"
                    ))
                })?;
                Some(Check {
                    // The launches become steps; the check keeps its decisions.
                    steps: steps(std::mem::take(&mut c.launches))?,
                    status,
                    staging: buffer(
                        "loop status readback",
                        bytes,
                        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    ),
                    plan: c,
                })
            }
        };
        let steps_out = plan.steps_out.map(|v| {
            let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
            (buffer("loop step count", 4, usage), buffer_of(&v))
        });
        let stage = LoopStage {
            setup: steps(plan.setup)?,
            bodies: plan.bodies.into_iter().map(steps).collect::<Result<_>>()?,
            steps: plan.steps,
            check,
            finish: steps(plan.finish)?,
            steps_out,
        };
        Ok((stage, scratch_bytes))
    }

    fn body(&self, t: usize) -> &[Step] {
        match self.bodies.len() {
            0 => &[],
            n => &self.bodies[t.min(n - 1)],
        }
    }

    /// Every dispatch of the full schedule (all steps, the check once, then the finish),
    /// as timing records it.
    pub fn schedule(&self) -> impl Iterator<Item = &Step> {
        let steps = (0..self.steps).flat_map(|t| self.body(t).iter());
        let check = self.check.iter().flat_map(|c| c.steps.iter());
        self.setup
            .iter()
            .chain(steps)
            .chain(check)
            .chain(&self.finish)
    }

    /// Records the loop into `rec`, submitting and reading the status back at each check.
    pub fn run<'a>(&'a self, rec: &mut Recorder<'a>) -> Result<()> {
        for s in &self.setup {
            rec.dispatch(s);
        }
        let mut ran = 0;
        let mut last: Option<Vec<u8>> = None;
        let mut first = true;
        let mut stopped = false;
        for t in 0..self.steps {
            for s in self.body(t) {
                rec.dispatch(s);
            }
            ran = t + 1;
            last = None;
            if let Some(check) = self.check.as_ref().filter(|c| (c.plan.after)(t)) {
                let status = self.measure(check, rec)?;
                let stop = (check.plan.decide)(&status, first)?;
                first = false;
                last = Some(status);
                if stop {
                    stopped = true;
                    break;
                }
            }
        }
        if let (Some(check), false) = (&self.check, stopped) {
            let status = match last {
                Some(status) => status,
                None => {
                    let status = self.measure(check, rec)?;
                    (check.plan.decide)(&status, first)?;
                    status
                }
            };
            (check.plan.exhausted)(&status, ran)?;
        }
        for s in &self.finish {
            rec.dispatch(s);
        }
        if let Some((src, out)) = &self.steps_out {
            // Written before the next submission, which is the one holding the copy.
            rec.context()
                .queue
                .write_buffer(src, 0, &(ran as u32).to_le_bytes());
            rec.copy(src, out, 4);
        }
        Ok(())
    }

    /// Runs the check, submits it with the copy of the status, and reads the status back.
    fn measure<'a>(&'a self, check: &'a Check, rec: &mut Recorder<'a>) -> Result<Vec<u8>> {
        for s in &check.steps {
            rec.dispatch(s);
        }
        rec.copy(&check.status, &check.staging, check.staging.size());
        rec.submit();
        read_mapped(
            &rec.context().device,
            &check.staging,
            "reading a loop's status",
        )
    }
}
