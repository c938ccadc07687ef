//! MoE dispatch and the grouped matmul: the CPU reference against the layout's invariants
//! and a hand-worked case, then every output exactly equal on wgpu.

use gradflux::{Capacity, DType, DispatchOptions, DropPolicy, Graph, TensorData, Tolerance};

use crate::common::{check, random, Rng};

struct Dispatched {
    sorted_ids: Vec<u32>,
    block_experts: Vec<u32>,
    positions: Vec<u32>,
    counts: Vec<u32>,
    dropped: Vec<u32>,
    offsets: Vec<u32>,
}

/// Runs `moe_dispatch` on both backends (exact agreement) and returns the outputs.
fn dispatch(
    label: &str,
    experts: &TensorData,
    gates: &TensorData,
    opts: DispatchOptions,
) -> Dispatched {
    let g = Graph::new();
    let e = g
        .input("experts", experts.shape().clone(), DType::U32)
        .unwrap();
    let gt = g.input("gates", gates.shape().clone(), DType::F32).unwrap();
    let d = g.moe_dispatch(e, Some(gt), opts).unwrap();
    let outs = [
        d.sorted_ids,
        d.block_experts,
        d.positions,
        d.counts,
        d.dropped,
        d.offsets,
    ];
    // The gates input is unused unless the highest gates are kept; bind it anyway.
    let out = check(
        label,
        &g,
        &outs,
        &[("experts", experts), ("gates", gates)],
        Tolerance::EXACT,
    );
    let v = |i: usize| out[i].values::<u32>().unwrap().to_vec();
    Dispatched {
        sorted_ids: v(0),
        block_experts: v(1),
        positions: v(2),
        counts: v(3),
        dropped: v(4),
        offsets: v(5),
    }
}

/// What every dispatch must satisfy, from the definitions.
fn check_invariants(
    label: &str,
    ids: &[u32],
    gates: &[f32],
    opts: DispatchOptions,
    d: &Dispatched,
) {
    let (n, e, block) = (ids.len(), opts.num_experts, opts.block);
    let rows = d.sorted_ids.len();
    let cap = match opts.capacity {
        Capacity::Dropless => n,
        Capacity::PerExpert(c) => c,
        Capacity::Factor(f) => (f * n as f64 / e as f64).ceil() as usize,
    };
    let mut members = vec![vec![]; e];
    for (a, &x) in ids.iter().enumerate() {
        if (x as usize) < e {
            members[x as usize].push(a);
        }
    }
    assert_eq!(d.offsets[0], 0, "{label}");
    for (ex, m) in members.iter().enumerate() {
        assert_eq!(d.counts[ex] as usize, m.len(), "{label}: count of {ex}");
        let kept = m.len().min(cap);
        assert_eq!(
            d.dropped[ex] as usize,
            m.len() - kept,
            "{label}: dropped of {ex}"
        );
        let (lo, hi) = (d.offsets[ex] as usize, d.offsets[ex + 1] as usize);
        assert_eq!(
            hi - lo,
            kept.div_ceil(block) * block,
            "{label}: segment of {ex}"
        );
        let seg: Vec<usize> = d.sorted_ids[lo..lo + kept]
            .iter()
            .map(|&a| a as usize)
            .collect();
        assert!(
            d.sorted_ids[lo + kept..hi].iter().all(|&a| a as usize == n),
            "{label}: padding"
        );
        let want: Vec<usize> = match opts.policy {
            DropPolicy::HighestGate if opts.capacity != Capacity::Dropless => {
                let mut by_gate = m.clone();
                by_gate.sort_by(|&a, &b| gates[b].total_cmp(&gates[a]).then(a.cmp(&b)));
                by_gate[..kept].to_vec()
            }
            _ => m[..kept].to_vec(),
        };
        assert_eq!(seg, want, "{label}: members of expert {ex}");
        for b in (lo..hi).step_by(block) {
            assert_eq!(
                d.block_experts[b / block] as usize,
                ex,
                "{label}: block {b}"
            );
        }
    }
    let used = d.offsets[e] as usize;
    assert!(
        d.sorted_ids[used..].iter().all(|&a| a as usize == n),
        "{label}: tail"
    );
    assert!(
        d.block_experts[used / block..]
            .iter()
            .all(|&x| x as usize == e),
        "{label}"
    );
    for (a, &p) in d.positions.iter().enumerate() {
        if (p as usize) < rows {
            assert_eq!(
                d.sorted_ids[p as usize] as usize, a,
                "{label}: position of {a}"
            );
        } else {
            assert_eq!(
                p as usize, rows,
                "{label}: a dropped choice points one past the end"
            );
            assert!(
                !d.sorted_ids.contains(&(a as u32)),
                "{label}: {a} dropped yet placed"
            );
        }
    }
}

