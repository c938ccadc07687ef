//! Every differentiable op: its gradient passes a central finite-difference check in f64 on
//! the CPU reference, and the same gradient graph in f32 gives the same answer on the wgpu
//! adapter as on the CPU.

mod common;

use gradflux::{
    check_gradients, Activation, CustomOp, DType, Error, GradCheck, Graph, Result, Tensor,
    TensorData, Tolerance,
};

use common::{check, random, Rng};

/// One input's shape and the range its values are drawn from.
struct Arg {
    shape: Vec<usize>,
    lo: f64,
    hi: f64,
}

fn arg(shape: &[usize], lo: f64, hi: f64) -> Arg {
    Arg {
        shape: shape.to_vec(),
        lo,
        hi,
    }
}

/// Builds `loss = sum(f(inputs) * w)` with fixed random weights `w` (so the cotangent is
/// not uniform), checks it by finite differences in f64, then checks CPU/GPU parity of the
/// f32 gradients.
fn check_op(label: &str, args: &[Arg], f: impl Fn(&Graph, &[Tensor]) -> Result<Tensor>) {
    let mut rng = Rng::new(label.len() as u64 * 7919 + 1);
    let data64: Vec<TensorData> = args
        .iter()
        .map(|a| random(&mut rng, a.shape.clone(), DType::F64, a.lo, a.hi))
        .collect();
    let names: Vec<String> = (0..args.len()).map(|i| format!("x{i}")).collect();
    let build = |dtype: DType| -> (Graph, Tensor, Vec<Tensor>) {
        let g = Graph::new();
        let xs: Vec<Tensor> = args
            .iter()
            .zip(&names)
            .map(|(a, n)| g.input(n, a.shape.clone(), dtype).unwrap())
            .collect();
        let y = f(&g, &xs).unwrap_or_else(|e| panic!("{label}: {e}"));
        let shape = g.shape(y).unwrap();
        let w = random(&mut Rng::new(99), shape, dtype, -1.0, 1.0);
        let loss = g
            .sum_all(g.mul(y, g.constant(w).unwrap()).unwrap())
            .unwrap();
        (g, loss, xs)
    };

    let (g, loss, _) = build(DType::F64);
    let inputs: Vec<(&str, &TensorData)> = names
        .iter()
        .map(String::as_str)
        .zip(data64.iter())
        .collect();
    let wrt: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = check_gradients(&g, loss, &inputs, &wrt, GradCheck::default())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        report.passed(),
        "{label}: finite differences disagree: {report:?}"
    );

    let (g, loss, xs) = build(DType::F32);
    let grads = g.grad(loss, &xs).unwrap();
    let data32: Vec<TensorData> = data64
        .iter()
        .map(|d| {
            let v: Vec<f32> = d
                .values::<f64>()
                .unwrap()
                .iter()
                .map(|&x| x as f32)
                .collect();
            TensorData::new(d.shape().clone(), v).unwrap()
        })
        .collect();
    let inputs: Vec<(&str, &TensorData)> = names
        .iter()
        .map(String::as_str)
        .zip(data32.iter())
        .collect();
    check(
        &format!("{label} gradients"),
        &g,
        &grads,
        &inputs,
        Tolerance::new(1e-4, 1e-5),
    );
}

#[test]
fn unary_gradients() {
    check_op("neg", &[arg(&[7, 13], -2.0, 2.0)], |g, x| g.neg(x[0]));
    check_op("abs", &[arg(&[50], -2.0, 2.0)], |g, x| g.abs(x[0]));
    check_op("relu", &[arg(&[50], -2.0, 2.0)], |g, x| g.relu(x[0]));
    check_op("exp", &[arg(&[3, 5], -2.0, 2.0)], |g, x| g.exp(x[0]));
    check_op("log", &[arg(&[3, 5], 0.2, 3.0)], |g, x| g.log(x[0]));
    check_op("sqrt", &[arg(&[3, 5], 0.2, 3.0)], |g, x| g.sqrt(x[0]));
    check_op("sigmoid", &[arg(&[50], -4.0, 4.0)], |g, x| g.sigmoid(x[0]));
    check_op("tanh", &[arg(&[50], -3.0, 3.0)], |g, x| g.tanh(x[0]));
}

