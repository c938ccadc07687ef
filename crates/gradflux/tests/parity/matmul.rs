use gradflux::{DType, Graph, Tolerance};

use crate::common::{check, random, Rng};

/// f32 accumulation on the GPU against f64 in the reference: error grows with `k`.
fn tol(k: usize) -> Tolerance {
    Tolerance::new(1e-5, 2e-6 * k as f64)
}

#[test]
fn matmul_matches_across_tile_boundaries() {
    let mut rng = Rng::new(30);
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 9),
        (50, 783, 3),
        (64, 64, 64),
        (1, 4096, 1),
        (31, 16, 47),
    ] {
        for dtype in [DType::F32, DType::I32, DType::U32] {
            let g = Graph::new();
            let a = g.input("a", [m, k], dtype).unwrap();
            let b = g.input("b", [k, n], dtype).unwrap();
            let y = g.matmul(a, b).unwrap();
            let da = random(&mut rng, [m, k], dtype, -1.0, 1.0);
            let db = random(&mut rng, [k, n], dtype, -1.0, 1.0);
            let t = if dtype == DType::F32 {
                tol(k)
            } else {
                Tolerance::EXACT
            };
            check(
                &format!("matmul {m}x{k}x{n} {dtype}"),
                &g,
                &[y],
                &[("a", &da), ("b", &db)],
                t,
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
            tol(20),
        );
    }
}
