// One mass-spring substep and its adjoint. The formulas are documented on `MassSpring`
// (gradflux-core, ops/physics/spring.rs) and cpu_spring.rs computes them in the same
// order. Every sum runs in a fixed order — a particle's springs in its incidence list — so
// a run gives the same bits every time; there are no float atomics.
//
// A state is stored as 6 floats per particle (x, then v, each padded to 3 components);
// tensors the graph sees keep `dim` components. Every entry point binds 7 buffers and then
// `info` (entries that need fewer get read-only placeholders), which keeps each within
// WebGPU's default of 8 storage buffers per stage.
//
// `info` holds the whole system: the header below, then its tables. Word 0 is the launch's
// mode: 0 works on the rollout's state (slot 0), 1 on a segment the backward rebuilds,
// where substep k reads slot (k mod ck) and writes slot (k mod ck) + 1.
// #import lib/rollout.wgsl

const H_N: u32 = 1u;
const H_SPRINGS: u32 = 2u;
const H_ACTUATORS: u32 = 3u;
const H_SUBSTEPS: u32 = 4u;
const H_CK: u32 = 5u;
const H_DT: u32 = 6u;
const H_SIGMA: u32 = 7u;
const H_GRAVITY: u32 = 8u; // 3 words
const H_FORM: u32 = 11u; // 0 Warp, 1 DiffTaichi
const H_EPS: u32 = 12u;
const H_HAS_VMAX: u32 = 13u;
const H_VMAX: u32 = 14u;
const H_HAS_GROUND: u32 = 15u;
const H_NORMAL: u32 = 16u; // 3 words
const H_OFFSET: u32 = 19u;
const H_RADIUS: u32 = 20u;
const H_KE: u32 = 21u;
const H_KD: u32 = 22u;
const H_KF: u32 = 23u;
const H_MU: u32 = 24u;
const H_HAS_WALL: u32 = 25u;
const H_WALL_AXIS: u32 = 26u;
const H_WALL_POS: u32 = 27u;
const H_WALL_FRICTION: u32 = 28u;
const H_DIM: u32 = 29u;
const H_OBSERVED: u32 = 30u;
const H_STEPS: u32 = 31u;
const H_CLIP: u32 = 32u; // the backward's clamp on the state's cotangents (inf: none)
// Where each table starts: incidence offsets [n + 1]; incidence entries [2 springs] (2s
// for end a, 2s + 1 for end b); spring ends [2 springs]; inverse masses [n]; each
// spring's actuator or NONE [springs]; actuator strengths [actuators]; observed steps
// [observed]; each actuator's spring [actuators].
const H_AT_OFFSETS: u32 = 33u;
const H_AT_INCIDENT: u32 = 34u;
const H_AT_ENDS: u32 = 35u;
const H_AT_W: u32 = 36u;
const H_AT_ACTUATOR: u32 = 37u;
const H_AT_ALPHA: u32 = 38u;
const H_AT_OBSERVE: u32 = 39u;
const H_AT_ACT_SPRING: u32 = 40u;

const WG: u32 = 64u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(7) var<storage, read> info: array<u32>;

// Slot 0 of every entry that reads or writes a state (6 floats per particle).
@group(0) @binding(0) var<storage, read_write> state: array<f32>;

