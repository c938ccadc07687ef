// Fused routing, pass 1 of 2: zero the per-expert counts the routing pass adds to.
override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> counts: array<u32>;
// info: [T, E, k]
@group(0) @binding(1) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e < info[1] {
        counts[e] = 0u;
    }
}
