//! DiffTaichi's `diffmpm_simple` task on gradflux: an elastic block (MLS-MPM, fixed
//! corotated, the original 120 × 120 grid and time step) is thrown with an initial velocity
//! that gradient descent tunes, through the whole rollout, so that the block's centre ends
//! at the target (0.3, 0.6). Each step of the descent is one run of a graph whose rollout
//! and checkpointed backward are one `mpm_rollout` node; the first is checked against the
//! CPU reference.
//!
//! Writes `mpm_loss.svg` (the loss per iteration) and `mpm_throw.png` (an animated PNG of
//! the last throw, the target marked).
//!
//! ```sh
//! cargo run --release --example mpm                 # 20 iterations, 400 substeps, 30² particles
//! cargo run --release --example mpm -- 30 1023 60   # diffmpm_simple's own sizes
//! ```

mod render;
#[path = "../common/svg_plot.rs"]
mod svg_plot;

use std::process::ExitCode;

use gradflux::{DType, Device, Graph, Mpm, Optimizer, RolloutOptions, Sgd, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};

const TARGET: [f32; 2] = [0.3, 0.6];
/// diffmpm_simple's learning rate.
const LR: f64 = 10.0;

/// The block of `side²` particles as diffmpm_simple places it.
fn block(side: usize, dx: f32) -> Vec<f32> {
    (0..side * side)
        .flat_map(|k| {
            let (i, j) = ((k / side) as f32, (k % side) as f32);
            [dx * (i * 0.7 + 10.0), dx * (j * 0.7 + 25.0)]
        })
        .collect()
}

/// The throw: the parameter `init_v` given to every particle, the positions at `observe`,
/// and the loss ½ |mean x_T − target|² (at the last observed step).
fn throw(
    g: &Graph,
    system: &Mpm,
    side: usize,
    steps: usize,
    observe: Vec<usize>,
    init_v: Tensor,
) -> gradflux::Result<(Tensor, Tensor)> {
    let n = side * side;
    let x0 = g.constant(TensorData::new([n, 2], block(side, system.dx()))?)?;
    let v0 = g.broadcast_to(g.reshape(init_v, [1, 2])?, [n, 2])?;
    let k = observe.len();
    let options = RolloutOptions {
        observe,
        ..RolloutOptions::new(steps)
    };
    let out = g.mpm_rollout(system, x0, v0, None, options)?;
    let last = g.reshape(g.slice(out.positions, 0, k - 1, k)?, [n, 2])?;
    let centre = g.mean(last, 0)?;
    let target = g.constant(TensorData::new([2], TARGET.to_vec())?)?;
    let d = g.sub(centre, target)?;
    let loss = g.mul(g.sum_all(g.mul(d, d)?)?, g.scalar(0.5, DType::F32)?)?;
    Ok((loss, out.positions))
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mpm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<bool, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: usize| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let (iterations, steps, side) = (arg(20), arg(400), arg(30));
    let system = Mpm::diffmpm_simple();
    let device = Device::auto()?;
    println!(
        "mpm: {} particles on a {}² grid, {steps} substeps, {iterations} descent steps, on {}",
        side * side,
        system.grid,
        device.name()
    );
    let g = Graph::new();
    let init_v = g.parameter("init_v", TensorData::zeros([2], DType::F32))?;
    let (loss, _) = throw(&g, &system, side, steps, vec![steps], init_v)?;
    let sgd = Sgd {
        lr: LR,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    g.minimize(loss, &[init_v], Optimizer::Sgd(sgd))?;
    let mut exe = device.compile(&g, &[loss])?;
    let first_loss = |exe: &mut Box<dyn gradflux::Executable>| -> gradflux::Result<f32> {
        Ok(exe.run(&[])?[0].values::<f32>()?[0])
    };
    let mut ok = true;
    if !device.is_cpu() {
        let mut cpu = Device::Cpu.compile(&g, &[loss])?;
        let (want, got) = (first_loss(&mut cpu)?, first_loss(&mut exe)?);
        let (v_cpu, v_dev) = (cpu.parameter("init_v")?, exe.parameter("init_v")?);
        let same = (want - got).abs() <= 1e-4 * want.abs()
            && gradflux::compare(&v_cpu, &v_dev, gradflux::Tolerance::new(1e-3, 1e-5)).is_ok();
        println!(
            "{} first step against the CPU reference: loss {got:.6} vs {want:.6}",
            if same { "PASS" } else { "FAIL" }
        );
        ok &= same;
        exe = device.compile(&g, &[loss])?;
    }
    let bar = ProgressBar::new(iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} steps {msg}")
            .expect("a valid template"),
    );
    let mut losses = vec![];
    for _ in 0..iterations {
        let l = first_loss(&mut exe)?;
        losses.push(l);
        bar.set_message(format!("loss {l:.5}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let v = exe.parameter("init_v")?;
    let v = v.values::<f32>()?.to_vec();
    let (first, last) = (losses[0], *losses.last().unwrap());
    println!(
        "loss {first:.5} -> {last:.5}; initial velocity ({:.3}, {:.3})",
        v[0], v[1]
    );
    if last >= first {
        println!("FAIL: the descent did not lower the loss");
        ok = false;
    }
    let svg = std::path::Path::new("mpm_loss.svg");
    let labels = svg_plot::Labels {
        title: "mpm: distance² of the block's centre to the target, per descent step",
        x: "iteration",
        y: "loss ½|x̄ − target|² (m²)",
        legend: &format!("loss on {}", device.name()),
    };
    svg_plot::curve(svg, &losses, &labels)?;
    println!("wrote {}", svg.display());

    // The last throw, every 8th substep.
    let g = Graph::new();
    let init_v = g.constant(TensorData::new([2], v)?)?;
    let every: Vec<usize> = (1..=steps).filter(|t| t % 8 == 0 || *t == steps).collect();
    let frames = every.len();
    let (_, positions) = throw(&g, &system, side, steps, every, init_v)?;
    let out = device.compile(&g, &[positions])?.run(&[])?;
    let path = std::path::Path::new("mpm_throw.png");
    render::throw(path, out[0].values::<f32>()?, side * side, TARGET)?;
    println!("wrote {} ({frames} frames)", path.display());
    Ok(ok)
}
