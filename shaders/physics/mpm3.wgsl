// A 3D MLS-MPM substep and its adjoint: the formulas of gradflux-core's
// ops/physics/cpu_mpm3.rs, in its order, on a 27-node stencil (physics/mpm.wgsl is the 2D
// counterpart). No float atomics: the particles are sorted by cell each substep and every
// node merges the sorted lists of its 27 neighbouring cells (lib/mpm_steps.wgsl), so it
// sums its particles in particle order, as the CPU reference does.
//
// A particle's state is 24 floats: x (3), v (3), C (9), F (9), row-major. The polar
// decomposition takes the eigenvectors of FᵀF by cyclic Jacobi rotations, stopping once
// the off-diagonal part is below f32's epsilon relative to the diagonal (at most six
// sweeps), with the closed-form adjoint R (Z − Zᵀ).
// #import lib/mpm_steps.wgsl

const DIM: u32 = 3u;
const STATE: u32 = 24u;
const GRID: u32 = 8u; // per node: momentum (3), mass, velocity (3), padding
const PREP: u32 = 18u; // per particle: affine A (9), the new F (9)
const NBR: u32 = 27u; // the cells whose particles reach a node
// f32's epsilon, squared: the Jacobi sweeps' stopping ratio.
const JACOBI_TOL: f32 = 1.1920929e-7 * 1.1920929e-7;

// A 3 × 3 matrix as its rows.
alias M3 = array<vec3<f32>, 3>;

fn m3_zero() -> M3 {
    return M3(vec3<f32>(0.0), vec3<f32>(0.0), vec3<f32>(0.0));
}

fn m3_eye() -> M3 {
    return M3(vec3<f32>(1.0, 0.0, 0.0), vec3<f32>(0.0, 1.0, 0.0), vec3<f32>(0.0, 0.0, 1.0));
}

// a b.
fn m3_mul(a_in: M3, b_in: M3) -> M3 {
    var a = a_in;
    var b = b_in;
    var m: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            m[i][k] = a[i][0] * b[0][k] + a[i][1] * b[1][k] + a[i][2] * b[2][k];
        }
    }
    return m;
}

fn m3_tr(a_in: M3) -> M3 {
    var a = a_in;
    var m: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            m[i][k] = a[k][i];
        }
    }
    return m;
}

fn m3_det(a: M3) -> f32 {
    return a[0][0] * (a[1][1] * a[2][2] - a[2][1] * a[1][2])
        - a[1][0] * (a[0][1] * a[2][2] - a[2][1] * a[0][2])
        + a[2][0] * (a[0][1] * a[1][2] - a[1][1] * a[0][2]);
}

// ∂ det a / ∂ a.
fn m3_cofactor(a_in: M3) -> M3 {
    var a = a_in;
    var m: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            let i1 = (i + 1u) % 3u;
            let i2 = (i + 2u) % 3u;
            let j1 = (j + 1u) % 3u;
            let j2 = (j + 2u) % 3u;
            m[i][j] = a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1];
        }
    }
    return m;
}

// V diag(d) Vᵀ.
fn m3_spectral(v_in: M3, d: vec3<f32>) -> M3 {
    var v = v_in;
    var m: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            m[i][k] = v[i][0] * d[0] * v[k][0] + v[i][1] * d[1] * v[k][1] + v[i][2] * d[2] * v[k][2];
        }
    }
    return m;
}

// The matrix at word `at` of the state.
fn m3_at(at: u32) -> M3 {
    var m: M3;
    for (var i = 0u; i < 3u; i++) {
        m[i] = vec3<f32>(state[at + 3u * i], state[at + 3u * i + 1u], state[at + 3u * i + 2u]);
    }
    return m;
}

fn pos3(p: u32) -> vec3<f32> {
    return vec3<f32>(state[STATE * p], state[STATE * p + 1u], state[STATE * p + 2u]);
}

fn vel3(p: u32) -> vec3<f32> {
    return vec3<f32>(state[STATE * p + 3u], state[STATE * p + 4u], state[STATE * p + 5u]);
}

struct Eigen3 {
    v: M3, // columns: the eigenvectors
    l: vec3<f32>,
}

