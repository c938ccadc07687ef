//! Running sums.

use super::*;

#[test]
fn running_sum_gradients() {
    for (shape, axis) in [
        (vec![50], 0isize),
        (vec![7, 13], 1),
        (vec![7, 13], 0),
        (vec![3, 5, 4], 1),
    ] {
        check_op("cumsum", &[arg(&shape, -2.0, 2.0)], |g, x| {
            g.cumsum(x[0], axis)
        });
        check_op("reverse_cumsum", &[arg(&shape, -2.0, 2.0)], |g, x| {
            g.reverse_cumsum(x[0], axis)
        });
    }
}
