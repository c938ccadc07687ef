//! Differential fuzzing: random small graphs over random shapes (0-size axes, broadcasts,
//! sizes past workgroup bounds) and random values (NaN, ±inf, ±0, subnormals, huge and tiny
//! magnitudes), run on the wgpu adapter and held to the CPU reference under the rules the
//! README states ("What gradflux guarantees").
//!
//! A graph is a prologue of exact ops (sign changes, relu, NaN-propagating max/min, select,
//! transposes and slices, so kernels read strided and broadcast operands) and one final op
//! of any kind, so each output has one documented tolerance. The rules:
//! - NaN matches only NaN, an infinity only the same infinity (`-0.0 == 0.0`);
//! - a GPU may flush subnormal inputs and results to zero: a result may instead match the
//!   reference computed from inputs with subnormals flushed, and a subnormal expectation
//!   is met by zero;
//! - sums, means and products accumulate in f32 on the GPU and in f64 on the CPU: they
//!   agree within `1e-5 · Σ|terms|` over the finite terms, and where that passes
//!   `f32::MAX` the GPU's partial sums may overflow (and meet an infinite term as NaN), so
//!   any value is accepted there.
//!
//! `GRADFLUX_FUZZ_CASES` sets the number of cases (default 200, a few seconds on lavapipe),
//! `GRADFLUX_FUZZ_SEED` the seed (default fixed, so CI is repeatable). A failure prints the
//! shrunk case.

mod common;

use gradflux::{BinaryOp, CompareOp, DType, Device, Graph, ReduceOp, Tensor, TensorData, UnaryOp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use common::gpu;

/// Values every case draws from: specials and magnitudes a test suite rarely uses.
const SPECIALS: [f32; 12] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1e-40,
    -3e-42,
    3e38,
    -2e38,
    1e-30,
    -1e-25,
    1.0,
];

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -10.0f32..10.0,
        1 => (-3i32..=3).prop_map(|v| v as f32),
        3 => proptest::sample::select(SPECIALS.to_vec()),
    ]
}

/// Dimensions that cross workgroup sizes (64, 256) and include 0 and 1.
fn dim() -> impl Strategy<Value = usize> {
    proptest::sample::select(vec![0usize, 1, 1, 2, 3, 5, 7, 17, 64, 65, 255, 257, 1025])
}

/// Exact ops applied to the first input before the final op.
#[derive(Clone, Debug)]
enum Pre {
    Neg,
    Abs,
    Relu,
    Maximum,
    Minimum,
    SelectGreater,
    Transpose(usize, usize),
    /// A sub-range of an axis; the fractions pick its start and length.
    Slice(usize, f64, f64),
}

#[derive(Clone, Debug)]
enum Last {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CompareOp),
    Reduce(ReduceOp, usize),
    Softmax(usize, bool),
    Cast(DType),
    MatMul(usize),
    SumAll,
    /// Along an axis, with indices (some out of range) drawn from the pool.
    Gather(usize),
    ScatterAdd(usize),
    TopK(usize, usize),
    /// A rotation of the axes.
    Permute(usize),
}

#[derive(Clone)]
struct Case {
    shape: Vec<usize>,
    /// Which of the second operand's dimensions are stretched from 1, and how many of
    /// its leading dimensions it drops (numpy broadcasting).
    broadcast_ones: Vec<bool>,
    drop_leading: usize,
    pre: Vec<Pre>,
    last: Last,
    /// Values, cycled over every input.
    pool: Vec<f32>,
}

/// On one line, so a shrunk failure reads at a glance.
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Case {{ shape: {:?}, broadcast_ones: {:?}, drop_leading: {}, pre: {:?}, last: \
             {:?}, pool: {:?} }}",
            self.shape, self.broadcast_ones, self.drop_leading, self.pre, self.last, self.pool
        )
    }
}

