//! Mass-spring rollouts on the adapter against the CPU reference (states and every
//! gradient), at awkward sizes: one particle with no springs, a 3D block on the ground with
//! actuators and substeps, DiffTaichi's triangle at its wall. The gradients do not depend
//! on the checkpoint interval, twenty runs give the same bits, and a rollout that blows up
//! names its step on both backends.

use gradflux::{
    Checkpoint, DType, Device, Error, GroundContact, MassSpring, RolloutOptions, SpringForm,
    Tensor, TensorData, Tolerance, WallFriction,
};

use crate::common::{gpu, spring_block, Rng, RolloutCase, RolloutGraph};

type Case = RolloutCase;

/// A case with some motion and stiffer springs than `RolloutCase::new`'s.
fn case(label: &'static str, system: MassSpring, x0: Vec<f32>, rest: Vec<f32>) -> Case {
    let mut c = Case::new(label, system, x0, rest);
    let mut rng = Rng::new(label.len() as u64);
    c.v0 = c.v0.iter().map(|_| rng.uniform(-0.3, 0.3)).collect();
    c.stiffness = c
        .stiffness
        .iter()
        .map(|_| rng.uniform(200.0, 400.0))
        .collect();
    c.damping = c.damping.iter().map(|_| rng.uniform(0.5, 2.0)).collect();
    c
}

/// The observed states and the gradients of the case's loss in every input, in f32.
fn run(case: &Case, device: &Device) -> gradflux::Result<Vec<TensorData>> {
    let (r, outs) = graph(case);
    device.compile(&r.graph, &outs)?.run(&r.named())
}

fn graph(case: &Case) -> (RolloutGraph, Vec<Tensor>) {
    let r = case.graph(DType::F32);
    let mut outs = vec![r.states.positions, r.states.velocities];
    outs.extend(r.graph.grad(r.loss, &r.inputs).unwrap());
    (r, outs)
}

fn cases() -> Vec<Case> {
    let mut cases = vec![];

    // One particle, no springs: gravity and the ground alone.
    let mut one = MassSpring::new(2, 1, vec![], 1e-3);
    one.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.01,
        ke: 1e4,
        kd: 10.0,
        kf: 10.0,
        mu: 0.5,
    });
    let mut c = case("one particle", one, vec![0.2, 0.0095], vec![]);
    c.options.observe = vec![1, 13, 20];
    cases.push(c);

    // A 3D block resting into the ground, with actuated springs, 3 substeps per step.
    let (mut block, x0, rest) = spring_block(&[4, 3, 3], 0.05, [0.0, -0.002, 0.0], 5e-4);
    block.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 2e3,
        kd: 20.0,
        kf: 5.0,
        mu: 0.6,
    });
    block.inv_mass[7] = 0.0;
    block.actuators = (0..5).map(|k| (7 * k as u32 + 1, 0.15)).collect();
    let mut c = case("3d block", block, x0, rest);
    c.options.substeps = 3;
    c.options.observe = vec![1, 7, 20];
    c.controls = (0..20 * 5).map(|i| (i as f64 * 0.37).sin()).collect();
    cases.push(c);

    // DiffTaichi's mass_spring_simple, with a fourth particle at the wall.
    let mut tri = MassSpring::new(2, 4, vec![[0, 1], [1, 2], [2, 0], [2, 3]], 1e-3);
    tri.form = SpringForm::DiffTaichi { eps: 1e-4 };
    tri.gravity = [0.0; 3];
    tri.velocity_damping = 20.0;
    tri.wall = Some(WallFriction {
        axis: 0,
        position: 0.4,
        friction: 0.01,
    });
    let x0 = vec![0.3, 0.5, 0.3, 0.4, 0.4, 0.4, 0.45, 0.45];
    let rest = vec![0.1, 0.1, 0.1 * 2f32.sqrt(), 0.05];
    let mut c = case("difftaichi triangle", tri, x0, rest);
    c.v0[6] = 0.5;
    cases.push(c);
    cases
}

