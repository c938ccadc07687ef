//! The documented special-value rules (README, "What gradflux guarantees"): each test
//! states the rule as explicit expected values on the CPU reference, and `check` holds the
//! adapter to the reference (NaN only matches NaN, an infinity only the same infinity).

use gradflux::{BinaryOp, CompareOp, DType, Graph, ReduceOp, TensorData, Tolerance, UnaryOp};

use crate::common::check;

const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;
const TRANSCENDENTAL: Tolerance = Tolerance::new(1e-6, 1e-7);

/// Same values, NaN matching NaN, -0.0 matching 0.0 (`==`).
fn assert_values(label: &str, got: &TensorData, want: &[f32]) {
    let got = got.values::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{label}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs();
        assert!(
            same,
            "{label}: element {i} is {g}, the rule says {w}\n{got:?}"
        );
    }
}

fn f32s(v: &[f32]) -> TensorData {
    TensorData::new([v.len()], v.to_vec()).unwrap()
}

#[test]
fn unary_ops_keep_nan_and_saturate_at_infinities() {
    let xs = [NAN, INF, -INF, 0.0, -0.0, 2.5, -3.0];
    let rules: [(UnaryOp, [f32; 7]); 8] = [
        (UnaryOp::Neg, [NAN, -INF, INF, -0.0, 0.0, -2.5, 3.0]),
        (UnaryOp::Abs, [NAN, INF, INF, 0.0, 0.0, 2.5, 3.0]),
        (UnaryOp::Relu, [NAN, INF, 0.0, 0.0, 0.0, 2.5, 0.0]),
        (
            UnaryOp::Exp,
            [NAN, INF, 0.0, 1.0, 1.0, 2.5f32.exp(), (-3.0f32).exp()],
        ),
        (UnaryOp::Log, [NAN, INF, NAN, -INF, -INF, 2.5f32.ln(), NAN]),
        (
            UnaryOp::Sqrt,
            [NAN, INF, NAN, 0.0, -0.0, 2.5f32.sqrt(), NAN],
        ),
        (
            UnaryOp::Sigmoid,
            [
                NAN,
                1.0,
                0.0,
                0.5,
                0.5,
                1.0 / (1.0 + (-2.5f32).exp()),
                1.0 / (1.0 + 3.0f32.exp()),
            ],
        ),
        (
            UnaryOp::Tanh,
            [NAN, 1.0, -1.0, 0.0, -0.0, 2.5f32.tanh(), (-3.0f32).tanh()],
        ),
    ];
    for (op, want) in rules {
        let g = Graph::new();
        let x = g.input("x", [xs.len()], DType::F32).unwrap();
        let y = g.unary(op, x).unwrap();
        let cpu = check(
            &format!("{} of special values", op.name()),
            &g,
            &[y],
            &[("x", &f32s(&xs))],
            TRANSCENDENTAL,
        );
        assert_values(op.name(), &cpu[0], &want);
    }
}

#[test]
fn maximum_and_minimum_propagate_nan() {
    let a = [NAN, 1.0, NAN, INF, -INF, 2.0];
    let b = [1.0, NAN, NAN, 5.0, 5.0, -INF];
    let g = Graph::new();
    let x = g.input("a", [6], DType::F32).unwrap();
    let y = g.input("b", [6], DType::F32).unwrap();
    let outs = [
        g.binary(BinaryOp::Maximum, x, y).unwrap(),
        g.binary(BinaryOp::Minimum, x, y).unwrap(),
    ];
    let cpu = check(
        "maximum/minimum with NaN",
        &g,
        &outs,
        &[("a", &f32s(&a)), ("b", &f32s(&b))],
        Tolerance::EXACT,
    );
    assert_values("maximum", &cpu[0], &[NAN, NAN, NAN, INF, 5.0, 2.0]);
    assert_values("minimum", &cpu[1], &[NAN, NAN, NAN, 5.0, -INF, -INF]);
}