fn pre() -> impl Strategy<Value = Pre> {
    prop_oneof![
        Just(Pre::Neg),
        Just(Pre::Abs),
        Just(Pre::Relu),
        Just(Pre::Maximum),
        Just(Pre::Minimum),
        Just(Pre::SelectGreater),
        (0usize..4, 0usize..4).prop_map(|(a, b)| Pre::Transpose(a, b)),
        (0usize..4, 0.0f64..1.0, 0.0f64..1.0).prop_map(|(a, s, l)| Pre::Slice(a, s, l)),
    ]
}

fn last() -> impl Strategy<Value = Last> {
    prop_oneof![
        proptest::sample::select(UnaryOp::ALL.to_vec()).prop_map(Last::Unary),
        proptest::sample::select(BinaryOp::ALL.to_vec()).prop_map(Last::Binary),
        proptest::sample::select(CompareOp::ALL.to_vec()).prop_map(Last::Compare),
        (proptest::sample::select(ReduceOp::ALL.to_vec()), 0usize..4)
            .prop_map(|(op, axis)| Last::Reduce(op, axis)),
        (0usize..4, any::<bool>()).prop_map(|(axis, log)| Last::Softmax(axis, log)),
        proptest::sample::select(vec![DType::I32, DType::U32]).prop_map(Last::Cast),
        proptest::sample::select(vec![0usize, 1, 3, 5, 64]).prop_map(Last::MatMul),
        Just(Last::SumAll),
        (0usize..4).prop_map(Last::Gather),
        (0usize..4).prop_map(Last::ScatterAdd),
        (0usize..4, 1usize..9).prop_map(|(axis, k)| Last::TopK(axis, k)),
        (1usize..4).prop_map(Last::Permute),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(dim(), 0..4),
        proptest::collection::vec(any::<bool>(), 4),
        0usize..3,
        proptest::collection::vec(pre(), 0..3),
        last(),
        proptest::collection::vec(value(), 61),
    )
        .prop_filter("at most 20 000 elements", |c| {
            c.0.iter().product::<usize>() <= 20_000
        })
        .prop_map(
            |(shape, broadcast_ones, drop_leading, pre, last, pool)| Case {
                shape,
                broadcast_ones,
                drop_leading,
                pre,
                last,
                pool,
            },
        )
}

/// `n` values cycled from the pool with a stride, so every special lands in many places.
fn data(pool: &[f32], offset: usize, dims: &[usize]) -> TensorData {
    let n: usize = dims.iter().product();
    let v = (0..n)
        .map(|i| pool[(offset + i * 7) % pool.len()])
        .collect();
    TensorData::new(dims.to_vec(), v).expect("length matches")
}

/// `count` u32 indices below `bound` (which may pass the indexed axis: out of range).
fn indices(pool: &[f32], count: usize, bound: usize) -> TensorData {
    let v = (0..count)
        .map(|i| (pool[(i * 11) % pool.len()].to_bits() >> 7) % bound.max(1) as u32)
        .collect();
    TensorData::new([count], v).expect("length matches")
}

/// The second operand's shape: broadcastable to `shape`.
fn broadcast_shape(c: &Case, shape: &[usize]) -> Vec<usize> {
    let dropped = c.drop_leading.min(shape.len());
    shape[dropped..]
        .iter()
        .enumerate()
        .map(|(i, &d)| if c.broadcast_ones[i % 4] { 1 } else { d })
        .collect()
}

/// How the final output is compared (see the module docs).
#[derive(Copy, Clone, Debug)]
enum Rule {
    Exact,
    Within {
        rel: f64,
        abs: f64,
    },
    /// Within `1e-5 · scale / terms_per_result`, scale being the CPU's second output
    /// (Σ|terms| over the finite terms; a mean divides by its count).
    Accumulated {
        per_result: f64,
    },
}

struct Built {
    graph: Graph,
    outputs: Vec<Tensor>,
    inputs: Vec<(String, TensorData)>,
    rule: Rule,
}

