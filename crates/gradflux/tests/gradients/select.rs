//! Top-k.

use super::*;

#[test]
fn top_k_gradient_reaches_the_selected_positions() {
    // Random f64 data has no ties, so the selection is stable under the finite-difference
    // step; the middle axis exercises the strided view.
    check_op("top_k last axis", &[arg(&[5, 9], -1.0, 1.0)], |g, x| {
        Ok(g.top_k(x[0], 3, -1)?.0)
    });
    check_op(
        "top_k middle axis",
        &[arg(&[2, 7, 3], -1.0, 1.0)],
        |g, x| Ok(g.top_k(x[0], 7, 1)?.0),
    );
    // Through a softmax over the chosen logits: the usual router.
    check_op("softmax of top_k", &[arg(&[4, 6], -2.0, 2.0)], |g, x| {
        g.softmax(g.top_k(x[0], 2, -1)?.0, -1)
    });
}