#[test]
fn rollouts_and_their_gradients_match_the_reference() {
    let Some(device) = gpu() else { return };
    for case in cases() {
        let want = run(&case, &Device::Cpu).unwrap();
        let got = run(&case, &device).unwrap_or_else(|e| panic!("{}: {e}", case.label));
        let names = [
            "positions",
            "velocities",
            "dx0",
            "dv0",
            "drest",
            "dk",
            "dc",
            "du",
        ];
        for (k, (w, a)) in want.iter().zip(&got).enumerate() {
            gradflux::compare(w, a, Tolerance::new(2e-4, 2e-5))
                .unwrap_or_else(|m| panic!("{}: {}: {m}", case.label, names[k]));
        }
    }
}

#[test]
fn gradients_do_not_depend_on_the_checkpoint_interval() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let runs: Vec<_> = [
            Checkpoint::All,
            Checkpoint::Every(5),
            Checkpoint::Sqrt,
            Checkpoint::Every(60),
        ]
        .into_iter()
        .map(|checkpoint| {
            let mut c = cases().swap_remove(1);
            c.options.checkpoint = checkpoint;
            (checkpoint, run(&c, device).unwrap())
        })
        .collect();
        for (checkpoint, r) in &runs {
            assert_eq!(
                r,
                &runs[0].1,
                "{}: {checkpoint:?} differs from All",
                device.name()
            );
        }
    }
}

#[test]
fn twenty_runs_give_the_same_bits() {
    let Some(device) = gpu() else { return };
    for case in cases() {
        let (r, outs) = graph(&case);
        let mut exe = device.compile(&r.graph, &outs).unwrap();
        let first = exe.run(&r.named()).unwrap();
        for _ in 1..20 {
            assert_eq!(exe.run(&r.named()).unwrap(), first, "{}", case.label);
        }
    }
}

#[test]
fn a_rollout_that_blows_up_names_its_step() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    // Two particles on a spring far too stiff for the substep: the state overflows.
    let system = MassSpring::new(2, 2, vec![[0, 1]], 0.1);
    let mut case = case("blow-up", system, vec![0.0, 0.0, 0.3, 0.0], vec![0.1]);
    case.stiffness = vec![1e6];
    for device in &devices {
        let e = run(&case, device).unwrap_err();
        let Error::NonFinite { step, .. } = e else {
            panic!("{}: expected a non-finite state, got {e}", device.name());
        };
        assert!((1..20).contains(&step), "{}: step {step}", device.name());
        let cpu_step = match run(&case, &Device::Cpu).unwrap_err() {
            Error::NonFinite { step, .. } => step,
            other => panic!("{other}"),
        };
        assert_eq!(step, cpu_step, "{}", device.name());
    }
}

/// Positions and velocities after `steps` steps of `case` on `device`.
fn states(case: &Case, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let out = run(case, device).unwrap();
    (
        out[0].values::<f32>().unwrap().to_vec(),
        out[1].values::<f32>().unwrap().to_vec(),
    )
}

#[test]
fn a_free_block_keeps_its_momentum_and_a_resting_one_stays_put() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let (mut block, x0, rest) = spring_block(&[3, 3, 2], 0.1, [0.0, 1.0, 0.0], 1e-3);
    block.gravity = [0.0; 3];
    let mut free = case("free block", block.clone(), x0.clone(), rest.clone());
    free.options = RolloutOptions::new(50);
    let (n, d) = (block.particles(), block.dim);
    let momentum = |v: &[f32]| -> Vec<f64> {
        (0..d)
            .map(|k| (0..n).map(|i| v[i * d + k] as f64).sum())
            .collect()
    };
    let start = momentum(&free.v0.iter().map(|&v| v as f32).collect::<Vec<_>>());
    let mut resting = case("resting block", block, x0.clone(), rest);
    resting.v0 = vec![0.0; x0.len()];
    for device in &devices {
        let (x, v) = states(&free, device);
        assert_ne!(x, x0, "{}: the free block moves", device.name());
        for (k, (a, b)) in momentum(&v).iter().zip(&start).enumerate() {
            assert!(
                (a - b).abs() < 1e-4,
                "{}: momentum {k}: {a} vs {b}",
                device.name()
            );
        }
        let (x, v) = states(&resting, device);
        assert_eq!(
            x,
            x0,
            "{}: a block at rest stays where it is",
            device.name()
        );
        assert!(v.iter().all(|&v| v == 0.0), "{}: and still", device.name());
    }
}

