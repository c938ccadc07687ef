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

/// `MassSpring::lattice` as `(system, positions, rest lengths)`.
pub fn spring_block(
    counts: &[usize],
    h: f32,
    origin: [f32; 3],
    dt: f32,
) -> (gradflux::MassSpring, Vec<f32>, Vec<f32>) {
    let l = gradflux::MassSpring::lattice(counts, h, origin, dt);
    (l.system, l.positions, l.rest)
}

/// A mass-spring rollout's inputs (kept in f64, given to the graph in any float dtype) and
/// options, and the loss the tests differentiate.
pub struct RolloutCase {
    pub label: &'static str,
    pub system: gradflux::MassSpring,
    pub x0: Vec<f64>,
    pub v0: Vec<f64>,
    pub rest: Vec<f64>,
    pub stiffness: Vec<f64>,
    pub damping: Vec<f64>,
    /// `[steps, actuators]`, empty without actuators.
    pub controls: Vec<f64>,
    pub options: gradflux::RolloutOptions,
}

/// What [`RolloutCase::graph`] builds.
pub struct RolloutGraph {
    pub graph: Graph,
    /// `Σ positions ⊙ w1 + Σ velocities ⊙ w2` with fixed random weights.
    pub loss: Tensor,
    /// The rollout's inputs: x0, v0, rest, stiffness, damping (and the controls).
    pub inputs: Vec<Tensor>,
    pub states: gradflux::RolloutStates,
    /// The inputs' names and data.
    pub data: Vec<(String, TensorData)>,
}

impl RolloutGraph {
    /// The data as `run` takes it.
    pub fn named(&self) -> Vec<(&str, &TensorData)> {
        self.data.iter().map(|(n, d)| (n.as_str(), d)).collect()
    }
}

impl RolloutCase {
    /// At rest, stiffnesses in [50, 80), dampings in [0.5, 1), 20 steps observing the last.
    pub fn new(
        label: &'static str,
        system: gradflux::MassSpring,
        x0: Vec<f32>,
        rest: Vec<f32>,
    ) -> RolloutCase {
        let s = system.springs.len();
        let mut rng = Rng::new(5);
        RolloutCase {
            label,
            v0: vec![0.0; x0.len()],
            x0: x0.iter().map(|&v| v as f64).collect(),
            rest: rest.iter().map(|&v| v as f64).collect(),
            stiffness: (0..s).map(|_| rng.uniform(50.0, 80.0)).collect(),
            damping: (0..s).map(|_| rng.uniform(0.5, 1.0)).collect(),
            controls: vec![],
            system,
            options: gradflux::RolloutOptions::new(20),
        }
    }

    /// The rollout and its loss in `dtype`.
    pub fn graph(&self, dtype: DType) -> RolloutGraph {
        let g = Graph::new();
        let (n, d, s) = (
            self.system.particles(),
            self.system.dim,
            self.system.springs.len(),
        );
        let mut named = vec![
            ("x0", vec![n, d], &self.x0),
            ("v0", vec![n, d], &self.v0),
            ("rest", vec![s], &self.rest),
            ("stiffness", vec![s], &self.stiffness),
            ("damping", vec![s], &self.damping),
        ];
        if !self.system.actuators.is_empty() {
            let a = self.system.actuators.len();
            named.push(("controls", vec![self.options.steps, a], &self.controls));
        }
        let mut inputs = vec![];
        let mut data = vec![];
        for (name, shape, values) in named {
            inputs.push(g.input(name, shape.clone(), dtype).unwrap());
            let values = match dtype {
                DType::F64 => TensorData::new(shape, values.clone()),
                _ => TensorData::new(shape, values.iter().map(|&v| v as f32).collect()),
            };
            data.push((name.to_string(), values.unwrap()));
        }
        let springs = gradflux::SpringValues {
            rest: inputs[2],
            stiffness: inputs[3],
            damping: inputs[4],
        };
        let states = g
            .mass_spring_rollout(
                &self.system,
                inputs[0],
                inputs[1],
                springs,
                inputs.get(5).copied(),
                self.options.clone(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", self.label));
        let k = self.options.observe.len();
        let mut rng = Rng::new(11);
        let mut weighted = |t: Tensor| {
            let w = random(&mut rng, [k, n, d], dtype, -1.0, 1.0);
            g.sum_all(g.mul(t, g.constant(w).unwrap()).unwrap())
                .unwrap()
        };
        let loss = g
            .add(weighted(states.positions), weighted(states.velocities))
            .unwrap();
        RolloutGraph {
            graph: g,
            loss,
            inputs,
            states,
            data,
        }
    }
}
