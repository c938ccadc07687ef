//! The generic loop stage: an op defined here, outside gradflux, lowers to a `LoopPlan`
//! (set-up, a step body, a stop check read back every step, a step count), and both
//! backends run it without knowing the op; a gated loop stops dispatching on the device.

mod common;

use std::sync::Arc;

use gradflux::kernel::{
    Bind, Gate, KernelOp, KernelSource, Launch, LoopPlan, LowerCx, Lowering, Schedule, StopCheck,
    VjpCx, Workgroups,
};
use gradflux::{DType, Device, Error, Graph, Result, Tensor, TensorData, TensorType, WgpuDevice};

/// Doubles `x` until its smallest element reaches `target`, for at most `steps` steps;
/// outputs the result and the steps run. Running out of steps is an error.
#[derive(Debug)]
struct DoubleUntil {
    target: f32,
    steps: usize,
}

const WGSL: &str = "
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> status: array<f32>;
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(64)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < info[0] { y[gid.x] = x[gid.x]; }
}

@compute @workgroup_size(64)
fn double(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < info[0] { y[gid.x] = 2.0 * y[gid.x]; }
}

@compute @workgroup_size(1)
fn smallest() {
    var m = y[0];
    for (var i = 1u; i < info[0]; i++) { m = min(m, y[i]); }
    status[0] = m;
}";

impl DoubleUntil {
    fn launch(&self, cx: &LowerCx<'_>, entry: &str, groups: u64) -> Launch {
        let n = cx.input_types[0].shape.numel();
        Launch {
            kernel: KernelSource {
                label: format!("double_until {entry}"),
                source: WGSL.into(),
                entry_point: entry.into(),
                constants: vec![],
                read_only: vec![true, false, false, true],
            },
            binds: vec![
                Bind::Value(cx.inputs[0]),
                Bind::Value(cx.output(0)),
                Bind::Scratch(0),
            ],
            scratch: vec![(0, 4)],
            info: vec![n as u32],
            workgroups: Workgroups::Linear(groups),
        }
    }
}

impl KernelOp for DoubleUntil {
    fn name(&self) -> &'static str {
        "double_until"
    }

    fn vjp(&self, _: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let mut y = inputs[0].values::<f32>()?.to_vec();
        for ran in 1..=self.steps {
            y.iter_mut().for_each(|v| *v *= 2.0);
            if y.iter().copied().fold(f32::INFINITY, f32::min) >= self.target {
                let steps = TensorData::scalar(ran as u32);
                return Ok(vec![TensorData::new(outputs[0].shape.clone(), y)?, steps]);
            }
        }
        Err(self.exhausted(self.steps))
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let groups = (cx.input_types[0].shape.numel() as u64).div_ceil(64);
        let target = self.target;
        let steps = self.steps;
        let check = StopCheck {
            launches: vec![self.launch(cx, "smallest", 1)],
            status: (0, 4),
            after: Arc::new(|_| true),
            decide: Arc::new(move |raw, _| {
                Ok(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) >= target)
            }),
            exhausted: Arc::new(move |_, _| Err(DoubleUntil { target, steps }.exhausted(steps))),
        };
        Ok(LoopPlan {
            setup: vec![self.launch(cx, "copy", groups)],
            bodies: vec![vec![self.launch(cx, "double", groups)]],
            schedule: Schedule::Settling(self.steps),
            check: Some(check),
            gate: None,
            finish: vec![],
            steps_out: Some(cx.output(1)),
        }
        .into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(inputs[0].shape.numel() as u64)
    }
}

impl DoubleUntil {
    fn exhausted(&self, steps: usize) -> Error {
        Error::InvalidValue {
            op: "double_until",
            detail: format!("did not reach {} in {steps} steps", self.target),
        }
    }
}

fn run(device: &Device, op: DoubleUntil, x: &[f32]) -> Result<(Vec<f32>, u32)> {
    let g = Graph::new();
    let input = g.input("x", [x.len()], DType::F32)?;
    let types = vec![
        TensorType::new([x.len()], DType::F32),
        TensorType::new(Vec::<usize>::new(), DType::U32),
    ];
    let outs = g.kernel_op(op, &[input], types)?;
    let data = TensorData::new([x.len()], x.to_vec())?;
    let out = device.compile(&g, &outs)?.run(&[("x", &data)])?;
    Ok((out[0].values::<f32>()?.to_vec(), out[1].values::<u32>()?[0]))
}

