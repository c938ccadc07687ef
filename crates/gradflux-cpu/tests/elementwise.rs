//! Elementwise ops: broadcasting, integer rules, float edge cases and casts.

mod common;

use common::{constant, data, eval, run};
use gradflux_core::{DType, Graph};

#[test]
fn add_broadcasts_column_against_row() {
    let g = Graph::new();
    let a = g.input("a", [3, 1], DType::F32).unwrap();
    let b = g.input("b", [4], DType::F32).unwrap();
    let y = g.add(a, b).unwrap();
    let out = run(
        &g,
        &[y],
        &[
            ("a", &data(&[3, 1], vec![0.0f32, 10.0, 20.0])),
            ("b", &data(&[4], vec![1.0f32, 2.0, 3.0, 4.0])),
        ],
    );
    assert_eq!(out[0].shape().dims(), &[3, 4]);
    assert_eq!(
        out[0].values::<f32>().unwrap(),
        &[1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0, 21.0, 22.0, 23.0, 24.0]
    );
}

#[test]
fn integer_division_follows_wgsl() {
    let g = Graph::new();
    let a = constant(&g, &[5], vec![7i32, -7, 5, i32::MIN, -9]);
    let b = constant(&g, &[5], vec![2i32, 2, 0, -1, 0]);
    let q = eval(&g, g.div(a, b).unwrap());
    // Truncation toward zero, x / 0 == x, MIN / -1 == MIN.
    assert_eq!(q.values::<i32>().unwrap(), &[3, -3, 5, i32::MIN, -9]);

    let g = Graph::new();
    let a = constant(&g, &[3], vec![7u32, u32::MAX, 9]);
    let b = constant(&g, &[3], vec![2u32, 0, 10]);
    let q = eval(&g, g.div(a, b).unwrap());
    assert_eq!(q.values::<u32>().unwrap(), &[3, u32::MAX, 0]);
}

#[test]
fn integer_arithmetic_wraps() {
    let g = Graph::new();
    let a = constant(&g, &[3], vec![i32::MAX, i32::MIN, 1 << 20]);
    let b = constant(&g, &[3], vec![1i32, 1, 1 << 11]);
    let sum = eval(&g, g.add(a, b).unwrap());
    let diff = eval(&g, g.sub(a, b).unwrap());
    let prod = eval(&g, g.mul(a, b).unwrap());
    assert_eq!(
        sum.values::<i32>().unwrap(),
        &[i32::MIN, i32::MIN + 1, (1 << 20) + (1 << 11)]
    );
    assert_eq!(
        diff.values::<i32>().unwrap(),
        &[i32::MAX - 1, i32::MAX, (1 << 20) - (1 << 11)]
    );
    assert_eq!(
        prod.values::<i32>().unwrap(),
        &[i32::MAX, i32::MIN, i32::MIN]
    );

    let neg = eval(&g, g.neg(a).unwrap());
    let abs = eval(&g, g.abs(a).unwrap());
    assert_eq!(
        neg.values::<i32>().unwrap(),
        &[-i32::MAX, i32::MIN, -(1 << 20)]
    );
    assert_eq!(abs.values::<i32>().unwrap(), &[i32::MAX, i32::MIN, 1 << 20]);

    let g = Graph::new();
    let a = constant(&g, &[2], vec![0u32, 5]);
    let b = constant(&g, &[2], vec![1u32, 7]);
    let diff = eval(&g, g.sub(a, b).unwrap());
    assert_eq!(diff.values::<u32>().unwrap(), &[u32::MAX, u32::MAX - 1]);
    let abs = eval(&g, g.abs(b).unwrap());
    assert_eq!(abs.values::<u32>().unwrap(), &[1, 7]);
}

