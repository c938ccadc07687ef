//! Checkpointed rollouts on the generic loop stage: an op defined here, outside gradflux,
//! rolls a state forward T steps keeping a checkpoint every k steps (its kernels read the
//! step index), and its backward is a loop plan that restores each segment, recomputes it
//! and runs the per-step adjoint in reverse — the shape of a physics rollout. Gradients do
//! not depend on k, match finite differences, and memory grows as √T.

mod common;

use gradflux::kernel::{
    Bind, Checkpoint, KernelOp, KernelSource, Launch, LoopPlan, LowerCx, Lowering, Schedule, VjpCx,
    Workgroups,
};
use gradflux::{
    check_gradients, DType, Device, GradCheck, Graph, Result, Tensor, TensorData, TensorType,
};

/// `x_{t+1} = x_t + h·sin(w ⊙ x_t + 0.01·t)` for `steps` steps from `x0`; outputs `x_T`
/// and the checkpoints (the states before steps 0, k, 2k, …).
#[derive(Debug, Clone, Copy)]
struct Rollout {
    steps: usize,
    h: f32,
    checkpoint: Checkpoint,
}

/// Its backward: from `w`, the checkpoints and the cotangent of `x_T`, the gradients of
/// `x0` and `w`.
#[derive(Debug)]
struct RolloutGrad(Rollout);

const WGSL: &str = "
fn advance(x: f32, w: f32, t: u32, h: f32) -> f32 {
    return x + h * sin(w * x + 0.01 * f32(t));
}

// info of every entry point: [n, k, h bits]

@group(0) @binding(0) var<storage, read> ld_x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> ld_x: array<f32>;
@group(0) @binding(2) var<storage, read> ld_info: array<u32>;

@compute @workgroup_size(64)
fn load(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < ld_info[0] { ld_x[gid.x] = ld_x0[gid.x]; }
}

@group(0) @binding(0) var<storage, read> st_w: array<f32>;
@group(0) @binding(1) var<storage, read> st_t: array<u32>;
@group(0) @binding(2) var<storage, read_write> st_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_ckpt: array<f32>;
@group(0) @binding(4) var<storage, read> st_info: array<u32>;

@compute @workgroup_size(64)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = st_info[0];
    let k = st_info[1];
    let t = st_t[0];
    if i >= n { return; }
    let x = st_x[i];
    if t % k == 0u { st_ckpt[(t / k) * n + i] = x; }
    st_x[i] = advance(x, st_w[i], t, bitcast<f32>(st_info[2]));
}

@group(0) @binding(0) var<storage, read> in_g: array<f32>;
@group(0) @binding(1) var<storage, read_write> in_lam: array<f32>;
@group(0) @binding(2) var<storage, read_write> in_gw: array<f32>;
@group(0) @binding(3) var<storage, read> in_info: array<u32>;

@compute @workgroup_size(64)
fn init(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < in_info[0] { in_lam[gid.x] = in_g[gid.x]; in_gw[gid.x] = 0.0; }
}

@group(0) @binding(0) var<storage, read> rs_ckpt: array<f32>;
@group(0) @binding(1) var<storage, read> rs_t: array<u32>;
@group(0) @binding(2) var<storage, read_write> rs_seg: array<f32>;
@group(0) @binding(3) var<storage, read> rs_info: array<u32>;

@compute @workgroup_size(64)
fn restore(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = rs_info[0];
    if gid.x < n { rs_seg[gid.x] = rs_ckpt[(rs_t[0] / rs_info[1]) * n + gid.x]; }
}

@group(0) @binding(0) var<storage, read> rc_w: array<f32>;
@group(0) @binding(1) var<storage, read> rc_t: array<u32>;
@group(0) @binding(2) var<storage, read_write> rc_seg: array<f32>;
@group(0) @binding(3) var<storage, read> rc_info: array<u32>;

@compute @workgroup_size(64)
fn recompute(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = rc_info[0];
    let t = rc_t[0];
    let j = t % rc_info[1];
    if i < n {
        rc_seg[(j + 1u) * n + i] = advance(rc_seg[j * n + i], rc_w[i], t, bitcast<f32>(rc_info[2]));
    }
}

@group(0) @binding(0) var<storage, read> ad_w: array<f32>;
@group(0) @binding(1) var<storage, read> ad_t: array<u32>;
@group(0) @binding(2) var<storage, read> ad_seg: array<f32>;
@group(0) @binding(3) var<storage, read_write> ad_lam: array<f32>;
@group(0) @binding(4) var<storage, read_write> ad_gw: array<f32>;
@group(0) @binding(5) var<storage, read> ad_info: array<u32>;

@compute @workgroup_size(64)
fn adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = ad_info[0];
    let t = ad_t[0];
    let h = bitcast<f32>(ad_info[2]);
    if i >= n { return; }
    let x = ad_seg[(t % ad_info[1]) * n + i];
    let w = ad_w[i];
    let c = cos(w * x + 0.01 * f32(t));
    let lam = ad_lam[i];
    ad_gw[i] += lam * h * c * x;
    ad_lam[i] = lam * (1.0 + h * c * w);
}";

