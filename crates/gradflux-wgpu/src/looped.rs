//! Running a node's [`LoopPlan`]: the steps are encoded on the host one after the other in
//! the order of the plan's schedule. Before each step whose launches read the step index,
//! the index is copied in from a table on the device. Where the plan has a stop check, the
//! status it writes is read back as one small buffer at the steps the check asks for, and
//! the check decides whether the loop stops; without one there is no readback and the whole
//! schedule is encoded at once. Where it has a gate, the bodies dispatch indirectly from
//! arguments the gate rewrites on the device. The runner knows nothing of the op.

use std::collections::HashMap;

use gradflux_core::kernel::shaders::LOOP_GATE;
use gradflux_core::kernel::{
    Bind, KernelSource, Launch, LoopPlan, Schedule, StopCheck, Workgroups,
};
use gradflux_core::{Error, Result, Value};
use wgpu::util::DeviceExt;

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

/// The device-side gate: the launches that write its flag then the kernel that turns the
/// flag into the bodies' indirect arguments, and the full counts the arguments start from.
struct Gate {
    steps: Vec<Step>,
    every: usize,
    counts: wgpu::Buffer,
    args: wgpu::Buffer,
}

/// The step index the bodies bind, and the table of indices it is copied from.
struct StepIndex {
    current: wgpu::Buffer,
    table: wgpu::Buffer,
}

/// Bytes of one dispatch's indirect arguments (three `u32` workgroup counts).
const ARGS_BYTES: u64 = 12;

/// One compiled loop.
pub(crate) struct LoopStage {
    setup: Vec<Step>,
    /// The step bodies (empty launches left out).
    bodies: Vec<Vec<Step>>,
    schedule: Schedule,
    check: Option<Check>,
    gate: Option<Gate>,
    step_index: Option<StepIndex>,
    finish: Vec<Step>,
    /// Holds the step count written by the host, and the output it is copied to.
    steps_out: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

/// What building one plan's steps needs.
struct Builder<'a> {
    ctx: &'a Context,
    buffer_of: &'a dyn Fn(&Value) -> wgpu::Buffer,
    scratch: HashMap<usize, wgpu::Buffer>,
    max_wg: u32,
    op: &'static str,
}

