use gradflux::{DType, Graph, TensorData, Tolerance};

use crate::common::{check, random, Rng};

#[test]
fn gather_matches_with_out_of_range_indices() {
    let mut rng = Rng::new(40);
    for dtype in [DType::F32, DType::I32, DType::U32] {
        // axis 0 with u32 indices, two of them out of range
        let g = Graph::new();
        let x = g.input("x", [10, 4], dtype).unwrap();
        let i = g.input("i", [2, 3], DType::U32).unwrap();
        let y = g.gather(x, 0, i).unwrap();
        let dx = random(&mut rng, [10, 4], dtype, -100.0, 100.0);
        let di = TensorData::new([2, 3], vec![0u32, 9, 10, 3, 3, 99]).unwrap();
        let cpu = check(
            &format!("gather axis0 {dtype}"),
            &g,
            &[y],
            &[("x", &dx), ("i", &di)],
            Tolerance::EXACT,
        );
        assert!(
            cpu[0].to_f64_vec()[8..12].iter().all(|&v| v == 0.0),
            "index 10 reads 0"
        );

        // a middle axis with i32 indices, including negatives
        let g = Graph::new();
        let x = g.input("x", [3, 783, 2], dtype).unwrap();
        let i = g.input("i", [50], DType::I32).unwrap();
        let y = g.gather(x, 1, i).unwrap();
        let dx = random(&mut rng, [3, 783, 2], dtype, -100.0, 100.0);
        let di = random(&mut rng, [50], DType::I32, -3.0, 790.0);
        check(
            &format!("gather axis1 {dtype}"),
            &g,
            &[y],
            &[("x", &dx), ("i", &di)],
            Tolerance::EXACT,
        );
    }
}

#[test]
fn scatter_add_matches_with_repeats_and_out_of_range() {
    let mut rng = Rng::new(41);
    for dtype in [DType::F32, DType::I32, DType::U32] {
        let tol = if dtype == DType::F32 {
            Tolerance::new(1e-6, 1e-5)
        } else {
            Tolerance::EXACT
        };
        let g = Graph::new();
        let src = g.input("src", [6, 4], dtype).unwrap();
        let i = g.input("i", [6], DType::I32).unwrap();
        let y = g.scatter_add(src, 0, i, 5).unwrap();
        let ds = random(&mut rng, [6, 4], dtype, -10.0, 10.0);
        let di = TensorData::new([6], vec![0i32, 2, 2, -1, 5, 4]).unwrap();
        check(
            &format!("scatter_add axis0 {dtype}"),
            &g,
            &[y],
            &[("src", &ds), ("i", &di)],
            tol,
        );

        let g = Graph::new();
        let src = g.input("src", [3, 50, 2], dtype).unwrap();
        let i = g.input("i", [50], DType::U32).unwrap();
        let y = g.scatter_add(src, 1, i, 10).unwrap();
        let ds = random(&mut rng, [3, 50, 2], dtype, -10.0, 10.0);
        let di = random(&mut rng, [50], DType::U32, 0.0, 11.0);
        check(
            &format!("scatter_add axis1 {dtype}"),
            &g,
            &[y],
            &[("src", &ds), ("i", &di)],
            tol,
        );
    }
}