#[test]
fn relu_and_min_max_on_every_dtype() {
    let g = Graph::new();
    let x = constant(&g, &[3], vec![-2i32, 0, 3]);
    assert_eq!(
        eval(&g, g.relu(x).unwrap()).values::<i32>().unwrap(),
        &[0, 0, 3]
    );
    let y = constant(&g, &[3], vec![1i32, -1, 5]);
    let mx = eval(&g, g.maximum(x, y).unwrap());
    let mn = eval(&g, g.minimum(x, y).unwrap());
    assert_eq!(mx.values::<i32>().unwrap(), &[1, 0, 5]);
    assert_eq!(mn.values::<i32>().unwrap(), &[-2, -1, 3]);

    let g = Graph::new();
    let x = constant(&g, &[3], vec![-2.5f32, 0.5, f32::NAN]);
    let y = constant(&g, &[3], vec![1.0f32, f32::NAN, 4.0]);
    let relu = eval(&g, g.relu(x).unwrap());
    assert_eq!(relu.values::<f32>().unwrap()[..2], [0.0, 0.5]);
    assert!(relu.values::<f32>().unwrap()[2].is_nan(), "relu keeps NaN");
    // Float maximum/minimum propagate a NaN operand, like NumPy's maximum.
    let mx = eval(&g, g.maximum(x, y).unwrap());
    let mn = eval(&g, g.minimum(x, y).unwrap());
    let (mx, mn) = (mx.values::<f32>().unwrap(), mn.values::<f32>().unwrap());
    assert_eq!((mx[0], mn[0]), (1.0, -2.5));
    assert!(mx[1..].iter().chain(&mn[1..]).all(|v| v.is_nan()));
}

#[test]
fn float_unaries_run_in_their_own_precision() {
    let xs32 = vec![-3.0f32, -0.5, 0.25, 2.0];
    let g = Graph::new();
    let x = constant(&g, &[4], xs32.clone());
    let exp = eval(&g, g.exp(x).unwrap());
    let tanh = eval(&g, g.tanh(x).unwrap());
    let want_exp: Vec<f32> = xs32.iter().map(|v| v.exp()).collect();
    let want_tanh: Vec<f32> = xs32.iter().map(|v| v.tanh()).collect();
    assert_eq!(exp.values::<f32>().unwrap(), &want_exp[..]);
    assert_eq!(tanh.values::<f32>().unwrap(), &want_tanh[..]);

    let xs64 = vec![0.1f64, 2.0, 9.0];
    let g = Graph::new();
    let x = constant(&g, &[3], xs64.clone());
    let log = eval(&g, g.log(x).unwrap());
    let sqrt = eval(&g, g.sqrt(x).unwrap());
    assert_eq!(log.dtype(), DType::F64);
    let want_log: Vec<f64> = xs64.iter().map(|v| v.ln()).collect();
    let want_sqrt: Vec<f64> = xs64.iter().map(|v| v.sqrt()).collect();
    assert_eq!(log.values::<f64>().unwrap(), &want_log[..]);
    assert_eq!(sqrt.values::<f64>().unwrap(), &want_sqrt[..]);
}

#[test]
fn sigmoid_is_stable_at_both_ends() {
    let g = Graph::new();
    let x = constant(&g, &[5], vec![-1000.0f32, -100.0, 0.0, 100.0, 1000.0]);
    let y = eval(&g, g.sigmoid(x).unwrap());
    let v = y.values::<f32>().unwrap();
    assert_eq!(v[0], 0.0);
    assert_eq!(v[1], (-100.0f32).exp() / (1.0 + (-100.0f32).exp()));
    assert!(v[1] > 0.0, "small but not flushed to zero: {}", v[1]);
    assert_eq!(v[2], 0.5);
    assert_eq!(v[3], 1.0);
    assert_eq!(v[4], 1.0);
    assert!(v.iter().all(|s| !s.is_nan()));

    let g = Graph::new();
    let x = constant(&g, &[2], vec![-1.0f64, 1.0]);
    let y = eval(&g, g.sigmoid(x).unwrap());
    let e = (-1.0f64).exp();
    assert_eq!(
        y.values::<f64>().unwrap(),
        &[e / (1.0 + e), 1.0 / (1.0 + e)]
    );
}

#[test]
fn pow_follows_c_rules() {
    let g = Graph::new();
    let a = constant(&g, &[4], vec![-2.0f32, -2.0, 0.0, 4.0]);
    let b = constant(&g, &[4], vec![3.0f32, 0.5, 0.0, 0.5]);
    let y = eval(&g, g.pow(a, b).unwrap());
    let v = y.values::<f32>().unwrap();
    assert_eq!(v[0], -8.0);
    assert!(v[1].is_nan());
    assert_eq!(v[2], 1.0);
    assert_eq!(v[3], 2.0);
}

