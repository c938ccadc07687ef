//! Trains a small MLP to classify a three-arm spiral, on the best device found, with a
//! progress bar and the loss per epoch; then trains the same model on the CPU reference,
//! checks both loss curves agree, and writes both curves to `train_mlp_loss.png`.
//!
//! ```text
//! cargo run --release --example train_mlp                 # best device
//! cargo run --release --example train_mlp -- 60 out.png   # epochs, image path
//! GRADFLUX_DEVICE=cpu cargo run --release --example train_mlp
//! ```

mod model;
mod plot;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gradflux::{compare, Device, Graph, Result, TensorData, Tolerance};
use indicatif::{ProgressBar, ProgressStyle};

const STEPS_PER_EPOCH: usize = 10;
const POINTS_PER_CLASS: usize = 200;
const SEED: u64 = 0x5eed_1234;
const LR: f64 = 0.02;
/// How close the device's loss curve must stay to the CPU reference's.
const CURVE_TOLERANCE: Tolerance = Tolerance::new(1e-2, 1e-3);

/// Per-step losses and accuracies of one training run, and its mean host time per step.
struct Run {
    losses: Vec<f32>,
    accuracy: Vec<f32>,
    per_step: Duration,
}

fn train(device: &Device, epochs: usize, show: bool) -> Result<Run> {
    let mut rng = model::Rng(SEED);
    let (x, y) = model::spiral(POINTS_PER_CLASS, &mut rng)?;
    let g = Graph::new();
    let (loss, accuracy) = model::build(&g, x.shape().dims()[0], LR, &mut rng)?;
    let mut step = device.compile(&g, &[loss, accuracy])?;

    let bar = if show {
        let b = ProgressBar::new((epochs * STEPS_PER_EPOCH) as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} steps {msg}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut run = Run {
        losses: Vec::new(),
        accuracy: Vec::new(),
        per_step: Duration::ZERO,
    };
    let start = Instant::now();
    for epoch in 1..=epochs {
        for _ in 0..STEPS_PER_EPOCH {
            let out = step.run(&[("x", &x), ("y", &y)])?;
            run.losses.push(out[0].values::<f32>()?[0]);
            run.accuracy.push(out[1].values::<f32>()?[0]);
            bar.inc(1);
        }
        let (l, a) = (run.losses.last().unwrap(), run.accuracy.last().unwrap());
        bar.set_message(format!("loss {l:.4}"));
        if show {
            // `suspend` prints whether or not stdout is a terminal (`println` on the bar is
            // dropped when it is not).
            bar.suspend(|| println!("epoch {epoch:3}  loss {l:.5}  accuracy {:.1}%", a * 100.0));
        }
    }
    bar.finish_and_clear();
    run.per_step = start.elapsed() / (epochs * STEPS_PER_EPOCH) as u32;
    Ok(run)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("train_mlp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<bool> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let image = PathBuf::from(args.next().unwrap_or_else(|| "train_mlp_loss.png".into()));

    let device = Device::auto()?;
    println!(
        "training on {} for {epochs} epochs of {STEPS_PER_EPOCH} Adam steps",
        device.name()
    );
    let main_run = train(&device, epochs, true)?;
    let reference = if device.is_cpu() {
        None
    } else {
        println!("same training on the CPU reference ...");
        Some(train(&Device::Cpu, epochs, false)?)
    };

    let first = main_run.losses[0];
    let last = *main_run.losses.last().unwrap();
    println!(
        "loss {first:.4} -> {last:.4}, accuracy {:.1}%, {:.3} ms per step (host, forward + backward + update)",
        main_run.accuracy.last().unwrap() * 100.0,
        main_run.per_step.as_secs_f64() * 1e3
    );
    let mut ok = last < 0.5 * first;
    if !ok {
        println!("FAIL: the loss did not halve");
    }
    let mut curves: Vec<(&[f32], [u8; 3], i64)> = Vec::new();
    if let Some(r) = &reference {
        println!(
            "CPU reference: {:.3} ms per step",
            r.per_step.as_secs_f64() * 1e3
        );
        let n = main_run.losses.len();
        let a = TensorData::new([n], r.losses.clone())?;
        let b = TensorData::new([n], main_run.losses.clone())?;
        // f32 rounding differs between backends and Adam carries it forward, so late in
        // training, where the loss is ~1e-2, curves drift apart by ~1e-3 at most.
        match compare(&a, &b, CURVE_TOLERANCE) {
            Ok(()) => println!("PASS loss curve matches the CPU reference ({CURVE_TOLERANCE:?})"),
            Err(m) => {
                println!("FAIL loss curve differs from the CPU reference: {m}");
                ok = false;
            }
        }
        curves.push((&r.losses, [255, 127, 14], 6));
    }
    curves.push((&main_run.losses, [31, 119, 180], 2));
    let title = format!(
        "train_mlp loss per step on {} (blue) over the CPU reference (orange)",
        device.name()
    );
    match plot::write_curves(&image, &curves, &title) {
        Ok(()) => println!(
            "wrote {} (x: step 0..{}, y: 0..{:.3})",
            image.display(),
            main_run.losses.len() - 1,
            first.max(last)
        ),
        Err(e) => println!("could not write {}: {e}", image.display()),
    }
    Ok(ok)
}
