//! A graph compiled for one wgpu device: every buffer, pipeline and bind group is made once
//! here, so a run only uploads inputs, encodes dispatches, submits and reads outputs back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use gradflux_core::{
    bind_inputs, find_parameter, DType, Error, Executable, Graph, Home, Inputs, MemoryReport, Op,
    Plan, Result, RunFuture, Storage, Tensor, TensorData, TensorType, Value,
};
use wgpu::util::DeviceExt;

use crate::device::Context;
use crate::dispatch::split_workgroups;
use crate::launch::{lower, Bind, Launch, Workgroups, MAX_RANK};
use crate::looped::LoopStage;
use crate::recorder::{Recorder, Step};
use gradflux_core::kernel::Lowering;

/// Where a waiting `run_async` leaves its waker for the map callbacks.
type WakerSlot = Arc<Mutex<Option<std::task::Waker>>>;

/// What a run does, in order.
enum Stage {
    Dispatch(Step),
    /// An op that owns its loop.
    Loop(Box<LoopStage>),
}

pub(crate) struct Output {
    pub(crate) home: wgpu::Buffer,
    staging: wgpu::Buffer,
    pub(crate) ty: TensorType,
}

/// A parameter update: `bytes` from `source` into the parameter's buffer at the end of a run.
struct Update {
    source: wgpu::Buffer,
    parameter: usize,
    bytes: u64,
    /// Where `source` is first copied when it is itself an updated parameter (a swap or a
    /// rotation), so that no update reads a parameter another update already overwrote.
    hold: Option<wgpu::Buffer>,
}

/// A graph compiled for one wgpu device: buffers, pipelines and bind groups made once,
/// reused by every run.
pub struct WgpuExecutable {
    pub(crate) ctx: Arc<Context>,
    graph_inputs: Vec<(String, TensorType)>,
    pub(crate) plan: Plan,
    pub(crate) input_buffers: Vec<wgpu::Buffer>,
    parameter_buffers: Vec<wgpu::Buffer>,
    updates: Vec<Update>,
    stages: Vec<Stage>,
    pub(crate) outputs: Vec<Output>,
    /// Bytes of every node's scratch buffers.
    scratch_bytes: u64,
    /// Set while the output staging buffers are mapped or waiting to be: a `run_async`
    /// future dropped before it finished leaves it set, and the next run unmaps them.
    outputs_mapped: AtomicBool,
}

/// Encodes every dispatch of `stages` into a compute pass, a loop's whole schedule
/// included (as timing needs it: no readback, no early stop).
fn record(pass: &mut wgpu::ComputePass, stages: &[Stage]) {
    for stage in stages {
        match stage {
            Stage::Dispatch(s) => s.record(pass),
            Stage::Loop(l) => l.schedule().for_each(|s| s.record_full(pass)),
        }
    }
}

/// `write_buffer` takes whole 4-byte words; an f16 tensor of odd length is padded.
fn write_padded(queue: &wgpu::Queue, buf: &wgpu::Buffer, bytes: &[u8]) {
    if bytes.len().is_multiple_of(4) {
        queue.write_buffer(buf, 0, bytes);
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().div_ceil(4) * 4, 0);
        queue.write_buffer(buf, 0, &padded);
    }
}

