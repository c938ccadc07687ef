//! The Sinkhorn loop op: the same potentials as the unrolled graph, stopping on its
//! tolerance at the same iteration on the CPU and on wgpu, refusing what does not converge
//! and invalid weights, and the online point-cloud path matching the dense one.

use gradflux::{
    DType, Device, EpsScaling, Error, Graph, OtGradient, PointCost, SinkhornOptions, Tensor,
    TensorData, Tolerance,
};

use crate::common::{check, gpu, random, Rng};

/// `x [.., n, d]`, `y [.., m, d]` in [0, 1) and normalised weights `a`, `b`.
fn clouds(rng: &mut Rng, batch: &[usize], (n, m, d): (usize, usize, usize)) -> [TensorData; 4] {
    let dims = |tail: &[usize]| [batch, tail].concat();
    let weights = |len: usize, rng: &mut Rng| {
        let problems: usize = batch.iter().product();
        let mut v = Vec::new();
        for _ in 0..problems {
            let w = random(rng, [len], DType::F64, 0.5, 1.5).to_f64_vec();
            let s: f64 = w.iter().sum();
            v.extend(w.iter().map(|x| (x / s) as f32));
        }
        TensorData::new(dims(&[len]), v).unwrap()
    };
    [
        random(rng, dims(&[n, d]), DType::F32, 0.0, 1.0),
        random(rng, dims(&[m, d]), DType::F32, 0.0, 1.0),
        weights(n, rng),
        weights(m, rng),
    ]
}

struct Problem {
    x: Tensor,
    y: Tensor,
    a: Tensor,
    b: Tensor,
}

fn inputs(g: &Graph, data: &[TensorData; 4]) -> Problem {
    let t = |name: &str, d: &TensorData| g.input(name, d.shape().clone(), DType::F32).unwrap();
    Problem {
        x: t("x", &data[0]),
        y: t("y", &data[1]),
        a: t("a", &data[2]),
        b: t("b", &data[3]),
    }
}

fn named(data: &[TensorData; 4]) -> [(&str, &TensorData); 4] {
    [
        ("x", &data[0]),
        ("y", &data[1]),
        ("a", &data[2]),
        ("b", &data[3]),
    ]
}

/// The loop op gives the potentials the unrolled graph does, balanced and unbalanced,
/// with ε-scaling and batches, on both backends.
#[test]
fn the_loop_matches_the_unrolled_iterations() {
    let mut rng = Rng::new(61);
    for (batch, sizes, rho) in [
        (vec![], (37, 29, 2), None),
        (vec![3], (5, 70, 3), Some(0.5)),
        (vec![2], (64, 1, 1), None),
    ] {
        let data = clouds(&mut rng, &batch, sizes);
        let g = Graph::new();
        let p = inputs(&g, &data);
        let cost = g.sq_euclidean_cost(p.x, p.y).unwrap();
        let options = SinkhornOptions {
            rho_a: rho,
            eps_scaling: Some(EpsScaling {
                start: 1.0,
                factor: 0.7,
            }),
            ..SinkhornOptions::new(0.02, 40)
        };
        let looped = g.sinkhorn(cost, p.a, p.b, None, options).unwrap();
        let unrolled = SinkhornOptions {
            gradient: OtGradient::Unrolled,
            ..options
        };
        let unrolled = g.sinkhorn(cost, p.a, p.b, None, unrolled).unwrap();
        let outs = check(
            &format!("loop vs unrolled {batch:?} {sizes:?}"),
            &g,
            &[looped.f, looped.g, unrolled.f, unrolled.g],
            &named(&data),
            Tolerance::new(1e-4, 1e-5),
        );
        for (l, u) in [(0, 2), (1, 3)] {
            gradflux::compare(&outs[u], &outs[l], Tolerance::new(1e-5, 1e-6))
                .unwrap_or_else(|m| panic!("{batch:?} {sizes:?}: loop vs unrolled: {m}"));
        }
    }
}

