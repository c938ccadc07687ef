//! Implicit Sinkhorn gradients against the other two modes: the unrolled graph's exact
//! gradient once the iterations have converged, the envelope theorem's for the objective,
//! the dense path for point clouds; independent of the path the solve took; and the same
//! on wgpu as on the CPU, also where the solve takes many conjugate-gradient steps.

use gradflux::{
    DType, EpsScaling, Graph, ImplicitSolve, OtGradient, OtSolution, PointCost, Result,
    SinkhornOptions, Tensor, TensorData, Tolerance,
};

use crate::common::{check, random, Rng};

/// `x [.., n, d]`, `y [.., m, d]` in [0, 1) and positive weights (normalised in the graph).
fn data(rng: &mut Rng, batch: &[usize], (n, m, d): (usize, usize, usize)) -> [TensorData; 4] {
    let dims = |tail: &[usize]| [batch, tail].concat();
    [
        random(rng, dims(&[n, d]), DType::F32, 0.0, 1.0),
        random(rng, dims(&[m, d]), DType::F32, 0.0, 1.0),
        random(rng, dims(&[n]), DType::F32, 0.5, 1.5),
        random(rng, dims(&[m]), DType::F32, 0.5, 1.5),
    ]
}

fn named(data: &[TensorData; 4]) -> [(&str, &TensorData); 4] {
    [
        ("x", &data[0]),
        ("y", &data[1]),
        ("a", &data[2]),
        ("b", &data[3]),
    ]
}

/// The inputs and the weights normalised per problem (a balanced problem needs equal
/// masses, and the normalisation keeps the gradient in directions that preserve them).
fn inputs(g: &Graph, data: &[TensorData; 4]) -> ([Tensor; 4], Tensor, Tensor) {
    let t: [Tensor; 4] = std::array::from_fn(|k| {
        let (name, d) = named(data)[k];
        g.input(name, d.shape().clone(), DType::F32).unwrap()
    });
    let unit = |w: Tensor| g.div(w, g.sum_keepdim(w, -1).unwrap()).unwrap();
    (t, unit(t[2]), unit(t[3]))
}

fn implicit(solve: ImplicitSolve) -> OtGradient {
    OtGradient::Implicit(solve)
}

/// Gradients of `loss(solution)` with respect to `wrt`.
fn grads(
    g: &Graph,
    ot: &OtSolution,
    loss: impl Fn(&OtSolution) -> Result<Tensor>,
    wrt: &[Tensor],
) -> Vec<Tensor> {
    let l = g.sum_all(loss(ot).unwrap()).unwrap();
    g.grad(l, wrt).unwrap()
}

fn agree(label: &str, got: &[TensorData], want: &[TensorData], tol: Tolerance) {
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        gradflux::compare(b, a, tol).unwrap_or_else(|m| panic!("{label}: gradient {k}: {m}"));
    }
}

/// Converged, the implicit gradient of the transport cost (which reads the plan, so the
/// envelope theorem does not give it) is the unrolled graph's, in the cost and both
/// weights; the implicit gradient of the objective is the envelope theorem's. Balanced and
/// unbalanced, on both backends.
#[test]
fn implicit_gradients_match_unrolled_and_envelope_at_convergence() {
    let mut rng = Rng::new(71);
    for (label, rho) in [("balanced", None), ("unbalanced", Some(0.4))] {
        let data = data(&mut rng, &[], (23, 19, 2));
        let g = Graph::new();
        let (t, a, b) = inputs(&g, &data);
        let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
        let base = SinkhornOptions {
            rho_a: rho,
            rho_b: rho,
            ..SinkhornOptions::new(0.1, 150)
        };
        let with = |gradient| SinkhornOptions { gradient, ..base };
        let solve = |gradient| g.sinkhorn(cost, a, b, None, with(gradient)).unwrap();
        let wrt = [cost, t[2], t[3]];
        let transport = |s: &OtSolution| g.ot_transport_cost(s);
        let objective = |s: &OtSolution| g.ot_objective(s);
        let implicit_ot = solve(OtGradient::implicit());
        let mut outs = grads(&g, &implicit_ot, transport, &wrt);
        outs.extend(grads(&g, &solve(OtGradient::Unrolled), transport, &wrt));
        outs.extend(grads(&g, &implicit_ot, objective, &wrt));
        outs.extend(grads(&g, &solve(OtGradient::Envelope), objective, &wrt));
        let got = check(
            &format!("implicit {label}"),
            &g,
            &outs,
            &named(&data),
            Tolerance::new(2e-3, 1e-5),
        );
        let tol = Tolerance::new(1e-3, 1e-5);
        agree(
            &format!("{label}: implicit vs unrolled transport cost"),
            &got[0..3],
            &got[3..6],
            tol,
        );
        agree(
            &format!("{label}: implicit vs envelope objective"),
            &got[6..9],
            &got[9..12],
            tol,
        );
    }
}