/// The scratch buffers a node's launches name, each sized for its largest request. Bind
/// groups keep them alive for as long as the executable runs. A scratch buffer over the
/// adapter's binding or buffer limit is refused as a limit error naming `op`.
pub(crate) fn scratch_buffers(
    ctx: &Context,
    launches: &[crate::launch::Launch],
    op: &str,
) -> Result<std::collections::HashMap<usize, wgpu::Buffer>> {
    let mut sizes = std::collections::HashMap::<usize, u64>::new();
    for (slot, bytes) in launches.iter().flat_map(|l| &l.scratch) {
        let size = sizes.entry(*slot).or_default();
        *size = (*size).max(*bytes);
    }
    let limits = &ctx.summary.limits;
    let allowed = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    sizes
        .into_iter()
        .map(|(slot, bytes)| {
            if bytes > allowed {
                let limit = if bytes > limits.max_storage_buffer_binding_size {
                    "max_storage_buffer_binding_size"
                } else {
                    "max_buffer_size"
                };
                return Err(Error::Limit {
                    limit,
                    what: format!("`{op}`'s scratch buffer {slot} (bytes)"),
                    requested: bytes,
                    allowed,
                });
            }
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("scratch"),
                size: buffer_size(bytes),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            Ok((slot, buffer))
        })
        .collect()
}

/// Turns one launch into a ready dispatch (pipeline and bind group); `None` for an empty
/// one.
pub(crate) fn make_step(
    ctx: &Context,
    launch: Launch,
    buffer_of: &dyn Fn(&Value) -> wgpu::Buffer,
    scratch: &HashMap<usize, wgpu::Buffer>,
    step_index: Option<&wgpu::Buffer>,
    max_wg: u32,
    op: &'static str,
) -> Result<Option<Step>> {
    let device = &ctx.device;
    let workgroups = match launch.workgroups {
        Workgroups::Linear(0) => return Ok(None),
        Workgroups::Linear(n) => split_workgroups(n, max_wg, op)?,
        Workgroups::Fixed(w) => {
            if w.contains(&0) {
                return Ok(None);
            }
            if let Some(&big) = w.iter().find(|&&x| x > max_wg) {
                return Err(Error::Limit {
                    limit: "max_compute_workgroups_per_dimension",
                    what: format!("custom op dispatch {w:?}"),
                    requested: big as u64,
                    allowed: max_wg as u64,
                });
            }
            w
        }
    };
    let pipeline = ctx.pipelines.get(device, &launch.kernel)?;
    let mut buffers = Vec::with_capacity(launch.binds.len() + 1);
    for bind in &launch.binds {
        buffers.push(match bind {
            Bind::Value(v) => buffer_of(v),
            Bind::Scratch(slot) => scratch.get(slot).cloned().ok_or_else(|| {
                Error::Graph(format!(
                    "`{op}` {} binds scratch slot {slot}, which none of its launches sizes",
                    launch.kernel.label
                ))
            })?,
            Bind::Step => step_index.cloned().ok_or_else(|| {
                Error::Graph(format!(
                    "`{op}` {} binds the loop step index outside a loop body",
                    launch.kernel.label
                ))
            })?,
        });
    }
    if !launch.info.is_empty() {
        buffers.push(
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("info"),
                contents: bytemuck::cast_slice(&launch.info),
                usage: wgpu::BufferUsages::STORAGE,
            }),
        );
    }
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    // The label names the op, so a validation error wgpu raises at dispatch time says
    // which op it came from; one raised here is returned naming it.
    let label = format!("`{op}` {}", launch.kernel.label);
    let scope = crate::block::push(device, wgpu::ErrorFilter::Validation);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&label),
        layout: &pipeline.layout,
        entries: &entries,
    });
    if let Some(e) = scope.pop() {
        return Err(Error::Device(format!("binding the buffers of `{op}`: {e}")));
    }
    Ok(Some(Step {
        pipeline,
        bind_group,
        workgroups,
        indirect: None,
    }))
}

/// Whole words (wgpu's copy alignment), and at least one `vec4`: kernels that read an
/// operand as `vec4`s bind it whole, and a binding must hold one element of the array it
/// is viewed as, also when the tensor is empty (a `[3, 0]` matmul operand).
fn buffer_size(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(4) * 4
}

