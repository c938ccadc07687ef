// The small kernels of the implicit Sinkhorn gradient's linear solve (the plan products
// come from plan_matvec.wgsl or, for points, point_softmin_grad.wgsl). With c the plan's
// column sums and M = Π_rᵀ Π_c, conjugate gradients solve (I − λ M) y = q in the inner
// product weighted by 1/c, one problem per workgroup, each problem's scalars kept on the
// device in `scal` = [r·r, r·r at the start, done, coupled mass Σ c], so nothing is read
// back: a problem that has converged skips the remaining steps. Columns with no mass
// (weight 0) are not coupled and keep y = q. The per-problem kernels walk the same indices
// j ≡ t (mod WG) in every pass, so a thread only reads what it wrote; the workgroup
// barriers are only for the sums. Each entry point binds its own buffers.
// #import lib/workgroup.wgsl
alias T = f32;

// potentials: out = log(w) + v / eps.
@group(0) @binding(0) var<storage, read> pot_w: array<T>;
@group(0) @binding(1) var<storage, read> pot_v: array<T>;
@group(0) @binding(2) var<storage, read_write> pot_out: array<T>;
// [length, eps bits]
@group(0) @binding(3) var<storage, read> pot_info: array<u32>;

@compute @workgroup_size(WG)
fn potentials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k < pot_info[0] {
        pot_out[k] = T(log(f32(pot_w[k])) + f32(pot_v[k]) / bitcast<f32>(pot_info[1]));
    }
}

// column_weights: from β and the column soft minimum t, the plan's column sums
// c = exp(β − t/eps) and the weights 1/c (0 where c is 0 or 1/c overflows: uncoupled).
@group(0) @binding(0) var<storage, read> cw_beta: array<T>;
@group(0) @binding(1) var<storage, read> cw_t: array<T>;
@group(0) @binding(2) var<storage, read_write> cw_c: array<T>;
@group(0) @binding(3) var<storage, read_write> cw_w: array<T>;
// [length, eps bits]
@group(0) @binding(4) var<storage, read> cw_info: array<u32>;

@compute @workgroup_size(WG)
fn column_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k >= cw_info[0] {
        return;
    }
    let e = f32(cw_beta[k]) - f32(cw_t[k]) / bitcast<f32>(cw_info[1]);
    let c = exp(e);
    let w = exp(-e);
    let coupled = c > 0.0 && w < bitcast<f32>(0x7f800000u);
    cw_c[k] = T(c);
    cw_w[k] = T(select(0.0, w, coupled));
}

// start: q = vg − lambda_a · Π_rᵀ vf into r (until `residual` turns it into the
// residual), and y = q on uncoupled columns, 0 elsewhere.
@group(0) @binding(0) var<storage, read> st_vg: array<T>;
@group(0) @binding(1) var<storage, read> st_pv: array<T>;
@group(0) @binding(2) var<storage, read> st_w: array<T>;
@group(0) @binding(3) var<storage, read_write> st_y: array<T>;
@group(0) @binding(4) var<storage, read_write> st_r: array<T>;
// [length, lambda_a bits]
@group(0) @binding(5) var<storage, read> st_info: array<u32>;

@compute @workgroup_size(WG)
fn start(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k >= st_info[0] {
        return;
    }
    let q = f32(st_vg[k]) - bitcast<f32>(st_info[1]) * f32(st_pv[k]);
    st_r[k] = T(q);
    st_y[k] = T(select(q, 0.0, f32(st_w[k]) > 0.0));
}

// residual (one workgroup per problem): r = q + λ M y on coupled columns (r holds q),
// projected off c when balanced; the first direction p = r; the scalars.
@group(0) @binding(0) var<storage, read> rs_my: array<T>;
@group(0) @binding(1) var<storage, read> rs_c: array<T>;
@group(0) @binding(2) var<storage, read> rs_w: array<T>;
@group(0) @binding(3) var<storage, read_write> rs_r: array<T>;
@group(0) @binding(4) var<storage, read_write> rs_p: array<T>;
@group(0) @binding(5) var<storage, read_write> rs_scal: array<f32>;
// [batch, m, lambda bits, balanced]
@group(0) @binding(6) var<storage, read> rs_info: array<u32>;

@compute @workgroup_size(WG)
fn residual(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let m = rs_info[1];
    let base = wg.x * m;
    let lambda = bitcast<f32>(rs_info[2]);
    var along = 0.0;
    var mass = 0.0;
    for (var j = t; j < m; j += WG) {
        let k = base + j;
        let coupled = f32(rs_w[k]) > 0.0;
        let r = select(0.0, f32(rs_r[k]) + lambda * f32(rs_my[k]), coupled);
        rs_r[k] = T(r);
        along += r;
        mass += select(0.0, f32(rs_c[k]), coupled);
    }
    let a = workgroup_sum(t, along);
    let coupled_mass = workgroup_sum(t, mass);
    let shift = select(0.0, a / coupled_mass, rs_info[3] != 0u && coupled_mass > 0.0);
    var rr = 0.0;
    for (var j = t; j < m; j += WG) {
        let k = base + j;
        let w = f32(rs_w[k]);
        let r = f32(rs_r[k]) - shift * select(0.0, f32(rs_c[k]), w > 0.0);
        rs_r[k] = T(r);
        rs_p[k] = T(r);
        rr += r * r * w;
    }
    let rr_all = workgroup_sum(t, rr);
    if t == 0u {
        let s = 4u * wg.x;
        rs_scal[s] = rr_all;
        rs_scal[s + 1u] = rr_all;
        rs_scal[s + 2u] = select(1.0, 0.0, rr_all > 0.0);
        rs_scal[s + 3u] = coupled_mass;
    }
}

