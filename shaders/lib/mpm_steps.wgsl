// The MLS-MPM entry points that do not depend on the dimension, imported with
// `// #import lib/mpm_steps.wgsl` by physics/mpm.wgsl (2D) and physics/mpm3.wgsl (3D): the
// per-substep counting sort of the particles by cell and the merge that lets a node visit
// its particles in particle order, the loading, observing, checkpointing and restoring of
// states, and the backward's bookkeeping (cotangents of observed states, of x0, v0 and the
// controls). State layout: x (DIM), v (DIM), C (DIM²), F (DIM²), row-major.
// #requires DIM, STATE, NBR (neighbour cells of a node), PREP: the importer's layout;
// `particle_cell(at)` (the cell of the particle whose state starts at slot `at`),
// `neighbour_cell(node, t)` (the cell of node − offset t, or NONE), `write_prep(p, at, act,
// driven)` (fills `pr_out`) and `advance(p, src, dst) -> bool` (G2P from `gp_grid` and
// `gp_prep`).
// #import lib/mpm.wgsl

// ---- clear: the cells' counts and cursors.
@group(0) @binding(1) var<storage, read_write> cl_cells: array<u32>;

@compute @workgroup_size(WG)
fn clear(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i < 2u * cells() {
        cl_cells[i] = 0u;
    }
}

// ---- count: each particle's cell, counted (integer atomics; the order comes later).
@group(0) @binding(1) var<storage, read> ct_step: array<u32>;
@group(0) @binding(2) var<storage, read_write> ct_cell_of: array<u32>;
@group(0) @binding(3) var<storage, read_write> ct_cells: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn count(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let cell = particle_cell(src_slot(ct_step[0]) + p);
    ct_cell_of[p] = cell;
    atomicAdd(&ct_cells[cell], 1u);
}

// ---- scan (one workgroup): offsets[c] = particles in cells before c.
@group(0) @binding(1) var<storage, read> sc_cells: array<u32>;
@group(0) @binding(2) var<storage, read_write> sc_offsets: array<u32>;

var<workgroup> sc_sums: array<u32, 256>;

@compute @workgroup_size(256)
fn scan(@builtin(local_invocation_index) t: u32) {
    let total = cells();
    let chunk = (total + 255u) / 256u;
    let first = min(t * chunk, total);
    let last = min(first + chunk, total);
    var sum = 0u;
    for (var c = first; c < last; c++) {
        sum += sc_cells[c];
    }
    sc_sums[t] = sum;
    workgroupBarrier();
    // Inclusive scan of the chunks' sums, in place.
    for (var stride = 1u; stride < 256u; stride <<= 1u) {
        var add = 0u;
        if t >= stride {
            add = sc_sums[t - stride];
        }
        workgroupBarrier();
        sc_sums[t] += add;
        workgroupBarrier();
    }
    var running = sc_sums[t] - sum;
    for (var c = first; c < last; c++) {
        sc_offsets[c] = running;
        running += sc_cells[c];
    }
    if t == 255u {
        sc_offsets[total] = sc_sums[255];
    }
}

// ---- place: each particle into its cell's range (any order), then `order` sorts each
// range by particle index, flagging a cell too crowded to sort within the loop budget.
@group(0) @binding(1) var<storage, read> pl_cell_of: array<u32>;
@group(0) @binding(2) var<storage, read_write> pl_cells: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> pl_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> pl_list: array<u32>;

@compute @workgroup_size(WG)
fn place(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let cell = pl_cell_of[p];
    let at = pl_offsets[cell] + atomicAdd(&pl_cells[cells() + cell], 1u);
    pl_list[at] = p;
}

@group(0) @binding(1) var<storage, read> or_offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> or_list: array<u32>;
@group(0) @binding(3) var<storage, read> or_step: array<u32>;
@group(0) @binding(4) var<storage, read_write> or_status: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn order(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = index(wg, nwg, t);
    if c >= cells() {
        return;
    }
    let first = or_offsets[c];
    let last = or_offsets[c + 1u];
    if last - first > info[H_CROWDED] {
        atomicMin(&or_status[0], or_step[0] / info[H_SUBSTEPS]);
        atomicOr(&or_status[1], CROWDED);
        return;
    }
    for (var i = first + 1u; i < last; i++) {
        let p = or_list[i];
        var k = i;
        while k > first && or_list[k - 1u] > p {
            or_list[k] = or_list[k - 1u];
            k -= 1u;
        }
        or_list[k] = p;
    }
}

// ---- prep: each particle's affine matrix and new F.
@group(0) @binding(1) var<storage, read> pr_step: array<u32>;
@group(0) @binding(2) var<storage, read_write> pr_out: array<f32>;
@group(0) @binding(3) var<storage, read> pr_controls: array<f32>;

