//! The gradient transform itself: accumulation, refusals, the checker, memory, vjp, tie rules, detach.

use super::*;

#[test]
fn a_value_used_several_times_accumulates_its_gradients() {
    check_op("reuse", &[arg(&[50], -1.0, 1.0)], |g, x| {
        let a = g.mul(x[0], x[0])?;
        let b = g.exp(x[0])?;
        let c = g.mul(g.tanh(x[0])?, x[0])?;
        g.add(g.mul(a, b)?, c)
    });
}

#[test]
fn grad_of_the_loss_itself_and_of_an_unrelated_input() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let unrelated = g.input("u", [2, 2], DType::F32).unwrap();
    let loss = g.sum_all(g.mul(x, x).unwrap()).unwrap();
    let grads = g.grad(loss, &[x, unrelated]).unwrap();
    let data = TensorData::new([3], vec![1.0f32, -2.0, 0.5]).unwrap();
    let u = TensorData::zeros([2, 2], DType::F32);
    let out = check(
        "x^2",
        &g,
        &grads,
        &[("x", &data), ("u", &u)],
        Tolerance::EXACT,
    );
    assert_eq!(out[0].values::<f32>().unwrap(), &[2.0, -4.0, 1.0]);
    assert_eq!(out[1].values::<f32>().unwrap(), &[0.0; 4]);
}

#[test]
fn non_differentiable_requests_are_refused_clearly() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let i = g.input("i", [3], DType::I32).unwrap();
    let loss = g
        .sum_all(g.add(x, g.cast(i, DType::F32).unwrap()).unwrap())
        .unwrap();
    let e = g.grad(loss, &[i]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DType {
                op: "grad",
                got: DType::I32,
                ..
            }
        ),
        "{e}"
    );
    let e = g.grad(x, &[x]).unwrap_err();
    assert!(e.to_string().contains("one element"), "{e}");

    let op = CustomOp::builder("no_backward")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let e = g.grad(g.sum_all(y).unwrap(), &[x]).unwrap_err();
    assert!(e.to_string().contains("no_backward"), "{e}");
}

#[test]
fn the_checker_catches_a_wrong_gradient() {
    let g = Graph::new();
    let x = g.input("x", [4], DType::F64).unwrap();
    // relu'(0) is taken as 0, but the central difference at exactly 0 sees 1/2.
    let loss = g.sum_all(g.relu(x).unwrap()).unwrap();
    let data = TensorData::new([4], vec![0.0f64, 1.0, -1.0, 2.0]).unwrap();
    let report = check_gradients(&g, loss, &[("x", &data)], &[x], GradCheck::default()).unwrap();
    assert!(!report.passed(), "{report:?}");
    assert_eq!(report.worst_failure.as_ref().unwrap().1, 0);
}

/// Peak bytes of forward + backward for a chain of `n` ops on 1024 floats.
/// `op` gets the running value and one scalar constant shared by the whole chain.
fn forward_backward_peak(n: usize, op: fn(&Graph, Tensor, Tensor) -> Result<Tensor>) -> u64 {
    let g = Graph::new();
    let x = g.input("x", [1024], DType::F32).unwrap();
    let k = g.scalar(1.001, DType::F32).unwrap();
    let mut y = x;
    for _ in 0..n {
        y = op(&g, y, k).unwrap();
    }
    let loss = g.sum_all(y).unwrap();
    let dx = g.grad(loss, &[x]).unwrap()[0];
    let cpu = gradflux::Device::Cpu.compile(&g, &[loss, dx]).unwrap();
    let peak = cpu.memory().peak_bytes;
    if let Some(gpu) = common::gpu() {
        assert_eq!(
            gpu.compile(&g, &[loss, dx]).unwrap().memory().peak_bytes,
            peak
        );
    }
    peak
}