// The eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations.
fn m3_eigen(a_in: M3) -> Eigen3 {
    var a = a_in;
    var v = m3_eye();
    for (var sweep = 0u; sweep < 6u; sweep++) {
        let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        let diag = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
        if off <= JACOBI_TOL * diag {
            break;
        }
        // The planes (0, 1), (0, 2), (1, 2).
        for (var plane = 0u; plane < 3u; plane++) {
            let p = select(0u, 1u, plane == 2u);
            let q = select(plane + 1u, 2u, plane == 2u);
            if a[p][q] == 0.0 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let sign = select(1.0, -1.0, theta < 0.0);
            let t = sign / (abs(theta) + sqrt(theta * theta + 1.0));
            let c = 1.0 / sqrt(t * t + 1.0);
            let s = t * c;
            // A ← Jᵀ A J, V ← V J, with J the rotation in the (p, q) plane.
            for (var k = 0u; k < 3u; k++) {
                let akp = a[k][p];
                let akq = a[k][q];
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for (var k = 0u; k < 3u; k++) {
                let apk = a[p][k];
                let aqk = a[q][k];
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for (var k = 0u; k < 3u; k++) {
                let vkp = v[k][p];
                let vkq = v[k][q];
                v[k][p] = c * vkp - s * vkq;
                v[k][q] = s * vkp + c * vkq;
            }
        }
    }
    return Eigen3(v, vec3<f32>(a[0][0], a[1][1], a[2][2]));
}

// A = R S with S = V diag(σ) Vᵀ.
struct Polar3 {
    r: M3,
    v: M3,
    sigma: vec3<f32>,
}

fn polar3(a: M3) -> Polar3 {
    let e = m3_eigen(m3_mul(m3_tr(a), a));
    let tiny = vec3<f32>(1e-20);
    let sigma = sqrt(select(tiny, e.l, e.l > tiny));
    let inv = m3_spectral(e.v, vec3<f32>(1.0) / sigma);
    return Polar3(m3_mul(a, inv), e.v, sigma);
}

// The cotangent of A through polar3's R: R (Z − Zᵀ), Z = V ((Vᵀ Rᵀ g V) / (σ_i + σ_j)) Vᵀ.
fn polar3_adjoint(pol: Polar3, g: M3) -> M3 {
    let m = m3_mul(m3_tr(pol.r), g);
    var mp = m3_mul(m3_mul(m3_tr(pol.v), m), pol.v);
    let sigma = pol.sigma;
    var zp: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            zp[i][j] = mp[i][j] / (sigma[i] + sigma[j]);
        }
    }
    var z = m3_mul(m3_mul(pol.v, zp), m3_tr(pol.v));
    var skew: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            skew[i][j] = z[i][j] - z[j][i];
        }
    }
    return m3_mul(pol.r, skew);
}

fn clamped(sigma: vec3<f32>) -> vec3<f32> {
    return clamp(sigma, vec3<f32>(f(H_PLASTIC_LO)), vec3<f32>(f(H_PLASTIC_HI)));
}

// The plastic projection R V clamp(σ) Vᵀ.
fn project3(a: M3) -> M3 {
    let pol = polar3(a);
    return m3_mul(pol.r, m3_spectral(pol.v, clamped(pol.sigma)));
}

