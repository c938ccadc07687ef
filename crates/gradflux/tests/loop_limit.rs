//! Every launch that splits its work to stay within an adapter's loop limit (llvmpipe stops
//! an invocation after 65 535 loop iterations), exercised at small sizes on a device told a
//! limit of 4 096 (`WgpuDevice::set_loop_limit`), against the CPU reference. The large-size
//! versions on llvmpipe's own limit live in the parity suite.

mod common;

use gradflux::{
    Activation, Capacity, DType, Device, DispatchOptions, DropPolicy, Graph, ImplicitSolve,
    OtGradient, PointCost, SinkhornOptions, SoftminAxis, Tensor, TensorData, Tolerance, WgpuDevice,
};

use common::{in_ci, random, Rng};

/// A device of its own (the setting is per device) with a loop limit of 4 096.
fn limited() -> Option<Device> {
    match WgpuDevice::best() {
        Ok(d) => {
            d.set_loop_limit(Some(4_096)).unwrap();
            Some(Device::Wgpu(d))
        }
        Err(e) => {
            assert!(!in_ci(), "CI=true but no wgpu adapter was found: {e}");
            None
        }
    }
}

fn check_on(
    device: &Device,
    label: &str,
    g: &Graph,
    outs: &[Tensor],
    inputs: &[(&str, TensorData)],
    tol: Tolerance,
) {
    let named: Vec<(&str, &TensorData)> = inputs.iter().map(|(n, d)| (*n, d)).collect();
    let want = Device::Cpu.compile(g, outs).unwrap().run(&named).unwrap();
    let got = device
        .compile(g, outs)
        .and_then(|mut e| e.run(&named))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    for (k, (w, a)) in want.iter().zip(&got).enumerate() {
        gradflux::compare(w, a, tol).unwrap_or_else(|m| panic!("{label}: output {k}: {m}"));
    }
}

#[test]
fn a_limit_below_the_smallest_planned_for_is_refused() {
    let Ok(d) = WgpuDevice::best() else { return };
    assert!(d.set_loop_limit(Some(100)).is_err());
    d.set_loop_limit(None).unwrap();
    assert_eq!(d.loop_limit(), None);
}

#[test]
fn split_matmuls_and_scatters_match() {
    let Some(dev) = limited() else { return };
    let mut rng = Rng::new(300);
    let g = Graph::new();
    let a = g.input("a", [5, 6_000], DType::F32).unwrap();
    let b = g.input("b", [6_000, 7], DType::F32).unwrap();
    let bias = g.input("bias", [7], DType::F32).unwrap();
    let src = g.input("src", [5_000, 3], DType::F32).unwrap();
    let idx = g.input("idx", [5_000], DType::U32).unwrap();
    let outs = [
        g.matmul(a, b).unwrap(),
        g.linear(a, b, Some(bias), Activation::Relu).unwrap(),
        g.scatter_add(src, 0, idx, 6).unwrap(),
        g.scatter_along(
            g.transpose(src, 0, 1).unwrap(),
            1,
            g.broadcast_to(g.unsqueeze(idx, 0).unwrap(), [3, 5_000])
                .unwrap(),
            6,
        )
        .unwrap(),
    ];
    check_on(
        &dev,
        "split-k and tiled scatters",
        &g,
        &outs,
        &[
            ("a", random(&mut rng, [5, 6_000], DType::F32, -1.0, 1.0)),
            ("b", random(&mut rng, [6_000, 7], DType::F32, -1.0, 1.0)),
            ("bias", random(&mut rng, [7], DType::F32, -1.0, 1.0)),
            ("src", random(&mut rng, [5_000, 3], DType::F32, -1.0, 1.0)),
            ("idx", random(&mut rng, [5_000], DType::U32, 0.0, 5.0)),
        ],
        Tolerance::new(1e-4, 1e-3),
    );
}

#[test]
fn chunked_moe_ranks_and_weight_gradients_match() {
    let Some(dev) = limited() else { return };
    let mut rng = Rng::new(301);
    let t = 2_500;
    let g = Graph::new();
    let experts = g.input("experts", [t, 2], DType::U32).unwrap();
    let gates = g.input("gates", [t, 2], DType::F32).unwrap();
    let opts = DispatchOptions {
        capacity: Capacity::PerExpert(40),
        policy: DropPolicy::HighestGate,
        ..DispatchOptions::dropless(3, 16)
    };
    let d = g.moe_dispatch(experts, Some(gates), opts).unwrap();
    let rows = 3_008;
    let x = g.input("x", [rows, 8], DType::F32).unwrap();
    let w = g.input("w", [3, 8, 4], DType::F32).unwrap();
    let be = g.input("be", [rows / 16], DType::U32).unwrap();
    let y = g.grouped_matmul(x, w, be, 16, false).unwrap();
    let dw = g
        .grad(g.sum_all(g.mul(y, y).unwrap()).unwrap(), &[w])
        .unwrap()[0];
    let crowded: Vec<u32> = (0..2 * t).map(|i| u32::from(i % 7 == 0)).collect();
    check_on(
        &dev,
        "rank by gate and the grouped weight gradient",
        &g,
        &[d.positions, d.sorted_ids, dw],
        &[
            ("experts", TensorData::new([t, 2], crowded).unwrap()),
            ("gates", random(&mut rng, [t, 2], DType::F32, 0.0, 1.0)),
            ("x", random(&mut rng, [rows, 8], DType::F32, -1.0, 1.0)),
            ("w", random(&mut rng, [3, 8, 4], DType::F32, -1.0, 1.0)),
            ("be", random(&mut rng, [rows / 16], DType::U32, 0.0, 3.0)),
        ],
        Tolerance::new(1e-4, 1e-3),
    );
}

