//! The task and model of the `train_mlp` example, shared with the test that checks training
//! converges on every backend: a three-arm spiral classified by a two-hidden-layer MLP
//! trained with Adam, one full-batch step per run.

use gradflux::{Adam, DType, Graph, Optimizer, Result, Tensor, TensorData};

pub const CLASSES: usize = 3;
pub const HIDDEN: usize = 32;

/// A tiny deterministic generator (xorshift64*), so every run sees the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[-scale, scale)`.
    pub fn symmetric(&mut self, scale: f32) -> f32 {
        (self.next_f32() * 2.0 - 1.0) * scale
    }
}

/// `points_per_class` points on each of three noisy spiral arms: features `[n, 2]` and
/// one-hot labels `[n, 3]`.
pub fn spiral(points_per_class: usize, rng: &mut Rng) -> Result<(TensorData, TensorData)> {
    let n = points_per_class * CLASSES;
    let mut x = Vec::with_capacity(n * 2);
    let mut y = vec![0.0f32; n * CLASSES];
    for class in 0..CLASSES {
        for i in 0..points_per_class {
            let r = i as f32 / points_per_class as f32;
            let angle = class as f32 * 2.094 + r * 4.0 + rng.symmetric(0.2);
            x.push(r * angle.cos());
            x.push(r * angle.sin());
            y[(class * points_per_class + i) * CLASSES + class] = 1.0;
        }
    }
    Ok((
        TensorData::new([n, 2], x)?,
        TensorData::new([n, CLASSES], y)?,
    ))
}

fn init(rng: &mut Rng, rows: usize, cols: usize) -> Result<TensorData> {
    // Xavier-uniform keeps tanh layers out of saturation at the start.
    let scale = (6.0 / (rows + cols) as f32).sqrt();
    TensorData::new(
        [rows, cols],
        (0..rows * cols).map(|_| rng.symmetric(scale)).collect(),
    )
}

/// The training graph for `n` points: returns (loss, accuracy). Every run of an executable
/// compiled for `[loss, accuracy]` is one Adam step on the full batch.
pub fn build(g: &Graph, n: usize, lr: f64, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
    let x = g.input("x", [n, 2], DType::F32)?;
    let y = g.input("y", [n, CLASSES], DType::F32)?;
    let zeros = |len| TensorData::zeros([len], DType::F32);
    let w1 = g.parameter("w1", init(rng, 2, HIDDEN)?)?;
    let b1 = g.parameter("b1", zeros(HIDDEN))?;
    let w2 = g.parameter("w2", init(rng, HIDDEN, HIDDEN)?)?;
    let b2 = g.parameter("b2", zeros(HIDDEN))?;
    let w3 = g.parameter("w3", init(rng, HIDDEN, CLASSES)?)?;
    let b3 = g.parameter("b3", zeros(CLASSES))?;

    let h1 = g.tanh(g.add(g.matmul(x, w1)?, b1)?)?;
    let h2 = g.tanh(g.add(g.matmul(h1, w2)?, b2)?)?;
    let logits = g.add(g.matmul(h2, w3)?, b3)?;
    let logp = g.log_softmax(logits, -1)?;
    let picked = g.sum(g.mul(logp, y)?, 1)?;
    let loss = g.neg(g.mean(picked, 0)?)?;
    let hits = g.eq(g.argmax(logits, 1)?, g.argmax(y, 1)?)?;
    let accuracy = g.mean(g.cast(hits, DType::F32)?, 0)?;

    let adam = Adam {
        lr,
        ..Adam::default()
    };
    g.minimize(loss, &[w1, b1, w2, b2, w3, b3], Optimizer::Adam(adam))?;
    Ok((loss, accuracy))
}