impl WgpuExecutable {
    pub(crate) fn new(ctx: Arc<Context>, graph: &Graph, outputs: &[Tensor]) -> Result<Self> {
        ctx.check_health()?;
        let plan = Plan::new(graph, outputs)?;
        check_supported(&plan, &ctx.summary.limits, ctx.device.features())?;

        let device = &ctx.device;
        let oom = crate::block::push(device, wgpu::ErrorFilter::OutOfMemory);
        let validation = crate::block::push(device, wgpu::ErrorFilter::Validation);
        let built = Self::build(&ctx, graph, plan);
        let v = validation.pop();
        let o = oom.pop();
        if let Some(e) = v.or(o) {
            return Err(Error::Device(format!("compiling graph: {e}")));
        }
        built
    }

    fn build(ctx: &Arc<Context>, graph: &Graph, plan: Plan) -> Result<Self> {
        let device = &ctx.device;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let types: HashMap<Value, TensorType> = plan
            .nodes
            .iter()
            .zip(&plan.node_ids)
            .flat_map(|(n, &id)| {
                n.outputs
                    .iter()
                    .enumerate()
                    .map(move |(slot, t)| (Value { node: id, slot }, t.clone()))
            })
            .collect();

        let input_buffers: Vec<wgpu::Buffer> = plan
            .inputs
            .iter()
            .map(|input| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&input.name),
                    size: buffer_size(input.ty.size_bytes()),
                    usage: storage | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let constant_buffers: Vec<wgpu::Buffer> = plan
            .constants
            .iter()
            .map(|v| {
                let step = plan
                    .node_ids
                    .iter()
                    .position(|&n| n == v.node)
                    .expect("in plan");
                let Op::Constant(data) = &plan.nodes[step].op else {
                    unreachable!("constants list holds constant nodes")
                };
                let mut bytes = data.storage().as_bytes().to_vec();
                bytes.resize(buffer_size(bytes.len() as u64) as usize, 0);
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("constant"),
                    contents: &bytes,
                    usage: storage,
                })
            })
            .collect();
        let parameter_buffers: Vec<wgpu::Buffer> = plan
            .parameters
            .iter()
            .map(|p| {
                let mut bytes = p.init.storage().as_bytes().to_vec();
                bytes.resize(buffer_size(bytes.len() as u64) as usize, 0);
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(&p.name),
                    contents: &bytes,
                    usage: storage | wgpu::BufferUsages::COPY_DST,
                })
            })
            .collect();
        let pool_buffers: Vec<wgpu::Buffer> = plan
            .pool_sizes
            .iter()
            .map(|&size| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("pool"),
                    size: buffer_size(size),
                    usage: storage | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let buffer_of = |v: &Value| -> wgpu::Buffer {
            match plan.homes[v] {
                Home::Input(i) => &input_buffers[i],
                Home::Constant(i) => &constant_buffers[i],
                Home::Parameter(i) => &parameter_buffers[i],
                Home::Pool(i) => &pool_buffers[i],
            }
            .clone()
        };

        let max_wg = ctx.summary.limits.max_compute_workgroups_per_dimension;
        let mut stages = Vec::new();
        let mut scratch_bytes = 0;
        for (node, &id) in plan.nodes.iter().zip(&plan.node_ids) {
            let ins: Vec<TensorType> = node.inputs.iter().map(|v| types[v].clone()).collect();
            gradflux_core::kernel::loop_trips::check(node, id, &ins, ctx.loop_limit())?;
            let choose = |p: &crate::matmul::Problem| ctx.tuner.choose(ctx, p);
            let atomics = ctx
                .device
                .features()
                .contains(wgpu::Features::SHADER_FLOAT32_ATOMIC);
            let budget = (ctx.loop_limit(), atomics);
            let lowered = lower(node, id, &|v| types[&v].clone(), &choose, budget)?;
            let node_launches = match lowered {
                Lowering::Launches(launches) => launches,
                Lowering::Loop(plan) => {
                    let (looped, bytes) =
                        LoopStage::build(ctx, *plan, &buffer_of, max_wg, node.op.name())?;
                    scratch_bytes += bytes;
                    stages.push(Stage::Loop(Box::new(looped)));
                    continue;
                }
            };
            let scratch = scratch_buffers(ctx, &node_launches, node.op.name())?;
            scratch_bytes += scratch.values().map(wgpu::Buffer::size).sum::<u64>();
            for launch in node_launches {
                if let Some(step) = make_step(
                    ctx,
                    launch,
                    &buffer_of,
                    &scratch,
                    None,
                    max_wg,
                    node.op.name(),
                )? {
                    stages.push(Stage::Dispatch(step));
                }
            }
        }

        let outputs = plan
            .outputs
            .iter()
            .map(|v| {
                let ty = types[v].clone();
                Output {
                    home: buffer_of(v),
                    staging: device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("readback"),
                        size: buffer_size(ty.size_bytes()),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    ty,
                }
            })
            .collect();
        let updated: Vec<usize> = plan.updates.iter().map(|(i, _)| *i).collect();
        let updates = plan
            .updates
            .iter()
            .filter(|(i, v)| plan.homes[v] != Home::Parameter(*i))
            .map(|(i, v)| {
                let bytes = plan.parameters[*i].ty.size_bytes();
                let reads_updated =
                    matches!(plan.homes[v], Home::Parameter(j) if updated.contains(&j));
                Update {
                    source: buffer_of(v),
                    parameter: *i,
                    bytes,
                    hold: reads_updated.then(|| {
                        device.create_buffer(&wgpu::BufferDescriptor {
                            label: Some("update hold"),
                            size: buffer_size(bytes),
                            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                            mapped_at_creation: false,
                        })
                    }),
                }
            })
            .collect();
        Ok(WgpuExecutable {
            ctx: ctx.clone(),
            graph_inputs: graph.inputs(),
            plan,
            input_buffers,
            parameter_buffers,
            updates,
            stages,
            outputs,
            scratch_bytes,
            outputs_mapped: AtomicBool::new(false),
        })
    }

    /// Device time of the graph's kernels alone, in seconds per run: the inputs are
    /// uploaded once, then every dispatch of a run is encoded `reps` times into one compute
    /// pass, timed with GPU timestamps where the adapter has them (wall clock around the
    /// submission otherwise, see [`Clock`](crate::Clock)). Nothing is read back and
    /// parameters are not updated. This is what benchmarks compare against a peer's kernel
    /// time; [`run`](Executable::run) is the host-to-host figure.
    pub fn kernel_seconds(&mut self, inputs: &Inputs, reps: u32) -> Result<(f64, crate::Clock)> {
        self.ctx.check_health()?;
        let data = bind_inputs(&self.graph_inputs, &self.plan, inputs)?;
        let scope = crate::block::push(&self.ctx.device, wgpu::ErrorFilter::Validation);
        self.upload(data);
        let stages = &self.stages;
        let timed = crate::timing::time_passes(&self.ctx, reps, &|pass| record(pass, stages));
        if let Some(e) = scope.pop() {
            return Err(Error::Device(format!("timing the graph: {e}")));
        }
        timed
    }

    /// Writes inputs (already checked by `bind_inputs`) to their buffers.
    fn upload(&self, data: Vec<&TensorData>) {
        for (buf, d) in self.input_buffers.iter().zip(data) {
            if d.numel() > 0 {
                write_padded(&self.ctx.queue, buf, d.storage().as_bytes());
            }
        }
    }

    /// Unmaps the staging buffers an abandoned run left mapped (or waiting to be: that
    /// mapping is aborted), so a cancelled `run_async` does not block later runs.
    pub(crate) fn release_abandoned_mappings(&self) {
        if !self.outputs_mapped.swap(false, Ordering::AcqRel) {
            return;
        }
        // A mapping that failed left its buffer unmapped, which makes its unmap an error:
        // caught here and dropped, as there is nothing left to release.
        let scope = crate::block::push(&self.ctx.device, wgpu::ErrorFilter::Validation);
        for o in &self.outputs {
            o.staging.unmap();
        }
        let _ = scope.pop();
    }

    /// Uploads inputs, encodes every dispatch and the output copies, and submits.
    fn submit(&mut self, inputs: &Inputs) -> Result<()> {
        self.ctx.check_health()?;
        self.release_abandoned_mappings();
        let data = bind_inputs(&self.graph_inputs, &self.plan, inputs)?;
        let scope = crate::block::push(&self.ctx.device, wgpu::ErrorFilter::Validation);
        self.upload(data);
        let ran = self.record_run();
        if let Some(e) = scope.pop() {
            return Err(Error::Device(format!("running graph: {e}")));
        }
        ran
    }

    /// Records and submits every stage, then the output copies and parameter updates.
    fn record_run(&self) -> Result<()> {
        let mut rec = Recorder::new(&self.ctx);
        self.record_stages(&mut rec)?;
        for o in &self.outputs {
            rec.copy(&o.home, &o.staging, o.ty.size_bytes());
        }
        self.record_updates(&mut rec);
        rec.submit();
        Ok(())
    }

    /// Records every stage of a run.
    pub(crate) fn record_stages<'a>(&'a self, rec: &mut Recorder<'a>) -> Result<()> {
        for stage in &self.stages {
            match stage {
                Stage::Dispatch(s) => rec.dispatch(s),
                Stage::Loop(l) => l.run(rec)?,
            }
        }
        Ok(())
    }

    /// Records the parameter updates, after the output copies so that an output that
    /// reads a parameter shows the value the run started with. Updates that read another
    /// updated parameter read a copy taken before any update lands, so
    /// `assign(a, b); assign(b, a)` swaps.
    pub(crate) fn record_updates<'a>(&'a self, rec: &mut Recorder<'a>) {
        for u in &self.updates {
            if let Some(hold) = &u.hold {
                rec.copy(&u.source, hold, u.bytes);
            }
        }
        for u in &self.updates {
            let source = u.hold.as_ref().unwrap_or(&u.source);
            rec.copy(source, &self.parameter_buffers[u.parameter], u.bytes);
        }
    }

    /// Starts mapping every staging buffer; the counter reaches zero when all are mapped,
    /// and the last mapping wakes the waker in `wake` (if one is there by then).
    fn map_outputs(
        &self,
        wake: Option<WakerSlot>,
    ) -> (Arc<AtomicUsize>, Arc<Mutex<Option<String>>>) {
        let pending = Arc::new(AtomicUsize::new(self.outputs.len()));
        let failure = Arc::new(Mutex::new(None));
        self.outputs_mapped.store(true, Ordering::Release);
        for o in &self.outputs {
            let (p, f, w) = (pending.clone(), failure.clone(), wake.clone());
            o.staging
                .slice(..)
                .map_async(wgpu::MapMode::Read, move |r| {
                    if let Err(e) = r {
                        *f.lock().expect("map failure") = Some(e.to_string());
                    }
                    if p.fetch_sub(1, Ordering::AcqRel) == 1 {
                        if let Some(waker) = w.and_then(|w| w.lock().expect("waker").take()) {
                            waker.wake();
                        }
                    }
                });
        }
        (pending, failure)
    }

    fn read_outputs(&self, failure: &Mutex<Option<String>>) -> Result<Vec<TensorData>> {
        let failed = failure.lock().expect("map failure").take();
        let result = match failed {
            Some(e) => Err(Error::Device(format!("reading outputs back: {e}"))),
            None => self
                .outputs
                .iter()
                .map(|o| {
                    let view = o
                        .staging
                        .slice(..)
                        .get_mapped_range()
                        .map_err(|e| Error::Device(format!("reading outputs back: {e}")))?;
                    let bytes = &view[..o.ty.size_bytes() as usize];
                    let storage = Storage::from_bytes(o.ty.dtype, bytes);
                    TensorData::from_storage(o.ty.shape.clone(), storage)
                })
                .collect(),
        };
        for o in &self.outputs {
            o.staging.unmap();
        }
        self.outputs_mapped.store(false, Ordering::Release);
        self.ctx.check_health()?;
        result
    }
}

