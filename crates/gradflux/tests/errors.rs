//! Every error variant, triggered by the input that causes it, with a message that names
//! what was wrong and what was expected.

mod common;

use gradflux::{CustomOp, DType, Device, Dispatch, Error, Graph, TensorData, WgpuDevice};

use common::gpu;

fn devices() -> Vec<Device> {
    std::iter::once(Device::Cpu).chain(gpu()).collect()
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let g = Graph::new();
    let a = g.input("a", [2, 3], DType::F32).unwrap();
    let b = g.input("b", [4, 5], DType::F32).unwrap();
    let e = g.matmul(a, b).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "matmul", .. }));
    let msg = e.to_string();
    assert!(msg.contains("[2, 3]") && msg.contains("[4, 5]"), "{msg}");
    let e = g.add(a, b).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("do not broadcast"), "{e}");
    assert!(matches!(g.sum(a, 2), Err(Error::Shape { op: "sum", .. })));
    assert!(matches!(
        g.reshape(a, [5]),
        Err(Error::Shape { op: "reshape", .. })
    ));
    assert!(matches!(
        g.slice(a, 1, 2, 4),
        Err(Error::Shape { op: "slice", .. })
    ));
    assert!(matches!(
        g.permute(a, &[0, 0]),
        Err(Error::Shape { op: "permute", .. })
    ));
}

#[test]
fn dtype_errors_name_expected_and_got() {
    let g = Graph::new();
    let f = g.input("f", [3], DType::F32).unwrap();
    let i = g.input("i", [3], DType::I32).unwrap();
    let e = g.add(f, i).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DType {
                op: "add",
                got: DType::I32,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(g.exp(i), Err(Error::DType { op: "exp", .. })));
    assert!(matches!(
        g.gather(f, 0, f),
        Err(Error::DType { op: "gather", .. })
    ));
    assert!(matches!(
        g.select(f, f, f),
        Err(Error::DType { op: "select", .. })
    ));
}

#[test]
fn tensors_from_another_graph_are_refused() {
    let g1 = Graph::new();
    let g2 = Graph::new();
    let a = g1.input("a", [3], DType::F32).unwrap();
    assert!(matches!(g2.exp(a), Err(Error::Graph(_))));
    // The message names the op and the operand.
    let b = g2.input("b", [3], DType::F32).unwrap();
    let e = g2.matmul(b, a).unwrap_err().to_string();
    assert!(e.contains("`matmul`: operand `b`"), "{e}");
    let e = g2.add(b, a).unwrap_err().to_string();
    assert!(e.contains("`add`: operand `b`"), "{e}");
    let e = g2.softmax(a, 0).unwrap_err().to_string();
    assert!(e.contains("`softmax`: operand `x`"), "{e}");
    let e = g2
        .grad(g2.sum_all(b).unwrap(), &[a])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`grad`: operand `wrt`"), "{e}");
    assert!(
        matches!(g1.input("a", [3], DType::F32), Err(Error::Graph(_))),
        "duplicate name"
    );
}

#[test]
fn run_time_input_errors_name_the_input() {
    let g = Graph::new();
    let x = g.input("x", [2, 2], DType::F32).unwrap();
    let y = g.exp(x).unwrap();
    let good = TensorData::new([2, 2], vec![0f32; 4]).unwrap();
    let wrong_shape = TensorData::new([4], vec![0f32; 4]).unwrap();
    let wrong_dtype = TensorData::new([2, 2], vec![0i32; 4]).unwrap();
    for device in devices() {
        let mut exe = device.compile(&g, &[y]).unwrap();
        let e = exe.run(&[]).unwrap_err();
        assert!(
            matches!(&e, Error::MissingInput { name, .. } if name == "x"),
            "{e}"
        );
        let e = exe.run(&[("x", &good), ("z", &good)]).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownInput { name, .. } if name == "z"),
            "{e}"
        );
        let e = exe.run(&[("x", &wrong_shape)]).unwrap_err();
        assert!(
            e.to_string().contains("[2, 2]") && e.to_string().contains("[4]"),
            "{e}"
        );
        let e = exe.run(&[("x", &wrong_dtype)]).unwrap_err();
        assert!(matches!(
            e,
            Error::InputMismatch {
                got_dtype: DType::I32,
                ..
            }
        ));
        assert!(
            exe.run(&[("x", &good)]).is_ok(),
            "the executable survives bad calls"
        );
    }
}