#[test]
fn binary_gradients_reduce_broadcast_dimensions() {
    let pairs = [
        (vec![4, 5], vec![4, 5]),
        (vec![4, 1], vec![1, 5]),
        (vec![3, 4, 5], vec![5]),
        (vec![], vec![2, 3]),
    ];
    for (a, b) in &pairs {
        check_op("add", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.add(x[0], x[1])
        });
        check_op("sub", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.sub(x[0], x[1])
        });
        check_op("mul", &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)], |g, x| {
            g.mul(x[0], x[1])
        });
        check_op("div", &[arg(a, -2.0, 2.0), arg(b, 0.5, 2.0)], |g, x| {
            g.div(x[0], x[1])
        });
        check_op("pow", &[arg(a, 0.5, 2.0), arg(b, -1.5, 1.5)], |g, x| {
            g.pow(x[0], x[1])
        });
        check_op(
            "maximum",
            &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)],
            |g, x| g.maximum(x[0], x[1]),
        );
        check_op(
            "minimum",
            &[arg(a, -2.0, 2.0), arg(b, -2.0, 2.0)],
            |g, x| g.minimum(x[0], x[1]),
        );
    }
}

#[test]
fn select_gradient_flows_to_the_chosen_side() {
    check_op(
        "select",
        &[
            arg(&[6, 5], -1.0, 1.0),
            arg(&[5], -2.0, 2.0),
            arg(&[6, 1], -2.0, 2.0),
        ],
        |g, x| {
            let mask = g.gt(x[0], g.scalar(0.0, g.dtype(x[0])?)?)?;
            g.select(mask, x[1], x[2])
        },
    );
}

#[test]
fn reduction_and_softmax_gradients() {
    for (shape, axis) in [
        (vec![50], 0isize),
        (vec![7, 13], 1),
        (vec![7, 13], 0),
        (vec![3, 5, 17], 1),
    ] {
        for keepdim in [false, true] {
            check_op("sum", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.sum(x[0], axis, keepdim)
            });
            check_op("mean", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.mean(x[0], axis, keepdim)
            });
            check_op("max", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.max(x[0], axis, keepdim)
            });
            check_op("min", &[arg(&shape, -2.0, 2.0)], |g, x| {
                g.min(x[0], axis, keepdim)
            });
            check_op("logsumexp", &[arg(&shape, -3.0, 3.0)], |g, x| {
                g.logsumexp(x[0], axis, keepdim)
            });
        }
        check_op("softmax", &[arg(&shape, -3.0, 3.0)], |g, x| {
            g.softmax(x[0], axis)
        });
        check_op("log_softmax", &[arg(&shape, -3.0, 3.0)], |g, x| {
            g.log_softmax(x[0], axis)
        });
    }
}

#[test]
fn layout_gradients() {
    check_op("reshape", &[arg(&[6, 35], -1.0, 1.0)], |g, x| {
        g.reshape(x[0], [2, 3, 5, 7])
    });
    check_op("permute", &[arg(&[3, 5, 7], -1.0, 1.0)], |g, x| {
        g.permute(x[0], &[2, 0, 1])
    });
    check_op("transpose", &[arg(&[7, 13], -1.0, 1.0)], |g, x| {
        g.transpose(x[0], 0, 1)
    });
    check_op("slice", &[arg(&[7, 50, 3], -1.0, 1.0)], |g, x| {
        g.slice_step(x[0], 1, 2, 47, 3)
    });
    check_op(
        "concat",
        &[
            arg(&[3, 4], -1.0, 1.0),
            arg(&[3, 1], -1.0, 1.0),
            arg(&[3, 7], -1.0, 1.0),
        ],
        |g, x| g.concat(x, 1),
    );
    check_op("broadcast_to", &[arg(&[3, 1, 2], -1.0, 1.0)], |g, x| {
        g.broadcast_to(x[0], [4, 3, 5, 2])
    });
}

