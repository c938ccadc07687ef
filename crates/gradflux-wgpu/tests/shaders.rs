//! Every WGSL file under shaders/, and every specialisation the backend can emit, parses and
//! validates with naga offline: no GPU needed, so shader breakage shows up in any CI.

use std::path::Path;

use gradflux_core::{Activation, BinaryOp, CompareOp, DType, ReduceOp, UnaryOp};
use gradflux_wgpu::matmul::{codegen, TileConfig, Variant};
use gradflux_wgpu::test_hooks::shaders::{self, specialise, ShaderFile};
use gradflux_wgpu::test_hooks::{binary_expr, cast_expr, compare_expr, topk_key_expr, unary_expr};

fn validate(label: &str, source: &str) {
    // Default capabilities: the portable path must not need optional features; f16 (with
    // `enable f16;`) and, for opt-in kernels, float atomics are the ones a kernel may ask
    // for.
    let caps = if source.starts_with("enable f16;") {
        naga::valid::Capabilities::SHADER_FLOAT16
    } else if source.contains("atomic<f32>") {
        naga::valid::Capabilities::SHADER_FLOAT32_ATOMIC
    } else {
        naga::valid::Capabilities::default()
    };
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
}

#[test]
fn every_file_under_shaders_validates_and_is_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wgsl") {
                found.push(path);
            }
        }
    }
    assert!(!found.is_empty());
    let registered = shaders::all();
    for path in &found {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let file = registered
            .iter()
            .find(|f| f.path == rel)
            .unwrap_or_else(|| {
                panic!("{rel} is not registered (shaders::BUILTIN or a family's SHADERS)")
            });
        assert_eq!(file.source, std::fs::read_to_string(path).unwrap(), "{rel}");
        // A helper that uses its importer's bindings (a `// #requires` line) validates
        // inside its importers, which must exist; every other file as the backend uses it,
        // with its imports expanded.
        if file.source.contains("// #requires ") {
            let import = format!("// #import {rel}");
            assert!(
                registered.iter().any(|f| f.source.contains(&import)),
                "{rel} is imported by no kernel, so nothing validates it"
            );
            continue;
        }
        validate(&rel, &shaders::compose(file).unwrap());
    }
    assert_eq!(
        found.len(),
        registered.len(),
        "a registered shader has no file"
    );
}

fn check(file: &ShaderFile, t: DType, r: DType, expr: Option<&str>) {
    let label = format!("{} <{t}, {r}> {}", file.path, expr.unwrap_or(""));
    validate(&label, &specialise(file, t, r, expr));
}

#[test]
fn every_specialisation_the_backend_emits_validates() {
    let gpu_types = [DType::F32, DType::I32, DType::U32];
    for op in UnaryOp::ALL {
        for d in gpu_types {
            if (op.float_only() && d != DType::F32) || (op == UnaryOp::Neg && d == DType::U32) {
                continue;
            }
            check(
                &gradflux_core::ops::elementwise::UNARY,
                d,
                d,
                Some(unary_expr(op, d)),
            );
        }
    }
    let cast_types = [DType::F16, DType::F32, DType::I32, DType::U32];
    for from in cast_types {
        for to in cast_types {
            check(
                &gradflux_core::ops::elementwise::UNARY,
                from,
                to,
                Some(cast_expr(from, to)),
            );
        }
    }
    for op in BinaryOp::ALL {
        for d in gpu_types {
            if op == BinaryOp::Pow && d != DType::F32 {
                continue;
            }
            check(
                &gradflux_core::ops::elementwise::BINARY,
                d,
                d,
                Some(binary_expr(op, d)),
            );
        }
    }
    for d in gpu_types {
        check(
            &gradflux_core::ops::select::TOPK,
            d,
            d,
            Some(topk_key_expr(d).unwrap()),
        );
        check(
            &gradflux_core::ops::index::SCATTER_ALONG,
            d,
            DType::U32,
            None,
        );
    }
    check(
        &gradflux_core::ops::index::GATHER_ALONG,
        DType::U32,
        DType::U32,
        None,
    );
    for op in CompareOp::ALL {
        for d in gpu_types {
            check(
                &gradflux_core::ops::elementwise::BINARY,
                d,
                DType::U32,
                Some(&compare_expr(op, d)),
            );
        }
    }
    for op in ReduceOp::ALL {
        for d in gpu_types {
            if op.float_only() && d != DType::F32 {
                continue;
            }
            let r = if op == ReduceOp::ArgMax {
                DType::U32
            } else {
                d
            };
            check(&gradflux_core::ops::reduce::REDUCE, d, r, None);
        }
    }
    for d in gpu_types {
        check(&gradflux_core::ops::elementwise::SELECT, d, d, None);
        check(&gradflux_core::ops::index::SCATTER_ADD, d, d, None);
    }
    check(
        &gradflux_core::ops::reduce::SOFTMAX,
        DType::F32,
        DType::F32,
        None,
    );
    check(
        &gradflux_core::ops::reduce::SOFTMAX_LONG,
        DType::F32,
        DType::F32,
        None,
    );
}

/// Every register block the tuner can pick, with every layout, vector and bounds-check
/// choice, for every dtype; then every epilogue on f32.
#[test]
fn every_family_shader_validates_for_every_32_bit_dtype() {
    for family in gradflux_core::ops::FAMILIES {
        // Files with an `@op` line are specialised per op by the tests below.
        for file in family
            .shaders
            .iter()
            .filter(|f| !f.source.contains("// @op"))
        {
            for t in [DType::F32, DType::I32, DType::U32] {
                check(file, t, t, None);
            }
        }
    }
}