#[test]
fn a_loop_defined_outside_gradflux_stops_where_its_check_says() {
    let mut devices = vec![Device::Cpu];
    devices.extend(common::gpu());
    for device in &devices {
        let op = DoubleUntil {
            target: 10.0,
            steps: 10,
        };
        // 1 → 2 → 4 → 8 → 16: the smallest reaches 10 at the fourth step.
        let (y, steps) = run(device, op, &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((y, steps), (vec![16.0, 32.0, 48.0], 4), "{}", device.name());

        let short = DoubleUntil {
            target: 10.0,
            steps: 2,
        };
        let e = run(device, short, &[1.0, 2.0, 3.0])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did not reach 10 in 2 steps"),
            "{}: {e}",
            device.name()
        );
    }
}

/// Adds 1 to a counter every step, for `steps` steps; its gate closes once the counter
/// reaches `limit`, evaluated every `every` steps. (Its body is not a no-op after the gate
/// closes, as a real op's must be, so the count shows which steps dispatched.)
#[derive(Debug)]
struct CountGated {
    steps: usize,
    limit: u32,
    every: usize,
}

const COUNT_WGSL: &str = "
@group(0) @binding(0) var<storage, read_write> count: array<u32>;
@group(0) @binding(1) var<storage, read_write> flag: array<u32>;
@group(0) @binding(2) var<storage, read> info: array<u32>;

@compute @workgroup_size(1)
fn zero() { count[0] = 0u; }

@compute @workgroup_size(1)
fn add() { count[0] += 1u; }

@compute @workgroup_size(1)
fn gate() { flag[0] = select(0u, 1u, count[0] < info[0]); }";

impl CountGated {
    fn launch(&self, cx: &LowerCx<'_>, entry: &str) -> Launch {
        Launch {
            kernel: KernelSource {
                label: format!("count_gated {entry}"),
                source: COUNT_WGSL.into(),
                entry_point: entry.into(),
                constants: vec![],
                read_only: vec![false, false, true],
            },
            binds: vec![Bind::Value(cx.output(0)), Bind::Scratch(0)],
            scratch: vec![(0, 4)],
            info: vec![self.limit],
            workgroups: Workgroups::Fixed([1, 1, 1]),
        }
    }
}

impl KernelOp for CountGated {
    fn name(&self) -> &'static str {
        "count_gated"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, _: &[&TensorData], _: &[TensorType]) -> Result<Vec<TensorData>> {
        // What a gated device runs: the steps up to the first evaluation that finds the
        // limit reached.
        let ran = (1..=self.steps)
            .find(|&k| k % self.every == 0 && k as u32 >= self.limit)
            .unwrap_or(self.steps);
        Ok(vec![TensorData::scalar(ran as u32)])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let mut plan = LoopPlan::repeat(vec![self.launch(cx, "add")], self.steps);
        plan.setup = vec![self.launch(cx, "zero")];
        plan.gate = Some(Gate {
            launches: vec![self.launch(cx, "gate")],
            flag: 0,
            every: self.every,
        });
        Ok(plan.into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

fn count(device: &Device, op: CountGated) -> Result<u32> {
    let g = Graph::new();
    let x = g.input("x", [1], DType::F32)?;
    let types = vec![TensorType::new(Vec::<usize>::new(), DType::U32)];
    let outs = g.kernel_op(op, &[x], types)?;
    let data = TensorData::new([1], vec![0.0f32])?;
    let out = device.compile(&g, &outs)?.run(&[("x", &data)])?;
    Ok(out[0].values::<u32>()?[0])
}

#[test]
fn a_closed_gate_dispatches_nothing_more() {
    let Some(Device::Wgpu(gpu)) = common::gpu() else {
        return;
    };
    assert!(
        gpu.indirect_dispatch() || !common::in_ci(),
        "CI=true: lavapipe has indirect dispatch"
    );
    if !gpu.indirect_dispatch() {
        eprintln!(
            "{}: no indirect dispatch, loops are not gated",
            gpu.summary().describe()
        );
        return;
    }
    let op = |every| CountGated {
        steps: 20,
        limit: 5,
        every,
    };
    for every in [1, 3, 7] {
        // Every 3 steps: open at 3, closed at 6, so 6 steps ran; every 7: closed at 7.
        let want = count(&Device::Cpu, op(every)).unwrap();
        let device = Device::Wgpu(gpu.clone());
        assert_eq!(count(&device, op(every)).unwrap(), want, "every {every}");
        assert_eq!(
            want,
            [5, 6, 7][[1, 3, 7].iter().position(|&e| e == every).unwrap()]
        );
    }
    // Without indirect dispatch every step runs.
    let ungated = WgpuDevice::best().unwrap();
    ungated.set_indirect_dispatch(false).unwrap();
    assert_eq!(count(&Device::Wgpu(ungated), op(1)).unwrap(), 20);
}

#[test]
fn a_gate_every_zero_steps_is_an_error() {
    let Some(device) = common::gpu() else {
        return;
    };
    let e = count(
        &device,
        CountGated {
            steps: 3,
            limit: 1,
            every: 0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("every 0 steps"), "{e}");
}
