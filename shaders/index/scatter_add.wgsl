// out[o, t, i] = sum over j with idx[j] == t of src[o, j, i]. One thread per output
// element looping over the indices in order: no atomics, so the sum is deterministic and
// works for every dtype on every adapter. Where an adapter limits loops per invocation the
// indices are cut into info[5] tiles of info[4]: thread (tile, i) writes its tile's sum to
// out[tile * numel + i], and a reduction over the tiles follows.
alias T = f32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<T>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
// info: [numel, inner, n_idx, dim_size, tile length, tiles]
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    if id >= info[0] * info[5] {
        return;
    }
    let i = id % info[0];
    let first = (id / info[0]) * info[4];
    let inner = info[1];
    let n_idx = info[2];
    let dim = info[3];
    let target_row = (i / inner) % dim;
    let o = i / (inner * dim);
    let src_base = o * n_idx * inner + i % inner;
    var acc = T(0);
    for (var j = first; j < min(n_idx, first + info[4]); j++) {
        // A negative i32 index reinterprets as a huge u32 and never matches a row.
        if idx[j] == target_row {
            acc += src[src_base + j * inner];
        }
    }
    out[id] = acc;
}
