//! Matmul throughput per path and shape, in FLOP (2·m·k·n per product, declared to
//! criterion as elements, so `elem/s` reads as FLOP/s in the report).
//!
//! On a wgpu adapter the timed quantity is the kernels' device time
//! ([`WgpuExecutable::kernel_seconds`], GPU timestamps where the adapter has them) with the
//! operands already resident, which is what `benches/peers/torch_matmul.py` measures for
//! `torch.matmul`. On the CPU backend it is a whole `run()`. Paths: `f32` (the blocked
//! kernel with the configuration the tuner picks) and `f16` (f16 storage, f32
//! accumulation) where the adapter has `SHADER_F16`.
//!
//! Shapes above `SOFTWARE_FLOP_BUDGET` run only on hardware adapters; the CPU backend and
//! software adapters would take minutes per sample there.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{DType, Device, Graph, TensorData};

use crate::{compile, declare_unit, devices, kernel_time, meta_line, random_f32, size_triples};

const GROUP: &str = "matmul";

/// `(m, k, n)` from `benches/matmul_shapes.txt`, the list the peer script reads too.
fn shapes() -> Vec<(usize, usize, usize)> {
    size_triples(include_str!("matmul_shapes.txt"))
}

/// Largest product (in FLOP) benchmarked on the CPU backend and on software adapters.
const SOFTWARE_FLOP_BUDGET: f64 = 3e8;

/// Dense peak throughput (FLOP/s) of GPUs we can name from the adapter string: vendor
/// datasheet figures, f32 on CUDA cores and f16 on tensor cores without sparsity.
const PEAKS: &[(&str, f64, f64)] = &[
    ("H200", 67e12, 989e12),
    ("H100 PCIe", 51e12, 756e12),
    ("H100", 67e12, 989e12),
    ("A100", 19.5e12, 312e12),
];

fn peak(name: &str, dtype: DType) -> Option<f64> {
    PEAKS
        .iter()
        .find(|(k, _, _)| name.contains(k))
        .map(|&(_, f32_peak, f16_peak)| {
            if dtype == DType::F16 {
                f16_peak
            } else {
                f32_peak
            }
        })
}

fn shape_id((m, k, n): (usize, usize, usize)) -> String {
    format!("{m}x{k}x{n}")
}

fn f16_data(dims: &[usize], seed: u64) -> TensorData {
    random_f32(dims, seed)
        .cast_to(DType::F16)
        .expect("f16 data")
}

pub fn bench(c: &mut Criterion) {
    let devices = devices();
    declare_unit(GROUP, "FLOP");
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    // Each iteration is long enough that equal-sized samples beat criterion's linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    for d in devices {
        let hardware = d.hardware;
        // (dtype, matrix units): where the adapter has them, each dtype they take is
        // timed twice, with the cooperative kernel allowed (`-coop`) and without.
        let mut paths = vec![(DType::F32, false)];
        if let Device::Wgpu(w) = &d.device {
            if w.summary()
                .features
                .contains(gradflux::wgpu::Features::SHADER_F16)
            {
                paths.push((DType::F16, false));
            }
            if let Some(caps) = w.cooperative_matrix() {
                for dtype in [DType::F32, DType::F16] {
                    if caps.size(dtype).is_some() {
                        paths.push((dtype, true));
                    }
                }
            }
        }
        for &(dtype, coop) in &paths {
            let tag = format!("{}-{dtype}{}", d.tag, if coop { "-coop" } else { "" });
            meta_line(&format!("device\t{tag}\t{} ({dtype})", d.device.name()));
            if let Some(p) = peak(&d.device.name(), dtype) {
                meta_line(&format!("peak\t{tag}\t{p}"));
            }
            for (m, k, n) in shapes() {
                let flops = 2.0 * (m * k * n) as f64;
                if !hardware && flops > SOFTWARE_FLOP_BUDGET {
                    continue;
                }
                let g = Graph::new();
                let a = g.input("a", [m, k], dtype).expect("input");
                let b = g.input("b", [k, n], dtype).expect("input");
                let prod = g.matmul(a, b).expect("matmul");
                let (mut av, mut bv) = (random_f32(&[m, k], 3), random_f32(&[k, n], 4));
                if dtype == DType::F16 {
                    (av, bv) = (f16_data(&[m, k], 3), f16_data(&[k, n], 4));
                }
                let inputs = [("a", &av), ("b", &bv)];
                group.throughput(Throughput::Elements(flops as u64));
                let id = BenchmarkId::new(&tag, shape_id((m, k, n)));
                match &d.device {
                    Device::Wgpu(w) => {
                        w.set_cooperative_matrix(coop);
                        let mut exe = w.compile_wgpu(&g, &[prod]).expect("compile");
                        group.bench_function(id, |bench| {
                            bench.iter_custom(|iters| kernel_time(&mut exe, &inputs, iters))
                        });
                    }
                    Device::Cpu => {
                        let mut exe = compile(&d.device, &g, &[prod]);
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
