//! The anchors' update orders, reproduced: a small system stepped by Warp 1.8's
//! `warp.sim` semi-implicit Euler (springs with damping, a pinned particle, gravity, ground
//! contact with friction) is matched by `MassSpring` configured as Warp, step by step; the
//! fixture holds Warp's own f32 values (`tests/fixtures/warp_mass_spring.py` writes it).

use std::collections::HashMap;

use gradflux::{
    DType, Device, Graph, GroundContact, MassSpring, RolloutOptions, SpringForm, SpringValues,
    TensorData,
};

use crate::common::gpu;

/// The fixture's lines by name: f32 values from their hex bits (integers for `springs`).
fn fixture(text: &str) -> HashMap<String, Vec<String>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            let name = words.next().expect("a name");
            (name, words.collect())
        })
        .collect()
}

fn floats(f: &HashMap<String, Vec<String>>, name: &str) -> Vec<f32> {
    f[name]
        .iter()
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).expect("hex bits")))
        .collect()
}

/// Distance in units in the last place between two finite f32 values.
fn ulps(a: f32, b: f32) -> u32 {
    let key = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            0x8000_0000 - b
        }
    };
    (key(a) - key(b)).unsigned_abs() as u32
}

#[test]
fn warp_semi_implicit_euler_is_reproduced_step_by_step() {
    let f = fixture(include_str!("../fixtures/warp_mass_spring.txt"));
    let steps: usize = f["steps"][0].parse().unwrap();
    let n: usize = f["particles"][0].parse().unwrap();
    let ends: Vec<u32> = f["springs"].iter().map(|s| s.parse().unwrap()).collect();
    let springs: Vec<[u32; 2]> = ends.chunks(2).map(|c| [c[0], c[1]]).collect();
    let (ground, contact) = (floats(&f, "ground"), floats(&f, "contact"));
    let gravity = floats(&f, "gravity");
    let mut system = MassSpring::new(3, n, springs.clone(), floats(&f, "dt")[0]);
    system.form = SpringForm::Warp;
    system.inv_mass = floats(&f, "inv_mass");
    system.gravity = [gravity[0], gravity[1], gravity[2]];
    system.max_velocity = Some(floats(&f, "max_velocity")[0]);
    system.ground = Some(GroundContact {
        normal: [ground[0], ground[1], ground[2]],
        offset: ground[3],
        radius: floats(&f, "radius")[0],
        ke: contact[0],
        kd: contact[1],
        kf: contact[2],
        mu: contact[3],
    });
    let s = springs.len();
    let g = Graph::new();
    let x0 = g.input("x0", [n, 3], DType::F32).unwrap();
    let v0 = g.input("v0", [n, 3], DType::F32).unwrap();
    let values = SpringValues {
        rest: g.input("rest", [s], DType::F32).unwrap(),
        stiffness: g.input("k", [s], DType::F32).unwrap(),
        damping: g.input("c", [s], DType::F32).unwrap(),
    };
    let options = RolloutOptions {
        observe: (1..=steps).collect(),
        ..RolloutOptions::new(steps)
    };
    let out = g
        .mass_spring_rollout(&system, x0, v0, values, None, options)
        .unwrap();
    let data = |name: &str, shape: Vec<usize>| TensorData::new(shape, floats(&f, name)).unwrap();
    let inputs = [
        ("x0", data("x0", vec![n, 3])),
        ("v0", data("v0", vec![n, 3])),
        ("rest", data("rest", vec![s])),
        ("k", data("stiffness", vec![s])),
        ("c", data("damping", vec![s])),
    ];
    let named: Vec<(&str, &TensorData)> = inputs.iter().map(|(k, d)| (*k, d)).collect();
    let warp_x: Vec<f32> = (1..=steps)
        .flat_map(|t| floats(&f, &format!("x{t}")))
        .collect();
    let warp_v: Vec<f32> = (1..=steps)
        .flat_map(|t| floats(&f, &format!("v{t}")))
        .collect();

    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let got = device
            .compile(&g, &[out.positions, out.velocities])
            .and_then(|mut e| e.run(&named))
            .unwrap();
        for (what, got, want) in [("x", &got[0], &warp_x), ("v", &got[1], &warp_v)] {
            let got = got.values::<f32>().unwrap();
            let worst = got
                .iter()
                .zip(want.iter())
                .enumerate()
                .map(|(i, (a, b))| (ulps(*a, *b), i))
                .max()
                .unwrap();
            let exact = got.iter().zip(want.iter()).filter(|(a, b)| a == b).count();
            eprintln!(
                "{}: {what}: {exact} of {} values equal to Warp's bits, worst {} ulp at {}",
                device.name(),
                got.len(),
                worst.0,
                worst.1
            );
            // The CPU reference computes Warp's formulas in Warp's order: the same bits. A
            // GPU may fuse or round its square roots differently (lavapipe matches exactly).
            let allowed = if matches!(device, Device::Cpu) {
                0
            } else {
                256
            };
            assert!(
                worst.0 <= allowed,
                "{}: {what}[{}] is {} ulp from Warp's",
                device.name(),
                worst.1,
                worst.0
            );
        }
    }
}

