// What the MLS-MPM kernels share (physics/mpm.wgsl and physics/mpm_atomic.wgsl), imported
// with `// #import lib/mpm.wgsl`: the layout of `info` and of the state, the stencil, the
// polar decomposition, the plastic projection and the stress. It declares the `info`
// binding (7) and the state's (0) that every MPM entry point uses.
//
// `info` holds the whole system: a header (below), then its tables. Word 0 is the launch's
// mode: 0 works on the rollout's state (slot 0), 1 on a segment the backward rebuilds,
// where substep k reads slot (k mod ck) and writes the next slot.
// #import lib/rollout.wgsl

const H_N: u32 = 1u; // particles
const H_GRID: u32 = 2u; // nodes per axis
const H_CK: u32 = 3u;
const H_SUBSTEPS: u32 = 4u;
const H_DX: u32 = 5u;
const H_INV_DX: u32 = 6u;
const H_DT: u32 = 7u;
const H_MASS: u32 = 8u;
const H_STRESS: u32 = 9u; // −dt·V·4/dx²
const H_GSTEP: u32 = 10u; // dt·g
const H_BOUND: u32 = 11u;
const H_MATERIAL: u32 = 12u; // 0 fixed-corotated, 1 fluid, 2 plastic
const H_TWO_MU: u32 = 13u;
const H_LAMBDA: u32 = 14u;
const H_OBSERVED: u32 = 15u;
const H_AT_OBSERVE: u32 = 16u; // where the observed steps start
const H_CROWDED: u32 = 17u; // the most particles one cell may hold
const H_CLIP: u32 = 18u; // the backward's clamp on the state's cotangents (inf: none)
const H_ACTUATORS: u32 = 19u;
const H_STRENGTH: u32 = 20u;
// Tables: each particle's actuator (or NONE) [n]; the particles of each actuator in
// particle order, as offsets [actuators + 1] into a list.
const H_AT_ACT_OF: u32 = 21u;
const H_AT_ACT_OFFSETS: u32 = 22u;
const H_AT_ACT_LIST: u32 = 23u;
const H_STEPS: u32 = 24u;
const H_PLASTIC_LO: u32 = 25u; // 1 − compression
const H_PLASTIC_HI: u32 = 26u; // 1 + stretch

const STATE: u32 = 12u;
const GRID: u32 = 6u; // per node: momentum (2), mass, velocity (2), padding
const PREP: u32 = 8u; // per particle: affine A (4), the new F (4)
const WG: u32 = 64u;
const NONE: u32 = 0xffffffffu;
// Status word 1's flags.
const LEFT: u32 = 1u;
const CROWDED: u32 = 2u;

@group(0) @binding(7) var<storage, read> info: array<u32>;

// Slot 0 of every entry that reads or writes particle states.
@group(0) @binding(0) var<storage, read_write> state: array<f32>;

fn cells() -> u32 {
    return info[H_GRID] * info[H_GRID];
}

// The state slot substep k reads, in particles.
fn src_slot(k: u32) -> u32 {
    return select(0u, (k % info[H_CK]) * info[H_N], info[0] == 1u);
}

fn dst_slot(k: u32) -> u32 {
    return select(0u, (k % info[H_CK] + 1u) * info[H_N], info[0] == 1u);
}

fn pos(p: u32) -> vec2<f32> {
    return vec2<f32>(state[STATE * p], state[STATE * p + 1u]);
}

fn vel(p: u32) -> vec2<f32> {
    return vec2<f32>(state[STATE * p + 2u], state[STATE * p + 3u]);
}

// Row-major 2 × 2 matrix at word `at`: (m00, m01, m10, m11).
fn mat_at(at: u32) -> vec4<f32> {
    return vec4<f32>(state[at], state[at + 1u], state[at + 2u], state[at + 3u]);
}

// A particle's base node along one axis (truncation toward zero, as a cast) and offset.
struct Stencil {
    base: vec2<u32>,
    fx: vec2<f32>,
    w0: vec3<f32>,
    w1: vec3<f32>,
    dw0: vec3<f32>,
    dw1: vec3<f32>,
}

