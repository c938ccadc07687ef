//! Sinkhorn iterations per second: `ITERATIONS` log-domain iterations (a fixed count, no
//! tolerance) between `n` and `m` points of `[0, 1)^d`, over a dense cost matrix (the
//! `dense-` ids; the matrix is an input, built outside the timed region) and with the cost
//! computed on the fly (`online-`). Shapes come from `benches/sinkhorn_shapes.txt`, which
//! `benches/peers/ot_sinkhorn.py` reads too, with the same ε and iteration count.
//!
//! The `grad-` ids time a whole forward and backward pass of one dense problem (the same
//! iterations, then the gradient in the cost) for each `OtGradient` mode: `envelope` of
//! the entropic objective, `implicit` and `unrolled` of a loss that reads the potentials.
//!
//! On a wgpu adapter the timed quantity is the device time of the loop's kernels
//! ([`WgpuExecutable::kernel_seconds`]); on the CPU backend it is a whole `run()`. Dense
//! costs past `DENSE_BYTES` and problems past the software budgets run only where they fit.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{DType, Device, Graph, OtGradient, PointCost, SinkhornOptions, Tensor, TensorData};

use crate::{compile, declare_unit, devices, kernel_time, random_f32, size_triples};

const GROUP: &str = "sinkhorn";
/// Iterations per timed call (the peers run as many).
pub const ITERATIONS: usize = 10;
/// Largest dense cost matrix benchmarked (one storage binding must hold it).
const DENSE_BYTES: usize = 1 << 31;
/// Largest `n · m` of the `grad-` ids (the unrolled graph keeps every iteration's
/// `n × m` intermediates).
const GRAD_BUDGET: usize = 1 << 22;
/// Largest `n · m · d` on a software adapter or the CPU backend.
const SOFTWARE_BUDGET: usize = 1 << 23;

/// `(n, m, d)` from `benches/sinkhorn_shapes.txt`.
fn shapes() -> Vec<(usize, usize, usize)> {
    size_triples(include_str!("sinkhorn_shapes.txt"))
}

/// Points in `[0, 1)^d`.
fn points(len: usize, d: usize, seed: u64) -> TensorData {
    let v = random_f32(&[len, d], seed)
        .to_f64_vec()
        .iter()
        .map(|x| (x * 0.5 + 0.5) as f32)
        .collect::<Vec<_>>();
    TensorData::new([len, d], v).expect("length")
}

fn uniform(len: usize) -> TensorData {
    TensorData::new([len], vec![1.0 / len as f32; len]).expect("length")
}

/// The dense squared Euclidean cost between two clouds, on the host.
fn dense_cost(x: &TensorData, y: &TensorData) -> TensorData {
    let (xd, yd) = (x.shape().dims(), y.shape().dims());
    let (n, m, d) = (xd[0], yd[0], xd[1]);
    let (xv, yv) = (x.to_f64_vec(), y.to_f64_vec());
    let mut c = Vec::with_capacity(n * m);
    for i in 0..n {
        for j in 0..m {
            let s: f64 = (0..d)
                .map(|k| (xv[i * d + k] - yv[j * d + k]).powi(2))
                .sum();
            c.push(s as f32);
        }
    }
    TensorData::new([n, m], c).expect("length")
}

/// The graph of one problem: `(graph, potentials)`.
fn graph(online: bool, (n, m, d): (usize, usize, usize)) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let a = g.input("a", [n], DType::F32).expect("a");
    let b = g.input("b", [m], DType::F32).expect("b");
    let options = SinkhornOptions::new(0.05 * d as f64 / 6.0, ITERATIONS);
    let ot = if online {
        let x = g.input("x", [n, d], DType::F32).expect("x");
        let y = g.input("y", [m, d], DType::F32).expect("y");
        g.sinkhorn_points(x, y, a, b, None, PointCost::SqEuclidean, options)
    } else {
        let cost = g.input("cost", [n, m], DType::F32).expect("cost");
        g.sinkhorn(cost, a, b, None, options)
    }
    .expect("sinkhorn");
    (g, vec![ot.f, ot.g])
}

