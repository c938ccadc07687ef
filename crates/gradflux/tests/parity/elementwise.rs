use gradflux::{BinaryOp, CompareOp, DType, Graph, Shape, TensorData, Tolerance, UnaryOp};

use crate::common::{check, random, random_small_ints_f32, shapes, tol_for, Rng};

const TRANSCENDENTAL: Tolerance = Tolerance::new(1e-5, 1e-6);

fn unary_range(op: UnaryOp) -> (f64, f64) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt => (0.01, 50.0),
        UnaryOp::Exp => (-20.0, 20.0),
        _ => (-30.0, 30.0),
    }
}

#[test]
fn unary_ops_match() {
    let mut rng = Rng::new(1);
    for op in UnaryOp::ALL {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            if (op.float_only() && dtype != DType::F32)
                || (op == UnaryOp::Neg && dtype == DType::U32)
            {
                continue;
            }
            for shape in shapes() {
                let g = Graph::new();
                let x = g.input("x", shape.clone(), dtype).unwrap();
                let y = g.unary(op, x).unwrap();
                let (lo, hi) = unary_range(op);
                let data = random(&mut rng, shape.clone(), dtype, lo, hi);
                let tol = if op.float_only() {
                    TRANSCENDENTAL
                } else {
                    Tolerance::EXACT
                };
                check(
                    &format!("{} {dtype} {shape}", op.name()),
                    &g,
                    &[y],
                    &[("x", &data)],
                    tol,
                );
            }
        }
    }
}

#[test]
fn integer_edge_cases_wrap_like_wgsl() {
    let g = Graph::new();
    let x = g.input("x", [4], DType::I32).unwrap();
    let outs = [g.neg(x).unwrap(), g.abs(x).unwrap(), g.relu(x).unwrap()];
    let data = TensorData::new([4], vec![i32::MIN, -7, 0, i32::MAX]).unwrap();
    let cpu = check("i32 edges", &g, &outs, &[("x", &data)], Tolerance::EXACT);
    assert_eq!(
        cpu[0].values::<i32>().unwrap(),
        &[i32::MIN, 7, 0, -i32::MAX]
    );
    assert_eq!(cpu[1].values::<i32>().unwrap(), &[i32::MIN, 7, 0, i32::MAX]);
}

fn binary_shape_pairs() -> Vec<(Shape, Shape)> {
    let mut pairs: Vec<(Shape, Shape)> = shapes().into_iter().map(|s| (s.clone(), s)).collect();
    for (a, b) in [
        (vec![5, 1], vec![1, 7]),
        (vec![4, 1, 3], vec![6, 1]),
        (vec![], vec![50]),
        (vec![783], vec![]),
        (vec![2, 3, 4, 5], vec![4, 1]),
        (vec![1, 300], vec![9, 1]),
    ] {
        pairs.push((Shape(a), Shape(b)));
    }
    pairs
}

#[test]
fn binary_ops_match_with_broadcasting() {
    let mut rng = Rng::new(2);
    for op in BinaryOp::ALL {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            if op == BinaryOp::Pow && dtype != DType::F32 {
                continue;
            }
            for (sa, sb) in binary_shape_pairs() {
                let g = Graph::new();
                let a = g.input("a", sa.clone(), dtype).unwrap();
                let b = g.input("b", sb.clone(), dtype).unwrap();
                let y = g.binary(op, a, b).unwrap();
                let (da, db) = match (op, dtype) {
                    (BinaryOp::Pow, _) => (
                        random(&mut rng, sa.clone(), dtype, 0.05, 4.0),
                        random(&mut rng, sb.clone(), dtype, -3.0, 3.0),
                    ),
                    // Small divisors include 0, which must give `x / 0 == x` on integers.
                    (BinaryOp::Div, DType::I32 | DType::U32) => (
                        random(&mut rng, sa.clone(), dtype, -1000.0, 1000.0),
                        random(&mut rng, sb.clone(), dtype, -4.0, 4.0),
                    ),
                    (_, DType::F32) => (
                        random(&mut rng, sa.clone(), dtype, -10.0, 10.0),
                        random(&mut rng, sb.clone(), dtype, -10.0, 10.0),
                    ),
                    _ => (
                        random(&mut rng, sa.clone(), dtype, -100_000.0, 100_000.0),
                        random(&mut rng, sb.clone(), dtype, -100_000.0, 100_000.0),
                    ),
                };
                let tol = match op {
                    BinaryOp::Div => tol_for(dtype, Tolerance::new(1e-6, 0.0)),
                    BinaryOp::Pow => Tolerance::new(1e-5, 1e-6),
                    _ => Tolerance::EXACT,
                };
                check(
                    &format!("{} {dtype} {sa} {sb}", op.name()),
                    &g,
                    &[y],
                    &[("a", &da), ("b", &db)],
                    tol,
                );
            }
        }
    }
}

#[test]
fn integer_division_edge_cases() {
    let g = Graph::new();
    let a = g.input("a", [4], DType::I32).unwrap();
    let b = g.input("b", [4], DType::I32).unwrap();
    let y = g.div(a, b).unwrap();
    let da = TensorData::new([4], vec![i32::MIN, 7, -7, 5]).unwrap();
    let db = TensorData::new([4], vec![-1, 0, 2, -2]).unwrap();
    let cpu = check(
        "i32 div edges",
        &g,
        &[y],
        &[("a", &da), ("b", &db)],
        Tolerance::EXACT,
    );
    assert_eq!(cpu[0].values::<i32>().unwrap(), &[i32::MIN, 7, -3, -2]);
}

