//! Sinkhorn over dense costs: POT's outputs reproduced, marginals at convergence, eps
//! sweeps down to 1e-4, envelope gradients equal to the plan, CPU against wgpu.

use gradflux::{
    DType, Device, EpsScaling, Graph, OtGradient, SinkhornOptions, Tensor, TensorData, Tolerance,
};

use crate::common::{check, random, Rng};

fn tensor(dims: &[usize], v: Vec<f32>) -> TensorData {
    TensorData::new(dims.to_vec(), v).unwrap()
}

/// Builds `cost [n, m]`, `a [n]`, `b [m]` inputs and solves.
fn problem(g: &Graph, (n, m): (usize, usize), options: SinkhornOptions) -> gradflux::OtSolution {
    let cost = g.input("cost", [n, m], DType::F32).unwrap();
    let a = g.input("a", [n], DType::F32).unwrap();
    let b = g.input("b", [m], DType::F32).unwrap();
    g.sinkhorn(cost, a, b, None, options).unwrap()
}

/// POT 0.9.7 on its documented two-point example: `ot.sinkhorn(a, b, M, 1)`,
/// `ot.sinkhorn2(a, b, M, 1)` and `ot.unbalanced.sinkhorn_unbalanced(a, b, M, 1, 1)` (whose
/// default `reg_type="kl"` is this crate's convention).
#[test]
fn reproduces_pots_example_outputs() {
    let cost = tensor(&[2, 2], vec![0.0, 1.0, 1.0, 0.0]);
    let half = tensor(&[2], vec![0.5, 0.5]);
    let inputs = [("cost", &cost), ("a", &half), ("b", &half)];
    let g = Graph::new();
    let ot = problem(&g, (2, 2), SinkhornOptions::new(1.0, 50));
    let (plan, transport) = (g.ot_plan(&ot).unwrap(), g.ot_transport_cost(&ot).unwrap());
    let out = check(
        "POT balanced",
        &g,
        &[plan, transport],
        &inputs,
        Tolerance::new(1e-6, 1e-7),
    );
    let want = [0.36552929, 0.13447071, 0.13447071, 0.36552929];
    for (got, want) in out[0].to_f64_vec().iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "plan {got} vs POT {want}");
    }
    assert!(
        (out[1].to_f64_vec()[0] - 0.26894142137).abs() < 1e-6,
        "sinkhorn2"
    );

    let g = Graph::new();
    let options = SinkhornOptions {
        rho_a: Some(1.0),
        rho_b: Some(1.0),
        ..SinkhornOptions::new(1.0, 200)
    };
    let ot = problem(&g, (2, 2), options);
    let plan = g.ot_plan(&ot).unwrap();
    let out = check(
        "POT unbalanced",
        &g,
        &[plan],
        &inputs,
        Tolerance::new(1e-6, 1e-7),
    );
    let want = [0.32205361, 0.1184769, 0.1184769, 0.32205361];
    for (got, want) in out[0].to_f64_vec().iter().zip(want) {
        assert!(
            (got - want).abs() < 1e-6,
            "unbalanced plan {got} vs POT {want}"
        );
    }
}

/// Random 1-D clouds with uneven weights: `(cost, a, b)` with costs in [0, 1].
fn clouds(rng: &mut Rng, n: usize, m: usize) -> [TensorData; 3] {
    let x = random(rng, [n], DType::F64, 0.0, 1.0).to_f64_vec();
    let y = random(rng, [m], DType::F64, 0.0, 1.0).to_f64_vec();
    let cost: Vec<f32> = x
        .iter()
        .flat_map(|xi| y.iter().map(move |yj| ((xi - yj) * (xi - yj)) as f32))
        .collect();
    let weights = |len: usize, rng: &mut Rng| {
        let w = random(rng, [len], DType::F64, 0.5, 1.5).to_f64_vec();
        let s: f64 = w.iter().sum();
        tensor(&[len], w.iter().map(|v| (v / s) as f32).collect())
    };
    [tensor(&[n, m], cost), weights(n, rng), weights(m, rng)]
}

/// Σ_i |Σ_j P_ij − a_i| + Σ_j |Σ_i P_ij − b_j| of a `[n, m]` plan.
fn marginal_error(plan: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len(), b.len());
    let rows: f64 = (0..n)
        .map(|i| (plan[i * m..][..m].iter().sum::<f64>() - a[i]).abs())
        .sum();
    let cols: f64 = (0..m)
        .map(|j| ((0..n).map(|i| plan[i * m + j]).sum::<f64>() - b[j]).abs())
        .sum();
    rows + cols
}

