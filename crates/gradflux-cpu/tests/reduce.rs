//! Reductions and softmax: accumulation precision, axis handling and edge cases.

mod common;

use common::{constant, eval};
use gradflux_core::{DType, Graph};

#[test]
fn sum_over_each_axis_with_and_without_keepdim() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    let rows = eval(&g, g.sum(x, 1).unwrap());
    let cols = eval(&g, g.sum_keepdim(x, 0).unwrap());
    assert_eq!(rows.shape().dims(), &[2]);
    assert_eq!(rows.values::<i32>().unwrap(), &[6, 15]);
    assert_eq!(cols.shape().dims(), &[1, 3]);
    assert_eq!(cols.values::<i32>().unwrap(), &[5, 7, 9]);

    // Middle axis of a rank-3 tensor: lanes are strided by `inner`.
    let g = Graph::new();
    let x = constant(&g, &[2, 2, 2], (0..8u32).collect());
    let y = eval(&g, g.sum(x, -2).unwrap());
    assert_eq!(y.shape().dims(), &[2, 2]);
    assert_eq!(y.values::<u32>().unwrap(), &[2, 4, 10, 12]);
}

#[test]
fn float_sums_accumulate_in_f64_and_ints_wrap() {
    let g = Graph::new();
    // In f32, 1e8 + 1 == 1e8, so a native accumulator would return 0.
    let x = constant(&g, &[3], vec![1e8f32, 1.0, -1e8]);
    assert_eq!(
        eval(&g, g.sum(x, 0).unwrap()).values::<f32>().unwrap(),
        &[1.0]
    );

    let g = Graph::new();
    let x = constant(&g, &[3], vec![i32::MAX, 1, 1]);
    let s = eval(&g, g.sum(x, 0).unwrap());
    assert_eq!(s.values::<i32>().unwrap(), &[i32::MIN + 1]);

    let g = Graph::new();
    let x = constant(&g, &[2], vec![u32::MAX, 2]);
    assert_eq!(
        eval(&g, g.sum(x, 0).unwrap()).values::<u32>().unwrap(),
        &[1]
    );
}

#[test]
fn mean_divides_the_f64_sum() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![1.0f64, 2.0, 4.0, -1.0, 0.0, 0.5]);
    let m = eval(&g, g.mean(x, 1).unwrap());
    assert_eq!(m.values::<f64>().unwrap(), &[7.0 / 3.0, -0.5 / 3.0]);

    let g = Graph::new();
    let x = constant(&g, &[2, 0], Vec::<f32>::new());
    let m = eval(&g, g.mean(x, 1).unwrap());
    assert!(m.values::<f32>().unwrap().iter().all(|v| v.is_nan()));
    let s = eval(&g, g.sum(x, 1).unwrap());
    assert_eq!(s.values::<f32>().unwrap(), &[0.0, 0.0]);
}

#[test]
fn max_and_min_per_dtype() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![3.0f32, -1.0, 2.0, -5.0, -4.0, -6.0]);
    assert_eq!(
        eval(&g, g.max(x, 1).unwrap()).values::<f32>().unwrap(),
        &[3.0, -4.0]
    );
    assert_eq!(
        eval(&g, g.min(x, 1).unwrap()).values::<f32>().unwrap(),
        &[-1.0, -6.0]
    );
    assert_eq!(
        eval(&g, g.max_keepdim(x, 0).unwrap())
            .values::<f32>()
            .unwrap(),
        &[3.0, -1.0, 2.0]
    );

    let g = Graph::new();
    let x = constant(&g, &[3], vec![7u32, u32::MAX, 0]);
    assert_eq!(
        eval(&g, g.max(x, 0).unwrap()).values::<u32>().unwrap(),
        &[u32::MAX]
    );
    assert_eq!(
        eval(&g, g.min(x, 0).unwrap()).values::<u32>().unwrap(),
        &[0]
    );
}