/// With `Checkpoint::Sqrt` a rollout's memory (forward and backward compiled together)
/// grows as √T states: at T = 100, 1 000 and 10 000 it stays within ⌈T/k⌉ checkpoints, a
/// segment of k states and a fixed number of whole states; `All` keeps T states.
#[test]
fn rollout_memory_grows_as_the_root_of_the_steps() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let (block, x0, rest) = spring_block(&[4, 4], 0.1, [0.0, 1.0, 0.0], 1e-3);
    // A padded state: 6 floats per particle.
    let state = (block.particles() * 6 * 4) as u64;
    for device in &devices {
        let peak = |steps, checkpoint| {
            let mut c = case("memory", block.clone(), x0.clone(), rest.clone());
            c.options = RolloutOptions::new(steps);
            c.options.checkpoint = checkpoint;
            let (r, outs) = graph(&c);
            device.compile(&r.graph, &outs).unwrap().memory().peak_bytes
        };
        for steps in [100, 1_000, 10_000] {
            let k = Checkpoint::Sqrt.interval(steps).unwrap() as u64;
            let bytes = peak(steps, Checkpoint::Sqrt);
            assert!(
                bytes <= (2 * k + 24) * state,
                "{}: T = {steps}: {bytes} bytes, over (2·{k} + 24) states of {state}",
                device.name()
            );
        }
        let all = peak(10_000, Checkpoint::All);
        assert!(
            all >= 10_000 * state,
            "{}: All keeps every state: {all}",
            device.name()
        );
    }
}

/// An MPM block of `side` particles per axis (in the system's dimension) on its grid, its
/// observed states and the gradients of a weighted sum of them in `x0` and `v0`, on
/// `device`.
fn mpm_run(
    device: &Device,
    system: &gradflux::Mpm,
    side: usize,
    options: RolloutOptions,
) -> gradflux::Result<Vec<TensorData>> {
    use gradflux::Graph;
    let d = system.dim;
    let n = side.pow(d as u32);
    let dx = 1.0 / system.grid as f32;
    let x0: Vec<f32> = (0..n)
        .flat_map(|i| {
            let (a, b, c) = ((i / side) % side, i % side, i / (side * side));
            let at = [
                0.3 + 0.6 * dx * a as f32,
                0.35 + 0.55 * dx * b as f32,
                0.4 + 0.65 * dx * c as f32,
            ];
            at.into_iter().take(d)
        })
        .collect();
    let mut rng = Rng::new(9);
    let v0: Vec<f32> = (0..d * n).map(|_| rng.uniform(-0.5, 0.5) as f32).collect();
    let g = Graph::new();
    let x = g.input("x0", [n, d], DType::F32)?;
    let v = g.input("v0", [n, d], DType::F32)?;
    let k = options.observe.len();
    let (steps, acts) = (options.steps, system.actuator_count());
    let controls = (acts > 0)
        .then(|| g.input("u", [steps, acts], DType::F32))
        .transpose()?;
    let out = g.mpm_rollout(system, x, v, controls, options)?;
    let w = crate::common::random(&mut rng, [k, n, d], DType::F32, -1.0, 1.0);
    let loss = g.add(
        g.sum_all(g.mul(out.positions, g.constant(w.clone())?)?)?,
        g.sum_all(g.mul(out.velocities, g.constant(w)?)?)?,
    )?;
    let mut wrt = vec![x, v];
    wrt.extend(controls);
    let grads = g.grad(loss, &wrt)?;
    let mut data = vec![
        ("x0", TensorData::new([n, d], x0)?),
        ("v0", TensorData::new([n, d], v0)?),
    ];
    if acts > 0 {
        let u = (0..steps * acts).map(|i| (i as f32 * 0.37).sin()).collect();
        data.push(("u", TensorData::new([steps, acts], u)?));
    }
    let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
    let mut outs = vec![out.positions, out.velocities];
    outs.extend(grads);
    device.compile(&g, &outs)?.run(&named)
}

