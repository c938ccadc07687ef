//! A soft robot learns to walk: a 2D mass-spring walker (`robot.rs`) whose leg and belly
//! springs are muscles driven by an open-loop controller (a mix of sinusoids through
//! `tanh`) is trained by gradient descent through a 1 s rollout (400 control steps of 2
//! substeps, ground contact with friction) to move its centre to the right. The rollout
//! and its checkpointed backward are one `mass_spring_rollout` node, so each Adam step is
//! one run on the device. The first step is checked against the CPU reference.
//!
//! Writes `soft_robot_loss.svg` (the loss per iteration) and `soft_robot_gait.png` (an
//! animated PNG of the best gait).
//!
//! ```sh
//! cargo run --release --example soft_robot            # 60 iterations
//! cargo run --release --example soft_robot -- 20 out  # iterations, output folder
//! ```

mod render;
mod robot;
#[path = "../common/svg_plot.rs"]
mod svg_plot;

use std::path::PathBuf;
use std::process::ExitCode;

use gradflux::{
    Adam, DType, Device, Executable, Graph, Optimizer, Result, RolloutOptions, SpringValues,
    Tensor, TensorData,
};
use indicatif::{ProgressBar, ProgressStyle};

use robot::{Robot, STEPS, SUBSTEPS, WAVES};

const LR: f64 = 0.02;
const STIFFNESS: f32 = 3000.0;
const DAMPING: f32 = 10.0;

/// The rollout of `robot` driven by controller parameters `w [WAVES, A]`, `b [A]`: the
/// positions at the observed steps.
fn rollout(
    g: &Graph,
    robot: &Robot,
    (w, b): (Tensor, Tensor),
    observe: Vec<usize>,
) -> Result<Tensor> {
    let (n, s) = (robot.system.particles(), robot.system.springs.len());
    let waves = g.constant(TensorData::new([STEPS, WAVES], robot::waves())?)?;
    let controls = g.tanh(g.add(g.matmul(waves, w)?, b)?)?;
    let constant = |v: Vec<f32>, shape: Vec<usize>| g.constant(TensorData::new(shape, v)?);
    let x0 = constant(robot.x0.clone(), vec![n, 2])?;
    let v0 = constant(vec![0.0; 2 * n], vec![n, 2])?;
    let springs = SpringValues {
        rest: constant(robot.rest.clone(), vec![s])?,
        stiffness: constant(vec![STIFFNESS; s], vec![s])?,
        damping: constant(vec![DAMPING; s], vec![s])?,
    };
    let options = RolloutOptions {
        substeps: SUBSTEPS,
        observe,
        ..RolloutOptions::new(STEPS)
    };
    let out = g.mass_spring_rollout(&robot.system, x0, v0, springs, Some(controls), options)?;
    Ok(out.positions)
}

/// The training graph: each run is one Adam step on the loss `−mean x` at the end.
fn training(robot: &Robot) -> Result<(Graph, Tensor)> {
    let a = robot.system.actuators.len();
    let g = Graph::new();
    let mut rng = 0x2545_f491_u64;
    let init: Vec<f32> = (0..WAVES * a)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            0.3 * ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        })
        .collect();
    let w = g.parameter("w", TensorData::new([WAVES, a], init)?)?;
    let b = g.parameter("b", TensorData::zeros([a], DType::F32))?;
    let positions = rollout(&g, robot, (w, b), vec![STEPS])?;
    let n = robot.system.particles();
    let weights: Vec<f32> = (0..n).flat_map(|_| [-1.0 / n as f32, 0.0]).collect();
    let weights = g.constant(TensorData::new([1, n, 2], weights)?)?;
    let loss = g.sum_all(g.mul(positions, weights)?)?;
    let adam = Adam {
        lr: LR,
        ..Adam::default()
    };
    g.minimize(loss, &[w, b], Optimizer::Adam(adam))?;
    Ok((g, loss))
}

fn loss_of(exe: &mut dyn Executable) -> Result<f32> {
    Ok(exe.run(&[])?[0].values::<f32>()?[0])
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soft_robot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> std::result::Result<bool, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let folder = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let robot = robot::walker();
    let device = Device::auto()?;
    println!(
        "soft_robot: {} particles, {} springs ({} muscles), {STEPS} steps x {SUBSTEPS} \
         substeps, on {}",
        robot.system.particles(),
        robot.system.springs.len(),
        robot.system.actuators.len(),
        device.name()
    );
    let (g, loss) = training(&robot)?;
    let mut exe = device.compile(&g, &[loss])?;
    let mut ok = true;
    if !device.is_cpu() {
        let mut cpu = Device::Cpu.compile(&g, &[loss])?;
        let (want, got) = (loss_of(cpu.as_mut())?, loss_of(exe.as_mut())?);
        let (w_cpu, w_dev) = (cpu.parameter("w")?, exe.parameter("w")?);
        let same = (want - got).abs() <= 1e-4 * want.abs().max(1e-3)
            && gradflux::compare(&w_cpu, &w_dev, gradflux::Tolerance::new(1e-3, 1e-5)).is_ok();
        println!(
            "{} first step against the CPU reference: loss {got:.6} vs {want:.6}",
            if same { "PASS" } else { "FAIL" }
        );
        ok &= same;
        // Start the device over from the same parameters as the CPU.
        exe = device.compile(&g, &[loss])?;
    }

    let bar = ProgressBar::new(iterations as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} iterations {msg}")
            .expect("a valid template"),
    );
    let mut losses = vec![];
    let mut best = (f32::INFINITY, exe.parameter("w")?, exe.parameter("b")?);
    for _ in 0..iterations {
        let (w, b) = (exe.parameter("w")?, exe.parameter("b")?);
        let l = loss_of(exe.as_mut())?;
        if l < best.0 {
            best = (l, w, b);
        }
        losses.push(l);
        bar.set_message(format!("loss {l:.4} m"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let (first, last) = (losses[0], *losses.last().unwrap());
    let n = robot.system.particles();
    let start = robot.x0.iter().step_by(2).sum::<f32>() / n as f32;
    println!(
        "loss (−mean x after 1 s) {first:.4} m -> {last:.4} m; the centre starts at x = \
         {start:.3} m and ends at {:.3} m untrained, {:.3} m with the best gait",
        -first, -best.0
    );
    if best.0 >= first {
        println!("FAIL: training did not improve the gait");
        ok = false;
    }

    let svg = folder.join("soft_robot_loss.svg");
    let labels = svg_plot::Labels {
        title: "soft_robot: loss per Adam step (−mean x after 1 s)",
        x: "iteration",
        y: "loss (m)",
        legend: &format!("loss on {}", device.name()),
    };
    svg_plot::curve(&svg, &losses, &labels)?;
    println!("wrote {}", svg.display());

    // The best gait, every 4th step.
    let g = Graph::new();
    let params = (g.constant(best.1)?, g.constant(best.2)?);
    let every: Vec<usize> = (1..=STEPS).filter(|t| t % 4 == 0).collect();
    let positions = rollout(&g, &robot, params, every)?;
    let frames = device.compile(&g, &[positions])?.run(&[])?;
    let gait = folder.join("soft_robot_gait.png");
    render::gait(&gait, &robot, frames[0].values::<f32>()?)?;
    println!("wrote {} ({} frames)", gait.display(), STEPS / 4);
    Ok(ok)
}
