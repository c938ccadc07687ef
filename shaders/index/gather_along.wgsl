// out[o, j, i] = x[o, idx[o, j, i], i] over x viewed as [outer, len, inner] and the
// output as [outer, m, inner]; an out-of-range index reads 0. One thread per output.
alias T = f32;
alias R = u32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> idx: array<R>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
// info: [numel, m, inner, len]
@group(0) @binding(3) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= info[0] {
        return;
    }
    let m = info[1];
    let inner = info[2];
    let len = info[3];
    // A negative i32 index reinterprets as a huge u32 and reads 0.
    let r = bitcast<u32>(idx[e]);
    var v = T(0);
    if r < len {
        v = x[((e / inner) / m * len + r) * inner + e % inner];
    }
    out[e] = v;
}
