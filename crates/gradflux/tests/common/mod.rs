//! Shared by the test binaries: the devices a test body runs on, seeded data, and the
//! CPU-vs-GPU comparison with a tolerance and a failure message that says where.
#![allow(dead_code)]

use std::sync::OnceLock;

use gradflux::{compare, DType, Device, Graph, Shape, Tensor, TensorData, Tolerance, WgpuDevice};

/// True when the suite runs in CI, where a missing adapter is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared wgpu device for this test binary. Under `CI=true` no adapter panics (the
/// suite must really run on one); elsewhere it warns loudly and GPU checks are skipped.
pub fn gpu() -> Option<Device> {
    static GPU: OnceLock<Option<WgpuDevice>> = OnceLock::new();
    GPU.get_or_init(|| match WgpuDevice::best() {
        Ok(d) => {
            eprintln!("gradflux tests: wgpu adapter {}", d.summary().describe());
            Some(d)
        }
        Err(e) => {
            assert!(!in_ci(), "CI=true but no wgpu adapter was found: {e}");
            eprintln!("WARNING: no wgpu adapter ({e}); GPU parity checks are NOT running");
            None
        }
    })
    .clone()
    .map(Device::Wgpu)
}

/// The shared wgpu device if it has `features`: what a test needs from the adapter,
/// declared instead of checked ad hoc. `None` (the test does not apply) when there is no
/// adapter or it lacks them; under `CI=true` on lavapipe, which has every feature the
/// suite asks for, a missing one fails the test.
pub fn gpu_having(features: gradflux::wgpu::Features) -> Option<Device> {
    let device = gpu()?;
    let Device::Wgpu(w) = &device else {
        unreachable!("gpu() is a wgpu device")
    };
    let missing = features - w.summary().features;
    if missing.is_empty() {
        return Some(device);
    }
    assert!(
        !(in_ci() && device.name().contains("llvmpipe")),
        "CI=true: lavapipe should have {missing:?}"
    );
    eprintln!(
        "{} lacks {missing:?}: tests needing it do not apply",
        device.name()
    );
    None
}

/// A small deterministic generator (xorshift64*), so every run sees the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[lo, hi]`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// Random data: floats uniform in `[lo, hi)`, integers uniform in `[lo, hi]` (u32 clamps
/// `lo` at 0).
pub fn random(
    rng: &mut Rng,
    shape: impl Into<Shape>,
    dtype: DType,
    lo: f64,
    hi: f64,
) -> TensorData {
    let shape = shape.into();
    let n = shape.numel();
    match dtype {
        DType::F16 => TensorData::new(
            shape,
            (0..n)
                .map(|_| gradflux::half::f16::from_f64(rng.uniform(lo, hi)))
                .collect(),
        ),
        DType::F32 => TensorData::new(shape, (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()),
        DType::F64 => TensorData::new(shape, (0..n).map(|_| rng.uniform(lo, hi)).collect()),
        DType::I32 => TensorData::new(
            shape,
            (0..n)
                .map(|_| rng.int(lo as i64, hi as i64) as i32)
                .collect(),
        ),
        DType::U32 => TensorData::new(
            shape,
            (0..n)
                .map(|_| rng.int(lo.max(0.0) as i64, hi as i64) as u32)
                .collect(),
        ),
    }
    .expect("length matches shape")
}

/// Integer-valued floats in `[lo, hi]`: ties for max/min/argmax and equalities for compares.
pub fn random_small_ints_f32(
    rng: &mut Rng,
    shape: impl Into<Shape>,
    lo: i64,
    hi: i64,
) -> TensorData {
    let shape = shape.into();
    let n = shape.numel();
    TensorData::new(shape, (0..n).map(|_| rng.int(lo, hi) as f32).collect()).expect("length")
}

/// Shapes that cross workgroup boundaries (256 threads) and odd multi-dimensional ones.
pub fn shapes() -> Vec<Shape> {
    [
        vec![1],
        vec![3],
        vec![50],
        vec![783],
        vec![4096],
        vec![7, 13],
        vec![3, 5, 17],
        vec![2, 3, 4, 5],
    ]
    .into_iter()
    .map(Shape)
    .collect()
}

/// Runs the graph on the CPU reference and, when there is one, on the wgpu adapter, and
/// checks every output of the adapter against the reference. Returns the CPU outputs.
pub fn check(
    label: &str,
    g: &Graph,
    outputs: &[Tensor],
    inputs: &[(&str, &TensorData)],
    tol: Tolerance,
) -> Vec<TensorData> {
    let expected = Device::Cpu
        .compile(g, outputs)
        .and_then(|mut exe| exe.run(inputs))
        .unwrap_or_else(|e| panic!("{label}: CPU reference failed: {e}"));
    if let Some(gpu) = gpu() {
        let actual = gpu
            .compile(g, outputs)
            .and_then(|mut exe| exe.run(inputs))
            .unwrap_or_else(|e| panic!("{label}: wgpu failed: {e}"));
        for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
            if let Err(m) = compare(e, a, tol) {
                panic!("{label}: output {i} differs on {}: {m}", gpu.name());
            }
        }
    }
    expected
}

/// Exact for integers; `float` for floats.
pub fn tol_for(dtype: DType, float: Tolerance) -> Tolerance {
    if dtype.is_float() {
        float
    } else {
        Tolerance::EXACT
    }
}