#[test]
fn soft_minima_in_spans_match() {
    let Some(dev) = limited() else { return };
    let mut rng = Rng::new(302);
    let (n, m, d) = (23, 3_000, 3);
    let g = Graph::new();
    let cost = g.input("cost", [20_000, 3], DType::F32).unwrap();
    let h = g.input("h", [20_000], DType::F32).unwrap();
    // Two problems: the second's points and potentials start past the first's.
    let x = g.input("x", [2, n, d], DType::F32).unwrap();
    let y = g.input("y", [2, m, d], DType::F32).unwrap();
    let hy = g.input("hy", [2, m], DType::F32).unwrap();
    let column = g.softmin(cost, h, 0.1, SoftminAxis::PerColumn).unwrap();
    let points = g
        .point_softmin(x, y, hy, 0.2, PointCost::SqEuclidean)
        .unwrap();
    let grads = g.grad(g.sum_all(points).unwrap(), &[x, y, hy]).unwrap();
    let mut outs = vec![column, points];
    outs.extend(grads);
    check_on(
        &dev,
        "column and point soft minima, and the point gradients",
        &g,
        &outs,
        &[
            ("cost", random(&mut rng, [20_000, 3], DType::F32, 0.0, 1.0)),
            ("h", random(&mut rng, [20_000], DType::F32, -1.0, 1.0)),
            ("x", random(&mut rng, [2, n, d], DType::F32, -1.0, 1.0)),
            ("y", random(&mut rng, [2, m, d], DType::F32, -1.0, 1.0)),
            ("hy", random(&mut rng, [2, m], DType::F32, -1.0, 1.0)),
        ],
        Tolerance::new(1e-4, 1e-5),
    );
}

#[test]
fn sinkhorn_solves_and_implicit_gradients_in_spans_match() {
    let Some(dev) = limited() else { return };
    let mut rng = Rng::new(303);
    let options = SinkhornOptions {
        gradient: OtGradient::Implicit(ImplicitSolve {
            max_iterations: 5,
            tolerance: 1e-6,
        }),
        ..SinkhornOptions::new(0.5, 6)
    };
    for online in [true, false] {
        let (n, m) = if online { (17, 3_000) } else { (9_000, 3) };
        // Two problems: the second's points start past the first's.
        let g = Graph::new();
        let x = g.input("x", [2, n, 2], DType::F32).unwrap();
        let y = g.input("y", [2, m, 2], DType::F32).unwrap();
        let a = g.input("a", [2, n], DType::F32).unwrap();
        let b = g.input("b", [2, m], DType::F32).unwrap();
        let s = if online {
            g.sinkhorn_points(x, y, a, b, None, PointCost::SqEuclidean, options)
        } else {
            let cost = g.sq_euclidean_cost(x, y).unwrap();
            g.sinkhorn(cost, a, b, None, options)
        }
        .unwrap();
        let loss = g.sum_all(
            g.add(g.sum_all(s.f).unwrap(), g.sum_all(s.g).unwrap())
                .unwrap(),
        );
        let dx = g.grad(loss.unwrap(), &[x, y]).unwrap();
        let outs = [s.f, s.g, dx[0], dx[1]];
        check_on(
            &dev,
            &format!("sinkhorn {n} x {m}, online {online}"),
            &g,
            &outs,
            &[
                ("x", random(&mut rng, [2, n, 2], DType::F32, 0.0, 1.0)),
                ("y", random(&mut rng, [2, m, 2], DType::F32, 0.0, 1.0)),
                (
                    "a",
                    TensorData::new([2, n], vec![1.0 / n as f32; 2 * n]).unwrap(),
                ),
                (
                    "b",
                    TensorData::new([2, m], vec![1.0 / m as f32; 2 * m]).unwrap(),
                ),
            ],
            Tolerance::new(2e-3, 1e-5),
        );
    }
}
