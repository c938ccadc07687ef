// Copies a strided view of one buffer into a strided region of another, moving raw 32-bit
// words, so one pipeline serves every 4-byte dtype. Permute, slice, broadcast_to and each
// part of a concat are all this kernel with different strides.
override WG: u32 = 256u;
const MAX_RANK: u32 = 8u;

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
// info: [numel, rank, src base, dst base, dims[8], src strides[8], dst strides[8]]
@group(0) @binding(2) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    var rem = i;
    var s = info[2];
    var d = info[3];
    let rank = info[1];
    for (var k = 0u; k < rank; k++) {
        let axis = rank - 1u - k;
        let dim = info[4u + axis];
        let c = rem % dim;
        rem /= dim;
        s += c * info[4u + MAX_RANK + axis];
        d += c * info[4u + 2u * MAX_RANK + axis];
    }
    dst[d] = src[s];
}
