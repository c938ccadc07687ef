//! Executables over many runs: buffer reuse, async runs, long launches and long graphs,
//! the pipeline cache, and device loss.

mod common;

use gradflux::{
    compare, CustomOp, DType, Device, Dispatch, Error, Graph, Tensor, TensorData, Tolerance,
    WgpuDevice, MAX_DISPATCHES_PER_SUBMIT,
};

use common::{check, gpu, random, Rng};

/// A graph with many intermediates of different sizes, so pooled buffers are shared.
fn busy_graph() -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.input("x", [33, 17], DType::F32).unwrap();
    let w = g.input("w", [17, 9], DType::F32).unwrap();
    let h = g.tanh(g.matmul(x, w).unwrap()).unwrap();
    let s = g.softmax(h, -1).unwrap();
    let m = g.max_keepdim(s, 0).unwrap();
    let d = g.sub(s, m).unwrap();
    let e = g.exp(d).unwrap();
    let t = g.transpose(e, 0, 1).unwrap();
    let r = g.sum(t, 1).unwrap();
    let a = g.argmax(h, 1).unwrap();
    (g, vec![r, a, s])
}

#[test]
fn one_executable_runs_100_times_with_changing_inputs() {
    let (g, outs) = busy_graph();
    let mut cpu = Device::Cpu.compile(&g, &outs).unwrap();
    let mut dev = gpu().map(|d| d.compile(&g, &outs).unwrap());
    let mut rng = Rng::new(100);
    for run in 0..100 {
        let x = random(&mut rng, [33, 17], DType::F32, -2.0, 2.0);
        let w = random(&mut rng, [17, 9], DType::F32, -1.0, 1.0);
        let ins = [("x", &x), ("w", &w)];
        let expected = cpu.run(&ins).unwrap();
        // The CPU executable reuses state too: a fresh compile must agree with it.
        let fresh = Device::Cpu.compile(&g, &outs).unwrap().run(&ins).unwrap();
        assert_eq!(
            expected, fresh,
            "run {run}: CPU executable kept stale state"
        );
        if let Some(exe) = dev.as_mut() {
            let actual = exe.run(&ins).unwrap();
            for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
                compare(e, a, Tolerance::new(1e-5, 1e-6))
                    .unwrap_or_else(|m| panic!("run {run} output {i}: {m}"));
            }
        }
    }
}

#[test]
fn async_run_matches_blocking_run() {
    let (g, outs) = busy_graph();
    let mut rng = Rng::new(101);
    let x = random(&mut rng, [33, 17], DType::F32, -2.0, 2.0);
    let w = random(&mut rng, [17, 9], DType::F32, -1.0, 1.0);
    let ins = [("x", &x), ("w", &w)];
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let mut exe = device.compile(&g, &outs).unwrap();
        let blocking = exe.run(&ins).unwrap();
        let asynchronous = pollster::block_on(exe.run_async(&ins)).unwrap();
        assert_eq!(blocking, asynchronous, "on {}", device.name());
    }
}

/// `run_async` waits for the device without spinning: the map callback wakes the future,
/// so it is polled a few times for a run that keeps lavapipe busy for many milliseconds
/// (a future that wakes itself on every poll would be polled thousands of times).
#[test]
fn an_async_run_is_woken_by_its_map_callback_not_polled_in_a_loop() {
    struct Counted<F> {
        inner: F,
        polls: usize,
    }
    impl<F: std::future::Future + Unpin> std::future::Future for Counted<F> {
        type Output = F::Output;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<F::Output> {
            self.polls += 1;
            std::pin::Pin::new(&mut self.inner).poll(cx)
        }
    }
    let Some(device) = gpu() else { return };
    let g = Graph::new();
    let x = g.input("x", [256, 256], DType::F32).unwrap();
    let mut y = x;
    for _ in 0..6 {
        y = g.tanh(g.matmul(y, x).unwrap()).unwrap();
    }
    let mut exe = device.compile(&g, &[y]).unwrap();
    let mut rng = Rng::new(103);
    let xs = random(&mut rng, [256, 256], DType::F32, -0.1, 0.1);
    let want = exe.run(&[("x", &xs)]).unwrap();
    let ins = [("x", &xs)];
    let mut run = Counted {
        inner: exe.run_async(&ins),
        polls: 0,
    };
    let got = pollster::block_on(&mut run).unwrap();
    assert!(run.polls <= 4, "polled {} times", run.polls);
    drop(run);
    assert_eq!(got, want);
}

