//! Mass-spring rollouts: gradients of every input (state, spring values, controls) against
//! central finite differences in f64, through each part of a substep — springs of both
//! forms, gravity, pinned particles, ground contact with friction, the speed limit, the
//! wall — over rollouts that cross no contact event (the loss is smooth there), and one
//! that does, to show why that matters.

use gradflux::{
    check_gradients, DType, GradCheck, GroundContact, MassSpring, RolloutOptions, SpringForm,
    WallFriction,
};

use crate::common::{spring_block, RolloutCase};

type Case = RolloutCase;

fn case(system: MassSpring, x0: Vec<f32>, rest: Vec<f32>, options: RolloutOptions) -> Case {
    let mut c = Case::new("rollout", system, x0, rest);
    c.options = options;
    c
}

/// The rollout's loss against central finite differences in every input.
fn check(case: &Case, label: &str) -> gradflux::GradCheckReport {
    let r = case.graph(DType::F64);
    let opts = GradCheck {
        eps: 1e-6,
        rel: 1e-5,
        abs: 1e-7,
    };
    check_gradients(&r.graph, r.loss, &r.named(), &r.inputs, opts)
        .unwrap_or_else(|e| panic!("{label}: {e}"))
}

#[test]
fn warp_springs_with_gravity_damping_and_a_pinned_particle() {
    let (mut system, x0, rest) = spring_block(&[3, 2], 0.1, [0.0, 1.0, 0.0], 2e-3);
    system.inv_mass[0] = 0.0;
    system.inv_mass[4] = 0.5;
    let mut case = case(system, x0, rest, RolloutOptions::new(8));
    case.options.substeps = 2;
    case.options.observe = vec![3, 8];
    // Stretch the block a little so every spring works.
    for (i, x) in case.x0.iter_mut().enumerate() {
        *x *= 1.0 + 0.03 * (i % 3) as f64;
    }
    case.v0 = (0..case.v0.len())
        .map(|i| 0.1 * ((i * 7) % 5) as f64 - 0.2)
        .collect();
    let report = check(&case, "warp springs");
    assert!(report.passed(), "{report:?}");
}

#[test]
fn ground_contact_with_sliding_friction_in_3d() {
    // A 2×2×2 block whose lower layer sits 5 mm into the ground and slides along x: every
    // substep has the same contacts, each in the viscous-friction branch.
    let (mut system, x0, rest) = spring_block(&[2, 2, 2], 0.1, [0.0, -0.005, 0.0], 1e-3);
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 1_000.0,
        kd: 10.0,
        kf: 1.0,
        mu: 0.5,
    });
    let mut case = case(system, x0, rest, RolloutOptions::new(10));
    case.v0 = (0..8)
        .flat_map(|i| [0.5 + 0.05 * i as f64, -0.01, 0.02 * (i % 3) as f64])
        .collect();
    let report = check(&case, "ground contact");
    assert!(report.passed(), "{report:?}");
}

#[test]
fn coulomb_capped_friction_and_the_speed_limit() {
    // One particle pressed into the ground, sliding fast: friction is capped at μ|fn|; and
    // one falling past the speed limit every substep.
    let mut system = MassSpring::new(2, 2, vec![], 1e-3);
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.5,
        radius: 0.0,
        ke: 500.0,
        kd: 2.0,
        kf: 100.0,
        mu: 0.3,
    });
    system.max_velocity = Some(2.0);
    let mut case = case(
        system,
        vec![0.0, -0.52, 1.0, 3.0],
        vec![],
        RolloutOptions::new(12),
    );
    case.v0 = vec![1.5, -0.1, 0.3, -2.5];
    let report = check(&case, "coulomb and v_max");
    assert!(report.passed(), "{report:?}");
}

