// MoE dispatch, pass 4 of 4: each choice's rank within its expert (its tile's base plus
// its rank in the tile) places it at offsets[e] + rank, or drops it past the capacity.
// When the highest gates are kept, this pass only lists each expert's choices in order
// (after the segment starts in scratch) and the gate-rank pass places them.
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> experts: array<u32>;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> sorted_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<u32>;
// info: [n, E, block, capacity, rows, tiles, highest gate]
@group(0) @binding(5) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * WG;
    let n = info[0];
    let num_experts = info[1];
    if a >= n {
        return;
    }
    let e = experts[a];
    if e >= num_experts {
        positions[a] = info[4];
        return;
    }
    let rank = scratch[n + (a / 256u) * num_experts + e] + scratch[a];
    if info[6] != 0u {
        let starts = n + info[5] * num_experts;
        scratch[starts + num_experts + 1u + scratch[starts + e] + rank] = a;
        return;
    }
    if rank < info[3] {
        let pos = offsets[e] + rank;
        positions[a] = pos;
        sorted_ids[pos] = a;
    } else {
        positions[a] = info[4];
    }
}
