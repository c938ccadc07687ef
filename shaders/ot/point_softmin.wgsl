// Soft minimum over costs computed on the fly between two point clouds:
// out[b, i] = lambda · (−eps · log Σ_j exp(pot[b, j] − cost(x_i, y_j) / eps)), with
// pot = h, or h + h2 · scale when info[5] is set (a Sinkhorn step's log-weights plus
// potential / eps, fused). One thread per x_i; y streams through workgroup memory in tiles
// of PT points, PD coordinates at a time, so memory is O(n + m) whatever d is. Each tile's
// largest term is found first, so a tile costs one rescale of the running sum.
// Where an adapter limits loop iterations per invocation, y is cut into info[11] spans of
// info[10] points: workgroup (problem, x tile, span) writes its running (top, sum, NaN
// seen) to `part`, and `merge` (one thread per x_i) combines the spans in order.
// #import lib/float.wgsl
// #import lib/point_tile.wgsl
alias T = f32;

override WG: u32 = 64u;

// x and y.
@group(0) @binding(0) var<storage, read> p: array<T>;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> h: array<T>;
@group(0) @binding(3) var<storage, read> h2: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
// info: [batch, n, m, d, eps as f32 bits, use h2, h2 scale as f32 bits, lambda as f32
// bits, cost (0 squared Euclidean, 1 Euclidean), tiles of x per problem, span, spans]
@group(0) @binding(6) var<storage, read> info: array<u32>;

var<workgroup> ptile: array<f32, PT>;

fn potential(k: u32) -> f32 {
    if info[5] != 0u {
        return f32(h[k]) + f32(h2[k]) * bitcast<f32>(info[6]);
    }
    return f32(h[k]);
}

fn ground_cost(d2: f32) -> f32 {
    if info[8] == 1u {
        return sqrt(d2);
    }
    return d2;
}

// exp(t − top), exactly 1 where t equals top (so two +inf stay +inf, never inf − inf).
fn scaled(t: f32, top: f32) -> f32 {
    return select(exp(t - top), 1.0, t == top);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    let spans = info[11];
    let per_problem = info[9] * spans;
    if w >= info[0] * per_problem {
        return;
    }
    let n = info[1];
    let d = info[3];
    let eps = bitcast<f32>(info[4]);
    let inv_eps = 1.0 / eps;
    let b = w / per_problem;
    let i = ((w % per_problem) / spans) * WG + t;
    let span = w % spans;
    let first = span * info[10];
    let m = info[2];
    // This span's points of y: first..end.
    let end = min(m, first + info[10]);
    let xbase = (b * n + min(i, n - 1u)) * d;
    let neg_inf = bitcast<f32>(0xff800000u);

    var top = neg_inf;
    var sum = 0.0;
    var nan = false;
    for (var j0 = first; j0 < end; j0 += PT) {
        let count = min(PT, end - j0);
        workgroupBarrier();
        for (var e = t; e < count; e += WG) {
            ptile[e] = potential(b * m + j0 + e);
        }
        let dist = tile_sq_dist(t, xbase, b * m + j0, count, d);
        workgroupBarrier();
        // The tile's terms: largest first, then one rescale of the running sum.
        var tile_top = neg_inf;
        for (var jj = 0u; jj < count; jj++) {
            let term = ptile[jj] - ground_cost(dist[jj]) * inv_eps;
            if is_nan(term) {
                nan = true;
            } else {
                tile_top = max(tile_top, term);
            }
        }
        // Uniform control flow around the barriers: a thread with nothing to add skips
        // only the arithmetic.
        if tile_top != neg_inf {
            let new_top = max(top, tile_top);
            sum *= scaled(top, new_top);
            for (var jj = 0u; jj < count; jj++) {
                let term = ptile[jj] - ground_cost(dist[jj]) * inv_eps;
                if !is_nan(term) {
                    sum += scaled(term, new_top);
                }
            }
            top = new_top;
        }
    }
    if i < n {
        if spans == 1u {
            out[b * n + i] = finish(top, sum, nan);
        } else {
            let at = ((b * n + i) * spans + span) * 3u;
            part[at] = top;
            part[at + 1u] = sum;
            part[at + 2u] = select(0.0, 1.0, nan);
        }
    }
}

// lambda · (−eps · log Σ) from the running pair, NaN if any term was.
fn finish(top: f32, sum: f32, nan: bool) -> T {
    let soft = -bitcast<f32>(info[4]) * (top + log(sum));
    let value = bitcast<f32>(info[7]) * soft;
    return T(select(value, bitcast<f32>(0x7fc00000u), nan));
}

// Combines the spans' running pairs of x_i in span order: the larger top keeps its sum.
@compute @workgroup_size(WG)
fn merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = gid.x + gid.y * nwg.x * WG;
    if k >= info[0] * info[1] {
        return;
    }
    let spans = info[11];
    var top = bitcast<f32>(0xff800000u);
    var sum = 0.0;
    var nan = false;
    for (var s = 0u; s < spans; s++) {
        let at = (k * spans + s) * 3u;
        let t = part[at];
        nan = nan || part[at + 2u] != 0.0;
        if part[at + 1u] != 0.0 {
            let new_top = max(top, t);
            sum = sum * scaled(top, new_top) + part[at + 1u] * scaled(t, new_top);
            top = new_top;
        }
    }
    out[k] = finish(top, sum, nan);
}
