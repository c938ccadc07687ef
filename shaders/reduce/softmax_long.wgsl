// Softmax or log-softmax along a long axis (more elements than one workgroup should walk),
// over a tensor viewed as [outer, len, inner], in three launches:
// - chunk_stats: one workgroup per chunk of CHUNK elements of a row writes the chunk's
//   (max, sum of exp(x - max)) pair to stats[(row * chunks + chunk) * 2];
// - merge: one thread per row merges its chunks' pairs into the row's pair, written after
//   every chunk pair at stats[(rows * chunks + row) * 2];
// - apply: one thread per element writes exp(x - max) / sum (or x - max - log(sum)).
// The rules are those of softmax.wgsl: the shift x - max is 0 where x == max (a +inf
// maximum shares the mass among the +inf entries; an all -inf row is uniform), and a NaN
// makes the row NaN.
alias T = f32;

override LOG: bool = false;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
// info: [rows, len, inner, chunk length, chunks]
@group(0) @binding(3) var<storage, read> info: array<u32>;

var<workgroup> pairs: array<vec2<f32>, WG>;

// NaN by its bits: drivers may fold `v != v` away, assuming no NaN.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn shifted(v: f32, m: f32) -> f32 {
    return select(v - m, 0.0, v == m);
}

const NEG_INF: u32 = 0xff800000u;

// The pair (max, sum of exp(t - max)) of two sets merged: the larger top keeps its sum
// (so a +inf top never meets inf - inf), equal tops add (two all -inf sides count their
// elements, the uniform limit), the smaller side is scaled by exp(its top - top) (0 for a
// -inf side under a larger top; an empty side is (-inf, 0)), and a NaN top wins.
fn merge_pairs(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    if is_nan(a.x) {
        return a;
    }
    if is_nan(b.x) {
        return b;
    }
    let top = max(a.x, b.x);
    let sa = select(a.y * exp(a.x - top), a.y, a.x == top);
    let sb = select(b.y * exp(b.x - top), b.y, b.x == top);
    return vec2<f32>(top, sa + sb);
}

// Element k of row r in the [outer, len, inner] view.
fn at(r: u32, k: u32) -> u32 {
    let inner = info[2];
    return (r / inner) * info[1] * inner + k * inner + r % inner;
}

@compute @workgroup_size(WG)
fn chunk_stats(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    let chunks = info[4];
    if w >= info[0] * chunks {
        return;
    }
    let r = w / chunks;
    let first = (w % chunks) * info[3];
    let end = min(first + info[3], info[1]);
    // Each thread's own pair over its strided elements: an all -inf run counts each
    // element as exp(0) (the shift rule), which merge_pairs keeps as equal tops.
    var acc = vec2<f32>(bitcast<f32>(NEG_INF), 0.0);
    for (var k = first + t; k < end; k += WG) {
        let v = f32(x[at(r, k)]);
        acc = merge_pairs(acc, vec2<f32>(v, 1.0));
    }
    pairs[t] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            pairs[t] = merge_pairs(pairs[t], pairs[t + s]);
        }
        workgroupBarrier();
    }
    if t == 0u {
        stats[w * 2u] = pairs[0].x;
        stats[w * 2u + 1u] = pairs[0].y;
    }
}

@compute @workgroup_size(WG)
fn merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * WG;
    let rows = info[0];
    let chunks = info[4];
    if r >= rows {
        return;
    }
    var acc = vec2<f32>(bitcast<f32>(NEG_INF), 0.0);
    for (var c = 0u; c < chunks; c++) {
        let i = (r * chunks + c) * 2u;
        acc = merge_pairs(acc, vec2<f32>(stats[i], stats[i + 1u]));
    }
    let o = (rows * chunks + r) * 2u;
    stats[o] = acc.x;
    stats[o + 1u] = acc.y;
}

@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    let len = info[1];
    let inner = info[2];
    if e >= info[0] * len {
        return;
    }
    // e is the flat element index; its row in the [outer, inner] grid and its position.
    let r = (e / (len * inner)) * inner + e % inner;
    let o = (info[0] * info[4] + r) * 2u;
    let m = stats[o];
    let total = stats[o + 1u];
    let v = shifted(f32(x[e]), m);
    if LOG {
        out[e] = T(v - log(total));
    } else {
        out[e] = T(exp(v) / total);
    }
}
