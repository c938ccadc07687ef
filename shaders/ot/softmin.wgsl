// Softmin of a batch of [n, m] cost matrices, reading the cost once: each thread keeps a
// running (max, sum of exp(t − max)) over its terms and the threads' pairs are merged in
// workgroup memory. The potential is h, or h + h2 · scale when info[5] is set (a Sinkhorn
// step's log-weights plus potential / eps, fused), and the result is scaled by lambda
// (info[7]; an unbalanced step's damping).
// - per_row: out[b, i] = −eps · log Σ_j exp(h[b, j] − cost[b, i, j] / eps), one workgroup
//   per row.
// - per_column: out[b, j] = −eps · log Σ_i exp(h[b, i] − cost[b, i, j] / eps), reading the
//   cost in place: a workgroup covers COLS adjacent columns (coalesced reads) with
//   WG / COLS row slices. Where an adapter limits loop iterations per invocation, the rows
//   are cut into info[9] spans of info[8]: workgroup (problem, column tile, span) writes
//   each column's pair and NaN flag to `part`, and per_column_merge (one thread per
//   column) merges the spans in order.
// #import lib/float.wgsl
// #import lib/online_lse.wgsl
alias T = f32;

override WG: u32 = 256u;
override COLS: u32 = 64u;

@group(0) @binding(0) var<storage, read> cost: array<T>;
@group(0) @binding(1) var<storage, read> h: array<T>;
@group(0) @binding(2) var<storage, read> h2: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
// info: [batch, n, m, eps as f32 bits, column tiles per problem, use h2, h2 scale as f32
// bits, lambda as f32 bits, rows per span, spans]
@group(0) @binding(5) var<storage, read> info: array<u32>;

// The potential at k: h[k], plus h2[k] · scale when fused.
fn potential(k: u32) -> f32 {
    if info[5] != 0u {
        return f32(h[k]) + f32(h2[k]) * bitcast<f32>(info[6]);
    }
    return f32(h[k]);
}

var<workgroup> red: array<vec2<f32>, WG>;
var<workgroup> red_nan: array<u32, WG>;

// Thread t's pair and NaN flag, stored for the merge.
fn store(t: u32, acc: vec2<f32>, nan: bool) {
    red[t] = acc;
    red_nan[t] = u32(nan);
}

// Merges slot t with slot t + stride.
fn merge_slots(t: u32, stride: u32) {
    red[t] = merge(red[t], red[t + stride]);
    red_nan[t] |= red_nan[t + stride];
}

// lambda · (−eps · log Σ) from a merged pair (NaN if any term was).
fn finish(total: vec2<f32>, nan: bool, eps: f32) -> T {
    let nan_out = bitcast<f32>(0x7fc00000u);
    let soft = -eps * (total.x + log(total.y));
    return T(select(bitcast<f32>(info[7]) * soft, nan_out, nan));
}

// The result from merged slot t.
fn result(t: u32, eps: f32) -> T {
    return finish(red[t], red_nan[t] != 0u, eps);
}

@compute @workgroup_size(WG)
fn per_row(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wg.x + wg.y * nwg.x;
    let n = info[1];
    if row >= info[0] * n {
        return;
    }
    let m = info[2];
    let eps = bitcast<f32>(info[3]);
    let inv_eps = 1.0 / eps;
    let base = row * m;
    let hbase = (row / n) * m;

    var acc = vec2<f32>(bitcast<f32>(0xff800000u), 0.0);
    var nan = false;
    for (var j = t; j < m; j += WG) {
        let term = potential(hbase + j) - f32(cost[base + j]) * inv_eps;
        nan = nan || is_nan(term);
        if !is_nan(term) {
            acc = push(acc, term);
        }
    }
    store(t, acc, nan);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            merge_slots(t, s);
        }
        workgroupBarrier();
    }
    if t == 0u {
        out[row] = result(0u, eps);
    }
}

@compute @workgroup_size(WG)
fn per_column(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    let spans = info[9];
    let per_problem = info[4] * spans;
    if w >= info[0] * per_problem {
        return;
    }
    let n = info[1];
    let m = info[2];
    let eps = bitcast<f32>(info[3]);
    let inv_eps = 1.0 / eps;
    let b = w / per_problem;
    let span = w % spans;
    let first = span * info[8];
    let end = min(n, first + info[8]);
    let slice = t / COLS;
    let slices = WG / COLS;
    let j = ((w % per_problem) / spans) * COLS + t % COLS;

    var acc = vec2<f32>(bitcast<f32>(0xff800000u), 0.0);
    var nan = false;
    if j < m {
        for (var i = first + slice; i < end; i += slices) {
            let term = potential(b * n + i) - f32(cost[(b * n + i) * m + j]) * inv_eps;
            nan = nan || is_nan(term);
            if !is_nan(term) {
                acc = push(acc, term);
            }
        }
    }
    store(t, acc, nan);
    workgroupBarrier();
    for (var s = slices / 2u; s > 0u; s >>= 1u) {
        if slice < s {
            merge_slots(t, s * COLS);
        }
        workgroupBarrier();
    }
    if slice == 0u && j < m {
        if spans == 1u {
            out[b * m + j] = result(t, eps);
        } else {
            let at = ((b * m + j) * spans + span) * 3u;
            part[at] = red[t].x;
            part[at + 1u] = red[t].y;
            part[at + 2u] = f32(red_nan[t]);
        }
    }
}

// Merges the spans' pairs of each column in span order (one thread per column).
@compute @workgroup_size(WG)
fn per_column_merge(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let k = gid.x + gid.y * nwg.x * WG;
    if k >= info[0] * info[2] {
        return;
    }
    let spans = info[9];
    var acc = vec2<f32>(bitcast<f32>(0xff800000u), 0.0);
    var nan = false;
    for (var s = 0u; s < spans; s++) {
        let at = (k * spans + s) * 3u;
        acc = merge(acc, vec2<f32>(part[at], part[at + 1u]));
        nan = nan || part[at + 2u] != 0.0;
    }
    out[k] = finish(acc, nan, bitcast<f32>(info[3]));
}
