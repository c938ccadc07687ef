// The opt-in P2G of `Mpm::atomic_p2g`: each particle adds its momentum and mass to its
// 3 × 3 nodes with float atomics (SHADER_FLOAT32_ATOMIC), with no sort. Faster, but the
// order of each node's sum, and so its last bits, change from run to run; the default path
// (physics/mpm.wgsl) sums in particle order.
// #import lib/mpm2.wgsl

// Per node: momentum (2), mass.
const ATOMIC_GRID: u32 = 3u;

// ---- clear_atomic: the node sums start at 0.
@group(0) @binding(1) var<storage, read_write> ca_grid: array<f32>;

@compute @workgroup_size(WG)
fn clear_atomic(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i < ATOMIC_GRID * cells() {
        ca_grid[i] = 0.0;
    }
}

// ---- p2g_atomic (per particle): its momentum and mass into its nodes.
@group(0) @binding(1) var<storage, read> pa_step: array<u32>;
@group(0) @binding(2) var<storage, read> pa_prep: array<f32>;
@group(0) @binding(3) var<storage, read_write> pa_grid: array<atomic<f32>>;

@compute @workgroup_size(WG)
fn p2g_atomic(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let base = src_slot(pa_step[0]);
    let s = stencil(pos(base + p));
    let dx = f(H_DX);
    let m = f(H_MASS);
    let a = vec4<f32>(pa_prep[PREP * p], pa_prep[PREP * p + 1u], pa_prep[PREP * p + 2u], pa_prep[PREP * p + 3u]);
    let mv = m * vel(base + p);
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            let d = vec2<f32>((f32(i) - s.fx.x) * dx, (f32(j) - s.fx.y) * dx);
            let w = weight(s, i, j);
            let ad = vec2<f32>(a.x * d.x + a.y * d.y, a.z * d.x + a.w * d.y);
            let mom = w * (mv + ad);
            let k = (s.base.x + i) * info[H_GRID] + s.base.y + j;
            atomicAdd(&pa_grid[ATOMIC_GRID * k], mom.x);
            atomicAdd(&pa_grid[ATOMIC_GRID * k + 1u], mom.y);
            atomicAdd(&pa_grid[ATOMIC_GRID * k + 2u], w * m);
        }
    }
}

// ---- grid_atomic (per node): the grid update from the summed momentum and mass, into the
// layout G2P reads.
@group(0) @binding(1) var<storage, read> ga_sums: array<f32>;
@group(0) @binding(2) var<storage, read_write> ga_grid: array<f32>;

@compute @workgroup_size(WG)
fn grid_atomic(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = index(wg, nwg, t);
    let n = info[H_GRID];
    if k >= cells() {
        return;
    }
    let mom = vec2<f32>(ga_sums[ATOMIC_GRID * k], ga_sums[ATOMIC_GRID * k + 1u]);
    let mass = ga_sums[ATOMIC_GRID * k + 2u];
    let inv_m = 1.0 / (mass + 1e-10);
    var v = vec2<f32>(inv_m * mom.x, inv_m * mom.y);
    v.y = v.y - f(H_GSTEP);
    if walled(k / n, v.x) {
        v.x = 0.0;
    }
    if walled(k % n, v.y) {
        v.y = 0.0;
    }
    let at = GRID * k;
    ga_grid[at] = mom.x;
    ga_grid[at + 1u] = mom.y;
    ga_grid[at + 2u] = mass;
    ga_grid[at + 3u] = v.x;
    ga_grid[at + 4u] = v.y;
}
