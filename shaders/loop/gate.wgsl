// The indirect arguments of a gated loop's body dispatches: while the gate's flag is
// non-zero each dispatch gets its full workgroup counts, once it is zero none, so finished
// work costs nothing and needs no readback.

@group(0) @binding(0) var<storage, read> flag: array<u32>;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> args: array<u32>;
// [words]
@group(0) @binding(3) var<storage, read> info: array<u32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i < info[0] {
        args[i] = select(0u, counts[i], flag[0] != 0u);
    }
}