fn dot3(a: vec3<f32>, b: vec3<f32>) -> f32 {
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

fn length3(a: vec3<f32>) -> f32 {
    return sqrt(dot3(a, a));
}

// The smaller of a and b (b when equal), as the reference's `min`.
fn min1(a: f32, b: f32) -> f32 {
    return select(b, a, a < b);
}

// The state slot substep k reads, in particles.
fn src_slot(k: u32) -> u32 {
    return select(0u, (k % info[H_CK]) * info[H_N], info[0] == 1u);
}

// Position (part 0) or velocity (part 1) of particle p of a state.
fn load(p: u32, part: u32) -> vec3<f32> {
    let at = 6u * p + 3u * part;
    return vec3<f32>(state[at], state[at + 1u], state[at + 2u]);
}

fn store(p: u32, part: u32, value: vec3<f32>) {
    let at = 6u * p + 3u * part;
    state[at] = value.x;
    state[at + 1u] = value.y;
    state[at + 2u] = value.z;
}

fn ends(s: u32) -> vec2<u32> {
    let at = info[H_AT_ENDS] + 2u * s;
    return vec2<u32>(info[at], info[at + 1u]);
}

fn inv_mass(i: u32) -> f32 {
    return f(info[H_AT_W] + i);
}

fn gravity() -> vec3<f32> {
    return vec3<f32>(f(H_GRAVITY), f(H_GRAVITY + 1u), f(H_GRAVITY + 2u));
}

fn normal() -> vec3<f32> {
    return vec3<f32>(f(H_NORMAL), f(H_NORMAL + 1u), f(H_NORMAL + 2u));
}

// ---- pack: the springs' values as [rest, k, c] per spring.
@group(0) @binding(0) var<storage, read> pk_rest: array<f32>;
@group(0) @binding(1) var<storage, read> pk_k: array<f32>;
@group(0) @binding(2) var<storage, read> pk_c: array<f32>;
@group(0) @binding(3) var<storage, read_write> pk_out: array<f32>;

@compute @workgroup_size(WG)
fn pack(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let s = index(wg, nwg, t);
    if s < info[H_SPRINGS] {
        pk_out[3u * s] = pk_rest[s];
        pk_out[3u * s + 1u] = pk_k[s];
        pk_out[3u * s + 2u] = pk_c[s];
    }
}

// ---- load: the rollout's state from x0, v0; the status reset.
@group(0) @binding(1) var<storage, read> ld_x0: array<f32>;
@group(0) @binding(2) var<storage, read> ld_v0: array<f32>;
@group(0) @binding(3) var<storage, read_write> ld_status: array<u32>;

@compute @workgroup_size(WG)
fn load_state(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i == 0u {
        ld_status[0] = NONE;
    }
    if i >= info[H_N] {
        return;
    }
    let dim = info[H_DIM];
    var x = vec3<f32>(0.0);
    var v = vec3<f32>(0.0);
    for (var c = 0u; c < dim; c++) {
        x[c] = ld_x0[i * dim + c];
        v[c] = ld_v0[i * dim + c];
    }
    store(i, 0u, x);
    store(i, 1u, v);
}

// ---- springs: each spring's force on its second end, at substep k's state.
@group(0) @binding(1) var<storage, read> sp_params: array<f32>;
@group(0) @binding(2) var<storage, read> sp_controls: array<f32>;
@group(0) @binding(3) var<storage, read> sp_step: array<u32>;
@group(0) @binding(4) var<storage, read_write> sp_force: array<f32>;

fn spring_force(d: vec3<f32>, u: vec3<f32>, r: f32, k: f32, c: f32) -> vec3<f32> {
    if info[H_FORM] == 0u {
        let l = length3(d);
        let n = d * (1.0 / l);
        let s = k * (l - r) + c * dot3(n, u);
        return n * s;
    }
    let big_l = length3(d) + f(H_EPS);
    let s = (big_l - r) * k;
    return (d * s) / big_l;
}

// Spring s's rest length at substep k: r (1 + α u) for an actuated spring.
fn sp_rest_at(s: u32, k: u32) -> f32 {
    let r = sp_params[3u * s];
    let a = info[info[H_AT_ACTUATOR] + s];
    if a == NONE {
        return r;
    }
    let u = sp_controls[(k / info[H_SUBSTEPS]) * info[H_ACTUATORS] + a];
    return r * (1.0 + f(info[H_AT_ALPHA] + a) * u);
}

@compute @workgroup_size(WG)
fn springs(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let s = index(wg, nwg, t);
    if s >= info[H_SPRINGS] {
        return;
    }
    let k = sp_step[0];
    let base = src_slot(k);
    let e = ends(s);
    let d = load(base + e.x, 0u) - load(base + e.y, 0u);
    let u = load(base + e.x, 1u) - load(base + e.y, 1u);
    let force = spring_force(d, u, sp_rest_at(s, k), sp_params[3u * s + 1u], sp_params[3u * s + 2u]);
    sp_force[3u * s] = force.x;
    sp_force[3u * s + 1u] = force.y;
    sp_force[3u * s + 2u] = force.z;
}

// ---- particles: sum the forces, integrate, keep checkpoints and the status (mode 0), or
// rebuild the next state of a segment (recompute, mode 1).
@group(0) @binding(1) var<storage, read> pa_force: array<f32>;
@group(0) @binding(2) var<storage, read> pa_step: array<u32>;
@group(0) @binding(3) var<storage, read_write> pa_checkpoints: array<f32>;
@group(0) @binding(4) var<storage, read_write> pa_status: array<atomic<u32>>;

fn spring_sum(i: u32) -> vec3<f32> {
    var sum = vec3<f32>(0.0);
    let first = info[info[H_AT_OFFSETS] + i];
    let last = info[info[H_AT_OFFSETS] + i + 1u];
    for (var at = first; at < last; at++) {
        let e = info[info[H_AT_INCIDENT] + at];
        let s = e / 2u;
        let force = vec3<f32>(pa_force[3u * s], pa_force[3u * s + 1u], pa_force[3u * s + 2u]);
        if e % 2u == 0u {
            sum = sum - force;
        } else {
            sum = sum + force;
        }
    }
    return sum;
}

// f plus the ground's force on a particle at x moving at v.
fn with_contact(f_in: vec3<f32>, x: vec3<f32>, v: vec3<f32>) -> vec3<f32> {
    if info[H_HAS_GROUND] == 0u {
        return f_in;
    }
    let n = normal();
    let c = min1(dot3(n, x) + f(H_OFFSET) - f(H_RADIUS), 0.0);
    if !(c < 0.0) {
        return f_in;
    }
    let vn = dot3(n, v);
    let f_n = c * f(H_KE) + min1(vn, 0.0) * f(H_KD);
    var vt = v - n * vn;
    let vs = length3(vt);
    if vs > 0.0 {
        vt = vt / vs;
    }
    let ft = min1(vs * f(H_KF), f(H_MU) * abs(f_n));
    return (f_in - n * f_n) - vt * ft;
}

fn pushed(i: u32, v: vec3<f32>, force: vec3<f32>) -> vec3<f32> {
    let w = inv_mass(i);
    let gate = select(0.0, 1.0, w > 0.0);
    let a = force * w + gravity() * gate;
    return v * f(H_SIGMA) + a * f(H_DT);
}

fn limited(u: vec3<f32>) -> vec3<f32> {
    if info[H_HAS_VMAX] != 0u && length3(u) > f(H_VMAX) {
        return u * (f(H_VMAX) / length3(u));
    }
    return u;
}

fn wall_hit(x: vec3<f32>, v: vec3<f32>) -> bool {
    let axis = info[H_WALL_AXIS];
    return info[H_HAS_WALL] != 0u && x[axis] > f(H_WALL_POS) && v[axis] > 0.0;
}

fn projected(v_in: vec3<f32>) -> vec3<f32> {
    var v = v_in;
    let axis = info[H_WALL_AXIS];
    let push = f(H_WALL_FRICTION) * v[axis];
    for (var c = 0u; c < info[H_DIM]; c++) {
        if c == axis {
            continue;
        }
        if v[c] > 0.0 {
            v[c] = v[c] - min1(v[c], push);
        } else if v[c] < 0.0 {
            v[c] = v[c] + min1(-v[c], push);
        }
    }
    v[axis] = 0.0;
    return v;
}

// Particle i's next position and velocity from the state at `base`.
fn advance(i: u32, base: u32) -> array<vec3<f32>, 2> {
    let x = load(base + i, 0u);
    let v = load(base + i, 1u);
    let force = with_contact(spring_sum(i), x, v);
    var v1 = limited(pushed(i, v, force));
    let x1 = x + v1 * f(H_DT);
    if wall_hit(x1, v1) {
        v1 = projected(v1);
    }
    return array<vec3<f32>, 2>(x1, v1);
}

@compute @workgroup_size(WG)
fn particles(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    let n = info[H_N];
    if i >= n {
        return;
    }
    let k = pa_step[0];
    let ck = info[H_CK];
    if k % ck == 0u {
        let at = ((k / ck) * n + i) * 6u;
        for (var c = 0u; c < 6u; c++) {
            pa_checkpoints[at + c] = state[6u * i + c];
        }
    }
    let next = advance(i, 0u);
    store(i, 0u, next[0]);
    store(i, 1u, next[1]);
    var ok = true;
    for (var c = 0u; c < 3u; c++) {
        ok = ok && finite(next[0][c]) && finite(next[1][c]);
    }
    if !ok {
        atomicMin(&pa_status[0], k / info[H_SUBSTEPS]);
    }
}

@compute @workgroup_size(WG)
fn recompute(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    let n = info[H_N];
    if i >= n {
        return;
    }
    let k = pa_step[0];
    let base = src_slot(k);
    let next = advance(i, base);
    store(base + n + i, 0u, next[0]);
    store(base + n + i, 1u, next[1]);
}

// ---- observe: the state after substep k into the outputs, if its step is observed.
@group(0) @binding(1) var<storage, read> ob_step: array<u32>;
@group(0) @binding(2) var<storage, read_write> ob_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> ob_v: array<f32>;

@compute @workgroup_size(WG)
fn observe(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    let n = info[H_N];
    let slot = observed_slot(ob_step[0]);
    if i >= n || slot == NONE {
        return;
    }
    let dim = info[H_DIM];
    let x = load(i, 0u);
    let v = load(i, 1u);
    for (var c = 0u; c < dim; c++) {
        ob_x[(slot * n + i) * dim + c] = x[c];
        ob_v[(slot * n + i) * dim + c] = v[c];
    }
}

// ---- restore: a segment's first state from its checkpoint.
@group(0) @binding(1) var<storage, read> rs_checkpoints: array<f32>;
@group(0) @binding(2) var<storage, read> rs_step: array<u32>;

@compute @workgroup_size(WG)
fn restore(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    let n = info[H_N];
    if i >= n {
        return;
    }
    let at = ((rs_step[0] / info[H_CK]) * n + i) * 6u;
    for (var c = 0u; c < 6u; c++) {
        state[6u * i + c] = rs_checkpoints[at + c];
    }
}

// ---- particle_adjoint (mode 1): from the cotangents of the state after substep k (plus
// its observation's), those of the force on each particle (to `gf`) and the integration's
// and contact's share of the cotangents of the state before it (to `lam`, in place).
@group(0) @binding(3) var<storage, read_write> pj_lam: array<f32>;
@group(0) @binding(4) var<storage, read> pj_gobs_x: array<f32>;
@group(0) @binding(5) var<storage, read> pj_gobs_v: array<f32>;
@group(0) @binding(6) var<storage, read_write> pj_gf: array<f32>;

fn projected_adjoint(v1: vec3<f32>, g: vec3<f32>) -> vec3<f32> {
    let axis = info[H_WALL_AXIS];
    let fr = f(H_WALL_FRICTION);
    let push = fr * v1[axis];
    var out = vec3<f32>(0.0);
    var g_axis = 0.0;
    for (var c = 0u; c < info[H_DIM]; c++) {
        if c == axis {
            continue;
        }
        if v1[c] > 0.0 && v1[c] > push {
            out[c] = g[c];
            g_axis = g_axis - fr * g[c];
        } else if v1[c] < 0.0 && -v1[c] > push {
            out[c] = g[c];
            g_axis = g_axis + fr * g[c];
        }
    }
    out[axis] = g_axis;
    return out;
}

fn limited_adjoint(u: vec3<f32>, g: vec3<f32>) -> vec3<f32> {
    if info[H_HAS_VMAX] != 0u && length3(u) > f(H_VMAX) {
        let l = length3(u);
        let hat = u * (1.0 / l);
        return (g - hat * dot3(hat, g)) * (f(H_VMAX) / l);
    }
    return g;
}

// The cotangents of x and v through the ground force, given the force's.
fn contact_adjoint(x: vec3<f32>, v: vec3<f32>, gf: vec3<f32>) -> array<vec3<f32>, 2> {
    let none = array<vec3<f32>, 2>(vec3<f32>(0.0), vec3<f32>(0.0));
    if info[H_HAS_GROUND] == 0u {
        return none;
    }
    let n = normal();
    let c = min1(dot3(n, x) + f(H_OFFSET) - f(H_RADIUS), 0.0);
    if !(c < 0.0) {
        return none;
    }
    let vn = dot3(n, v);
    let f_n = c * f(H_KE) + min1(vn, 0.0) * f(H_KD);
    let vt = v - n * vn;
    let vs = length3(vt);
    var hat = vt;
    if vs > 0.0 {
        hat = vt * (1.0 / vs);
    }
    let kf = f(H_KF);
    let mu = f(H_MU);
    let kinetic = vs * kf < mu * abs(f_n);
    let ft = select(mu * abs(f_n), vs * kf, kinetic);
    var g_fn = -dot3(n, gf);
    let g_ft = -dot3(hat, gf);
    var g_vs = 0.0;
    if kinetic {
        g_vs = g_ft * kf;
    } else {
        g_fn = g_fn + g_ft * mu * select(1.0, -1.0, f_n < 0.0);
    }
    var g_vt = vec3<f32>(0.0);
    if vs > 0.0 {
        let g_hat = gf * -ft;
        let along = dot3(hat, g_hat);
        g_vt = (g_hat - hat * along) * (1.0 / vs);
        g_vt = g_vt + hat * g_vs;
    }
    var g_vn = -dot3(n, g_vt);
    if vn < 0.0 {
        g_vn = g_vn + g_fn * f(H_KD);
    }
    return array<vec3<f32>, 2>(n * (g_fn * f(H_KE)), g_vt + n * g_vn);
}

fn lam_at(i: u32, part: u32) -> vec3<f32> {
    let at = 6u * i + 3u * part;
    return vec3<f32>(pj_lam[at], pj_lam[at + 1u], pj_lam[at + 2u]);
}

@compute @workgroup_size(WG)
fn particle_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    let n = info[H_N];
    if i >= n {
        return;
    }
    let k = pa_step[0];
    let base = src_slot(k);
    var gx1 = lam_at(i, 0u);
    var gv1 = lam_at(i, 1u);
    let slot = observed_slot(k);
    if slot != NONE {
        let dim = info[H_DIM];
        var ox = vec3<f32>(0.0);
        var ov = vec3<f32>(0.0);
        for (var c = 0u; c < dim; c++) {
            ox[c] = pj_gobs_x[(slot * n + i) * dim + c];
            ov[c] = pj_gobs_v[(slot * n + i) * dim + c];
        }
        gx1 = gx1 + ox;
        gv1 = gv1 + ov;
    }
    let x = load(base + i, 0u);
    let v = load(base + i, 1u);
    let force = with_contact(spring_sum(i), x, v);
    let u = pushed(i, v, force);
    let v1 = limited(u);
    let x1 = x + v1 * f(H_DT);
    var g_v1 = gv1;
    if wall_hit(x1, v1) {
        g_v1 = projected_adjoint(v1, gv1);
    }
    g_v1 = g_v1 + gx1 * f(H_DT);
    let g_u = limited_adjoint(u, g_v1);
    let gf = g_u * (inv_mass(i) * f(H_DT));
    let contact = contact_adjoint(x, v, gf);
    let gx = gx1 + contact[0];
    let gv = g_u * f(H_SIGMA) + contact[1];
    for (var c = 0u; c < 3u; c++) {
        pj_lam[6u * i + c] = gx[c];
        pj_lam[6u * i + 3u + c] = gv[c];
        pj_gf[3u * i + c] = gf[c];
    }
}