/// Builds the case's graph, or `None` where the builder refuses it (the builder, not a
/// backend, decides what is valid).
fn build(c: &Case) -> Option<Built> {
    let g = Graph::new();
    let mut inputs = vec![("x".to_string(), data(&c.pool, 0, &c.shape))];
    let x = g.input("x", c.shape.clone(), DType::F32).ok()?;
    let y_shape = broadcast_shape(c, &c.shape);
    inputs.push(("y".into(), data(&c.pool, 13, &y_shape)));
    let y = g.input("y", y_shape, DType::F32).ok()?;
    let mut t = x;
    for p in &c.pre {
        let rank = g.shape(t).ok()?.rank();
        t = match *p {
            Pre::Neg => g.neg(t),
            Pre::Abs => g.abs(t),
            Pre::Relu => g.relu(t),
            Pre::Maximum => g.maximum(t, y),
            Pre::Minimum => g.minimum(t, y),
            Pre::SelectGreater => g.select(g.gt(t, y).ok()?, t, y),
            Pre::Transpose(a, b) if rank >= 2 => {
                g.transpose(t, (a % rank) as isize, (b % rank) as isize)
            }
            Pre::Slice(axis, start, len) if rank >= 1 => {
                let axis = axis % rank;
                let size = g.shape(t).ok()?.dims()[axis];
                let s = (start * size as f64) as usize;
                let e = s + (len * (size - s) as f64) as usize;
                g.slice(t, axis as isize, s, e)
            }
            _ => Ok(t),
        }
        .ok()?;
    }
    let shape = g.shape(t).ok()?;
    let rank = shape.rank();
    let axis = |a: usize| (a % rank.max(1)) as isize;
    // |t| with its infinities and NaNs zeroed: the magnitudes of the finite terms, whose
    // total says whether f32 partial sums can overflow.
    let finite_abs = |v: Tensor| -> Option<Tensor> {
        let a = g.abs(v).ok()?;
        let inf = g.scalar(f64::INFINITY, DType::F32).ok()?;
        let zero = g.scalar(0.0, DType::F32).ok()?;
        g.select(g.lt(a, inf).ok()?, a, zero).ok()
    };
    let abs_t = || finite_abs(t).ok_or(());
    let (out, scale, rule) = match c.last {
        Last::Unary(op) => {
            let rule = match op {
                UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu => Rule::Exact,
                _ => Rule::Within {
                    rel: 1e-5,
                    abs: 1e-6,
                },
            };
            (g.unary(op, t).ok()?, None, rule)
        }
        Last::Binary(op) => {
            let rule = match op {
                BinaryOp::Maximum | BinaryOp::Minimum | BinaryOp::Add | BinaryOp::Sub => {
                    Rule::Exact
                }
                BinaryOp::Mul => Rule::Exact,
                BinaryOp::Div => Rule::Within {
                    rel: 3e-7,
                    abs: 0.0,
                },
                BinaryOp::Pow => Rule::Within {
                    rel: 1e-4,
                    abs: 1e-6,
                },
            };
            (g.binary(op, t, y).ok()?, None, rule)
        }
        Last::Compare(op) => (g.compare(op, t, y).ok()?, None, Rule::Exact),
        Last::Cast(d) => (g.cast(t, d).ok()?, None, Rule::Exact),
        Last::Reduce(op, a) => {
            let out = g.reduce(op, t, axis(a), false).ok()?;
            let len = shape.dims().get(axis(a) as usize).copied().unwrap_or(1);
            let sum_abs = || g.sum(abs_t().ok()?, axis(a)).ok();
            match op {
                ReduceOp::Sum => (out, Some(sum_abs()?), Rule::Accumulated { per_result: 1.0 }),
                ReduceOp::Mean => (
                    out,
                    Some(sum_abs()?),
                    Rule::Accumulated {
                        per_result: len.max(1) as f64,
                    },
                ),
                ReduceOp::LogSumExp => (
                    out,
                    None,
                    Rule::Within {
                        rel: 1e-5,
                        abs: 1e-5,
                    },
                ),
                _ => (out, None, Rule::Exact),
            }
        }
        Last::Softmax(a, log) => {
            let out = if log {
                g.log_softmax(t, axis(a))
            } else {
                g.softmax(t, axis(a))
            };
            (
                out.ok()?,
                None,
                Rule::Within {
                    rel: 1e-5,
                    abs: 1e-5,
                },
            )
        }
        Last::MatMul(n) => {
            let k = *shape.dims().last()?;
            inputs.push(("w".into(), data(&c.pool, 29, &[k, n])));
            let w = g.input("w", [k, n], DType::F32).ok()?;
            let out = g.matmul(t, w).ok()?;
            let scale = g.matmul(abs_t().ok()?, finite_abs(w)?).ok()?;
            (out, Some(scale), Rule::Accumulated { per_result: 1.0 })
        }
        Last::SumAll => (
            g.sum_all(t).ok()?,
            Some(g.sum_all(abs_t().ok()?).ok()?),
            Rule::Accumulated { per_result: 1.0 },
        ),
        Last::Gather(a) => {
            let len = *shape.dims().get(axis(a) as usize)?;
            let count = 7;
            inputs.push(("idx".into(), indices(&c.pool, count, len + 2)));
            let idx = g.input("idx", [count], DType::U32).ok()?;
            (g.gather(t, axis(a), idx).ok()?, None, Rule::Exact)
        }
        Last::ScatterAdd(a) => {
            // t's axis holds the sources; they land in 5 rows (some indices out of range).
            let len = *shape.dims().get(axis(a) as usize)?;
            inputs.push(("idx".into(), indices(&c.pool, len, 7)));
            let idx = g.input("idx", [len], DType::U32).ok()?;
            let out = g.scatter_add(t, axis(a), idx, 5).ok()?;
            // Sums of up to `len` terms in index order on both backends: exact but for
            // the CPU's f64 accumulation.
            let scale = g.scatter_add(abs_t().ok()?, axis(a), idx, 5).ok()?;
            (out, Some(scale), Rule::Accumulated { per_result: 1.0 })
        }
        Last::TopK(a, k) => {
            let (values, idx) = g.top_k(t, k, axis(a)).ok()?;
            let out = g.add(g.cast(idx, DType::F32).ok()?, values).ok()?;
            (out, None, Rule::Exact)
        }
        Last::Permute(r) => {
            let perm: Vec<usize> = (0..rank).map(|i| (i + r) % rank.max(1)).collect();
            (g.permute(t, &perm).ok()?, None, Rule::Exact)
        }
    };
    let mut outputs = vec![out];
    outputs.extend(scale);
    Some(Built {
        graph: g,
        outputs,
        inputs,
        rule,
    })
}