#[test]
fn pow_with_negative_base_follows_c_rules() {
    let g = Graph::new();
    let a = g.input("a", [6], DType::F32).unwrap();
    let b = g.input("b", [6], DType::F32).unwrap();
    let y = g.pow(a, b).unwrap();
    let da = TensorData::new([6], vec![-2.0f32, -2.0, -3.0, 0.0, 0.0, 5.0]).unwrap();
    let db = TensorData::new([6], vec![2.0f32, 3.0, 0.5, 2.0, 0.0, -1.0]).unwrap();
    let cpu = check(
        "pow edges",
        &g,
        &[y],
        &[("a", &da), ("b", &db)],
        Tolerance::new(1e-6, 0.0),
    );
    let v = cpu[0].values::<f32>().unwrap();
    assert_eq!(&v[..2], &[4.0, -8.0]);
    assert!(v[2].is_nan());
    assert_eq!(&v[3..5], &[0.0, 1.0]);
}

#[test]
fn comparisons_match() {
    let mut rng = Rng::new(3);
    for op in CompareOp::ALL {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            for (sa, sb) in binary_shape_pairs() {
                let g = Graph::new();
                let a = g.input("a", sa.clone(), dtype).unwrap();
                let b = g.input("b", sb.clone(), dtype).unwrap();
                let y = g.compare(op, a, b).unwrap();
                // Few distinct values, so equality happens often.
                let (da, db) = if dtype == DType::F32 {
                    (
                        random_small_ints_f32(&mut rng, sa.clone(), -3, 3),
                        random_small_ints_f32(&mut rng, sb.clone(), -3, 3),
                    )
                } else {
                    (
                        random(&mut rng, sa.clone(), dtype, -3.0, 3.0),
                        random(&mut rng, sb.clone(), dtype, -3.0, 3.0),
                    )
                };
                check(
                    &format!("{} {dtype} {sa} {sb}", op.name()),
                    &g,
                    &[y],
                    &[("a", &da), ("b", &db)],
                    Tolerance::EXACT,
                );
            }
        }
    }
}

#[test]
fn select_matches_with_broadcasting() {
    let mut rng = Rng::new(4);
    let cases = [
        (vec![783], vec![783], vec![783]),
        (vec![7, 13], vec![13], vec![7, 1]),
        (vec![3, 1, 17], vec![5, 1], vec![]),
        (vec![4096], vec![], vec![4096]),
    ];
    for dtype in [DType::F32, DType::I32, DType::U32] {
        for (sc, sa, sb) in &cases {
            let g = Graph::new();
            let c = g.input("c", sc.clone(), DType::U32).unwrap();
            let a = g.input("a", sa.clone(), dtype).unwrap();
            let b = g.input("b", sb.clone(), dtype).unwrap();
            let y = g.select(c, a, b).unwrap();
            let dc = random(&mut rng, sc.clone(), DType::U32, 0.0, 2.0);
            let da = random(&mut rng, sa.clone(), dtype, -50.0, 50.0);
            let db = random(&mut rng, sb.clone(), dtype, -50.0, 50.0);
            check(
                &format!("select {dtype} {sc:?} {sa:?} {sb:?}"),
                &g,
                &[y],
                &[("c", &dc), ("a", &da), ("b", &db)],
                Tolerance::EXACT,
            );
        }
    }
}

#[test]
fn casts_match_between_all_gpu_dtypes() {
    let mut rng = Rng::new(5);
    let types = [DType::F32, DType::I32, DType::U32];
    for from in types {
        for to in types {
            for shape in shapes() {
                let g = Graph::new();
                let x = g.input("x", shape.clone(), from).unwrap();
                let y = g.cast(x, to).unwrap();
                let data = random(&mut rng, shape.clone(), from, -1.0e6, 1.0e6);
                check(
                    &format!("cast {from}->{to} {shape}"),
                    &g,
                    &[y],
                    &[("x", &data)],
                    Tolerance::EXACT,
                );
            }
        }
    }
}

#[test]
fn float_to_int_casts_saturate() {
    let g = Graph::new();
    let x = g.input("x", [5], DType::F32).unwrap();
    let yi = g.cast(x, DType::I32).unwrap();
    let yu = g.cast(x, DType::U32).unwrap();
    let data = TensorData::new([5], vec![-3.7f32, 3.7, 3.0e9, -3.0e9, 1.0e10]).unwrap();
    let cpu = check(
        "saturating casts",
        &g,
        &[yi, yu],
        &[("x", &data)],
        Tolerance::EXACT,
    );
    // WGSL clamps to the largest f32 inside the integer range before converting.
    assert_eq!(
        cpu[0].values::<i32>().unwrap(),
        &[-3, 3, 2147483520, i32::MIN, 2147483520]
    );
    assert_eq!(
        cpu[1].values::<u32>().unwrap(),
        &[0, 3, 3_000_000_000, 0, 4294967040]
    );
}
