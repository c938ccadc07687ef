//! Per-op host overhead: a graph of 1000 chained adds on 64 elements, so the time of one
//! run is almost all encoding, dispatch and synchronisation rather than arithmetic.
//! Throughput counts dispatches (ops); after the group a summary line gives host
//! microseconds per dispatch and runs per second as measured by the timed iterations.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use gradflux::Graph;

use crate::{compile, declare_unit, devices, input_f32, random_f32};

const GROUP: &str = "dispatch_chain";
const OPS: usize = 1000;
const LEN: usize = 64;

pub fn bench(c: &mut Criterion) {
    let devices = devices();
    declare_unit(GROUP, "dispatch");

    let g = Graph::new();
    let x = input_f32(&g, "x", &[LEN]);
    let mut t = x;
    for _ in 0..OPS {
        t = g.add(t, x).expect("add");
    }
    let xs = random_f32(&[LEN], 5);
    let inputs = [("x", &xs)];

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(20);
    group.throughput(Throughput::Elements(OPS as u64));
    let mut summaries = Vec::new();
    for d in devices {
        let mut exe = compile(&d.device, &g, &[t]);
        // Time and iteration count over every timed batch (warm-up included), for the
        // summary printed below.
        let (mut total, mut runs) = (Duration::ZERO, 0u64);
        group.bench_function(BenchmarkId::new(d.tag, format!("{OPS}x{LEN}")), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(exe.run(&inputs).expect("run"));
                }
                let elapsed = start.elapsed();
                total += elapsed;
                runs += iters;
                elapsed
            })
        });
        summaries.push((d.tag, d.device.name(), total, runs));
    }
    group.finish();
    for (tag, name, total, runs) in summaries {
        if runs == 0 {
            continue; // filtered out
        }
        let per_run = total.as_secs_f64() / runs as f64;
        println!(
            "{GROUP}/{tag} ({name}): {:.2} µs host time per dispatch, {:.1} runs/s \
             ({OPS} ops per run, {runs} runs)",
            per_run * 1e6 / OPS as f64,
            1.0 / per_run
        );
    }
}