// Where particle p's control at substep k sits in the controls (u[t, a]), or NONE for a
// passive particle.
fn control_at(p: u32, k: u32) -> u32 {
    if info[H_ACTUATORS] == 0u {
        return NONE;
    }
    let a = info[info[H_AT_ACT_OF] + p];
    if a == NONE {
        return NONE;
    }
    return (k / info[H_SUBSTEPS]) * info[H_ACTUATORS] + a;
}

// Particle p's actuation at substep k: u[t, a] · strength, or 0.
fn prep_act(p: u32, k: u32) -> f32 {
    let at = control_at(p, k);
    if at == NONE {
        return 0.0;
    }
    return pr_controls[at] * f(H_STRENGTH);
}

@compute @workgroup_size(WG)
fn prep(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let k = pr_step[0];
    write_prep(p, src_slot(k) + p, prep_act(p, k), actuated(p));
}

// ---- The particles around a node, in particle order: a merge of the sorted lists of the
// NBR cells (3 per axis) whose particles reach the node. Entries that merge bind the substep
// index, the offsets and the lists at slots 1 to 3.
@group(0) @binding(1) var<storage, read> mg_step: array<u32>;
@group(0) @binding(2) var<storage, read> mg_offsets: array<u32>;
@group(0) @binding(3) var<storage, read> mg_list: array<u32>;

struct Merge {
    head: array<u32, NBR>,
    end: array<u32, NBR>,
}

// List t holds the particles whose base is node − offset t (see `neighbour_cell`).
fn merge_start(node: u32) -> Merge {
    var m: Merge;
    for (var t = 0u; t < NBR; t++) {
        m.head[t] = 0u;
        m.end[t] = 0u;
        let c = neighbour_cell(node, t);
        if c != NONE {
            m.head[t] = mg_offsets[c];
            m.end[t] = mg_offsets[c + 1u];
        }
    }
    return m;
}

// The next particle (lowest index left) and its list, or NONE.
fn merge_next(m: ptr<function, Merge>) -> vec2<u32> {
    var best = NONE;
    var bt = 0u;
    for (var t = 0u; t < NBR; t++) {
        if (*m).head[t] < (*m).end[t] {
            let p = mg_list[(*m).head[t]];
            if p < best {
                best = p;
                bt = t;
            }
        }
    }
    if best != NONE {
        (*m).head[bt] += 1u;
    }
    return vec2<u32>(best, bt);
}

// ---- g2p (per particle): the new velocity, affine velocity and position; the rollout's
// checkpoint and status (mode 0), or the segment's next state (g2p_segment, mode 1).
@group(0) @binding(1) var<storage, read> gp_step: array<u32>;
@group(0) @binding(2) var<storage, read> gp_grid: array<f32>;
@group(0) @binding(3) var<storage, read> gp_prep: array<f32>;
@group(0) @binding(4) var<storage, read_write> gp_checkpoints: array<f32>;
@group(0) @binding(5) var<storage, read_write> gp_status: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn g2p(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    let n = info[H_N];
    if p >= n {
        return;
    }
    let k = gp_step[0];
    let ck = info[H_CK];
    if k % ck == 0u {
        let at = ((k / ck) * n + p) * STATE;
        for (var e = 0u; e < STATE; e++) {
            gp_checkpoints[at + e] = state[STATE * p + e];
        }
    }
    if !advance(p, 0u, 0u) {
        atomicMin(&gp_status[0], k / info[H_SUBSTEPS]);
        atomicOr(&gp_status[1], LEFT);
    }
}

@compute @workgroup_size(WG)
fn g2p_segment(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let k = gp_step[0];
    advance(p, src_slot(k), dst_slot(k));
}

// ---- load_state: the rollout's first state from x0 and v0; the status reset.
@group(0) @binding(1) var<storage, read> ld_x0: array<f32>;
@group(0) @binding(2) var<storage, read> ld_v0: array<f32>;
@group(0) @binding(3) var<storage, read_write> ld_status: array<u32>;

@compute @workgroup_size(WG)
fn load_state(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p == 0u {
        ld_status[0] = NONE;
        ld_status[1] = 0u;
    }
    if p >= info[H_N] {
        return;
    }
    // x, v, C = 0, F = I.
    let at = STATE * p;
    let f_at = 2u * DIM + DIM * DIM;
    for (var e = 0u; e < STATE; e++) {
        var value = 0.0;
        if e < DIM {
            value = ld_x0[DIM * p + e];
        } else if e < 2u * DIM {
            value = ld_v0[DIM * p + e - DIM];
        } else if e >= f_at && (e - f_at) % (DIM + 1u) == 0u {
            value = 1.0;
        }
        state[at + e] = value;
    }
}

// ---- observe: positions and velocities after substep k into the outputs, if observed.
@group(0) @binding(1) var<storage, read> ob_step: array<u32>;
@group(0) @binding(2) var<storage, read_write> ob_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ob_v: array<f32>;

