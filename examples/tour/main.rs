//! A tour of gradflux: build a graph, compile it for the best device, run it, and check
//! every output against the CPU reference backend.
//!
//! The graph is the forward pass of a two-layer MLP classifier on a batch, with the loss
//! and accuracy a training loop would track:
//!
//! ```text
//! h      = relu(x @ w1 + b1)                 [batch, hidden]
//! logits = h @ w2 + b2                       [batch, classes]
//! logp   = log_softmax(logits)               [batch, classes]
//! loss   = -mean(logp[i, labels[i]])         scalar (negative log-likelihood)
//! pred   = argmax(logits)                    [batch] (u32)
//! acc    = mean(pred == labels)              scalar
//! ```
//!
//! Then a second stop: a mass-spring rollout and an MLS-MPM rollout with their gradients
//! (`physics.rs`), also checked against the CPU reference.
//!
//! ```text
//! cargo run --release --example tour
//! GRADFLUX_DEVICE=cpu cargo run --release --example tour    # force a device
//! ```

mod physics;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gradflux::{compare, DType, Device, Graph, Result, Tensor, TensorData, Tolerance};

const BATCH: usize = 256;
const FEATURES: usize = 64;
const HIDDEN: usize = 128;
const CLASSES: usize = 10;
const TIMED_RUNS: usize = 20;

/// A tiny deterministic generator (xorshift64*), so every run sees the same data.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[-1, 1)`.
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn tensor(&mut self, dims: &[usize], scale: f32) -> Result<TensorData> {
        let n = dims.iter().product();
        let values = (0..n).map(|_| self.uniform() * scale).collect::<Vec<f32>>();
        TensorData::new(dims.to_vec(), values)
    }
}

/// The graph's outputs, in the order they are compiled.
struct Outputs {
    tensors: Vec<Tensor>,
    names: Vec<&'static str>,
    tolerances: Vec<Tolerance>,
}

fn build(g: &Graph) -> Result<Outputs> {
    let x = g.input("x", [BATCH, FEATURES], DType::F32)?;
    let labels = g.input("labels", [BATCH], DType::U32)?;
    let w1 = g.input("w1", [FEATURES, HIDDEN], DType::F32)?;
    let b1 = g.input("b1", [HIDDEN], DType::F32)?;
    let w2 = g.input("w2", [HIDDEN, CLASSES], DType::F32)?;
    let b2 = g.input("b2", [CLASSES], DType::F32)?;

    // Two layers; the biases broadcast over the batch.
    let h = g.relu(g.add(g.matmul(x, w1)?, b1)?)?;
    let logits = g.add(g.matmul(h, w2)?, b2)?;
    let logp = g.log_softmax(logits, -1)?;

    // Pick logp[i, labels[i]]: flatten, and gather at i * CLASSES + labels[i].
    let row_start: Vec<u32> = (0..BATCH).map(|i| (i * CLASSES) as u32).collect();
    let row_start = g.constant(TensorData::new([BATCH], row_start)?)?;
    let flat = g.reshape(logp, [BATCH * CLASSES])?;
    let picked = g.gather(flat, 0, g.add(row_start, labels)?)?;
    let loss = g.neg(g.mean(picked, 0)?)?;

    let pred = g.argmax(logits, -1)?;
    let acc = g.mean(g.cast(g.eq(pred, labels)?, DType::F32)?, 0)?;

    Ok(Outputs {
        tensors: vec![loss, acc, pred, logp],
        names: vec!["loss", "accuracy", "predictions", "log_probs"],
        tolerances: vec![
            // f32 kernels against f64-accumulating reference loops.
            Tolerance::new(1e-4, 1e-5),
            Tolerance::new(0.0, 1e-6),
            Tolerance::EXACT,
            Tolerance::new(1e-4, 1e-4),
        ],
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() -> ExitCode {
    match tour() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tour() -> Result<bool> {
    // Data: a batch of inputs, labels, and weights scaled like a standard initialisation.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let x = rng.tensor(&[BATCH, FEATURES], 1.0)?;
    let w1 = rng.tensor(&[FEATURES, HIDDEN], 1.0 / (FEATURES as f32).sqrt())?;
    let b1 = rng.tensor(&[HIDDEN], 0.1)?;
    let w2 = rng.tensor(&[HIDDEN, CLASSES], 1.0 / (HIDDEN as f32).sqrt())?;
    let b2 = rng.tensor(&[CLASSES], 0.1)?;
    let labels: Vec<u32> = (0..BATCH)
        .map(|_| (rng.next_u64() % CLASSES as u64) as u32)
        .collect();
    let labels = TensorData::new([BATCH], labels)?;
    let inputs = [
        ("x", &x),
        ("labels", &labels),
        ("w1", &w1),
        ("b1", &b1),
        ("w2", &w2),
        ("b2", &b2),
    ];

    let g = Graph::new();
    let out = build(&g)?;

    let device = Device::auto()?;
    println!("gradflux tour: 2-layer MLP forward, loss and accuracy");
    println!("  device:      {}", device.name());
    println!(
        "  graph:       {} nodes (batch {BATCH}, {FEATURES} -> {HIDDEN} -> {CLASSES})",
        g.len()
    );

    let t = Instant::now();
    let mut exe = device.compile(&g, &out.tensors)?;
    let compile = t.elapsed();
    let mem = exe.memory();
    println!(
        "  memory:      peak {} bytes in {} pooled buffers + inputs/constants, vs {} bytes \
         with no reuse ({:.0}%)",
        mem.peak_bytes,
        mem.pooled_buffers,
        mem.total_value_bytes,
        100.0 * mem.peak_bytes as f64 / mem.total_value_bytes.max(1) as f64
    );

    let t = Instant::now();
    let actual = exe.run(&inputs)?;
    let first = t.elapsed();
    let t = Instant::now();
    for _ in 0..TIMED_RUNS {
        std::hint::black_box(exe.run(&inputs)?);
    }
    let mean = t.elapsed() / TIMED_RUNS as u32;
    println!("  compile:     {}", ms(compile));
    println!("  first run:   {}", ms(first));
    println!("  mean run:    {} over {TIMED_RUNS} runs", ms(mean));

    // The CPU reference defines the right answer.
    let t = Instant::now();
    let expected = Device::Cpu.compile(&g, &out.tensors)?.run(&inputs)?;
    println!(
        "  reference:   {} (cpu backend: compile + one run){}",
        ms(t.elapsed()),
        if device.is_cpu() {
            "; the device is the reference itself"
        } else {
            ""
        }
    );

    let loss = actual[0].values::<f32>()?[0];
    let acc = actual[1].values::<f32>()?[0];
    println!(
        "  loss {loss:.5} (chance is ln {CLASSES} = {:.5}), accuracy {:.1}%",
        (CLASSES as f32).ln(),
        acc * 100.0
    );

    let mut ok = true;
    for i in 0..out.tensors.len() {
        let (name, tol) = (out.names[i], out.tolerances[i]);
        match compare(&expected[i], &actual[i], tol) {
            Ok(()) => println!(
                "PASS {name:<12} {} {} (rel {:e}, abs {:e})",
                actual[i].dtype(),
                actual[i].shape(),
                tol.rel,
                tol.abs
            ),
            Err(m) => {
                ok = false;
                println!("FAIL {name:<12} {m}");
            }
        }
    }
    println!();
    ok &= physics::stop(&device)?;
    if !ok {
        eprintln!("tour: outputs differ from the CPU reference");
    }
    Ok(ok)
}
