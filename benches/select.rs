//! `top_k` throughput per shape, in input elements per second: routing shapes (8192
//! tokens over 8, 64 and 256 experts) and long rows. Shapes come from
//! `benches/top_k_shapes.txt`, which `benches/peers/torch_top_k.py` reads too.
//!
//! On a wgpu adapter the timed quantity is the kernels' device time with the input
//! resident ([`WgpuExecutable::kernel_seconds`]), as the peer script measures
//! `torch.topk` with CUDA events; on the CPU backend it is a whole `run()`. Rows of more
//! than `SOFTWARE_ELEMENT_BUDGET` elements in all run only on hardware adapters.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{DType, Device, Graph};

use crate::{compile, declare_unit, devices, kernel_time, random_f32, size_triples};

const GROUP: &str = "top_k";
const SOFTWARE_ELEMENT_BUDGET: usize = 1 << 20;

/// `(rows, n, k)` from `benches/top_k_shapes.txt`.
fn shapes() -> Vec<(usize, usize, usize)> {
    size_triples(include_str!("top_k_shapes.txt"))
}

pub fn bench(c: &mut Criterion) {
    declare_unit(GROUP, "elem");
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for d in devices() {
        let hardware = d.hardware;
        let tag = format!("{}-f32", d.tag);
        for (rows, n, k) in shapes() {
            if !hardware && rows * n > SOFTWARE_ELEMENT_BUDGET {
                continue;
            }
            let g = Graph::new();
            let x = g.input("x", [rows, n], DType::F32).expect("input");
            let (values, indices) = g.top_k(x, k, -1).expect("top_k");
            let data = random_f32(&[rows, n], 11);
            let inputs = [("x", &data)];
            group.throughput(Throughput::Elements((rows * n) as u64));
            let id = BenchmarkId::new(&tag, format!("{rows}x{n}k{k}"));
            match &d.device {
                Device::Wgpu(w) => {
                    let mut exe = w.compile_wgpu(&g, &[values, indices]).expect("compile");
                    group.bench_function(id, |bench| {
                        bench.iter_custom(|iters| kernel_time(&mut exe, &inputs, iters))
                    });
                }
                Device::Cpu => {
                    let mut exe = compile(&d.device, &g, &[values, indices]);
                    group.bench_function(id, |bench| bench.iter(|| exe.run(&inputs).expect("run")));
                }
            }
        }
    }
    group.finish();
}