// ---- spring_adjoint (mode 1): each spring's share of the cotangents of its ends' state
// (to `terms`: d, u, and the rest length's), and of its stiffness, damping and rest length
// (accumulated in `gp` as [rest, k, c]).
@group(0) @binding(4) var<storage, read> sj_gf: array<f32>;
@group(0) @binding(5) var<storage, read_write> sj_terms: array<f32>;
@group(0) @binding(6) var<storage, read_write> sj_gp: array<f32>;

// Stride of a spring's terms: d (3), u (3), the rest length's cotangent, padding.
const TERMS: u32 = 8u;

fn gf_of(p: u32) -> vec3<f32> {
    return vec3<f32>(sj_gf[3u * p], sj_gf[3u * p + 1u], sj_gf[3u * p + 2u]);
}

@compute @workgroup_size(WG)
fn spring_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let s = index(wg, nwg, t);
    if s >= info[H_SPRINGS] {
        return;
    }
    let k = sp_step[0];
    let base = src_slot(k);
    let e = ends(s);
    let g_force = gf_of(e.y) - gf_of(e.x);
    let d = load(base + e.x, 0u) - load(base + e.y, 0u);
    let u = load(base + e.x, 1u) - load(base + e.y, 1u);
    let r = sp_rest_at(s, k);
    let stiff = sp_params[3u * s + 1u];
    let warp = info[H_FORM] == 0u;
    let c = select(0.0, sp_params[3u * s + 2u], warp);
    let l = length3(d);
    let big_l = l + f(H_EPS);
    let l2 = big_l * big_l;
    let du = dot3(d, u);
    let psi = stiff * (big_l - r) / big_l + c * du / l2;
    let q = dot3(d, g_force);
    var hat = vec3<f32>(0.0);
    if l > 0.0 {
        hat = d * (1.0 / l);
    }
    let grad_psi = hat * (stiff * r / l2 - 2.0 * c * du / (l2 * big_l)) + u * (c / l2);
    let gd = g_force * psi + grad_psi * q;
    let gu = d * (q * c / l2);
    let g_rt = -(q * stiff / big_l);
    sj_gp[3u * s + 1u] = sj_gp[3u * s + 1u] + q * (big_l - r) / big_l;
    if warp {
        sj_gp[3u * s + 2u] = sj_gp[3u * s + 2u] + q * du / l2;
    }
    let a = info[info[H_AT_ACTUATOR] + s];
    if a == NONE {
        sj_gp[3u * s] = sj_gp[3u * s] + g_rt;
    } else {
        let control = sp_controls[(k / info[H_SUBSTEPS]) * info[H_ACTUATORS] + a];
        sj_gp[3u * s] = sj_gp[3u * s] + g_rt * (1.0 + f(info[H_AT_ALPHA] + a) * control);
    }
    let at = TERMS * s;
    for (var i = 0u; i < 3u; i++) {
        sj_terms[at + i] = gd[i];
        sj_terms[at + 3u + i] = gu[i];
    }
    sj_terms[at + 6u] = g_rt;
}

