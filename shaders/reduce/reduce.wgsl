// Reduction over one axis of a tensor viewed as [outer, len, inner]: one workgroup per
// output element, threads striding over the axis, then a tree in workgroup memory. A long
// axis is cut into chunks of info[3] elements (info[4] chunks) reduced by one workgroup
// each into [outer, chunks, inner] partials, which a second launch reduces, so no thread
// walks more than CHUNK / WG elements; argmax then reports indices along the whole axis. With
// SERIAL (sums and means over short axes) each thread owns one output and adds its axis
// in order instead, so a short axis does not cost a whole workgroup per element.
// OP: 0 sum, 1 mean, 2 max, 3 min, 4 logsumexp, 5 argmax (ties go to the smallest index).
// NaN propagates: it beats every number in max, min and argmax (the first NaN wins), so
// max, min and logsumexp of a lane holding NaN are NaN.
// #import lib/float.wgsl
alias T = f32;
alias R = f32;

override OP: u32 = 0u;
override SERIAL: bool = false;
const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<R>;
// info: [outputs, len, inner, chunk length, chunks, mean divisor]
@group(0) @binding(2) var<storage, read> info: array<u32>;

var<workgroup> sv: array<T, WG>;
var<workgroup> si: array<u32, WG>;
var<workgroup> sf: array<f32, WG>;

// Whether (v, vi) should replace (cur, ci) as the best candidate; NONE marks no candidate.
fn better(v: T, vi: u32, cur: T, ci: u32) -> bool {
    if vi == NONE {
        return false;
    }
    if ci == NONE {
        return true;
    }
    let v_nan = is_nan(f32(v));
    let cur_nan = is_nan(f32(cur));
    if v_nan || cur_nan {
        return v_nan && (!cur_nan || vi < ci);
    }
    if OP == 3u {
        return v < cur || (v == cur && vi < ci);
    }
    return v > cur || (v == cur && vi < ci);
}

// The SERIAL path: output o's sum (or mean) by one thread, in index order.
fn sum_in_order(o: u32) {
    if o >= info[0] {
        return;
    }
    let len = info[1];
    let inner = info[2];
    let base = (o / inner) * len * inner + o % inner;
    var acc = T(0);
    for (var k = 0u; k < len; k++) {
        acc += x[base + k * inner];
    }
    if OP == 1u {
        out[o] = R(f32(acc) / f32(info[5]));
    } else {
        out[o] = R(acc);
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    if SERIAL {
        sum_in_order(w * WG + t);
        return;
    }
    if w >= info[0] {
        return;
    }
    let inner = info[2];
    // Output w is chunk c of lane (o, i); the chunk starts `first` elements into the lane.
    let chunks = info[4];
    let first = ((w / inner) % chunks) * info[3];
    let len = min(info[3], info[1] - first);
    let base = (w / (inner * chunks)) * info[1] * inner + first * inner + w % inner;

    if OP <= 1u {
        var acc = T(0);
        for (var k = t; k < len; k += WG) {
            acc += x[base + k * inner];
        }
        sv[t] = acc;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if t < s {
                sv[t] += sv[t + s];
            }
            workgroupBarrier();
        }
        if t == 0u {
            if OP == 1u {
                out[w] = R(f32(sv[0]) / f32(info[5]));
            } else {
                out[w] = R(sv[0]);
            }
        }
        return;
    }

    var best = T(0);
    var bi = NONE;
    for (var k = t; k < len; k += WG) {
        let v = x[base + k * inner];
        if better(v, k, best, bi) {
            best = v;
            bi = k;
        }
    }
    sv[t] = best;
    si[t] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s && better(sv[t + s], si[t + s], sv[t], si[t]) {
            sv[t] = sv[t + s];
            si[t] = si[t + s];
        }
        workgroupBarrier();
    }
    if OP != 4u {
        if t == 0u {
            out[w] = select(R(sv[0]), R(first + si[0]), OP == 5u);
        }
        return;
    }

    // logsumexp: m + log(sum(exp(x - m))) with m the maximum, the shift taken as 0 where
    // x == m: +inf when the lane holds +inf, -inf when every entry is -inf or the axis is
    // empty, NaN when it holds NaN (no thread branches around a barrier).
    let m = select(f32(sv[0]), bitcast<f32>(0xff800000u), si[0] == NONE);
    var acc = 0.0;
    for (var k = t; k < len; k += WG) {
        let v = f32(x[base + k * inner]);
        acc += exp(select(v - m, 0.0, v == m));
    }
    sf[t] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            sf[t] += sf[t + s];
        }
        workgroupBarrier();
    }
    if t == 0u {
        // An infinite maximum is the answer itself (also for an empty lane: log(0) = -inf).
        let inf_m = (bitcast<u32>(m) & 0x7fffffffu) == 0x7f800000u;
        out[w] = R(select(m + log(sf[0]), m, inf_m));
    }
}
