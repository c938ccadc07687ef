use gradflux::{DType, Device, Error, Graph, TensorData, Tolerance};

use crate::common::{check, gpu, random, random_small_ints_f32, Rng};

/// Runs `top_k` on both backends; values and indices must match exactly.
fn top_k_case(
    label: &str,
    shape: &[usize],
    axis: isize,
    k: usize,
    data: &TensorData,
) -> Vec<TensorData> {
    let g = Graph::new();
    let x = g.input("x", shape.to_vec(), data.dtype()).unwrap();
    let (v, i) = g.top_k(x, k, axis).unwrap();
    check(label, &g, &[v, i], &[("x", data)], Tolerance::EXACT)
}

#[test]
fn top_k_matches_on_short_and_long_rows_with_ties() {
    let mut rng = Rng::new(50);
    // Short rows (one pass), the chunk boundary, and long rows (several passes).
    for (rows, n, ks) in [
        (5, 1, vec![1]),
        (4, 2, vec![1, 2]),
        (3, 7, vec![1, 3, 7]),
        (7, 256, vec![1, 8, 256]),
        (2, 257, vec![2, 100, 257]),
        (2, 2048, vec![1, 1024, 2048]),
        (2, 2049, vec![8, 1024]),
        (3, 5000, vec![1, 8, 1000]),
        (1, 70_000, vec![2, 1024]),
    ] {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            // Few distinct values: most selections are decided by the index rule.
            let data = if dtype == DType::F32 {
                random_small_ints_f32(&mut rng, [rows, n], -5, 5)
            } else {
                random(&mut rng, [rows, n], dtype, 0.0, 9.0)
            };
            for &k in &ks {
                top_k_case(
                    &format!("top_k {dtype} {rows}x{n} k={k}"),
                    &[rows, n],
                    -1,
                    k,
                    &data,
                );
            }
        }
        let data = random(&mut rng, [rows, n], DType::F32, -1.0, 1.0);
        top_k_case(
            &format!("top_k f32 distinct {rows}x{n}"),
            &[rows, n],
            1,
            ks[0],
            &data,
        );
    }
}

#[test]
fn top_k_along_a_middle_axis() {
    let mut rng = Rng::new(51);
    for n in [5, 300, 3000] {
        let data = random_small_ints_f32(&mut rng, [3, n, 4], -3, 3);
        for k in [1, 5] {
            top_k_case(
                &format!("top_k axis 1 n={n} k={k}"),
                &[3, n, 4],
                1,
                k,
                &data,
            );
        }
    }
}