/// Refuses, before allocating anything, what this backend cannot run or hold.
fn check_supported(plan: &Plan, limits: &wgpu::Limits, features: wgpu::Features) -> Result<()> {
    for (node, &id) in plan.nodes.iter().zip(&plan.node_ids) {
        for t in &node.outputs {
            let what = || format!("`{}` (node %{id}) producing {t}", node.op.name());
            if t.dtype == DType::F64 {
                return Err(Error::Unsupported {
                    backend: "wgpu".into(),
                    what: format!(
                        "{}: f64 runs on the CPU backend only; cast to f32 for the GPU",
                        what()
                    ),
                });
            }
            if t.dtype == DType::F16 {
                let f16_op = matches!(
                    node.op,
                    Op::Input { .. }
                        | Op::Constant(_)
                        | Op::Parameter { .. }
                        | Op::Reshape
                        | Op::Detach
                ) || matches!(&node.op, Op::Kernel(k) if k.wgpu_f16());
                if !features.contains(wgpu::Features::SHADER_F16) {
                    return Err(Error::Unsupported {
                        backend: "wgpu".into(),
                        what: format!(
                            "{}: this adapter lacks SHADER_F16; cast to f32 on the host or run \
                             on the CPU backend",
                            what()
                        ),
                    });
                }
                if !f16_op {
                    return Err(Error::Unsupported {
                        backend: "wgpu".into(),
                        what: format!(
                            "{}: f16 on wgpu runs in cast, matmul and linear; cast to f32 \
                             for this op",
                            what()
                        ),
                    });
                }
            }
            if let Some(custom) = node.op.kernel::<gradflux_core::CustomOp>() {
                check_custom_kernel(custom, limits)?;
            }
            if t.shape.rank() > MAX_RANK {
                return Err(Error::Unsupported {
                    backend: "wgpu".into(),
                    what: format!(
                        "{}: rank {} is over the maximum {MAX_RANK}",
                        what(),
                        t.shape.rank()
                    ),
                });
            }
            let bytes = t.size_bytes();
            if bytes > limits.max_storage_buffer_binding_size {
                return Err(Error::Limit {
                    limit: "max_storage_buffer_binding_size",
                    what: what(),
                    requested: bytes,
                    allowed: limits.max_storage_buffer_binding_size,
                });
            }
            if bytes > limits.max_buffer_size {
                return Err(Error::Limit {
                    limit: "max_buffer_size",
                    what: what(),
                    requested: bytes,
                    allowed: limits.max_buffer_size,
                });
            }
        }
    }
    Ok(())
}

