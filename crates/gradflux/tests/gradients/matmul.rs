//! Matmul, its transposed operands and fused epilogues.

use super::*;

#[test]
fn matmul_gradients_including_broadcast_batches() {
    for (a, b) in [
        (vec![5, 7], vec![7, 3]),
        (vec![4, 3, 5], vec![4, 5, 6]),
        (vec![2, 1, 3, 5], vec![4, 5, 2]),
        (vec![3, 5], vec![6, 5, 4]),
        (vec![5], vec![5, 3]),
    ] {
        check_op(
            "matmul",
            &[arg(&a, -1.0, 1.0), arg(&b, -1.0, 1.0)],
            |g, x| g.matmul(x[0], x[1]),
        );
    }
}

#[test]
fn transposed_operands_and_fused_epilogues_have_gradients() {
    // Each transpose is folded into the matmul node, so these check the transposed
    // layouts of the gradient rule.
    for (a, b, ta, tb) in [
        (vec![7, 5], vec![7, 3], true, false),
        (vec![5, 7], vec![3, 7], false, true),
        (vec![2, 7, 5], vec![3, 7], true, true),
    ] {
        check_op(
            "matmul transposed",
            &[arg(&a, -1.0, 1.0), arg(&b, -1.0, 1.0)],
            move |g, x| {
                let l = if ta { g.transpose(x[0], -1, -2)? } else { x[0] };
                let r = if tb { g.transpose(x[1], -1, -2)? } else { x[1] };
                g.matmul(l, r)
            },
        );
    }
    for act in Activation::ALL {
        for bias in [vec![3], vec![4, 1], vec![2, 4, 3]] {
            check_op(
                "linear",
                &[
                    arg(&[2, 4, 5], -1.0, 1.0),
                    arg(&[5, 3], -1.0, 1.0),
                    arg(&bias, -1.0, 1.0),
                ],
                move |g, x| g.linear(x[0], x[1], Some(x[2]), act),
            );
        }
        check_op(
            "linear without bias",
            &[arg(&[6, 5], -1.0, 1.0), arg(&[3, 5], -1.0, 1.0)],
            move |g, x| g.linear(x[0], g.transpose(x[1], 0, 1)?, None, act),
        );
    }
}