#[test]
fn a_small_dispatch_by_hand() {
    // 4 tokens x 2 choices over 3 experts, blocks of 2, capacity 2 first-come.
    let experts = TensorData::new([4, 2], vec![0u32, 2, 2, 0, 0, 1, 2, 0]).unwrap();
    let gates = TensorData::new([4, 2], vec![0.5f32; 8]).unwrap();
    let opts = DispatchOptions {
        capacity: Capacity::PerExpert(2),
        ..DispatchOptions::dropless(3, 2)
    };
    let d = dispatch("by hand", &experts, &gates, opts);
    // Expert 0 gets choices 0, 3, 4, 7 and keeps 0 and 3; expert 1 gets 5; expert 2 gets
    // 1, 2, 6 and keeps 1 and 2.
    assert_eq!(d.counts, vec![4, 1, 3]);
    assert_eq!(d.dropped, vec![2, 0, 1]);
    assert_eq!(d.offsets, vec![0, 2, 4, 6]);
    assert_eq!(d.sorted_ids[..6], [0, 3, 5, 8, 1, 2]);
    assert_eq!(d.block_experts[..3], [0, 1, 2]);
    // 6 rows in all (3 experts x capacity 2), so 6 marks the dropped choices.
    assert_eq!(d.sorted_ids.len(), 6);
    assert_eq!(d.positions, vec![0, 4, 5, 1, 6, 2, 6, 6]);
}

#[test]
fn dispatch_matches_across_sizes_capacities_and_policies() {
    let mut rng = Rng::new(70);
    for (t, e, k) in [
        (1, 2, 1),
        (7, 8, 2),
        (300, 64, 8),
        (1000, 256, 2),
        (4096, 8, 2),
        (16384, 256, 8),
    ] {
        let n = t * k;
        let experts = random(&mut rng, [t, k], DType::U32, 0.0, (e - 1) as f64);
        // Gates on a grid: many ties for the highest-gate order.
        let gates: Vec<f32> = (0..n).map(|_| rng.int(0, 8) as f32 / 8.0).collect();
        let gates = TensorData::new([t, k], gates).unwrap();
        for (block, capacity, policy) in [
            (1, Capacity::Dropless, DropPolicy::FirstCome),
            (16, Capacity::Dropless, DropPolicy::FirstCome),
            (64, Capacity::Factor(1.0), DropPolicy::FirstCome),
            (16, Capacity::Factor(1.25), DropPolicy::HighestGate),
            (8, Capacity::PerExpert(1), DropPolicy::HighestGate),
        ] {
            let opts = DispatchOptions {
                num_experts: e,
                block,
                capacity,
                policy,
            };
            let label = format!("dispatch T={t} E={e} k={k} block={block} {capacity:?} {policy:?}");
            let d = dispatch(&label, &experts, &gates, opts);
            check_invariants(
                &label,
                experts.values::<u32>().unwrap(),
                gates.values::<f32>().unwrap(),
                opts,
                &d,
            );
        }
    }
}

#[test]
fn skewed_routing_and_out_of_range_experts() {
    let mut rng = Rng::new(71);
    let (t, k, e) = (3000, 2, 16);
    // Nearly everything to expert 3, a few to 15, and ids past the last expert.
    let ids: Vec<u32> = (0..t * k)
        .map(|i| match i % 97 {
            0 => 15,
            1 => 16,
            2 => 1000,
            _ => 3,
        })
        .collect();
    let experts = TensorData::new([t, k], ids.clone()).unwrap();
    let gates = random(&mut rng, [t, k], DType::F32, 0.0, 1.0);
    for (capacity, policy) in [
        (Capacity::Dropless, DropPolicy::FirstCome),
        (Capacity::Factor(2.0), DropPolicy::FirstCome),
        (Capacity::Factor(2.0), DropPolicy::HighestGate),
    ] {
        let opts = DispatchOptions {
            num_experts: e,
            block: 32,
            capacity,
            policy,
        };
        let label = format!("skewed {capacity:?} {policy:?}");
        let d = dispatch(&label, &experts, &gates, opts);
        check_invariants(&label, &ids, gates.values::<f32>().unwrap(), opts, &d);
        let rows = d.sorted_ids.len() as u32;
        assert!(ids
            .iter()
            .zip(&d.positions)
            .all(|(&x, &p)| x < 16 || p == rows));
    }
}

