use gradflux::backend::MatMulSpec;
use gradflux::{
    Activation, DType, Device, Graph, TensorData, TileConfig, Tolerance, Tuning, WgpuDevice,
};

use crate::common::{check, gpu, random, Rng};

/// f32 accumulation on the GPU against one rounding of an f64 sum in the reference: the
/// error of a length-`k` dot product grows with `k`.
fn tol(k: usize) -> Tolerance {
    Tolerance::new(1e-5, 2e-6 * k.max(1) as f64)
}

fn tol_for(dtype: DType, k: usize) -> Tolerance {
    if dtype.is_float() {
        tol(k)
    } else {
        Tolerance::EXACT
    }
}

/// `(m, k, n)` shapes: degenerate, ragged around every block size, matrix-vector both
/// ways round, and aligned ones that take the unchecked, vectorised path.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (127, 129, 131),
    (1000, 1, 1000),
    (1, 4096, 4096),
    (4096, 4096, 1),
    (50, 783, 3),
    (128, 64, 128),
    (64, 36, 260),
];

#[test]
fn matmul_matches_at_ragged_and_degenerate_shapes() {
    let mut rng = Rng::new(30);
    for &(m, k, n) in SHAPES {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            // One dtype per large shape keeps the CPU reference quick.
            if m * k * n > 1 << 22 && dtype != DType::F32 {
                continue;
            }
            let g = Graph::new();
            let a = g.input("a", [m, k], dtype).unwrap();
            let b = g.input("b", [k, n], dtype).unwrap();
            let y = g.matmul(a, b).unwrap();
            let da = random(&mut rng, [m, k], dtype, -1.0, 1.0);
            let db = random(&mut rng, [k, n], dtype, -1.0, 1.0);
            check(
                &format!("matmul {m}x{k}x{n} {dtype}"),
                &g,
                &[y],
                &[("a", &da), ("b", &db)],
                tol_for(dtype, k),
            );
        }
    }
}

#[test]
fn transposed_operands_are_read_in_place() {
    let mut rng = Rng::new(32);
    for &(m, k, n) in &[
        (3, 5, 7),
        (33, 17, 9),
        (64, 32, 48),
        (1, 40, 12),
        (12, 40, 1),
    ] {
        for (ta, tb) in [(false, true), (true, false), (true, true)] {
            let g = Graph::new();
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let a = g.input("a", sa, DType::F32).unwrap();
            let b = g.input("b", sb, DType::F32).unwrap();
            let l = if ta { g.transpose(a, 0, 1).unwrap() } else { a };
            let r = if tb { g.transpose(b, 0, 1).unwrap() } else { b };
            let y = g.matmul(l, r).unwrap();
            // The transposes were folded: the product reads `a` and `b` directly.
            let nodes = g.nodes();
            let producer = nodes
                .iter()
                .rev()
                .find(|n| n.op.kernel::<MatMulSpec>().is_some());
            let Some(spec) = producer.and_then(|n| n.op.kernel::<MatMulSpec>()) else {
                panic!("no matmul node");
            };
            assert_eq!((spec.transpose_a, spec.transpose_b), (ta, tb));
            let da = random(&mut rng, sa, DType::F32, -1.0, 1.0);
            let db = random(&mut rng, sb, DType::F32, -1.0, 1.0);
            check(
                &format!("matmul {m}x{k}x{n} ta={ta} tb={tb}"),
                &g,
                &[y],
                &[("a", &da), ("b", &db)],
                tol(k),
            );
        }
    }
}

#[test]
fn batched_matmul_broadcasts_batches() {
    let mut rng = Rng::new(31);
    for (sa, sb) in [
        (vec![4, 3, 5], vec![4, 5, 6]),
        (vec![2, 1, 3, 5], vec![4, 5, 2]),
        (vec![3, 5], vec![7, 5, 4]),
        (vec![5], vec![5, 3]),
        (vec![3, 5], vec![5]),
        (vec![6, 1, 20, 18], vec![1, 3, 18, 19]),
        (vec![3, 1, 64, 32], vec![5, 32, 64]),
    ] {
        let g = Graph::new();
        let a = g.input("a", sa.clone(), DType::F32).unwrap();
        let b = g.input("b", sb.clone(), DType::F32).unwrap();
        let y = g.matmul(a, b).unwrap();
        let da = random(&mut rng, sa.clone(), DType::F32, -1.0, 1.0);
        let db = random(&mut rng, sb.clone(), DType::F32, -1.0, 1.0);
        check(
            &format!("matmul {sa:?} x {sb:?}"),
            &g,
            &[y],
            &[("a", &da), ("b", &db)],
            tol(64),
        );
    }
}

