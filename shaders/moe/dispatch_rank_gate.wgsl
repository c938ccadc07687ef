// MoE dispatch with the highest gates kept: a choice's rank in its expert is the number
// of the expert's choices with a larger gate (NaN largest, -0 == 0), or an equal gate and
// a lower choice index; ranks below the capacity are placed in that order.
// Three entry points: `clear` zeroes the ranks; `count` runs one invocation per (choice,
// chunk of CHUNK of its expert's members), so no invocation walks more than CHUNK members
// however many choices one expert holds, and adds its count to the choice's rank (integer
// atomics: the total does not depend on their order); `place` writes the positions.
// #import lib/float.wgsl
override WG: u32 = 256u;
override CHUNK: u32 = 16384u;

@group(0) @binding(0) var<storage, read> experts: array<u32>;
@group(0) @binding(1) var<storage, read> gates: array<f32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> sorted_ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> positions: array<u32>;
@group(0) @binding(5) var<storage, read> scratch: array<u32>;
@group(0) @binding(6) var<storage, read_write> ranks: array<atomic<u32>>;
// info: [n, E, block, capacity, rows, tiles, highest gate, chunks per choice]
@group(0) @binding(7) var<storage, read> info: array<u32>;

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn clear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = invocation(gid, nwg);
    if a < info[0] {
        atomicStore(&ranks[a], 0u);
    }
}

@compute @workgroup_size(WG)
fn count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation(gid, nwg);
    let n = info[0];
    let num_experts = info[1];
    if id >= n * info[7] {
        return;
    }
    let a = id % n;
    let e = experts[a];
    if e >= num_experts {
        return;
    }
    let starts = n + info[5] * num_experts;
    let members = starts + num_experts + 1u;
    let first = scratch[starts + e] + (id / n) * CHUNK;
    let end = min(scratch[starts + e + 1u], first + CHUNK);
    let key = float_key(gates[a]);
    var rank = 0u;
    for (var i = first; i < end; i++) {
        let b = scratch[members + i];
        let kb = float_key(gates[b]);
        if kb > key || (kb == key && b < a) {
            rank += 1u;
        }
    }
    if rank > 0u {
        atomicAdd(&ranks[a], rank);
    }
}

@compute @workgroup_size(WG)
fn place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = invocation(gid, nwg);
    let n = info[0];
    if a >= n {
        return;
    }
    let e = experts[a];
    if e >= info[1] {
        return;
    }
    let rank = atomicLoad(&ranks[a]);
    if rank < info[3] {
        let pos = offsets[e] + rank;
        positions[a] = pos;
        sorted_ids[pos] = a;
    } else {
        positions[a] = info[4];
    }
}
