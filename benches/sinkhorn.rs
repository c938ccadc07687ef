//! Sinkhorn iterations per second: `ITERATIONS` log-domain iterations (a fixed count, no
//! tolerance) between `n` and `m` points of `[0, 1)^d`, over a dense cost matrix (the
//! `dense-` ids; the matrix is an input, built outside the timed region) and with the cost
//! computed on the fly (`online-`). Shapes come from `benches/sinkhorn_shapes.txt`, which
//! `benches/peers/ot_sinkhorn.py` reads too, with the same ε and iteration count.
//!
//! On a wgpu adapter the timed quantity is the device time of the loop's kernels
//! ([`WgpuExecutable::kernel_seconds`]); on the CPU backend it is a whole `run()`. Dense
//! costs past `DENSE_BYTES` and problems past the software budgets run only where they fit.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{DType, Device, Graph, PointCost, SinkhornOptions, Tensor, TensorData};

use crate::{compile, declare_unit, devices, kernel_time, random_f32, size_triples};

const GROUP: &str = "sinkhorn";
/// Iterations per timed call (the peers run as many).
pub const ITERATIONS: usize = 10;
/// Largest dense cost matrix benchmarked (one storage binding must hold it).
const DENSE_BYTES: usize = 1 << 31;
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
                let mut inputs = vec![("a", &a), ("b", &b)];
                match &cost {
                    Some(c) => inputs.push(("cost", c)),
                    None => inputs.extend([("x", &x), ("y", &y)]),
                }
                let (g, outs) = graph(online, (n, m, d));
                group.throughput(Throughput::Elements(ITERATIONS as u64));
                let kind = if online { "online" } else { "dense" };
                let id = BenchmarkId::new(&tag, format!("{kind}-n{n}m{m}d{d}"));
                match &dev.device {
                    Device::Wgpu(w) => {
                        let mut exe = w.compile_wgpu(&g, &outs).expect("compile");
                        group.bench_function(id, |bench| {
                            bench.iter_custom(|iters| kernel_time(&mut exe, &inputs, iters))
                        });
                    }
                    Device::Cpu => {
                        let mut exe = compile(&dev.device, &g, &outs);
                        group.bench_function(id, |bench| {
                            bench.iter(|| exe.run(&inputs).expect("run"))
                        });
                    }
                }
            }
        }
    }
    group.finish();
}