#[test]
fn backward_keeps_only_the_activations_it_needs() {
    // Scaling by a constant needs no activation in its backward: depth does not matter.
    let scale = |g: &Graph, y: Tensor, k: Tensor| g.mul(y, k);
    assert_eq!(
        forward_backward_peak(50, scale),
        forward_backward_peak(200, scale)
    );
    // sigmoid's backward reads its output, so each extra op keeps one more activation
    // (4096 bytes) alive until the backward pass reaches it, plus its scalar constants.
    let sigmoid = |g: &Graph, y: Tensor, _: Tensor| g.sigmoid(y);
    let growth = forward_backward_peak(200, sigmoid) - forward_backward_peak(50, sigmoid);
    assert!(
        (150 * 4096..=150 * 4096 + 150 * 16).contains(&growth),
        "{growth}"
    );
}

#[test]
fn vjp_takes_a_cotangent_for_non_scalar_outputs() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let y = g.mul(x, x).unwrap();
    let ct = g.input("ct", [3], DType::F32).unwrap();
    let dx = g.vjp(&[y], &[ct], &[x]).unwrap()[0];
    let xs = TensorData::new([3], vec![1.0f32, -2.0, 3.0]).unwrap();
    let cs = TensorData::new([3], vec![10.0f32, 1.0, -1.0]).unwrap();
    let out = check(
        "vjp",
        &g,
        &[dx],
        &[("x", &xs), ("ct", &cs)],
        Tolerance::EXACT,
    );
    assert_eq!(out[0].values::<f32>().unwrap(), &[20.0, -4.0, -6.0]);
    let wrong = g.input("w", [4], DType::F32).unwrap();
    assert!(
        g.vjp(&[y], &[wrong], &[x]).is_err(),
        "cotangent shape must match"
    );
}

#[test]
fn ties_follow_the_documented_rules() {
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let a = g.input("a", [2], DType::F32).unwrap();
    let dmax = g.grad(g.max(x, 0).unwrap(), &[x]).unwrap()[0];
    let both = g.sum_all(g.maximum(a, a).unwrap()).unwrap();
    let da = g.grad(both, &[a]).unwrap()[0];
    let dabs = g.grad(g.sum_all(g.abs(a).unwrap()).unwrap(), &[a]).unwrap()[0];
    let dmin_unique = g.grad(g.min(x, 0).unwrap(), &[x]).unwrap()[0];
    let xs = TensorData::new([4], vec![1.0f32, 3.0, 3.0, 3.0]).unwrap();
    let as_ = TensorData::new([2], vec![0.0f32, 2.0]).unwrap();
    let out = check(
        "ties",
        &g,
        &[dmax, da, dabs, dmin_unique],
        &[("x", &xs), ("a", &as_)],
        Tolerance::new(1e-6, 1e-7),
    );
    let third = 1.0f32 / 3.0;
    assert_eq!(
        out[0].values::<f32>().unwrap(),
        &[0.0, third, third, third],
        "max splits among ties"
    );
    assert_eq!(
        out[1].values::<f32>().unwrap(),
        &[1.0, 1.0],
        "maximum(a, a): half to each side"
    );
    assert_eq!(out[2].values::<f32>().unwrap(), &[0.0, 1.0], "abs'(0) = 0");
    assert_eq!(out[3].values::<f32>().unwrap(), &[1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn detach_stops_the_gradient_and_keeps_the_value() {
    let g = Graph::new();
    let x = g.input("x", [5], DType::F32).unwrap();
    let d = g.detach(x).unwrap();
    let y = g.sum_all(g.mul(x, d).unwrap()).unwrap();
    let dx = g.grad(y, &[x]).unwrap()[0];
    let data = TensorData::new([5], vec![1.0f32, -2.0, 0.5, 3.0, 0.0]).unwrap();
    let out = check(
        "detach",
        &g,
        &[d, y, dx],
        &[("x", &data)],
        gradflux::Tolerance::EXACT,
    );
    assert_eq!(out[0], data, "detach changes nothing forward");
    assert_eq!(out[1].to_f64_vec(), [14.25], "x · x");
    assert_eq!(out[2], data, "d/dx (x · detach(x)) = x, not 2x");
}