// The cotangent of A through project3 (divided differences of the clamp, their mean slope
// where singular values meet).
fn project3_adjoint(a: M3, g_out: M3) -> M3 {
    let pol = polar3(a);
    let sigma = pol.sigma;
    let lo = f(H_PLASTIC_LO);
    let hi = f(H_PLASTIC_HI);
    let c = clamped(sigma);
    let gm = m3_spectral(pol.v, c);
    var g_r = m3_mul(g_out, m3_tr(gm));
    var g_g = m3_mul(m3_tr(pol.r), g_out);
    var sym: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            sym[i][k] = 0.5 * (g_g[i][k] + g_g[k][i]);
        }
    }
    var m = m3_mul(m3_mul(m3_tr(pol.v), sym), pol.v);
    let slope = select(vec3<f32>(1.0), vec3<f32>(0.0), (sigma < vec3<f32>(lo)) | (sigma > vec3<f32>(hi)));
    var gm_e: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            let gap = sigma[i] - sigma[j];
            var gamma = slope[i];
            if i != j {
                if abs(gap) > 1e-6 {
                    gamma = (c[i] - c[j]) / gap;
                } else {
                    gamma = 0.5 * (slope[i] + slope[j]);
                }
            }
            gm_e[i][j] = gamma * m[i][j];
        }
    }
    let g_s = m3_mul(m3_mul(pol.v, gm_e), m3_tr(pol.v));
    // S = Rᵀ A: g_A += R g_S, g_R += A g_Sᵀ.
    var g_a = m3_mul(pol.r, g_s);
    var a_gs = m3_mul(a, m3_tr(g_s));
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            g_r[i][k] = g_r[i][k] + a_gs[i][k];
        }
    }
    var g_p = polar3_adjoint(pol, g_r);
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            g_a[i][k] = g_a[i][k] + g_p[i][k];
        }
    }
    return g_a;
}

// ∛x to within an ulp or so: `pow` may be several ulps off on a GPU, and the fluid's
// stiff pressure amplifies that over a rollout, so one Newton step refines it.
fn cube_root(x: f32) -> f32 {
    let a = abs(x);
    var r = pow(a, 1.0 / 3.0);
    if r > 0.0 {
        r = r + (a / (r * r) - r) / 3.0;
    }
    return sign(x) * r;
}

// A particle's base node (truncation toward zero, clamped so a particle that left the grid
// never reads outside it; it is flagged), its offset and its weights per axis.
struct Stencil3 {
    base: vec3<u32>,
    fx: vec3<f32>,
    w: array<vec3<f32>, 3>,
    dw: array<vec3<f32>, 3>,
}

fn stencil3(x: vec3<f32>) -> Stencil3 {
    var s: Stencil3;
    let inv_dx = f(H_INV_DX);
    let hi = f32(info[H_GRID] - 3u);
    for (var k = 0u; k < 3u; k++) {
        let b = clamp(trunc(x[k] * inv_dx - 0.5), 0.0, hi);
        s.base[k] = u32(b);
        let fx = x[k] * inv_dx - b;
        s.fx[k] = fx;
        let a = 1.5 - fx;
        let m = fx - 1.0;
        let c = fx - 0.5;
        s.w[k] = vec3<f32>(0.5 * (a * a), 0.75 - m * m, 0.5 * (c * c));
        s.dw[k] = vec3<f32>(-a, -(m + m), c);
    }
    return s;
}

// Stencil offset t (of 27) as (t / 9, t / 3 % 3, t % 3).
fn offset3(t: u32) -> vec3<u32> {
    return vec3<u32>(t / 9u, (t / 3u) % 3u, t % 3u);
}

fn weight3(s: Stencil3, o: vec3<u32>) -> f32 {
    return s.w[0][o.x] * s.w[1][o.y] * s.w[2][o.z];
}

fn node3(s: Stencil3, o: vec3<u32>) -> u32 {
    let n = info[H_GRID];
    return ((s.base.x + o.x) * n + s.base.y + o.y) * n + s.base.z + o.z;
}

fn inside3(x: vec3<f32>) -> bool {
    let n = f32(info[H_GRID]);
    let a = x * n;
    return all(a >= vec3<f32>(0.5)) && all(a < vec3<f32>(n - 1.5));
}

// The cell (the stencil's base node) of the particle whose state is at slot `at`.
fn particle_cell(at: u32) -> u32 {
    let s = stencil3(pos3(at));
    let n = info[H_GRID];
    return (s.base.x * n + s.base.y) * n + s.base.z;
}

// The cell of node − offset3(t), or NONE where that leaves the grid.
fn neighbour_cell(node: u32, t: u32) -> u32 {
    let n = info[H_GRID];
    let o = offset3(t);
    let at = vec3<u32>(node / (n * n), (node / n) % n, node % n);
    if any(at < o) {
        return NONE;
    }
    let c = at - o;
    return (c.x * n + c.y) * n + c.z;
}

