// The small kernels around the Sinkhorn loop's half-steps (which are softmin.wgsl and
// point_softmin.wgsl). Each entry point binds its own buffers; none uses another's.
// - log_weights: dst = log(src), once per run for both marginals.
// - copy: dst = src, the warm start into the loop's potentials.
// - check_weights: per problem b, status[1 + 3b ..] = [Σa, Σb, bad], bad = 1 when a
//   holds a negative or non-finite weight, 2 when b does, 3 both; a workgroup per problem.
// - marginal_error: per problem the sum over rows of |a_i exp((f_i − s_i)/eps) −
//   a_i exp(−f_i/rho_a)|, s the row's undamped soft minimum (the distance of the plan's
//   row mass from its target); a workgroup per problem, so the order of the sums is fixed.
// - largest_error: the largest over problems (NaN if any is) in status[0]; one workgroup.
// status is what the host reads back at a check: one buffer, one copy.
// #import lib/float.wgsl
// #import lib/workgroup.wgsl
alias T = f32;


@group(0) @binding(0) var<storage, read> src: array<T>;
@group(0) @binding(1) var<storage, read_write> dst: array<T>;
// info: [length]
@group(0) @binding(2) var<storage, read> len_info: array<u32>;

@compute @workgroup_size(WG)
fn log_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k < len_info[0] {
        dst[k] = T(log(f32(src[k])));
    }
}

@compute @workgroup_size(WG)
fn copy(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = linear(wg, nwg, t);
    if k < len_info[0] {
        dst[k] = src[k];
    }
}

@group(0) @binding(0) var<storage, read> weights_a: array<T>;
@group(0) @binding(1) var<storage, read> weights_b: array<T>;
@group(0) @binding(2) var<storage, read_write> mass_status: array<f32>;
// info: [batch, n, m]
@group(0) @binding(3) var<storage, read> mass_info: array<u32>;

// Negative, NaN or infinite, by the bits (float compares may assume no NaN).
fn is_bad_weight(v: f32) -> bool {
    let bits = bitcast<u32>(v);
    let non_finite = (bits & 0x7f800000u) == 0x7f800000u;
    let negative = (bits >> 31u) == 1u && bits != 0x80000000u;
    return non_finite || negative;
}

// (sum of the good weights, 1 if any is bad) of `len` weights of a or b from `base`.
fn sum_weights(t: u32, base: u32, len: u32, of_a: bool) -> vec2<f32> {
    var s = 0.0;
    var bad = 0.0;
    for (var k = t; k < len; k += WG) {
        var v: f32;
        if of_a {
            v = f32(weights_a[base + k]);
        } else {
            v = f32(weights_b[base + k]);
        }
        if is_bad_weight(v) {
            bad = 1.0;
        } else {
            s += v;
        }
    }
    let total = workgroup_sum(t, s);
    return vec2<f32>(total, select(0.0, 1.0, workgroup_sum(t, bad) > 0.0));
}

@compute @workgroup_size(WG)
fn check_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let n = mass_info[1];
    let m = mass_info[2];
    let b = wg.x + wg.y * nwg.x;
    if b >= mass_info[0] {
        return;
    }
    let sa = sum_weights(t, b * n, n, true);
    let sb = sum_weights(t, b * m, m, false);
    if t == 0u {
        mass_status[1u + 3u * b] = sa.x;
        mass_status[2u + 3u * b] = sb.x;
        mass_status[3u + 3u * b] = sa.y + 2.0 * sb.y;
    }
}

@group(0) @binding(0) var<storage, read> row_a: array<T>;
@group(0) @binding(1) var<storage, read> row_f: array<T>;
@group(0) @binding(2) var<storage, read> row_soft: array<T>;
@group(0) @binding(3) var<storage, read_write> errors: array<T>;
@group(0) @binding(4) var<storage, read_write> status: array<f32>;
// info: [batch, n, eps as f32 bits, 1 / rho_a as f32 bits (0 for an exact marginal)]
@group(0) @binding(5) var<storage, read> error_info: array<u32>;

@compute @workgroup_size(WG)
fn marginal_error(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let n = error_info[1];
    let eps = bitcast<f32>(error_info[2]);
    let inv_rho = bitcast<f32>(error_info[3]);
    let b = wg.x + wg.y * nwg.x;
    if b >= error_info[0] {
        return;
    }
    var s = 0.0;
    for (var k = b * n + t; k < (b + 1u) * n; k += WG) {
        let a = f32(row_a[k]);
        let f = f32(row_f[k]);
        let mass = a * exp((f - f32(row_soft[k])) / eps);
        var goal = a;
        if inv_rho != 0.0 {
            goal = a * exp(-f * inv_rho);
        }
        s += abs(mass - goal);
    }
    let e = workgroup_sum(t, s);
    if t == 0u {
        errors[b] = T(e);
    }
}

var<workgroup> red_max: array<f32, WG>;

@compute @workgroup_size(WG)
fn largest_error(@builtin(local_invocation_index) t: u32) {
    var worst = 0.0;
    var nan = 0.0;
    for (var b = t; b < error_info[0]; b += WG) {
        let e = f32(errors[b]);
        if is_nan(e) {
            nan = 1.0;
        } else {
            worst = max(worst, e);
        }
    }
    red_max[t] = worst;
    let any_nan = workgroup_sum(t, nan) > 0.0;
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if t < stride {
            red_max[t] = max(red_max[t], red_max[t + stride]);
        }
        workgroupBarrier();
    }
    if t == 0u {
        status[0] = select(red_max[0], bitcast<f32>(0x7fc00000u), any_nan);
    }
}
