//! Mass-spring rollouts: a 2D cloth of 40 × 60 particles and 9 302 springs (the size of
//! the anchors' "10k springs" systems) with gravity and a ground, 100 substeps, forward and
//! forward + backward (checkpointed, `Checkpoint::Sqrt`). Host time per whole run on each
//! backend; throughput counts particle-substeps. `benches/peers/physics_mass_spring.py`
//! runs the same system in Warp for ratios.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{
    DType, Graph, GroundContact, MassSpring, RolloutOptions, SpringValues, Tensor, TensorData,
};

use crate::{compile, declare_unit, devices};

const GROUP: &str = "physics";
const COUNTS: [usize; 2] = [40, 60];
const STEPS: usize = 100;

/// The cloth's rollout and, with `backward`, the gradients of `Σ x_T` in the initial
/// positions and the stiffnesses. Also the named inputs.
fn graph(backward: bool) -> (Graph, Vec<Tensor>, Vec<(&'static str, TensorData)>) {
    // The bottom row rests 1 mm into the ground.
    let lattice = MassSpring::lattice(&COUNTS, 0.01, [0.0, -0.001, 0.0], 1e-4);
    let mut system = lattice.system;
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 1e4,
        kd: 10.0,
        kf: 10.0,
        mu: 0.5,
    });
    let (n, s) = (system.particles(), system.springs.len());
    let g = Graph::new();
    let x0 = g.input("x0", [n, 2], DType::F32).expect("x0");
    let v0 = g.input("v0", [n, 2], DType::F32).expect("v0");
    let springs = SpringValues {
        rest: g.input("rest", [s], DType::F32).expect("rest"),
        stiffness: g.input("k", [s], DType::F32).expect("k"),
        damping: g.input("c", [s], DType::F32).expect("c"),
    };
    let out = g
        .mass_spring_rollout(&system, x0, v0, springs, None, RolloutOptions::new(STEPS))
        .expect("rollout");
    let outs = if backward {
        let loss = g.sum_all(out.positions).expect("loss");
        g.grad(loss, &[x0, springs.stiffness]).expect("grad")
    } else {
        vec![out.positions]
    };
    let data = vec![
        (
            "x0",
            TensorData::new([n, 2], lattice.positions).expect("x0"),
        ),
        ("v0", TensorData::zeros([n, 2], DType::F32)),
        ("rest", TensorData::new([s], lattice.rest).expect("rest")),
        ("k", TensorData::new([s], vec![1e3f32; s]).expect("k")),
        ("c", TensorData::new([s], vec![1.0f32; s]).expect("c")),
    ];
    (g, outs, data)
}

pub fn bench(c: &mut Criterion) {
    declare_unit(GROUP, "particle-substep");
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let n = COUNTS[0] * COUNTS[1];
    group.throughput(Throughput::Elements((n * STEPS) as u64));
    for dev in devices() {
        let tag = format!("{}-f32", dev.tag);
        for backward in [false, true] {
            let (g, outs, data) = graph(backward);
            let springs = MassSpring::lattice(&COUNTS, 0.01, [0.0; 3], 1e-4)
                .system
                .springs
                .len();
            let kind = if backward { "fwdbwd" } else { "fwd" };
            let id = BenchmarkId::new(&tag, format!("springs-{kind}-n{n}s{springs}t{STEPS}"));
            let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
            let mut exe = compile(&dev.device, &g, &outs);
            group.bench_function(id, |bench| bench.iter(|| exe.run(&named).expect("run")));
        }
    }
    group.finish();
}