struct Pushed3 {
    f_pushed: M3,
    f_new: M3,
    f_stored: M3,
    affine: M3,
    j: f32,
    // The polar decomposition of f_new (corotated and plastic).
    pol: Polar3,
}

// A particle's new F, its stress and its affine matrix, from C, F and the actuation.
fn pushed3(c_in: M3, fm: M3, act: f32, driven: bool) -> Pushed3 {
    var c = c_in;
    var out: Pushed3;
    let dt = f(H_DT);
    var m = m3_eye();
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            m[i][k] = m[i][k] + dt * c[i][k];
        }
    }
    out.f_pushed = m3_mul(m, fm);
    var fnw = out.f_pushed;
    if info[H_MATERIAL] == 2u {
        fnw = project3(fnw);
    }
    out.f_new = fnw;
    let j = m3_det(fnw);
    out.j = j;
    let s = f(H_LAMBDA) * (j - 1.0) * j;
    var cauchy = m3_zero();
    if info[H_MATERIAL] != 1u {
        out.pol = polar3(fnw);
        var r = out.pol.r;
        let two_mu = f(H_TWO_MU);
        var d: M3;
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                d[i][k] = two_mu * (fnw[i][k] - r[i][k]);
            }
        }
        cauchy = m3_mul(d, m3_tr(fnw));
        for (var i = 0u; i < 3u; i++) {
            cauchy[i][i] = cauchy[i][i] + s;
        }
        out.f_stored = fnw;
    } else {
        let root = cube_root(j);
        out.f_stored = m3_zero();
        for (var i = 0u; i < 3u; i++) {
            cauchy[i][i] = s;
            out.f_stored[i][i] = root;
        }
    }
    if driven {
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                cauchy[i][k] = cauchy[i][k] + fnw[i][1] * act * fnw[k][1];
            }
        }
    }
    let stress = f(H_STRESS);
    let mass = f(H_MASS);
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            out.affine[i][k] = stress * cauchy[i][k] + mass * c[i][k];
        }
    }
    return out;
}

// ---- prep's work for particle p (its state at slot `at`): the affine matrix and new F.
fn write_prep(p: u32, at: u32, act: f32, driven: bool) {
    let w = STATE * at;
    var pu = pushed3(m3_at(w + 6u), m3_at(w + 15u), act, driven);
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            pr_out[PREP * p + 3u * i + k] = pu.affine[i][k];
            pr_out[PREP * p + 9u + 3u * i + k] = pu.f_stored[i][k];
        }
    }
}

// ---- p2g (per node): momentum and mass in particle order, then the grid update.
@group(0) @binding(4) var<storage, read> pg_prep: array<f32>;
@group(0) @binding(5) var<storage, read_write> pg_grid: array<f32>;

@compute @workgroup_size(WG)
fn p2g(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = index(wg, nwg, t);
    let n = info[H_GRID];
    if k >= cells() {
        return;
    }
    let node = vec3<u32>(k / (n * n), (k / n) % n, k % n);
    let base = src_slot(mg_step[0]);
    let dx = f(H_DX);
    let m = f(H_MASS);
    var mom = vec3<f32>(0.0);
    var mass = 0.0;
    var merge = merge_start(k);
    loop {
        let next = merge_next(&merge);
        if next.x == NONE {
            break;
        }
        let p = next.x;
        let o = offset3(next.y);
        let s = stencil3(pos3(base + p));
        let d = (vec3<f32>(o) - s.fx) * dx;
        let w = weight3(s, o);
        let mv = m * vel3(base + p);
        for (var r = 0u; r < 3u; r++) {
            let a = PREP * p + 3u * r;
            let ad = pg_prep[a] * d.x + pg_prep[a + 1u] * d.y + pg_prep[a + 2u] * d.z;
            mom[r] = mom[r] + w * (mv[r] + ad);
        }
        mass = mass + w * m;
    }
    let inv_m = 1.0 / (mass + 1e-10);
    var v = inv_m * mom;
    v.y = v.y - f(H_GSTEP);
    for (var axis = 0u; axis < 3u; axis++) {
        if walled(node[axis], v[axis]) {
            v[axis] = 0.0;
        }
    }
    let at = GRID * k;
    for (var r = 0u; r < 3u; r++) {
        pg_grid[at + r] = mom[r];
        pg_grid[at + 4u + r] = v[r];
    }
    pg_grid[at + 3u] = mass;
}