#[test]
fn data_of_the_wrong_length_is_refused() {
    let e = TensorData::new([2, 3], vec![0f32; 5]).unwrap_err();
    assert!(matches!(
        e,
        Error::DataLength {
            numel: 6,
            len: 5,
            ..
        }
    ));
}

#[test]
fn f64_and_kernel_less_custom_ops_are_unsupported_on_wgpu() {
    let Some(dev) = gpu() else { return };
    let g = Graph::new();
    let x = g.input("x", [3], DType::F64).unwrap();
    let y = g.exp(x).unwrap();
    let e = dev.compile(&g, &[y]).err().expect("f64 is refused");
    assert!(
        matches!(&e, Error::Unsupported { .. }) && e.to_string().contains("f64"),
        "{e}"
    );
    assert!(
        Device::Cpu.compile(&g, &[y]).is_ok(),
        "the CPU backend runs f64"
    );

    // f16 runs in casts and matmuls on wgpu; anything else names the way out.
    let g = Graph::new();
    let x = g.input("x", [3], DType::F16).unwrap();
    let y = g.exp(x).unwrap();
    let e = dev.compile(&g, &[y]).err().expect("f16 exp is refused");
    assert!(
        matches!(&e, Error::Unsupported { .. }) && e.to_string().contains("f16"),
        "{e}"
    );
    assert!(
        Device::Cpu.compile(&g, &[y]).is_ok(),
        "the CPU backend runs f16"
    );

    let op = CustomOp::builder("cpu_only")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let e = dev.compile(&g, &[y]).err().expect("no WGSL");
    assert!(e.to_string().contains("cpu_only"), "{e}");
}