/// The implicit gradient is the converged solution's, whatever path led there: with
/// ε-scaling, a warm start and a tolerance it equals that of a plain solve.
#[test]
fn implicit_gradients_do_not_depend_on_the_path() {
    let mut rng = Rng::new(72);
    let data = data(&mut rng, &[2], (31, 40, 3));
    let g = Graph::new();
    let (t, a, b) = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
    let plain = SinkhornOptions {
        gradient: OtGradient::implicit(),
        ..SinkhornOptions::new(0.08, 400)
    };
    let scheduled = SinkhornOptions {
        eps_scaling: Some(EpsScaling {
            start: 2.0,
            factor: 0.6,
        }),
        ..plain.with_tolerance(1e-6)
    };
    let warm = (
        g.full(0.3, [2, 31], DType::F32).unwrap(),
        g.zeros_like(b).unwrap(),
    );
    let transport = |s: &OtSolution| g.ot_transport_cost(s);
    let wrt = [cost, t[2], t[3]];
    let first = g.sinkhorn(cost, a, b, None, plain).unwrap();
    let second = g.sinkhorn(cost, a, b, Some(warm), scheduled).unwrap();
    let mut outs = grads(&g, &first, transport, &wrt);
    outs.extend(grads(&g, &second, transport, &wrt));
    let got = check(
        "implicit, two paths",
        &g,
        &outs,
        &named(&data),
        Tolerance::new(2e-3, 1e-5),
    );
    agree(
        "plain vs scheduled",
        &got[0..3],
        &got[3..6],
        Tolerance::new(1e-3, 1e-5),
    );
}

/// Over point clouds the implicit gradient runs online and equals the dense path's, in
/// the points and the weights (both costs, batched, tile boundaries crossed).
#[test]
fn online_implicit_gradients_match_the_dense_path() {
    let mut rng = Rng::new(73);
    for cost in [PointCost::SqEuclidean, PointCost::Euclidean] {
        let data = data(&mut rng, &[2], (70, 67, 3));
        let g = Graph::new();
        let (t, a, b) = inputs(&g, &data);
        let options = SinkhornOptions {
            gradient: OtGradient::implicit(),
            rho_b: Some(1.0),
            ..SinkhornOptions::new(0.1, 200)
        };
        let online = g
            .sinkhorn_points(t[0], t[1], a, b, None, cost, options)
            .unwrap();
        let matrix = g.point_cost_matrix(t[0], t[1], cost).unwrap();
        let dense = g.sinkhorn(matrix, a, b, None, options).unwrap();
        // A loss of the potentials themselves: exact only through the implicit solve.
        let loss = |s: &OtSolution| {
            let w = g.constant(random(&mut Rng::new(5), [2, 67], DType::F32, -1.0, 1.0))?;
            g.add(g.sum_all(g.mul(s.g, w)?)?, g.sum_all(s.f)?)
        };
        let mut outs = grads(&g, &online, loss, &t);
        outs.extend(grads(&g, &dense, loss, &t));
        let got = check(
            &format!("online implicit {cost:?}"),
            &g,
            &outs,
            &named(&data),
            Tolerance::new(2e-3, 1e-5),
        );
        agree(
            &format!("{cost:?}: online vs dense"),
            &got[0..4],
            &got[4..8],
            // The dense cost is |x|² + |y|² − 2x·y in f32; the online one subtracts
            // coordinates: they differ by rounding, which the square root amplifies.
            Tolerance::new(1e-3, 1e-5),
        );
    }
}