// ---- g2p's work: particle p's next state from the state at `src`, written at `dst`;
// whether it is finite and inside the grid.
fn advance(p: u32, src: u32, dst: u32) -> bool {
    let x = pos3(src + p);
    let s = stencil3(x);
    let inv_dx = f(H_INV_DX);
    var v = vec3<f32>(0.0);
    var c = m3_zero();
    for (var t = 0u; t < 27u; t++) {
        let o = offset3(t);
        let e = vec3<f32>(o) - s.fx;
        let at = GRID * node3(s, o) + 4u;
        let g = vec3<f32>(gp_grid[at], gp_grid[at + 1u], gp_grid[at + 2u]);
        let w = weight3(s, o);
        v = v + w * g;
        let w4 = 4.0 * w;
        for (var r = 0u; r < 3u; r++) {
            for (var q = 0u; q < 3u; q++) {
                c[r][q] = c[r][q] + w4 * (g[r] * e[q]) * inv_dx;
            }
        }
    }
    let x1 = x + f(H_DT) * v;
    let at = STATE * (dst + p);
    var ok = inside3(x1);
    for (var k = 0u; k < 3u; k++) {
        state[at + k] = x1[k];
        state[at + 3u + k] = v[k];
        ok = ok && finite(x1[k]) && finite(v[k]);
    }
    for (var e = 0u; e < 9u; e++) {
        let ce = c[e / 3u][e % 3u];
        let fe = gp_prep[PREP * p + 9u + e];
        state[at + 6u + e] = ce;
        state[at + 15u + e] = fe;
        ok = ok && finite(ce) && finite(fe);
    }
    return ok;
}

// ---- node_adjoint (per node, mode 1): the cotangent of the node velocity through G2P (in
// particle order), then through the grid update into momentum and mass (to `gadj`).
@group(0) @binding(4) var<storage, read> nj_lam: array<f32>;
@group(0) @binding(5) var<storage, read> nj_grid: array<f32>;
@group(0) @binding(6) var<storage, read_write> nj_gadj: array<f32>;

@compute @workgroup_size(WG)
fn node_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let k = index(wg, nwg, t);
    let n = info[H_GRID];
    if k >= cells() {
        return;
    }
    let node = vec3<u32>(k / (n * n), (k / n) % n, k % n);
    let base = src_slot(mg_step[0]);
    let dt = f(H_DT);
    let inv_dx = f(H_INV_DX);
    var g = vec3<f32>(0.0);
    var merge = merge_start(k);
    loop {
        let next = merge_next(&merge);
        if next.x == NONE {
            break;
        }
        let p = next.x;
        let o = offset3(next.y);
        let s = stencil3(pos3(base + p));
        let e = vec3<f32>(o) - s.fx;
        let w = weight3(s, o);
        let at = STATE * p;
        for (var r = 0u; r < 3u; r++) {
            let gv = nj_lam[at + 3u + r] + dt * nj_lam[at + r];
            let c = at + 6u + 3u * r;
            let along = nj_lam[c] * e.x + nj_lam[c + 1u] * e.y + nj_lam[c + 2u] * e.z;
            g[r] = g[r] + w * gv + 4.0 * w * inv_dx * along;
        }
    }
    let at = GRID * k;
    let mom = vec3<f32>(nj_grid[at], nj_grid[at + 1u], nj_grid[at + 2u]);
    let inv_m = 1.0 / (nj_grid[at + 3u] + 1e-10);
    for (var axis = 0u; axis < 3u; axis++) {
        var before = inv_m * mom[axis];
        if axis == 1u {
            before = before - f(H_GSTEP);
        }
        if walled(node[axis], before) {
            g[axis] = 0.0;
        }
    }
    let g_inv = g.x * mom.x + g.y * mom.y + g.z * mom.z;
    for (var r = 0u; r < 3u; r++) {
        nj_gadj[4u * k + r] = inv_m * g[r];
    }
    nj_gadj[4u * k + 3u] = -(g_inv * inv_m * inv_m);
}

