// Softmax or log-softmax along one axis of a tensor viewed as [outer, len, inner]: one
// workgroup per row, three passes (max, sum of exp, write).
alias T = f32;

override LOG: bool = false;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
// info: [rows, len, inner]
@group(0) @binding(2) var<storage, read> info: array<u32>;

var<workgroup> sf: array<f32, WG>;

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
        m = max(m, f32(x[base + k * inner]));
    }
    sf[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            sf[t] = max(sf[t], sf[t + s]);
        }
        workgroupBarrier();
    }
    let row_max = sf[0];
    workgroupBarrier();

    var acc = 0.0;
    for (var k = t; k < len; k += WG) {
        acc += exp(f32(x[base + k * inner]) - row_max);
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
        let v = f32(x[base + k * inner]) - row_max;
        if LOG {
            out[base + k * inner] = T(v - log_total);
        } else {
            out[base + k * inner] = T(exp(v) / total);
        }
    }
}