#[test]
fn grouped_matmul_and_its_weight_gradient_match() {
    let mut rng = Rng::new(72);
    for (t, k, e, block, kd, nd) in [
        (1, 1, 2, 1, 1, 1),
        (9, 2, 3, 4, 3, 5),
        (50, 2, 4, 16, 65, 130),
        (300, 1, 8, 64, 32, 64),
        (200, 2, 5, 24, 17, 70),
    ] {
        let ids = random(&mut rng, [t, k], DType::U32, 0.0, (e - 1) as f64);
        for transpose_b in [false, true] {
            let g = Graph::new();
            let experts = g.input("experts", [t, k], DType::U32).unwrap();
            let x = g.input("x", [t, kd], DType::F32).unwrap();
            let wshape = if transpose_b {
                [e, nd, kd]
            } else {
                [e, kd, nd]
            };
            let w = g.input("w", wshape, DType::F32).unwrap();
            let d = g
                .moe_dispatch(experts, None, DispatchOptions::dropless(e, block))
                .unwrap();
            let xs = g.moe_gather(x, &d).unwrap();
            let y = g
                .grouped_matmul(xs, w, d.block_experts, block, transpose_b)
                .unwrap();
            let rows = g.shape(y).unwrap().dims()[0];
            let dy = g.input("dy", [rows, nd], DType::F32).unwrap();
            let dw = g
                .grouped_matmul_weight_grad(xs, dy, d.block_experts, block, e)
                .unwrap();
            let xd = random(&mut rng, [t, kd], DType::F32, -1.0, 1.0);
            let wd = random(&mut rng, wshape.to_vec(), DType::F32, -1.0, 1.0);
            let dyd = random(&mut rng, [rows, nd], DType::F32, -1.0, 1.0);
            let out = check(
                &format!(
                    "grouped_matmul T={t} k={k} E={e} block={block} {kd}x{nd} wT={transpose_b}"
                ),
                &g,
                &[y, dw, d.offsets],
                &[("experts", &ids), ("x", &xd), ("w", &wd), ("dy", &dyd)],
                Tolerance::new(1e-5, 1e-5 * (kd.max(rows) as f64).sqrt()),
            );
            // Padding rows are zero.
            let used = out[2].values::<u32>().unwrap()[e] as usize;
            let yv = out[0].values::<f32>().unwrap();
            assert!(yv[used * nd..].iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn dispatch_and_grouped_matmul_misuse_is_refused() {
    let g = Graph::new();
    let experts = g.input("experts", [4, 2], DType::U32).unwrap();
    let msg = |opts: DispatchOptions, gates| {
        g.moe_dispatch(experts, gates, opts)
            .unwrap_err()
            .to_string()
    };
    assert!(msg(DispatchOptions::dropless(0, 4), None).contains("num_experts (0)"));
    let opts = DispatchOptions {
        capacity: Capacity::PerExpert(2),
        policy: DropPolicy::HighestGate,
        ..DispatchOptions::dropless(4, 4)
    };
    assert!(msg(opts, None).contains("needs the [tokens, k] gates"));
    let wrong = g.input("wrong", [4, 3], DType::F32).unwrap();
    assert!(msg(opts, Some(wrong)).contains("experts' shape"));
    let opts = DispatchOptions {
        capacity: Capacity::Factor(-1.0),
        ..opts
    };
    assert!(msg(opts, None).contains("capacity factor -1"));
    let floats = g.input("floats", [4, 2], DType::F32).unwrap();
    let err = g
        .moe_dispatch(floats, None, DispatchOptions::dropless(4, 4))
        .unwrap_err();
    assert!(err.to_string().contains("[tokens, k] u32"), "{err}");

    let x = g.input("x", [32, 8], DType::F32).unwrap();
    let w = g.input("w", [4, 9, 16], DType::F32).unwrap();
    let be = g.input("be", [2], DType::U32).unwrap();
    let err = g.grouped_matmul(x, w, be, 16, false).unwrap_err();
    assert!(err.to_string().contains("disagree on K (8 vs 9)"), "{err}");
    let w = g.input("w2", [4, 8, 16], DType::F32).unwrap();
    let err = g.grouped_matmul(x, w, be, 5, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("block = 5 must divide the 32 rows"),
        "{err}"
    );
    let err = g.grouped_matmul(x, w, be, 8, false).unwrap_err();
    assert!(
        err.to_string().contains("block_experts must be [4] u32"),
        "{err}"
    );
}

#[test]
fn a_capacity_of_usize_max_means_no_cap() {
    // The natural way to write "no cap"; it used to overflow the padded-row count.
    let mut rng = Rng::new(77);
    let experts = random(&mut rng, [50, 2], DType::U32, 0.0, 4.0);
    let gates = random(&mut rng, [50, 2], DType::F32, 0.0, 1.0);
    let free = dispatch(
        "dropless",
        &experts,
        &gates,
        DispatchOptions::dropless(5, 8),
    );
    for policy in [DropPolicy::FirstCome, DropPolicy::HighestGate] {
        let opts = DispatchOptions {
            capacity: Capacity::PerExpert(usize::MAX),
            policy,
            ..DispatchOptions::dropless(5, 8)
        };
        let capped = dispatch("capacity usize::MAX", &experts, &gates, opts);
        assert!(capped.dropped.iter().all(|&d| d == 0), "{policy:?}");
        assert_eq!(capped.counts, free.counts);
        assert_eq!(capped.offsets, free.offsets);
        // Keeping the highest gates orders each segment by gate; first-come keeps the
        // dropless order.
        if policy == DropPolicy::FirstCome {
            assert_eq!(capped.positions, free.positions);
        }
    }
}

#[test]
fn highest_gate_ranks_count_every_choice_of_a_crowded_expert() {
    // 80 000 choices on one expert: each choice's rank compares it with all of them, in
    // chunks (one invocation used to walk them all and stopped at 65 535 on llvmpipe).
    let t = 40_000;
    let experts = TensorData::new([t, 2], vec![0u32; 2 * t]).unwrap();
    let gates: Vec<f32> = (0..2 * t)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let gates = TensorData::new([t, 2], gates).unwrap();
    let opts = DispatchOptions {
        capacity: Capacity::PerExpert(100),
        policy: DropPolicy::HighestGate,
        ..DispatchOptions::dropless(2, 16)
    };
    let d = dispatch("crowded expert", &experts, &gates, opts);
    assert_eq!(d.counts, vec![80_000, 0]);
    assert_eq!(d.dropped, vec![79_900, 0]);
    // The kept choices hold the 100 highest gates (0.999 appears 80 times, 0.998 80 times).
    let g = gates.values::<f32>().unwrap();
    let kept: Vec<f32> = d.sorted_ids[..100].iter().map(|&i| g[i as usize]).collect();
    assert!(kept.iter().all(|&v| v >= 0.998), "{kept:?}");
}

#[test]
fn grouped_weight_gradients_over_40000_rows() {
    // The weight gradient walks every block of rows for its expert's tiles; past ~32 000
    // rows that walk is cut into spans (on a loop-limited adapter) summed afterwards.
    let mut rng = Rng::new(78);
    let (rows, k, n, e, block) = (40_000, 8, 4, 3, 16);
    let g = Graph::new();
    let x = g.input("x", [rows, k], DType::F32).unwrap();
    let w = g.input("w", [e, k, n], DType::F32).unwrap();
    let be = g.input("be", [rows / block], DType::U32).unwrap();
    let y = g.grouped_matmul(x, w, be, block, false).unwrap();
    let loss = g.sum_all(g.mul(y, y).unwrap()).unwrap();
    let dw = g.grad(loss, &[w]).unwrap()[0];
    // Mostly one expert (the crowded case), some blocks unused (expert id E).
    let experts: Vec<u32> = (0..rows / block)
        .map(|b| match b % 10 {
            0 => 1,
            1 => 3,
            _ => 0,
        })
        .collect();
    check(
        "grouped weight gradient over 40 000 rows",
        &g,
        &[dw],
        &[
            ("x", &random(&mut rng, [rows, k], DType::F32, -1.0, 1.0)),
            ("w", &random(&mut rng, [e, k, n], DType::F32, -1.0, 1.0)),
            ("be", &TensorData::new([rows / block], experts).unwrap()),
        ],
        Tolerance::new(1e-4, 1e-2),
    );
}
