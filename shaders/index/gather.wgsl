// out[o, j, i] = x[o, idx[j], i], moving raw 32-bit words (any 4-byte dtype); an index
// outside 0..dim reads 0.
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
// info: [numel, inner, n_idx, dim]
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    let inner = info[1];
    let n_idx = info[2];
    let dim = info[3];
    let j = (i / inner) % n_idx;
    let o = i / (inner * n_idx);
    let raw = idx[j];
    // A negative i32 index reads as a huge u32, so one unsigned check covers both dtypes.
    var v = 0u;
    if raw < dim {
        v = x[(o * dim + raw) * inner + i % inner];
    }
    out[i] = v;
}
