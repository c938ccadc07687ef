//! Routers, their losses and a whole MoE layer.

use super::*;

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