// ---- control_adjoint: each actuator's control cotangent at substep k's step.
@group(0) @binding(0) var<storage, read> cj_terms: array<f32>;
@group(0) @binding(1) var<storage, read> cj_params: array<f32>;
@group(0) @binding(2) var<storage, read> cj_step: array<u32>;
@group(0) @binding(3) var<storage, read_write> cj_g: array<f32>;

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
    let s = info[info[H_AT_ACT_SPRING] + a];
    let at = (cj_step[0] / info[H_SUBSTEPS]) * acts + a;
    let alpha = f(info[H_AT_ALPHA] + a);
    cj_g[at] = cj_g[at] + cj_terms[TERMS * s + 6u] * cj_params[3u * s] * alpha;
}

// ---- gather_adjoint: each particle's springs' shares, in its incidence order.
@group(0) @binding(0) var<storage, read> gj_terms: array<f32>;
@group(0) @binding(1) var<storage, read_write> gj_lam: array<f32>;

@compute @workgroup_size(WG)
fn gather_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i >= info[H_N] {
        return;
    }
    var gx = vec3<f32>(gj_lam[6u * i], gj_lam[6u * i + 1u], gj_lam[6u * i + 2u]);
    var gv = vec3<f32>(gj_lam[6u * i + 3u], gj_lam[6u * i + 4u], gj_lam[6u * i + 5u]);
    let first = info[info[H_AT_OFFSETS] + i];
    let last = info[info[H_AT_OFFSETS] + i + 1u];
    for (var at = first; at < last; at++) {
        let e = info[info[H_AT_INCIDENT] + at];
        let base = TERMS * (e / 2u);
        let d = vec3<f32>(gj_terms[base], gj_terms[base + 1u], gj_terms[base + 2u]);
        let u = vec3<f32>(gj_terms[base + 3u], gj_terms[base + 4u], gj_terms[base + 5u]);
        if e % 2u == 0u {
            gx = gx + d;
            gv = gv + u;
        } else {
            gx = gx - d;
            gv = gv - u;
        }
    }
    let clip = f(H_CLIP);
    let clipping = clip < 3.0e38;
    for (var c = 0u; c < 3u; c++) {
        gj_lam[6u * i + c] = select(gx[c], clamp(gx[c], -clip, clip), clipping);
        gj_lam[6u * i + 3u + c] = select(gv[c], clamp(gv[c], -clip, clip), clipping);
    }
}