#[test]
fn matmul_gradients_including_broadcast_batches() {
    for (a, b) in [
        (vec![5, 7], vec![7, 3]),
        (vec![4, 3, 5], vec![4, 5, 6]),
        (vec![2, 1, 3, 5], vec![4, 5, 2]),
        (vec![3, 5], vec![6, 5, 4]),
        (vec![5], vec![5, 3]),
    ] {
        check_op(
            "matmul",
            &[arg(&a, -1.0, 1.0), arg(&b, -1.0, 1.0)],
            |g, x| g.matmul(x[0], x[1]),
        );
    }
}

#[test]
fn transposed_operands_and_fused_epilogues_have_gradients() {
    // Each transpose is folded into the matmul node, so these check the transposed
    // layouts of the gradient rule.
    for (a, b, ta, tb) in [
        (vec![7, 5], vec![7, 3], true, false),
        (vec![5, 7], vec![3, 7], false, true),
        (vec![2, 7, 5], vec![3, 7], true, true),
    ] {
        check_op(
            "matmul transposed",
            &[arg(&a, -1.0, 1.0), arg(&b, -1.0, 1.0)],
            move |g, x| {
                let l = if ta { g.transpose(x[0], -1, -2)? } else { x[0] };
                let r = if tb { g.transpose(x[1], -1, -2)? } else { x[1] };
                g.matmul(l, r)
            },
        );
    }
    for act in Activation::ALL {
        for bias in [vec![3], vec![4, 1], vec![2, 4, 3]] {
            check_op(
                "linear",
                &[
                    arg(&[2, 4, 5], -1.0, 1.0),
                    arg(&[5, 3], -1.0, 1.0),
                    arg(&bias, -1.0, 1.0),
                ],
                move |g, x| g.linear(x[0], x[1], Some(x[2]), act),
            );
        }
        check_op(
            "linear without bias",
            &[arg(&[6, 5], -1.0, 1.0), arg(&[3, 5], -1.0, 1.0)],
            move |g, x| g.linear(x[0], g.transpose(x[1], 0, 1)?, None, act),
        );
    }
}

#[test]
fn gather_and_scatter_add_gradients() {
    let idx = TensorData::new([6], vec![0u32, 9, 3, 3, 12, 1]).unwrap();
    let i = idx.clone();
    check_op("gather", &[arg(&[10, 4], -1.0, 1.0)], move |g, x| {
        g.gather(x[0], 0, g.constant(i.clone())?)
    });
    let i = idx.clone();
    check_op("scatter_add", &[arg(&[6, 4], -1.0, 1.0)], move |g, x| {
        g.scatter_add(x[0], 0, g.constant(i.clone())?, 10)
    });
}

#[test]
fn top_k_gradient_reaches_the_selected_positions() {
    // Random f64 data has no ties, so the selection is stable under the finite-difference
    // step; the middle axis exercises the strided view.
    check_op("top_k last axis", &[arg(&[5, 9], -1.0, 1.0)], |g, x| {
        Ok(g.top_k(x[0], 3, -1)?.0)
    });
    check_op(
        "top_k middle axis",
        &[arg(&[2, 7, 3], -1.0, 1.0)],
        |g, x| Ok(g.top_k(x[0], 7, 1)?.0),
    );
    // Through a softmax over the chosen logits: the usual router.
    check_op("softmax of top_k", &[arg(&[4, 6], -2.0, 2.0)], |g, x| {
        g.softmax(g.top_k(x[0], 2, -1)?.0, -1)
    });
}

#[test]
fn softmin_has_gradients_in_cost_and_h() {
    use gradflux::SoftminAxis;
    for axis in [SoftminAxis::PerRow, SoftminAxis::PerColumn] {
        let h_len = if axis == SoftminAxis::PerRow { 4 } else { 3 };
        check_op(
            &format!("softmin {axis:?}"),
            &[arg(&[3, 4], 0.0, 1.0), arg(&[h_len], -1.0, 1.0)],
            move |g, x| g.softmin(x[0], x[1], 0.3, axis),
        );
        check_op(
            &format!("batched softmin {axis:?}"),
            &[arg(&[2, 3, 4], 0.0, 1.0), arg(&[2, h_len], -1.0, 1.0)],
            move |g, x| g.softmin(x[0], x[1], 0.8, axis),
        );
    }
}