/// Many rows and many indices take the sorted path on wgpu (a bitonic sort of the
/// positions, then each output sums its run in position order): the same sums as the
/// direct walk, for every dtype, with repeats, out-of-range and negative indices, across
/// an outer and an inner axis and an odd index count.
#[test]
fn scatter_add_by_sorted_indices_matches() {
    let mut rng = Rng::new(43);
    let (outer, m, inner, dim) = (2, 3001, 3, 257);
    for dtype in [DType::F32, DType::I32, DType::U32] {
        let tol = if dtype == DType::F32 {
            Tolerance::new(1e-5, 1e-4)
        } else {
            Tolerance::EXACT
        };
        let g = Graph::new();
        let src = g.input("src", [outer, m, inner], dtype).unwrap();
        let i = g.input("i", [m], DType::I32).unwrap();
        let y = g.scatter_add(src, 1, i, dim).unwrap();
        let ds = random(&mut rng, [outer, m, inner], dtype, -10.0, 10.0);
        // Mostly valid rows with repeats, some past the end and some negative.
        let idx: Vec<i32> = (0..m).map(|_| rng.int(-3, dim as i64 + 3) as i32).collect();
        let di = TensorData::new([m], idx.clone()).unwrap();
        check(
            &format!("sorted scatter_add {dtype}"),
            &g,
            &[y],
            &[("src", &ds), ("i", &di)],
            tol,
        );
        // In f32 the adapter's sums are those of a walk in position order, bit for bit.
        if let (DType::F32, Some(gpu)) = (dtype, crate::common::gpu()) {
            let got = gpu
                .compile(&g, &[y])
                .and_then(|mut e| e.run(&[("src", &ds), ("i", &di)]))
                .unwrap();
            let src = ds.values::<f32>().unwrap();
            let mut want = vec![0.0f32; outer * dim * inner];
            for o in 0..outer {
                for (j, &t) in idx.iter().enumerate() {
                    if (0..dim as i32).contains(&t) {
                        for e in 0..inner {
                            let at = (o * dim + t as usize) * inner + e;
                            want[at] += src[(o * m + j) * inner + e];
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

#[test]
fn scatter_add_is_the_adjoint_of_gather() {
    // <gather(x, idx), y> == <x, scatter_add(y, idx)>, checked on both backends.
    let mut rng = Rng::new(42);
    let g = Graph::new();
    let x = g.input("x", [20, 3], DType::F32).unwrap();
    let yv = g.input("y", [15, 3], DType::F32).unwrap();
    let i = g.input("i", [15], DType::U32).unwrap();
    let lhs = g
        .sum_all(g.mul(g.gather(x, 0, i).unwrap(), yv).unwrap())
        .unwrap();
    let rhs = g
        .sum_all(g.mul(x, g.scatter_add(yv, 0, i, 20).unwrap()).unwrap())
        .unwrap();
    let dx = random(&mut rng, [20, 3], DType::F32, -1.0, 1.0);
    let dy = random(&mut rng, [15, 3], DType::F32, -1.0, 1.0);
    let di = random(&mut rng, [15], DType::U32, 0.0, 19.0);
    let out = check(
        "adjoint",
        &g,
        &[lhs, rhs],
        &[("x", &dx), ("y", &dy), ("i", &di)],
        Tolerance::new(1e-5, 1e-5),
    );
    let (l, r) = (out[0].to_f64_vec()[0], out[1].to_f64_vec()[0]);
    assert!((l - r).abs() < 1e-4, "{l} vs {r}");
}

/// Each output walks every index: past 65 535 indices a software driver's loop limit
/// would cut the walk short, so there the indices are tiled and the tiles' sums added.
#[test]
fn scatters_over_more_than_65535_indices_count_every_one() {
    let mut rng = Rng::new(44);
    let n = 70_001;
    for dtype in [DType::F32, DType::I32] {
        let g = Graph::new();
        let src = g.input("src", [n, 3], dtype).unwrap();
        let idx = g.input("idx", [n], DType::U32).unwrap();
        let rows = g.input("rows", [3, n], DType::U32).unwrap();
        let along_src = g.input("along", [3, n], dtype).unwrap();
        let outs = [
            g.scatter_add(src, 0, idx, 4).unwrap(),
            g.scatter_along(along_src, 1, rows, 5).unwrap(),
        ];
        let data = [
            ("src", random(&mut rng, [n, 3], dtype, -4.0, 4.0)),
            ("idx", random(&mut rng, [n], DType::U32, 0.0, 4.0)),
            ("rows", random(&mut rng, [3, n], DType::U32, 0.0, 5.0)),
            ("along", random(&mut rng, [3, n], dtype, -4.0, 4.0)),
        ];
        let inputs: Vec<(&str, &TensorData)> = data.iter().map(|(k, v)| (*k, v)).collect();
        let tol = if dtype == DType::F32 {
            Tolerance::new(1e-5, 1e-2)
        } else {
            Tolerance::EXACT
        };
        check(
            &format!("scatters over {n} {dtype}"),
            &g,
            &outs,
            &inputs,
            tol,
        );
    }
    // Ones into one row: the count is exact.
    let g = Graph::new();
    let src = g.input("src", [n], DType::F32).unwrap();
    let idx = g.input("idx", [n], DType::U32).unwrap();
    let counts = g.scatter_add(src, 0, idx, 2).unwrap();
    let ones = TensorData::new([n], vec![1.0f32; n]).unwrap();
    let zeros = TensorData::new([n], vec![0u32; n]).unwrap();
    let cpu = check(
        "counting",
        &g,
        &[counts],
        &[("src", &ones), ("idx", &zeros)],
        Tolerance::EXACT,
    );
    assert_eq!(cpu[0].values::<f32>().unwrap(), &[n as f32, 0.0]);
}
