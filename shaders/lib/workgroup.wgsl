// One-dimensional workgroups of WG threads, imported with `// #import lib/workgroup.wgsl`
// (which also declares the `WG` override: the importer does not).

override WG: u32 = 256u;

var<workgroup> wg_sum: array<f32, WG>;

// The index of thread t of a workgroup in a launch spread over x and y.
fn linear(wg: vec3<u32>, nwg: vec3<u32>, t: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * WG + t;
}

// The sum of every thread's v, in a fixed order (a tree); called by the whole workgroup,
// every thread gets it.
fn workgroup_sum(t: u32, v: f32) -> f32 {
    workgroupBarrier();
    wg_sum[t] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if t < stride {
            wg_sum[t] += wg_sum[t + stride];
        }
        workgroupBarrier();
    }
    return wg_sum[0];
}
