// select(cond, a, b) with numpy broadcasting of all three operands.
alias T = f32;

override WG: u32 = 256u;
const MAX_RANK: u32 = 8u;

@group(0) @binding(0) var<storage, read> cond: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
// info: [numel, rank, contiguous mask, dims[8], strides of cond[8], of a[8], of b[8]]
@group(0) @binding(4) var<storage, read> info: array<u32>;

fn offset(i: u32, k: u32) -> u32 {
    if (info[2] & (1u << k)) != 0u {
        return i;
    }
    var rem = i;
    var off = 0u;
    let rank = info[1];
    for (var d = 0u; d < rank; d++) {
        let axis = rank - 1u - d;
        let dim = info[3u + axis];
        off += (rem % dim) * info[3u + MAX_RANK * (k + 1u) + axis];
        rem /= dim;
    }
    return off;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    out[i] = select(b[offset(i, 2u)], a[offset(i, 1u)], cond[offset(i, 0u)] != 0u);
}