/// DiffTaichi's `mass_spring_simple` (its kernels run by Taichi 1.7 on the CPU in f32; see
/// `tests/fixtures/difftaichi_mass_spring.py`): `SpringForm::DiffTaichi` with its `+ 1e-4`,
/// velocity damping and wall friction reproduces every state, and the gradient of its
/// area loss in the rest lengths agrees with Taichi's autodiff.
#[test]
fn difftaichi_mass_spring_simple_is_reproduced() {
    let f = fixture(include_str!("../fixtures/difftaichi_mass_spring.txt"));
    let steps: usize = f["steps"][0].parse().unwrap();
    let mut system = MassSpring::new(2, 3, vec![[0, 1], [1, 2], [2, 0]], 1e-3);
    system.form = SpringForm::DiffTaichi { eps: 1e-4 };
    system.gravity = [0.0; 3];
    system.velocity_damping = 20.0;
    system.wall = Some(gradflux::WallFriction {
        axis: 0,
        position: 0.4,
        friction: 0.01,
    });
    let g = Graph::new();
    let x0 = g.input("x0", [3, 2], DType::F32).unwrap();
    let v0 = g.input("v0", [3, 2], DType::F32).unwrap();
    let rest = g.input("rest", [3], DType::F32).unwrap();
    let values = SpringValues {
        rest,
        stiffness: g.input("k", [3], DType::F32).unwrap(),
        damping: g.input("c", [3], DType::F32).unwrap(),
    };
    let options = RolloutOptions {
        observe: (1..=steps).collect(),
        ..RolloutOptions::new(steps)
    };
    let out = g
        .mass_spring_rollout(&system, x0, v0, values, None, options)
        .unwrap();
    let taichi_x: Vec<f32> = (1..=steps)
        .flat_map(|t| floats(&f, &format!("x{t}")))
        .collect();
    let taichi_v: Vec<f32> = (1..=steps)
        .flat_map(|t| floats(&f, &format!("v{t}")))
        .collect();

    // The area loss's gradient in the last positions, from Taichi's own last state: the
    // loss Σ w ⊙ x_T has the same gradient in the rest lengths as the area loss.
    let last: Vec<f64> = taichi_x[taichi_x.len() - 6..]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let (p, q, r) = ([last[0], last[1]], [last[2], last[3]], [last[4], last[5]]);
    let signed = 0.5 * ((p[0] - q[0]) * (p[1] - r[1]) - (p[1] - q[1]) * (p[0] - r[0]));
    let area = signed.abs();
    let loss = (area - 0.1).powi(2);
    assert!(
        (loss - floats(&f, "loss")[0] as f64).abs() <= 1e-6 * loss,
        "the area loss {loss} vs Taichi's"
    );
    let d = 2.0 * (area - 0.1) * signed.signum() * 0.5;
    let w = [
        d * (q[1] - r[1]),
        d * (r[0] - q[0]),
        -d * (p[1] - r[1]),
        d * (p[0] - r[0]),
        d * (p[1] - q[1]),
        -d * (p[0] - q[0]),
    ];
    let mut weights = vec![0.0f32; steps * 6];
    for (k, w) in w.iter().enumerate() {
        weights[(steps - 1) * 6 + k] = *w as f32;
    }
    let weights = g
        .constant(TensorData::new([steps, 3, 2], weights).unwrap())
        .unwrap();
    let linear = g.sum_all(g.mul(out.positions, weights).unwrap()).unwrap();
    let rest_grad = g.grad(linear, &[rest]).unwrap()[0];

    let data = |name: &str| TensorData::new([3], floats(&f, name)).unwrap();
    let inputs = [
        ("x0", TensorData::new([3, 2], floats(&f, "x0")).unwrap()),
        ("v0", TensorData::new([3, 2], vec![0.0f32; 6]).unwrap()),
        ("rest", data("rest")),
        ("k", TensorData::new([3], vec![10.0f32; 3]).unwrap()),
        ("c", TensorData::new([3], vec![0.0f32; 3]).unwrap()),
    ];
    let named: Vec<(&str, &TensorData)> = inputs.iter().map(|(k, d)| (*k, d)).collect();
    let taichi_grad = floats(&f, "rest_grad");
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let got = device
            .compile(&g, &[out.positions, out.velocities, rest_grad])
            .and_then(|mut e| e.run(&named))
            .unwrap();
        let allowed = if matches!(device, Device::Cpu) {
            0
        } else {
            256
        };
        for (what, got, want) in [("x", &got[0], &taichi_x), ("v", &got[1], &taichi_v)] {
            let got = got.values::<f32>().unwrap();
            let (worst, at) = got
                .iter()
                .zip(want.iter())
                .enumerate()
                .map(|(i, (a, b))| (ulps(*a, *b), i))
                .max()
                .unwrap();
            assert!(
                worst <= allowed,
                "{}: {what}[{at}] is {worst} ulp from Taichi's",
                device.name()
            );
        }
        let grad = got[2].values::<f32>().unwrap();
        for (k, (a, b)) in grad.iter().zip(&taichi_grad).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * b.abs(),
                "{}: d loss / d rest[{k}] = {a}, Taichi's {b}",
                device.name()
            );
        }
    }
}

