//! Routers and auxiliary losses: each router's graph against a plain-loop reference
//! written from the formulas (experts exactly, gates to f32 rounding), then CPU vs wgpu.

use gradflux::{DType, Device, Error, Graph, GroupedTopK, Router, TensorData, Tolerance};

use crate::common::{check, random, Rng};

const GATES: Tolerance = Tolerance::new(2e-6, 1e-6);

/// Positions of `row` best first: larger value first, lower index among equals.
fn ranked(row: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx
}

fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn normalized(v: Vec<f64>) -> Vec<f64> {
    let s: f64 = v.iter().sum();
    v.into_iter().map(|x| x / s).collect()
}

/// The reference of one token: `(gates, experts)`.
fn reference_row(router: &Router, logits: &[f64], bias: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let pick = |scores: &[f64], k: usize| -> (Vec<f64>, Vec<usize>) {
        let experts: Vec<usize> = ranked(scores)[..k].to_vec();
        (experts.iter().map(|&e| scores[e]).collect(), experts)
    };
    match *router {
        Router::SoftmaxTopK { k, renormalize } => {
            let (g, e) = pick(&softmax(logits), k);
            (if renormalize { normalized(g) } else { g }, e)
        }
        Router::TopKSoftmax { k } => {
            let (top, e) = pick(logits, k);
            (softmax(&top), e)
        }
        Router::SigmoidTopK { k, renormalize } => {
            let s: Vec<f64> = logits.iter().map(|&x| sigmoid(x)).collect();
            let (g, e) = pick(&s, k);
            (if renormalize { normalized(g) } else { g }, e)
        }
        Router::Grouped(gk) => {
            let s: Vec<f64> = logits.iter().map(|&x| sigmoid(x)).collect();
            let choice: Vec<f64> = s
                .iter()
                .enumerate()
                .map(|(i, v)| v + bias.get(i).copied().unwrap_or(0.0))
                .collect();
            let per = s.len() / gk.groups;
            let group_score: Vec<f64> = choice
                .chunks(per)
                .map(|c| ranked(c).iter().take(2).map(|&i| c[i]).sum())
                .collect();
            let kept = &ranked(&group_score)[..gk.topk_groups];
            let eligible: Vec<f64> = choice
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if kept.contains(&(i / per)) {
                        v
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let experts = ranked(&eligible)[..gk.k].to_vec();
            let g = normalized(experts.iter().map(|&e| s[e]).collect());
            (
                g.into_iter().map(|x| x * gk.routed_scaling).collect(),
                experts,
            )
        }
    }
}

/// Builds `router` over `[t, e]` logits, checks the CPU outputs against the reference and
/// the wgpu outputs against the CPU.
/// A grouped router given with `bias: None` gets a random selection bias when
/// `with_bias` is set.
fn router_case(
    label: &str,
    router: Router,
    (t, e): (usize, usize),
    logits: &TensorData,
    with_bias: bool,
) {
    let g = Graph::new();
    let x = g.input("logits", [t, e], DType::F32).unwrap();
    let bias_data = random(&mut Rng::new(e as u64), [e], DType::F32, -0.05, 0.05);
    let mut inputs = vec![("logits", logits)];
    let mut bias = vec![];
    let router = match router {
        Router::Grouped(gk) if with_bias => {
            inputs.push(("bias", &bias_data));
            bias = bias_data.to_f64_vec();
            Router::Grouped(GroupedTopK {
                bias: Some(g.input("bias", [e], DType::F32).unwrap()),
                ..gk
            })
        }
        r => r,
    };
    let r = g.route(x, router).unwrap();
    let out = check(
        label,
        &g,
        &[r.gates, r.experts, r.probs, r.counts],
        &inputs,
        GATES,
    );
    let (gates, experts) = (out[0].to_f64_vec(), out[1].values::<u32>().unwrap());
    let mut histogram = vec![0u32; e];
    experts.iter().for_each(|&x| histogram[x as usize] += 1);
    assert_eq!(
        out[3].values::<u32>().unwrap(),
        histogram,
        "{label}: counts are not the histogram of the experts"
    );
    let rows = logits.to_f64_vec();
    let k = gates.len() / t.max(1);
    for (tok, row) in rows.chunks(e).enumerate() {
        let (want_g, want_e) = reference_row(&router, row, &bias);
        let got_e: Vec<usize> = experts[tok * k..][..k]
            .iter()
            .map(|&x| x as usize)
            .collect();
        assert_eq!(
            got_e, want_e,
            "{label}: experts of token {tok} (logits {row:?})"
        );
        for (j, (&got, want)) in gates[tok * k..][..k].iter().zip(want_g).enumerate() {
            assert!(
                (got - want).abs() <= 2e-6 * want.abs() + 1e-7,
                "{label}: gate {j} of token {tok}: {got} vs reference {want}"
            );
        }
    }
}

/// Logits on a coarse grid: many exact ties, distinct values far apart in every router.
fn grid_logits(rng: &mut Rng, t: usize, e: usize) -> TensorData {
    let v = (0..t * e).map(|_| rng.int(-8, 8) as f32 / 4.0).collect();
    TensorData::new([t, e], v).unwrap()
}

#[test]
fn top_k_routers_match_the_reference_with_ties() {
    let mut rng = Rng::new(60);
    for (t, e, ks) in [
        (1, 2, vec![1, 2]),
        (7, 8, vec![1, 2, 8]),
        (300, 64, vec![1, 2, 8]),
        (1000, 256, vec![1, 8]),
        (16384, 8, vec![2]),
    ] {
        let logits = grid_logits(&mut rng, t, e);
        for k in ks {
            for router in [
                Router::SoftmaxTopK {
                    k,
                    renormalize: false,
                },
                Router::SoftmaxTopK {
                    k,
                    renormalize: true,
                },
                Router::TopKSoftmax { k },
                Router::SigmoidTopK {
                    k,
                    renormalize: true,
                },
            ] {
                router_case(
                    &format!("{router:?} T={t} E={e}"),
                    router,
                    (t, e),
                    &logits,
                    false,
                );
            }
        }
    }
}

/// The fused kernel's lane layouts: experts not a power of two, fewer than one per lane,
/// `k = E`, and wide rows, on random (tie-free) logits.
#[test]
fn fused_routers_cover_every_lane_layout() {
    let mut rng = Rng::new(62);
    for (t, e, k) in [
        (3, 2, 2),
        (65, 3, 3),
        (130, 64, 64),
        (257, 300, 16),
        (64, 1000, 8),
        (9, 4096, 32),
    ] {
        let logits = random(&mut rng, [t, e], DType::F32, -4.0, 4.0);
        for router in [
            Router::SoftmaxTopK {
                k,
                renormalize: false,
            },
            Router::TopKSoftmax { k },
            Router::SigmoidTopK {
                k,
                renormalize: false,
            },
            Router::SigmoidTopK {
                k,
                renormalize: true,
            },
        ] {
            router_case(
                &format!("{router:?} T={t} E={e}"),
                router,
                (t, e),
                &logits,
                false,
            );
        }
    }
}

/// NaN is chosen first and makes its token's gates NaN (only its own gate for an
/// independent sigmoid); `+inf` logits share the softmax mass (softmax's rule), an all
/// `-inf` row is uniform; `-inf` logits are chosen last; `-0.0` ties with `0.0`.
#[test]
fn fused_route_special_values_match_on_every_backend() {
    use gradflux::RouteScore;
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    let rows: [[f32; 5]; 5] = [
        [1.0, nan, 3.0, 0.0, -1.0],
        [-inf, 2.0, -inf, 1.0, 0.5],
        [0.0, -0.0, 0.0, -0.0, -inf],
        [1.0, inf, 0.0, 2.0, -1.0],
        [-inf; 5],
    ];
    let logits = TensorData::new([5, 5], rows.concat()).unwrap();
    let want_experts: [[u32; 3]; 5] = [[1, 2, 0], [1, 3, 4], [0, 1, 2], [1, 3, 0], [0, 1, 2]];
    for (score, renormalize) in [
        (RouteScore::Softmax, false),
        (RouteScore::Softmax, true),
        (RouteScore::Sigmoid, false),
        (RouteScore::Sigmoid, true),
    ] {
        let label = format!("special values {score:?} renormalize={renormalize}");
        let g = Graph::new();
        let x = g.input("logits", [5, 5], DType::F32).unwrap();
        let r = g.fused_route(x, 3, score, renormalize).unwrap();
        let out = check(
            &label,
            &g,
            &[r.gates, r.experts, r.counts],
            &[("logits", &logits)],
            GATES,
        );
        assert_eq!(
            out[1].values::<u32>().unwrap(),
            want_experts.concat(),
            "{label}"
        );
        assert_eq!(out[2].values::<u32>().unwrap(), [4, 5, 3, 2, 1], "{label}");
        let gates = out[0].values::<f32>().unwrap();
        let nan_row = |row: usize| gates[row * 3..][..3].iter().all(|g| g.is_nan());
        let finite_row = |row: usize| gates[row * 3..][..3].iter().all(|g| g.is_finite());
        if (score, renormalize) == (RouteScore::Sigmoid, false) {
            assert!(gates[0].is_nan() && gates[1..3].iter().all(|g| g.is_finite()));
        } else {
            assert!(nan_row(0), "{label}: a NaN logit makes the gates NaN");
        }
        assert!(
            finite_row(1) && finite_row(2),
            "{label}: -inf and -0.0 are numbers"
        );
        match (score, renormalize) {
            (RouteScore::Softmax, renormalize) => {
                assert_eq!(
                    &gates[9..12],
                    [1.0, 0.0, 0.0],
                    "{label}: +inf takes the mass"
                );
                let uniform = if renormalize { 1.0 / 3.0 } else { 0.2 };
                assert_eq!(&gates[12..], [uniform; 3], "{label}: all -inf is uniform");
            }
            (RouteScore::Sigmoid, false) => {
                assert!(finite_row(3), "{label}: sigmoid(+inf) = 1");
                assert_eq!(&gates[12..], [0.0; 3], "{label}: sigmoid(-inf) = 0");
            }
            (RouteScore::Sigmoid, true) => {
                assert!(finite_row(3), "{label}: sigmoid(+inf) = 1");
                assert!(nan_row(4), "{label}: renormalising zeros is 0 / 0");
            }
        }
    }
}

#[test]
fn all_equal_logits_choose_the_lowest_experts() {
    for (t, e, k) in [(5, 2, 1), (33, 64, 8), (16384, 256, 8)] {
        let logits = TensorData::new([t, e], vec![0.5f32; t * e]).unwrap();
        for router in [
            Router::SoftmaxTopK {
                k,
                renormalize: true,
            },
            Router::SigmoidTopK {
                k,
                renormalize: false,
            },
        ] {
            router_case(
                &format!("equal {router:?} T={t} E={e}"),
                router,
                (t, e),
                &logits,
                false,
            );
        }
    }
}

#[test]
fn grouped_top_k_matches_the_reference() {
    let mut rng = Rng::new(61);
    for (t, e, groups, topk_groups, k) in [
        (1, 4, 2, 1, 1),
        (9, 16, 4, 2, 3),
        (300, 64, 8, 4, 8),
        (2048, 256, 8, 4, 8),
        (50, 8, 8, 3, 2), // one expert per group
        (40, 16, 1, 1, 4),
    ] {
        // Continuous logits: sums of two sigmoids of grid values can tie mathematically
        // and differ in the last bit between backends.
        let logits = random(&mut rng, [t, e], DType::F32, -3.0, 3.0);
        for bias in [false, true] {
            let gk = GroupedTopK {
                k,
                groups,
                topk_groups,
                routed_scaling: 2.5,
                bias: None,
            };
            router_case(
                &format!("grouped T={t} E={e} G={groups}/{topk_groups} k={k} bias={bias}"),
                Router::Grouped(gk),
                (t, e),
                &logits,
                bias,
            );
        }
    }
    // All-equal logits: every group ties, so the lowest groups and experts win.
    let logits = TensorData::new([3, 16], vec![0.0f32; 48]).unwrap();
    let gk = GroupedTopK {
        k: 3,
        groups: 4,
        topk_groups: 2,
        routed_scaling: 1.0,
        bias: None,
    };
    router_case(
        "grouped equal",
        Router::Grouped(gk),
        (3, 16),
        &logits,
        false,
    );
}

#[test]
fn relu_router_and_expert_choice_match_the_reference() {
    let mut rng = Rng::new(62);
    for (t, e) in [(1, 2), (17, 8), (700, 64), (4096, 256)] {
        let logits = grid_logits(&mut rng, t, e);
        let g = Graph::new();
        let x = g.input("logits", [t, e], DType::F32).unwrap();
        let gates = g.relu_router(x, 1e-6).unwrap();
        let out = check(
            &format!("relu_router T={t} E={e}"),
            &g,
            &[gates],
            &[("logits", &logits)],
            GATES,
        );
        let got = out[0].to_f64_vec();
        for (row, got) in logits.to_f64_vec().chunks(e).zip(got.chunks(e)) {
            let r: Vec<f64> = row.iter().map(|x| x.max(0.0)).collect();
            let rms = (r.iter().map(|x| x * x).sum::<f64>() / e as f64 + 1e-6).sqrt();
            for (a, b) in r.iter().zip(got) {
                assert!(
                    (a / rms - b).abs() <= 2e-6 * b.abs() + 1e-7,
                    "{a}/{rms} vs {b}"
                );
                // Inactive experts are exactly zero.
                assert_eq!(*a == 0.0, *b == 0.0);
            }
        }

        let capacity = (2 * t / e).clamp(1, t);
        let g = Graph::new();
        let x = g.input("logits", [t, e], DType::F32).unwrap();
        let ec = g.expert_choice(x, capacity).unwrap();
        let out = check(
            &format!("expert_choice T={t} E={e}"),
            &g,
            &[ec.gates, ec.tokens],
            &[("logits", &logits)],
            GATES,
        );
        let probs: Vec<Vec<f64>> = logits.to_f64_vec().chunks(e).map(softmax).collect();
        let tokens = out[1].values::<u32>().unwrap();
        for ex in 0..e {
            let column: Vec<f64> = probs.iter().map(|p| p[ex]).collect();
            let want: Vec<u32> = ranked(&column)[..capacity]
                .iter()
                .map(|&t| t as u32)
                .collect();
            assert_eq!(
                &tokens[ex * capacity..][..capacity],
                &want[..],
                "expert {ex}"
            );
        }
    }
}

#[test]
fn auxiliary_losses_follow_their_formulas() {
    let mut rng = Rng::new(63);
    for (t, e, k) in [(1, 2, 1), (50, 8, 2), (3000, 64, 8)] {
        let logits = random(&mut rng, [t, e], DType::F32, -2.0, 2.0);
        let g = Graph::new();
        let x = g.input("logits", [t, e], DType::F32).unwrap();
        let r = g
            .route(
                x,
                Router::SoftmaxTopK {
                    k,
                    renormalize: true,
                },
            )
            .unwrap();
        let lb = g.load_balancing_loss(r.probs, r.experts, 0.01).unwrap();
        let z = g.router_z_loss(x).unwrap();
        let out = check(
            &format!("aux losses T={t} E={e} k={k}"),
            &g,
            &[lb, z, r.experts],
            &[("logits", &logits)],
            Tolerance::new(1e-5, 1e-7),
        );
        let rows: Vec<Vec<f64>> = logits.to_f64_vec().chunks(e).map(<[f64]>::to_vec).collect();
        let mut f = vec![0.0; e];
        for &ex in out[2].values::<u32>().unwrap() {
            f[ex as usize] += 1.0 / (t * k) as f64;
        }
        let p: Vec<f64> = (0..e)
            .map(|ex| rows.iter().map(|r| softmax(r)[ex]).sum::<f64>() / t as f64)
            .collect();
        let want_lb = 0.01 * e as f64 * f.iter().zip(&p).map(|(a, b)| a * b).sum::<f64>();
        let want_z = rows
            .iter()
            .map(|r| {
                let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + r.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                lse * lse
            })
            .sum::<f64>()
            / t as f64;
        let (got_lb, got_z) = (out[0].to_f64_vec()[0], out[1].to_f64_vec()[0]);
        assert!(
            (got_lb - want_lb).abs() <= 1e-5 * want_lb,
            "{got_lb} vs {want_lb}"
        );
        assert!(
            (got_z - want_z).abs() <= 1e-5 * want_z,
            "{got_z} vs {want_z}"
        );
    }
    // Uniform routing gives exactly alpha.
    let g = Graph::new();
    let probs = g
        .constant(TensorData::new([4, 4], vec![0.25f32; 16]).unwrap())
        .unwrap();
    let experts = g
        .constant(TensorData::new([4, 1], vec![0u32, 1, 2, 3]).unwrap())
        .unwrap();
    let lb = g.load_balancing_loss(probs, experts, 0.5).unwrap();
    let out = Device::Cpu.compile(&g, &[lb]).unwrap().run(&[]).unwrap();
    assert!((out[0].to_f64_vec()[0] - 0.5).abs() < 1e-7);
}

#[test]
fn router_misuse_is_refused_by_name() {
    let g = Graph::new();
    let x = g.input("logits", [10, 8], DType::F32).unwrap();
    let msg = |r: Router| g.route(x, r).unwrap_err().to_string();
    assert!(msg(Router::TopKSoftmax { k: 9 }).contains("between 1 and the 8 experts"));
    assert!(msg(Router::TopKSoftmax { k: 0 }).contains("between 1 and the 8 experts"));
    let gk = GroupedTopK {
        k: 2,
        groups: 3,
        topk_groups: 1,
        routed_scaling: 1.0,
        bias: None,
    };
    assert!(msg(Router::Grouped(gk)).contains("3 expert groups must divide the 8"));
    let gk = GroupedTopK {
        groups: 4,
        topk_groups: 5,
        ..gk
    };
    assert!(msg(Router::Grouped(gk)).contains("topk_groups = 5"));
    let gk = GroupedTopK {
        k: 5,
        groups: 4,
        topk_groups: 2,
        ..gk
    };
    assert!(msg(Router::Grouped(gk)).contains("exceeds the 4 experts"));
    let wrong_bias = g.input("b", [7], DType::F32).unwrap();
    let gk = GroupedTopK {
        k: 2,
        groups: 4,
        topk_groups: 2,
        routed_scaling: 1.0,
        bias: Some(wrong_bias),
    };
    assert!(msg(Router::Grouped(gk)).contains("bias must be [8] f32"));

    let flat = g.input("flat", [10], DType::F32).unwrap();
    let err = g.route(flat, Router::TopKSoftmax { k: 1 }).unwrap_err();
    assert!(err.to_string().contains("[tokens, experts]"), "{err}");
    let ints = g.input("ints", [10, 8], DType::I32).unwrap();
    assert!(matches!(
        g.route(ints, Router::TopKSoftmax { k: 1 }),
        Err(Error::DType { .. })
    ));
    assert!(g
        .expert_choice(x, 11)
        .unwrap_err()
        .to_string()
        .contains("10 tokens"));
    assert!(g.relu_router(x, 0.0).is_err());
    let bad = g.input("bad", [9, 2], DType::U32).unwrap();
    let err = g.load_balancing_loss(x, bad, 0.01).unwrap_err();
    assert!(
        err.to_string().contains("experts must be [10, k] u32"),
        "{err}"
    );
}