// The cotangents of C, F and the actuation from those of A and of the stored F.
struct PushedGrad3 {
    c: M3,
    f: M3,
    act: f32,
}

fn pushed3_adjoint(c_in: M3, fm: M3, pu_in: Pushed3, act: f32, driven: bool, g_a_in: M3, g_fs_in: M3) -> PushedGrad3 {
    var c = c_in;
    var pu = pu_in;
    var g_a = g_a_in;
    var g_fs = g_fs_in;
    var fnw = pu.f_new;
    var cof = m3_cofactor(fnw);
    var g_c: M3;
    var g_sigma: M3;
    let mass = f(H_MASS);
    let stress = f(H_STRESS);
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            g_c[i][k] = mass * g_a[i][k];
            g_sigma[i][k] = stress * g_a[i][k];
        }
    }
    let j = pu.j;
    let g_s = g_sigma[0][0] + g_sigma[1][1] + g_sigma[2][2];
    var g_act = 0.0;
    var g_fnew = m3_zero();
    if driven {
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                g_act = g_act + g_sigma[i][k] * fnw[i][1] * fnw[k][1];
            }
            var col = 0.0;
            for (var k = 0u; k < 3u; k++) {
                col = col + (g_sigma[i][k] + g_sigma[k][i]) * fnw[k][1];
            }
            g_fnew[i][1] = act * col;
        }
    }
    let lambda = f(H_LAMBDA);
    if info[H_MATERIAL] != 1u {
        var r = pu.pol.r;
        let two_mu = f(H_TWO_MU);
        var m2: M3;
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                m2[i][k] = two_mu * (fnw[i][k] - r[i][k]);
            }
        }
        // σ = M2 F'ᵀ: g_M2 = gσ F', g_F' += gσᵀ M2.
        var g_m2 = m3_mul(g_sigma, fnw);
        var g_ft = m3_mul(m3_tr(g_sigma), m2);
        var g_r: M3;
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                g_fnew[i][k] = g_fnew[i][k] + g_ft[i][k] + two_mu * g_m2[i][k];
                g_r[i][k] = -(two_mu * g_m2[i][k]);
            }
        }
        var g_polar = polar3_adjoint(pu.pol, g_r);
        let g_j = g_s * lambda * (2.0 * j - 1.0);
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                g_fnew[i][k] = g_fnew[i][k] + g_polar[i][k] + g_j * cof[i][k] + g_fs[i][k];
            }
        }
    } else {
        let g_root = g_fs[0][0] + g_fs[1][1] + g_fs[2][2];
        let root = cube_root(j);
        let g_j = g_s * lambda * (2.0 * j - 1.0) + g_root / (3.0 * root * root);
        for (var i = 0u; i < 3u; i++) {
            for (var k = 0u; k < 3u; k++) {
                g_fnew[i][k] = g_fnew[i][k] + g_j * cof[i][k];
            }
        }
    }
    if info[H_MATERIAL] == 2u {
        g_fnew = project3_adjoint(pu.f_pushed, g_fnew);
    }
    let dt = f(H_DT);
    var m = m3_eye();
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            m[i][k] = m[i][k] + dt * c[i][k];
        }
    }
    var g_m = m3_mul(g_fnew, m3_tr(fm));
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            g_c[i][k] = g_c[i][k] + dt * g_m[i][k];
        }
    }
    return PushedGrad3(g_c, m3_mul(m3_tr(m), g_fnew), g_act);
}