/// The plan of an ε-scaled solve, in `dtype`, on the CPU: the f64 run tells how far the
/// iterations themselves have converged, apart from f32 rounding.
fn cpu_plan(dtype: DType, inputs: &[TensorData; 3], eps: f64, iterations: usize) -> Vec<f64> {
    let [cost, a, b] = inputs;
    let (n, m) = (a.numel(), b.numel());
    let g = Graph::new();
    let c = g.input("cost", [n, m], dtype).unwrap();
    let (av, bv) = (
        g.input("a", [n], dtype).unwrap(),
        g.input("b", [m], dtype).unwrap(),
    );
    let ot = g
        .sinkhorn(c, av, bv, None, sweep_options(eps, iterations))
        .unwrap();
    let plan = g.ot_plan(&ot).unwrap();
    let cast = |t: &TensorData| t.cast_to(dtype).unwrap();
    let (c, a, b) = (cast(cost), cast(a), cast(b));
    Device::Cpu
        .compile(&g, &[plan])
        .and_then(|mut exe| exe.run(&[("cost", &c), ("a", &a), ("b", &b)]))
        .unwrap()[0]
        .to_f64_vec()
}

fn sweep_options(eps: f64, iterations: usize) -> SinkhornOptions {
    SinkhornOptions {
        eps_scaling: Some(EpsScaling {
            start: 1.0,
            factor: 0.8,
        }),
        ..SinkhornOptions::new(eps, iterations)
    }
}

/// Down to eps = 1e-4 of the cost scale, f32 potentials stay finite, wgpu agrees with the
/// CPU, and the marginal error is what the iterations reach in f64: f32 adds nothing that
/// matters. (Sinkhorn slows as eps falls below the gaps between costs; the bounds are
/// this problem's f64 errors, rounded up.)
#[test]
fn marginals_converge_through_an_eps_sweep_down_to_1e_minus_4() {
    let mut rng = Rng::new(80);
    let data = clouds(&mut rng, 40, 33);
    let [cost, a, b] = &data;
    let (a64, b64) = (a.to_f64_vec(), b.to_f64_vec());
    for (eps, iterations, tol) in [
        (1e-1, 60, 1e-6),
        (1e-2, 200, 2e-5),
        (1e-3, 1000, 1e-3),
        (1e-4, 1000, 2e-2),
    ] {
        let g = Graph::new();
        let ot = problem(&g, (40, 33), sweep_options(eps, iterations));
        let plan = g.ot_plan(&ot).unwrap();
        let objective = g.ot_objective(&ot).unwrap();
        let inputs = [("cost", cost), ("a", a), ("b", b)];
        // Potentials are compared in cost units.
        let out = check(
            &format!("eps {eps}"),
            &g,
            &[ot.f, ot.g, objective, plan],
            &inputs,
            Tolerance::new(1e-4, 1e-4),
        );
        assert!(out
            .iter()
            .all(|t| t.to_f64_vec().iter().all(|v| v.is_finite())));
        let err32 = marginal_error(&out[3].to_f64_vec(), &a64, &b64);
        let err64 = marginal_error(&cpu_plan(DType::F64, &data, eps, iterations), &a64, &b64);
        assert!(
            err32 < tol,
            "eps {eps}: marginal error {err32} (f64: {err64})"
        );
        assert!(
            (err32 - err64).abs() < 1e-5 + 0.05 * err64,
            "eps {eps}: f32 marginal error {err32} is not f64's {err64}"
        );
    }
}

fn envelope_gradient_case(eps: f64, batch: &[usize]) {
    let mut rng = Rng::new(81);
    let (n, m) = (7, 5);
    let mut dims = batch.to_vec();
    dims.extend([n, m]);
    let g = Graph::new();
    let cost = g.input("cost", dims.clone(), DType::F32).unwrap();
    let wdims = |len: usize| {
        let mut d = batch.to_vec();
        d.push(len);
        d
    };
    let a = g.input("a", wdims(n), DType::F32).unwrap();
    let b = g.input("b", wdims(m), DType::F32).unwrap();
    let ot = g
        .sinkhorn(cost, a, b, None, SinkhornOptions::new(eps, 300))
        .unwrap();
    let total = g.sum_all(g.ot_objective(&ot).unwrap()).unwrap();
    let dcost = g.grad(total, &[cost]).unwrap()[0];
    let plan = g.ot_plan(&ot).unwrap();
    let count: usize = batch.iter().product();
    let uniform = |len: usize| tensor(&wdims(len), vec![1.0 / len as f32; count * len]);
    let c = random(&mut rng, dims, DType::F32, 0.0, 1.0);
    let (ua, ub) = (uniform(n), uniform(m));
    let out = check(
        "envelope",
        &g,
        &[dcost, plan],
        &[("cost", &c), ("a", &ua), ("b", &ub)],
        Tolerance::new(1e-4, 1e-6),
    );
    for (d, p) in out[0].to_f64_vec().iter().zip(out[1].to_f64_vec()) {
        assert!((d - p).abs() < 1e-6, "d objective / d cost = {d}, plan {p}");
    }
}