#[test]
fn a_cancelled_async_run_leaves_the_executable_usable() {
    // Dropping a run_async future after it was polled (a timeout, `select!`) is ordinary
    // async use: the next run must work and give the right answer.
    let (g, outs) = busy_graph();
    let mut rng = Rng::new(102);
    let x = random(&mut rng, [33, 17], DType::F32, -2.0, 2.0);
    let w = random(&mut rng, [17, 9], DType::F32, -1.0, 1.0);
    let ins = [("x", &x), ("w", &w)];
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let mut exe = device.compile(&g, &outs).unwrap();
        let expected = exe.run(&ins).unwrap();
        for polls in [1, 2, 5] {
            {
                let mut fut = exe.run_async(&ins);
                for _ in 0..polls {
                    if fut.as_mut().poll(&mut cx).is_ready() {
                        break;
                    }
                }
            }
            assert_eq!(exe.run(&ins).unwrap(), expected, "on {}", device.name());
            let again = pollster::block_on(exe.run_async(&ins)).unwrap();
            assert_eq!(again, expected, "on {}", device.name());
        }
    }
}

#[test]
fn memory_report_shows_reuse_in_a_deep_chain() {
    let g = Graph::new();
    let x = g.input("x", [1024], DType::F32).unwrap();
    let mut y = x;
    for _ in 0..200 {
        y = g.sigmoid(y).unwrap();
    }
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let exe = device.compile(&g, &[y]).unwrap();
        let m = exe.memory();
        assert_eq!(m.total_value_bytes, 201 * 4096);
        assert_eq!(m.peak_bytes, 3 * 4096, "input + two ping-pong buffers");
        assert_eq!(m.scratch_bytes, 0);
    }
}

/// Multi-pass kernels' private buffers count towards the peak on wgpu.
#[test]
fn scratch_buffers_are_reported_in_memory() {
    let Some(gpu) = gpu() else { return };
    let g = Graph::new();
    let x = g.input("x", [2, 10_000], DType::F32).unwrap();
    let (values, _) = g.top_k(x, 8, -1).unwrap();
    let cpu = Device::Cpu.compile(&g, &[values]).unwrap().memory();
    let m = gpu.compile(&g, &[values]).unwrap().memory();
    // Two passes over 5 chunks of 2048 per row: 2 rows x 5 x 8 survivors as u32, and
    // the slot the first pass does not touch (a buffer's minimum, one vec4).
    assert_eq!(m.scratch_bytes, 2 * 5 * 8 * 4 + 16);
    assert_eq!(m.peak_bytes, cpu.peak_bytes + m.scratch_bytes);
}

#[test]
fn reductions_with_more_than_65535_workgroups_are_split() {
    // One workgroup per output row: 70_000 rows is past the per-dimension limit.
    let g = Graph::new();
    let x = g.input("x", [70_000, 3], DType::F32).unwrap();
    let s = g.sum(x, 1).unwrap();
    let a = g.argmax(x, 1).unwrap();
    let data = random(&mut Rng::new(102), [70_000, 3], DType::F32, -1.0, 1.0);
    check(
        "split reduce",
        &g,
        &[s, a],
        &[("x", &data)],
        Tolerance::new(1e-6, 1e-6),
    );
}

#[test]
fn custom_kernels_past_the_dispatch_limit_are_split() {
    let n: u64 = 70_000;
    let wgsl = format!(
        "@group(0) @binding(0) var<storage, read> x: array<u32>;
         @group(0) @binding(1) var<storage, read_write> y: array<u32>;
         @compute @workgroup_size(1)
         fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {{
             let i = gid.x + gid.y * nwg.x * 1u;
             if i < {n}u {{ y[i] = x[i] * 3u + i; }}
         }}"
    );
    let op = CustomOp::builder("times3_plus_i")
        .input([n as usize], DType::U32)
        .output([n as usize], DType::U32)
        .wgsl(
            wgsl,
            "main",
            Dispatch::Threads {
                threads: n,
                workgroup_size: 1,
            },
        )
        .cpu(|xs| {
            let x = xs[0].values::<u32>().map_err(|e| e.to_string())?;
            let y: Vec<u32> = x
                .iter()
                .enumerate()
                .map(|(i, v)| v * 3 + i as u32)
                .collect();
            TensorData::new([y.len()], y)
                .map(|t| vec![t])
                .map_err(|e| e.to_string())
        })
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [n as usize], DType::U32).unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let data = random(&mut Rng::new(103), [n as usize], DType::U32, 0.0, 1000.0);
    check("split custom", &g, &[y], &[("x", &data)], Tolerance::EXACT);
}

