// Softmax or log-softmax along a long axis (more elements than one workgroup should walk),
// over a tensor viewed as [outer, len, inner], in three launches:
// - chunk_stats: one workgroup per chunk of CHUNK elements of a row writes the chunk's
//   (max, sum of exp(x - max)) pair to stats[(row * chunks + chunk) * 2];
// - merge_rows: one thread per row merges its chunks' pairs into the row's pair, written after
//   every chunk pair at stats[(rows * chunks + row) * 2];
// - apply: one thread per element writes exp(x - max) / sum (or x - max - log(sum)).
// The rules are those of softmax.wgsl: the shift x - max is 0 where x == max (a +inf
// maximum shares the mass among the +inf entries; an all -inf row is uniform), and a NaN
// makes the row NaN.
// #import lib/float.wgsl
// #import lib/online_lse.wgsl
alias T = f32;

override LOG: bool = false;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
// info: [rows, len, inner, chunk length, chunks]
@group(0) @binding(3) var<storage, read> info: array<u32>;

var<workgroup> pairs: array<vec2<f32>, WG>;

const NEG_INF: u32 = 0xff800000u;

// Two (max, sum of exp(t - max)) pairs merged as lib/online_lse.wgsl merges them (equal
// tops add, so an all -inf row counts its elements: the uniform limit), a NaN top winning.
fn merge_pairs(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    if is_nan(a.x) {
        return a;
    }
    if is_nan(b.x) {
        return b;
    }
    return merge(a, b);
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
fn merge_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