// ---- zero_backward: the cotangents of the state and the accumulated spring values start
// at 0; zero_controls likewise for the controls'.
@group(0) @binding(0) var<storage, read_write> zb_lam: array<f32>;
@group(0) @binding(1) var<storage, read_write> zb_gp: array<f32>;

@compute @workgroup_size(WG)
fn zero_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i < 6u * info[H_N] {
        zb_lam[i] = 0.0;
    }
    if i < 3u * info[H_SPRINGS] {
        zb_gp[i] = 0.0;
    }
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

// ---- finish_state: the cotangents of x0 and v0 from those of the first state.
@group(0) @binding(0) var<storage, read> fs_lam: array<f32>;
@group(0) @binding(1) var<storage, read_write> fs_gx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fs_gv: array<f32>;

@compute @workgroup_size(WG)
fn finish_state(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = index(wg, nwg, t);
    if i >= info[H_N] {
        return;
    }
    let dim = info[H_DIM];
    for (var c = 0u; c < dim; c++) {
        fs_gx[i * dim + c] = fs_lam[6u * i + c];
        fs_gv[i * dim + c] = fs_lam[6u * i + 3u + c];
    }
}

// ---- finish_params: the spring values' cotangents out of their accumulator.
@group(0) @binding(0) var<storage, read> fp_gp: array<f32>;
@group(0) @binding(1) var<storage, read_write> fp_rest: array<f32>;
@group(0) @binding(2) var<storage, read_write> fp_k: array<f32>;
@group(0) @binding(3) var<storage, read_write> fp_c: array<f32>;

@compute @workgroup_size(WG)
fn finish_params(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let s = index(wg, nwg, t);
    if s < info[H_SPRINGS] {
        fp_rest[s] = fp_gp[3u * s];
        fp_k[s] = fp_gp[3u * s + 1u];
        fp_c[s] = fp_gp[3u * s + 2u];
    }
}
