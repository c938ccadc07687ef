//! Gathers and scatters.

use super::*;

#[test]
fn gather_and_scatter_add_gradients() {
    let idx = TensorData::new([6], vec![0u32, 9, 3, 3, 12, 1]).unwrap();
    let i = idx.clone();
    check_op("gather", &[arg(&[10, 4], -1.0, 1.0)], move |g, x| {
        g.gather(x[0], 0, g.constant(i.clone())?)
    });
    let i = idx.clone();
    check_op("scatter_add", &[arg(&[6, 4], -1.0, 1.0)], move |g, x| {
        g.scatter_add(x[0], 0, g.constant(i.clone())?, 10)
    });
}

#[test]
fn gather_along_and_scatter_along_gradients() {
    let idx = TensorData::new([3, 2], vec![0u32, 4, 4, 4, 9, 1]).unwrap();
    let i = idx.clone();
    check_op("gather_along", &[arg(&[3, 5], -1.0, 1.0)], move |g, x| {
        g.gather_along(x[0], 1, g.constant(i.clone())?)
    });
    let i = idx.clone();
    check_op("scatter_along", &[arg(&[3, 2], -1.0, 1.0)], move |g, x| {
        g.scatter_along(x[0], 1, g.constant(i.clone())?, 5)
    });
}