#[test]
fn graphs_longer_than_one_submission_run_in_order() {
    let g = Graph::new();
    let x = g.input("x", [64], DType::I32).unwrap();
    let one = g.scalar(1.0, DType::I32).unwrap();
    let mut y = x;
    for _ in 0..MAX_DISPATCHES_PER_SUBMIT + 100 {
        y = g.add(y, one).unwrap();
    }
    let data = random(&mut Rng::new(104), [64], DType::I32, -10.0, 10.0);
    let out = check("long chain", &g, &[y], &[("x", &data)], Tolerance::EXACT);
    let want: Vec<i32> = data
        .values::<i32>()
        .unwrap()
        .iter()
        .map(|v| v + (MAX_DISPATCHES_PER_SUBMIT + 100) as i32)
        .collect();
    assert_eq!(out[0].values::<i32>().unwrap(), want.as_slice());
}

#[test]
fn pipeline_cache_reuses_and_tells_kernels_apart() {
    let Some(Device::Wgpu(shared)) = gpu() else {
        return;
    };
    // A private device, so other tests' pipelines do not count.
    let dev = WgpuDevice::by_name(&shared.summary().info.name).unwrap();
    let build = |dtype: DType, exp: bool| {
        let g = Graph::new();
        let x = g.input("x", [10], dtype).unwrap();
        let y = if exp {
            g.exp(x).unwrap()
        } else {
            g.neg(x).unwrap()
        };
        (g, y)
    };
    let device = Device::Wgpu(dev.clone());
    let (g, y) = build(DType::F32, true);
    device.compile(&g, &[y]).unwrap();
    let after_first = dev.pipeline_count();
    assert_eq!(after_first, 1);
    let (g, y) = build(DType::F32, true);
    device.compile(&g, &[y]).unwrap();
    assert_eq!(
        dev.pipeline_count(),
        1,
        "same kernel must come from the cache"
    );
    let (g, y) = build(DType::F32, false);
    device.compile(&g, &[y]).unwrap();
    assert_eq!(
        dev.pipeline_count(),
        2,
        "a different op is a different pipeline"
    );
    let (g, y) = build(DType::I32, false);
    device.compile(&g, &[y]).unwrap();
    assert_eq!(
        dev.pipeline_count(),
        3,
        "a different dtype is a different pipeline"
    );
}

#[test]
fn a_lost_device_fails_every_later_call() {
    let Some(Device::Wgpu(shared)) = gpu() else {
        return;
    };
    let dev = WgpuDevice::by_name(&shared.summary().info.name).unwrap();
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let y = g.exp(x).unwrap();
    let device = Device::Wgpu(dev.clone());
    let mut exe = device.compile(&g, &[y]).unwrap();
    let data = TensorData::new([4], vec![0.0f32; 4]).unwrap();
    exe.run(&[("x", &data)]).unwrap();
    dev.destroy();
    assert!(matches!(
        exe.run(&[("x", &data)]),
        Err(Error::DeviceLost(_))
    ));
    assert!(matches!(
        device.compile(&g, &[y]),
        Err(Error::DeviceLost(_))
    ));
}

