//! The generic loop stage: an op defined here, outside gradflux, lowers to a `LoopPlan`
//! (set-up, a step body, a stop check read back every step, a step count), and both
//! backends run it without knowing the op.

mod common;

use std::sync::Arc;

use gradflux::kernel::{
    Bind, KernelOp, KernelSource, Launch, LoopPlan, LowerCx, Lowering, StopCheck, VjpCx, Workgroups,
};
use gradflux::{DType, Device, Error, Graph, Result, Tensor, TensorData, TensorType};

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
            steps: self.steps,
            check: Some(check),
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