/// DiffTaichi's `diffmpm_simple` (its kernels run by Taichi 1.7 on one CPU thread in f32
/// with fast math off, on a 30 × 30 block for 199 substeps; see
/// `tests/fixtures/difftaichi_mpm.py`): `Mpm::diffmpm_simple()` reproduces its states,
/// and the gradient of its loss in the initial velocity agrees with Taichi's autodiff.
#[test]
fn difftaichi_diffmpm_simple_is_reproduced() {
    let f = fixture(include_str!("../fixtures/difftaichi_mpm.txt"));
    let steps: usize = f["steps"][0].parse().unwrap();
    let n: usize = f["particles"][0].parse().unwrap();
    let init_v = floats(&f, "init_v");
    let g = Graph::new();
    let x0 = g.input("x0", [n, 2], DType::F32).unwrap();
    let v0 = g.input("v0", [n, 2], DType::F32).unwrap();
    let options = RolloutOptions {
        observe: vec![1, steps],
        ..RolloutOptions::new(steps)
    };
    let out = g
        .mpm_rollout(&gradflux::Mpm::diffmpm_simple(), x0, v0, None, options)
        .unwrap();
    // The loss ½|mean x_T − target|² has the gradient (mean x_T − target) / n in each
    // particle's last position: the same gradient as Σ w ⊙ x_T with those weights.
    let x_avg = floats(&f, "x_avg");
    let target = [0.3f32, 0.6];
    let mut w = vec![0.0f32; 2 * n * 2];
    for i in 0..n {
        for k in 0..2 {
            w[(n + i) * 2 + k] = (x_avg[k] - target[k]) / n as f32;
        }
    }
    let w = g.constant(TensorData::new([2, n, 2], w).unwrap()).unwrap();
    let linear = g.sum_all(g.mul(out.positions, w).unwrap()).unwrap();
    let dv0 = g.sum(g.grad(linear, &[v0]).unwrap()[0], 0).unwrap();
    let inputs = [
        ("x0", TensorData::new([n, 2], floats(&f, "x0")).unwrap()),
        ("v0", TensorData::new([n, 2], init_v.repeat(n)).unwrap()),
    ];
    let named: Vec<(&str, &TensorData)> = inputs.iter().map(|(k, d)| (*k, d)).collect();
    let want_x: Vec<f32> = [floats(&f, "x1"), floats(&f, "x_last")].concat();
    let want_v: Vec<f32> = [floats(&f, "v1"), floats(&f, "v_last")].concat();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let got = device
            .compile(&g, &[out.positions, out.velocities, dv0])
            .and_then(|mut e| e.run(&named))
            .unwrap();
        for (what, got, want) in [("x", &got[0], &want_x), ("v", &got[1], &want_v)] {
            let got = got.values::<f32>().unwrap();
            let (worst, at) = got
                .iter()
                .zip(want.iter())
                .enumerate()
                .map(|(i, (a, b))| (ulps(*a, *b), i))
                .max()
                .unwrap();
            let exact = got.iter().zip(want.iter()).filter(|(a, b)| a == b).count();
            eprintln!(
                "{}: {what}: {exact} of {} equal to Taichi's bits, worst {worst} ulp at {at}",
                device.name(),
                got.len()
            );
            // The CPU reference sums every node in particle order, as the serial anchor
            // does: the same bits. A GPU gathers in the same order but may fuse
            // multiply-adds, so its states drift by some ulps over 199 substeps (13 on lavapipe).
            let allowed = if matches!(device, Device::Cpu) {
                0
            } else {
                1 << 14
            };
            assert!(
                worst <= allowed,
                "{}: {what}[{at}] is {worst} ulp from Taichi's",
                device.name()
            );
        }
        let grad = got[2].values::<f32>().unwrap();
        for (k, (a, b)) in grad.iter().zip(floats(&f, "init_v_grad")).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * b.abs(),
                "{}: d loss / d init_v[{k}] = {a}, Taichi's {b}",
                device.name()
            );
        }
    }
}
