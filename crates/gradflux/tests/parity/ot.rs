//! `softmin`, the half-step of log-domain Sinkhorn: CPU (f64 inside) against wgpu (f32)
//! at awkward and batched shapes, down to eps = 1e-4 of the cost scale, both axes.

use gradflux::{DType, Graph, SoftminAxis, TensorData, Tolerance};

use crate::common::{check, random, Rng};

/// Potentials are O(1) like the cost; f32 rounds `h − cost/eps` to about one ulp of
/// `cost/eps`, which `eps` scales back to about one ulp of the cost.
const POTENTIALS: Tolerance = Tolerance::new(1e-5, 1e-5);

/// `h = log(1/len) + g/eps` for potentials `g` in [0, 0.5]: what a Sinkhorn step feeds in.
fn log_weighted(rng: &mut Rng, dims: &[usize], eps: f64) -> TensorData {
    let len = *dims.last().unwrap() as f64;
    let g = random(rng, dims.to_vec(), DType::F64, 0.0, 0.5).to_f64_vec();
    let h: Vec<f32> = g.iter().map(|v| (-len.ln() + v / eps) as f32).collect();
    TensorData::new(dims.to_vec(), h).unwrap()
}

fn case(rng: &mut Rng, batch: &[usize], (n, m): (usize, usize), eps: f64, axis: SoftminAxis) {
    let label = format!("softmin {axis:?} batch {batch:?} {n}x{m} eps {eps}");
    let mut cdims = batch.to_vec();
    cdims.extend([n, m]);
    let mut hdims = batch.to_vec();
    hdims.push(if axis == SoftminAxis::PerRow { m } else { n });
    let cost = random(rng, cdims.clone(), DType::F32, 0.0, 1.0);
    let h = log_weighted(rng, &hdims, eps);
    let g = Graph::new();
    let c = g.input("cost", cdims, DType::F32).unwrap();
    let hv = g.input("h", hdims, DType::F32).unwrap();
    let out = g.softmin(c, hv, eps, axis).unwrap();
    let got = check(
        &label,
        &g,
        &[out],
        &[("cost", &cost), ("h", &h)],
        POTENTIALS,
    );
    // As eps shrinks the soft minimum approaches min(cost − eps·h) from below by at most
    // eps·log(len) (the CPU output, checked here against that bound).
    let want = got[0].to_f64_vec();
    let (c64, h64) = (cost.to_f64_vec(), h.to_f64_vec());
    let per = n * m;
    for (k, w) in want.iter().enumerate() {
        let (b, o) = match axis {
            SoftminAxis::PerRow => (k / n, k % n),
            SoftminAxis::PerColumn => (k / m, k % m),
        };
        let len = if axis == SoftminAxis::PerRow { m } else { n };
        let hard = (0..len)
            .map(|r| {
                let (i, j) = if axis == SoftminAxis::PerRow {
                    (o, r)
                } else {
                    (r, o)
                };
                c64[b * per + i * m + j] - eps * h64[b * len + r]
            })
            .fold(f64::INFINITY, f64::min);
        let slack = eps * (len as f64).ln() + 1e-6;
        assert!(
            *w <= hard + 1e-6 && *w >= hard - slack,
            "{label}: output {k} = {w} is not within eps·log(len) below the minimum {hard}"
        );
    }
}

#[test]
fn softmin_matches_at_awkward_and_batched_shapes() {
    let mut rng = Rng::new(70);
    for axis in [SoftminAxis::PerRow, SoftminAxis::PerColumn] {
        for (batch, shape) in [
            (vec![], (1, 1)),
            (vec![], (3, 5)),
            (vec![], (127, 129)),
            (vec![], (1000, 7)),
            (vec![], (7, 3000)),
            (vec![3], (65, 63)),
            (vec![2, 2], (17, 200)),
        ] {
            case(&mut rng, &batch, shape, 0.1, axis);
        }
    }
}

#[test]
fn softmin_is_stable_down_to_eps_1e_minus_4() {
    let mut rng = Rng::new(71);
    for eps in [1.0, 1e-2, 1e-3, 1e-4] {
        for axis in [SoftminAxis::PerRow, SoftminAxis::PerColumn] {
            case(&mut rng, &[2], (300, 257), eps, axis);
        }
    }
}