/// The online soft minimum over points has gradients in both clouds and in `h`, for both
/// costs, batched, with more coordinates than one gradient block (16) and more points than
/// one tile (64) on the reduced side.
#[test]
fn point_softmin_has_gradients_in_the_points_and_h() {
    use gradflux::PointCost;
    for cost in [PointCost::SqEuclidean, PointCost::Euclidean] {
        check_op(
            &format!("point_softmin {cost:?}"),
            &[
                arg(&[3, 2], 0.0, 1.0),
                arg(&[5, 2], 0.0, 1.0),
                arg(&[5], -1.0, 1.0),
            ],
            move |g, x| g.point_softmin(x[0], x[1], x[2], 0.3, cost),
        );
        check_op(
            &format!("batched point_softmin {cost:?}"),
            &[
                arg(&[2, 4, 17], 0.0, 1.0),
                arg(&[2, 67, 17], 0.0, 1.0),
                arg(&[2, 67], -1.0, 1.0),
            ],
            move |g, x| g.point_softmin(x[0], x[1], x[2], 2.0, cost),
        );
    }
}

/// Unrolled Sinkhorn is an ordinary differentiable function of the cost and the weights
/// (here a few iterations, balanced and unbalanced, with ε-scaling).
#[test]
fn unrolled_sinkhorn_has_exact_gradients() {
    use gradflux::{EpsScaling, OtGradient, SinkhornOptions};
    for (label, rho) in [("balanced", None), ("unbalanced", Some(0.7))] {
        let options = SinkhornOptions {
            rho_a: rho,
            rho_b: rho,
            eps_scaling: Some(EpsScaling {
                start: 2.0,
                factor: 0.5,
            }),
            gradient: OtGradient::Unrolled,
            ..SinkhornOptions::new(0.4, 4)
        };
        check_op(
            &format!("unrolled sinkhorn {label}"),
            &[
                arg(&[3, 4], 0.0, 1.0),
                arg(&[3], 0.5, 1.0),
                arg(&[4], 0.5, 1.0),
            ],
            move |g, x| {
                let ot = g.sinkhorn(x[0], x[1], x[2], None, options)?;
                g.add(g.ot_objective(&ot)?, g.ot_transport_cost(&ot)?)
            },
        );
    }
}

/// Implicit Sinkhorn gradients are those of the converged solution: finite differences of
/// a solve run to convergence agree with them, for losses that read the plan (balanced:
/// the transport cost) or the potentials themselves (unbalanced, where they are unique),
/// dense and batched, with ε-scaling, and online over point clouds.
#[test]
fn implicit_sinkhorn_gradients_match_finite_differences() {
    use gradflux::{EpsScaling, ImplicitSolve, OtGradient, PointCost, SinkhornOptions};
    let implicit = OtGradient::Implicit(ImplicitSolve {
        max_iterations: 60,
        tolerance: 1e-12,
    });
    for (label, rho) in [("balanced", None), ("unbalanced", Some(0.7))] {
        let options = SinkhornOptions {
            rho_a: rho,
            rho_b: rho.map(|r| 2.0 * r),
            eps_scaling: Some(EpsScaling {
                start: 2.0,
                factor: 0.5,
            }),
            gradient: implicit,
            ..SinkhornOptions::new(0.3, 400)
        };
        let balanced = rho.is_none();
        check_op(
            &format!("implicit sinkhorn {label}"),
            &[
                arg(&[2, 3, 5], 0.0, 1.0),
                arg(&[2, 3], 0.5, 1.0),
                arg(&[2, 5], 0.5, 1.0),
            ],
            move |g, x| {
                // Balanced problems need equal masses: normalise both sides.
                let (a, b) = if balanced {
                    let unit = |w| g.div(w, g.sum(w, -1, true)?);
                    (unit(x[1])?, unit(x[2])?)
                } else {
                    (x[1], x[2])
                };
                let ot = g.sinkhorn(x[0], a, b, None, options)?;
                if balanced {
                    g.ot_transport_cost(&ot)
                } else {
                    Ok(ot.f)
                }
            },
        );
    }
    for cost in [PointCost::SqEuclidean, PointCost::Euclidean] {
        let options = SinkhornOptions {
            gradient: implicit,
            ..SinkhornOptions::new(0.5, 300)
        };
        check_op(
            &format!("implicit sinkhorn_points {cost:?}"),
            &[
                arg(&[4, 3], 0.0, 1.0),
                arg(&[6, 3], 0.0, 1.0),
                arg(&[4], 0.5, 1.0),
                arg(&[6], 0.5, 1.0),
            ],
            move |g, x| {
                let unit = |w| g.div(w, g.sum(w, -1, true)?);
                let (a, b) = (unit(x[2])?, unit(x[3])?);
                let ot = g.sinkhorn_points(x[0], x[1], a, b, None, cost, options)?;
                g.ot_transport_cost(&ot)
            },
        );
    }
}

