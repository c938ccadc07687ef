//! Gather and scatter_add, including the defined behaviour of out-of-range indices.

mod common;

use common::{constant, eval};
use gradflux_core::Graph;

#[test]
fn gather_rows_with_out_of_range_indices_reading_zero() {
    let g = Graph::new();
    let table = constant(&g, &[3, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = constant(&g, &[4], vec![2i32, -1, 0, 3]);
    let y = eval(&g, g.gather(table, 0, idx).unwrap());
    assert_eq!(y.shape().dims(), &[4, 2]);
    assert_eq!(
        y.values::<f32>().unwrap(),
        &[5.0, 6.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]
    );
}

#[test]
fn gather_along_an_inner_axis_with_a_matrix_of_indices() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![10i32, 11, 12, 20, 21, 22]);
    let idx = constant(&g, &[2, 2], vec![0u32, 2, 5, 1]);
    let y = eval(&g, g.gather(x, 1, idx).unwrap());
    assert_eq!(y.shape().dims(), &[2, 2, 2]);
    assert_eq!(y.values::<i32>().unwrap(), &[10, 12, 0, 11, 20, 22, 0, 21]);
}

#[test]
fn scatter_add_sums_repeats_and_drops_out_of_range() {
    let g = Graph::new();
    let src = constant(
        &g,
        &[2, 5],
        vec![1i32, 2, 4, 8, 16, 100, 200, 400, 800, 1600],
    );
    let idx = constant(&g, &[5], vec![1i32, 1, -1, 3, 0]);
    let y = eval(&g, g.scatter_add(src, 1, idx, 3).unwrap());
    assert_eq!(y.shape().dims(), &[2, 3]);
    assert_eq!(y.values::<i32>().unwrap(), &[16, 3, 0, 1600, 300, 0]);
}

#[test]
fn scatter_add_with_a_matrix_of_indices_inverts_gather_shapes() {
    let g = Graph::new();
    // src = out[..0] ++ idx.shape ++ out[1..] = [2, 2] ++ [2]
    let src = constant(
        &g,
        &[2, 2, 2],
        vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    );
    let idx = constant(&g, &[2, 2], vec![0u32, 1, 0, 9]);
    let y = eval(&g, g.scatter_add(src, 0, idx, 2).unwrap());
    assert_eq!(y.shape().dims(), &[2, 2]);
    assert_eq!(
        y.values::<f64>().unwrap(),
        &[1.0 + 5.0, 2.0 + 6.0, 3.0, 4.0]
    );
}

#[test]
fn scatter_add_accumulates_floats_in_f64() {
    let g = Graph::new();
    let src = constant(&g, &[3], vec![1e8f32, 1.0, -1e8]);
    let idx = constant(&g, &[3], vec![0u32, 0, 0]);
    let y = eval(&g, g.scatter_add(src, 0, idx, 2).unwrap());
    assert_eq!(y.values::<f32>().unwrap(), &[1.0, 0.0]);
}