fn flush_subnormals(d: &TensorData) -> TensorData {
    if d.dtype() != DType::F32 {
        return d.clone();
    }
    let v: Vec<f32> = d
        .values::<f32>()
        .expect("f32 inputs")
        .iter()
        .map(|&x| {
            if x != 0.0 && x.abs() < f32::MIN_POSITIVE {
                0.0 * x.signum()
            } else {
                x
            }
        })
        .collect();
    TensorData::new(d.shape().clone(), v).expect("same length")
}

fn run(
    device: &Device,
    b: &Built,
    inputs: &[(String, TensorData)],
) -> Result<Vec<TensorData>, gradflux::Error> {
    let named: Vec<(&str, &TensorData)> = inputs.iter().map(|(n, d)| (n.as_str(), d)).collect();
    device.compile(&b.graph, &b.outputs)?.run(&named)
}

fn allowed(rule: Rule, e: f64, a: f64, scale: f64) -> bool {
    if e == a || (e.is_nan() && a.is_nan()) {
        return true;
    }
    let tiny = f32::MIN_POSITIVE as f64;
    if e.abs() < tiny && a.abs() < tiny {
        return true; // subnormal results may flush to zero
    }
    if let Rule::Accumulated { .. } = rule {
        if scale > f32::MAX as f64 {
            return true; // partial sums past f32::MAX may overflow on the GPU
        }
    }
    if !e.is_finite() || !a.is_finite() {
        return false;
    }
    let bound = match rule {
        Rule::Exact => 0.0,
        Rule::Within { rel, abs } => abs + rel * e.abs(),
        Rule::Accumulated { per_result } => 1e-5 * scale / per_result + 1e-30,
    };
    (e - a).abs() <= bound
}