impl Rollout {
    fn interval(&self) -> usize {
        self.checkpoint.interval(self.steps).unwrap()
    }

    fn count(&self) -> usize {
        self.checkpoint.count(self.steps).unwrap()
    }

    fn launch(&self, n: usize, entry: &str, binds: Vec<Bind>, writes: usize) -> Launch {
        let mut read_only = vec![true; binds.len() + 1];
        read_only[binds.len() - writes..binds.len()].fill(false);
        Launch {
            kernel: KernelSource {
                label: format!("rollout {entry}"),
                source: WGSL.into(),
                entry_point: entry.into(),
                constants: vec![],
                read_only,
            },
            binds,
            scratch: vec![],
            info: vec![n as u32, self.interval() as u32, self.h.to_bits()],
            workgroups: Workgroups::Linear((n as u64).div_ceil(64)),
        }
    }

    /// The states x_0 … x_T in f64 (the CPU reference).
    fn states(&self, x0: &[f64], w: &[f64]) -> Vec<Vec<f64>> {
        let mut xs = vec![x0.to_vec()];
        for t in 0..self.steps {
            let x = xs.last().unwrap();
            let h = self.h as f64;
            let next = x
                .iter()
                .zip(w)
                .map(|(x, w)| x + h * (w * x + 0.01 * t as f64).sin())
                .collect();
            xs.push(next);
        }
        xs
    }
}

fn data(ty: &TensorType, values: Vec<f64>) -> Result<TensorData> {
    Ok(match ty.dtype {
        DType::F64 => TensorData::new(ty.shape.clone(), values)?,
        _ => TensorData::new(ty.shape.clone(), values.iter().map(|&v| v as f32).collect())?,
    })
}