#[test]
fn difftaichi_springs_actuated_with_velocity_damping_and_a_wall() {
    // DiffTaichi's triangle, one spring actuated by per-step controls, velocity damping,
    // and a fourth particle beyond the wall pushed into it while sliding along it.
    let mut system = MassSpring::new(2, 4, vec![[0, 1], [1, 2], [2, 0]], 1e-3);
    system.form = SpringForm::DiffTaichi { eps: 1e-4 };
    system.gravity = [0.3, 0.0, 0.0];
    system.velocity_damping = 20.0;
    system.wall = Some(WallFriction {
        axis: 0,
        position: 0.4,
        friction: 0.01,
    });
    system.actuators = vec![(1, 0.2)];
    let x0 = vec![0.3, 0.5, 0.3, 0.4, 0.4, 0.4, 0.45, 0.2];
    let rest = vec![0.1, 0.1, 0.1 * 2f32.sqrt()];
    let mut case = case(system, x0, rest, RolloutOptions::new(15));
    case.options.observe = vec![5, 15];
    case.v0 = vec![0.0, 0.1, -0.1, 0.0, 0.05, 0.0, 0.2, 3.0];
    case.rest = vec![0.12, 0.09, 0.15];
    case.controls = (0..15).map(|t| (t as f64 * 0.7).sin()).collect();
    let report = check(&case, "difftaichi");
    assert!(report.passed(), "{report:?}");
}

/// Across a contact event the loss has a kink: a particle that touches the ground during
/// the rollout changes the force law mid-way, and a finite difference taken across the
/// moment of touch disagrees with the gradient (which differentiates the path taken). That
/// is why the checks above keep their contacts fixed.
#[test]
fn a_rollout_across_a_contact_event_is_only_piecewise_smooth() {
    let mut system = MassSpring::new(2, 1, vec![], 1e-2);
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 1e4,
        kd: 0.0,
        kf: 0.0,
        mu: 0.0,
    });
    system.gravity = [0.0; 3];
    // Moving down at 1 m/s from 1e-9 above where its third step would land on the plane:
    // a step of 1e-6 in its height or speed decides whether it touches at step 3.
    let mut case = case(system, vec![0.0, 0.03], vec![], RolloutOptions::new(6));
    case.x0[1] += 1e-9;
    case.v0 = vec![0.3, -1.0];
    let report = check(&case, "contact event");
    assert!(
        !report.passed(),
        "the finite difference should cross the kink: {report:?}"
    );
    // The same rollout 5 mm higher touches at step 4, far from any kink: it agrees.
    case.x0[1] = 0.035;
    let report = check(&case, "contact, away from the event");
    assert!(report.passed(), "{report:?}");
}

/// The loss of an MPM rollout of `system` from `x0`, `v0` (a weighted sum of the
/// positions and velocities observed halfway and at the end) against central differences
/// in `x0`, `v0` and, when the system is actuated, the controls.
fn mpm_check(
    system: &gradflux::Mpm,
    (x0, v0): (Vec<f64>, Vec<f64>),
    steps: usize,
) -> gradflux::GradCheckReport {
    use gradflux::{Graph, TensorData};
    let d = system.dim;
    let n = x0.len() / d;
    let g = Graph::new();
    let x = g.input("x0", [n, d], DType::F64).unwrap();
    let v = g.input("v0", [n, d], DType::F64).unwrap();
    let options = RolloutOptions {
        observe: vec![steps / 2, steps],
        ..RolloutOptions::new(steps)
    };
    let acts = system.actuator_count();
    let controls = (acts > 0).then(|| g.input("u", [steps, acts], DType::F64).unwrap());
    let out = g.mpm_rollout(system, x, v, controls, options).unwrap();
    let mut rng = crate::common::Rng::new(4);
    let mut weighted = |t| {
        let w = crate::common::random(&mut rng, [2, n, d], DType::F64, -1.0, 1.0);
        g.sum_all(g.mul(t, g.constant(w).unwrap()).unwrap())
            .unwrap()
    };
    let loss = g
        .add(weighted(out.positions), weighted(out.velocities))
        .unwrap();
    let mut data = vec![
        ("x0", TensorData::new([n, d], x0).unwrap()),
        ("v0", TensorData::new([n, d], v0).unwrap()),
    ];
    let mut wrt = vec![x, v];
    if let Some(u) = controls {
        let values = (0..steps * acts).map(|i| (i as f64 * 0.9).sin()).collect();
        data.push(("u", TensorData::new([steps, acts], values).unwrap()));
        wrt.push(u);
    }
    let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
    let opts = GradCheck {
        eps: 1e-7,
        rel: 1e-5,
        abs: 1e-7,
    };
    check_gradients(&g, loss, &named, &wrt, opts).unwrap()
}

