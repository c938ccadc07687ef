// out[o, t, i] = sum over j with idx[o, j, i] == t of src[o, j, i], over src and idx
// viewed as [outer, m, inner] and the output as [outer, dim_size, inner]. One thread per
// output element, looping over its row's indices in order: no atomics, so the sum is
// deterministic and every dtype works on every adapter. Where an adapter limits loops per
// invocation the row is cut into info[5] tiles of info[4]: thread (tile, e) writes its
// tile's sum to out[tile * numel + e], and a reduction over the tiles follows.
alias T = f32;
alias R = u32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<T>;
@group(0) @binding(1) var<storage, read> idx: array<R>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
// info: [numel, m, inner, dim_size, tile length, tiles]
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    if id >= info[0] * info[5] {
        return;
    }
    let e = id % info[0];
    let first = (id / info[0]) * info[4];
    let m = info[1];
    let inner = info[2];
    let dim = info[3];
    let target_row = (e / inner) % dim;
    let base = (e / (inner * dim)) * m * inner + e % inner;
    var acc = T(0);
    for (var j = first; j < min(m, first + info[4]); j++) {
        // A negative i32 index reinterprets as a huge u32 and never matches.
        if bitcast<u32>(idx[base + j * inner]) == target_row {
            acc += src[base + j * inner];
        }
    }
    out[id] = acc;
}
