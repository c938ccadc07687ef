// MoE dispatch, pass 3 of 4: every padded row starts as padding (the sentinel choice n),
// and the first row of each block finds its expert by binary search in the offsets
// (E for blocks past the rows in use).
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> offsets: array<u32>;
@group(0) @binding(1) var<storage, read_write> sorted_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> block_experts: array<u32>;
// info: [n, E, block, capacity, rows, tiles, highest gate]
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gid.x + gid.y * nwg.x * WG;
    let block = info[2];
    if p >= info[4] {
        return;
    }
    sorted_ids[p] = info[0];
    if p % block != 0u {
        return;
    }
    // The largest e in [0, E] with offsets[e] <= p: empty segments before it share its
    // offset, and the largest skips them.
    var lo = 0u;
    var hi = info[1];
    while lo < hi {
        let mid = (lo + hi + 1u) / 2u;
        if offsets[mid] <= p {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    block_experts[p / block] = lo;
}