fn mpm_systems() -> Vec<(&'static str, gradflux::Mpm)> {
    let base = gradflux::Mpm {
        grid: 40,
        dt: 2e-4,
        ..gradflux::Mpm::diffmpm_simple()
    };
    vec![
        ("corotated", base.clone()),
        (
            "fluid",
            gradflux::Mpm {
                material: gradflux::MpmMaterial::Fluid { lambda: 200.0 },
                ..base.clone()
            },
        ),
        (
            "plastic",
            gradflux::Mpm {
                material: gradflux::MpmMaterial::Plastic {
                    mu: 100.0,
                    lambda: 100.0,
                    compression: 0.01,
                    stretch: 0.005,
                },
                ..base.clone()
            },
        ),
        (
            "actuated",
            gradflux::Mpm {
                // A 7 × 7 block: three actuators over its rows, every third row passive.
                actuators: (0..49).map(|i| [0, 1, 2, u32::MAX][(i / 7) % 4]).collect(),
                actuation_strength: 4.0,
                ..base
            },
        ),
    ]
}

/// `mpm_run` on `device` agrees with the CPU reference: states to a few ulps (the adapter
/// may fuse multiply-adds); the position gradients sum the weights' derivatives, large
/// terms that mostly cancel, so those ulps grow to ~4e-4 there.
fn assert_mpm_matches_cpu(
    device: &Device,
    label: &str,
    system: &gradflux::Mpm,
    side: usize,
    options: RolloutOptions,
) {
    let want = mpm_run(&Device::Cpu, system, side, options.clone()).unwrap();
    let got = mpm_run(device, system, side, options).unwrap();
    let names = ["positions", "velocities", "dx0", "dv0", "du"];
    for (k, (w, a)) in want.iter().zip(&got).enumerate() {
        let tol = if k < 2 {
            Tolerance::new(1e-4, 1e-5)
        } else {
            Tolerance::new(1e-3, 1e-4)
        };
        gradflux::compare(w, a, tol)
            .unwrap_or_else(|m| panic!("{}D {label}, side {side}: {}: {m}", system.dim, names[k]));
    }
}

#[test]
fn mpm_rollouts_and_gradients_match_the_reference() {
    let Some(device) = gpu() else { return };
    for (label, system) in mpm_systems() {
        // 1 particle, then 7 × 7 (odd, crossing a workgroup); the actuated system is 7 × 7.
        let sides: &[usize] = if system.actuators.is_empty() {
            &[1, 7]
        } else {
            &[7]
        };
        for &side in sides {
            let options = RolloutOptions {
                observe: vec![5, 30],
                substeps: 2,
                ..RolloutOptions::new(30)
            };
            assert_mpm_matches_cpu(&device, label, &system, side, options);
        }
    }
}

#[test]
fn mpm_gradients_are_the_same_bits_every_run_and_every_interval() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let system = mpm_systems().swap_remove(0).1;
    for device in &devices {
        let run = |checkpoint| {
            let options = RolloutOptions {
                checkpoint,
                ..RolloutOptions::new(24)
            };
            mpm_run(device, &system, 6, options).unwrap()
        };
        let first = run(Checkpoint::Sqrt);
        for _ in 1..20 {
            assert_eq!(
                run(Checkpoint::Sqrt),
                first,
                "{}: runs differ",
                device.name()
            );
        }
        for checkpoint in [Checkpoint::All, Checkpoint::Every(7), Checkpoint::Every(24)] {
            assert_eq!(run(checkpoint), first, "{}: {checkpoint:?}", device.name());
        }
    }
}

