//! Mixture-of-experts dispatch and the grouped matmul, written as directly as the
//! definitions in `Graph::moe_dispatch` and `Graph::grouped_matmul` read.

use std::cmp::Ordering;

use crate::{DropPolicy, Element, MoeDispatchSpec, Result, TensorData, TensorType};

use crate::ops::num::Num;

/// `a` before `b` in gate order: larger gate first, NaN above every number, `-0 == 0`.
fn gate_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// The six outputs of `moe_dispatch` (see `MoeDispatchSpec`).
pub fn dispatch(
    spec: &MoeDispatchSpec,
    experts: &TensorData,
    gates: Option<&TensorData>,
    outs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let e_count = spec.num_experts;
    let ids = experts.values::<u32>()?;
    let n = ids.len();
    let rows = outs[0].shape.numel();
    let gates = gates.map(TensorData::to_f64_vec);

    // Each expert's choices in increasing choice index (stable grouping).
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); e_count];
    for (a, &e) in ids.iter().enumerate() {
        if (e as usize) < e_count {
            members[e as usize].push(a);
        }
    }
    let counts: Vec<u32> = members.iter().map(|m| m.len() as u32).collect();
    let cap = spec.capacity.unwrap_or(n);
    if let (DropPolicy::HighestGate, Some(g), Some(_)) = (spec.policy, &gates, spec.capacity) {
        for m in &mut members {
            m.sort_by(|&a, &b| gate_order(g[a], g[b]).then(a.cmp(&b)));
        }
    }
    let mut sorted_ids = vec![n as u32; rows];
    let mut block_experts = vec![e_count as u32; rows / spec.block];
    let mut positions = vec![rows as u32; n];
    let mut dropped = vec![0u32; e_count];
    let mut offsets = vec![0u32; e_count + 1];
    let mut start = 0;
    for (e, m) in members.iter().enumerate() {
        offsets[e] = start as u32;
        let kept = m.len().min(cap);
        dropped[e] = (m.len() - kept) as u32;
        for (r, &a) in m[..kept].iter().enumerate() {
            sorted_ids[start + r] = a as u32;
            positions[a] = (start + r) as u32;
        }
        let padded = kept.div_ceil(spec.block) * spec.block;
        for b in (start..start + padded).step_by(spec.block) {
            block_experts[b / spec.block] = e as u32;
        }
        start += padded;
    }
    offsets[e_count] = start as u32;
    let u32s = |i: usize, v: Vec<u32>| TensorData::new(outs[i].shape.clone(), v);
    Ok(vec![
        u32s(0, sorted_ids)?,
        u32s(1, block_experts)?,
        u32s(2, positions)?,
        u32s(3, counts)?,
        u32s(4, dropped)?,
        u32s(5, offsets)?,
    ])
}

/// The expert of each row, or `None` for rows of unused blocks.
fn row_experts(
    block_experts: &TensorData,
    block: usize,
    rows: usize,
    e: usize,
) -> Result<Vec<Option<usize>>> {
    let be = block_experts.values::<u32>()?;
    Ok((0..rows)
        .map(|p| Some(be[p / block] as usize).filter(|&x| x < e))
        .collect())
}

/// `out[p] = x[p] · w[e(p)]`, accumulating in `f64`.
pub fn grouped_matmul(
    (block, transpose_b): (usize, bool),
    x: &TensorData,
    w: &TensorData,
    block_experts: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (p, k) = (x.shape().dims()[0], x.shape().dims()[1]);
    let n = out.shape.dims()[1];
    let e = w.shape().dims()[0];
    let experts = row_experts(block_experts, block, p, e)?;
    let storage = by_dtype!(out.dtype, T => {
        let (xv, wv) = (x.values::<T>()?, w.values::<T>()?);
        let at = |ex: usize, kk: usize, j: usize| {
            if transpose_b { wv[(ex * n + j) * k + kk] } else { wv[(ex * k + kk) * n + j] }
        };
        let mut values = vec![T::ZERO; p * n];
        for (row, ex) in experts.iter().enumerate() {
            let Some(ex) = *ex else { continue };
            for j in 0..n {
                let mut acc = T::ACC_ZERO;
                for kk in 0..k {
                    acc = T::acc_mul_add(acc, xv[row * k + kk], at(ex, kk, j));
                }
                values[row * n + j] = T::acc_finish(acc);
            }
        }
        T::wrap(values)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// `dw[e] = Σ_{rows p of e} x[p]ᵀ · dy[p]`, accumulating in `f64`.
pub fn grouped_matmul_weight_grad(
    block: usize,
    x: &TensorData,
    dy: &TensorData,
    block_experts: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (p, k) = (x.shape().dims()[0], x.shape().dims()[1]);
    let n = dy.shape().dims()[1];
    let e = out.shape.dims()[0];
    let experts = row_experts(block_experts, block, p, e)?;
    let storage = by_dtype!(out.dtype, T => {
        let (xv, dv) = (x.values::<T>()?, dy.values::<T>()?);
        let mut acc = vec![T::ACC_ZERO; e * k * n];
        for (row, ex) in experts.iter().enumerate() {
            let Some(ex) = *ex else { continue };
            for kk in 0..k {
                for j in 0..n {
                    let dst = &mut acc[(ex * k + kk) * n + j];
                    *dst = T::acc_mul_add(*dst, xv[row * k + kk], dv[row * n + j]);
                }
            }
        }
        T::wrap(acc.into_iter().map(T::acc_finish).collect())
    });
    TensorData::from_storage(out.shape.clone(), storage)
}