/// A small 2D MLS-MPM block: 4 × 4 particles on a 16 × 16 grid.
fn mpm_report(system: gradflux::Mpm, steps: usize) -> gradflux::GradCheckReport {
    let n = 16;
    let x0: Vec<f64> = (0..n)
        .flat_map(|i| [0.4 + 0.031 * (i % 4) as f64, 0.45 + 0.029 * (i / 4) as f64])
        .collect();
    let v0: Vec<f64> = (0..n)
        .flat_map(|i| [0.3 - 0.05 * (i % 3) as f64, -0.2 + 0.1 * (i % 5) as f64])
        .collect();
    mpm_check(&system, (x0, v0), steps)
}

fn small_mpm(material: gradflux::MpmMaterial) -> gradflux::Mpm {
    gradflux::Mpm {
        grid: 16,
        dt: 1e-3,
        material,
        ..gradflux::Mpm::diffmpm_simple()
    }
}

#[test]
fn mpm_fixed_corotated_gradients_match_finite_differences() {
    let system = small_mpm(gradflux::MpmMaterial::FixedCorotated {
        mu: 20.0,
        lambda: 30.0,
    });
    let report = mpm_report(system, 8);
    assert!(report.passed(), "{report:?}");
}

#[test]
fn mpm_fluid_gradients_match_finite_differences() {
    let system = small_mpm(gradflux::MpmMaterial::Fluid { lambda: 50.0 });
    let report = mpm_report(system, 8);
    assert!(report.passed(), "{report:?}");
}

#[test]
fn mpm_actuation_gradients_match_finite_differences() {
    // Two actuators over the block's columns, one passive column, with per-step controls.
    let mut system = small_mpm(gradflux::MpmMaterial::FixedCorotated {
        mu: 20.0,
        lambda: 30.0,
    });
    system.actuators = (0..16).map(|i| [0, 1, u32::MAX, 1][i % 4]).collect();
    system.actuation_strength = 4.0;
    let report = mpm_report(system, 8);
    assert!(report.passed(), "{report:?}");
}

#[test]
fn mpm_plastic_gradients_match_finite_differences() {
    // Tight limits, so the block's compression crosses into plasticity early and stays.
    let system = small_mpm(gradflux::MpmMaterial::Plastic {
        mu: 20.0,
        lambda: 30.0,
        compression: 0.002,
        stretch: 0.001,
    });
    let report = mpm_report(system, 8);
    assert!(report.passed(), "{report:?}");
}

/// A small 3D MLS-MPM block: 3 × 3 × 2 particles on a 12³ grid, 6 substeps.
fn mpm3_report(material: gradflux::MpmMaterial, actuated: bool) -> gradflux::GradCheckReport {
    let n = 18;
    let mut system = gradflux::Mpm {
        dim: 3,
        grid: 12,
        dt: 1e-3,
        material,
        ..gradflux::Mpm::diffmpm_simple()
    };
    if actuated {
        system.actuators = (0..n).map(|i| [0, u32::MAX, 1][i % 3]).collect();
        system.actuation_strength = 3.0;
    }
    let x0: Vec<f64> = (0..n)
        .flat_map(|i| {
            let (a, b, c) = (i % 3, (i / 3) % 3, i / 9);
            [
                0.42 + 0.037 * a as f64,
                0.45 + 0.031 * b as f64,
                0.47 + 0.043 * c as f64,
            ]
        })
        .collect();
    let v0: Vec<f64> = (0..3 * n)
        .map(|i| 0.3 * ((i * 7 % 11) as f64 / 11.0 - 0.5))
        .collect();
    mpm_check(&system, (x0, v0), 6)
}

#[test]
fn mpm_3d_gradients_match_finite_differences() {
    use gradflux::MpmMaterial;
    let materials = [
        (
            "corotated",
            MpmMaterial::FixedCorotated {
                mu: 20.0,
                lambda: 30.0,
            },
            false,
        ),
        ("fluid", MpmMaterial::Fluid { lambda: 40.0 }, false),
        (
            "plastic",
            MpmMaterial::Plastic {
                mu: 20.0,
                lambda: 30.0,
                compression: 0.002,
                stretch: 0.001,
            },
            false,
        ),
        (
            "actuated",
            MpmMaterial::FixedCorotated {
                mu: 20.0,
                lambda: 30.0,
            },
            true,
        ),
    ];
    for (label, material, actuated) in materials {
        let report = mpm3_report(material, actuated);
        assert!(report.passed(), "{label}: {report:?}");
    }
}
