//! Reductions and softmax.

use gradflux::ReduceOp;

use super::*;

#[test]
fn reduction_and_softmax_gradients() {
    for (shape, axis) in [
        (vec![50], 0isize),
        (vec![7, 13], 1),
        (vec![7, 13], 0),
        (vec![3, 5, 17], 1),
    ] {
        for keepdim in [false, true] {
            check_op("sum", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.reduce(ReduceOp::Sum, x[0], axis, keepdim)
            });
            check_op("mean", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.reduce(ReduceOp::Mean, x[0], axis, keepdim)
            });
            check_op("max", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.reduce(ReduceOp::Max, x[0], axis, keepdim)
            });
            check_op("min", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.reduce(ReduceOp::Min, x[0], axis, keepdim)
            });
            check_op("logsumexp", &[arg(&shape, -3.0, 3.0)], |g, x| {
                g.reduce(ReduceOp::LogSumExp, x[0], axis, keepdim)
            });
        }
        check_op("softmax", &[arg(&shape, -3.0, 3.0)], |g, x| {
            g.softmax(x[0], axis)
        });
        check_op("log_softmax", &[arg(&shape, -3.0, 3.0)], |g, x| {
            g.log_softmax(x[0], axis)
        });
    }
}