/// With a tolerance the loop stops at a check (a multiple of `check_every`) with its error
/// at most the tolerance, at the same iteration on the CPU and on wgpu, and the reported
/// error is the plan's first-marginal error.
#[test]
fn the_loop_stops_at_its_tolerance_and_reports_the_error() {
    let mut rng = Rng::new(62);
    let data = clouds(&mut rng, &[], (45, 38, 2));
    let g = Graph::new();
    let p = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(p.x, p.y).unwrap();
    let options = SinkhornOptions {
        check_every: 7,
        ..SinkhornOptions::new(0.05, 5000).with_tolerance(1e-5)
    };
    let ot = g.sinkhorn(cost, p.a, p.b, None, options).unwrap();
    let plan = g.ot_plan(&ot).unwrap();
    let (error, iterations) = (ot.error.unwrap(), ot.iterations.unwrap());
    let run = |device: &Device| {
        device
            .compile(&g, &[plan, error, iterations])
            .and_then(|mut exe| exe.run(&named(&data)))
            .unwrap()
    };
    let cpu = run(&Device::Cpu);
    let iters = cpu[2].values::<u32>().unwrap()[0];
    assert!(
        iters > 0 && iters < 5000 && iters % 7 == 0,
        "stopped after {iters} iterations"
    );
    let reported = cpu[1].to_f64_vec()[0];
    assert!(reported <= 1e-5, "error {reported}");
    let (plan_v, a) = (cpu[0].to_f64_vec(), data[2].to_f64_vec());
    let m = data[3].numel();
    let measured: f64 = a
        .iter()
        .enumerate()
        .map(|(i, ai)| (plan_v[i * m..][..m].iter().sum::<f64>() - ai).abs())
        .sum();
    assert!(
        (measured - reported).abs() < 1e-6,
        "reported {reported} vs measured {measured}"
    );
    if let Some(gpu) = gpu() {
        let out = run(&gpu);
        assert_eq!(
            out[2].values::<u32>().unwrap()[0],
            iters,
            "iterations on wgpu"
        );
        let e = out[1].to_f64_vec()[0];
        assert!(e <= 1e-5 && (e - reported).abs() < 2e-6, "wgpu error {e}");
        gradflux::compare(&cpu[0], &out[0], Tolerance::new(1e-4, 1e-7)).unwrap();
    }
}

/// A loop that runs out of iterations above its tolerance fails the run and says how far
/// it got; bad weights fail it with what was wrong.
#[test]
fn unconverged_loops_and_invalid_weights_are_errors() {
    let mut rng = Rng::new(63);
    let data = clouds(&mut rng, &[2], (20, 30, 2));
    let g = Graph::new();
    let p = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(p.x, p.y).unwrap();
    let tight = SinkhornOptions::new(0.001, 3).with_tolerance(1e-9);
    let ot = g.sinkhorn(cost, p.a, p.b, None, tight).unwrap();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let mut exe = device.compile(&g, &[ot.f]).unwrap();
        match exe.run(&named(&data)) {
            Err(Error::NotConverged {
                iterations,
                error,
                tolerance,
                ..
            }) => {
                assert_eq!((iterations, tolerance), (3, 1e-9));
                assert!(error > 1e-9, "{error}");
            }
            other => panic!("{}: expected NotConverged, got {other:?}", device.name()),
        }
        let mut negative = data.clone();
        let mut a = negative[2].to_f64_vec();
        a[25] = -0.01;
        negative[2] = TensorData::new([2, 20], a.iter().map(|v| *v as f32).collect()).unwrap();
        let mut unequal = data.clone();
        let b: Vec<f32> = unequal[3]
            .to_f64_vec()
            .iter()
            .map(|v| *v as f32 * 1.1)
            .collect();
        unequal[3] = TensorData::new([2, 30], b).unwrap();
        for (what, bad, says) in [
            ("negative weight", &negative, "problem 1: a holds"),
            ("unequal masses", &unequal, "problem 0 is balanced"),
        ] {
            let err = exe.run(&named(bad)).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, Error::InvalidValue { .. }) && text.contains(says),
                "{}: {what}: {text}",
                device.name()
            );
        }
    }
}