/// A row whose every term is `-inf` (infinite costs) gives `+inf`; an infinite `h` term
/// gives `-inf`; NaN spreads to its row only.
#[test]
fn softmin_special_values_match() {
    let inf = f32::INFINITY;
    let cost = TensorData::new(
        [4, 3],
        vec![
            inf,
            inf,
            inf,
            0.0,
            f32::NAN,
            1.0,
            0.5,
            0.25,
            2.0,
            1.0,
            1.0,
            1.0,
        ],
    )
    .unwrap();
    let h = TensorData::new([3], vec![0.0f32, 0.0, 0.0]).unwrap();
    let g = Graph::new();
    let c = g.input("cost", [4, 3], DType::F32).unwrap();
    let hv = g.input("h", [3], DType::F32).unwrap();
    let out = g.softmin(c, hv, 0.5, SoftminAxis::PerRow).unwrap();
    // The same rows read as columns of the transposed cost.
    let by_column = g
        .softmin(
            g.transpose(c, 0, 1).unwrap(),
            hv,
            0.5,
            SoftminAxis::PerColumn,
        )
        .unwrap();
    let got = check(
        "softmin special",
        &g,
        &[out, by_column],
        &[("cost", &cost), ("h", &h)],
        POTENTIALS,
    );
    let (a, b) = (got[0].to_f64_vec(), got[1].to_f64_vec());
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())));
    let v = got[0].values::<f32>().unwrap();
    assert_eq!(v[0], inf, "all-infinite costs");
    assert!(v[1].is_nan(), "NaN cost");
    assert!(v[2].is_finite() && v[3].is_finite(), "{v:?}");
    // Three equal costs: −eps·log(3·exp(−1/eps)) = 1 − eps·log 3.
    assert!((v[3] - (1.0 - 0.5 * 3f32.ln())).abs() < 1e-6, "{}", v[3]);
    let h_inf = TensorData::new([3], vec![0.0f32, inf, 0.0]).unwrap();
    let got = check(
        "softmin +inf h",
        &g,
        &[out, by_column],
        &[("cost", &cost), ("h", &h_inf)],
        POTENTIALS,
    );
    assert_eq!(got[0].values::<f32>().unwrap()[2], -inf);
    assert_eq!(got[1].values::<f32>().unwrap()[2], -inf);
}

#[test]
fn softmin_misuse_is_refused_by_name() {
    let g = Graph::new();
    let c = g.input("cost", [4, 3], DType::F32).unwrap();
    let h = g.input("h", [4], DType::F32).unwrap();
    let err = g
        .softmin(c, h, 0.1, SoftminAxis::PerRow)
        .unwrap_err()
        .to_string();
    assert!(err.contains("h must be [3]"), "{err}");
    let h3 = g.input("h3", [3], DType::F32).unwrap();
    for eps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = g
            .softmin(c, h3, eps, SoftminAxis::PerRow)
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive finite"), "{err}");
    }
    let v = g.input("v", [3], DType::F32).unwrap();
    let err = g
        .softmin(v, h3, 0.1, SoftminAxis::PerRow)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rank 2 or more"), "{err}");
    let hi = g.input("hi", [3], DType::I32).unwrap();
    let err = g
        .softmin(c, hi, 0.1, SoftminAxis::PerRow)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype"), "{err}");
}

