//! Elementwise ops and select.

use super::*;

#[test]
fn unary_gradients() {
    check_op("neg", &[arg(&[7, 13], -2.0, 2.0)], |g, x| g.neg(x[0]));
    check_op("abs", &[arg(&[50], -2.0, 2.0)], |g, x| g.abs(x[0]));
    check_op("relu", &[arg(&[50], -2.0, 2.0)], |g, x| g.relu(x[0]));
    check_op("exp", &[arg(&[3, 5], -2.0, 2.0)], |g, x| g.exp(x[0]));
    check_op("log", &[arg(&[3, 5], 0.2, 3.0)], |g, x| g.log(x[0]));
    check_op("sqrt", &[arg(&[3, 5], 0.2, 3.0)], |g, x| g.sqrt(x[0]));
    check_op("sigmoid", &[arg(&[50], -4.0, 4.0)], |g, x| g.sigmoid(x[0]));
    check_op("tanh", &[arg(&[50], -3.0, 3.0)], |g, x| g.tanh(x[0]));
}

#[test]
fn binary_gradients_reduce_broadcast_dimensions() {
    let pairs = [
        (vec![4, 5], vec![4, 5]),
        (vec![4, 1], vec![1, 5]),
        (vec![3, 4, 5], vec![5]),
        (vec![], vec![2, 3]),
    ];
    for (a, b) in &pairs {
        check_op("add", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.add(x[0], x[1])
        });
        check_op("sub", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.sub(x[0], x[1])
        });
        check_op("mul", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.mul(x[0], x[1])
        });
        check_op("div", &[arg(a, -2.0, 2.0), arg(b, 0.5, 2.0)], |g, x| {
            g.div(x[0], x[1])
        });
        check_op("pow", &[arg(a, 0.5, 2.0), arg(b, -1.5, 1.5)], |g, x| {
            g.pow(x[0], x[1])
        });
        check_op(
            "maximum",
            &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)],
            |g, x| g.maximum(x[0], x[1]),
        );
        check_op(
            "minimum",
            &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)],
            |g, x| g.minimum(x[0], x[1]),
        );
    }
}

#[test]
fn select_gradient_flows_to_the_chosen_side() {
    check_op(
        "select",
        &[
            arg(&[6, 5], -1.0, 1.0),
            arg(&[5], -2.0, 2.0),
            arg(&[6, 1], -2.0, 2.0),
        ],
        |g, x| {
            let mask = g.gt(x[0], g.scalar(0.0, g.dtype(x[0])?)?)?;
            g.select(mask, x[1], x[2])
        },
    );
}
