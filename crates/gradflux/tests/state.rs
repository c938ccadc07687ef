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
        .mean(g.reshape(g.mul(err, err).unwrap(), [64]).unwrap(), 0, false)
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