/// A weight of zero leaves its column out of the solve (no mass couples it) without
/// harming the rest: the implicit gradient of the cost is finite and the unrolled one,
/// also for a loss that reads the potential of a column with no mass (unbalanced, so the
/// potentials are unique).
#[test]
fn zero_weights_are_not_coupled() {
    let mut rng = Rng::new(74);
    let mut data = data(&mut rng, &[], (12, 9, 2));
    let mut b = data[3].to_f64_vec();
    b[0] = 0.0;
    b[5] = 0.0;
    data[3] = TensorData::new([9], b.iter().map(|&v| v as f32).collect()).unwrap();
    let g = Graph::new();
    let (t, a, b) = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
    let options = SinkhornOptions {
        rho_a: Some(0.5),
        rho_b: Some(0.5),
        ..SinkhornOptions::new(0.1, 150)
    };
    let loss = |s: &OtSolution| {
        let w = g.constant(random(&mut Rng::new(6), [9], DType::F32, -1.0, 1.0))?;
        let potentials = g.add(g.sum_all(g.mul(s.g, w)?)?, g.sum_all(s.f)?)?;
        g.add(g.ot_transport_cost(s)?, potentials)
    };
    let solve = |gradient| {
        let o = SinkhornOptions {
            gradient,
            ..options
        };
        g.sinkhorn(cost, a, b, None, o).unwrap()
    };
    let mut outs = grads(&g, &solve(OtGradient::implicit()), loss, &[cost]);
    outs.extend(grads(&g, &solve(OtGradient::Unrolled), loss, &[cost]));
    let got = check(
        "zero weights",
        &g,
        &outs,
        &named(&data),
        Tolerance::new(2e-3, 1e-5),
    );
    assert!(got[0].to_f64_vec().iter().all(|v| v.is_finite()));
    agree(
        "zero weights",
        &got[0..1],
        &got[1..2],
        Tolerance::new(1e-3, 1e-6),
    );
}

/// A problem big enough for many product workgroups and a long solve at a small ε, with
/// the forward stopped by its tolerance: wgpu agrees with the CPU reference.
#[test]
fn a_long_implicit_solve_agrees_across_backends() {
    let mut rng = Rng::new(75);
    let data = data(&mut rng, &[], (300, 257, 2));
    let g = Graph::new();
    let (t, a, b) = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
    let options = SinkhornOptions {
        gradient: OtGradient::implicit(),
        ..SinkhornOptions::new(0.02, 3000).with_tolerance(1e-4)
    };
    let ot = g.sinkhorn(cost, a, b, None, options).unwrap();
    let outs = grads(&g, &ot, |s| g.ot_transport_cost(s), &[cost, t[0], t[2]]);
    check(
        "long implicit solve",
        &g,
        &outs,
        &named(&data),
        Tolerance::new(1e-2, 1e-4),
    );
}

/// The implicit solve's own options are checked.
#[test]
fn implicit_solve_options_are_checked() {
    let g = Graph::new();
    let cost = g.input("c", [3, 4], DType::F32).unwrap();
    let a = g.input("a", [3], DType::F32).unwrap();
    let b = g.input("b", [4], DType::F32).unwrap();
    for (solve, says) in [
        (
            ImplicitSolve {
                max_iterations: 0,
                tolerance: 1e-6,
            },
            "max_iterations",
        ),
        (
            ImplicitSolve {
                max_iterations: 10,
                tolerance: 0.0,
            },
            "tolerance",
        ),
    ] {
        let options = SinkhornOptions {
            gradient: implicit(solve),
            ..SinkhornOptions::new(0.1, 10)
        };
        let e = g
            .sinkhorn(cost, a, b, None, options)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
    }
}