#[test]
fn fused_bias_and_activation_match_the_unfused_ops() {
    let mut rng = Rng::new(33);
    let (m, k, n) = (37, 21, 22);
    for act in Activation::ALL {
        for bias_shape in [vec![], vec![n], vec![m, 1], vec![m, n], vec![2, 1, n]] {
            for dtype in [DType::F32, DType::I32] {
                if dtype.is_int() && matches!(act, Activation::Sigmoid | Activation::Tanh) {
                    continue;
                }
                let g = Graph::new();
                let x = g.input("x", [2, m, k], dtype).unwrap();
                let w = g.input("w", [k, n], dtype).unwrap();
                let b = g.input("b", bias_shape.clone(), dtype).unwrap();
                let fused = g.linear(x, w, Some(b), act).unwrap();
                let dx = random(&mut rng, [2, m, k], dtype, -1.0, 1.0);
                let dw = random(&mut rng, [k, n], dtype, -1.0, 1.0);
                let db = random(&mut rng, bias_shape.clone(), dtype, -1.0, 1.0);
                let inputs = [("x", &dx), ("w", &dw), ("b", &db)];
                let got = check(
                    &format!("linear {act:?} bias {bias_shape:?} {dtype}"),
                    &g,
                    &[fused],
                    &inputs,
                    tol_for(dtype, k),
                );
                // The same result as the three separate ops on the reference backend.
                let h = Graph::new();
                let (x, w, b) = (
                    h.input("x", [2, m, k], dtype).unwrap(),
                    h.input("w", [k, n], dtype).unwrap(),
                    h.input("b", bias_shape.clone(), dtype).unwrap(),
                );
                let z = h.add(h.matmul(x, w).unwrap(), b).unwrap();
                let y = match act.unary() {
                    Some(u) => h.unary(u, z).unwrap(),
                    None => z,
                };
                let want = Device::Cpu.compile(&h, &[y]).unwrap().run(&inputs).unwrap();
                gradflux::compare(&want[0], &got[0], Tolerance::EXACT)
                    .unwrap_or_else(|e| panic!("fused vs unfused {act:?}: {e}"));
            }
        }
    }
}

#[test]
fn rank_one_operands_take_a_bias() {
    let mut rng = Rng::new(34);
    let g = Graph::new();
    let x = g.input("x", [9], DType::F32).unwrap();
    let w = g.input("w", [9, 5], DType::F32).unwrap();
    let v = g.input("v", [5], DType::F32).unwrap();
    let b5 = g.input("b5", [5], DType::F32).unwrap();
    let b9 = g.input("b9", [9], DType::F32).unwrap();
    let row = g.linear(x, w, Some(b5), Activation::Tanh).unwrap();
    let col = g.linear(w, v, Some(b9), Activation::Relu).unwrap();
    assert_eq!(g.shape(row).unwrap().dims(), &[5]);
    assert_eq!(g.shape(col).unwrap().dims(), &[9]);
    let data: Vec<(&str, TensorData)> = [("x", vec![9]), ("w", vec![9, 5]), ("v", vec![5])]
        .into_iter()
        .chain([("b5", vec![5]), ("b9", vec![9])])
        .map(|(n, s)| (n, random(&mut rng, s, DType::F32, -1.0, 1.0)))
        .collect();
    let inputs: Vec<(&str, &TensorData)> = data.iter().map(|(n, d)| (*n, d)).collect();
    check("rank-1 linear", &g, &[row, col], &inputs, tol(9));
}

/// Every candidate configuration, forced, on shapes that take its bounds-checked path and
/// (where the blocks divide the shape) its unchecked one, with and without vector loads.
#[test]
fn every_tile_configuration_is_correct() {
    let Some(_) = gpu() else { return };
    let device = WgpuDevice::best().expect("adapter");
    let dev = Device::Wgpu(device.clone());
    let mut rng = Rng::new(35);
    for &config in TileConfig::candidates() {
        device.set_tuning(Tuning::Fixed(config));
        for &(m, k, n, ta, tb) in &[
            (3, 5, 7, false, false),
            (37, 19, 45, true, true),
            (128, 64, 256, false, false),
            (128, 32, 256, true, false),
            (256, 48, 128, false, true),
            (2, 33, 130, false, false),
        ] {
            let g = Graph::new();
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let a = g.input("a", sa, DType::F32).unwrap();
            let b = g.input("b", sb, DType::F32).unwrap();
            let bias = g.input("bias", [n], DType::F32).unwrap();
            let l = if ta { g.transpose(a, 0, 1).unwrap() } else { a };
            let r = if tb { g.transpose(b, 0, 1).unwrap() } else { b };
            let y = g.linear(l, r, Some(bias), Activation::Relu).unwrap();
            let da = random(&mut rng, sa, DType::F32, -1.0, 1.0);
            let db = random(&mut rng, sb, DType::F32, -1.0, 1.0);
            let dbias = random(&mut rng, [n], DType::F32, -1.0, 1.0);
            let inputs = [("a", &da), ("b", &db), ("bias", &dbias)];
            let want = Device::Cpu.compile(&g, &[y]).unwrap().run(&inputs).unwrap();
            let got = dev
                .compile(&g, &[y])
                .and_then(|mut e| e.run(&inputs))
                .unwrap_or_else(|e| panic!("{config}: {e}"));
            gradflux::compare(&want[0], &got[0], tol(k))
                .unwrap_or_else(|e| panic!("config {config}, {m}x{k}x{n} ta={ta} tb={tb}: {e}"));
        }
    }
}

