// The gradient of point_softmin.wgsl, online: one thread per point p_o of the output side,
// the other side q streaming through workgroup memory as in the forward kernel. With the
// soft-min weights known exactly from the forward result,
//   w_or = exp(alpha_o + beta_r − cost(p_o, q_r) / eps) · u_(o or r),
// it writes (when info[12] is set) grad[o] = G_o Σ_r w_or ∂cost(p_o, q_r)/∂p_o for GD
// coordinates per dispatch row, and (when info[11] is set) scalar[o] = k G_o Σ_r w_or,
// G_o = u_o when the cotangent is per output point (info[7]), else 1, and k = info[13]
// (−eps for the gradient of h; 1 makes the pass a plan-vector product).
// - the x pass: p = x, q = y, alpha = s / eps, beta = h, u per output: dx.
// - the y pass: p = y, q = x, alpha = h, beta = s / eps, u per reduced point: dy and dh.
// Where an adapter limits loop iterations per invocation, q is cut into info[16] spans of
// info[15] points: span s writes its sums at s · (batch · L · d) in `grad` and s · (batch ·
// L) in `scalar` (scratch buffers then), and a sum over the spans follows.
// #import lib/point_tile.wgsl
alias T = f32;

override WG: u32 = 64u;
// Coordinates of the gradient per dispatch row.
const GD: u32 = 16u;

@group(0) @binding(0) var<storage, read> p: array<T>;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> alpha: array<T>;
@group(0) @binding(3) var<storage, read> beta: array<T>;
@group(0) @binding(4) var<storage, read> u: array<T>;
@group(0) @binding(5) var<storage, read_write> grad: array<T>;
@group(0) @binding(6) var<storage, read_write> scalar: array<T>;
// When info[14] is set, problem b is skipped once skip[4b + 2] != 0 (a finished solve of
// sinkhorn_adjoint.wgsl; read-only, so uniform).
@group(0) @binding(7) var<storage, read> skip: array<f32>;
// info: [batch, L (output points), R (reduced points), d, eps as f32 bits, alpha scale
// bits, beta scale bits, u per output, cost (0 squared Euclidean, 1 Euclidean), tiles of p
// per problem, coordinate blocks, write scalar, write grad, scalar factor bits, use skip,
// span, spans]
@group(0) @binding(8) var<storage, read> info: array<u32>;

var<workgroup> gtile: array<f32, 1024>; // PT * GD, this block's coordinates
var<workgroup> btile: array<f32, PT>;
var<workgroup> utile: array<f32, PT>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let spans = info[16];
    let ws = wg.x + wg.y * nwg.x;
    let w = ws / spans;
    let span = ws % spans;
    let tiles = info[9];
    let blocks = info[10];
    if w >= info[0] * tiles * blocks {
        return;
    }
    if info[14] != 0u && skip[4u * (w / (tiles * blocks)) + 2u] != 0.0 {
        return;
    }
    let len = info[1];
    let first = span * info[15];
    let other = min(info[2], first + info[15]);
    let d = info[3];
    let eps = bitcast<f32>(info[4]);
    let inv_eps = 1.0 / eps;
    let b = w / (tiles * blocks);
    let block = (w / tiles) % blocks;
    let o = (w % tiles) * WG + t;
    let oc = min(o, len - 1u);
    let pbase = (b * len + oc) * d;
    let u_per_output = info[7] != 0u;
    let euclidean = info[8] == 1u;
    let a = f32(alpha[b * len + oc]) * bitcast<f32>(info[5]);
    let k0 = block * GD;
    let write_grad = info[12] != 0u;

    var pk: array<f32, GD>;
    for (var k = 0u; k < GD; k++) {
        if k0 + k < d {
            pk[k] = f32(p[pbase + k0 + k]);
        }
    }
    var acc: array<f32, GD>;
    var total = 0.0;
    for (var r0 = first; r0 < other; r0 += PT) {
        let count = min(PT, other - r0);
        workgroupBarrier();
        for (var e = t; e < count; e += WG) {
            let r = b * info[2] + r0 + e;
            btile[e] = f32(beta[r]) * bitcast<f32>(info[6]);
            utile[e] = select(f32(u[r]), 1.0, u_per_output);
        }
        for (var e = t; e < PT * GD && write_grad; e += WG) {
            let rr = e / GD;
            let k = k0 + e % GD;
            var v = 0.0;
            if rr < count && k < d {
                v = f32(q[(b * info[2] + r0 + rr) * d + k]);
            }
            gtile[e] = v;
        }
        let dist = tile_sq_dist(t, pbase, b * info[2] + r0, count, d);
        workgroupBarrier();
        for (var rr = 0u; rr < count; rr++) {
            var c = dist[rr];
            var kappa = 2.0;
            if euclidean {
                c = sqrt(c);
                kappa = select(0.0, 1.0 / c, c > 0.0);
            }
            let weight = exp(a + btile[rr] - c * inv_eps) * utile[rr];
            total += weight;
            if write_grad {
                let wk = weight * kappa;
                for (var k = 0u; k < GD; k++) {
                    acc[k] = fma(wk, pk[k] - gtile[rr * GD + k], acc[k]);
                }
            }
        }
    }
    if o >= len {
        return;
    }
    var scale = 1.0;
    if u_per_output {
        scale = f32(u[b * len + o]);
    }
    let points = info[0] * len;
    for (var k = 0u; k < GD && write_grad; k++) {
        if k0 + k < d {
            grad[span * points * d + (b * len + o) * d + k0 + k] = T(scale * acc[k]);
        }
    }
    if info[11] != 0u && block == 0u {
        scalar[span * points + b * len + o] = T(bitcast<f32>(info[13]) * scale * total);
    }
}