#[test]
fn buffers_over_the_binding_limit_are_refused_with_the_numbers() {
    let Some(Device::Wgpu(dev)) = gpu() else {
        return;
    };
    let allowed = dev.summary().limits.max_storage_buffer_binding_size;
    let elements = (allowed / 4 + 1) as usize;
    let g = Graph::new();
    let x = g.input("x", [elements], DType::F32).unwrap();
    let y = g.neg(x).unwrap();
    let e = Device::Wgpu(dev).compile(&g, &[y]).err().expect("too big");
    match &e {
        Error::Limit {
            limit,
            requested,
            allowed: a,
            ..
        } => {
            assert!(limit.contains("max_"), "{e}");
            assert!(*requested > *a, "{e}");
        }
        other => panic!("expected a limit error, got {other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&(elements as u64 * 4).to_string()), "{msg}");
}

#[test]
fn shader_errors_carry_line_and_column() {
    let e = CustomOp::builder("broken")
        .input([1], DType::F32)
        .output([1], DType::F32)
        .wgsl(
            "@compute @workgroup_size(1)\nfn main() {\n    let x: f32 = ;\n}\n",
            "main",
            Dispatch::Workgroups([1, 1, 1]),
        )
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap_err();
    match e {
        Error::Shader {
            source_name,
            line,
            column,
            ..
        } => {
            assert_eq!(source_name, "broken");
            assert_eq!(line, 3);
            assert!(column > 0);
        }
        other => panic!("expected a shader error, got {other}"),
    }
}

#[test]
fn custom_op_errors_name_the_op() {
    let op = CustomOp::builder("liar")
        .input([2], DType::F32)
        .output([2], DType::F32)
        .cpu(|_| {
            TensorData::new([3], vec![0f32; 3])
                .map(|t| vec![t])
                .map_err(|e| e.to_string())
        })
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [2], DType::F32).unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let data = TensorData::new([2], vec![0f32; 2]).unwrap();
    let e = Device::Cpu
        .compile(&g, &[y])
        .unwrap()
        .run(&[("x", &data)])
        .unwrap_err();
    assert!(
        matches!(&e, Error::CustomOp { op, .. } if op == "liar"),
        "{e}"
    );
    let wrong_input = g.input("w", [5], DType::F32).unwrap();
    assert!(matches!(
        g.custom(&op, &[wrong_input]),
        Err(Error::CustomOp { .. })
    ));
}

#[test]
fn an_unknown_adapter_name_is_a_no_adapter_error() {
    let e = WgpuDevice::by_name("no-such-adapter-4f1c").unwrap_err();
    assert!(matches!(e, Error::NoAdapter(_)), "{e}");
    assert!(Device::from_spec("no-such-adapter-4f1c").is_err());
}

#[test]
fn wgpu_validation_errors_come_back_as_err() {
    let Some(dev) = gpu() else { return };
    // Valid WGSL with the conventional bindings, but it reads an immediate, and the
    // pipeline layout gradflux makes has no immediate range: wgpu rejects the pipeline.
    let op = CustomOp::builder("reads_an_immediate")
        .input([4], DType::F32)
        .output([4], DType::F32)
        .wgsl(
            "var<immediate> scale: f32;
             @group(0) @binding(0) var<storage, read> x: array<f32>;
             @group(0) @binding(1) var<storage, read_write> y: array<f32>;
             @compute @workgroup_size(4)
             fn main(@builtin(local_invocation_index) i: u32) { y[i] = x[i] * scale; }",
            "main",
            Dispatch::Workgroups([1, 1, 1]),
        )
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let e = dev
        .compile(&g, &[y])
        .err()
        .expect("wgpu rejects the layout");
    assert!(matches!(e, Error::Device(_)), "{e}");
}

#[test]
fn custom_kernels_must_bind_what_they_declare() {
    let build = |wgsl: &str| {
        CustomOp::builder("bindings")
            .input([4], DType::F32)
            .output([4], DType::F32)
            .output([4], DType::F32)
            .wgsl(wgsl, "main", Dispatch::Workgroups([1, 1, 1]))
            .cpu(|xs| Ok(vec![xs[0].clone(), xs[0].clone()]))
            .build()
    };
    let head = "@group(0) @binding(0) var<storage, read> x: array<f32>;
                @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n";
    let cases = [
        // The second output is never bound: it would come back as zeros.
        (
            format!("{head} @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) {{ y[i] = x[i]; }}"),
            "output 1 should be bound at @group(0) @binding(2)",
        ),
        // Bound but never written.
        (
            format!("{head} @group(0) @binding(2) var<storage, read_write> z: array<f32>;
             @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) {{ y[i] = x[i] + z[i]; }}"),
            "output 1 (`z` at @binding(2)) is never written",
        ),
        // An output declared read-only.
        (
            format!("{head} @group(0) @binding(2) var<storage, read> z: array<f32>;
             @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) {{ y[i] = x[i] + z[i]; }}"),
            "binds output `z` at @group(0) @binding(2) read-only",
        ),
        // An input declared writable.
        (
            "@group(0) @binding(0) var<storage, read_write> x: array<f32>;
             @group(0) @binding(1) var<storage, read_write> y: array<f32>;
             @group(0) @binding(2) var<storage, read_write> z: array<f32>;
             @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { y[i] = x[i]; z[i] = x[i]; }".to_string(),
            "binds input `x` at @group(0) @binding(0) as read_write",
        ),
        // A binding the op does not declare.
        (
            format!("{head} @group(0) @binding(2) var<storage, read_write> z: array<f32>;
             @group(0) @binding(3) var<storage, read_write> extra: array<f32>;
             @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) {{ y[i] = x[i]; z[i] = x[i]; extra[i] = 1.0; }}"),
            "binds `extra` at @group(0) @binding(3), but the op declares 1 inputs and 2 outputs",
        ),
        (
            format!("{head} @group(1) @binding(0) var<storage, read_write> z: array<f32>;
             @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) {{ y[i] = x[i]; z[i] = x[i]; }}"),
            "@group(1) @binding(0)",
        ),
    ];
    for (wgsl, want) in cases {
        let e = build(&wgsl).unwrap_err();
        assert!(
            matches!(&e, Error::CustomOp { op, .. } if op == "bindings")
                && e.to_string().contains(want),
            "wanted `{want}`, got: {e}"
        );
    }
    // An input the kernel does not read is fine (it may not need it).
    let ok = "@group(0) @binding(1) var<storage, read_write> y: array<f32>;
        @group(0) @binding(2) var<storage, read_write> z: array<f32>;
        @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { y[i] = 1.0; z[i] = 2.0; }";
    assert!(build(ok).is_ok());
}

#[test]
fn custom_kernels_over_the_workgroup_limits_are_refused_by_name() {
    let Some(dev) = gpu() else { return };
    // 400 KB of workgroup memory: far over any adapter's limit (16 KB to 64 KB).
    let op = CustomOp::builder("greedy")
        .input([4], DType::F32)
        .output([4], DType::F32)
        .wgsl(
            "@group(0) @binding(0) var<storage, read> x: array<f32>;
             @group(0) @binding(1) var<storage, read_write> y: array<f32>;
             var<workgroup> big: array<f32, 102400>;
             @compute @workgroup_size(4)
             fn main(@builtin(local_invocation_index) i: u32) {
                 big[i] = x[i];
                 workgroupBarrier();
                 y[i] = big[3u - i];
             }",
            "main",
            Dispatch::Workgroups([1, 1, 1]),
        )
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    assert_eq!(op.wgsl.as_ref().unwrap().workgroup_bytes, 409_600);
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let e = dev.compile(&g, &[y]).err().expect("over the limit");
    assert!(
        matches!(
            &e,
            Error::Limit {
                limit: "max_compute_workgroup_storage_size",
                requested: 409_600,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("greedy"), "{e}");
}

#[test]
fn compile_needs_outputs() {
    let g = Graph::new();
    let _ = g.input("x", [1], DType::F32).unwrap();
    assert!(matches!(Device::Cpu.compile(&g, &[]), Err(Error::Graph(_))));
}

#[test]
fn sizes_that_overflow_are_shape_errors() {
    let g = Graph::new();
    // (2^62 + 1) * 4 wraps to 4 in 64-bit arithmetic; it must not become a 4-element input.
    let e = g
        .input("x", [(1usize << 62) + 1, 4], DType::F32)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { op: "input", .. }), "{e}");
    assert!(e.to_string().contains("largest size"), "{e}");
    let e = g.input("y", [usize::MAX, 2], DType::U32).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "input", .. }), "{e}");
    // An op whose output would overflow is refused by name too.
    let a = g.input("a", [1 << 30, 1], DType::F32).unwrap();
    let b = g.input("b", [1, 1 << 30], DType::F32).unwrap();
    assert!(
        g.add(a, b).is_ok(),
        "2^62 bytes are representable (if not allocatable)"
    );
    let c = g.input("c", [1, 1 << 34], DType::F32).unwrap();
    let e = g.add(a, c).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "add", .. }), "{e}");
    // Zero-size axes never overflow, however large the others.
    assert!(g.input("z", [usize::MAX, 0], DType::F32).is_ok());
    // Host data with an overflowing shape is a length error, not a wrapped count.
    let e = TensorData::new([(1usize << 62) + 1, 4], vec![0.0f32; 4]).unwrap_err();
    assert!(matches!(e, Error::DataLength { .. }), "{e}");
}