/// The gradient modes the `grad-` ids compare.
const GRADIENTS: [(&str, OtGradient); 3] = [
    ("envelope", OtGradient::Envelope),
    (
        "implicit",
        OtGradient::Implicit(gradflux::ImplicitSolve {
            max_iterations: 200,
            tolerance: 1e-6,
        }),
    ),
    ("unrolled", OtGradient::Unrolled),
];

/// Forward and backward of one dense problem: `(graph, gradient in the cost)`.
fn grad_graph(gradient: OtGradient, (n, m, d): (usize, usize, usize)) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let a = g.input("a", [n], DType::F32).expect("a");
    let b = g.input("b", [m], DType::F32).expect("b");
    let cost = g.input("cost", [n, m], DType::F32).expect("cost");
    let options = SinkhornOptions {
        gradient,
        ..SinkhornOptions::new(0.05 * d as f64 / 6.0, ITERATIONS)
    };
    let ot = g.sinkhorn(cost, a, b, None, options).expect("sinkhorn");
    let loss = match gradient {
        OtGradient::Envelope => g.ot_objective(&ot),
        // A loss of the potentials (Σ f·a + Σ g·b weighted unevenly), which the envelope
        // theorem does not differentiate.
        _ => {
            let half = g.scalar(0.5, DType::F32).expect("scalar");
            let fa = g.sum_all(g.mul(ot.f, a).expect("mul")).expect("sum");
            let gb = g.sum_all(g.mul(ot.g, b).expect("mul")).expect("sum");
            g.add(fa, g.mul(gb, half).expect("mul"))
        }
    }
    .expect("loss");
    let dcost = g.grad(loss, &[cost]).expect("grad");
    (g, dcost)
}

pub fn bench(c: &mut Criterion) {
    declare_unit(GROUP, "iter");
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for dev in devices() {
        let tag = format!("{}-f32", dev.tag);
        for (n, m, d) in shapes() {
            if !dev.hardware && n * m * d > SOFTWARE_BUDGET {
                continue;
            }
            let (x, y) = (points(n, d, 21), points(m, d, 22));
            let (a, b) = (uniform(n), uniform(m));
            for online in [false, true] {
                if !online && n * m * 4 > DENSE_BYTES {
                    continue;
                }
                let cost = (!online).then(|| dense_cost(&x, &y));
                if let Some(cost) = cost.as_ref().filter(|_| n * m <= GRAD_BUDGET) {
                    for (mode, gradient) in GRADIENTS {
                        let inputs = [("a", &a), ("b", &b), ("cost", cost)];
                        let (g, outs) = grad_graph(gradient, (n, m, d));
                        group.throughput(Throughput::Elements(1));
                        let id = BenchmarkId::new(&tag, format!("grad-{mode}-n{n}m{m}d{d}"));
                        time(&mut group, &dev.device, (&g, &outs), &inputs, id);
                    }
                }
                let mut inputs = vec![("a", &a), ("b", &b)];
                match &cost {
                    Some(c) => inputs.push(("cost", c)),
                    None => inputs.extend([("x", &x), ("y", &y)]),
                }
                let (g, outs) = graph(online, (n, m, d));
                group.throughput(Throughput::Elements(ITERATIONS as u64));
                let kind = if online { "online" } else { "dense" };
                let id = BenchmarkId::new(&tag, format!("{kind}-n{n}m{m}d{d}"));
                time(&mut group, &dev.device, (&g, &outs), &inputs, id);
            }
        }
    }
    group.finish();
}

/// Times runs of `outputs` on `device`: device time of the kernels on wgpu, whole runs on
/// the CPU backend.
fn time(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    device: &Device,
    (g, outs): (&Graph, &[Tensor]),
    inputs: &[(&str, &TensorData)],
    id: BenchmarkId,
) {
    match device {
        Device::Wgpu(w) => {
            let mut exe = w.compile_wgpu(g, outs).expect("compile");
            group.bench_function(id, |bench| {
                bench.iter_custom(|iters| kernel_time(&mut exe, inputs, iters))
            });
        }
        Device::Cpu => {
            let mut exe = compile(device, g, outs);
            group.bench_function(id, |bench| bench.iter(|| exe.run(inputs).expect("run")));
        }
    }
}
