//! Data movement on small known arrays.

mod common;

use common::{constant, eval};
use gradflux_core::Graph;

#[test]
fn permute_moves_axes() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3, 4], (0..24i32).collect());
    // out[a, b, c] = x[b, c, a]
    let y = eval(&g, g.permute(x, &[2, 0, 1]).unwrap());
    assert_eq!(y.shape().dims(), &[4, 2, 3]);
    assert_eq!(
        y.values::<i32>().unwrap(),
        &[
            0, 4, 8, 12, 16, 20, //
            1, 5, 9, 13, 17, 21, //
            2, 6, 10, 14, 18, 22, //
            3, 7, 11, 15, 19, 23,
        ]
    );

    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let t = eval(&g, g.transpose(x, 0, 1).unwrap());
    assert_eq!(t.shape().dims(), &[3, 2]);
    assert_eq!(t.values::<f64>().unwrap(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn slice_with_step_along_each_axis() {
    let g = Graph::new();
    let x = constant(&g, &[2, 7], (0..14u32).collect());
    let a = eval(&g, g.slice_step(x, 1, 1, 7, 3).unwrap());
    assert_eq!(a.shape().dims(), &[2, 2]);
    assert_eq!(a.values::<u32>().unwrap(), &[1, 4, 8, 11]);
    let b = eval(&g, g.slice_step(x, -1, 2, 7, 2).unwrap());
    assert_eq!(b.values::<u32>().unwrap(), &[2, 4, 6, 9, 11, 13]);
    let c = eval(&g, g.slice(x, 0, 1, 2).unwrap());
    assert_eq!(c.shape().dims(), &[1, 7]);
    assert_eq!(c.values::<u32>().unwrap(), &[7, 8, 9, 10, 11, 12, 13]);
    let empty = eval(&g, g.slice(x, 1, 3, 3).unwrap());
    assert_eq!(empty.shape().dims(), &[2, 0]);
    assert_eq!(empty.numel(), 0);
}

#[test]
fn concat_joins_in_order() {
    let g = Graph::new();
    let a = constant(&g, &[2, 1], vec![1.0f32, 2.0]);
    let b = constant(&g, &[2, 2], vec![3.0f32, 4.0, 5.0, 6.0]);
    let c = constant(&g, &[2, 1], vec![7.0f32, 8.0]);
    let y = eval(&g, g.concat(&[a, b, c], 1).unwrap());
    assert_eq!(y.shape().dims(), &[2, 4]);
    assert_eq!(
        y.values::<f32>().unwrap(),
        &[1.0, 3.0, 4.0, 7.0, 2.0, 5.0, 6.0, 8.0]
    );

    let g = Graph::new();
    let a = constant(&g, &[1, 2], vec![1i32, 2]);
    let b = constant(&g, &[2, 2], vec![3i32, 4, 5, 6]);
    let y = eval(&g, g.concat(&[b, a], 0).unwrap());
    assert_eq!(y.shape().dims(), &[3, 2]);
    assert_eq!(y.values::<i32>().unwrap(), &[3, 4, 5, 6, 1, 2]);
}

#[test]
fn broadcast_to_repeats_unit_and_missing_axes() {
    let g = Graph::new();
    let x = constant(&g, &[2, 1], vec![1u32, 2]);
    let y = eval(&g, g.broadcast_to(x, [2, 2, 3]).unwrap());
    assert_eq!(y.shape().dims(), &[2, 2, 3]);
    assert_eq!(
        y.values::<u32>().unwrap(),
        &[1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]
    );

    let s = constant(&g, &[], vec![9u32]);
    let y = eval(&g, g.broadcast_to(s, [3]).unwrap());
    assert_eq!(y.values::<u32>().unwrap(), &[9, 9, 9]);
}

#[test]
fn reshape_keeps_row_major_order() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], (0..6i32).collect());
    let y = eval(&g, g.reshape(x, [3, 2]).unwrap());
    assert_eq!(y.shape().dims(), &[3, 2]);
    assert_eq!(y.values::<i32>().unwrap(), &[0, 1, 2, 3, 4, 5]);
}
