//! One training step of the `train_mlp` example (forward, backward and the Adam update, all
//! in one run): host time per step on each backend. Throughput counts steps.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::Graph;

use crate::{compile, declare_unit, devices};

#[path = "../examples/train_mlp/model.rs"]
mod model;

const GROUP: &str = "train_step";
const POINTS_PER_CLASS: usize = 200;

pub fn bench(c: &mut Criterion) {
    let devices = devices();
    declare_unit(GROUP, "step");
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    for d in devices {
        let mut rng = model::Rng(7);
        let (x, y) = model::spiral(POINTS_PER_CLASS, &mut rng).expect("data");
        let g = Graph::new();
        let n = x.shape().dims()[0];
        let (loss, _) = model::build(&g, n, 0.01, &mut rng).expect("graph");
        let mut exe = compile(&d.device, &g, &[loss]);
        let inputs = [("x", &x), ("y", &y)];
        group.bench_function(BenchmarkId::new(d.tag, format!("mlp{n}")), |bench| {
            bench.iter(|| exe.run(&inputs).expect("run"))
        });
    }
    group.finish();
}
