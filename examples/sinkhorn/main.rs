//! Registers one point cloud onto another by gradient flow on the debiased Sinkhorn
//! divergence: each step solves three entropic OT problems between the clouds (online,
//! without a cost matrix), differentiates the divergence with respect to the source points
//! (envelope theorem), and moves every point against its gradient. Every few steps it
//! writes a PNG frame of both clouds and each source point's strongest match in the plan.
//!
//! ```text
//! cargo run --release --example sinkhorn                      # 40 steps into sinkhorn_frames/
//! cargo run --release --example sinkhorn -- 100 out_dir       # steps, frame directory
//! ```

mod frames;

use std::path::PathBuf;

use gradflux::{Device, Graph, PointCost, Result, SinkhornOptions, TensorData};

/// Source points: a ring. Target points: two blobs. Deterministic.
fn clouds(n: usize, m: usize) -> (Vec<f32>, Vec<f32>) {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let ring = (0..n)
        .flat_map(|i| {
            let t = i as f32 / n as f32 * std::f32::consts::TAU;
            let r = 0.3 + 0.02 * uniform();
            [0.5 + r * t.cos(), 0.5 + r * t.sin()]
        })
        .collect();
    let blobs = (0..m)
        .flat_map(|j| {
            let (cx, cy) = if j % 2 == 0 { (0.25, 0.7) } else { (0.75, 0.3) };
            // A sum of uniforms: roughly Gaussian, bounded.
            let mut noise = || (uniform() + uniform() + uniform() - 1.5) * 0.08;
            [cx + noise(), cy + noise()]
        })
        .collect();
    (ring, blobs)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(40);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "sinkhorn_frames".into()));
    std::fs::create_dir_all(&dir).map_err(|e| gradflux::Error::Graph(e.to_string()))?;
    let (n, m) = (300, 400);
    let (mut x, y) = clouds(n, m);
    let uniform = |len: usize| TensorData::new([len], vec![1.0 / len as f32; len]);
    let (a, b) = (uniform(n)?, uniform(m)?);
    let y = TensorData::new([m, 2], y)?;

    // One graph, compiled once: the divergence, its gradient in x, and each source
    // point's strongest match in the x→y plan (for the frames).
    let g = Graph::new();
    let (xt, at) = (
        g.input("x", [n, 2], gradflux::DType::F32)?,
        g.input("a", [n], gradflux::DType::F32)?,
    );
    let (yt, bt) = (
        g.input("y", [m, 2], gradflux::DType::F32)?,
        g.input("b", [m], gradflux::DType::F32)?,
    );
    let options = SinkhornOptions::new(0.002, 2000).with_tolerance(1e-3);
    let divergence = g.sinkhorn_divergence((xt, at), (yt, bt), PointCost::SqEuclidean, options)?;
    let dx = g.grad(divergence, &[xt])?[0];
    let matching = g.sinkhorn_points(xt, yt, at, bt, None, PointCost::SqEuclidean, options)?;
    let strongest = g.argmax(g.ot_plan(&matching)?, -1)?;
    let iterations = matching
        .iterations
        .expect("the loop reports its iterations");

    let device = Device::auto()?;
    println!("sinkhorn flow of {n} points onto {m} on {}", device.name());
    let mut exe = device.compile(&g, &[divergence, dx, strongest, iterations])?;
    // A Lagrangian step: the gradient of point i carries its weight 1/n, so scale it back.
    let lr = 0.1 * n as f32;
    let started = std::time::Instant::now();
    for step in 0..=steps {
        let xd = TensorData::new([n, 2], x.clone())?;
        let out = exe.run(&[("x", &xd), ("a", &a), ("y", &y), ("b", &b)])?;
        let (s, grad) = (out[0].to_f64_vec()[0], out[1].values::<f32>()?);
        if step % 5 == 0 || step == steps {
            let iters = out[3].values::<u32>()?[0];
            println!("step {step:3}: divergence {s:.6}, matching solved in {iters} iterations");
            let mut canvas = frames::Canvas::new();
            let yv = y.values::<f32>()?;
            for (i, &j) in out[2].values::<u32>()?.iter().enumerate() {
                let j = j as usize;
                canvas.line([x[2 * i], x[2 * i + 1]], [yv[2 * j], yv[2 * j + 1]]);
            }
            canvas.points(yv, false);
            canvas.points(&x, true);
            let path = dir.join(format!("frame_{step:03}.png"));
            let title = format!("step {step}: sinkhorn divergence {s:.6}");
            canvas
                .save(&path, &title)
                .map_err(|e| gradflux::Error::Graph(format!("writing {}: {e}", path.display())))?;
        }
        if step < steps {
            for (xi, gi) in x.iter_mut().zip(grad) {
                *xi -= lr * gi;
            }
        }
    }
    println!(
        "{steps} steps in {:.2} s; frames in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
