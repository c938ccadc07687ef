//! `fused_route`: each token's `k` largest logits, their gates, and the per-expert
//! histogram. The choice reuses `top_k`'s rank order; the gates are formed in `f64` from
//! the chosen logits and rounded once, so the reference is as exact as the dtype allows.

use crate::{Element, FusedRouteSpec, Result, RouteScore, TensorData, TensorType};

use crate::ops::select::cpu::top_k;

/// The three outputs of `fused_route` (see `FusedRouteSpec`) for `[T, E]` logits.
pub fn fused_route(
    spec: &FusedRouteSpec,
    logits: &TensorData,
    outs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let dims = logits.shape().dims();
    let (t, e, k) = (dims[0], dims[1], spec.k);
    let [values, experts]: [TensorData; 2] = top_k(1, k, logits, [&outs[0], &outs[1]])?
        .try_into()
        .expect("top_k returns values and indices");
    let top = values.to_f64_vec();
    // Every logit is read only for a softmax over all experts.
    let z = if spec.score == RouteScore::Softmax && !spec.renormalize {
        logits.to_f64_vec()
    } else {
        vec![]
    };
    let mut gates = vec![0f64; t * k];
    for row in 0..t {
        let top = &top[row * k..(row + 1) * k];
        let out = &mut gates[row * k..(row + 1) * k];
        match spec.score {
            RouteScore::Softmax => {
                // top[0] is the row's largest logit (or NaN, which then spreads); the
                // shift is softmax's, 0 where a logit is the maximum.
                let m = top[0];
                for (g, &zj) in out.iter_mut().zip(top) {
                    *g = crate::ops::reduce::cpu::shift(zj, m).exp();
                }
                if !spec.renormalize {
                    let z = &z[row * e..(row + 1) * e];
                    let total: f64 = z
                        .iter()
                        .map(|&ze| crate::ops::reduce::cpu::shift(ze, m).exp())
                        .sum();
                    out.iter_mut().for_each(|g| *g /= total);
                }
            }
            RouteScore::Sigmoid => {
                for (g, &zj) in out.iter_mut().zip(top) {
                    *g = 1.0 / (1.0 + (-zj).exp());
                }
            }
        }
        if spec.renormalize {
            let total: f64 = out.iter().sum();
            out.iter_mut().for_each(|g| *g /= total);
        }
    }
    let mut counts = vec![0u32; e];
    for &x in experts.values::<u32>()? {
        counts[x as usize] += 1;
    }
    let gates = by_float_dtype!(outs[0].dtype, "fused_route", T => {
        Ok(T::wrap(gates.iter().map(|&g| T::from_f64(g)).collect()))
    })?;
    Ok(vec![
        TensorData::from_storage(outs[0].shape.clone(), gates)?,
        experts,
        TensorData::new(outs[2].shape.clone(), counts)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn route(score: RouteScore, renormalize: bool, k: usize, z: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let e = z.len();
        let spec = FusedRouteSpec {
            k,
            score,
            renormalize,
        };
        let x = TensorData::new([1, e], z.to_vec()).unwrap();
        let outs = [
            TensorType::new([1, k], DType::F32),
            TensorType::new([1, k], DType::U32),
            TensorType::new([e], DType::U32),
        ];
        let r = fused_route(&spec, &x, &outs).unwrap();
        let gates = r[0].values::<f32>().unwrap().to_vec();
        (gates, r[1].values::<u32>().unwrap().to_vec())
    }

    #[test]
    fn gates_follow_the_formulas_by_hand() {
        let z = [0.0f32, 2.0, 1.0, 2.0];
        // Ties go to the lower expert: 1 before 3.
        let (g, ids) = route(RouteScore::Softmax, false, 2, &z);
        assert_eq!(ids, [1, 3]);
        let total = 1.0 + 2.0 * 2f64.exp() + 1f64.exp();
        let p = (2f64.exp() / total) as f32;
        assert_eq!(g, [p, p]);
        let (g, _) = route(RouteScore::Softmax, true, 3, &z);
        let s = 2.0 + (-1f64).exp();
        assert_eq!(
            g,
            [
                (1.0 / s) as f32,
                (1.0 / s) as f32,
                ((-1f64).exp() / s) as f32
            ]
        );
        let (g, ids) = route(RouteScore::Sigmoid, false, 1, &z);
        assert_eq!(
            (ids, g),
            (vec![1], vec![(1.0 / (1.0 + (-2f64).exp())) as f32])
        );
        let (g, _) = route(RouteScore::Sigmoid, true, 2, &z);
        assert_eq!(g, [0.5, 0.5]);
    }

    #[test]
    fn nan_is_chosen_first_and_spreads_to_the_softmax_gates() {
        let (g, ids) = route(RouteScore::Softmax, false, 2, &[1.0, f32::NAN, 3.0]);
        assert_eq!(ids, [1, 2]);
        assert!(g.iter().all(|x| x.is_nan()));
    }
}