#[test]
fn value_problems_are_invalid_value_errors() {
    use gradflux::{Capacity, DispatchOptions, SoftminAxis};
    let g = Graph::new();
    let cost = g.input("cost", [3, 4], DType::F32).unwrap();
    let h = g.input("h", [4], DType::F32).unwrap();
    for eps in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
        let e = g.softmin(cost, h, eps, SoftminAxis::PerRow).unwrap_err();
        assert!(
            matches!(e, Error::InvalidValue { op: "softmin", .. }),
            "eps {eps}: {e}"
        );
    }
    let experts = g.input("experts", [4, 2], DType::U32).unwrap();
    let dispatch = |opts| g.moe_dispatch(experts, None, opts).unwrap_err();
    for opts in [
        DispatchOptions::dropless(0, 4),
        DispatchOptions::dropless(4, 0),
        DispatchOptions {
            capacity: Capacity::Factor(f64::NAN),
            ..DispatchOptions::dropless(4, 4)
        },
        DispatchOptions {
            capacity: Capacity::PerExpert(0),
            ..DispatchOptions::dropless(4, 4)
        },
    ] {
        let e = dispatch(opts);
        assert!(
            matches!(
                e,
                Error::InvalidValue {
                    op: "moe_dispatch",
                    ..
                }
            ),
            "{opts:?}: {e}"
        );
    }
}

