//! Launch planning for `fused_route` (`shaders/moe/route_*.wgsl`): one pass zeroes the
//! `E` counters, one pass routes every token.

use crate::{DType, FusedRouteSpec, Result, RouteScore, Value};

use crate::kernel::launch::{per_element, u32s, values, Launch, Workgroups, ELEMENTWISE_WG};
use crate::ops::moe::wgsl::{f32_only, source};

/// Threads per workgroup of the routing pass.
const WG: usize = 64;

/// Lanes that share one token: about eight experts per lane, a power of two up to `WG`.
pub fn lanes_per_token(experts: usize) -> usize {
    (experts.next_power_of_two() / 8).clamp(1, WG)
}

/// The two passes of `fused_route` of `[tokens, experts]` f32 logits.
pub fn launches(
    spec: &FusedRouteSpec,
    logits: Value,
    dtype: DType,
    [gates, ids, counts]: [Value; 3],
    (tokens, experts): (usize, usize),
) -> Result<Vec<Launch>> {
    f32_only("fused_route logits", dtype, "them")?;
    let info = u32s([tokens, experts, spec.k]);
    let lanes = lanes_per_token(experts);
    let score = match spec.score {
        RouteScore::Softmax => "softmax",
        RouteScore::Sigmoid => "sigmoid",
    };
    let renorm = if spec.renormalize {
        " renormalised"
    } else {
        ""
    };
    Ok(vec![
        Launch {
            kernel: source(
                &super::ROUTE_CLEAR,
                "",
                vec![("WG", ELEMENTWISE_WG as f64)],
                &[false, true],
            ),
            binds: values([counts]),
            scratch: vec![],
            info: info.clone(),
            workgroups: per_element(experts),
        },
        Launch {
            kernel: source(
                &super::ROUTE_FUSED,
                &format!("{score}{renorm} lanes {lanes}"),
                vec![
                    ("G", lanes as f64),
                    ("WG", WG as f64),
                    ("SIGMOID", (spec.score == RouteScore::Sigmoid) as u8 as f64),
                    ("RENORM", spec.renormalize as u8 as f64),
                ],
                &[true, false, false, false, true],
            ),
            binds: values([logits, gates, ids, counts]),
            scratch: vec![],
            info,
            workgroups: Workgroups::Linear(tokens.div_ceil(WG / lanes) as u64),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cover_about_eight_experts_each() {
        assert_eq!(lanes_per_token(2), 1);
        assert_eq!(lanes_per_token(8), 1);
        assert_eq!(lanes_per_token(64), 8);
        assert_eq!(lanes_per_token(256), 32);
        assert_eq!(lanes_per_token(100), 16);
        assert_eq!(lanes_per_token(1 << 20), WG);
    }

    #[test]
    fn only_f32_logits_are_routed() {
        let v = |node| Value { node, slot: 0 };
        let spec = FusedRouteSpec {
            k: 2,
            score: RouteScore::Softmax,
            renormalize: true,
        };
        let err = launches(&spec, v(0), DType::F16, [v(1), v(2), v(3)], (4, 8)).unwrap_err();
        assert!(err.to_string().contains("cast them to f32"), "{err}");
    }
}