#[test]
fn every_matmul_variant_validates() {
    let mut blocks: Vec<(u32, u32)> = TileConfig::candidates()
        .iter()
        .map(|c| (c.tm, c.tn))
        .collect();
    blocks.sort();
    blocks.dedup();
    let mut count = 0;
    for &(tm, tn) in &blocks {
        for bits in 0..64u32 {
            let bit = |i: u32| bits & (1 << i) != 0;
            for dtype in [DType::F16, DType::F32, DType::I32, DType::U32] {
                let v = Variant {
                    dtype,
                    transpose_a: bit(0),
                    transpose_b: bit(1),
                    vec_a: bit(2),
                    vec_b: bit(3),
                    vec_c: bit(4),
                    checked: bit(5),
                    bias: dtype == DType::F32 && bits % 3 == 0,
                    activation: Activation::Identity,
                    tm,
                    tn,
                };
                validate(&v.label(), &codegen::source(&v));
                count += 1;
            }
        }
        for activation in Activation::ALL {
            for bias in [false, true] {
                for dtype in [DType::F16, DType::F32, DType::I32] {
                    if dtype.is_int() && activation.unary().is_some_and(|u| u.float_only()) {
                        continue;
                    }
                    let v = Variant {
                        dtype,
                        transpose_a: false,
                        transpose_b: true,
                        vec_a: true,
                        vec_b: false,
                        vec_c: true,
                        checked: true,
                        bias,
                        activation,
                        tm,
                        tn,
                    };
                    validate(&v.label(), &codegen::source(&v));
                    count += 1;
                }
            }
        }
    }
    assert!(count > 1000, "{count}");
}

/// The matrix-vector kernel in both layouts, every dtype, with and without an epilogue.
#[test]
fn every_matrix_vector_variant_validates() {
    use gradflux_wgpu::matmul::gemv;
    for dtype in [DType::F16, DType::F32, DType::I32, DType::U32] {
        for transpose_b in [false, true] {
            for vec_a in [false, true] {
                for (bias, activation) in [
                    (false, Activation::Identity),
                    (true, Activation::Relu),
                    (true, Activation::Identity),
                ] {
                    let v = Variant {
                        dtype,
                        transpose_a: false,
                        transpose_b,
                        vec_a,
                        vec_b: true,
                        vec_c: !transpose_b,
                        checked: true,
                        bias,
                        activation,
                        tm: 4,
                        tn: 4,
                    };
                    validate(&format!("gemv {}", v.label()), &gemv::source(&v));
                }
            }
        }
    }
}

/// The cooperative-matrix kernel for every storage type, tile size, grid, layout and
/// epilogue: validated with the cooperative-matrix capability and written to SPIR-V, which
/// is what Vulkan drivers receive (no adapter in CI has matrix units, so this is where
/// the kernel's text is checked on every run).
#[test]
fn every_cooperative_matrix_variant_validates_and_writes_spirv() {
    use gradflux_wgpu::matmul::{coop, CoopTile};
    let caps =
        naga::valid::Capabilities::COOPERATIVE_MATRIX | naga::valid::Capabilities::SHADER_FLOAT16;
    let mut count = 0;
    for size in [8, 16] {
        for (rm, rn) in [(2, 2), (2, 4), (4, 4)] {
            let tile = CoopTile {
                size,
                rm,
                rn,
                subgroup: 32,
            };
            assert_eq!(CoopTile::parse(&tile.to_string()), Some(tile));
            for dtype in [DType::F16, DType::F32] {
                for bits in 0..16u32 {
                    let bit = |i: u32| bits & (1 << i) != 0;
                    let v = Variant {
                        dtype,
                        transpose_a: bit(0),
                        transpose_b: bit(1),
                        vec_a: false,
                        vec_b: false,
                        vec_c: true,
                        checked: true,
                        bias: bit(2),
                        activation: if bit(3) {
                            Activation::Sigmoid
                        } else {
                            Activation::Identity
                        },
                        tm: 4,
                        tn: 4,
                    };
                    let label = format!("{} {tile}", v.label());
                    let source = coop::source(&v, &tile);
                    let module = naga::front::wgsl::parse_str(&source)
                        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
                    let info =
                        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                            .validate(&module)
                            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
                    // Overrides are resolved before a backend runs, as wgpu does at pipeline
                    // creation.
                    let mut constants = naga::back::PipelineConstants::default();
                    constants.insert("SG".to_string(), tile.subgroup as f64);
                    let (module, info) = naga::back::pipeline_constants::process_overrides(
                        &module,
                        &info,
                        Some((naga::ShaderStage::Compute, "main")),
                        &constants,
                    )
                    .unwrap_or_else(|e| panic!("{label}: overrides: {e}"));
                    let options = naga::back::spv::Options {
                        lang_version: (1, 3),
                        ..Default::default()
                    };
                    let pipeline = naga::back::spv::PipelineOptions {
                        shader_stage: naga::ShaderStage::Compute,
                        entry_point: "main".into(),
                    };
                    let words =
                        naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
                            .unwrap_or_else(|e| panic!("{label}: SPIR-V: {e}"));
                    // OpCapability CooperativeMatrixKHR (6022): the matrix ops really
                    // reached the binary rather than being lowered away.
                    assert!(
                        words.windows(2).any(|w| w == [(2 << 16) | 17, 6022]),
                        "{label}: no CooperativeMatrixKHR capability in the SPIR-V"
                    );
                    count += 1;
                }
            }
        }
    }
    assert_eq!(count, 2 * 3 * 2 * 16);
}
