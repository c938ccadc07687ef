//! Layout ops.

use super::*;

#[test]
fn layout_gradients() {
    check_op("reshape", &[arg(&[6, 35], -1.0, 1.0)], |g, x| {
        g.reshape(x[0], [2, 3, 5, 7])
    });
    check_op("permute", &[arg(&[3, 5, 7], -1.0, 1.0)], |g, x| {
        g.permute(x[0], &[2, 0, 1])
    });
    check_op("transpose", &[arg(&[7, 13], -1.0, 1.0)], |g, x| {
        g.transpose(x[0], 0, 1)
    });
    check_op("slice", &[arg(&[7, 50, 3], -1.0, 1.0)], |g, x| {
        g.slice_step(x[0], 1, 2, 47, 3)
    });
    check_op(
        "concat",
        &[
            arg(&[3, 4], -1.0, 1.0),
            arg(&[3, 1], -1.0, 1.0),
            arg(&[3, 7], -1.0, 1.0),
        ],
        |g, x| g.concat(x, 1),
    );
    check_op("broadcast_to", &[arg(&[3, 1, 2], -1.0, 1.0)], |g, x| {
        g.broadcast_to(x[0], [4, 3, 5, 2])
    });
}
