// Inclusive prefix sums along one axis of x, viewed as [outer, n, inner]: a lane is one
// (outer, inner) pair. Each lane is cut into chunks of `len`; three passes keep every
// invocation's loop short (software drivers stop long loops) and fill the device:
//   chunks:  one thread per (lane, chunk) sums its chunk in order, writes the running
//            sums and the chunk's total;
//   totals:  one thread per lane turns its chunks' totals into the sum of the chunks
//            before each one (after it, when reversed);
//   offsets: one thread per element adds its chunk's offset.
// With one chunk per lane only the first pass runs. `reverse` sums from the end of the
// axis (the adjoint of the forward sum). Every sum is taken in a fixed order.
override WG: u32 = 256u;
alias T = f32;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> y: array<T>;
@group(0) @binding(2) var<storage, read_write> totals: array<T>;
// info: [threads, n, inner, len, chunks, reverse]
@group(0) @binding(3) var<storage, read> info: array<u32>;

// The flat index of element j of a lane.
fn at(lane: u32, j: u32) -> u32 {
    let inner = info[2];
    return ((lane / inner) * info[1] + j) * inner + lane % inner;
}

@compute @workgroup_size(WG)
fn chunks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    if id >= info[0] {
        return;
    }
    let count = info[4];
    let lane = id / count;
    let start = (id % count) * info[3];
    let end = min(info[1], start + info[3]);
    var acc = T(0);
    if info[5] == 0u {
        for (var j = start; j < end; j++) {
            acc += x[at(lane, j)];
            y[at(lane, j)] = acc;
        }
    } else {
        for (var j = end; j > start; j--) {
            acc += x[at(lane, j - 1u)];
            y[at(lane, j - 1u)] = acc;
        }
    }
    if count > 1u {
        totals[id] = acc;
    }
}

@compute @workgroup_size(WG)
fn lane_totals(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lane = gid.x + gid.y * nwg.x * WG;
    if lane >= info[0] {
        return;
    }
    let count = info[4];
    let base = lane * count;
    var acc = T(0);
    for (var c = 0u; c < count; c++) {
        // Forward: chunk c takes the chunks before it; reversed: the chunks after it.
        var k = base + c;
        if info[5] != 0u {
            k = base + count - 1u - c;
        }
        let total = totals[k];
        totals[k] = acc;
        acc += total;
    }
}

@compute @workgroup_size(WG)
fn offsets(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= info[0] {
        return;
    }
    let n = info[1];
    let inner = info[2];
    let j = (e / inner) % n;
    let lane = (e / (inner * n)) * inner + e % inner;
    y[e] += totals[lane * info[4] + j / info[3]];
}
