//! Parameters: state that lives in an executable, persists between runs, and is updated in
//! place at the end of each run.

mod common;

use gradflux::{compare, DType, Device, Error, Graph, TensorData, Tolerance};

use common::{gpu, random, Rng};

fn devices() -> Vec<Device> {
    std::iter::once(Device::Cpu).chain(gpu()).collect()
}

#[test]
fn a_counter_persists_and_reads_see_the_start_of_run_value() {
    let g = Graph::new();
    let count = g
        .parameter("count", TensorData::new([2], vec![0.0f32, 10.0]).unwrap())
        .unwrap();
    let step = g.input("step", [], DType::F32).unwrap();
    let next = g.add(count, step).unwrap();
    g.assign(count, next).unwrap();
    let one = TensorData::scalar(1.0f32);
    for device in devices() {
        let mut exe = device.compile(&g, &[count, next]).unwrap();
        for run in 0..3 {
            let out = exe.run(&[("step", &one)]).unwrap();
            let r = run as f32;
            assert_eq!(
                out[0].values::<f32>().unwrap(),
                &[r, 10.0 + r],
                "on {}",
                device.name()
            );
            assert_eq!(out[1].values::<f32>().unwrap(), &[r + 1.0, 11.0 + r]);
        }
        assert_eq!(
            exe.parameter("count").unwrap().values::<f32>().unwrap(),
            &[3.0, 13.0]
        );
        // A second executable starts from the initial value: state belongs to executables.
        let mut fresh = device.compile(&g, &[count]).unwrap();
        assert_eq!(
            fresh.run(&[("step", &one)]).unwrap()[0]
                .values::<f32>()
                .unwrap(),
            &[0.0, 10.0]
        );
    }
}