fn stencil(x: vec2<f32>) -> Stencil {
    var s: Stencil;
    let inv_dx = f(H_INV_DX);
    let hi = f32(info[H_GRID] - 3u);
    for (var k = 0u; k < 2u; k++) {
        // Clamped so a particle that left the grid never reads outside it (it is flagged).
        let b = clamp(trunc(x[k] * inv_dx - 0.5), 0.0, hi);
        s.base[k] = u32(b);
        let fx = x[k] * inv_dx - b;
        s.fx[k] = fx;
        let a = 1.5 - fx;
        let m = fx - 1.0;
        let c = fx - 0.5;
        let w = vec3<f32>(0.5 * (a * a), 0.75 - m * m, 0.5 * (c * c));
        let dw = vec3<f32>(-a, -(m + m), c);
        if k == 0u {
            s.w0 = w;
            s.dw0 = dw;
        } else {
            s.w1 = w;
            s.dw1 = dw;
        }
    }
    return s;
}

fn inside(x: vec2<f32>) -> bool {
    let n = f32(info[H_GRID]);
    let a = x * n;
    return a.x >= 0.5 && a.x < n - 1.5 && a.y >= 0.5 && a.y < n - 1.5;
}

// (I + dt C) F.
fn pushed_f(c: vec4<f32>, fm: vec4<f32>) -> vec4<f32> {
    let dt = f(H_DT);
    let m = vec4<f32>(1.0 + dt * c.x, dt * c.y, dt * c.z, 1.0 + dt * c.w);
    return vec4<f32>(
        m.x * fm.x + m.y * fm.z,
        m.x * fm.y + m.y * fm.w,
        m.z * fm.x + m.w * fm.z,
        m.z * fm.y + m.w * fm.w,
    );
}

fn det(a: vec4<f32>) -> f32 {
    return a.x * a.w - a.y * a.z;
}

// Taichi's 2 × 2 polar decomposition's rotation (a reflection where det < 0).
fn polar(a: vec4<f32>) -> vec4<f32> {
    if a.x == 0.0 && a.y == 0.0 && a.z == 0.0 && a.w == 0.0 {
        return vec4<f32>(1.0, 0.0, 0.0, 1.0);
    }
    let d = a.x * a.w - a.z * a.y;
    var b = vec4<f32>(a.x + a.w, a.y - a.z, a.z - a.y, a.w + a.x);
    if d < 0.0 {
        b = vec4<f32>(a.x - a.w, a.y + a.z, a.z + a.y, a.w - a.x);
    }
    let k = 1.0 / sqrt(abs(b.x * b.w - b.z * b.y));
    return b * k;
}

// The affine matrix A and the stored new F of a particle.
struct Pushed {
    f_pushed: vec4<f32>,
    f_new: vec4<f32>,
    f_stored: vec4<f32>,
    affine: vec4<f32>,
    j: f32,
    r: vec4<f32>,
}

// The symmetric eigen-decomposition of S (x, y, z, w = s00, s01, s10, s11): V's
// (cos, sin) and the eigenvalues.
struct Eigen {
    cs: vec2<f32>,
    l: vec2<f32>,
}

fn eigen(s: vec4<f32>) -> Eigen {
    let a = s.x;
    let b = s.y;
    let d = s.w;
    let theta = 0.5 * atan2(b + b, a - d);
    let c = cos(theta);
    let n = sin(theta);
    var e: Eigen;
    e.cs = vec2<f32>(c, n);
    e.l = vec2<f32>(a * c * c + (b + b) * c * n + d * n * n, a * n * n - (b + b) * c * n + d * c * c);
    return e;
}

// sym(Rᵀ A).
fn stretch_of(r: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
    var s = vec4<f32>(
        r.x * a.x + r.z * a.z,
        r.x * a.y + r.z * a.w,
        r.y * a.x + r.w * a.z,
        r.y * a.y + r.w * a.w,
    );
    let off = 0.5 * (s.y + s.z);
    s.y = off;
    s.z = off;
    return s;
}

