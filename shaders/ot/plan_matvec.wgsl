// Products of a normalised transport plan with a vector, reading a batch of dense [n, m]
// costs once:
//   out[b, o] = Σ_r exp(out_pot[b, o] + (red_pot[b, r] − cost) / eps) · u[b, r]
// The caller picks potentials that make each exponent a log-probability (at most 0), so
// the terms are summed as they are, without a running maximum. When info[5] is set, a
// problem whose solve has finished (skip[4b + 2] != 0, the flag of sinkhorn_adjoint.wgsl)
// is skipped.
// - per_row: o = i, r = j, one workgroup per row.
// - per_column: o = j, r = i, reading the cost in place: a workgroup covers COLS adjacent
//   columns (coalesced reads) with WG / COLS row slices. Where an adapter limits loop
//   iterations per invocation, the rows are cut into info[7] spans of info[6]: span s
//   writes its sums at s · batch · m (a scratch buffer then), and a sum over spans follows.
alias T = f32;

override WG: u32 = 256u;
override COLS: u32 = 64u;

@group(0) @binding(0) var<storage, read> cost: array<T>;
@group(0) @binding(1) var<storage, read> out_pot: array<T>;
@group(0) @binding(2) var<storage, read> red_pot: array<T>;
@group(0) @binding(3) var<storage, read> u: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<storage, read> skip: array<f32>;
// info: [batch, n, m, 1 / eps as f32 bits, column tiles per problem, use skip, rows per
// span, spans]
@group(0) @binding(6) var<storage, read> info: array<u32>;

// Whether problem b has finished its solve (read-only, so uniform: the early return
// leaves every barrier in uniform control flow).
fn skipped(b: u32) -> bool {
    return info[5] != 0u && skip[4u * b + 2u] != 0.0;
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn per_row(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wg.x + wg.y * nwg.x;
    let n = info[1];
    if row >= info[0] * n || skipped(row / n) {
        return;
    }
    let m = info[2];
    let inv_eps = bitcast<f32>(info[3]);
    let base = row * m;
    let rbase = (row / n) * m;
    let alpha = f32(out_pot[row]);

    var acc = 0.0;
    for (var j = t; j < m; j += WG) {
        let e = alpha + (f32(red_pot[rbase + j]) - f32(cost[base + j])) * inv_eps;
        acc += exp(e) * f32(u[rbase + j]);
    }
    red[t] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    if t == 0u {
        out[row] = T(red[0]);
    }
}

@compute @workgroup_size(WG)
fn per_column(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let spans = info[7];
    let w = (wg.x + wg.y * nwg.x) / spans;
    let span = (wg.x + wg.y * nwg.x) % spans;
    let tiles = info[4];
    if w >= info[0] * tiles || skipped(w / tiles) {
        return;
    }
    let n = info[1];
    let m = info[2];
    let inv_eps = bitcast<f32>(info[3]);
    let b = w / tiles;
    let slice = t / COLS;
    let slices = WG / COLS;
    let j = (w % tiles) * COLS + t % COLS;
    let first = span * info[6];
    let end = min(n, first + info[6]);

    var acc = 0.0;
    if j < m {
        let alpha = f32(out_pot[b * m + j]);
        for (var i = first + slice; i < end; i += slices) {
            let r = b * n + i;
            let e = alpha + (f32(red_pot[r]) - f32(cost[r * m + j])) * inv_eps;
            acc += exp(e) * f32(u[r]);
        }
    }
    red[t] = acc;
    workgroupBarrier();
    for (var s = slices / 2u; s > 0u; s >>= 1u) {
        if slice < s {
            red[t] += red[t + s * COLS];
        }
        workgroupBarrier();
    }
    if slice == 0u && j < m {
        out[span * info[0] * m + b * m + j] = T(red[t]);
    }
}