/// Refuses a custom kernel whose workgroup memory or size the adapter cannot give it,
/// naming the op, before the driver would.
fn check_custom_kernel(op: &gradflux_core::CustomOp, limits: &wgpu::Limits) -> Result<()> {
    let Some(k) = &op.wgsl else {
        return Ok(());
    };
    let what = |detail: &str| format!("custom op `{}`: {detail}", op.name);
    if k.workgroup_bytes > limits.max_compute_workgroup_storage_size as u64 {
        return Err(Error::Limit {
            limit: "max_compute_workgroup_storage_size",
            what: what("its var<workgroup> memory (bytes)"),
            requested: k.workgroup_bytes,
            allowed: limits.max_compute_workgroup_storage_size as u64,
        });
    }
    let [x, y, z] = k.workgroup_size;
    let dims = [
        (
            "max_compute_workgroup_size_x",
            x,
            limits.max_compute_workgroup_size_x,
        ),
        (
            "max_compute_workgroup_size_y",
            y,
            limits.max_compute_workgroup_size_y,
        ),
        (
            "max_compute_workgroup_size_z",
            z,
            limits.max_compute_workgroup_size_z,
        ),
        (
            "max_compute_invocations_per_workgroup",
            x.saturating_mul(y).saturating_mul(z),
            limits.max_compute_invocations_per_workgroup,
        ),
    ];
    for (limit, requested, allowed) in dims {
        if requested > allowed {
            return Err(Error::Limit {
                limit,
                what: what("its @workgroup_size"),
                requested: requested as u64,
                allowed: allowed as u64,
            });
        }
    }
    Ok(())
}

