//! Matrix products: batching with broadcast, vectors, accumulation rules, a larger size.

mod common;

use common::{constant, data, eval, run};
use gradflux_core::{DType, Graph};

#[test]
fn batched_times_shared_matrix() {
    let g = Graph::new();
    let a = constant(&g, &[2, 2, 3], (1..=12).map(|v| v as f32).collect());
    let b = constant(&g, &[3, 2], vec![1.0f32, 0.0, 0.0, 1.0, 1.0, -1.0]);
    let y = eval(&g, g.matmul(a, b).unwrap());
    assert_eq!(y.shape().dims(), &[2, 2, 2]);
    // Row [x, y, z] maps to [x + z, y - z].
    assert_eq!(
        y.values::<f32>().unwrap(),
        &[4.0, -1.0, 10.0, -1.0, 16.0, -1.0, 22.0, -1.0]
    );
}

#[test]
fn batch_dimensions_broadcast_against_each_other() {
    let g = Graph::new();
    // a: batch [2, 1] of 1x2 rows; b: batch [3] of 2x1 columns -> batch [2, 3].
    let a = constant(&g, &[2, 1, 1, 2], vec![1i32, 2, 3, 4]);
    let b = constant(&g, &[3, 2, 1], vec![1i32, 0, 0, 1, 1, 1]);
    let y = eval(&g, g.matmul(a, b).unwrap());
    assert_eq!(y.shape().dims(), &[2, 3, 1, 1]);
    assert_eq!(y.values::<i32>().unwrap(), &[1, 2, 3, 3, 4, 7]);
}

#[test]
fn vectors_follow_numpy_rules() {
    let g = Graph::new();
    let v = constant(&g, &[3], vec![1.0f64, 2.0, 3.0]);
    let m = constant(&g, &[2, 3], vec![1.0f64, 0.0, 0.0, 0.0, 1.0, 1.0]);
    let dot = eval(&g, g.matmul(v, v).unwrap());
    assert_eq!(dot.shape().dims(), &[] as &[usize]);
    assert_eq!(dot.values::<f64>().unwrap(), &[14.0]);
    let mv = eval(&g, g.matmul(m, v).unwrap());
    assert_eq!(mv.shape().dims(), &[2]);
    assert_eq!(mv.values::<f64>().unwrap(), &[1.0, 5.0]);
}

#[test]
fn float_dot_products_accumulate_in_f64_and_ints_wrap() {
    let g = Graph::new();
    let a = constant(&g, &[1, 3], vec![1e8f32, 1.0, -1e8]);
    let b = constant(&g, &[3, 1], vec![1.0f32, 1.0, 1.0]);
    assert_eq!(
        eval(&g, g.matmul(a, b).unwrap()).values::<f32>().unwrap(),
        &[1.0]
    );

    let g = Graph::new();
    let a = constant(&g, &[1, 2], vec![1u32 << 31, 3]);
    let b = constant(&g, &[2, 1], vec![2u32, u32::MAX]);
    // 2^32 wraps to 0; 3 * (2^32 - 1) wraps to 2^32 - 3.
    assert_eq!(
        eval(&g, g.matmul(a, b).unwrap()).values::<u32>().unwrap(),
        &[u32::MAX - 2]
    );
}

#[test]
fn square_128_matches_a_naive_product() {
    let n = 128;
    let av: Vec<f32> = (0..n * n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    let bv: Vec<f32> = (0..n * n)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.0)
        .collect();
    let g = Graph::new();
    let a = g.input("a", [n, n], DType::F32).unwrap();
    let b = g.input("b", [n, n], DType::F32).unwrap();
    let y = g.matmul(a, b).unwrap();
    let out = run(
        &g,
        &[y],
        &[
            ("a", &data(&[n, n], av.clone())),
            ("b", &data(&[n, n], bv.clone())),
        ],
    );
    let got = out[0].values::<f32>().unwrap();
    for i in 0..n {
        for j in 0..n {
            let want: f64 = (0..n)
                .map(|p| av[i * n + p] as f64 * bv[p * n + j] as f64)
                .sum();
            assert_eq!(got[i * n + j], want as f32, "at ({i}, {j})");
        }
    }
}