#[test]
fn router_gates_and_auxiliary_losses_have_gradients() {
    use gradflux::{GroupedTopK, Router};
    let logits = || arg(&[6, 8], -2.0, 2.0);
    for router in [
        Router::SoftmaxTopK {
            k: 2,
            renormalize: true,
        },
        Router::SoftmaxTopK {
            k: 3,
            renormalize: false,
        },
        Router::TopKSoftmax { k: 2 },
        Router::SigmoidTopK {
            k: 2,
            renormalize: true,
        },
        Router::SigmoidTopK {
            k: 3,
            renormalize: false,
        },
    ] {
        check_op(&format!("{router:?}"), &[logits()], move |g, x| {
            Ok(g.route(x[0], router)?.gates)
        });
    }
    check_op("grouped top-k with bias", &[logits()], |g, x| {
        let bias = TensorData::new([8], vec![0.1f32, -0.2, 0.0, 0.3, -0.1, 0.2, 0.05, -0.3])?;
        let bias = g.cast(g.constant(bias)?, g.dtype(x[0])?)?;
        let gk = GroupedTopK {
            k: 3,
            groups: 4,
            topk_groups: 2,
            routed_scaling: 2.5,
            bias: Some(bias),
        };
        Ok(g.route(x[0], Router::Grouped(gk))?.gates)
    });
    check_op("relu router", &[arg(&[5, 7], -1.0, 2.0)], |g, x| {
        g.relu_router(x[0], 1e-3)
    });
    check_op("expert choice", &[logits()], |g, x| {
        Ok(g.expert_choice(x[0], 3)?.gates)
    });
    check_op("load balancing loss", &[logits()], |g, x| {
        let r = g.route(
            x[0],
            Router::SoftmaxTopK {
                k: 2,
                renormalize: true,
            },
        )?;
        g.load_balancing_loss(r.probs, r.experts, 0.1)
    });
    check_op("router z-loss", &[logits()], |g, x| g.router_z_loss(x[0]));
}

#[test]
fn a_whole_moe_layer_has_gradients_for_inputs_router_and_experts() {
    use gradflux::{Capacity, DispatchOptions, DropPolicy, Router};
    // x [6, 4] -> router [4, 4 experts] -> top-2 -> experts 4 -> 5 -> 4, dropless and
    // with a capacity that drops (keeping the highest gates), w2 read transposed.
    for (capacity, policy) in [
        (Capacity::Dropless, DropPolicy::FirstCome),
        (Capacity::PerExpert(2), DropPolicy::HighestGate),
    ] {
        let args = [
            arg(&[6, 4], -1.0, 1.0),
            arg(&[4, 4], -1.0, 1.0),
            arg(&[4, 4, 5], -1.0, 1.0),
            arg(&[4, 4, 5], -1.0, 1.0),
        ];
        check_op(&format!("moe layer {capacity:?}"), &args, move |g, x| {
            let logits = g.matmul(x[0], x[1])?;
            let r = g.route(
                logits,
                Router::SoftmaxTopK {
                    k: 2,
                    renormalize: true,
                },
            )?;
            let opts = DispatchOptions {
                num_experts: 4,
                block: 4,
                capacity,
                policy,
            };
            let d = g.moe_dispatch(r.experts, Some(r.gates), opts)?;
            let xs = g.moe_gather(x[0], &d)?;
            let h = g.relu(g.grouped_matmul(xs, x[2], d.block_experts, 4, false)?)?;
            let y = g.grouped_matmul(h, x[3], d.block_experts, 4, true)?;
            g.moe_combine(y, &d, r.gates)
        });
    }
}

