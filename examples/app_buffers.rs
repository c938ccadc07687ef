//! An app that already runs its own wgpu device keeps a particle simulation's state in its
//! own buffers, and asks gradflux for the forces each frame: gradflux differentiates an
//! energy (springs to the origin plus a soft pairwise repulsion) to get them, reading the
//! app's position buffer and writing the app's force buffer, and the app's own compute
//! pass integrates. Nothing crosses to the host until the app reads its result at the end,
//! which is then checked against the same loop run on gradflux's CPU backend.
//!
//! ```sh
//! cargo run --release --example app_buffers            # 256 particles, 200 frames
//! cargo run --release --example app_buffers -- 500 50  # particles, frames
//! ```

use std::process::ExitCode;

use gradflux::wgpu;
use gradflux::{DType, Device, Graph, Tensor, TensorData, WgpuDevice};

const DT: f32 = 0.01;
const USAGE: &str = "usage: app_buffers [PARTICLES (≥ 2, default 256)] [FRAMES (default 200)]";

/// The forces −∇E(x) of E = ½ Σ|xᵢ|² + 0.05 Σᵢⱼ exp(−|xᵢ − xⱼ|² / 0.1), as a graph.
fn force_graph(n: usize) -> gradflux::Result<(Graph, Tensor, Tensor)> {
    let g = Graph::new();
    let x = g.input("x", [n, 2], DType::F32)?;
    let s = |v: f64| g.scalar(v, DType::F32);
    let sq = g.sum_keepdim(g.mul(x, x)?, 1)?;
    let gram = g.matmul(x, g.transpose(x, 0, 1)?)?;
    let d2 = g.sub(g.add(sq, g.transpose(sq, 0, 1)?)?, g.mul(s(2.0)?, gram)?)?;
    let repulsion = g.sum_all(g.exp(g.div(g.neg(d2)?, s(0.1)?)?)?)?;
    let energy = g.add(g.mul(s(0.5)?, g.sum_all(sq)?)?, g.mul(s(0.05)?, repulsion)?)?;
    let grad = g.grad(energy, &[x])?.remove(0);
    let force = g.neg(grad)?;
    Ok((g, x, force))
}

/// Particles on a small grid, at rest.
fn start(n: usize) -> Vec<f32> {
    let side = (n as f64).sqrt().ceil() as usize;
    (0..n)
        .flat_map(|i| [0.3 * (i % side) as f32, 0.3 * (i / side) as f32])
        .collect()
}

/// The app's integrator: v += dt·f, v *= 0.98, x += dt·v, in its own pass.
const INTEGRATE: &str = "
@group(0) @binding(0) var<storage, read> force: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read_write> pos: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> vel: array<vec2<f32>>;
override N: u32;
override DT: f32;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= N { return; }
    vel[i] = (vel[i] + DT * force[i]) * 0.98;
    pos[i] = pos[i] + DT * vel[i];
}";

/// The same frame on the host, from forces the CPU backend computed.
fn integrate_on_host(x: &mut [f32], v: &mut [f32], f: &[f32]) {
    for k in 0..x.len() {
        v[k] = (v[k] + DT * f[k]) * 0.98;
        x[k] += DT * v[k];
    }
}

struct App {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    pos: wgpu::Buffer,
    force: wgpu::Buffer,
    n: usize,
}

impl App {
    /// Opens the app's device (as an app would, asking for gradflux's required limits) and
    /// its buffers and pipeline.
    fn new(n: usize, x0: &[f32]) -> Result<App, String> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
            .map_err(|e| format!("no wgpu adapter for the app ({e})"))?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("app"),
            required_limits: gradflux::required_limits(),
            ..Default::default()
        }))
        .map_err(|e| format!("opening the app's device: {e}"))?;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (8 * n) as u64,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let pos = buffer(
            "pos",
            wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        );
        let vel = buffer("vel", wgpu::BufferUsages::empty());
        let force = buffer("force", wgpu::BufferUsages::COPY_DST);
        queue.write_buffer(&pos, 0, bytemuck::cast_slice(x0));
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("integrate"),
            source: wgpu::ShaderSource::Wgsl(INTEGRATE.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("integrate"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[("N", n as f64), ("DT", DT as f64)],
                ..Default::default()
            },
            cache: None,
        });
        let entries: Vec<wgpu::BindGroupEntry> = [&force, &pos, &vel]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("integrate"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(App {
            device,
            queue,
            pipeline,
            group,
            pos,
            force,
            n,
        })
    }

    fn integrate(&self) {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.group, &[]);
            pass.dispatch_workgroups(self.n.div_ceil(64) as u32, 1, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// The one readback, at the end.
    fn positions(&self) -> Result<Vec<f32>, String> {
        let bytes = (8 * self.n) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.pos, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("waiting for the app's device: {e}"))?;
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| format!("reading the positions: {e}"))?;
        Ok(bytemuck::cast_slice(&view).to_vec())
    }
}

fn args() -> Result<(usize, usize), String> {
    let mut nums = vec![];
    for a in std::env::args().skip(1) {
        if a == "-h" || a == "--help" {
            return Err(String::new());
        }
        nums.push(
            a.parse::<usize>()
                .map_err(|_| format!("`{a}` is not a count"))?,
        );
    }
    let n = nums.first().copied().unwrap_or(256);
    let frames = nums.get(1).copied().unwrap_or(200);
    if n < 2 || nums.len() > 2 {
        return Err("expected at most two counts, with at least 2 particles".into());
    }
    Ok((n, frames))
}

fn run(n: usize, frames: usize) -> Result<(), String> {
    let x0 = start(n);
    let app = App::new(n, &x0)?;
    let gf =
        WgpuDevice::from_wgpu(app.device.clone(), app.queue.clone()).map_err(|e| e.to_string())?;
    println!("app device: {}", gf.summary().describe());
    let (graph, x, force) = force_graph(n).map_err(|e| e.to_string())?;
    let mut exe = gf
        .compile_wgpu(&graph, &[force])
        .map_err(|e| e.to_string())?;
    for _ in 0..frames {
        exe.run_on_buffers(&[(x, &app.pos)], &[(force, &app.force)])
            .map_err(|e| e.to_string())?;
        app.integrate();
    }
    let got = app.positions()?;

    // The same loop with the forces from the CPU reference and the integrator on the host.
    let mut cpu = Device::Cpu
        .compile(&graph, &[force])
        .map_err(|e| e.to_string())?;
    let (mut xs, mut vs) = (x0, vec![0.0f32; 2 * n]);
    for _ in 0..frames {
        let data = TensorData::new([n, 2], xs.clone()).map_err(|e| e.to_string())?;
        let f = cpu.run(&[("x", &data)]).map_err(|e| e.to_string())?;
        let f = f[0].values::<f32>().map_err(|e| e.to_string())?;
        integrate_on_host(&mut xs, &mut vs, f);
    }
    let worst = got
        .iter()
        .zip(&xs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let radius = got
        .chunks(2)
        .map(|p| p[0].hypot(p[1]))
        .fold(0.0f32, f32::max);
    println!("{n} particles, {frames} frames: outermost at radius {radius:.4}");
    println!("largest difference from the CPU reference: {worst:.2e}");
    if worst > 1e-3 {
        return Err(format!(
            "the app's result differs from the CPU reference by {worst}"
        ));
    }
    println!("CPU reference check: PASS");
    Ok(())
}

fn main() -> ExitCode {
    match args().and_then(|(n, frames)| run(n, frames)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("app_buffers: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
