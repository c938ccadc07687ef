//! Mixture-of-experts benches, in tokens per second: routing alone (the fused softmax
//! top-k kernel with its histogram, `fused-`, and that plus a dropless dispatch) and a
//! whole MoE layer forward and forward+backward. Shapes come from `benches/moe_shapes.txt`, which
//! `benches/peers/torch_moe.py` (an eager PyTorch layer) reads too.
//!
//! On a wgpu adapter the timed quantity is the kernels' device time with the inputs
//! resident; on the CPU backend it is a whole `run()`. Work past `SOFTWARE_BUDGET`
//! (see there) runs only on hardware adapters.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gradflux::{DType, Device, DispatchOptions, Graph, Router, Tensor, TensorData};

use crate::{compile, declare_unit, devices, input_f32, kernel_time, random_f32};

/// Most work (routing: logits; layer: multiply-adds of one expert matmul) run on the CPU
/// backend and software adapters.
const SOFTWARE_BUDGET: usize = 1 << 25;
const BLOCK: usize = 64;

enum Shape {
    Routing {
        t: usize,
        e: usize,
        k: usize,
    },
    Layer {
        t: usize,
        d: usize,
        h: usize,
        e: usize,
        k: usize,
    },
}

fn shapes() -> Vec<Shape> {
    include_str!("moe_shapes.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let v: Vec<usize> = w[1..].iter().map(|x| x.parse().expect("a size")).collect();
            match w[0] {
                "routing" => Shape::Routing {
                    t: v[0],
                    e: v[1],
                    k: v[2],
                },
                _ => Shape::Layer {
                    t: v[0],
                    d: v[1],
                    h: v[2],
                    e: v[3],
                    k: v[4],
                },
            }
        })
        .collect()
}

/// The layer of the `moe` example without a capacity: returns `(out, params)`.
fn layer(g: &Graph, (t, d, h, e, k): (usize, usize, usize, usize, usize)) -> (Tensor, Vec<Tensor>) {
    let input = |name: &str, dims: &[usize]| input_f32(g, name, dims);
    let (x, wr) = (input("x", &[t, d]), input("wr", &[d, e]));
    let (w1, w2) = (input("w1", &[e, d, h]), input("w2", &[e, h, d]));
    let r = g
        .route(
            g.matmul(x, wr).expect("router"),
            Router::SoftmaxTopK {
                k,
                renormalize: true,
            },
        )
        .expect("route");
    let disp = g
        .moe_dispatch(r.experts, None, DispatchOptions::dropless(e, BLOCK))
        .expect("dispatch");
    let rows = g.moe_gather(x, &disp).expect("gather");
    let hidden = g
        .relu(
            g.grouped_matmul(rows, w1, disp.block_experts, BLOCK, false)
                .expect("w1"),
        )
        .expect("relu");
    let y = g
        .grouped_matmul(hidden, w2, disp.block_experts, BLOCK, false)
        .expect("w2");
    (
        g.moe_combine(y, &disp, r.gates).expect("combine"),
        vec![x, wr, w1, w2],
    )
}

pub fn bench(c: &mut Criterion) {
    for group in ["moe_routing", "moe_layer"] {
        declare_unit(group, "token");
    }
    for d in devices() {
        let hardware = d.hardware;
        for shape in shapes() {
            let g = Graph::new();
            let (group, id, tokens, outputs, data, work) = match shape {
                Shape::Routing { t, e, k } => {
                    let logits = g.input("logits", [t, e], DType::F32).expect("input");
                    let r = g
                        .route(
                            logits,
                            Router::SoftmaxTopK {
                                k,
                                renormalize: true,
                            },
                        )
                        .expect("route");
                    let disp = g
                        .moe_dispatch(r.experts, None, DispatchOptions::dropless(e, BLOCK))
                        .expect("dispatch");
                    let data: Vec<(String, TensorData)> =
                        vec![("logits".to_string(), random_f32(&[t, e], 21))];
                    let outs = vec![r.gates, disp.sorted_ids, disp.positions, disp.counts];
                    (
                        "moe_routing",
                        format!("T{t}E{e}k{k}"),
                        t,
                        // The fused routing kernel alone (gates, experts, histogram), then
                        // routing with the dispatch.
                        vec![("fused-", vec![r.gates, r.experts, r.counts]), ("", outs)],
                        data,
                        t * e,
                    )
                }
                Shape::Layer { t, d: dim, h, e, k } => {
                    let (out, params) = layer(&g, (t, dim, h, e, k));
                    let loss = g.sum_all(out).expect("loss");
                    let mut grads = g.grad(loss, &params).expect("grad");
                    grads.push(loss);
                    let data = [
                        ("x", vec![t, dim]),
                        ("wr", vec![dim, e]),
                        ("w1", vec![e, dim, h]),
                        ("w2", vec![e, h, dim]),
                    ]
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, s))| (n.to_string(), random_f32(&s, 30 + i as u64)))
                    .collect();
                    let id = format!("T{t}D{dim}H{h}E{e}k{k}");
                    (
                        "moe_layer",
                        id,
                        t,
                        vec![("fwd-", vec![out]), ("fwdbwd-", grads)],
                        data,
                        t * k * dim * h,
                    )
                }
            };
            if !hardware && work > SOFTWARE_BUDGET {
                continue;
            }
            let inputs: Vec<(&str, &TensorData)> =
                data.iter().map(|(n, v)| (n.as_str(), v)).collect();
            let mut bench_group = c.benchmark_group(group);
            bench_group.sample_size(10);
            bench_group.sampling_mode(SamplingMode::Flat);
            bench_group.throughput(Throughput::Elements(tokens as u64));
            for (prefix, outs) in outputs {
                let bid = BenchmarkId::new(format!("{}-f32", d.tag), format!("{prefix}{id}"));
                match &d.device {
                    Device::Wgpu(w) => {
                        let mut exe = w.compile_wgpu(&g, &outs).expect("compile");
                        bench_group.bench_function(bid, |b| {
                            b.iter_custom(|iters| kernel_time(&mut exe, &inputs, iters))
                        });
                    }
                    Device::Cpu => {
                        let mut exe = compile(&d.device, &g, &outs);
                        bench_group
                            .bench_function(bid, |b| b.iter(|| exe.run(&inputs).expect("run")));
                    }
                }
            }
            bench_group.finish();
        }
    }
}