/// The 3D systems of the parity tests: each material on a 16³ grid, and an actuated one.
fn mpm3_systems() -> Vec<(&'static str, gradflux::Mpm)> {
    mpm_systems()
        .into_iter()
        .map(|(label, system)| {
            let actuators = if system.actuators.is_empty() {
                vec![]
            } else {
                // A 5³ block: two actuators over its layers, every third layer passive.
                (0..125).map(|i| [0, 1, u32::MAX][(i / 25) % 3]).collect()
            };
            // A tighter yield band, so that the short 3D rollout yields.
            let material = match system.material {
                gradflux::MpmMaterial::Plastic { mu, lambda, .. } => {
                    gradflux::MpmMaterial::Plastic {
                        mu,
                        lambda,
                        compression: 1e-3,
                        stretch: 5e-4,
                    }
                }
                other => other,
            };
            let system = gradflux::Mpm {
                dim: 3,
                grid: 16,
                actuators,
                material,
                ..system
            };
            (label, system)
        })
        .collect()
}

#[test]
fn mpm_3d_rollouts_and_gradients_match_the_reference() {
    let Some(device) = gpu() else { return };
    for (label, system) in mpm3_systems() {
        // 1 particle, then 5³ (crossing a workgroup, several particles per cell).
        let sides: &[usize] = if system.actuators.is_empty() {
            &[1, 5]
        } else {
            &[5]
        };
        for &side in sides {
            let options = RolloutOptions {
                observe: vec![3, 12],
                substeps: 2,
                ..RolloutOptions::new(12)
            };
            assert_mpm_matches_cpu(&device, label, &system, side, options);
        }
    }
}

#[test]
fn mpm_3d_gradients_are_the_same_bits_every_run_and_every_interval() {
    let Some(device) = gpu() else { return };
    let system = mpm3_systems().swap_remove(0).1;
    let run = |checkpoint| {
        let options = RolloutOptions {
            checkpoint,
            ..RolloutOptions::new(10)
        };
        mpm_run(&device, &system, 4, options).unwrap()
    };
    let first = run(Checkpoint::Sqrt);
    for _ in 1..20 {
        assert_eq!(run(Checkpoint::Sqrt), first, "runs differ");
    }
    for checkpoint in [Checkpoint::All, Checkpoint::Every(3)] {
        assert_eq!(run(checkpoint), first, "{checkpoint:?}");
    }
}

/// With `clip`, every component of the state's cotangent is clamped after each substep
/// of the backward, the same way on both backends: the initial state's gradients stay
/// within the clip, and a clip no gradient reaches changes nothing.
#[test]
fn clipped_gradients_agree_and_stay_within_the_clip() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let base = cases().swap_remove(1);
    let unclipped = run(&base, &Device::Cpu).unwrap();
    for device in &devices {
        let mut clipped = cases().swap_remove(1);
        clipped.options.clip = Some(0.05);
        let got = run(&clipped, device).unwrap();
        let want = run(&clipped, &Device::Cpu).unwrap();
        for (k, (w, a)) in want.iter().zip(&got).enumerate() {
            gradflux::compare(w, a, Tolerance::new(2e-4, 2e-5))
                .unwrap_or_else(|m| panic!("{}: output {k}: {m}", device.name()));
        }
        for g in &got[2..4] {
            assert!(
                g.values::<f32>().unwrap().iter().all(|v| v.abs() <= 0.05),
                "{}: dx0 and dv0 stay within the clip",
                device.name()
            );
        }
        assert_ne!(got[2], unclipped[2], "the clip bites");
        let mut loose = cases().swap_remove(1);
        loose.options.clip = Some(1e30);
        let same = run(&loose, device).unwrap();
        let exact = run(&base, device).unwrap();
        assert_eq!(same, exact, "{}: a clip never reached", device.name());
    }
    let mpm = mpm_systems().swap_remove(0).1;
    for device in &devices {
        let options = RolloutOptions {
            clip: Some(0.01),
            ..RolloutOptions::new(12)
        };
        let got = mpm_run(device, &mpm, 5, options).unwrap();
        for g in &got[2..4] {
            assert!(
                g.values::<f32>().unwrap().iter().all(|v| v.abs() <= 0.01),
                "{}: MPM gradients stay within the clip",
                device.name()
            );
        }
    }
}