#[test]
fn pow_follows_c_at_zeros_infinities_and_nan() {
    // (x, y, C's pow(x, y)): Rust's powf is C's, and so is the WGSL.
    let table: [(f32, f32, f32); 22] = [
        (NAN, 0.0, 1.0),
        (1.0, NAN, 1.0),
        (NAN, 2.0, NAN),
        (2.0, NAN, NAN),
        (0.0, NAN, NAN),
        (0.0, -1.0, INF),
        (-0.0, -1.0, -INF),
        (-0.0, -2.0, INF),
        (-0.0, 3.0, -0.0),
        (0.0, 0.5, 0.0),
        (-1.0, INF, 1.0),
        (0.5, -INF, INF),
        (2.0, -INF, 0.0),
        (0.5, INF, 0.0),
        (-2.0, INF, INF),
        (INF, -1.0, 0.0),
        (INF, 0.5, INF),
        (-INF, 3.0, -INF),
        (-INF, -3.0, -0.0),
        (-INF, 2.0, INF),
        (-2.0, 3.0, -8.0),
        (-2.0, 0.5, NAN),
    ];
    let xs: Vec<f32> = table.iter().map(|r| r.0).collect();
    let ys: Vec<f32> = table.iter().map(|r| r.1).collect();
    let want: Vec<f32> = table.iter().map(|r| r.2).collect();
    let g = Graph::new();
    let x = g.input("x", [xs.len()], DType::F32).unwrap();
    let y = g.input("y", [ys.len()], DType::F32).unwrap();
    let p = g.binary(BinaryOp::Pow, x, y).unwrap();
    let cpu = check(
        "pow at special values",
        &g,
        &[p],
        &[("x", &f32s(&xs)), ("y", &f32s(&ys))],
        TRANSCENDENTAL,
    );
    assert_values("pow", &cpu[0], &want);
    // NaN's sign means nothing; every other sign is C's.
    let sign = |v: &f32| (!v.is_nan()).then(|| v.is_sign_negative());
    let signs: Vec<_> = cpu[0].values::<f32>().unwrap().iter().map(sign).collect();
    let want_signs: Vec<_> = want.iter().map(sign).collect();
    assert_eq!(signs, want_signs, "signed zeros and infinities");
}

#[test]
fn log_sqrt_and_pow_of_subnormals_are_exact_or_flushed() {
    // A subnormal operand gives either the exact result or the result for zero (a device
    // that flushes subnormals), never a third value.
    let tiny = [1e-40f32, 3e-42, 1e-45];
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let half = g.scalar(0.5, DType::F32).unwrap();
    let outs = [
        g.log(x).unwrap(),
        g.sqrt(x).unwrap(),
        g.binary(BinaryOp::Pow, x, half).unwrap(),
    ];
    let data = f32s(&tiny);
    let run = |d: &gradflux::Device| d.compile(&g, &outs).unwrap().run(&[("x", &data)]).unwrap();
    let cpu = run(&gradflux::Device::Cpu);
    assert_values("log", &cpu[0], &tiny.map(f32::ln));
    assert_values("sqrt", &cpu[1], &tiny.map(f32::sqrt));
    assert_values("pow", &cpu[2], &tiny.map(f32::sqrt));
    let Some(gpu) = crate::common::gpu() else {
        return;
    };
    let flushed = [-INF, 0.0, 0.0];
    for (k, (got, want)) in run(&gpu).iter().zip(&cpu).enumerate() {
        for (i, (&a, &e)) in got
            .values::<f32>()
            .unwrap()
            .iter()
            .zip(want.values::<f32>().unwrap())
            .enumerate()
        {
            let exact = (a - e).abs() <= 1e-5 * e.abs();
            assert!(
                exact || a == flushed[k],
                "output {k} at {}: {a}, want {e} or {}",
                tiny[i],
                flushed[k]
            );
        }
    }
}

#[test]
fn comparisons_with_nan_are_false_but_ne() {
    let a = [NAN, NAN, 1.0, INF, -0.0];
    let b = [NAN, 1.0, NAN, INF, 0.0];
    let rules: [(CompareOp, [u32; 5]); 6] = [
        (CompareOp::Eq, [0, 0, 0, 1, 1]),
        (CompareOp::Ne, [1, 1, 1, 0, 0]),
        (CompareOp::Lt, [0, 0, 0, 0, 0]),
        (CompareOp::Le, [0, 0, 0, 1, 1]),
        (CompareOp::Gt, [0, 0, 0, 0, 0]),
        (CompareOp::Ge, [0, 0, 0, 1, 1]),
    ];
    for (op, want) in rules {
        let g = Graph::new();
        let x = g.input("a", [5], DType::F32).unwrap();
        let y = g.input("b", [5], DType::F32).unwrap();
        let m = g.compare(op, x, y).unwrap();
        let cpu = check(
            &format!("{} with NaN", op.name()),
            &g,
            &[m],
            &[("a", &f32s(&a)), ("b", &f32s(&b))],
            Tolerance::EXACT,
        );
        assert_eq!(cpu[0].values::<u32>().unwrap(), &want, "{}", op.name());
    }
}

#[test]
fn casts_of_nan_are_zero_and_infinities_saturate() {
    let xs = [NAN, INF, -INF, -1.5, 3e9];
    let g = Graph::new();
    let x = g.input("x", [5], DType::F32).unwrap();
    let outs = [
        g.cast(x, DType::I32).unwrap(),
        g.cast(x, DType::U32).unwrap(),
    ];
    let cpu = check("casts", &g, &outs, &[("x", &f32s(&xs))], Tolerance::EXACT);
    assert_eq!(
        cpu[0].values::<i32>().unwrap(),
        &[0, 2147483520, -2147483648, -1, 2147483520]
    );
    assert_eq!(
        cpu[1].values::<u32>().unwrap(),
        &[0, 4294967040, 0, 0, 3000000000]
    );
}