#[test]
fn gather_along_and_scatter_along_gradients() {
    let idx = TensorData::new([3, 2], vec![0u32, 4, 4, 4, 9, 1]).unwrap();
    let i = idx.clone();
    check_op("gather_along", &[arg(&[3, 5], -1.0, 1.0)], move |g, x| {
        g.gather_along(x[0], 1, g.constant(i.clone())?)
    });
    let i = idx.clone();
    check_op("scatter_along", &[arg(&[3, 2], -1.0, 1.0)], move |g, x| {
        g.scatter_along(x[0], 1, g.constant(i.clone())?, 5)
    });
}

#[test]
fn a_value_used_several_times_accumulates_its_gradients() {
    check_op("reuse", &[arg(&[50], -1.0, 1.0)], |g, x| {
        let a = g.mul(x[0], x[0])?;
        let b = g.exp(x[0])?;
        let c = g.mul(g.tanh(x[0])?, x[0])?;
        g.add(g.mul(a, b)?, c)
    });
}

#[test]
fn grad_of_the_loss_itself_and_of_an_unrelated_input() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let unrelated = g.input("u", [2, 2], DType::F32).unwrap();
    let loss = g.sum_all(g.mul(x, x).unwrap()).unwrap();
    let grads = g.grad(loss, &[x, unrelated]).unwrap();
    let data = TensorData::new([3], vec![1.0f32, -2.0, 0.5]).unwrap();
    let u = TensorData::zeros([2, 2], DType::F32);
    let out = check(
        "x^2",
        &g,
        &grads,
        &[("x", &data), ("u", &u)],
        Tolerance::EXACT,
    );
    assert_eq!(out[0].values::<f32>().unwrap(), &[2.0, -4.0, 1.0]);
    assert_eq!(out[1].values::<f32>().unwrap(), &[0.0; 4]);
}

#[test]
fn non_differentiable_requests_are_refused_clearly() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let i = g.input("i", [3], DType::I32).unwrap();
    let loss = g
        .sum_all(g.add(x, g.cast(i, DType::F32).unwrap()).unwrap())
        .unwrap();
    let e = g.grad(loss, &[i]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DType {
                op: "grad",
                got: DType::I32,
                ..
            }
        ),
        "{e}"
    );
    let e = g.grad(x, &[x]).unwrap_err();
    assert!(e.to_string().contains("one element"), "{e}");

    let op = CustomOp::builder("no_backward")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let y = g.custom(&op, &[x]).unwrap()[0];
    let e = g.grad(g.sum_all(y).unwrap(), &[x]).unwrap_err();
    assert!(e.to_string().contains("no_backward"), "{e}");
}

#[test]
fn the_checker_catches_a_wrong_gradient() {
    let g = Graph::new();
    let x = g.input("x", [4], DType::F64).unwrap();
    // relu'(0) is taken as 0, but the central difference at exactly 0 sees 1/2.
    let loss = g.sum_all(g.relu(x).unwrap()).unwrap();
    let data = TensorData::new([4], vec![0.0f64, 1.0, -1.0, 2.0]).unwrap();
    let report = check_gradients(&g, loss, &[("x", &data)], &["x"], GradCheck::default()).unwrap();
    assert!(!report.passed(), "{report:?}");
    assert_eq!(report.worst_failure.as_ref().unwrap().1, 0);
}