/// f16 storage with f32 sums: the result differs from the reference (f64 sum, one rounding)
/// by about one f16 rounding, plus the epilogue's own rounding on the reference side.
fn tol_f16(k: usize) -> Tolerance {
    Tolerance::new(4e-3, 1e-3 + 2e-6 * k as f64)
}

/// The shared device where it can run f16 kernels (the refusal elsewhere is covered by
/// the errors suite).
fn f16_gpu() -> Option<Device> {
    crate::common::gpu_having(gradflux::wgpu::Features::SHADER_F16)
}

#[test]
fn f16_matmul_sums_in_f32() {
    if f16_gpu().is_none() {
        return;
    }
    let mut rng = Rng::new(36);
    for &(m, k, n) in SHAPES.iter().chain(&[(2, 2048, 3), (5, 3, 2)]) {
        let g = Graph::new();
        let a = g.input("a", [m, k], DType::F16).unwrap();
        let b = g.input("b", [k, n], DType::F16).unwrap();
        let y = g.matmul(a, b).unwrap();
        let da = random(&mut rng, [m, k], DType::F16, -1.0, 1.0);
        let db = random(&mut rng, [k, n], DType::F16, -1.0, 1.0);
        let out = check(
            &format!("f16 matmul {m}x{k}x{n}"),
            &g,
            &[y],
            &[("a", &da), ("b", &db)],
            tol_f16(k),
        );
        assert_eq!(out[0].dtype(), DType::F16);
    }
    // The fused epilogue and transposed operands in f16, and casts in and out.
    let (m, k, n) = (37, 64, 20);
    for act in Activation::ALL {
        let g = Graph::new();
        let x = g.input("x", [m, k], DType::F32).unwrap();
        let w = g.input("w", [n, k], DType::F16).unwrap();
        let b = g.input("b", [n], DType::F16).unwrap();
        let xh = g.cast(x, DType::F16).unwrap();
        let wt = g.transpose(w, 0, 1).unwrap();
        let y = g.linear(xh, wt, Some(b), act).unwrap();
        let y32 = g.cast(y, DType::F32).unwrap();
        let dx = random(&mut rng, [m, k], DType::F32, -1.0, 1.0);
        let dw = random(&mut rng, [n, k], DType::F16, -1.0, 1.0);
        let db = random(&mut rng, [n], DType::F16, -1.0, 1.0);
        check(
            &format!("f16 linear {act:?}"),
            &g,
            &[y32],
            &[("x", &dx), ("w", &dw), ("b", &db)],
            tol_f16(k),
        );
    }
}

#[test]
fn f16_casts_round_to_nearest_and_odd_lengths_round_trip() {
    if f16_gpu().is_none() {
        return;
    }
    // Odd lengths exercise the padding of 2-byte elements to whole words.
    for n in [1, 3, 7, 783] {
        let g = Graph::new();
        let x = g.input("x", [n], DType::F32).unwrap();
        let h = g.cast(x, DType::F16).unwrap();
        let back = g.cast(h, DType::F32).unwrap();
        let i = g.cast(h, DType::I32).unwrap();
        let mut rng = Rng::new(n as u64);
        let dx = random(&mut rng, [n], DType::F32, -3000.0, 3000.0);
        check(
            &format!("f16 casts n={n}"),
            &g,
            &[h, back, i],
            &[("x", &dx)],
            Tolerance::EXACT,
        );
    }
}

