//! The criterion root of gradflux's benchmarks: one module per op family, each run on the
//! CPU reference backend and on the best wgpu adapter when there is one.
//!
//! ```text
//! cargo bench -p gradflux --bench gradflux            # full measurement
//! cargo xtask bench --quick                           # short, and writes bench-report/
//! cargo test -p gradflux --benches                    # each benchmark once, as a test
//! ```
//!
//! Benchmark ids are `<family>/<device>/<size>` with device `cpu` or `gpu`. On a wgpu
//! adapter the kernel benches (elementwise, matmul, top_k, moe) time the kernels' device
//! work with the inputs resident ([`kernel_time`]), the quantity the peer scripts measure;
//! the dispatch and training benches, and everything on the CPU backend, time whole
//! `run()`s (upload, dispatch, device sync and readback).

use std::io::Write as _;
use std::sync::OnceLock;

use criterion::{criterion_group, criterion_main};
use gradflux::{DType, Device, Executable, Graph, Tensor, TensorData};

mod dispatch;
mod elementwise;
mod matmul;
mod moe;
mod ot;
mod physics;
mod select;
mod training;

/// A device a benchmark runs on, with the tag used in benchmark ids.
pub struct BenchDevice {
    pub tag: &'static str,
    pub device: Device,
    /// A hardware adapter (not the CPU backend, not a software rasteriser): the large
    /// shapes run only there.
    pub hardware: bool,
}

/// The `(a, b, c)` size triples of a shapes file: one per line, `#` comments.
pub fn size_triples(text: &str) -> Vec<(usize, usize, usize)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let v: Vec<usize> = l
                .split_whitespace()
                .map(|x| x.parse().expect("a size"))
                .collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

/// The CPU backend, then the best wgpu adapter if one exists; opened once and shared.
pub fn devices() -> &'static [BenchDevice] {
    static DEVICES: OnceLock<Vec<BenchDevice>> = OnceLock::new();
    DEVICES.get_or_init(|| {
        let mut list = vec![BenchDevice {
            tag: "cpu",
            device: Device::Cpu,
            hardware: false,
        }];
        match Device::gpu() {
            Ok(device) => {
                let hardware = match &device {
                    Device::Wgpu(w) => {
                        w.summary().info.device_type != gradflux::wgpu::DeviceType::Cpu
                    }
                    Device::Cpu => false,
                };
                list.push(BenchDevice {
                    tag: "gpu",
                    device,
                    hardware,
                })
            }
            Err(e) => println!("gradflux benches: no wgpu adapter ({e}); CPU backend only"),
        }
        for d in &list {
            println!("gradflux benches: `{}` = {}", d.tag, d.device.name());
            meta_line(&format!("device\t{}\t{}", d.tag, d.device.name()));
        }
        list
    })
}

/// Records what `cargo xtask bench` needs for its report (device names, throughput units)
/// in the file named by `GRADFLUX_BENCH_META`, when set.
pub fn meta_line(line: &str) {
    let Some(path) = std::env::var_os("GRADFLUX_BENCH_META") else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{line}");
    }
}

/// Declares what one throughput "element" of a benchmark group counts (`FLOP`, `elem`,
/// `dispatch`), for the report.
pub fn declare_unit(group: &str, unit: &str) {
    meta_line(&format!("unit\t{group}\t{unit}"));
}

/// Deterministic f32 data in `[-1, 1)` (xorshift64*), so runs are comparable.
pub fn random_f32(dims: &[usize], seed: u64) -> TensorData {
    let mut s = seed | 1;
    let n: usize = dims.iter().product();
    let values = (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
            ((r >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect::<Vec<f32>>();
    TensorData::new(dims.to_vec(), values).expect("length matches shape")
}

/// Compiles `outputs` of `graph` on `device`, outside any timed region. (criterion's
/// warm-up pays first-run costs before measuring.)
pub fn compile(device: &Device, graph: &Graph, outputs: &[Tensor]) -> Box<dyn Executable> {
    device
        .compile(graph, outputs)
        .unwrap_or_else(|e| panic!("compile on {}: {e}", device.name()))
}

/// Device time of `iters` runs of `exe`'s kernels with the inputs resident, measured in
/// passes of at most 256 runs so the encoded command stream stays small when criterion
/// asks for many.
pub fn kernel_time(
    exe: &mut gradflux_wgpu::WgpuExecutable,
    inputs: &[(&str, &TensorData)],
    iters: u64,
) -> std::time::Duration {
    const MAX_REPS: u64 = 256;
    let mut total = 0.0;
    let mut left = iters.max(1);
    while left > 0 {
        let reps = left.min(MAX_REPS);
        let (secs, _) = exe.kernel_seconds(inputs, reps as u32).expect("timing");
        total += secs * reps as f64;
        left -= reps;
    }
    std::time::Duration::from_secs_f64(total)
}

/// An f32 input of the given shape.
pub fn input_f32(g: &Graph, name: &str, dims: &[usize]) -> Tensor {
    g.input(name, dims.to_vec(), DType::F32).expect("input")
}

criterion_group!(
    benches,
    elementwise::bench,
    matmul::bench,
    select::bench,
    moe::bench,
    ot::bench,
    dispatch::bench,
    physics::bench,
    physics::bench_mpm,
    physics::bench_mpm3,
    training::bench
);
criterion_main!(benches);