fn check_case(c: &Case, gpu: &Device) -> Result<(), TestCaseError> {
    let Some(b) = build(c) else {
        return Ok(());
    };
    let flushed: Vec<(String, TensorData)> = b
        .inputs
        .iter()
        .map(|(n, d)| (n.clone(), flush_subnormals(d)))
        .collect();
    let cpu = run(&Device::Cpu, &b, &b.inputs);
    let cpu_flushed = run(&Device::Cpu, &b, &flushed);
    let got = run(gpu, &b, &b.inputs);
    let (cpu, cpu_flushed, got) = match (cpu, cpu_flushed, got) {
        (Ok(c), Ok(f), Ok(g)) => (c, f, g),
        (Err(_), _, Err(_)) => return Ok(()), // both refuse
        (cpu, _, got) => {
            return Err(TestCaseError::fail(format!(
                "the backends disagree on whether the case runs: CPU {:?}, wgpu {:?}",
                cpu.err(),
                got.err()
            )))
        }
    };
    prop_assert_eq!(cpu[0].shape(), got[0].shape());
    prop_assert_eq!(cpu[0].dtype(), got[0].dtype());
    let (e, e2, a) = (
        cpu[0].to_f64_vec(),
        cpu_flushed[0].to_f64_vec(),
        got[0].to_f64_vec(),
    );
    let scale = |outs: &[TensorData], i: usize| outs.get(1).map_or(0.0, |s| s.to_f64_vec()[i]);
    for i in 0..e.len() {
        let ok = allowed(b.rule, e[i], a[i], scale(&cpu, i))
            || allowed(b.rule, e2[i], a[i], scale(&cpu_flushed, i));
        prop_assert!(
            ok,
            "element {} of {}: CPU {} (subnormals flushed: {}), wgpu {} under {:?}",
            i,
            cpu[0].shape(),
            e[i],
            e2[i],
            a[i],
            b.rule
        );
    }
    Ok(())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn wgpu_agrees_with_the_cpu_reference_on_random_graphs() {
    let Some(gpu) = gpu() else { return };
    fuzz(&gpu, 200, 0);
}

/// The same on a device told a small loop limit, so matmuls split k and scatters tile
/// their indices at the fuzzer's sizes.
#[test]
fn wgpu_with_a_small_loop_limit_agrees_with_the_cpu_reference() {
    if gpu().is_none() {
        return;
    }
    let limited = gradflux::WgpuDevice::best().expect("the adapter gpu() found");
    limited.set_loop_limit(Some(4_096)).unwrap();
    fuzz(&Device::Wgpu(limited), 100, 1);
}

fn fuzz(gpu: &Device, default_cases: u64, seed_offset: u64) {
    let cases = env_u64("GRADFLUX_FUZZ_CASES", default_cases) as u32;
    let seed = env_u64("GRADFLUX_FUZZ_SEED", 0x6772_6164_666c_7578) + seed_offset;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&case(), |c| check_case(&c, gpu)) {
        panic!("fuzzing (seed {seed:#x}, {cases} cases): {e}");
    }
}
