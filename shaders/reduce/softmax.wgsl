// Softmax or log-softmax along one axis of a tensor viewed as [outer, len, inner]: one
// workgroup per row, three passes (max, sum of exp, write). The shift x - max is taken as 0
// where x == max, so a row whose maximum is +inf shares the mass among its +inf entries
// and an all -inf row is uniform, instead of forming inf - inf; a NaN makes the row NaN.
// #import lib/float.wgsl
// #import lib/online_lse.wgsl
alias T = f32;

override LOG: bool = false;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
// info: [rows, len, inner]
@group(0) @binding(2) var<storage, read> info: array<u32>;

var<workgroup> sf: array<f32, WG>;

// max that propagates NaN.
fn max_nan(a: f32, b: f32) -> f32 {
    return select(select(max(a, b), b, is_nan(b)), a, is_nan(a));
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    if w >= info[0] {
        return;
    }
    let len = info[1];
    let inner = info[2];
    let base = (w / inner) * len * inner + w % inner;
    let neg_inf = bitcast<f32>(0xff800000u);

    var m = neg_inf;
    for (var k = t; k < len; k += WG) {
        m = max_nan(m, f32(x[base + k * inner]));
    }
    sf[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            sf[t] = max_nan(sf[t], sf[t + s]);
        }
        workgroupBarrier();
    }
    let row_max = sf[0];
    workgroupBarrier();

    var acc = 0.0;
    for (var k = t; k < len; k += WG) {
        acc += exp(shifted(f32(x[base + k * inner]), row_max));
    }
    sf[t] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            sf[t] += sf[t + s];
        }
        workgroupBarrier();
    }
    let total = sf[0];
    let log_total = log(total);
    for (var k = t; k < len; k += WG) {
        let v = shifted(f32(x[base + k * inner]), row_max);
        if LOG {
            out[base + k * inner] = T(v - log_total);
        } else {
            out[base + k * inner] = T(exp(v) / total);
        }
    }
}
