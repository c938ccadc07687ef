// The 2D MLS-MPM formulas (physics/mpm.wgsl and physics/mpm_atomic.wgsl), imported with
// `// #import lib/mpm2.wgsl`: the state's layout, the 3 × 3 stencil, the 2 × 2 polar
// decomposition, the plastic projection and the stress.
// #import lib/mpm.wgsl

const DIM: u32 = 2u;
const STATE: u32 = 12u; // x (2), v (2), C (4), F (4)
const GRID: u32 = 6u; // per node: momentum (2), mass, velocity (2), padding
const PREP: u32 = 8u; // per particle: affine A (4), the new F (4)
const NBR: u32 = 9u; // the cells whose particles reach a node

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

// The cell (the stencil's base node) of the particle whose state is at slot `at`.
fn particle_cell(at: u32) -> u32 {
    let s = stencil(pos(at));
    return s.base.x * info[H_GRID] + s.base.y;
}

// The cell of node − (t / 3, t % 3), or NONE where that leaves the grid.
fn neighbour_cell(node: u32, t: u32) -> u32 {
    let n = info[H_GRID];
    let i = t / 3u;
    let j = t % 3u;
    let x = node / n;
    let y = node % n;
    if x < i || y < j {
        return NONE;
    }
    return (x - i) * n + (y - j);
}