#[test]
fn comparisons_give_u32_masks() {
    let g = Graph::new();
    let a = constant(&g, &[4], vec![1.0f32, 2.0, 3.0, f32::NAN]);
    let b = constant(&g, &[], vec![2.0f32]);
    let mask = |t| eval(&g, t).values::<u32>().unwrap().to_vec();
    assert_eq!(mask(g.eq(a, b).unwrap()), [0, 1, 0, 0]);
    assert_eq!(mask(g.ne(a, b).unwrap()), [1, 0, 1, 1]);
    assert_eq!(mask(g.lt(a, b).unwrap()), [1, 0, 0, 0]);
    assert_eq!(mask(g.le(a, b).unwrap()), [1, 1, 0, 0]);
    assert_eq!(mask(g.gt(a, b).unwrap()), [0, 0, 1, 0]);
    assert_eq!(mask(g.ge(a, b).unwrap()), [0, 1, 1, 0]);

    let g = Graph::new();
    let a = constant(&g, &[2], vec![-1i32, 1]);
    let b = constant(&g, &[2], vec![0i32, 0]);
    assert_eq!(
        eval(&g, g.lt(a, b).unwrap()).values::<u32>().unwrap(),
        &[1, 0]
    );
}

#[test]
fn select_broadcasts_all_three() {
    let g = Graph::new();
    let cond = constant(&g, &[2, 1], vec![1u32, 0]);
    let a = constant(&g, &[3], vec![1i32, 2, 3]);
    let b = constant(&g, &[], vec![-1i32]);
    let y = eval(&g, g.select(cond, a, b).unwrap());
    assert_eq!(y.shape().dims(), &[2, 3]);
    assert_eq!(y.values::<i32>().unwrap(), &[1, 2, 3, -1, -1, -1]);

    // Any nonzero condition picks `a`.
    let g = Graph::new();
    let cond = constant(&g, &[3], vec![7u32, 0, u32::MAX]);
    let a = constant(&g, &[3], vec![1.0f64, 2.0, 3.0]);
    let b = constant(&g, &[3], vec![-1.0f64, -2.0, -3.0]);
    let y = eval(&g, g.select(cond, a, b).unwrap());
    assert_eq!(y.values::<f64>().unwrap(), &[1.0, -2.0, 3.0]);
}

#[test]
fn cast_saturates_truncates_and_reinterprets() {
    let g = Graph::new();
    let x = constant(
        &g,
        &[6],
        vec![1e10f32, -1e10, f32::NAN, 2.7, -2.7, f32::INFINITY],
    );
    let to_i = eval(&g, g.cast(x, DType::I32).unwrap());
    let to_u = eval(&g, g.cast(x, DType::U32).unwrap());
    assert_eq!(
        to_i.values::<i32>().unwrap(),
        &[2147483520, i32::MIN, 0, 2, -2, 2147483520]
    );
    assert_eq!(
        to_u.values::<u32>().unwrap(),
        &[4294967040, 0, 0, 2, 0, 4294967040]
    );

    let g = Graph::new();
    let x = constant(&g, &[3], vec![-1i32, i32::MIN, 5]);
    let bits = eval(&g, g.cast(x, DType::U32).unwrap());
    assert_eq!(bits.values::<u32>().unwrap(), &[u32::MAX, 1 << 31, 5]);

    let g = Graph::new();
    let x = constant(&g, &[2], vec![u32::MAX, 16_777_217]);
    let back = eval(&g, g.cast(x, DType::I32).unwrap());
    assert_eq!(back.values::<i32>().unwrap(), &[-1, 16_777_217]);
    // Integers to float round to nearest (2^24 + 1 is not an f32).
    let f = eval(&g, g.cast(x, DType::F32).unwrap());
    assert_eq!(f.values::<f32>().unwrap(), &[4_294_967_296.0, 16_777_216.0]);
    let d = eval(&g, g.cast(x, DType::F64).unwrap());
    assert_eq!(d.values::<f64>().unwrap(), &[4_294_967_295.0, 16_777_217.0]);

    let g = Graph::new();
    let x = constant(&g, &[2], vec![0.1f64, 1e300]);
    let f = eval(&g, g.cast(x, DType::F32).unwrap());
    assert_eq!(f.values::<f32>().unwrap(), &[0.1f32, f32::INFINITY]);
}
