use gradflux::{DType, Graph, ReduceOp, TensorData, Tolerance};

use crate::common::{check, random, random_small_ints_f32, shapes, Rng};

fn reduce_tol(op: ReduceOp, dtype: DType, len: usize) -> Tolerance {
    match (op, dtype.is_float()) {
        (_, false) | (ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax, _) => Tolerance::EXACT,
        // The GPU sums in f32 (a tree per workgroup), the reference in f64.
        (ReduceOp::Sum, true) => Tolerance::new(1e-5, 2e-7 * len as f64),
        _ => Tolerance::new(1e-5, 1e-6),
    }
}

#[test]
fn reductions_match_over_every_axis() {
    let mut rng = Rng::new(10);
    for op in ReduceOp::ALL {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            if op.float_only() && dtype != DType::F32 {
                continue;
            }
            for shape in shapes() {
                for axis in 0..shape.rank() {
                    for keepdim in [false, true] {
                        let g = Graph::new();
                        let x = g.input("x", shape.clone(), dtype).unwrap();
                        let y = g.reduce(op, x, axis as isize, keepdim).unwrap();
                        // Small integers give ties, which argmax must break the same way.
                        let data = match (op, dtype) {
                            (ReduceOp::ArgMax | ReduceOp::Max | ReduceOp::Min, DType::F32) => {
                                random_small_ints_f32(&mut rng, shape.clone(), -4, 4)
                            }
                            (_, DType::F32) => random(&mut rng, shape.clone(), dtype, -3.0, 3.0),
                            _ => random(&mut rng, shape.clone(), dtype, -5.0, 5.0),
                        };
                        check(
                            &format!(
                                "{} {dtype} {shape} axis {axis} keepdim {keepdim}",
                                op.name()
                            ),
                            &g,
                            &[y],
                            &[("x", &data)],
                            reduce_tol(op, dtype, shape.dims()[axis]),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn logsumexp_handles_infinities_and_empty_sums() {
    let g = Graph::new();
    let x = g.input("x", [3, 2], DType::F32).unwrap();
    let y = g.logsumexp(x, 1).unwrap();
    let e = g.input("e", [2, 0], DType::F32).unwrap();
    let s = g.sum(e, 1).unwrap();
    let ninf = f32::NEG_INFINITY;
    let data = TensorData::new([3, 2], vec![ninf, ninf, 1000.0, 1000.0, ninf, 0.0]).unwrap();
    let empty = TensorData::new([2, 0], Vec::<f32>::new()).unwrap();
    let cpu = check(
        "lse edges",
        &g,
        &[y, s],
        &[("x", &data), ("e", &empty)],
        Tolerance::new(1e-6, 0.0),
    );
    let v = cpu[0].values::<f32>().unwrap();
    assert_eq!(v[0], ninf);
    assert!((v[1] - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
    assert_eq!(v[2], 0.0);
    assert_eq!(cpu[1].values::<f32>().unwrap(), &[0.0, 0.0]);
}

#[test]
fn softmax_and_log_softmax_match() {
    let mut rng = Rng::new(11);
    for log in [false, true] {
        for shape in shapes() {
            for axis in 0..shape.rank() {
                let g = Graph::new();
                let x = g.input("x", shape.clone(), DType::F32).unwrap();
                let y = if log {
                    g.log_softmax(x, axis as isize).unwrap()
                } else {
                    g.softmax(x, axis as isize).unwrap()
                };
                let data = random(&mut rng, shape.clone(), DType::F32, -20.0, 20.0);
                check(
                    &format!("softmax log={log} {shape} axis {axis}"),
                    &g,
                    &[y],
                    &[("x", &data)],
                    Tolerance::new(2e-5, 1e-6),
                );
            }
        }
    }
}

/// Axes longer than one workgroup's chunk (2^18 elements) reduce in two passes; the
/// partials must compose to the same answer, argmax's index included.
#[test]
fn long_axes_reduce_in_chunks() {
    let mut rng = Rng::new(14);
    for (shape, axis) in [
        (vec![600_001], 0),
        (vec![2, 300_007], 1),
        (vec![270_000, 3], 0),
    ] {
        for dtype in [DType::F32, DType::I32] {
            let data = match dtype {
                // Small integers: ties within and across chunks.
                DType::F32 => random_small_ints_f32(&mut rng, shape.clone(), -50, 50),
                _ => random(&mut rng, shape.clone(), dtype, -50.0, 50.0),
            };
            for op in ReduceOp::ALL {
                if op.float_only() && dtype != DType::F32 {
                    continue;
                }
                let g = Graph::new();
                let x = g.input("x", shape.clone(), dtype).unwrap();
                let y = g.reduce(op, x, axis, false).unwrap();
                let len = shape[axis as usize];
                check(
                    &format!("{} {dtype} {shape:?} axis {axis}", op.name()),
                    &g,
                    &[y],
                    &[("x", &data)],
                    reduce_tol(op, dtype, len),
                );
            }
        }
    }
    // The first NaN wins argmax across chunks; a later chunk's larger value does not.
    let mut v = vec![0.0f32; 600_001];
    v[400_000] = f32::NAN;
    v[550_000] = f32::INFINITY;
    v[300_000] = f32::NAN;
    let data = TensorData::new([600_001], v).unwrap();
    let g = Graph::new();
    let x = g.input("x", [600_001], DType::F32).unwrap();
    let outs = [
        g.argmax(x, 0).unwrap(),
        g.max(x, 0).unwrap(),
        g.logsumexp(x, 0).unwrap(),
    ];
    let cpu = check(
        "NaN across chunks",
        &g,
        &outs,
        &[("x", &data)],
        Tolerance::EXACT,
    );
    assert_eq!(cpu[0].values::<u32>().unwrap(), &[300_000]);
}

/// More than 2^24 elements in one sum: past what one workgroup's threads could walk
/// within a software driver's loop limit (65 535 iterations per invocation).
#[test]
fn a_sum_over_17_million_elements_counts_every_one() {
    let n = 17_000_003;
    let data = TensorData::new([n], vec![1.0f32; n]).unwrap();
    let g = Graph::new();
    let x = g.input("x", [n], DType::F32).unwrap();
    let outs = [g.sum_all(x).unwrap(), g.mean(x, 0).unwrap()];
    let cpu = check("sum of ones", &g, &outs, &[("x", &data)], Tolerance::EXACT);
    assert_eq!(cpu[0].values::<f32>().unwrap(), &[n as f32]);
}

/// Softmax over rows longer than one workgroup's chunk: chunk statistics, a merge per
/// row, then one thread per element; the special-value rules hold across chunks.
#[test]
fn softmax_over_long_rows_merges_chunks() {
    let mut rng = Rng::new(15);
    for (shape, axis) in [
        (vec![600_001], 0),
        (vec![2, 300_007], 1),
        (vec![270_000, 3], 0),
    ] {
        let data = random(&mut rng, shape.clone(), DType::F32, -20.0, 20.0);
        let g = Graph::new();
        let x = g.input("x", shape.clone(), DType::F32).unwrap();
        let outs = [g.softmax(x, axis).unwrap(), g.log_softmax(x, axis).unwrap()];
        check(
            &format!("softmax {shape:?} axis {axis}"),
            &g,
            &outs,
            &[("x", &data)],
            Tolerance::new(1e-5, 1e-9),
        );
    }
    // Rows of 300 001: +inf in two chunks shares the mass; all -inf is uniform; NaN spreads.
    let n = 300_001;
    let mut v: Vec<f32> = (0..4 * n).map(|i| (i % 13) as f32).collect();
    v[5] = f32::INFINITY;
    v[290_000] = f32::INFINITY;
    v[n..2 * n].iter_mut().for_each(|e| *e = f32::NEG_INFINITY);
    v[2 * n + 280_000] = f32::NAN;
    v[3 * n + 7] = f32::NEG_INFINITY;
    let data = TensorData::new([4, n], v).unwrap();
    let g = Graph::new();
    let x = g.input("x", [4, n], DType::F32).unwrap();
    let outs = [g.softmax(x, 1).unwrap(), g.log_softmax(x, 1).unwrap()];
    let cpu = check(
        "softmax special rows",
        &g,
        &outs,
        &[("x", &data)],
        Tolerance::new(1e-5, 1e-9),
    );
    let p = cpu[0].values::<f32>().unwrap();
    assert_eq!((p[5], p[290_000], p[6]), (0.5, 0.5, 0.0));
    assert_eq!(p[n], 1.0 / n as f32);
    assert!(p[2 * n..3 * n].iter().all(|v| v.is_nan()));
    assert_eq!(p[3 * n + 7], 0.0);
}