#[test]
fn parameters_can_be_set_and_read_explicitly() {
    let g = Graph::new();
    let w = g
        .parameter("w", TensorData::zeros([2, 2], DType::F32))
        .unwrap();
    let y = g.sum_all(w).unwrap();
    let value = TensorData::new([2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    for device in devices() {
        let mut exe = device.compile(&g, &[y]).unwrap();
        exe.set_parameter("w", &value).unwrap();
        assert_eq!(exe.parameter("w").unwrap(), value);
        assert_eq!(exe.run(&[]).unwrap()[0].values::<f32>().unwrap(), &[10.0]);
        let e = exe
            .set_parameter("w", &TensorData::zeros([4], DType::F32))
            .unwrap_err();
        assert!(
            matches!(&e, Error::InputMismatch { name, .. } if name == "w"),
            "{e}"
        );
        let e = exe.parameter("nope").unwrap_err();
        assert!(
            matches!(&e, Error::UnknownParameter { name, known } if name == "nope" && known == "w"),
            "{e}"
        );
    }
}

#[test]
fn assign_is_checked() {
    let g = Graph::new();
    let w = g
        .parameter("w", TensorData::zeros([3], DType::F32))
        .unwrap();
    let x = g.input("x", [3], DType::F32).unwrap();
    assert!(
        matches!(g.assign(x, x), Err(Error::Graph(_))),
        "only parameters can be assigned"
    );
    let wrong = g.input("v", [4], DType::F32).unwrap();
    assert!(matches!(
        g.assign(w, wrong),
        Err(Error::Shape { op: "assign", .. })
    ));
    g.assign(w, x).unwrap();
    assert!(
        matches!(g.assign(w, x), Err(Error::Graph(_))),
        "one assignment per parameter"
    );
    assert!(matches!(
        g.parameter("x", TensorData::zeros([1], DType::F32)),
        Err(Error::Graph(_))
    ));
}

#[test]
fn assignments_that_read_each_other_swap_and_rotate() {
    // Every update reads the value its run started with, however the updates are ordered:
    // a swap and a three-way rotation (a recorded copy must not read a parameter that an
    // earlier copy of the same run already overwrote).
    let g = Graph::new();
    let p = |name: &str, v: f32| {
        g.parameter(
            name,
            TensorData::new([3], vec![v, v + 0.5, v + 0.25]).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (p("a", 1.0), p("b", 2.0));
    let (x, y, z) = (p("x", 10.0), p("y", 20.0), p("z", 30.0));
    g.assign(a, b).unwrap();
    g.assign(b, a).unwrap();
    g.assign(x, y).unwrap();
    g.assign(y, z).unwrap();
    g.assign(z, x).unwrap();
    // Each parameter's first element after a run.
    let run_and_read = |exe: &mut Box<dyn gradflux::Executable>| -> Vec<f32> {
        exe.run(&[]).unwrap();
        ["a", "b", "x", "y", "z"]
            .iter()
            .map(|n| exe.parameter(n).unwrap().values::<f32>().unwrap()[0])
            .collect()
    };
    for device in devices() {
        let mut exe = device.compile(&g, &[a]).unwrap();
        let name = device.name();
        assert_eq!(
            run_and_read(&mut exe),
            [2.0, 1.0, 20.0, 30.0, 10.0],
            "on {name}"
        );
        assert_eq!(
            run_and_read(&mut exe),
            [1.0, 2.0, 30.0, 10.0, 20.0],
            "on {name}"
        );
    }
}

#[test]
fn gradient_descent_on_device_state_matches_across_backends() {
    // Linear regression y = x w with the update w <- w - lr * dL/dw as part of the graph.
    let mut rng = Rng::new(7);
    let x = random(&mut rng, [64, 5], DType::F32, -1.0, 1.0);
    let true_w = random(&mut rng, [5, 1], DType::F32, -2.0, 2.0);
    let y: Vec<f32> = (0..64)
        .map(|r| {
            (0..5)
                .map(|c| x.values::<f32>().unwrap()[r * 5 + c] * true_w.values::<f32>().unwrap()[c])
                .sum()
        })
        .collect();
    let y = TensorData::new([64, 1], y).unwrap();

    let g = Graph::new();
    let xs = g.input("x", [64, 5], DType::F32).unwrap();
    let ys = g.input("y", [64, 1], DType::F32).unwrap();
    let w = g
        .parameter("w", TensorData::zeros([5, 1], DType::F32))
        .unwrap();
    let err = g.sub(g.matmul(xs, w).unwrap(), ys).unwrap();
    let loss = g
        .mean(g.reshape(g.mul(err, err).unwrap(), [64]).unwrap(), 0)
        .unwrap();
    let dw = g.grad(loss, &[w]).unwrap()[0];
    let lr = g.scalar(0.5, DType::F32).unwrap();
    g.assign(w, g.sub(w, g.mul(lr, dw).unwrap()).unwrap())
        .unwrap();

    let mut curves = Vec::new();
    for device in devices() {
        let mut exe = device.compile(&g, &[loss]).unwrap();
        let curve: Vec<f32> = (0..60)
            .map(|_| {
                exe.run(&[("x", &x), ("y", &y)]).unwrap()[0]
                    .values::<f32>()
                    .unwrap()[0]
            })
            .collect();
        assert!(curve[59] < curve[0] * 1e-3, "loss must fall: {curve:?}");
        compare(
            &true_w,
            &exe.parameter("w").unwrap(),
            Tolerance::new(1e-2, 1e-2),
        )
        .unwrap();
        curves.push(TensorData::new([60], curve).unwrap());
    }
    if curves.len() == 2 {
        compare(&curves[0], &curves[1], Tolerance::new(1e-3, 1e-6)).unwrap();
    }
}

/// Loss `sum(c * p) + 0.5 * sum(p^2)`, whose gradient is `c + p`.
fn quadratic(g: &Graph, dtype: DType) -> (gradflux::Tensor, gradflux::Tensor) {
    let data = |v: [f64; 3]| match dtype {
        DType::F32 => TensorData::new([3], v.iter().map(|&x| x as f32).collect()).unwrap(),
        _ => TensorData::new([3], v.to_vec()).unwrap(),
    };
    let p = g.parameter("p", data([1.0, -2.0, 0.5])).unwrap();
    let c = g.constant(data([0.3, -0.1, 2.0])).unwrap();
    let half = g.scalar(0.5, dtype).unwrap();
    let loss = g
        .add(
            g.sum_all(g.mul(c, p).unwrap()).unwrap(),
            g.mul(half, g.sum_all(g.mul(p, p).unwrap()).unwrap())
                .unwrap(),
        )
        .unwrap();
    (p, loss)
}

/// The same updates written out directly, step by step.
fn reference_steps(opt: gradflux::Optimizer, steps: usize) -> Vec<Vec<f64>> {
    let c = [0.3, -0.1, 2.0];
    let mut p = vec![1.0, -2.0, 0.5];
    let (mut m, mut v, mut mom) = (vec![0.0; 3], vec![0.0; 3], vec![0.0; 3]);
    let mut out = Vec::new();
    for t in 1..=steps {
        for i in 0..3 {
            let grad = c[i] + p[i];
            match opt {
                gradflux::Optimizer::Sgd(o) => {
                    let g = grad + o.weight_decay * p[i];
                    mom[i] = o.momentum * mom[i] + g;
                    p[i] -= o.lr * mom[i];
                }
                gradflux::Optimizer::Adam(o) => {
                    m[i] = o.beta1 * m[i] + (1.0 - o.beta1) * grad;
                    v[i] = o.beta2 * v[i] + (1.0 - o.beta2) * grad * grad;
                    let mh = m[i] / (1.0 - o.beta1.powi(t as i32));
                    let vh = v[i] / (1.0 - o.beta2.powi(t as i32));
                    p[i] -= o.lr * (mh / (vh.sqrt() + o.eps) + o.weight_decay * p[i]);
                }
            }
        }
        out.push(p.clone());
    }
    out
}

#[test]
fn optimizers_follow_their_formulas_on_every_backend() {
    let opts = [
        gradflux::Optimizer::Sgd(gradflux::Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        }),
        gradflux::Optimizer::Sgd(gradflux::Sgd {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
        }),
        gradflux::Optimizer::Adam(gradflux::Adam {
            lr: 0.05,
            weight_decay: 0.1,
            ..Default::default()
        }),
    ];
    for opt in opts {
        let want = reference_steps(opt, 5);
        // f64 on the CPU reference: the formulas to rounding.
        let g = Graph::new();
        let (p, loss) = quadratic(&g, DType::F64);
        g.minimize(loss, &[p], opt).unwrap();
        let mut exe = Device::Cpu.compile(&g, &[loss]).unwrap();
        for step in &want {
            exe.run(&[]).unwrap();
            let got = exe.parameter("p").unwrap();
            compare(
                &TensorData::new([3], step.clone()).unwrap(),
                &got,
                Tolerance::new(1e-12, 1e-12),
            )
            .unwrap_or_else(|m| panic!("{opt:?}: {m}"));
        }
        // f32 on every device, against the same reference.
        let g = Graph::new();
        let (p, loss) = quadratic(&g, DType::F32);
        g.minimize(loss, &[p], opt).unwrap();
        for device in devices() {
            let mut exe = device.compile(&g, &[loss]).unwrap();
            for step in &want {
                exe.run(&[]).unwrap();
                let got = exe.parameter("p").unwrap();
                let want32 =
                    TensorData::new([3], step.iter().map(|&v| v as f32).collect()).unwrap();
                // f32 rounding of 1 - b2^t (about 1e-3) costs ~1e-4 relative in v-hat.
                compare(&want32, &got, Tolerance::new(1e-4, 1e-6))
                    .unwrap_or_else(|m| panic!("{opt:?} on {}: {m}", device.name()));
            }
            if let gradflux::Optimizer::Adam(_) = opt {
                let b1_pow = exe
                    .parameter("p.adam_b1_pow")
                    .unwrap()
                    .values::<f32>()
                    .unwrap()[0];
                assert!((b1_pow - 0.9f32.powi(5)).abs() < 1e-6, "{b1_pow}");
            }
        }
    }
}

#[test]
fn minimize_needs_parameters() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let loss = g.sum_all(x).unwrap();
    let e = g
        .minimize(loss, &[x], gradflux::Optimizer::Sgd(Default::default()))
        .unwrap_err();
    assert!(e.to_string().contains("expected a parameter"), "{e}");
}
