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
    let y = g.logsumexp(x, 1, false).unwrap();
    let e = g.input("e", [2, 0], DType::F32).unwrap();
    let s = g.sum(e, 1, false).unwrap();
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
