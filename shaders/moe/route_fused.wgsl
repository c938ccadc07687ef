// Fused routing, pass 2 of 2: for each token (a row of [T, E] logits), its k largest
// logits in top_k's order, their gates, and the histogram of chosen experts.
//
// G lanes share a token; each lane owns experts lane, lane + G, ... and keeps the best of
// its experts not yet chosen. Each of the k rounds reduces the lanes' bests in workgroup
// memory to the token's next expert; only the lane that owned it rescans, for its best
// expert after the one just taken (rank order is total, so "after the last taken" is
// exactly "not yet taken"). The winning key is inverted back to its logit, so gates need
// no second read. Gates are written unnormalised as they are found, then divided by the
// row's sum once it is known (for a softmax over every expert, that sum is gathered in the
// first scan, so the row is read once).
// #import lib/float.wgsl
// #import lib/online_lse.wgsl
override G: u32 = 32u;
override WG: u32 = 64u;
override SIGMOID: bool = false;
override RENORM: bool = false;

// A lane with no expert left offers (0, NONE), which ranks after every real candidate.
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> gates: array<f32>;
@group(0) @binding(2) var<storage, read_write> experts: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
// info: [T, E, k]
@group(0) @binding(4) var<storage, read> info: array<u32>;

var<workgroup> red_key: array<u32, WG>;
var<workgroup> red_id: array<u32, WG>;
var<workgroup> red_sum: array<vec2<f32>, WG>;

// The logit a key came from (+0 for a -0 logit, a quiet NaN for NaN).
fn key_value(k: u32) -> f32 {
    if k == 0xffffffffu {
        return bitcast<f32>(0x7fc00000u);
    }
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u));
}

// The best of this lane's experts after (lk, li), the one it just gave up.
fn lane_best_after(base: u32, e: u32, lane: u32, lk: u32, li: u32) -> vec2<u32> {
    var bk = 0u;
    var bi = NONE;
    for (var x = lane; x < e; x += G) {
        let kx = float_key(logits[base + x]);
        if ranks_before(lk, li, kx, x) && ranks_before(kx, x, bk, bi) {
            bk = kx;
            bi = x;
        }
    }
    return vec2<u32>(bk, bi);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let tokens = info[0];
    let e = info[1];
    let k = info[2];
    let lane = t % G;
    let head = t - lane;
    let token = (wg.x + wg.y * nwg.x) * (WG / G) + t / G;
    let live = token < tokens;
    let base = token * e;
    let out = token * k;

    // The first scan finds each lane's best expert and, for a softmax over every expert,
    // its running (max, sum of exp(z − max)), so the row is read once.
    let softmax_all = !SIGMOID && !RENORM;
    var best = vec2<u32>(0u, NONE);
    var pair = vec2<f32>(bitcast<f32>(0xff800000u), 0.0);
    if live {
        for (var x = lane; x < e; x += G) {
            let z = logits[base + x];
            let kx = float_key(z);
            if ranks_before(kx, x, best.x, best.y) {
                best = vec2<u32>(kx, x);
            }
            if softmax_all {
                pair = push(pair, z);
            }
        }
    }
    var top = 0.0;
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
        red_key[t] = best.x;
        red_id[t] = best.y;
        workgroupBarrier();
        for (var s = G / 2u; s > 0u; s >>= 1u) {
            if lane < s && ranks_before(red_key[t + s], red_id[t + s], red_key[t], red_id[t]) {
                red_key[t] = red_key[t + s];
                red_id[t] = red_id[t + s];
            }
            workgroupBarrier();
        }
        let wk = red_key[head];
        let wi = red_id[head];
        workgroupBarrier();
        let z = key_value(wk);
        if j == 0u {
            top = z;
        }
        var u: f32;
        if SIGMOID {
            u = 1.0 / (1.0 + exp(-z));
        } else {
            // The shift is 0 where z is the maximum (softmax's rule for infinite tops).
            u = exp(shifted(z, top));
        }
        if RENORM {
            total += u;
        }
        if live && lane == j % G {
            gates[out + j] = u;
            experts[out + j] = wi;
            atomicAdd(&counts[wi], 1u);
        }
        if live && best.y == wi {
            best = lane_best_after(base, e, lane, wk, wi);
        }
    }

    // A softmax over every expert divides by the sum over the whole row: the lanes' pairs
    // merged, rescaled from their max to the row's largest logit `top`.
    if softmax_all {
        red_sum[t] = pair;
        workgroupBarrier();
        for (var s = G / 2u; s > 0u; s >>= 1u) {
            if lane < s {
                red_sum[t] = merge(red_sum[t], red_sum[t + s]);
            }
            workgroupBarrier();
        }
        let row = red_sum[head];
        total = select(row.y * exp(row.x - top), row.y, row.x == top);
    }
    if live && (RENORM || !SIGMOID) {
        // Each lane rescales the gates it wrote.
        for (var j = lane; j < k; j += G) {
            gates[out + j] = gates[out + j] / total;
        }
    }
}