impl Builder<'_> {
    /// The non-empty launches as steps; `step_index` is what [`Bind::Step`] names (none
    /// outside the bodies and what runs after them).
    fn steps(&self, launches: Vec<Launch>, step_index: Option<&wgpu::Buffer>) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        for launch in launches {
            let (ctx, op) = (self.ctx, self.op);
            let scratch = &self.scratch;
            steps.extend(make_step(
                ctx,
                launch,
                self.buffer_of,
                scratch,
                step_index,
                self.max_wg,
                op,
            )?);
        }
        Ok(steps)
    }

    fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    fn check(&self, mut c: StopCheck, step_index: Option<&wgpu::Buffer>) -> Result<Check> {
        let (slot, bytes) = c.status;
        let op = self.op;
        let status = self.scratch.get(&slot).cloned().ok_or_else(|| {
            Error::Graph(format!(
                "`{op}`'s stop check reads scratch slot {slot}, which no launch names"
            ))
        })?;
        Ok(Check {
            // The launches become steps; the check keeps its decisions.
            steps: self.steps(std::mem::take(&mut c.launches), step_index)?,
            status,
            staging: self.buffer(
                "loop status readback",
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            plan: c,
        })
    }

    /// Makes every body step dispatch indirectly from one argument buffer, and the gate
    /// that rewrites it. `None` (every step dispatched) when no body has work.
    fn gate(
        &self,
        gate: gradflux_core::kernel::Gate,
        bodies: &mut [Vec<Step>],
        step_index: Option<&wgpu::Buffer>,
    ) -> Result<Option<Gate>> {
        let op = self.op;
        let flag = self.scratch.get(&gate.flag).cloned().ok_or_else(|| {
            Error::Graph(format!(
                "`{op}`'s loop gate reads scratch slot {}, which no launch names",
                gate.flag
            ))
        })?;
        let counts: Vec<u32> = bodies.iter().flatten().flat_map(|s| s.workgroups).collect();
        if counts.is_empty() {
            return Ok(None);
        }
        let device = &self.ctx.device;
        let counts_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("loop gate counts"),
            contents: bytemuck::cast_slice(&counts),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        });
        let args = self.buffer(
            "loop gate arguments",
            counts.len() as u64 * 4,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::INDIRECT
                | wgpu::BufferUsages::COPY_DST,
        );
        for (i, step) in bodies.iter_mut().flatten().enumerate() {
            step.indirect = Some((args.clone(), i as u64 * ARGS_BYTES));
        }
        let mut steps = self.steps(gate.launches, step_index)?;
        let own = HashMap::from([(0, flag), (1, counts_buffer.clone()), (2, args.clone())]);
        let rewrite = Launch {
            kernel: KernelSource {
                label: "loop gate".into(),
                source: LOOP_GATE.source.into(),
                entry_point: "main".into(),
                constants: vec![("WG", 64.0)],
                read_only: vec![true, true, false, true],
            },
            binds: vec![Bind::Scratch(0), Bind::Scratch(1), Bind::Scratch(2)],
            scratch: vec![],
            info: vec![counts.len() as u32],
            workgroups: Workgroups::Linear((counts.len() as u64).div_ceil(64)),
        };
        steps.extend(make_step(
            self.ctx,
            rewrite,
            self.buffer_of,
            &own,
            None,
            self.max_wg,
            op,
        )?);
        Ok(Some(Gate {
            steps,
            every: gate.every,
            counts: counts_buffer,
            args,
        }))
    }
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
        plan.validate(op)?;
        let check_launches = plan.check.iter().flat_map(|c| &c.launches);
        let gate_launches = plan.gate.iter().flat_map(|g| &g.launches);
        let all: Vec<Launch> = plan
            .setup
            .iter()
            .chain(plan.bodies.iter().flatten())
            .chain(check_launches)
            .chain(gate_launches)
            .chain(&plan.finish)
            .cloned()
            .collect();
        let scratch = scratch_buffers(ctx, &all, op)?;
        let scratch_bytes = scratch.values().map(wgpu::Buffer::size).sum();
        let b = Builder {
            ctx,
            buffer_of,
            scratch,
            max_wg,
            op,
        };
        let reads_step = all.iter().any(|l| l.binds.contains(&Bind::Step));
        let step_index = match plan.schedule.last_index() {
            Some(last) if reads_step => {
                let table: Vec<u32> = (0..=last as u32).collect();
                Some(StepIndex {
                    current: b.buffer(
                        "loop step index",
                        16,
                        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    ),
                    table: ctx
                        .device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("loop step indices"),
                            contents: bytemuck::cast_slice(&table),
                            usage: wgpu::BufferUsages::COPY_SRC,
                        }),
                })
            }
            _ => None,
        };
        let current = step_index.as_ref().map(|s| &s.current);
        let mut bodies: Vec<Vec<Step>> = plan
            .bodies
            .into_iter()
            .map(|body| b.steps(body, current))
            .collect::<Result<_>>()?;
        let gate = match plan.gate {
            // Without indirect dispatch every step runs: the op promises that a body run
            // after its gate closes changes nothing.
            Some(gate) if ctx.indirect.load(std::sync::atomic::Ordering::Relaxed) => {
                b.gate(gate, &mut bodies, current)?
            }
            _ => None,
        };
        let check = plan.check.map(|c| b.check(c, current)).transpose()?;
        let steps_out = plan.steps_out.map(|v| {
            let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
            (b.buffer("loop step count", 4, usage), buffer_of(&v))
        });
        let stage = LoopStage {
            setup: b.steps(plan.setup, None)?,
            bodies,
            schedule: plan.schedule,
            check,
            gate,
            step_index,
            finish: b.steps(plan.finish, None)?,
            steps_out,
        };
        Ok((stage, scratch_bytes))
    }

    /// Every dispatch of the full schedule (all steps, the check once, then the finish),
    /// as timing records it.
    pub fn schedule(&self) -> impl Iterator<Item = &Step> {
        let steps = self
            .schedule
            .steps(self.bodies.len())
            .flat_map(|(_, b)| self.bodies[b].iter());
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
        if let Some(gate) = &self.gate {
            // Open the gate: every body starts with its full counts.
            rec.copy(&gate.counts, &gate.args, gate.args.size());
        }
        let mut ran = 0;
        let mut last: Option<Vec<u8>> = None;
        let mut first = true;
        let mut stopped = false;
        for (k, (t, body)) in self.schedule.steps(self.bodies.len()).enumerate() {
            if let Some(index) = &self.step_index {
                rec.copy_from(&index.table, 4 * t as u64, &index.current, 4);
            }
            for s in &self.bodies[body] {
                rec.dispatch(s);
            }
            ran = k + 1;
            if let Some(gate) = self.gate.as_ref().filter(|g| ran.is_multiple_of(g.every)) {
                for s in &gate.steps {
                    rec.dispatch(s);
                }
            }
            last = None;
            if let Some(check) = self.check.as_ref().filter(|c| (c.plan.after)(k)) {
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
