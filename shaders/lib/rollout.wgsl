// What the rollout kernels share (physics/mass_spring.wgsl and, through lib/mpm.wgsl, the
// MPM kernels), imported with `// #import lib/rollout.wgsl`: `info` words as floats, the
// thread index of a launch spread over x and y, the finiteness test, and the observation
// slot of a substep.
// #requires info, WG, NONE, H_SUBSTEPS, H_OBSERVED, H_AT_OBSERVE: the importer declares
// its `info` array (whose header places the substeps per step, the number of observed
// steps and where their sorted list starts at those words), the workgroup size and NONE.

// Word k of `info` as a float.
fn f(k: u32) -> f32 {
    return bitcast<f32>(info[k]);
}

// This thread's index in a launch of workgroups of WG threads spread over x and y.
fn index(wg: vec3<u32>, nwg: vec3<u32>, t: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * WG + t;
}

// Neither NaN nor infinite (by the bits, as drivers may assume finite floats).
fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// The observation slot of the state after substep k (a binary search of the observed
// steps), or NONE.
fn observed_slot(k: u32) -> u32 {
    let done = k + 1u;
    if done % info[H_SUBSTEPS] != 0u {
        return NONE;
    }
    let step = done / info[H_SUBSTEPS];
    var lo = 0u;
    var hi = info[H_OBSERVED];
    let table = info[H_AT_OBSERVE];
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if info[table + mid] < step {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    if lo < info[H_OBSERVED] && info[table + lo] == step {
        return lo;
    }
    return NONE;
}