/// Rows of 5 across one axis, each with its own special value, long enough (300) in a
/// second pass that the wgpu reduction crosses its workgroup tree.
fn special_rows(len: usize) -> (Vec<f32>, usize) {
    let rows: [&[(usize, f32)]; 6] = [
        &[(1, NAN)],
        &[(2, INF)],
        &[(0, INF), (3, INF)],
        &[(4, -INF)],
        &[(1, NAN), (2, INF)],
        &[],
    ];
    let mut v = Vec::new();
    for (r, specials) in rows.iter().enumerate() {
        let start = v.len();
        v.extend((0..len).map(|i| ((i * 7 + r) % 11) as f32 - 5.0));
        for &(i, s) in *specials {
            v[start + i * len / 5] = s;
        }
    }
    v.extend(std::iter::repeat_n(-INF, len));
    (v, 7)
}

#[test]
fn reductions_propagate_nan_and_keep_infinities() {
    for len in [5, 300] {
        let (v, rows) = special_rows(len);
        let x_data = TensorData::new([rows, len], v.clone()).unwrap();
        let g = Graph::new();
        let x = g.input("x", [rows, len], DType::F32).unwrap();
        let ops = [
            ReduceOp::Max,
            ReduceOp::Min,
            ReduceOp::Sum,
            ReduceOp::LogSumExp,
            ReduceOp::ArgMax,
        ];
        let outs: Vec<_> = ops
            .iter()
            .map(|&op| g.reduce(op, x, 1, false).unwrap())
            .collect();
        let cpu = check(
            &format!("reductions over special rows of {len}"),
            &g,
            &outs,
            &[("x", &x_data)],
            TRANSCENDENTAL,
        );
        let at = |i: usize| i * len / 5;
        let lane = |r: usize| v[r * len..(r + 1) * len].iter().copied();
        let hi = |r: usize| lane(r).fold(-INF, f32::max);
        let lo = |r: usize| lane(r).fold(INF, f32::min);
        let (hi3, lo1, lo2, hi5, lo5) = (hi(3), lo(1), lo(2), hi(5), lo(5));
        assert_values("max", &cpu[0], &[NAN, INF, INF, hi3, NAN, hi5, -INF]);
        assert_values("min", &cpu[1], &[NAN, lo1, lo2, -INF, NAN, lo5, -INF]);
        let sums = cpu[2].values::<f32>().unwrap();
        assert!(sums[0].is_nan() && sums[1] == INF && sums[3] == -INF && sums[4].is_nan());
        let lse = cpu[3].values::<f32>().unwrap();
        assert!(lse[0].is_nan(), "logsumexp with NaN: {lse:?}");
        assert_eq!(&lse[1..3], &[INF, INF], "logsumexp with +inf");
        assert!(lse[3].is_finite() && lse[5].is_finite());
        assert!(lse[4].is_nan());
        assert_eq!(lse[6], -INF, "logsumexp of an all -inf row");
        let argmax = cpu[4].values::<u32>().unwrap();
        assert_eq!(argmax[0], at(1) as u32, "argmax picks the NaN");
        assert_eq!(argmax[1], at(2) as u32, "argmax picks +inf");
        assert_eq!(argmax[2], 0, "first of tied +inf");
        assert_eq!(argmax[4], at(1) as u32, "NaN beats +inf");
        assert_eq!(argmax[6], 0, "all -inf: the first");
    }
}

#[test]
fn softmax_shares_mass_among_infinite_maxima() {
    for len in [5, 300] {
        let (v, rows) = special_rows(len);
        let x_data = TensorData::new([rows, len], v).unwrap();
        let g = Graph::new();
        let x = g.input("x", [rows, len], DType::F32).unwrap();
        let outs = [g.softmax(x, 1).unwrap(), g.log_softmax(x, 1).unwrap()];
        let cpu = check(
            &format!("softmax over special rows of {len}"),
            &g,
            &outs,
            &[("x", &x_data)],
            TRANSCENDENTAL,
        );
        let (p, lp) = (
            cpu[0].values::<f32>().unwrap(),
            cpu[1].values::<f32>().unwrap(),
        );
        let row = |v: &[f32], r: usize| v[r * len..(r + 1) * len].to_vec();
        let at = |i: usize| i * len / 5;
        assert!(
            row(p, 0).iter().all(|v| v.is_nan()),
            "a NaN makes the row NaN"
        );
        let one_inf = row(p, 1);
        assert_eq!(one_inf[at(2)], 1.0);
        assert_eq!(one_inf.iter().sum::<f32>(), 1.0);
        let two_inf = row(p, 2);
        assert_eq!((two_inf[0], two_inf[at(3)]), (0.5, 0.5));
        assert_eq!(row(lp, 2)[0], -(2.0f32).ln());
        assert_eq!(row(lp, 2)[1], -INF);
        assert!(row(p, 3).iter().all(|v| v.is_finite()));
        assert!(
            row(p, 6).iter().all(|&v| v == 1.0 / len as f32),
            "all -inf: uniform"
        );
    }
}