#[test]
fn hand_built_records_are_checked_before_they_are_indexed() {
    use gradflux::{DispatchOptions, OtGeometry, SinkhornOptions};
    let g = Graph::new();
    let x = g.input("x", [4, 3], DType::F32).unwrap();
    let experts = g.input("experts", [4, 2], DType::U32).unwrap();
    let gates = g.input("gates", [4, 2], DType::F32).unwrap();
    let good = g
        .moe_dispatch(experts, None, DispatchOptions::dropless(3, 2))
        .unwrap();
    let flat = g.input("flat", [8], DType::U32).unwrap();
    let bad = gradflux::ExpertDispatch {
        positions: flat,
        ..good
    };
    let e = g.moe_gather(x, &bad).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shape {
                op: "moe_gather",
                ..
            }
        ),
        "{e}"
    );
    let e = g.moe_combine(x, &bad, gates).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shape {
                op: "moe_combine",
                ..
            }
        ),
        "{e}"
    );
    let bad = gradflux::ExpertDispatch {
        sorted_ids: experts,
        ..good
    };
    assert!(g.moe_gather(x, &bad).is_err());

    let cost = g.input("cost", [5, 6], DType::F32).unwrap();
    let a = g.input("a", [5], DType::F32).unwrap();
    let b = g.input("b", [6], DType::F32).unwrap();
    let s = g
        .sinkhorn(cost, a, b, None, SinkhornOptions::new(0.1, 3))
        .unwrap();
    let scalar = g.scalar(1.0, DType::F32).unwrap();
    for bad in [
        gradflux::OtSolution {
            geometry: OtGeometry::Dense(a),
            ..s
        },
        gradflux::OtSolution {
            geometry: OtGeometry::Dense(scalar),
            ..s
        },
        gradflux::OtSolution { f: b, ..s },
        gradflux::OtSolution { b: a, ..s },
    ] {
        for result in [
            g.ot_plan(&bad),
            g.ot_transport_cost(&bad),
            g.ot_objective(&bad),
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, Error::Shape { .. }), "{e}");
        }
    }
    assert!(g.ot_plan(&s).is_ok());
}

#[test]
fn kernels_past_a_software_drivers_loop_limit_are_refused_by_name() {
    // llvmpipe stops a shader invocation after 65 535 loop iterations, silently; other
    // adapters get a budget of 2^20. What the lowerings cannot split is refused past it,
    // naming the op and the numbers.
    let Some(dev) = gpu() else {
        return;
    };
    let Device::Wgpu(wgpu_dev) = &dev else {
        unreachable!("gpu() is a wgpu device")
    };
    let Some(limit) = wgpu_dev.loop_limit() else {
        return; // no budget on this device: nothing to refuse
    };
    // An f16 matmul with a long inner dimension: f32 and integer products split k, f16
    // ones (whose partial sums would round to f16) are refused.
    if common::gpu_having(gradflux::wgpu::Features::SHADER_F16).is_none() {
        return;
    }
    let g = Graph::new();
    let k = limit as usize; // each k costs an invocation more than one loop iteration
    let a = g.input("a", [2, k], DType::F16).unwrap();
    let b = g.input("b", [k, 3], DType::F16).unwrap();
    let product = g.matmul(a, b).unwrap();
    let e = dev.compile(&g, &[product]).err().expect("refused");
    assert!(
        matches!(&e, Error::Limit { requested, allowed, .. } if *requested > limit && *allowed <= limit),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("matmul") && msg.contains("loop iterations per shader invocation"),
        "{msg}"
    );
}

