//! An app that already uses wgpu hands gradflux its own device and buffers: a buffer its
//! compute pass wrote goes through a gradflux graph into another of its buffers, which its
//! next pass reads, with no map and no host copy in between.

use gradflux::wgpu;
use gradflux::{DType, Graph, WgpuDevice};

mod common;

/// The app's own device, opened as an app would (wgpu's default limits), on the adapter
/// the test suite uses; `None` without an adapter (a failure under `CI=true`).
fn app_device(limits: wgpu::Limits) -> Option<(wgpu::Device, wgpu::Queue)> {
    let gpu = common::gpu()?;
    let name = gpu.as_wgpu()?.summary().info.name.clone();
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters
        .into_iter()
        .find(|a| a.get_info().name == name)
        .expect("the suite's adapter");
    let opened = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("the app"),
        required_limits: limits,
        ..Default::default()
    }));
    Some(opened.expect("the app opens its device"))
}

fn storage(
    device: &wgpu::Device,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

/// The app's compute pass: `out[i] = f(i, inp[i])` for a WGSL expression `f`.
fn app_pass(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    expr: &str,
    (inp, out): (&wgpu::Buffer, &wgpu::Buffer),
    n: u32,
) {
    let source = format!(
        "@group(0) @binding(0) var<storage, read> inp: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> out: array<f32>;\n\
         @compute @workgroup_size(64)\n\
         fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
             let i = id.x;\n\
             if i < {n}u {{ out[i] = {expr}; }}\n\
         }}\n"
    );
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app pass"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("app pass"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("app pass"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: inp.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(n.div_ceil(64), 1, 1);
    }
    queue.submit([encoder.finish()]);
}

/// The app reads its buffer back (only to check the test's result).
fn read(device: &wgpu::Device, queue: &wgpu::Queue, buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let bytes = (4 * n) as u64;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes);
    queue.submit([encoder.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let view = staging.slice(..).get_mapped_range().expect("mapped");
    bytemuck::cast_slice(&view).to_vec()
}

#[test]
fn an_app_buffer_round_trips_through_a_graph_with_no_host_copy() {
    let Some((device, queue)) = app_device(wgpu::Limits::default()) else {
        return;
    };
    let gf = WgpuDevice::from_wgpu(device.clone(), queue.clone()).unwrap();
    let n = 1000usize;
    let bytes = (4 * n) as u64;
    let copy_src = wgpu::BufferUsages::COPY_SRC;
    let copy_dst = wgpu::BufferUsages::COPY_DST;
    let a = storage(&device, "a", bytes, copy_src);
    let b = storage(&device, "b", bytes, copy_dst);
    let c = storage(&device, "c", bytes, copy_src);
    let seed = storage(&device, "seed", bytes, wgpu::BufferUsages::empty());

    // y = 3x + 1, compiled on the app's device.
    let g = Graph::new();
    let x = g.input("x", [n], DType::F32).unwrap();
    let three = g.scalar(3.0, DType::F32).unwrap();
    let one = g.scalar(1.0, DType::F32).unwrap();
    let y = g.add(g.mul(x, three).unwrap(), one).unwrap();
    let mut exe = gf.compile_wgpu(&g, &[y]).unwrap();

    for round in 0..3u32 {
        // The app writes a, gradflux turns a into b, the app turns b into c.
        let fill = format!("f32(i) * 0.5 + f32({round}) + 0.0 * inp[i]");
        app_pass(&device, &queue, &fill, (&seed, &a), n as u32);
        exe.run_on_buffers(&[(x, &a)], &[(y, &b)]).unwrap();
        app_pass(&device, &queue, "inp[i] + 1.0", (&b, &c), n as u32);
        let got = read(&device, &queue, &c, n);
        for (i, v) in got.iter().enumerate() {
            let want = (i as f32 * 0.5 + round as f32) * 3.0 + 1.0 + 1.0;
            assert_eq!(*v, want, "round {round}, element {i}");
        }
    }
}

#[test]
fn app_buffers_and_devices_that_cannot_serve_are_refused_by_name() {
    let Some((device, queue)) = app_device(wgpu::Limits::default()) else {
        return;
    };
    let gf = WgpuDevice::from_wgpu(device.clone(), queue).unwrap();
    let g = Graph::new();
    let x = g.input("x", [10], DType::F32).unwrap();
    let y = g.neg(x).unwrap();
    let mut exe = gf.compile_wgpu(&g, &[y]).unwrap();
    let ok_in = storage(&device, "in", 40, wgpu::BufferUsages::COPY_SRC);
    let ok_out = storage(&device, "out", 40, wgpu::BufferUsages::COPY_DST);
    let no_copy = storage(&device, "no copy", 40, wgpu::BufferUsages::empty());
    let small = storage(&device, "small", 16, wgpu::BufferUsages::COPY_SRC);
    let err = |r: gradflux::Result<()>| r.unwrap_err().to_string();
    let e = err(exe.run_on_buffers(&[(x, &no_copy)], &[(y, &ok_out)]));
    assert!(e.contains("input `x` lacks BufferUsages::COPY_SRC"), "{e}");
    let e = err(exe.run_on_buffers(&[(x, &small)], &[(y, &ok_out)]));
    assert!(e.contains("input `x` is a buffer of 16 bytes"), "{e}");
    let e = err(exe.run_on_buffers(&[(x, &ok_in)], &[(y, &no_copy)]));
    assert!(e.contains("output 0 lacks BufferUsages::COPY_DST"), "{e}");
    let e = err(exe.run_on_buffers(&[], &[(y, &ok_out)]));
    assert!(e.contains("`x`"), "{e}");
    let e = err(exe.run_on_buffers(&[(y, &ok_in)], &[]));
    assert!(e.contains("not an input"), "{e}");
    let e = err(exe.run_on_buffers(&[(x, &ok_in), (x, &ok_in)], &[]));
    assert!(e.contains("given twice"), "{e}");

    // A device opened with the downlevel limits has 4 storage buffers per stage.
    let (low, low_queue) = app_device(wgpu::Limits::downlevel_defaults()).unwrap();
    let e = WgpuDevice::from_wgpu(low, low_queue)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("max_storage_buffers_per_shader_stage: has 4, needs 8"),
        "{e}"
    );
}
