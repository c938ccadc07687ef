//! Valid requests with a zero-size axis give the mathematically right empty or neutral
//! result on every backend: an empty sum is 0, an empty soft minimum +inf, an empty product
//! of matrices all zeros, and an empty batch an empty output.

use gradflux::{
    Activation, DType, Graph, PointCost, SinkhornOptions, SoftminAxis, TensorData, Tolerance,
};

use crate::common::{check, random, Rng};

fn zeros(dims: &[usize]) -> TensorData {
    TensorData::zeros(dims.to_vec(), DType::F32)
}

#[test]
fn products_over_an_empty_inner_dimension_are_zero() {
    let mut rng = Rng::new(3);
    for (m, n) in [(3, 4), (1, 4), (3, 1), (1, 1), (17, 33)] {
        let g = Graph::new();
        let a = g.input("a", [m, 0], DType::F32).unwrap();
        let b = g.input("b", [0, n], DType::F32).unwrap();
        let bias = g.input("bias", [n], DType::F32).unwrap();
        let outs = [
            g.matmul(a, b).unwrap(),
            g.linear(a, b, Some(bias), Activation::Tanh).unwrap(),
            g.linear(a, b, None, Activation::Sigmoid).unwrap(),
        ];
        let bias_data = random(&mut rng, [n], DType::F32, -2.0, 2.0);
        let cpu = check(
            &format!("[{m}, 0] x [0, {n}]"),
            &g,
            &outs,
            &[
                ("a", &zeros(&[m, 0])),
                ("b", &zeros(&[0, n])),
                ("bias", &bias_data),
            ],
            Tolerance::new(1e-6, 1e-7),
        );
        assert!(cpu[0].values::<f32>().unwrap().iter().all(|&v| v == 0.0));
        let tanh_bias: Vec<f32> = bias_data
            .values::<f32>()
            .unwrap()
            .iter()
            .map(|b| b.tanh())
            .collect();
        assert_eq!(&cpu[1].values::<f32>().unwrap()[..n], tanh_bias.as_slice());
        assert!(cpu[2].values::<f32>().unwrap().iter().all(|&v| v == 0.5));
    }
}

#[test]
fn an_empty_soft_minimum_is_infinite_and_empty_outputs_are_empty() {
    let g = Graph::new();
    let cost = g.input("cost", [3, 0], DType::F32).unwrap();
    let h_row = g.input("h_row", [0], DType::F32).unwrap();
    let h_col = g.input("h_col", [3], DType::F32).unwrap();
    let outs = [
        g.softmin(cost, h_row, 0.1, SoftminAxis::PerRow).unwrap(),
        g.softmin(cost, h_col, 0.1, SoftminAxis::PerColumn).unwrap(),
    ];
    let cpu = check(
        "softmin of a [3, 0] cost",
        &g,
        &outs,
        &[
            ("cost", &zeros(&[3, 0])),
            ("h_row", &zeros(&[0])),
            ("h_col", &zeros(&[3])),
        ],
        Tolerance::EXACT,
    );
    assert_eq!(cpu[0].values::<f32>().unwrap(), &[f32::INFINITY; 3]);
    assert_eq!(cpu[1].shape().dims(), &[0]);
}

#[test]
fn an_empty_batch_of_transport_problems_solves_to_nothing() {
    let g = Graph::new();
    let cost = g.input("cost", [0, 4, 5], DType::F32).unwrap();
    let a = g.input("a", [0, 4], DType::F32).unwrap();
    let b = g.input("b", [0, 5], DType::F32).unwrap();
    let s = g
        .sinkhorn(cost, a, b, None, SinkhornOptions::new(0.1, 5))
        .unwrap();
    let plan = g.ot_plan(&s).unwrap();
    let cpu = check(
        "sinkhorn with batch 0",
        &g,
        &[s.f, s.g, plan],
        &[
            ("cost", &zeros(&[0, 4, 5])),
            ("a", &zeros(&[0, 4])),
            ("b", &zeros(&[0, 5])),
        ],
        Tolerance::EXACT,
    );
    assert_eq!(cpu[2].shape().dims(), &[0, 4, 5]);
}

#[test]
fn points_without_coordinates_are_all_at_distance_zero() {
    // d = 0: every pair of points coincides, so the plan is a ⊗ b and the cost is zero.
    let g = Graph::new();
    let x = g.input("x", [4, 0], DType::F32).unwrap();
    let y = g.input("y", [3, 0], DType::F32).unwrap();
    let a = g.input("a", [4], DType::F32).unwrap();
    let b = g.input("b", [3], DType::F32).unwrap();
    let s = g
        .sinkhorn_points(
            x,
            y,
            a,
            b,
            None,
            PointCost::SqEuclidean,
            SinkhornOptions::new(0.1, 5),
        )
        .unwrap();
    let plan = g.ot_plan(&s).unwrap();
    let a_data = TensorData::new([4], vec![0.25f32; 4]).unwrap();
    let b_data = TensorData::new([3], vec![1.0f32 / 3.0; 3]).unwrap();
    let cpu = check(
        "sinkhorn_points with d = 0",
        &g,
        &[plan],
        &[
            ("x", &zeros(&[4, 0])),
            ("y", &zeros(&[3, 0])),
            ("a", &a_data),
            ("b", &b_data),
        ],
        Tolerance::new(1e-5, 1e-7),
    );
    for &p in cpu[0].values::<f32>().unwrap() {
        assert!((p - 1.0 / 12.0).abs() < 1e-6, "{p}");
    }
}