// ---- particle_adjoint (per particle, mode 1): from lam (the state after substep k) and
// the nodes' cotangents, the cotangents of the state before it, written over lam.
@compute @workgroup_size(WG)
fn particle_adjoint(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let p = index(wg, nwg, t);
    if p >= info[H_N] {
        return;
    }
    let k_sub = pj_step[0];
    let src = src_slot(k_sub) + p;
    let s = stencil3(pos3(src));
    let c = m3_at(STATE * src + 6u);
    let fm = m3_at(STATE * src + 15u);
    let act = adjoint_act(p, k_sub);
    let driven = actuated(p);
    let pu = pushed3(c, fm, act, driven);
    var a = pu.affine;
    let mass = f(H_MASS);
    let mv = mass * vel3(src);
    let dt = f(H_DT);
    let dx = f(H_DX);
    let inv_dx = f(H_INV_DX);
    let at = STATE * p;
    let gx = vec3<f32>(pj_lam[at], pj_lam[at + 1u], pj_lam[at + 2u]);
    let gv = vec3<f32>(pj_lam[at + 3u], pj_lam[at + 4u], pj_lam[at + 5u]) + dt * gx;
    var gc: M3;
    var g_fs: M3;
    for (var i = 0u; i < 3u; i++) {
        for (var k = 0u; k < 3u; k++) {
            gc[i][k] = pj_lam[at + 6u + 3u * i + k];
            g_fs[i][k] = pj_lam[at + 15u + 3u * i + k];
        }
    }
    var g_fx = vec3<f32>(0.0);
    var g_v = vec3<f32>(0.0);
    var g_a = m3_zero();
    for (var t = 0u; t < 27u; t++) {
        let o = offset3(t);
        let k = node3(s, o);
        let wk = vec3<f32>(s.w[0][o.x], s.w[1][o.y], s.w[2][o.z]);
        let w = wk.x * wk.y * wk.z;
        let dw = vec3<f32>(
            s.dw[0][o.x] * wk.y * wk.z,
            wk.x * s.dw[1][o.y] * wk.z,
            wk.x * wk.y * s.dw[2][o.z],
        );
        let e = vec3<f32>(o) - s.fx;
        let vn = vec3<f32>(pj_grid[GRID * k + 4u], pj_grid[GRID * k + 5u], pj_grid[GRID * k + 6u]);
        var c_term = 0.0;
        for (var r = 0u; r < 3u; r++) {
            for (var q = 0u; q < 3u; q++) {
                c_term = c_term + gc[r][q] * vn[r] * e[q];
            }
        }
        let vg = vn.x * gv.x + vn.y * gv.y + vn.z * gv.z;
        let d = e * dx;
        let gm = vec3<f32>(pj_gadj[4u * k], pj_gadj[4u * k + 1u], pj_gadj[4u * k + 2u]);
        var pushed_w = pj_gadj[4u * k + 3u] * mass;
        for (var r = 0u; r < 3u; r++) {
            let ad = a[r][0] * d.x + a[r][1] * d.y + a[r][2] * d.z;
            pushed_w = pushed_w + gm[r] * (mv[r] + ad);
        }
        for (var axis = 0u; axis < 3u; axis++) {
            let direct = -(4.0 * w * inv_dx)
                * (gc[0][axis] * vn.x + gc[1][axis] * vn.y + gc[2][axis] * vn.z);
            let through_d = -(w * dx) * (a[0][axis] * gm.x + a[1][axis] * gm.y + a[2][axis] * gm.z);
            g_fx[axis] = g_fx[axis] + dw[axis] * (vg + 4.0 * inv_dx * c_term) + direct
                + dw[axis] * pushed_w + through_d;
            g_v[axis] = g_v[axis] + w * mass * gm[axis];
        }
        for (var r = 0u; r < 3u; r++) {
            for (var q = 0u; q < 3u; q++) {
                g_a[r][q] = g_a[r][q] + w * gm[r] * d[q];
            }
        }
    }
    let cf = pushed3_adjoint(c, fm, pu, act, driven, g_a, g_fs);
    pj_gact[p] = cf.act;
    var g_c = cf.c;
    var g_f = cf.f;
    let clip = f(H_CLIP);
    let clipping = clip < 3.0e38;
    for (var e = 0u; e < STATE; e++) {
        var value: f32;
        if e < 3u {
            value = gx[e] + g_fx[e] * inv_dx;
        } else if e < 6u {
            value = g_v[e - 3u];
        } else if e < 15u {
            value = g_c[(e - 6u) / 3u][(e - 6u) % 3u];
        } else {
            value = g_f[(e - 15u) / 3u][(e - 15u) % 3u];
        }
        pj_lam[at + e] = select(value, clamp(value, -clip, clip), clipping);
    }
}