/// Peak bytes of forward + backward for a chain of `n` ops on 1024 floats.
/// `op` gets the running value and one scalar constant shared by the whole chain.
fn forward_backward_peak(n: usize, op: fn(&Graph, Tensor, Tensor) -> Result<Tensor>) -> u64 {
    let g = Graph::new();
    let x = g.input("x", [1024], DType::F32).unwrap();
    let k = g.scalar(1.001, DType::F32).unwrap();
    let mut y = x;
    for _ in 0..n {
        y = op(&g, y, k).unwrap();
    }
    let loss = g.sum_all(y).unwrap();
    let dx = g.grad(loss, &[x]).unwrap()[0];
    let cpu = gradflux::Device::Cpu.compile(&g, &[loss, dx]).unwrap();
    let peak = cpu.memory().peak_bytes;
    if let Some(gpu) = common::gpu() {
        assert_eq!(
            gpu.compile(&g, &[loss, dx]).unwrap().memory().peak_bytes,
            peak
        );
    }
    peak
}

#[test]
fn backward_keeps_only_the_activations_it_needs() {
    // Scaling by a constant needs no activation in its backward: depth does not matter.
    let scale = |g: &Graph, y: Tensor, k: Tensor| g.mul(y, k);
    assert_eq!(
        forward_backward_peak(50, scale),
        forward_backward_peak(200, scale)
    );
    // sigmoid's backward reads its output, so each extra op keeps one more activation
    // (4096 bytes) alive until the backward pass reaches it, plus its scalar constants.
    let sigmoid = |g: &Graph, y: Tensor, _: Tensor| g.sigmoid(y);
    let growth = forward_backward_peak(200, sigmoid) - forward_backward_peak(50, sigmoid);
    assert!(
        (150 * 4096..=150 * 4096 + 150 * 16).contains(&growth),
        "{growth}"
    );
}

/// `y = x^3` as a custom op with a custom backward `dx = 3 x^2 * dy`, in `dtype`; WGSL only
/// for f32 (core WGSL has no f64).
fn cube_with_backward(n: usize, dtype: DType) -> std::sync::Arc<CustomOp> {
    fn map(
        xs: &[&TensorData],
        f: impl Fn(&[f64]) -> f64,
    ) -> std::result::Result<Vec<TensorData>, String> {
        let cols: Vec<Vec<f64>> = xs.iter().map(|t| t.to_f64_vec()).collect();
        let n = cols[0].len();
        let vals: Vec<f64> = (0..n)
            .map(|i| f(&cols.iter().map(|c| c[i]).collect::<Vec<_>>()))
            .collect();
        let storage = match xs[0].dtype() {
            DType::F32 => gradflux::Storage::F32(vals.iter().map(|&v| v as f32).collect()),
            _ => gradflux::Storage::F64(vals),
        };
        TensorData::from_storage(xs[0].shape().clone(), storage)
            .map(|t| vec![t])
            .map_err(|e| e.to_string())
    }
    let wgsl = |body: &str, inputs: usize| {
        let mut s = String::new();
        for i in 0..inputs {
            s += &format!("@group(0) @binding({i}) var<storage, read> in{i}: array<f32>;\n");
        }
        s += &format!("@group(0) @binding({inputs}) var<storage, read_write> out: array<f32>;\n");
        s += &format!(
            "@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
             let i = gid.x;\nif i < {n}u {{ out[i] = {body}; }}\n}}\n"
        );
        s
    };
    let dispatch = gradflux::Dispatch::Threads {
        threads: n as u64,
        workgroup_size: 64,
    };
    let mut bw = CustomOp::builder("cube_backward")
        .input([n], dtype)
        .input([n], dtype)
        .input([n], dtype)
        .output([n], dtype)
        .cpu(|xs| map(xs, |v| 3.0 * v[0] * v[0] * v[2]));
    let mut fw = CustomOp::builder("cube")
        .input([n], dtype)
        .output([n], dtype)
        .cpu(|xs| map(xs, |v| v[0] * v[0] * v[0]));
    if dtype == DType::F32 {
        bw = bw.wgsl(wgsl("3.0 * in0[i] * in0[i] * in2[i]", 3), "main", dispatch);
        fw = fw.wgsl(wgsl("in0[i] * in0[i] * in0[i]", 1), "main", dispatch);
    }
    fw.backward(bw.build().unwrap()).build().unwrap()
}