/// The online soft minimum equals the dense one over the materialised cost, across tile
/// (64 points) and chunk (8 coordinates) boundaries, batched; NaN and infinite points
/// propagate as the dense kernel's special values do.
#[test]
fn point_softmin_matches_the_dense_softmin() {
    use gradflux::PointCost;
    let mut rng = Rng::new(71);
    for (batch, (n, m, d), cost) in [
        (vec![], (1, 1, 1), PointCost::SqEuclidean),
        (vec![], (65, 130, 2), PointCost::SqEuclidean),
        (vec![3], (7, 64, 9), PointCost::Euclidean),
        (vec![], (129, 3, 24), PointCost::SqEuclidean),
    ] {
        let dims = |tail: &[usize]| [&batch[..], tail].concat();
        let x = random(&mut rng, dims(&[n, d]), DType::F32, -1.0, 1.0);
        let y = random(&mut rng, dims(&[m, d]), DType::F32, -1.0, 1.0);
        let h = random(&mut rng, dims(&[m]), DType::F32, -2.0, 2.0);
        let g = Graph::new();
        let (xt, yt, ht) = (
            g.input("x", x.shape().clone(), DType::F32).unwrap(),
            g.input("y", y.shape().clone(), DType::F32).unwrap(),
            g.input("h", h.shape().clone(), DType::F32).unwrap(),
        );
        let online = g.point_softmin(xt, yt, ht, 0.1, cost).unwrap();
        let out = check(
            &format!("point_softmin {batch:?} {n}x{m}x{d} {cost:?}"),
            &g,
            &[online],
            &[("x", &x), ("y", &y), ("h", &h)],
            Tolerance::new(1e-5, 1e-6),
        );
        // The same values from the dense kernel over the cost built point by point.
        let (xv, yv) = (x.to_f64_vec(), y.to_f64_vec());
        let problems: usize = batch.iter().product();
        let mut c = Vec::with_capacity(problems * n * m);
        for b in 0..problems {
            for i in 0..n {
                for j in 0..m {
                    let d2: f64 = (0..d)
                        .map(|k| (xv[(b * n + i) * d + k] - yv[(b * m + j) * d + k]).powi(2))
                        .sum();
                    c.push(cost.of_sq_distance(d2) as f32);
                }
            }
        }
        let c = TensorData::new(dims(&[n, m]), c).unwrap();
        let g = Graph::new();
        let (ct, ht) = (
            g.input("c", c.shape().clone(), DType::F32).unwrap(),
            g.input("h", h.shape().clone(), DType::F32).unwrap(),
        );
        let dense = g.softmin(ct, ht, 0.1, SoftminAxis::PerRow).unwrap();
        let want = check(
            "dense",
            &g,
            &[dense],
            &[("c", &c), ("h", &h)],
            Tolerance::new(1e-5, 1e-6),
        );
        gradflux::compare(&want[0], &out[0], Tolerance::new(1e-5, 1e-6)).unwrap();
    }

    // Special values: a NaN coordinate gives NaN; an infinite one drops the point from
    // every sum (cost +inf); a row whose every point is dropped gets +inf.
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let x = TensorData::new([3, 1], vec![0.0f32, nan, 1.0]).unwrap();
    let y = TensorData::new([2, 1], vec![inf, 0.5]).unwrap();
    let h = TensorData::new([2], vec![0.0f32, 0.0]).unwrap();
    let g = Graph::new();
    let (xt, yt, ht) = (
        g.input("x", [3, 1], DType::F32).unwrap(),
        g.input("y", [2, 1], DType::F32).unwrap(),
        g.input("h", [2], DType::F32).unwrap(),
    );
    let out = g
        .point_softmin(xt, yt, ht, 1.0, gradflux::PointCost::SqEuclidean)
        .unwrap();
    let got = check(
        "point_softmin special values",
        &g,
        &[out],
        &[("x", &x), ("y", &y), ("h", &h)],
        Tolerance::new(1e-6, 1e-7),
    )[0]
    .to_f64_vec();
    assert!((got[0] - 0.25).abs() < 1e-6 && got[1].is_nan(), "{got:?}");
    let y_all_inf = TensorData::new([2, 1], vec![inf, -inf]).unwrap();
    let got = check(
        "point_softmin all points dropped",
        &g,
        &[out],
        &[("x", &x), ("y", &y_all_inf), ("h", &h)],
        Tolerance::new(1e-6, 1e-7),
    )[0]
    .to_f64_vec();
    assert_eq!(got[0], f64::INFINITY, "{got:?}");
}

/// Clouds too large for one invocation to walk within a software driver's loop limit are
/// reduced in spans merged afterwards, where the adapter has such a limit; special values
/// placed in different spans keep their rules.
#[test]
fn point_softmin_and_sinkhorn_over_30000_points() {
    use gradflux::{PointCost, SinkhornOptions};
    let mut rng = Rng::new(72);
    let (n, m, d) = (37, 30_000, 3);
    let x = random(&mut rng, [2, n, d], DType::F32, -1.0, 1.0);
    let y = random(&mut rng, [2, m, d], DType::F32, -1.0, 1.0);
    let mut hv = random(&mut rng, [2, m], DType::F32, -2.0, 2.0)
        .values::<f32>()
        .unwrap()
        .to_vec();
    // Problem 1: a NaN in a late span makes every output NaN; problem 0 has a -inf
    // potential in its first span, which adds nothing.
    hv[m + 25_000] = f32::NAN;
    hv[100] = f32::NEG_INFINITY;
    let h = TensorData::new([2, m], hv).unwrap();
    let g = Graph::new();
    let (xt, yt, ht) = (
        g.input("x", [2, n, d], DType::F32).unwrap(),
        g.input("y", [2, m, d], DType::F32).unwrap(),
        g.input("h", [2, m], DType::F32).unwrap(),
    );
    let soft = g
        .point_softmin(xt, yt, ht, 0.05, PointCost::SqEuclidean)
        .unwrap();
    let cpu = check(
        "point_softmin over 30 000 points",
        &g,
        &[soft],
        &[("x", &x), ("y", &y), ("h", &h)],
        Tolerance::new(1e-5, 1e-5),
    );
    let v = cpu[0].values::<f32>().unwrap();
    assert!(v[..n].iter().all(|s| s.is_finite()) && v[n..].iter().all(|s| s.is_nan()));

    // A whole Sinkhorn solve online, both half-steps over the large cloud.
    let (a, b) = (
        TensorData::new([n], vec![1.0 / n as f32; n]).unwrap(),
        TensorData::new([m], vec![1.0 / m as f32; m]).unwrap(),
    );
    let g = Graph::new();
    let xt = g.input("x", [n, d], DType::F32).unwrap();
    let yt = g.input("y", [m, d], DType::F32).unwrap();
    let at = g.input("a", [n], DType::F32).unwrap();
    let bt = g.input("b", [m], DType::F32).unwrap();
    let s = g
        .sinkhorn_points(
            xt,
            yt,
            at,
            bt,
            None,
            PointCost::SqEuclidean,
            SinkhornOptions::new(0.1, 3),
        )
        .unwrap();
    let x1 = random(&mut rng, [n, d], DType::F32, -1.0, 1.0);
    let y1 = random(&mut rng, [m, d], DType::F32, -1.0, 1.0);
    check(
        "sinkhorn_points 37 x 30 000",
        &g,
        &[s.f, s.g],
        &[("x", &x1), ("y", &y1), ("a", &a), ("b", &b)],
        Tolerance::new(1e-4, 1e-4),
    );
}