impl Executable for WgpuExecutable {
    fn output_values(&self) -> &[gradflux_core::Value] {
        &self.plan.outputs
    }

    fn planned_inputs(&self) -> &[gradflux_core::PlannedInput] {
        &self.plan.inputs
    }

    fn planned_parameters(&self) -> &[gradflux_core::PlannedParameter] {
        &self.plan.parameters
    }

    fn run(&mut self, inputs: &Inputs) -> Result<Vec<TensorData>> {
        crate::block::may_block("Executable::run")?;
        self.submit(inputs)?;
        let (_, failure) = self.map_outputs(None);
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for the run: {e}")))?;
        self.read_outputs(&failure)
    }

    /// Submits, then waits without spinning: the last output's map callback wakes the
    /// future. Natively a helper thread sits in `Device::poll` until the work is done (wgpu
    /// delivers map callbacks from `poll`); in a browser the page's event loop delivers
    /// them.
    fn run_async<'a>(&'a mut self, inputs: &'a Inputs<'a>) -> RunFuture<'a> {
        Box::pin(async move {
            self.submit(inputs)?;
            let slot: WakerSlot = Arc::new(Mutex::new(None));
            let (pending, failure) = self.map_outputs(Some(slot.clone()));
            #[cfg(not(target_arch = "wasm32"))]
            {
                let device = self.ctx.device.clone();
                std::thread::Builder::new()
                    .name("gradflux-poll".into())
                    .spawn(move || {
                        // A failure here leaves a mapping unfinished, and the map callback
                        // reports it.
                        let _ = device.poll(wgpu::PollType::wait_indefinitely());
                    })
                    .map_err(|e| Error::Device(format!("starting the wait for the run: {e}")))?;
            }
            futures::future::poll_fn(|cx| {
                // The waker goes in before the count is read, so a callback that lands in
                // between finds it.
                *slot.lock().expect("waker") = Some(cx.waker().clone());
                if pending.load(Ordering::Acquire) == 0 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            self.read_outputs(&failure)
        })
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport {
            peak_bytes: self.plan.memory.peak_bytes + self.scratch_bytes,
            scratch_bytes: self.scratch_bytes,
            ..self.plan.memory
        }
    }

    fn backend_name(&self) -> String {
        self.ctx.summary.describe()
    }

    fn parameter(&self, name: &str) -> Result<TensorData> {
        self.ctx.check_health()?;
        let i = find_parameter(&self.plan, name, None)?;
        let ty = &self.plan.parameters[i].ty;
        let bytes = crate::readback::read_buffer(
            &self.ctx.device,
            &self.ctx.queue,
            &self.parameter_buffers[i],
            ty.size_bytes(),
            &format!("reading parameter `{name}`"),
        )?;
        let data = Storage::from_bytes(ty.dtype, &bytes);
        TensorData::from_storage(ty.shape.clone(), data)
    }

    fn set_parameter(&mut self, name: &str, data: &TensorData) -> Result<()> {
        self.ctx.check_health()?;
        let i = find_parameter(&self.plan, name, Some(data))?;
        if data.numel() > 0 {
            write_padded(
                &self.ctx.queue,
                &self.parameter_buffers[i],
                data.storage().as_bytes(),
            );
        }
        Ok(())
    }
}
