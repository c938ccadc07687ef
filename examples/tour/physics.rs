//! The tour's second stop: differentiable physics. A mass-spring block dropped on the
//! ground and an MLS-MPM block thrown through the air, each a single rollout node with its
//! checkpointed backward, run on the device and checked against the CPU reference.

use gradflux::{
    compare, DType, Device, Graph, GroundContact, MassSpring, Mpm, Result, RolloutOptions,
    SpringValues, Tensor, TensorData, Tolerance,
};

/// A graph's outputs and its named inputs.
type Built = (Vec<Tensor>, Vec<(&'static str, TensorData)>);

/// Builds one stop's graph.
type Build = fn(&Graph) -> Result<Built>;

/// The springs' rollout: the final positions and the gradients of their sum in the
/// initial positions and the stiffnesses.
fn springs(g: &Graph) -> Result<Built> {
    let lattice = MassSpring::lattice(&[4, 3], 0.05, [0.2, 0.1, 0.0], 1e-3);
    let mut system = lattice.system;
    system.ground = Some(GroundContact {
        normal: [0.0, 1.0, 0.0],
        offset: 0.0,
        radius: 0.0,
        ke: 2e3,
        kd: 5.0,
        kf: 20.0,
        mu: 0.5,
    });
    let (n, s) = (system.particles(), system.springs.len());
    let x0 = g.input("x0", [n, 2], DType::F32)?;
    let v0 = g.input("v0", [n, 2], DType::F32)?;
    let values = SpringValues {
        rest: g.input("rest", [s], DType::F32)?,
        stiffness: g.input("k", [s], DType::F32)?,
        damping: g.input("c", [s], DType::F32)?,
    };
    let out = g.mass_spring_rollout(&system, x0, v0, values, None, RolloutOptions::new(300))?;
    let grads = g.grad(g.sum_all(out.positions)?, &[x0, values.stiffness])?;
    let data = vec![
        ("x0", TensorData::new([n, 2], lattice.positions)?),
        ("v0", TensorData::zeros([n, 2], DType::F32)),
        ("rest", TensorData::new([s], lattice.rest)?),
        ("k", TensorData::new([s], vec![400.0f32; s])?),
        ("c", TensorData::new([s], vec![1.0f32; s])?),
    ];
    Ok((vec![out.positions, grads[0], grads[1]], data))
}

/// The MPM throw: the final positions and the gradient of their sum in the initial
/// velocities.
fn mpm(g: &Graph) -> Result<Built> {
    let system = Mpm {
        grid: 64,
        ..Mpm::diffmpm_simple()
    };
    let side = 10;
    let n = side * side;
    let x0: Vec<f32> = (0..n)
        .flat_map(|k| {
            [
                0.2 + 0.007 * (k / side) as f32,
                0.3 + 0.007 * (k % side) as f32,
            ]
        })
        .collect();
    let x = g.input("mx0", [n, 2], DType::F32)?;
    let v = g.input("mv0", [n, 2], DType::F32)?;
    let out = g.mpm_rollout(&system, x, v, None, RolloutOptions::new(100))?;
    let grads = g.grad(g.sum_all(out.positions)?, &[v])?;
    let data = vec![
        ("mx0", TensorData::new([n, 2], x0)?),
        ("mv0", TensorData::new([n, 2], vec![0.8f32; 2 * n])?),
    ];
    Ok((vec![out.positions, grads[0]], data))
}

/// Runs both on `device` and the CPU reference; prints and returns whether they agree.
pub fn stop(device: &Device) -> Result<bool> {
    println!("gradflux tour: differentiable physics (one rollout node each, with its backward)");
    let mut ok = true;
    let stops: [(&str, Build); 2] = [("mass-spring", springs), ("mpm", mpm)];
    for (label, build) in stops {
        let g = Graph::new();
        let (outs, data) = build(&g)?;
        let named: Vec<(&str, &TensorData)> = data.iter().map(|(k, d)| (*k, d)).collect();
        let t = std::time::Instant::now();
        let got = device.compile(&g, &outs)?.run(&named)?;
        let took = t.elapsed();
        let want = Device::Cpu.compile(&g, &outs)?.run(&named)?;
        for (k, (w, a)) in want.iter().zip(&got).enumerate() {
            let what = if k == 0 { "states" } else { "gradient" };
            match compare(w, a, Tolerance::new(1e-3, 1e-4)) {
                Ok(()) => println!(
                    "PASS {label:<12} {what:<9} {} {} ({:.1} ms with compile)",
                    a.dtype(),
                    a.shape(),
                    took.as_secs_f64() * 1e3
                ),
                Err(m) => {
                    ok = false;
                    println!("FAIL {label:<12} {what:<9} {m}");
                }
            }
        }
    }
    Ok(ok)
}