/// The gradient passes of point_softmin over clouds too long for one invocation's walk
/// (on a loop-limited adapter): per-span sums added afterwards, for dx (reducing over y)
/// and for dy and dh (reducing over x), in both orientations.
#[test]
fn point_softmin_gradients_over_30000_points() {
    use gradflux::PointCost;
    let mut rng = Rng::new(73);
    for (n, m) in [(37, 30_000), (30_000, 29)] {
        let d = 3;
        let x = random(&mut rng, [n, d], DType::F32, -1.0, 1.0);
        let y = random(&mut rng, [m, d], DType::F32, -1.0, 1.0);
        let h = random(&mut rng, [m], DType::F32, -1.0, 1.0);
        let wts = random(&mut rng, [n], DType::F32, 0.0, 1.0);
        let g = Graph::new();
        let (xt, yt, ht, wt) = (
            g.input("x", [n, d], DType::F32).unwrap(),
            g.input("y", [m, d], DType::F32).unwrap(),
            g.input("h", [m], DType::F32).unwrap(),
            g.input("w", [n], DType::F32).unwrap(),
        );
        let soft = g
            .point_softmin(xt, yt, ht, 0.2, PointCost::SqEuclidean)
            .unwrap();
        let loss = g.sum_all(g.mul(soft, wt).unwrap()).unwrap();
        let grads = g.grad(loss, &[xt, yt, ht]).unwrap();
        check(
            &format!("point_softmin gradients {n} x {m}"),
            &g,
            &grads,
            &[("x", &x), ("y", &y), ("h", &h), ("w", &wts)],
            Tolerance::new(1e-4, 1e-6),
        );
    }
}

/// A column soft minimum over more rows than one workgroup may walk (on a loop-limited
/// adapter): spans of rows, merged per column. (Sinkhorn's dense column half-steps are
/// this launch; a whole solve at this size is left out because its row half-steps take a
/// workgroup per row, seconds on a software driver.)
#[test]
fn column_softmin_over_300000_rows() {
    let mut rng = Rng::new(74);
    let (n, m) = (300_001, 3);
    let cost = random(&mut rng, [n, m], DType::F32, 0.0, 1.0);
    let mut hv = random(&mut rng, [n], DType::F32, -1.0, 1.0)
        .values::<f32>()
        .unwrap()
        .to_vec();
    hv[299_000] = f32::INFINITY; // +inf in a late span decides every column
    hv[7] = f32::NAN; // ...except that a NaN in the first span makes them all NaN
    let h = TensorData::new([n], hv).unwrap();
    let g = Graph::new();
    let (ct, ht) = (
        g.input("cost", [n, m], DType::F32).unwrap(),
        g.input("h", [n], DType::F32).unwrap(),
    );
    let soft = g.softmin(ct, ht, 0.1, SoftminAxis::PerColumn).unwrap();
    let cpu = check(
        "column softmin over 300 001 rows",
        &g,
        &[soft],
        &[("cost", &cost), ("h", &h)],
        Tolerance::new(1e-5, 1e-5),
    );
    assert!(cpu[0].values::<f32>().unwrap().iter().all(|v| v.is_nan()));
    let clean = random(&mut rng, [n], DType::F32, -1.0, 1.0);
    check(
        "column softmin over 300 001 rows",
        &g,
        &[soft],
        &[("cost", &cost), ("h", &clean)],
        Tolerance::new(1e-5, 1e-5),
    );
}
