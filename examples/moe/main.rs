//! Trains a mixture-of-experts layer (a router and 8 two-layer experts, top-2 routing with
//! a capacity factor of 1.25) on a generated task whose inputs come in 8 clusters, on the
//! best device found. Routing, dispatch, the expert matmuls and their gradients all stay
//! on the device. Prints the loss, each expert's share of the routing choices and the drop
//! rate per epoch, and writes the loads over training to `moe_load.png`.
//!
//! ```text
//! cargo run --release --example moe                  # best device
//! cargo run --release --example moe -- 40 load.png   # epochs, image path
//! GRADFLUX_DEVICE=cpu cargo run --release --example moe
//! ```

mod heatmap;
mod model;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gradflux::{Device, Graph, Result, TensorData};

const TOKENS: usize = 512;
const BATCHES: usize = 8;
const SEED: u64 = 0x0e_5eed;
const LR: f64 = 0.01;

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("moe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rows(data: &TensorData, batch: usize) -> Result<TensorData> {
    let width = data.shape().dims()[1];
    let v = &data.values::<f32>()?[batch * TOKENS * width..][..TOKENS * width];
    TensorData::new([TOKENS, width], v.to_vec())
}

fn real_main() -> Result<bool> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let image = PathBuf::from(args.next().unwrap_or_else(|| "moe_load.png".into()));

    let device = Device::auto()?;
    let mut rng = model::Rng(SEED);
    let (x, y) = model::dataset(TOKENS * BATCHES, &mut rng)?;
    let batches: Vec<(TensorData, TensorData)> = (0..BATCHES)
        .map(|b| Ok((rows(&x, b)?, rows(&y, b)?)))
        .collect::<Result<_>>()?;
    let g = Graph::new();
    let out = model::build(&g, TOKENS, LR, &mut rng)?;
    let mut step = device.compile(&g, &[out.loss, out.mse, out.counts, out.dropped])?;
    println!(
        "training a MoE layer ({} experts, top-{}, capacity factor {}) on {} for {epochs} \
         epochs of {BATCHES} batches of {TOKENS} tokens",
        model::EXPERTS,
        model::TOP_K,
        model::CAPACITY_FACTOR,
        device.name()
    );

    let choices = (TOKENS * model::TOP_K * BATCHES) as f32;
    let mut loads: Vec<Vec<f32>> = Vec::new();
    let mut mses = Vec::new();
    let start = Instant::now();
    for epoch in 1..=epochs {
        let (mut load, mut dropped, mut loss, mut mse) =
            (vec![0.0f32; model::EXPERTS], 0u32, 0.0, 0.0);
        for (bx, by) in &batches {
            let o = step.run(&[("x", bx), ("y", by)])?;
            loss += o[0].values::<f32>()?[0] / BATCHES as f32;
            mse += o[1].values::<f32>()?[0] / BATCHES as f32;
            for (l, &c) in load.iter_mut().zip(o[2].values::<u32>()?) {
                *l += c as f32 / choices;
            }
            dropped += o[3].values::<u32>()?.iter().sum::<u32>();
        }
        let shares: Vec<String> = load.iter().map(|l| format!("{:4.1}", l * 100.0)).collect();
        println!(
            "epoch {epoch:3}  loss {loss:.4}  mse {mse:.4}  dropped {:5.2}%  load % [{}]",
            dropped as f32 / choices * 100.0,
            shares.join(" ")
        );
        loads.push(load);
        mses.push(mse);
    }
    let per_step = start.elapsed().as_secs_f64() / (epochs * BATCHES) as f64;
    println!(
        "{:.2} ms per step (host time: routing, dispatch, experts, backward, Adam update)",
        per_step * 1e3
    );
    let (first, last) = (mses[0], *mses.last().unwrap());
    let ok = last < 0.5 * first;
    println!(
        "{} mean squared error {first:.4} -> {last:.4}",
        if ok { "PASS" } else { "FAIL (did not halve):" }
    );
    let title = format!("moe expert load per epoch on {}", device.name());
    match heatmap::write(&image, &loads, &title) {
        Ok(()) => println!("wrote {} (columns: epochs, rows: experts)", image.display()),
        Err(e) => println!("could not write {}: {e}", image.display()),
    }
    Ok(ok)
}