/// The opt-in float-atomic P2G agrees with the deterministic path to float rounding (its
/// node sums run in arrival order, so the bits may differ from run to run); without
/// `SHADER_FLOAT32_ATOMIC` the deterministic path runs instead.
#[test]
fn atomic_p2g_agrees_with_the_sorted_path() {
    let Some(device) = crate::common::gpu_having(gradflux::wgpu::Features::SHADER_FLOAT32_ATOMIC)
    else {
        return;
    };
    for (label, system) in mpm_systems() {
        let options = RolloutOptions {
            observe: vec![10, 40],
            ..RolloutOptions::new(40)
        };
        let sorted = mpm_run(&device, &system, 7, options.clone()).unwrap();
        let atomic_system = gradflux::Mpm {
            atomic_p2g: true,
            ..system
        };
        let atomic = mpm_run(&device, &atomic_system, 7, options).unwrap();
        for (k, (a, b)) in sorted.iter().zip(&atomic).take(2).enumerate() {
            gradflux::compare(a, b, Tolerance::new(1e-4, 1e-5))
                .unwrap_or_else(|m| panic!("{label}: output {k}: {m}"));
        }
    }
}

/// An MPM block with no gravity keeps its momentum (P2G and G2P transfer it exactly, up to
/// rounding), and one at rest, undeformed, stays exactly where it is; on both backends.
#[test]
fn an_mpm_block_keeps_its_momentum_and_a_resting_one_stays_put() {
    use gradflux::Graph;
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let system = gradflux::Mpm {
        grid: 32,
        gravity: 0.0,
        ..gradflux::Mpm::diffmpm_simple()
    };
    let side = 6;
    let n = side * side;
    let x0: Vec<f32> = (0..n)
        .flat_map(|k| {
            [
                0.4 + 0.015 * (k / side) as f32,
                0.4 + 0.015 * (k % side) as f32,
            ]
        })
        .collect();
    let mut rng = Rng::new(13);
    let moving: Vec<f32> = (0..2 * n).map(|_| rng.uniform(-0.2, 0.2) as f32).collect();
    let total = |v: &[f32]| -> [f64; 2] {
        let mut t = [0.0; 2];
        for (i, x) in v.iter().enumerate() {
            t[i % 2] += *x as f64;
        }
        t
    };
    for device in &devices {
        for (label, v0) in [("moving", moving.clone()), ("resting", vec![0.0f32; 2 * n])] {
            let g = Graph::new();
            let x = g.input("x0", [n, 2], DType::F32).unwrap();
            let v = g.input("v0", [n, 2], DType::F32).unwrap();
            let out = g
                .mpm_rollout(&system, x, v, None, RolloutOptions::new(40))
                .unwrap();
            let data = [
                ("x0", TensorData::new([n, 2], x0.clone()).unwrap()),
                ("v0", TensorData::new([n, 2], v0.clone()).unwrap()),
            ];
            let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
            let got = device
                .compile(&g, &[out.positions, out.velocities])
                .and_then(|mut e| e.run(&named))
                .unwrap();
            let (x, v) = (
                got[0].values::<f32>().unwrap(),
                got[1].values::<f32>().unwrap(),
            );
            if label == "resting" {
                assert_eq!(x, &x0[..], "{}: a resting block stays put", device.name());
                assert!(v.iter().all(|&c| c == 0.0), "{}: and still", device.name());
            } else {
                let (a, b) = (total(&v0), total(v));
                for k in 0..2 {
                    assert!(
                        (a[k] - b[k]).abs() < 1e-4,
                        "{}: momentum {k}: {} vs {}",
                        device.name(),
                        a[k],
                        b[k]
                    );
                }
                assert_ne!(x, &x0[..], "{}: the moving block moves", device.name());
            }
        }
    }
}