#[test]
fn argmax_breaks_ties_toward_the_smallest_index() {
    let g = Graph::new();
    let x = constant(
        &g,
        &[3, 4],
        vec![
            1.0f32, 5.0, 5.0, 2.0, 7.0, 7.0, 7.0, 7.0, -3.0, -2.0, -1.0, -1.0,
        ],
    );
    let rows = eval(&g, g.argmax(x, 1).unwrap());
    assert_eq!(rows.dtype(), DType::U32);
    assert_eq!(rows.values::<u32>().unwrap(), &[1, 0, 2]);
    let cols = eval(&g, g.argmax_keepdim(x, 0).unwrap());
    assert_eq!(cols.shape().dims(), &[1, 4]);
    assert_eq!(cols.values::<u32>().unwrap(), &[1, 1, 1, 1]);

    let g = Graph::new();
    let x = constant(&g, &[4], vec![-2i32, 9, 9, -10]);
    assert_eq!(
        eval(&g, g.argmax(x, 0).unwrap()).values::<u32>().unwrap(),
        &[1]
    );
}

#[test]
fn logsumexp_is_stable_and_handles_an_all_negative_infinity_row() {
    let g = Graph::new();
    let ninf = f32::NEG_INFINITY;
    let x = constant(&g, &[3, 2], vec![0.0f32, 0.0, ninf, ninf, 1000.0, 1000.0]);
    let y = eval(&g, g.logsumexp(x, 1).unwrap());
    let v = y.values::<f32>().unwrap();
    assert_eq!(v[0], 2f64.ln() as f32);
    assert_eq!(v[1], ninf);
    assert_eq!(v[2], (1000.0 + 2f64.ln()) as f32);

    let g = Graph::new();
    let x = constant(&g, &[3], vec![1.0f64, 2.0, ninf as f64]);
    let y = eval(&g, g.logsumexp(x, 0).unwrap());
    let want = 2.0 + ((1.0f64 - 2.0).exp() + 1.0).ln();
    assert_eq!(y.values::<f64>().unwrap(), &[want]);
}

#[test]
fn softmax_rows_sum_to_one() {
    let g = Graph::new();
    let values: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin() * 30.0).collect();
    let x = constant(&g, &[3, 4], values.clone());
    // Along axis 0 the lanes are strided, which exercises the write-back.
    for axis in [0isize, 1] {
        let p = eval(&g, g.softmax(x, axis).unwrap());
        let lp = eval(&g, g.log_softmax(x, axis).unwrap());
        assert_eq!(p.shape().dims(), &[3, 4]);
        let pv = p.values::<f32>().unwrap();
        let lpv = lp.values::<f32>().unwrap();
        let lanes: Vec<Vec<usize>> = if axis == 1 {
            (0..3)
                .map(|r| (0..4).map(|c| r * 4 + c).collect())
                .collect()
        } else {
            (0..4)
                .map(|c| (0..3).map(|r| r * 4 + c).collect())
                .collect()
        };
        for lane in lanes {
            let total: f32 = lane.iter().map(|&i| pv[i]).sum();
            assert!((total - 1.0).abs() < 1e-6, "axis {axis}: sum {total}");
            for &i in &lane {
                assert!((lpv[i].exp() - pv[i]).abs() < 1e-6);
            }
        }
    }

    let g = Graph::new();
    let x = constant(&g, &[3], vec![1.0f64, 2.0, 3.0]);
    let p = eval(&g, g.softmax(x, 0).unwrap());
    let lp = eval(&g, g.log_softmax(x, 0).unwrap());
    let s: f64 = [-2.0f64, -1.0, 0.0].iter().map(|d| d.exp()).sum();
    let want: Vec<f64> = [-2.0f64, -1.0, 0.0].iter().map(|d| d.exp() / s).collect();
    let want_log: Vec<f64> = [-2.0f64, -1.0, 0.0].iter().map(|d| d - s.ln()).collect();
    assert_eq!(p.values::<f64>().unwrap(), &want[..]);
    assert_eq!(lp.values::<f64>().unwrap(), &want_log[..]);
}

#[test]
fn softmax_of_huge_logits_does_not_overflow() {
    let g = Graph::new();
    let x = constant(&g, &[2], vec![1e30f32, 0.0]);
    let p = eval(&g, g.softmax(x, 0).unwrap());
    assert_eq!(p.values::<f32>().unwrap(), &[1.0, 0.0]);
    let lp = eval(&g, g.log_softmax(x, 0).unwrap());
    assert_eq!(lp.values::<f32>().unwrap(), &[0.0, -1e30]);
}