/// Point clouds with the cost computed on the fly give the dense path's potentials and
/// objective, across tile boundaries (64 points) and coordinate chunks (8 and 16), for
/// both costs, batched.
#[test]
fn the_online_path_matches_the_dense_one() {
    let mut rng = Rng::new(64);
    for (batch, sizes, cost_kind) in [
        (vec![], (1, 1, 1), PointCost::SqEuclidean),
        (vec![], (70, 131, 2), PointCost::SqEuclidean),
        (vec![2], (65, 9, 9), PointCost::Euclidean),
        (vec![], (33, 64, 17), PointCost::SqEuclidean),
        (vec![], (40, 50, 3), PointCost::Euclidean),
    ] {
        let data = clouds(&mut rng, &batch, sizes);
        let g = Graph::new();
        let p = inputs(&g, &data);
        let options = SinkhornOptions::new(0.05, 30);
        let online = g
            .sinkhorn_points(p.x, p.y, p.a, p.b, None, cost_kind, options)
            .unwrap();
        let cost = g.ot_cost_matrix(&online).unwrap();
        let dense = g.sinkhorn(cost, p.a, p.b, None, options).unwrap();
        let objectives = [
            g.ot_objective(&online).unwrap(),
            g.ot_objective(&dense).unwrap(),
        ];
        let label = format!("online {batch:?} {sizes:?} {cost_kind:?}");
        let outs = check(
            &label,
            &g,
            &[
                online.f,
                online.g,
                dense.f,
                dense.g,
                objectives[0],
                objectives[1],
            ],
            &named(&data),
            Tolerance::new(1e-4, 1e-5),
        );
        // The dense cost comes from |x|² + |y|² − 2x·y in f32; the online one from the
        // coordinates' differences, in f64 on the CPU.
        for (o, d) in [(0, 2), (1, 3), (4, 5)] {
            gradflux::compare(&outs[d], &outs[o], Tolerance::new(1e-4, 1e-6))
                .unwrap_or_else(|m| panic!("{label}: online vs dense: {m}"));
        }
    }
}

/// The online envelope gradient of the objective in the points equals the dense path's,
/// on both backends, without a cost matrix in the online graph.
#[test]
fn online_gradients_in_the_points_match_the_dense_ones() {
    let mut rng = Rng::new(65);
    for (sizes, cost_kind) in [
        ((30, 70, 2), PointCost::SqEuclidean),
        ((66, 20, 17), PointCost::Euclidean),
    ] {
        let data = clouds(&mut rng, &[], sizes);
        let g = Graph::new();
        let p = inputs(&g, &data);
        let options = SinkhornOptions::new(0.1, 50);
        let online = g
            .sinkhorn_points(p.x, p.y, p.a, p.b, None, cost_kind, options)
            .unwrap();
        let cost = g.ot_cost_matrix(&online).unwrap();
        let dense = g.sinkhorn(cost, p.a, p.b, None, options).unwrap();
        let loss_online = g.ot_objective(&online).unwrap();
        let loss_dense = g.ot_objective(&dense).unwrap();
        let go = g.grad(loss_online, &[p.x, p.y, p.a, p.b]).unwrap();
        let gd = g.grad(loss_dense, &[p.x, p.y, p.a, p.b]).unwrap();
        let mut outputs = go.clone();
        outputs.extend(&gd);
        let label = format!("online gradients {sizes:?} {cost_kind:?}");
        let outs = check(
            &label,
            &g,
            &outputs,
            &named(&data),
            Tolerance::new(1e-3, 1e-5),
        );
        for k in 0..4 {
            gradflux::compare(&outs[4 + k], &outs[k], Tolerance::new(1e-5, 1e-7))
                .unwrap_or_else(|m| panic!("{label}: input {k}: online vs dense: {m}"));
        }
    }
}

#[test]
fn a_batch_of_3000_problems_checks_every_one() {
    // The weight check and the marginal error take a workgroup per problem and the
    // largest error one more pass, so a large batch of small problems stays within a
    // software driver's loop limit; the errors and the iteration count must agree.
    let mut rng = Rng::new(91);
    let (batch, n, m) = (3_000, 4, 5);
    let g = Graph::new();
    let cost = g.input("cost", [batch, n, m], DType::F32).unwrap();
    let a = g.input("a", [batch, n], DType::F32).unwrap();
    let b = g.input("b", [batch, m], DType::F32).unwrap();
    let options = SinkhornOptions::new(0.5, 200).with_tolerance(1e-4);
    let s = g.sinkhorn(cost, a, b, None, options).unwrap();
    let outs = [s.f, s.g, s.error.unwrap(), s.iterations.unwrap()];
    check(
        "3 000 problems",
        &g,
        &outs,
        &[
            (
                "cost",
                &random(&mut rng, [batch, n, m], DType::F32, 0.0, 1.0),
            ),
            (
                "a",
                &TensorData::new([batch, n], vec![0.25f32; batch * n]).unwrap(),
            ),
            (
                "b",
                &TensorData::new([batch, m], vec![0.2f32; batch * m]).unwrap(),
            ),
        ],
        Tolerance::new(1e-3, 1e-4),
    );
}
