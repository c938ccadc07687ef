// select(cond, a, b) with numpy broadcasting of all three operands.
// #import lib/broadcast.wgsl
alias T = f32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> cond: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
// info: [numel, rank, contiguous mask, dims[8], strides of cond[8], of a[8], of b[8]]
@group(0) @binding(4) var<storage, read> info: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    out[i] = select(b[offset(i, 2u)], a[offset(i, 1u)], cond[offset(i, 0u)] != 0u);
}