/// Matrix-vector products take their own kernel (the inner dimension split across a
/// workgroup): both layouts of the matrix, batches, ragged column counts, the epilogue,
/// integers and f16.
#[test]
fn matrix_vector_products_match_in_both_layouts() {
    let mut rng = Rng::new(37);
    for dtype in [DType::F32, DType::I32, DType::F16] {
        if dtype == DType::F16 && f16_gpu().is_none() {
            continue;
        }
        for &(batch, k, n) in &[(1, 64, 36), (3, 100, 8), (2, 4, 52), (1, 1000, 4)] {
            // x · w with w [k, n] (columns contiguous), and w · x with w [n, k], k % 4 == 0
            // (rows contiguous after the launcher's swap).
            for rows in [false, true] {
                if rows && k % 4 != 0 {
                    continue;
                }
                let g = Graph::new();
                let x = g.input("x", [batch, 1, k], dtype).unwrap();
                let ws = if rows { [n, k] } else { [k, n] };
                let w = g.input("w", ws, dtype).unwrap();
                let b = g.input("b", [n], dtype).unwrap();
                let act = if dtype.is_float() {
                    Activation::Tanh
                } else {
                    Activation::Relu
                };
                let y = if rows {
                    // (w · xᵀ)ᵀ written as x · wᵀ with w read in place.
                    g.linear(x, g.transpose(w, 0, 1).unwrap(), Some(b), act)
                        .unwrap()
                } else {
                    g.linear(x, w, Some(b), act).unwrap()
                };
                let plain = g.matmul(
                    x,
                    if rows {
                        g.transpose(w, 0, 1).unwrap()
                    } else {
                        w
                    },
                );
                let data = [
                    random(&mut rng, [batch, 1, k], dtype, -1.0, 1.0),
                    random(&mut rng, ws, dtype, -1.0, 1.0),
                    random(&mut rng, [n], dtype, -1.0, 1.0),
                ];
                let tol = match dtype {
                    DType::F16 => tol_f16(k),
                    d => tol_for(d, k),
                };
                check(
                    &format!("matvec {dtype} batch {batch} k {k} n {n} rows={rows}"),
                    &g,
                    &[y, plain.unwrap()],
                    &[("x", &data[0]), ("w", &data[1]), ("b", &data[2])],
                    tol,
                );
            }
        }
    }
}

/// A long inner dimension: on an adapter that stops long shader loops (llvmpipe) the
/// product splits k into chunks summed afterwards (bias and activation then run as their
/// own passes); elsewhere it is one launch. Either way it must match.
#[test]
fn long_inner_dimensions_split_k() {
    // All ones: every one of the k terms must be counted (it gave 15424 of 16384).
    let g = Graph::new();
    let a = g.input("a", [3, 16384], DType::F32).unwrap();
    let b = g.input("b", [16384, 5], DType::F32).unwrap();
    let y = g.matmul(a, b).unwrap();
    let ones = |r, c| TensorData::new([r, c], vec![1.0f32; r * c]).unwrap();
    let cpu = check(
        "ones [3, 16384] x [16384, 5]",
        &g,
        &[y],
        &[("a", &ones(3, 16384)), ("b", &ones(16384, 5))],
        Tolerance::EXACT,
    );
    assert!(cpu[0]
        .values::<f32>()
        .unwrap()
        .iter()
        .all(|&v| v == 16384.0));

    let mut rng = Rng::new(40);
    for (m, k, n, ta, tb) in [
        (7, 70_001, 9, false, false),
        (5, 40_000, 6, true, false),
        (6, 33_333, 4, false, true),
        (2, 50_000, 1, true, true),
    ] {
        for act in [Activation::Identity, Activation::Tanh] {
            let g = Graph::new();
            let a_dims = if ta { [2, k, m] } else { [2, m, k] };
            let b_dims = if tb { [n, k] } else { [k, n] };
            let a = g.input("a", a_dims, DType::F32).unwrap();
            let b = g.input("b", b_dims, DType::F32).unwrap();
            let bias = g.input("bias", [n], DType::F32).unwrap();
            let a_op = if ta { g.transpose(a, 1, 2).unwrap() } else { a };
            let b_op = if tb { g.transpose(b, 0, 1).unwrap() } else { b };
            let outs = [
                g.matmul(a_op, b_op).unwrap(),
                g.linear(a_op, b_op, Some(bias), act).unwrap(),
            ];
            let data = [
                ("a", random(&mut rng, a_dims, DType::F32, -1.0, 1.0)),
                ("b", random(&mut rng, b_dims, DType::F32, -1.0, 1.0)),
                ("bias", random(&mut rng, [n], DType::F32, -1.0, 1.0)),
            ];
            let inputs: Vec<(&str, &TensorData)> = data.iter().map(|(s, d)| (*s, d)).collect();
            check(
                &format!("[2, {m}, {k}] x [{k}, {n}] ta {ta} tb {tb} {act:?}"),
                &g,
                &outs,
                &inputs,
                tol(k),
            );
        }
    }
}
