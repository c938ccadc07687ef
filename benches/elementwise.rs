//! A chain of eight elementwise ops over 1M f32 elements: memory-bound kernels, one
//! dispatch each on wgpu, timed as device work with the inputs resident (a whole `run()`
//! on the CPU backend). Throughput counts tensor elements through the whole chain.

use criterion::{BenchmarkId, Criterion, Throughput};
use gradflux::{Device, Graph};

use crate::{compile, declare_unit, devices, input_f32, kernel_time, random_f32};

const GROUP: &str = "elementwise_chain8";
const N: usize = 1 << 20;

pub fn bench(c: &mut Criterion) {
    let devices = devices();
    declare_unit(GROUP, "elem");

    let g = Graph::new();
    let x = input_f32(&g, "x", &[N]);
    let y = input_f32(&g, "y", &[N]);
    let out = (|| {
        let t = g.mul(x, y)?; // 1
        let t = g.add(t, x)?; // 2
        let t = g.relu(t)?; // 3
        let t = g.sub(t, y)?; // 4
        let t = g.abs(t)?; // 5
        let t = g.maximum(t, x)?; // 6
        let t = g.sqrt(t)?; // 7
        g.tanh(t) // 8
    })()
    .expect("build the elementwise chain");
    let xs = random_f32(&[N], 1);
    let ys = random_f32(&[N], 2);
    let inputs = [("x", &xs), ("y", &ys)];

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for d in devices {
        let id = BenchmarkId::new(d.tag, N);
        match &d.device {
            Device::Wgpu(w) => {
                let mut exe = w.compile_wgpu(&g, &[out]).expect("compile");
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| kernel_time(&mut exe, &inputs, iters))
                });
            }
            Device::Cpu => {
                let mut exe = compile(&d.device, &g, &[out]);
                group.bench_function(id, |b| b.iter(|| exe.run(&inputs).expect("run")));
            }
        }
    }
    group.finish();
}
