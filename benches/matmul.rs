//! Square f32 matmul. Throughput is in FLOP (2·n³ per product), declared to criterion as
//! elements, so its `elem/s` reads as FLOP/s (the xtask report labels it so).

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::Graph;

use crate::{compile, declare_unit, devices, input_f32, random_f32};

const GROUP: &str = "matmul";
const SIZES: [usize; 3] = [128, 256, 512];

pub fn bench(c: &mut Criterion) {
    let devices = devices();
    declare_unit(GROUP, "FLOP");

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    // Each iteration is long enough that equal-sized samples beat criterion's linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    for n in SIZES {
        let g = Graph::new();
        let a = input_f32(&g, "a", &[n, n]);
        let b = input_f32(&g, "b", &[n, n]);
        let prod = g.matmul(a, b).expect("matmul");
        let (av, bv) = (random_f32(&[n, n], 3), random_f32(&[n, n], 4));
        let inputs = [("a", &av), ("b", &bv)];
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        for d in devices {
            let mut exe = compile(&d.device, &g, &[prod]);
            group.bench_function(BenchmarkId::new(d.tag, n), |bench| {
                bench.iter(|| exe.run(&inputs).expect("run"))
            });
        }
    }
    group.finish();
}