/// An MPM rollout's memory (forward and backward) grows as √T particle states with
/// `Checkpoint::Sqrt`, plus the grid.
#[test]
fn mpm_rollout_memory_grows_as_the_root_of_the_steps() {
    use gradflux::{Checkpoint, Graph};
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let system = gradflux::Mpm {
        grid: 32,
        ..gradflux::Mpm::diffmpm_simple()
    };
    let n = 400;
    // A particle's state (12 floats), and the per-node and per-particle buffers of a
    // substep (sort lists, grid, cotangents) as a fixed allowance.
    let state = (n * 12 * 4) as u64;
    let fixed = (32 * 32 * 16 * 4 + n * 64 * 4) as u64;
    for device in &devices {
        let peak = |steps, checkpoint| {
            let g = Graph::new();
            let x = g.input("x0", [n, 2], DType::F32).unwrap();
            let v = g.input("v0", [n, 2], DType::F32).unwrap();
            let options = RolloutOptions {
                checkpoint,
                ..RolloutOptions::new(steps)
            };
            let out = g.mpm_rollout(&system, x, v, None, options).unwrap();
            let grads = g.grad(g.sum_all(out.positions).unwrap(), &[v]).unwrap();
            device.compile(&g, &grads).unwrap().memory().peak_bytes
        };
        for steps in [100, 1_000, 10_000] {
            let k = Checkpoint::Sqrt.interval(steps).unwrap() as u64;
            let bytes = peak(steps, Checkpoint::Sqrt);
            assert!(
                bytes <= (2 * k + 8) * state + fixed,
                "{}: T = {steps}: {bytes} bytes",
                device.name()
            );
        }
        // (At T = 10 000, `All` would need a 192 MB checkpoint tensor, over lavapipe's
        // binding limit, which compile refuses by name.)
        assert!(
            peak(1_000, Checkpoint::All) >= 1_000 * state,
            "{}",
            device.name()
        );
    }
}

/// A 3D MPM block keeps its momentum without gravity, and one at rest stays exactly put,
/// on both backends.
#[test]
fn a_3d_mpm_block_keeps_its_momentum_and_a_resting_one_stays_put() {
    use gradflux::Graph;
    let system = gradflux::Mpm {
        dim: 3,
        grid: 16,
        gravity: 0.0,
        ..gradflux::Mpm::diffmpm_simple()
    };
    let n = 27;
    let x0: Vec<f32> = (0..n)
        .flat_map(|i| {
            let (a, b, c) = (i % 3, (i / 3) % 3, i / 9);
            [
                0.45 + 0.03 * a as f32,
                0.45 + 0.03 * b as f32,
                0.45 + 0.03 * c as f32,
            ]
        })
        .collect();
    let mut rng = Rng::new(21);
    let moving: Vec<f32> = (0..3 * n).map(|_| rng.uniform(-0.2, 0.2) as f32).collect();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let cases = [("moving", moving), ("resting", vec![0.0f32; 3 * n])];
    for ((label, v0), device) in cases
        .iter()
        .flat_map(|c| devices.iter().map(move |d| (c, d)))
    {
        let g = Graph::new();
        let x = g.input("x0", [n, 3], DType::F32).unwrap();
        let v = g.input("v0", [n, 3], DType::F32).unwrap();
        let out = g
            .mpm_rollout(&system, x, v, None, RolloutOptions::new(30))
            .unwrap();
        let data = [
            ("x0", TensorData::new([n, 3], x0.clone()).unwrap()),
            ("v0", TensorData::new([n, 3], v0.clone()).unwrap()),
        ];
        let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
        let got = device
            .compile(&g, &[out.positions, out.velocities])
            .and_then(|mut e| e.run(&named))
            .unwrap();
        let (xs, vs) = (
            got[0].values::<f32>().unwrap(),
            got[1].values::<f32>().unwrap(),
        );
        if *label == "resting" {
            assert_eq!(xs, &x0[..], "{}", device.name());
            assert!(vs.iter().all(|&c| c == 0.0), "{}", device.name());
        } else {
            for k in 0..3 {
                let before: f64 = v0.iter().skip(k).step_by(3).map(|&c| c as f64).sum();
                let after: f64 = vs.iter().skip(k).step_by(3).map(|&c| c as f64).sum();
                assert!(
                    (before - after).abs() < 1e-4,
                    "{}: momentum {k}: {before} vs {after}",
                    device.name()
                );
            }
        }
    }
}
