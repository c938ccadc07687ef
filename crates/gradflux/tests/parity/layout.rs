use gradflux::{DType, Graph, Tolerance};

use crate::common::{check, random, Rng};

const DTYPES: [DType; 3] = [DType::F32, DType::I32, DType::U32];

#[test]
fn permutes_and_transposes_match() {
    let mut rng = Rng::new(20);
    let perms3: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for dtype in DTYPES {
        for perm in perms3 {
            let g = Graph::new();
            let x = g.input("x", [3, 5, 17], dtype).unwrap();
            // Follow with an op so the permuted layout is read by another kernel too.
            let y = g.permute(x, &perm).unwrap();
            let z = g.neg(g.cast(y, DType::F32).unwrap()).unwrap();
            let data = random(&mut rng, [3, 5, 17], dtype, -100.0, 100.0);
            check(
                &format!("permute {perm:?} {dtype}"),
                &g,
                &[y, z],
                &[("x", &data)],
                Tolerance::EXACT,
            );
        }
        let g = Graph::new();
        let x = g.input("x", [2, 3, 4, 5], dtype).unwrap();
        let y = g.transpose(x, 0, -1).unwrap();
        let data = random(&mut rng, [2, 3, 4, 5], dtype, -100.0, 100.0);
        check(
            &format!("transpose {dtype}"),
            &g,
            &[y],
            &[("x", &data)],
            Tolerance::EXACT,
        );
    }
}

#[test]
fn reshapes_feed_other_ops() {
    let mut rng = Rng::new(21);
    let g = Graph::new();
    let x = g.input("x", [6, 35], DType::F32).unwrap();
    let r = g.reshape(x, [2, 3, 5, 7]).unwrap();
    let t = g.transpose(r, 1, 3).unwrap();
    let back = g.reshape(t, [210]).unwrap();
    let y = g.exp(back).unwrap();
    let data = random(&mut rng, [6, 35], DType::F32, -2.0, 2.0);
    check(
        "reshape chain",
        &g,
        &[r, back, y],
        &[("x", &data)],
        Tolerance::new(1e-6, 0.0),
    );
}

#[test]
fn slices_match_on_every_axis() {
    let mut rng = Rng::new(22);
    let shape = [7usize, 50, 9];
    for dtype in DTYPES {
        for axis in 0..3 {
            let len = shape[axis];
            for (start, end, step) in [
                (0, len, 1),
                (1, len - 1, 1),
                (0, len, 2),
                (2, len, 3),
                (3, 3, 1),
                (len - 1, len, 5),
            ] {
                let g = Graph::new();
                let x = g.input("x", shape, dtype).unwrap();
                let y = g.slice_step(x, axis as isize, start, end, step).unwrap();
                let data = random(&mut rng, shape, dtype, -100.0, 100.0);
                check(
                    &format!("slice axis {axis} {start}..{end} step {step} {dtype}"),
                    &g,
                    &[y],
                    &[("x", &data)],
                    Tolerance::EXACT,
                );
            }
        }
    }
}

#[test]
fn concats_match_on_every_axis() {
    let mut rng = Rng::new(23);
    for dtype in DTYPES {
        for axis in 0..3 {
            let mut shapes = [[3usize, 4, 5], [3, 4, 5], [3, 4, 5]];
            shapes[1][axis] = 1;
            shapes[2][axis] = 7;
            let g = Graph::new();
            let mut ins = Vec::new();
            let mut data = Vec::new();
            for (i, s) in shapes.iter().enumerate() {
                ins.push(g.input(&format!("x{i}"), *s, dtype).unwrap());
                data.push((format!("x{i}"), random(&mut rng, *s, dtype, -100.0, 100.0)));
            }
            let y = g.concat(&ins, axis as isize).unwrap();
            let named: Vec<(&str, &gradflux::TensorData)> =
                data.iter().map(|(n, d)| (n.as_str(), d)).collect();
            check(
                &format!("concat axis {axis} {dtype}"),
                &g,
                &[y],
                &named,
                Tolerance::EXACT,
            );
        }
    }
}

#[test]
fn broadcast_to_matches() {
    let mut rng = Rng::new(24);
    for dtype in DTYPES {
        for (from, to) in [
            (vec![1, 5], vec![4, 5]),
            (vec![3, 1, 2], vec![2, 3, 4, 2]),
            (vec![], vec![783]),
            (vec![300, 1], vec![300, 17]),
        ] {
            let g = Graph::new();
            let x = g.input("x", from.clone(), dtype).unwrap();
            let y = g.broadcast_to(x, to.clone()).unwrap();
            let data = random(&mut rng, from.clone(), dtype, -100.0, 100.0);
            check(
                &format!("broadcast {from:?}->{to:?} {dtype}"),
                &g,
                &[y],
                &[("x", &data)],
                Tolerance::EXACT,
            );
        }
    }
}