/// MLS-MPM 2D (`diffmpm_simple`'s material and time step) on a 128² grid: a block of
/// `side²` particles, 50 substeps, forward and forward + backward (the gradient of the
/// block's mean position in its initial velocities).
fn mpm_graph(side: usize, backward: bool) -> (Graph, Vec<Tensor>, Vec<(&'static str, TensorData)>) {
    let system = gradflux::Mpm {
        grid: MPM_GRID,
        ..gradflux::Mpm::diffmpm_simple()
    };
    let n = side * side;
    let dx = system.dx();
    let spacing = 0.5 * dx;
    let x0: Vec<f32> = (0..n)
        .flat_map(|k| {
            let (i, j) = ((k / side) as f32, (k % side) as f32);
            [0.1 + spacing * i, 0.2 + spacing * j]
        })
        .collect();
    let g = Graph::new();
    let x = g.input("x0", [n, 2], DType::F32).expect("x0");
    let v = g.input("v0", [n, 2], DType::F32).expect("v0");
    let out = g
        .mpm_rollout(&system, x, v, None, RolloutOptions::new(MPM_STEPS))
        .expect("rollout");
    let outs = if backward {
        let loss = g.sum_all(out.positions).expect("loss");
        g.grad(loss, &[v]).expect("grad")
    } else {
        vec![out.positions]
    };
    let data = vec![
        ("x0", TensorData::new([n, 2], x0).expect("x0")),
        (
            "v0",
            TensorData::new([n, 2], vec![0.5f32; 2 * n]).expect("v0"),
        ),
    ];
    (g, outs, data)
}

const MPM_GRID: usize = 128;
const MPM_STEPS: usize = 50;
/// Sides of the blocks: about 8k and 32k particles.
const MPM_SIDES: [usize; 2] = [90, 179];

pub fn bench_mpm(c: &mut Criterion) {
    declare_unit(MPM_GROUP, "particle-substep");
    let mut group = c.benchmark_group(MPM_GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for dev in devices() {
        let tag = format!("{}-f32", dev.tag);
        for side in MPM_SIDES {
            let n = side * side;
            group.throughput(Throughput::Elements((n * MPM_STEPS) as u64));
            for backward in [false, true] {
                let (g, outs, data) = mpm_graph(side, backward);
                let kind = if backward { "fwdbwd" } else { "fwd" };
                let id =
                    BenchmarkId::new(&tag, format!("mpm2d-{kind}-n{n}g{MPM_GRID}t{MPM_STEPS}"));
                let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
                let mut exe = compile(&dev.device, &g, &outs);
                group.bench_function(id, |bench| bench.iter(|| exe.run(&named).expect("run")));
            }
        }
    }
    group.finish();
}

const MPM_GROUP: &str = "physics";

/// MLS-MPM 3D on a 64³ grid: a block of 40³ = 64 000 particles, 10 substeps, forward and
/// forward + backward.
const MPM3_SIDE: usize = 40;
const MPM3_GRID: usize = 64;
const MPM3_STEPS: usize = 10;

fn mpm3_graph(backward: bool) -> (Graph, Vec<Tensor>, Vec<(&'static str, TensorData)>) {
    let system = gradflux::Mpm {
        dim: 3,
        grid: MPM3_GRID,
        ..gradflux::Mpm::diffmpm_simple()
    };
    let side = MPM3_SIDE;
    let n = side * side * side;
    let spacing = 0.5 * system.dx();
    let x0: Vec<f32> = (0..n)
        .flat_map(|k| {
            let (i, j, l) = (k / (side * side), (k / side) % side, k % side);
            [
                0.15 + spacing * i as f32,
                0.2 + spacing * j as f32,
                0.15 + spacing * l as f32,
            ]
        })
        .collect();
    let g = Graph::new();
    let x = g.input("x0", [n, 3], DType::F32).expect("x0");
    let v = g.input("v0", [n, 3], DType::F32).expect("v0");
    let out = g
        .mpm_rollout(&system, x, v, None, RolloutOptions::new(MPM3_STEPS))
        .expect("rollout");
    let outs = if backward {
        let loss = g.sum_all(out.positions).expect("loss");
        g.grad(loss, &[v]).expect("grad")
    } else {
        vec![out.positions]
    };
    let data = vec![
        ("x0", TensorData::new([n, 3], x0).expect("x0")),
        (
            "v0",
            TensorData::new([n, 3], vec![0.5f32; 3 * n]).expect("v0"),
        ),
    ];
    (g, outs, data)
}

pub fn bench_mpm3(c: &mut Criterion) {
    declare_unit(MPM_GROUP, "particle-substep");
    let mut group = c.benchmark_group(MPM_GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let n = MPM3_SIDE.pow(3);
    group.throughput(Throughput::Elements((n * MPM3_STEPS) as u64));
    for dev in devices() {
        let tag = format!("{}-f32", dev.tag);
        for backward in [false, true] {
            let (g, outs, data) = mpm3_graph(backward);
            let kind = if backward { "fwdbwd" } else { "fwd" };
            let id = BenchmarkId::new(&tag, format!("mpm3d-{kind}-n{n}g{MPM3_GRID}t{MPM3_STEPS}"));
            let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
            let mut exe = compile(&dev.device, &g, &outs);
            group.bench_function(id, |bench| bench.iter(|| exe.run(&named).expect("run")));
        }
    }
    group.finish();
}