@compute @workgroup_size(WG)
fn observe(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    let n = info[H_N];
    let slot = observed_slot(ob_step[0]);
    if p >= n || slot == NONE {
        return;
    }
    let o = (slot * n + p) * DIM;
    for (var d = 0u; d < DIM; d++) {
        ob_x[o + d] = state[STATE * p + d];
        ob_v[o + d] = state[STATE * p + DIM + d];
    }
}

// ---- restore: a segment's first state from its checkpoint.
@group(0) @binding(1) var<storage, read> rs_step: array<u32>;
@group(0) @binding(2) var<storage, read> rs_checkpoints: array<f32>;

@compute @workgroup_size(WG)
fn restore(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    let n = info[H_N];
    if p >= n {
        return;
    }
    let at = ((rs_step[0] / info[H_CK]) * n + p) * STATE;
    for (var e = 0u; e < STATE; e++) {
        state[STATE * p + e] = rs_checkpoints[at + e];
    }
}

// ---- The backward. `lam` holds the cotangents of the state after the substep being
// reversed (STATE per particle), then those of the state before it.
@group(0) @binding(0) var<storage, read_write> zl_lam: array<f32>;

@compute @workgroup_size(WG)
fn zero_lam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i < STATE * info[H_N] {
        zl_lam[i] = 0.0;
    }
}

// obs_adjoint: the observed state's cotangents join lam.
@group(0) @binding(0) var<storage, read_write> oj_lam: array<f32>;
@group(0) @binding(1) var<storage, read> oj_step: array<u32>;
@group(0) @binding(2) var<storage, read> oj_gx: array<f32>;
@group(0) @binding(3) var<storage, read> oj_gv: array<f32>;

@compute @workgroup_size(WG)
fn obs_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    let n = info[H_N];
    let slot = observed_slot(oj_step[0]);
    if p >= n || slot == NONE {
        return;
    }
    let o = (slot * n + p) * DIM;
    let at = STATE * p;
    for (var d = 0u; d < DIM; d++) {
        oj_lam[at + d] = oj_lam[at + d] + oj_gx[o + d];
        oj_lam[at + DIM + d] = oj_lam[at + DIM + d] + oj_gv[o + d];
    }
}

// ---- particle_adjoint's bindings (the kernel is the dimension's) and each particle's
// actuation at substep k.
@group(0) @binding(1) var<storage, read> pj_step: array<u32>;
@group(0) @binding(2) var<storage, read> pj_grid: array<f32>;
@group(0) @binding(3) var<storage, read> pj_gadj: array<f32>;
@group(0) @binding(4) var<storage, read_write> pj_lam: array<f32>;
@group(0) @binding(5) var<storage, read> pj_controls: array<f32>;
@group(0) @binding(6) var<storage, read_write> pj_gact: array<f32>;

fn adjoint_act(p: u32, k: u32) -> f32 {
    let at = control_at(p, k);
    if at == NONE {
        return 0.0;
    }
    return pj_controls[at] * f(H_STRENGTH);
}

// ---- finish: the cotangents of x0 and v0.
@group(0) @binding(0) var<storage, read> fs_lam: array<f32>;
@group(0) @binding(1) var<storage, read_write> fs_gx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fs_gv: array<f32>;

@compute @workgroup_size(WG)
fn finish(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    for (var d = 0u; d < DIM; d++) {
        fs_gx[DIM * p + d] = fs_lam[STATE * p + d];
        fs_gv[DIM * p + d] = fs_lam[STATE * p + DIM + d];
    }
}

// ---- control_adjoint (per actuator): its particles' actuation cotangents, in particle
// order, into the controls' at substep k's step; zero_controls starts them at 0.
@group(0) @binding(0) var<storage, read> ca_gact: array<f32>;
@group(0) @binding(1) var<storage, read> ca_step: array<u32>;
@group(0) @binding(2) var<storage, read_write> ca_g: array<f32>;

@compute @workgroup_size(WG)
fn control_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let a = index(wg, nwg, t);
    let acts = info[H_ACTUATORS];
    if a >= acts {
        return;
    }
    let at = (ca_step[0] / info[H_SUBSTEPS]) * acts + a;
    var g = ca_g[at];
    let first = info[info[H_AT_ACT_OFFSETS] + a];
    let last = info[info[H_AT_ACT_OFFSETS] + a + 1u];
    for (var e = first; e < last; e++) {
        let p = info[info[H_AT_ACT_LIST] + e];
        g = g + ca_gact[p] * f(H_STRENGTH);
    }
    ca_g[at] = g;
}

@group(0) @binding(0) var<storage, read_write> zc_g: array<f32>;

@compute @workgroup_size(WG)
fn zero_controls(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i < info[H_ACTUATORS] * info[H_STEPS] {
        zc_g[i] = 0.0;
    }
}

// The cotangent of A through `project`, given that of its result (divided differences of
// the clamp, their mean where the singular values meet).