#[test]
fn top_k_order_is_total_nan_first_zeros_tied_lower_index_first() {
    let nan = f32::NAN;
    let row = vec![
        1.0,
        -0.0,
        nan,
        f32::INFINITY,
        0.0,
        nan,
        -1.0,
        f32::NEG_INFINITY,
        1.0,
    ];
    let data = TensorData::new([1, row.len()], row.clone()).unwrap();
    let out = top_k_case(
        "top_k special values",
        &[1, row.len()],
        -1,
        row.len(),
        &data,
    );
    let idx: Vec<u32> = out[1].values::<u32>().unwrap().to_vec();
    // NaNs (in index order), +inf, the two ones, then -0.0 and 0.0 tied by index, ...
    assert_eq!(idx, vec![2, 5, 3, 0, 8, 1, 4, 6, 7]);

    // All-equal logits: the first k positions, in order.
    let data = TensorData::new([2, 600], vec![0.25f32; 1200]).unwrap();
    let out = top_k_case("top_k all equal", &[2, 600], -1, 4, &data);
    assert_eq!(out[1].values::<u32>().unwrap(), &[0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn top_k_refuses_bad_k_and_unsupported_cases_clearly() {
    let g = Graph::new();
    let x = g.input("x", [4, 10], DType::F32).unwrap();
    for k in [0, 11] {
        let err = g.top_k(x, k, -1).unwrap_err();
        assert!(matches!(err, Error::Shape { op: "top_k", .. }), "{err}");
        assert!(
            err.to_string()
                .contains("between 1 and the length of axis 1 (10)"),
            "{err}"
        );
    }
    assert!(g.top_k(x, 1, 2).is_err(), "axis out of range");

    let Some(gpu) = gpu() else { return };
    let g = Graph::new();
    let x = g.input("x", [1, 5000], DType::F32).unwrap();
    let (v, _) = g.top_k(x, 2000, -1).unwrap();
    let err = gpu
        .compile(&g, &[v])
        .err()
        .expect("k over the long-row limit is refused");
    assert!(err.to_string().contains("k up to 1024"), "{err}");
    // The CPU reference has no such limit.
    let data = random(&mut Rng::new(52), [1, 5000], DType::F32, -1.0, 1.0);
    Device::Cpu
        .compile(&g, &[v])
        .unwrap()
        .run(&[("x", &data)])
        .unwrap();
}

#[test]
fn gather_along_and_scatter_along_match_with_repeats_and_out_of_range() {
    let mut rng = Rng::new(53);
    for dtype in [DType::F32, DType::I32, DType::U32] {
        let tol = if dtype == DType::F32 {
            Tolerance::new(1e-6, 1e-5)
        } else {
            Tolerance::EXACT
        };
        for (shape, axis, m) in [
            (vec![6, 9], 1usize, 4usize),
            (vec![3, 300, 5], 1, 7),
            (vec![40, 3], 0, 50),
        ] {
            let len = shape[axis];
            let mut ishape = shape.clone();
            ishape[axis] = m;
            // i32 indices with negatives and values past the end.
            let idx = random(&mut rng, ishape.clone(), DType::I32, -2.0, len as f64 + 2.0);
            let g = Graph::new();
            let x = g.input("x", shape.clone(), dtype).unwrap();
            let i = g.input("i", ishape.clone(), DType::I32).unwrap();
            let y = g.gather_along(x, axis as isize, i).unwrap();
            let dx = random(&mut rng, shape.clone(), dtype, -50.0, 50.0);
            check(
                &format!("gather_along {dtype} {shape:?}"),
                &g,
                &[y],
                &[("x", &dx), ("i", &idx)],
                Tolerance::EXACT,
            );

            let g = Graph::new();
            let s = g.input("s", ishape.clone(), dtype).unwrap();
            let i = g.input("i", ishape.clone(), DType::I32).unwrap();
            let y = g.scatter_along(s, axis as isize, i, len).unwrap();
            let ds = random(&mut rng, ishape.clone(), dtype, 0.0, 50.0);
            check(
                &format!("scatter_along {dtype} {shape:?}"),
                &g,
                &[y],
                &[("s", &ds), ("i", &idx)],
                tol,
            );
        }
    }
    // Shape errors name what was expected.
    let g = Graph::new();
    let x = g.input("x", [4, 5], DType::F32).unwrap();
    let i = g.input("i", [3, 2], DType::U32).unwrap();
    let err = g.gather_along(x, 1, i).unwrap_err();
    assert!(err.to_string().contains("except at axis 1"), "{err}");
    let err = g.scatter_along(x, 1, i, 9).unwrap_err();
    assert!(err.to_string().contains("must have src's shape"), "{err}");
    let f = g.input("f", [4, 2], DType::F32).unwrap();
    assert!(matches!(g.gather_along(x, 1, f), Err(Error::DType { .. })));
}

/// Long lanes into many rows take the sorted path on wgpu (each lane sorts its positions,
/// then each output sums its run in position order): the same sums as the direct walk,
/// for every dtype, with repeats, out-of-range and negative indices, across an outer and
/// an inner axis and an odd lane length.
#[test]
fn scatter_along_by_sorted_indices_matches() {
    let mut rng = Rng::new(59);
    let (outer, m, inner, dim) = (3, 517, 2, 33);
    for dtype in [DType::F32, DType::I32, DType::U32] {
        let tol = if dtype == DType::F32 {
            Tolerance::new(1e-5, 1e-4)
        } else {
            Tolerance::EXACT
        };
        let g = Graph::new();
        let s = g.input("s", [outer, m, inner], dtype).unwrap();
        let i = g.input("i", [outer, m, inner], DType::I32).unwrap();
        let y = g.scatter_along(s, 1, i, dim).unwrap();
        let ds = random(&mut rng, [outer, m, inner], dtype, -10.0, 10.0);
        let idx: Vec<i32> = (0..outer * m * inner)
            .map(|_| rng.int(-3, dim as i64 + 3) as i32)
            .collect();
        let di = TensorData::new([outer, m, inner], idx.clone()).unwrap();
        let feeds = [("s", &ds), ("i", &di)];
        check(
            &format!("sorted scatter_along {dtype}"),
            &g,
            &[y],
            &feeds,
            tol,
        );
        // In f32 the adapter's sums are those of a walk in position order, bit for bit.
        if let (DType::F32, Some(gpu)) = (dtype, gpu()) {
            let got = gpu
                .compile(&g, &[y])
                .and_then(|mut e| e.run(&feeds))
                .unwrap();
            let src = ds.values::<f32>().unwrap();
            let mut want = vec![0.0f32; outer * dim * inner];
            for o in 0..outer {
                for j in 0..m {
                    for e in 0..inner {
                        let at = (o * m + j) * inner + e;
                        if (0..dim as i32).contains(&idx[at]) {
                            want[(o * dim + idx[at] as usize) * inner + e] += src[at];
                        }
                    }
                }
            }
            assert_eq!(
                got[0].values::<f32>().unwrap(),
                &want[..],
                "sums in position order"
            );
        }
    }
}