/// Each bad mass-spring description or rollout is refused by name: the message says what
/// is wrong and what was expected.
#[test]
fn bad_mass_spring_rollouts_are_refused_by_name() {
    use gradflux::{GroundContact, MassSpring, RolloutOptions, SpringValues};
    let rollout = |system: &MassSpring, options: RolloutOptions, dims: [usize; 2]| {
        let g = Graph::new();
        let x0 = g.input("x0", dims, DType::F32).unwrap();
        let v0 = g.input("v0", dims, DType::F32).unwrap();
        let s = system.springs.len();
        let springs = SpringValues {
            rest: g.input("rest", [s], DType::F32).unwrap(),
            stiffness: g.input("k", [s], DType::F32).unwrap(),
            damping: g.input("c", [s], DType::F32).unwrap(),
        };
        g.mass_spring_rollout(system, x0, v0, springs, None, options)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let ok = MassSpring::new(2, 3, vec![[0, 1], [1, 2]], 1e-3);
    let cases: Vec<(MassSpring, RolloutOptions, [usize; 2], &str)> = vec![
        (
            MassSpring {
                dt: 0.0,
                ..ok.clone()
            },
            RolloutOptions::new(5),
            [3, 2],
            "dt is 0, expected a finite value > 0",
        ),
        (
            MassSpring {
                springs: vec![[0, 1], [2, 2]],
                ..ok.clone()
            },
            RolloutOptions::new(5),
            [3, 2],
            "spring 1 joins particle 2 to itself",
        ),
        (
            MassSpring {
                springs: vec![[0, 3]],
                ..ok.clone()
            },
            RolloutOptions::new(5),
            [3, 2],
            "spring 0 joins particles 0 and 3, but there are 3",
        ),
        (
            MassSpring {
                ground: Some(GroundContact {
                    normal: [0.0, 1.0, 0.0],
                    offset: 0.0,
                    radius: 0.0,
                    ke: 1e3,
                    kd: 1.0,
                    kf: 2e3,
                    mu: 0.5,
                }),
                ..ok.clone()
            },
            RolloutOptions::new(5),
            [3, 2],
            "kf·dt·max(inv_mass) = 2 ≥ 1",
        ),
        (
            ok.clone(),
            RolloutOptions::new(5),
            [3, 3],
            "`x0` is [3, 3], expected [3, 2]",
        ),
        (
            ok.clone(),
            RolloutOptions {
                observe: vec![6],
                ..RolloutOptions::new(5)
            },
            [3, 2],
            "observe must list steps in 1..=5",
        ),
        (
            MassSpring {
                actuators: vec![(1, 0.2)],
                ..ok.clone()
            },
            RolloutOptions::new(5),
            [3, 2],
            "so `controls` [5, 1] is required",
        ),
    ];
    for (system, options, dims, says) in cases {
        let e = rollout(&system, options, dims);
        assert!(e.contains(says), "expected `{says}` in: {e}");
    }
}

/// MPM refuses a bad system, particles outside the grid's interior, a CFL violation and,
/// on wgpu, a cell too crowded to sort, each by name.
#[test]
fn bad_mpm_rollouts_are_refused_by_name() {
    use gradflux::{Mpm, RolloutOptions};
    let g = Graph::new();
    let x0 = g.input("x0", [2, 2], DType::F32).unwrap();
    let v0 = g.input("v0", [2, 2], DType::F32).unwrap();
    let bad_dt = Mpm {
        dt: -1.0,
        ..Mpm::diffmpm_simple()
    };
    let e = g
        .mpm_rollout(&bad_dt, x0, v0, None, RolloutOptions::new(3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("dt is -1, expected a finite value > 0"), "{e}");
    let out = g
        .mpm_rollout(&Mpm::diffmpm_simple(), x0, v0, None, RolloutOptions::new(3))
        .unwrap();
    let mut exe = Device::Cpu.compile(&g, &[out.positions]).unwrap();
    let run = |exe: &mut Box<dyn gradflux::Executable>, x: Vec<f32>, v: Vec<f32>| {
        let x = TensorData::new([2, 2], x).unwrap();
        let v = TensorData::new([2, 2], v).unwrap();
        exe.run(&[("x0", &x), ("v0", &v)]).unwrap_err().to_string()
    };
    let e = run(&mut exe, vec![0.5, 0.5, 0.999, 0.5], vec![0.0; 4]);
    assert!(
        e.contains("particle 1 has coordinate 0 0.999, outside the grid"),
        "{e}"
    );
    let e = run(
        &mut exe,
        vec![0.5, 0.5, 0.4, 0.5],
        vec![0.0, 30.0, 0.0, 0.0],
    );
    assert!(
        e.contains("particle 0's speed 30 breaks the CFL condition"),
        "{e}"
    );
    // Controls must come exactly when particles are actuated, shaped [steps, actuators].
    let actuated = Mpm {
        actuators: vec![0, 1],
        actuation_strength: 2.0,
        ..Mpm::diffmpm_simple()
    };
    let e = g
        .mpm_rollout(&actuated, x0, v0, None, RolloutOptions::new(3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 actuators, so `controls` [3, 2] is required"),
        "{e}"
    );
    let u = g.input("u", [3, 1], DType::F32).unwrap();
    let e = g
        .mpm_rollout(&actuated, x0, v0, Some(u), RolloutOptions::new(3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`controls` is f32 [3, 1], expected f32 [3, 2]"),
        "{e}"
    );
    // The wgpu backend sorts each cell's particles within a loop budget and refuses a
    // cell of more than 256 by name.
    if let Some(gpu) = gpu() {
        let g = Graph::new();
        let x0 = g.input("x0", [300, 2], DType::F32).unwrap();
        let v0 = g.input("v0", [300, 2], DType::F32).unwrap();
        let out = g
            .mpm_rollout(&Mpm::diffmpm_simple(), x0, v0, None, RolloutOptions::new(2))
            .unwrap();
        let x = TensorData::new([300, 2], vec![0.5f32; 600]).unwrap();
        let v = TensorData::zeros([300, 2], DType::F32);
        let e = gpu
            .compile(&g, &[out.positions])
            .and_then(|mut exe| exe.run(&[("x0", &x), ("v0", &v)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a grid cell holds more than 256 particles"),
            "{e}"
        );
    }
}