#[test]
fn repeated_runs_are_bit_identical() {
    // Determinism: the same graph and inputs give the same bits on one adapter, run after
    // run and executable after executable (no float atomics; integer atomics only where
    // the total cannot depend on order, as in the rank by gate below).
    let mut rng = Rng::new(103);
    let g = Graph::new();
    let x = g.input("x", [300, 257], DType::F32).unwrap();
    let w = g.input("w", [257, 70], DType::F32).unwrap();
    let long = g.input("long", [600_001], DType::F32).unwrap();
    let idx = g.input("idx", [300], DType::U32).unwrap();
    let h = g.matmul(x, w).unwrap();
    let p = g.softmax(h, -1).unwrap();
    let s = g.scatter_add(h, 0, idx, 17).unwrap();
    let (top, _) = g.top_k(h, 5, -1).unwrap();
    let experts = g
        .cast(g.argmax_keepdim(h, -1).unwrap(), DType::U32)
        .unwrap();
    let experts = g.reshape(experts, [150, 2]).unwrap();
    let gates = g.reshape(g.max_keepdim(p, -1).unwrap(), [150, 2]).unwrap();
    let options = gradflux::DispatchOptions {
        capacity: gradflux::Capacity::PerExpert(3),
        policy: gradflux::DropPolicy::HighestGate,
        ..gradflux::DispatchOptions::dropless(70, 4)
    };
    let d = g.moe_dispatch(experts, Some(gates), options).unwrap();
    let total = g.sum_all(long).unwrap();
    let loss = g.sum_all(g.mul(p, p).unwrap()).unwrap();
    let dw = g.grad(loss, &[w]).unwrap()[0];
    let outs = [p, s, top, d.positions, total, dw];
    let data = [
        ("x", random(&mut rng, [300, 257], DType::F32, -2.0, 2.0)),
        ("w", random(&mut rng, [257, 70], DType::F32, -0.2, 0.2)),
        ("long", random(&mut rng, [600_001], DType::F32, -1.0, 1.0)),
        ("idx", random(&mut rng, [300], DType::U32, 0.0, 16.0)),
    ];
    let ins: Vec<(&str, &TensorData)> = data.iter().map(|(n, d)| (*n, d)).collect();
    let bits = |outs: Vec<TensorData>| -> Vec<Vec<u64>> {
        outs.iter()
            .map(|o| o.to_f64_vec().iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let mut exe = device.compile(&g, &outs).unwrap();
        let first = bits(exe.run(&ins).unwrap());
        for run in 0..3 {
            assert!(
                bits(exe.run(&ins).unwrap()) == first,
                "run {run} on {}",
                device.name()
            );
        }
        let fresh = bits(device.compile(&g, &outs).unwrap().run(&ins).unwrap());
        assert!(fresh == first, "a new executable on {}", device.name());
    }
}

#[test]
fn outputs_are_found_by_the_tensors_given_to_compile() {
    let (g, outs) = busy_graph();
    let mut rng = Rng::new(104);
    let x = random(&mut rng, [33, 17], DType::F32, -2.0, 2.0);
    let w = random(&mut rng, [17, 9], DType::F32, -1.0, 1.0);
    let ins = [("x", &x), ("w", &w)];
    let other = g.input("other", [2], DType::F32).unwrap();
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let mut exe = device.compile(&g, &outs).unwrap();
        let by_position = exe.run(&ins).unwrap();
        let found = exe.run_outputs(&ins).unwrap();
        for (k, &t) in outs.iter().enumerate() {
            assert_eq!(
                found.get(t).unwrap(),
                &by_position[k],
                "on {}",
                device.name()
            );
            assert_eq!(&found[k], &by_position[k]);
        }
        let e = found.get(other).unwrap_err();
        assert!(e.to_string().contains("not an output"), "{e}");
        assert_eq!(found.into_vec(), by_position);
    }
}

#[test]
fn inputs_can_be_given_by_their_handles() {
    let g = Graph::new();
    let x = g.input("x", [5, 3], DType::F32).unwrap();
    let w = g.input("w", [3, 2], DType::F32).unwrap();
    let y = g.relu(g.matmul(x, w).unwrap()).unwrap();
    let mut rng = Rng::new(105);
    let xd = random(&mut rng, [5, 3], DType::F32, -2.0, 2.0);
    let wd = random(&mut rng, [3, 2], DType::F32, -1.0, 1.0);
    for device in std::iter::once(Device::Cpu).chain(gpu()) {
        let mut exe = device.compile(&g, &[y]).unwrap();
        let by_name = exe.run(&[("x", &xd), ("w", &wd)]).unwrap();
        // Any order: each handle finds its input.
        let by_handle = exe.run_tensors(&[(w, &wd), (x, &xd)]).unwrap();
        assert_eq!(
            by_handle.get(y).unwrap(),
            &by_name[0],
            "on {}",
            device.name()
        );
        let e = exe.run_tensors(&[(y, &xd)]).unwrap_err().to_string();
        assert!(e.contains("not an input") && e.contains("x, w"), "{e}");
        let e = exe.run_tensors(&[(x, &xd)]).unwrap_err().to_string();
        assert!(e.contains('w'), "a missing input is named: {e}");
    }
}

/// `Device::auto()` never picks a software adapter: without `GRADFLUX_DEVICE` it is a
/// hardware adapter or the CPU backend (on CI, with only lavapipe, the CPU backend), while
/// the suite reaches lavapipe by asking for it.
#[test]
fn auto_prefers_hardware_then_the_cpu_backend_over_a_software_adapter() {
    if std::env::var_os(gradflux::DEVICE_ENV).is_some() {
        return;
    }
    match Device::auto().unwrap() {
        Device::Cpu => {}
        Device::Wgpu(w) => assert_ne!(
            w.summary().info.device_type,
            gradflux::wgpu::DeviceType::Cpu,
            "auto picked a software adapter: {}",
            w.summary().describe()
        ),
    }
    // The async constructors find what the blocking ones find.
    let auto = pollster::block_on(Device::auto_async()).unwrap();
    assert_eq!(auto.name(), Device::auto().unwrap().name());
    if let Some(gpu) = gpu() {
        let best = pollster::block_on(WgpuDevice::best_async()).unwrap();
        assert_eq!(best.summary().describe(), gpu.name());
        if gpu.name().contains("llvmpipe") {
            let named = Device::from_spec("llvmpipe").unwrap();
            assert!(named.name().contains("llvmpipe"));
        }
    }
}