// cg_step (one workgroup per problem): one step of conjugate gradients for
// (I − λ M) y = q given M p, skipped once the problem is done.
@group(0) @binding(0) var<storage, read> cg_mp: array<T>;
@group(0) @binding(1) var<storage, read> cg_c: array<T>;
@group(0) @binding(2) var<storage, read> cg_w: array<T>;
@group(0) @binding(3) var<storage, read_write> cg_y: array<T>;
@group(0) @binding(4) var<storage, read_write> cg_r: array<T>;
@group(0) @binding(5) var<storage, read_write> cg_p: array<T>;
@group(0) @binding(6) var<storage, read_write> cg_scal: array<f32>;
// [batch, m, lambda bits, balanced, tolerance² bits]
@group(0) @binding(7) var<storage, read> cg_info: array<u32>;

// (I − λ M) p at k (0 on uncoupled columns).
fn applied(k: u32, lambda: f32) -> f32 {
    return select(0.0, f32(cg_p[k]) - lambda * f32(cg_mp[k]), f32(cg_w[k]) > 0.0);
}

@compute @workgroup_size(WG)
fn cg_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let m = cg_info[1];
    let base = wg.x * m;
    let s = 4u * wg.x;
    let lambda = bitcast<f32>(cg_info[2]);
    let rr = cg_scal[s];
    let rr0 = cg_scal[s + 1u];
    let was_done = cg_scal[s + 2u] != 0.0;
    let mass = cg_scal[s + 3u];
    var curv = 0.0;
    for (var j = t; j < m; j += WG) {
        let k = base + j;
        curv += f32(cg_p[k]) * applied(k, lambda) * f32(cg_w[k]);
    }
    let p_ap = workgroup_sum(t, curv);
    let stepping = !was_done && p_ap > 0.0;
    let alpha = select(0.0, rr / p_ap, stepping);
    var along = 0.0;
    for (var j = t; j < m; j += WG) {
        let k = base + j;
        let r = f32(cg_r[k]) - alpha * applied(k, lambda);
        cg_y[k] = T(f32(cg_y[k]) + alpha * f32(cg_p[k]));
        cg_r[k] = T(r);
        along += select(0.0, r, f32(cg_w[k]) > 0.0);
    }
    let a = workgroup_sum(t, along);
    let shift = select(0.0, a / mass, stepping && cg_info[3] != 0u && mass > 0.0);
    var rr_next = 0.0;
    for (var j = t; j < m; j += WG) {
        let k = base + j;
        let w = f32(cg_w[k]);
        let r = f32(cg_r[k]) - shift * select(0.0, f32(cg_c[k]), w > 0.0);
        cg_r[k] = T(r);
        rr_next += r * r * w;
    }
    let rr_new = workgroup_sum(t, rr_next);
    let go_on = stepping && rr_new > bitcast<f32>(cg_info[4]) * rr0;
    let beta = select(0.0, rr_new / rr, go_on);
    if go_on {
        for (var j = t; j < m; j += WG) {
            let k = base + j;
            cg_p[k] = T(f32(cg_r[k]) + beta * f32(cg_p[k]));
        }
    }
    // The scalars were read by every thread before the sums' barriers.
    if t == 0u {
        cg_scal[s] = select(rr, rr_new, stepping);
        cg_scal[s + 2u] = select(1.0, 0.0, go_on);
    }
}

// gate (one workgroup): flag = 1 while any problem's solve goes on, 0 once all are done,
// so the loop's remaining steps dispatch nothing.
@group(0) @binding(0) var<storage, read> ga_scal: array<f32>;
@group(0) @binding(1) var<storage, read_write> ga_flag: array<u32>;
// [batch]
@group(0) @binding(2) var<storage, read> ga_info: array<u32>;

@compute @workgroup_size(WG)
fn gate(@builtin(local_invocation_index) t: u32) {
    var open = 0.0;
    for (var p = t; p < ga_info[0]; p += WG) {
        open += select(0.0, 1.0, ga_scal[4u * p + 2u] == 0.0);
    }
    let any_open = workgroup_sum(t, open) > 0.0;
    if t == 0u {
        ga_flag[0] = select(0u, 1u, any_open);
    }
}

// finish: wf = vf − lambda_b · Π_c y.
@group(0) @binding(0) var<storage, read> fi_v: array<T>;
@group(0) @binding(1) var<storage, read> fi_pc: array<T>;
@group(0) @binding(2) var<storage, read_write> fi_out: array<T>;
// [length, lambda_b bits]
@group(0) @binding(3) var<storage, read> fi_info: array<u32>;

@compute @workgroup_size(WG)
fn finish(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k < fi_info[0] {
        fi_out[k] = T(f32(fi_v[k]) - bitcast<f32>(fi_info[1]) * f32(fi_pc[k]));
    }
}