/// With the potentials held fixed, the objective's gradient in the cost is the plan.
#[test]
fn envelope_gradient_of_the_objective_is_the_plan() {
    envelope_gradient_case(0.2, &[]);
    envelope_gradient_case(0.5, &[3]);
}

/// The divergence vanishes between equal clouds, is positive otherwise, and a gradient
/// step on `x` lowers it.
#[test]
fn sinkhorn_divergence_is_zero_on_equal_clouds_and_decreases_along_its_gradient() {
    let mut rng = Rng::new(82);
    let (n, m, d) = (12, 9, 2);
    let g = Graph::new();
    let x = g.input("x", [n, d], DType::F32).unwrap();
    let y = g.input("y", [m, d], DType::F32).unwrap();
    let a = g.input("a", [n], DType::F32).unwrap();
    let b = g.input("b", [m], DType::F32).unwrap();
    let options = SinkhornOptions::new(0.05, 200);
    let div = g
        .sinkhorn_divergence((x, a), (y, b), gradflux::PointCost::SqEuclidean, options)
        .unwrap();
    let self_div = g
        .sinkhorn_divergence((x, a), (x, a), gradflux::PointCost::SqEuclidean, options)
        .unwrap();
    let dx = g.grad(div, &[x]).unwrap()[0];
    let xs = random(&mut rng, [n, d], DType::F32, 0.0, 1.0);
    let ys = random(&mut rng, [m, d], DType::F32, 0.5, 1.5);
    let (ua, ub) = (
        tensor(&[n], vec![1.0 / n as f32; n]),
        tensor(&[m], vec![1.0 / m as f32; m]),
    );
    let inputs = [("x", &xs), ("y", &ys), ("a", &ua), ("b", &ub)];
    let out = check(
        "divergence",
        &g,
        &[div, self_div, dx],
        &inputs,
        Tolerance::new(1e-4, 1e-5),
    );
    let (s, s0) = (out[0].to_f64_vec()[0], out[1].to_f64_vec()[0]);
    assert!(s0.abs() < 1e-5, "S(x, x) = {s0}");
    assert!(s > 0.1, "S(x, y) = {s} for clouds a half apart");
    let step: Vec<f32> = xs
        .to_f64_vec()
        .iter()
        .zip(out[2].to_f64_vec())
        .map(|(x, g)| (x - 0.5 * g) as f32)
        .collect();
    let moved = tensor(&[n, d], step);
    let after = Device::Cpu
        .compile(&g, &[div])
        .and_then(|mut exe| exe.run(&[("x", &moved), ("y", &ys), ("a", &ua), ("b", &ub)]))
        .unwrap()[0]
        .to_f64_vec()[0];
    assert!(after < s, "a gradient step raised S from {s} to {after}");
}

#[test]
fn sinkhorn_misuse_is_refused_by_name() {
    let g = Graph::new();
    let cost = g.input("cost", [4, 3], DType::F32).unwrap();
    let a = g.input("a", [4], DType::F32).unwrap();
    let b = g.input("b", [3], DType::F32).unwrap();
    let bad = g.input("bad", [5], DType::F32).unwrap();
    let refuse = |cost: Tensor, a: Tensor, b: Tensor, o: SinkhornOptions, want: &str| {
        let err = g.sinkhorn(cost, a, b, None, o).unwrap_err().to_string();
        assert!(err.contains(want), "{err} lacks {want:?}");
    };
    let o = SinkhornOptions::new(0.1, 10);
    refuse(cost, bad, b, o, "a must be [4]");
    refuse(cost, a, bad, o, "b must be [3]");
    refuse(cost, a, b, SinkhornOptions::new(0.0, 10), "eps = 0");
    refuse(
        cost,
        a,
        b,
        SinkhornOptions {
            rho_b: Some(-1.0),
            ..o
        },
        "rho_b",
    );
    let scaling = Some(EpsScaling {
        start: 1.0,
        factor: 1.5,
    });
    refuse(
        cost,
        a,
        b,
        SinkhornOptions {
            eps_scaling: scaling,
            ..o
        },
        "factor",
    );
    let empty = g.input("empty", [0, 3], DType::F32).unwrap();
    refuse(empty, a, b, o, "at least 1");
    let _ = OtGradient::Unrolled;
}