#[test]
fn custom_ops_with_a_backward_are_differentiable_on_every_backend() {
    let n = 300;
    check_op("custom cube", &[arg(&[n], -2.0, 2.0)], move |g, x| {
        let op = cube_with_backward(n, g.dtype(x[0])?);
        // Composed with built-in ops on both sides, so gradients flow through it.
        let y = g.custom(&op, &[g.tanh(x[0])?])?[0];
        g.mul(y, x[0])
    });
}

#[test]
fn a_backward_with_the_wrong_signature_is_refused() {
    let bw = CustomOp::builder("bad_backward")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .build()
        .unwrap();
    let e = CustomOp::builder("op")
        .input([3], DType::F32)
        .output([3], DType::F32)
        .cpu(|xs| Ok(vec![xs[0].clone()]))
        .backward(bw)
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("bad_backward") && e.to_string().contains("cotangents"),
        "{e}"
    );
}

#[test]
fn vjp_takes_a_cotangent_for_non_scalar_outputs() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let y = g.mul(x, x).unwrap();
    let ct = g.input("ct", [3], DType::F32).unwrap();
    let dx = g.vjp(&[y], &[ct], &[x]).unwrap()[0];
    let xs = TensorData::new([3], vec![1.0f32, -2.0, 3.0]).unwrap();
    let cs = TensorData::new([3], vec![10.0f32, 1.0, -1.0]).unwrap();
    let out = check(
        "vjp",
        &g,
        &[dx],
        &[("x", &xs), ("ct", &cs)],
        Tolerance::EXACT,
    );
    assert_eq!(out[0].values::<f32>().unwrap(), &[20.0, -4.0, -6.0]);
    let wrong = g.input("w", [4], DType::F32).unwrap();
    assert!(
        g.vjp(&[y], &[wrong], &[x]).is_err(),
        "cotangent shape must match"
    );
}

#[test]
fn ties_follow_the_documented_rules() {
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let a = g.input("a", [2], DType::F32).unwrap();
    let dmax = g.grad(g.max(x, 0, false).unwrap(), &[x]).unwrap()[0];
    let both = g.sum_all(g.maximum(a, a).unwrap()).unwrap();
    let da = g.grad(both, &[a]).unwrap()[0];
    let dabs = g.grad(g.sum_all(g.abs(a).unwrap()).unwrap(), &[a]).unwrap()[0];
    let dmin_unique = g.grad(g.min(x, 0, false).unwrap(), &[x]).unwrap()[0];
    let xs = TensorData::new([4], vec![1.0f32, 3.0, 3.0, 3.0]).unwrap();
    let as_ = TensorData::new([2], vec![0.0f32, 2.0]).unwrap();
    let out = check(
        "ties",
        &g,
        &[dmax, da, dabs, dmin_unique],
        &[("x", &xs), ("a", &as_)],
        Tolerance::new(1e-6, 1e-7),
    );
    let third = 1.0f32 / 3.0;
    assert_eq!(
        out[0].values::<f32>().unwrap(),
        &[0.0, third, third, third],
        "max splits among ties"
    );
    assert_eq!(
        out[1].values::<f32>().unwrap(),
        &[1.0, 1.0],
        "maximum(a, a): half to each side"
    );
    assert_eq!(out[2].values::<f32>().unwrap(), &[0.0, 1.0], "abs'(0) = 0");
    assert_eq!(out[3].values::<f32>().unwrap(), &[1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn detach_stops_the_gradient_and_keeps_the_value() {
    let g = Graph::new();
    let x = g.input("x", [5], DType::F32).unwrap();
    let d = g.detach(x).unwrap();
    let y = g.sum_all(g.mul(x, d).unwrap()).unwrap();
    let dx = g.grad(y, &[x]).unwrap()[0];
    let data = TensorData::new([5], vec![1.0f32, -2.0, 0.5, 3.0, 0.0]).unwrap();
    let out = check(
        "detach",
        &g,
        &[d, y, dx],
        &[("x", &data)],
        gradflux::Tolerance::EXACT,
    );
    assert_eq!(out[0], data, "detach changes nothing forward");
    assert_eq!(out[1].to_f64_vec(), [14.25], "x · x");
    assert_eq!(out[2], data, "d/dx (x · detach(x)) = x, not 2x");
}
