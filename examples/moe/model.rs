//! The generated task and the MoE layer trained on it.
//!
//! Inputs come from `CLUSTERS` clusters; each cluster's target is its own non-linear map
//! of the input, so a layer whose router sends each cluster to its own experts fits it
//! best. The layer: router `x · wr` → softmax top-2 (renormalised) → dispatch with a
//! capacity factor (keeping the highest gates) → per-expert `relu(x · w1) · w2` as two
//! grouped matmuls → weighted combine. The loss is the mean squared error plus the
//! load-balancing loss and the router z-loss.

use gradflux::{
    Adam, Capacity, DType, DispatchOptions, DropPolicy, Graph, Optimizer, Result, Router, Tensor,
    TensorData,
};

pub const DIM: usize = 16;
pub const HIDDEN: usize = 32;
pub const EXPERTS: usize = 8;
pub const TOP_K: usize = 2;
pub const CLUSTERS: usize = 8;
pub const BLOCK: usize = 16;
pub const CAPACITY_FACTOR: f64 = 1.25;
pub const BALANCE_WEIGHT: f64 = 0.01;
pub const Z_WEIGHT: f64 = 1e-3;

pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn symmetric(&mut self, scale: f32) -> f32 {
        (self.uniform() * 2.0 - 1.0) * scale
    }

    fn matrix(&mut self, len: usize, fan_in: usize) -> Vec<f32> {
        let scale = (3.0 / fan_in as f32).sqrt();
        (0..len).map(|_| self.symmetric(scale)).collect()
    }
}

/// `(x, y)` for `n` points: `x` near one of the cluster centres, `y = tanh(A_c x)` with
/// the cluster's own matrix `A_c`.
pub fn dataset(n: usize, rng: &mut Rng) -> Result<(TensorData, TensorData)> {
    let centres: Vec<f32> = (0..CLUSTERS * DIM).map(|_| rng.symmetric(2.0)).collect();
    let maps: Vec<f32> = rng.matrix(CLUSTERS * DIM * DIM, DIM / 4);
    let mut x = Vec::with_capacity(n * DIM);
    let mut y = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let c = i % CLUSTERS;
        let point: Vec<f32> = (0..DIM)
            .map(|d| centres[c * DIM + d] + rng.symmetric(0.5))
            .collect();
        for o in 0..DIM {
            let a = &maps[(c * DIM + o) * DIM..][..DIM];
            let v: f32 = a.iter().zip(&point).map(|(a, p)| a * p).sum();
            y.push(v.tanh());
        }
        x.extend(point);
    }
    Ok((TensorData::new([n, DIM], x)?, TensorData::new([n, DIM], y)?))
}

/// What one training step reports.
pub struct Outputs {
    pub loss: Tensor,
    pub mse: Tensor,
    pub counts: Tensor,
    pub dropped: Tensor,
}

/// Builds one Adam step on a batch of `tokens` rows of `x` and `y`.
pub fn build(g: &Graph, tokens: usize, lr: f64, rng: &mut Rng) -> Result<Outputs> {
    let x = g.input("x", [tokens, DIM], DType::F32)?;
    let y = g.input("y", [tokens, DIM], DType::F32)?;
    let wr = g.parameter(
        "wr",
        TensorData::new([DIM, EXPERTS], rng.matrix(DIM * EXPERTS, DIM))?,
    )?;
    let w1 = g.parameter(
        "w1",
        TensorData::new(
            [EXPERTS, DIM, HIDDEN],
            rng.matrix(EXPERTS * DIM * HIDDEN, DIM),
        )?,
    )?;
    let w2 = g.parameter(
        "w2",
        TensorData::new(
            [EXPERTS, HIDDEN, DIM],
            rng.matrix(EXPERTS * HIDDEN * DIM, HIDDEN),
        )?,
    )?;

    let logits = g.matmul(x, wr)?;
    let routing = g.route(
        logits,
        Router::SoftmaxTopK {
            k: TOP_K,
            renormalize: true,
        },
    )?;
    let dispatch = g.moe_dispatch(
        routing.experts,
        Some(routing.gates),
        DispatchOptions {
            num_experts: EXPERTS,
            block: BLOCK,
            capacity: Capacity::Factor(CAPACITY_FACTOR),
            policy: DropPolicy::HighestGate,
        },
    )?;
    let rows = g.moe_gather(x, &dispatch)?;
    let hidden = g.relu(g.grouped_matmul(rows, w1, dispatch.block_experts, BLOCK, false)?)?;
    let expert_out = g.grouped_matmul(hidden, w2, dispatch.block_experts, BLOCK, false)?;
    let out = g.moe_combine(expert_out, &dispatch, routing.gates)?;

    let err = g.sub(out, y)?;
    let mse = g.mean(g.mean(g.mul(err, err)?, 1)?, 0)?;
    let balance = g.load_balancing_loss(routing.probs, routing.experts, BALANCE_WEIGHT)?;
    let z = g.mul(g.router_z_loss(logits)?, g.scalar(Z_WEIGHT, DType::F32)?)?;
    let loss = g.add(mse, g.add(balance, z)?)?;
    g.minimize(
        loss,
        &[wr, w1, w2],
        Optimizer::Adam(Adam {
            lr,
            ..Adam::default()
        }),
    )?;
    Ok(Outputs {
        loss,
        mse,
        counts: dispatch.counts,
        dropped: dispatch.dropped,
    })
}
