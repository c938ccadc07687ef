//! Every differentiable op: its gradient passes a central finite-difference check in f64 on
//! the CPU reference, and the same gradient graph in f32 gives the same answer on the wgpu
//! adapter as on the CPU.

#[path = "../common/mod.rs"]
mod common;

mod custom;
mod elementwise;
mod graph;
mod index;
mod layout;
mod matmul;
mod moe;
mod ot;
mod physics;
mod reduce;
mod scan;
mod select;

use gradflux::{
    check_gradients, Activation, CustomOp, DType, Error, GradCheck, Graph, Result, Tensor,
    TensorData, Tolerance,
};

use common::{check, random, Rng};

/// One input's shape and the range its values are drawn from.
struct Arg {
    shape: Vec<usize>,
    lo: f64,
    hi: f64,
}

fn arg(shape: &[usize], lo: f64, hi: f64) -> Arg {
    Arg {
        shape: shape.to_vec(),
        lo,
        hi,
    }
}

/// Builds `loss = sum(f(inputs) * w)` with fixed random weights `w` (so the cotangent is
/// not uniform), checks it by finite differences in f64, then checks CPU/GPU parity of the
/// f32 gradients.
fn check_op(label: &str, args: &[Arg], f: impl Fn(&Graph, &[Tensor]) -> Result<Tensor>) {
    let mut rng = Rng::new(label.len() as u64 * 7919 + 1);
    let data64: Vec<TensorData> = args
        .iter()
        .map(|a| random(&mut rng, a.shape.clone(), DType::F64, a.lo, a.hi))
        .collect();
    let names: Vec<String> = (0..args.len()).map(|i| format!("x{i}")).collect();
    let build = |dtype: DType| -> (Graph, Tensor, Vec<Tensor>) {
        let g = Graph::new();
        let xs: Vec<Tensor> = args
            .iter()
            .zip(&names)
            .map(|(a, n)| g.input(n, a.shape.clone(), dtype).unwrap())
            .collect();
        let y = f(&g, &xs).unwrap_or_else(|e| panic!("{label}: {e}"));
        let shape = g.shape(y).unwrap();
        let w = random(&mut Rng::new(99), shape, dtype, -1.0, 1.0);
        let loss = g
            .sum_all(g.mul(y, g.constant(w).unwrap()).unwrap())
            .unwrap();
        (g, loss, xs)
    };

    let (g, loss, _) = build(DType::F64);
    let inputs: Vec<(&str, &TensorData)> = names
        .iter()
        .map(String::as_str)
        .zip(data64.iter())
        .collect();
    let wrt: Vec<Tensor> = names.iter().map(|n| g.input_named(n).unwrap()).collect();
    let report = check_gradients(&g, loss, &inputs, &wrt, GradCheck::default())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        report.passed(),
        "{label}: finite differences disagree: {report:?}"
    );

    let (g, loss, xs) = build(DType::F32);
    let grads = g.grad(loss, &xs).unwrap();
    let data32: Vec<TensorData> = data64
        .iter()
        .map(|d| {
            let v: Vec<f32> = d
                .values::<f64>()
                .unwrap()
                .iter()
                .map(|&x| x as f32)
                .collect();
            TensorData::new(d.shape().clone(), v).unwrap()
        })
        .collect();
    let inputs: Vec<(&str, &TensorData)> = names
        .iter()
        .map(String::as_str)
        .zip(data32.iter())
        .collect();
    check(
        &format!("{label} gradients"),
        &g,
        &grads,
        &inputs,
        Tolerance::new(1e-4, 1e-5),
    );
}