// V diag(c) Vᵀ with V = [[cs.x, −cs.y], [cs.y, cs.x]].
fn spectral(cs: vec2<f32>, c: vec2<f32>) -> vec4<f32> {
    let v = vec4<f32>(cs.x, -cs.y, cs.y, cs.x);
    return vec4<f32>(
        v.x * c.x * v.x + v.y * c.y * v.y,
        v.x * c.x * v.z + v.y * c.y * v.w,
        v.z * c.x * v.x + v.w * c.y * v.y,
        v.z * c.x * v.z + v.w * c.y * v.w,
    );
}

fn matmul(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(
        a.x * b.x + a.y * b.z,
        a.x * b.y + a.y * b.w,
        a.z * b.x + a.w * b.z,
        a.z * b.y + a.w * b.w,
    );
}

// The plastic projection R V clamp(Σ) Vᵀ.
fn project(a: vec4<f32>) -> vec4<f32> {
    let r = polar(a);
    let e = eigen(stretch_of(r, a));
    let lo = f(H_PLASTIC_LO);
    let hi = f(H_PLASTIC_HI);
    let c = vec2<f32>(clamp(e.l.x, lo, hi), clamp(e.l.y, lo, hi));
    return matmul(r, spectral(e.cs, c));
}

fn pushed(c: vec4<f32>, fm: vec4<f32>, act: f32, actuated: bool) -> Pushed {
    var out: Pushed;
    var fn_ = pushed_f(c, fm);
    out.f_pushed = fn_;
    if info[H_MATERIAL] == 2u {
        fn_ = project(fn_);
    }
    out.f_new = fn_;
    let j = det(fn_);
    out.j = j;
    let s = f(H_LAMBDA) * (j - 1.0) * j;
    var cauchy: vec4<f32>;
    if info[H_MATERIAL] != 1u {
        let r = polar(fn_);
        out.r = r;
        let two_mu = f(H_TWO_MU);
        let d = fn_ - r;
        // σ[i][k] = 2μ (F' − R)[i][0] F'[k][0] + 2μ (F' − R)[i][1] F'[k][1].
        cauchy = vec4<f32>(
            two_mu * d.x * fn_.x + two_mu * d.y * fn_.y,
            two_mu * d.x * fn_.z + two_mu * d.y * fn_.w,
            two_mu * d.z * fn_.x + two_mu * d.w * fn_.y,
            two_mu * d.z * fn_.z + two_mu * d.w * fn_.w,
        );
        cauchy.x = cauchy.x + s;
        cauchy.w = cauchy.w + s;
        out.f_stored = fn_;
    } else {
        cauchy = vec4<f32>(s, 0.0, 0.0, s);
        let root = sqrt(j);
        out.f_stored = vec4<f32>(root, 0.0, 0.0, root);
    }
    // Actuation: σ[i][k] += F'[i][1] a F'[k][1].
    if actuated {
        cauchy = vec4<f32>(
            cauchy.x + fn_.y * act * fn_.y,
            cauchy.y + fn_.y * act * fn_.w,
            cauchy.z + fn_.w * act * fn_.y,
            cauchy.w + fn_.w * act * fn_.w,
        );
    }
    out.affine = f(H_STRESS) * cauchy + f(H_MASS) * c;
    return out;
}

fn weight(s: Stencil, i: u32, j: u32) -> f32 {
    return s.w0[i] * s.w1[j];
}

// Whether the wall band stops a node at `at` along an axis with velocity `v`.
fn walled(at: u32, v: f32) -> bool {
    let n = info[H_GRID];
    let b = info[H_BOUND];
    return (at < b && v < 0.0) || (at > n - b && v > 0.0);
}

// Whether particle p is driven by an actuator.
fn actuated(p: u32) -> bool {
    return info[H_ACTUATORS] != 0u && info[info[H_AT_ACT_OF] + p] != NONE;
}