/// One compiled executable run on two problems: the second solve starts afresh (the
/// first one's finished-flags must not skip its set-up), dense and online.
#[test]
fn a_second_run_solves_afresh() {
    let Some(device) = crate::common::gpu() else {
        return;
    };
    for online in [false, true] {
        let mut rng = Rng::new(76);
        let first = data(&mut rng, &[], (40, 33, 2));
        let second = data(&mut rng, &[], (40, 33, 2));
        let g = Graph::new();
        let (t, a, b) = inputs(&g, &first);
        let options = SinkhornOptions {
            gradient: OtGradient::implicit(),
            ..SinkhornOptions::new(0.05, 300)
        };
        let ot = if online {
            g.sinkhorn_points(t[0], t[1], a, b, None, PointCost::SqEuclidean, options)
        } else {
            let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
            g.sinkhorn(cost, a, b, None, options)
        }
        .unwrap();
        let outs = grads(&g, &ot, |s| g.ot_transport_cost(s), &[t[0], t[1]]);
        let mut exe = device.compile(&g, &outs).unwrap();
        exe.run(&named(&first)).unwrap();
        let got = exe.run(&named(&second)).unwrap();
        let want = gradflux::Device::Cpu
            .compile(&g, &outs)
            .and_then(|mut e| e.run(&named(&second)))
            .unwrap();
        agree(
            &format!("second run, online {online}"),
            &got,
            &want,
            Tolerance::new(2e-3, 1e-5),
        );
    }
}

/// The implicit solve's plan products over a cloud of 30 000 points: each walks the
/// cloud in spans where an adapter limits loops (a split product recomputes finished
/// problems instead of skipping them, which gives the same values).
#[test]
fn implicit_gradients_over_30000_points() {
    let mut rng = Rng::new(79);
    let data = data(&mut rng, &[], (19, 30_000, 2));
    let g = Graph::new();
    let (t, a, b) = inputs(&g, &data);
    let options = SinkhornOptions {
        gradient: implicit(ImplicitSolve {
            max_iterations: 6,
            tolerance: 1e-6,
        }),
        ..SinkhornOptions::new(0.5, 8)
    };
    let ot = g
        .sinkhorn_points(t[0], t[1], a, b, None, PointCost::SqEuclidean, options)
        .unwrap();
    // A loss of the potentials (no dense plan): the implicit solve runs in full.
    let w = g.input("w", [30_000], DType::F32).unwrap();
    let outs = grads(&g, &ot, |s| g.mul(s.g, w), &[t[0], t[1]]);
    let wv = random(&mut rng, [30_000], DType::F32, -1.0, 1.0);
    let mut inputs: Vec<(&str, &TensorData)> = named(&data).to_vec();
    inputs.push(("w", &wv));
    check(
        "implicit over 30 000 points",
        &g,
        &outs,
        &inputs,
        Tolerance::new(2e-3, 1e-5),
    );
}

/// The solve's loop is gated: once every problem has converged its remaining steps
/// dispatch nothing, and the gradients are bit for bit those of a device that runs every
/// step (a finished problem's steps change nothing).
#[test]
fn a_converged_solve_skips_its_steps_with_the_same_gradients() {
    let Some(gradflux::Device::Wgpu(gated)) = crate::common::gpu() else {
        return;
    };
    let ungated = gradflux::WgpuDevice::best().unwrap();
    ungated.set_indirect_dispatch(false).unwrap();
    let mut rng = Rng::new(81);
    let data = data(&mut rng, &[3], (29, 41, 2));
    let g = Graph::new();
    let (t, a, b) = inputs(&g, &data);
    let cost = g.sq_euclidean_cost(t[0], t[1]).unwrap();
    let options = SinkhornOptions {
        gradient: implicit(ImplicitSolve {
            max_iterations: 2_000,
            ..ImplicitSolve::default()
        }),
        ..SinkhornOptions::new(0.05, 300)
    };
    let ot = g.sinkhorn(cost, a, b, None, options).unwrap();
    let outs = grads(&g, &ot, |s| g.ot_transport_cost(s), &[t[0], t[1]]);
    let run = |device: gradflux::WgpuDevice| {
        gradflux::Device::Wgpu(device)
            .compile(&g, &outs)
            .and_then(|mut e| e.run(&named(&data)))
            .unwrap()
    };
    assert_eq!(run(gated), run(ungated));
}