impl KernelOp for Rollout {
    fn name(&self) -> &'static str {
        "rollout"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(g_t) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let ty = cx.graph.ty(cx.inputs[0])?;
        let grads = cx.graph.kernel_op(
            RolloutGrad(*self),
            &[cx.inputs[1], cx.outputs[1], g_t],
            vec![ty.clone(), ty],
        )?;
        Ok(grads.into_iter().map(Some).collect())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let xs = self.states(&inputs[0].to_f64_vec(), &inputs[1].to_f64_vec());
        let k = self.interval();
        let ckpts = (0..self.count()).flat_map(|s| xs[s * k].clone()).collect();
        Ok(vec![
            data(&outputs[0], xs[self.steps].clone())?,
            data(&outputs[1], ckpts)?,
        ])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let n = cx.input_types[0].shape.numel();
        let [x0, w] = [cx.inputs[0], cx.inputs[1]].map(Bind::Value);
        let [x, ckpt] = [cx.output(0), cx.output(1)].map(Bind::Value);
        let mut plan = LoopPlan::repeat(
            vec![self.launch(n, "step", vec![w, Bind::Step, x, ckpt], 2)],
            self.steps,
        );
        plan.setup = vec![self.launch(n, "load", vec![x0, x], 1)];
        Ok(plan.into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

impl KernelOp for RolloutGrad {
    fn name(&self) -> &'static str {
        "rollout_grad"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let (r, h) = (&self.0, self.0.h as f64);
        let w = inputs[0].to_f64_vec();
        let n = w.len();
        let x0 = &inputs[1].to_f64_vec()[..n];
        let xs = r.states(x0, &w);
        let mut lam = inputs[2].to_f64_vec();
        let mut gw = vec![0.0; n];
        for t in (0..r.steps).rev() {
            for i in 0..n {
                let c = (w[i] * xs[t][i] + 0.01 * t as f64).cos();
                gw[i] += lam[i] * h * c * xs[t][i];
                lam[i] *= 1.0 + h * c * w[i];
            }
        }
        Ok(vec![data(&outputs[0], lam)?, data(&outputs[1], gw)?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let r = &self.0;
        let n = cx.input_types[0].shape.numel();
        let [w, ckpt, g_t] = [cx.inputs[0], cx.inputs[1], cx.inputs[2]].map(Bind::Value);
        let [lam, gw] = [cx.output(0), cx.output(1)].map(Bind::Value);
        // The segment being rebuilt: k states.
        let seg = Bind::Scratch(0);
        let launch = |entry, binds, writes| {
            r.launch(n, entry, binds, writes)
                .with_scratch(&[(0, (r.interval() * n * 4) as u64)])
        };
        let runs = r.checkpoint.reverse_runs(r.steps, [0, 1, 2])?;
        Ok(LoopPlan {
            setup: vec![launch("init", vec![g_t, lam, gw], 2)],
            bodies: vec![
                vec![launch("restore", vec![ckpt, Bind::Step, seg], 1)],
                vec![launch("recompute", vec![w, Bind::Step, seg], 1)],
                vec![launch("adjoint", vec![w, Bind::Step, seg, lam, gw], 2)],
            ],
            schedule: Schedule::Runs(runs),
            check: None,
            gate: None,
            finish: vec![],
            steps_out: None,
        }
        .into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

/// The loss `Σ x_T²` of a rollout of `x0`, `w` (inputs of `g`), and its gradients.
fn rollout_graph(r: Rollout, n: usize, dtype: DType) -> Result<(Graph, Vec<Tensor>, [Tensor; 2])> {
    let g = Graph::new();
    let x0 = g.input("x0", [n], dtype)?;
    let w = g.input("w", [n], dtype)?;
    let ty = TensorType::new([n], dtype);
    let ckpt_ty = TensorType::new([r.count(), n], dtype);
    let outs = g.kernel_op(r, &[x0, w], vec![ty, ckpt_ty])?;
    let loss = g.sum_all(g.mul(outs[0], outs[0])?)?;
    let grads = g.grad(loss, &[x0, w])?;
    Ok((g, vec![outs[0], grads[0], grads[1]], [x0, w]))
}

fn inputs(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = common::Rng::new(17);
    let x0 = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let w = (0..n).map(|_| rng.uniform(-1.5, 1.5)).collect();
    (x0, w)
}

/// `x_T`, `∂/∂x0` and `∂/∂w` on `device`, in f32.
fn run(device: &Device, r: Rollout, n: usize) -> Result<Vec<Vec<f32>>> {
    let (g, outs, _) = rollout_graph(r, n, DType::F32)?;
    let (x0, w) = inputs(n);
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let x0 = TensorData::new([n], f32s(x0))?;
    let w = TensorData::new([n], f32s(w))?;
    let out = device.compile(&g, &outs)?.run(&[("x0", &x0), ("w", &w)])?;
    out.iter()
        .map(|d| Ok(d.values::<f32>()?.to_vec()))
        .collect()
}

#[test]
fn gradients_do_not_depend_on_the_checkpoint_interval_and_match_the_reference() {
    let (steps, n) = (230, 37);
    let at = |checkpoint| Rollout {
        steps,
        h: 0.01,
        checkpoint,
    };
    let every = [
        Checkpoint::All,
        Checkpoint::Every(7),
        Checkpoint::Sqrt,
        Checkpoint::Every(steps),
    ];
    let mut devices = vec![Device::Cpu];
    devices.extend(common::gpu());
    for device in &devices {
        let results: Vec<_> = every
            .iter()
            .map(|&c| run(device, at(c), n).unwrap())
            .collect();
        for (c, r) in every.iter().zip(&results) {
            assert_eq!(r, &results[0], "{}: {c:?} differs from All", device.name());
        }
        let reference = run(&Device::Cpu, at(Checkpoint::All), n).unwrap();
        for (what, (got, want)) in ["x_T", "dx0", "dw"]
            .iter()
            .zip(results[0].iter().zip(&reference))
        {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 + 1e-4 * b.abs(),
                    "{}: {what}[{i}] = {a}, reference {b}",
                    device.name()
                );
            }
        }
    }
}

#[test]
fn rollout_gradients_match_finite_differences() {
    for checkpoint in [Checkpoint::Every(3), Checkpoint::Sqrt] {
        let r = Rollout {
            steps: 20,
            h: 0.1,
            checkpoint,
        };
        let n = 5;
        let (g, outs, wrt) = rollout_graph(r, n, DType::F64).unwrap();
        let loss = g.sum_all(g.mul(outs[0], outs[0]).unwrap()).unwrap();
        let (x0, w) = inputs(n);
        let x0 = TensorData::new([n], x0).unwrap();
        let w = TensorData::new([n], w).unwrap();
        let report = check_gradients(
            &g,
            loss,
            &[("x0", &x0), ("w", &w)],
            &wrt,
            GradCheck::default(),
        )
        .unwrap();
        assert!(report.passed(), "{checkpoint:?}: {report:?}");
    }
}

#[test]
fn memory_grows_as_the_root_of_the_steps_with_sqrt_checkpoints() {
    let n = 256;
    let state = (n * 4) as u64;
    let mut devices = vec![Device::Cpu];
    devices.extend(common::gpu());
    for device in &devices {
        let peak = |steps, checkpoint| {
            let r = Rollout {
                steps,
                h: 0.01,
                checkpoint,
            };
            let (g, outs, _) = rollout_graph(r, n, DType::F32).unwrap();
            device.compile(&g, &outs).unwrap().memory().peak_bytes
        };
        for steps in [100, 1_000, 10_000] {
            let k = Checkpoint::Sqrt.interval(steps).unwrap() as u64;
            let bytes = peak(steps, Checkpoint::Sqrt);
            // ⌈T/k⌉ checkpoints and a segment of k states, plus the inputs, outputs and
            // gradients of a few whole states.
            assert!(
                bytes <= (2 * k + 16) * state,
                "{}: T = {steps}: {bytes} bytes, more than (2·{k} + 16) states",
                device.name()
            );
        }
        let all = peak(10_000, Checkpoint::All);
        assert!(
            all >= 10_000 * state,
            "{}: All keeps every state",
            device.name()
        );
    }
}
