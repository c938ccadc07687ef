// A 2D MLS-MPM substep and its adjoint (the formulas are documented on `Mpm` in
// gradflux-core's ops/physics/mpm.rs; cpu_mpm.rs computes them in the same order).
//
// No float atomics: each substep sorts the particles by cell (integer atomics count and
// place them, then each cell's list is sorted by particle index), and every grid node
// gathers from its 3 × 3 neighbouring cells, merging their lists so that it sums its
// particles in particle order — the order of the CPU reference and of a serial run of the
// anchor. Particles gather from their 3 × 3 nodes.
//
// A particle's state is 12 floats: x (2), v (2), C (4), F (4), row-major. Every entry
// point binds 7 buffers then `info` (placeholders where it needs fewer). The 2D formulas
// are in lib/mpm2.wgsl; the sort, the merge and the entry points both dimensions share are
// in lib/mpm_steps.wgsl (physics/mpm3.wgsl is the 3D counterpart of this file).
// #import lib/mpm2.wgsl
// #import lib/mpm_steps.wgsl

// prep's work for particle p (its state at slot `at`): the affine matrix and the new F.
fn write_prep(p: u32, at: u32, act: f32, driven: bool) {
    let w = STATE * at;
    let pu = pushed(mat_at(w + 4u), mat_at(w + 8u), act, driven);
    for (var k = 0u; k < 4u; k++) {
        pr_out[PREP * p + k] = pu.affine[k];
        pr_out[PREP * p + 4u + k] = pu.f_stored[k];
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
    let node = vec2<u32>(k / n, k % n);
    let base = src_slot(mg_step[0]);
    let dx = f(H_DX);
    let m = f(H_MASS);
    var mom = vec2<f32>(0.0);
    var mass = 0.0;
    var merge = merge_start(k);
    loop {
        let next = merge_next(&merge);
        if next.x == NONE {
            break;
        }
        let p = next.x;
        let i = next.y / 3u;
        let j = next.y % 3u;
        let s = stencil(pos(base + p));
        let d = vec2<f32>((f32(i) - s.fx.x) * dx, (f32(j) - s.fx.y) * dx);
        let w = weight(s, i, j);
        let a = vec4<f32>(pg_prep[PREP * p], pg_prep[PREP * p + 1u], pg_prep[PREP * p + 2u], pg_prep[PREP * p + 3u]);
        let mv = m * vel(base + p);
        let ad = vec2<f32>(a.x * d.x + a.y * d.y, a.z * d.x + a.w * d.y);
        mom = mom + w * (mv + ad);
        mass = mass + w * m;
    }
    let inv_m = 1.0 / (mass + 1e-10);
    var v = vec2<f32>(inv_m * mom.x, inv_m * mom.y);
    v.y = v.y - f(H_GSTEP);
    if walled(node.x, v.x) {
        v.x = 0.0;
    }
    if walled(node.y, v.y) {
        v.y = 0.0;
    }
    let at = GRID * k;
    pg_grid[at] = mom.x;
    pg_grid[at + 1u] = mom.y;
    pg_grid[at + 2u] = mass;
    pg_grid[at + 3u] = v.x;
    pg_grid[at + 4u] = v.y;
}

fn node_v(s: Stencil, i: u32, j: u32) -> vec2<f32> {
    let at = GRID * ((s.base.x + i) * info[H_GRID] + s.base.y + j);
    return vec2<f32>(gp_grid[at + 3u], gp_grid[at + 4u]);
}

// Particle p's next state from the state at `src`, written at `dst`; whether it is finite
// and inside the grid.
fn advance(p: u32, src: u32, dst: u32) -> bool {
    let x = pos(src + p);
    let s = stencil(x);
    let inv_dx = f(H_INV_DX);
    var v = vec2<f32>(0.0);
    var c = vec4<f32>(0.0);
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            let d = vec2<f32>(f32(i) - s.fx.x, f32(j) - s.fx.y);
            let g = node_v(s, i, j);
            let w = weight(s, i, j);
            v = vec2<f32>(v.x + w * g.x, v.y + w * g.y);
            let w4 = 4.0 * w;
            c = vec4<f32>(
                c.x + w4 * (g.x * d.x) * inv_dx,
                c.y + w4 * (g.x * d.y) * inv_dx,
                c.z + w4 * (g.y * d.x) * inv_dx,
                c.w + w4 * (g.y * d.y) * inv_dx,
            );
        }
    }
    let dt = f(H_DT);
    let x1 = vec2<f32>(x.x + dt * v.x, x.y + dt * v.y);
    let at = STATE * (dst + p);
    let next = array<f32, 12>(
        x1.x, x1.y, v.x, v.y, c.x, c.y, c.z, c.w,
        gp_prep[PREP * p + 4u], gp_prep[PREP * p + 5u], gp_prep[PREP * p + 6u], gp_prep[PREP * p + 7u],
    );
    var ok = inside(x1);
    for (var e = 0u; e < STATE; e++) {
        state[at + e] = next[e];
        ok = ok && finite(next[e]);
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
    let node = vec2<u32>(k / n, k % n);
    let base = src_slot(mg_step[0]);
    let dt = f(H_DT);
    let inv_dx = f(H_INV_DX);
    var g = vec2<f32>(0.0);
    var merge = merge_start(k);
    loop {
        let next = merge_next(&merge);
        if next.x == NONE {
            break;
        }
        let p = next.x;
        let i = next.y / 3u;
        let j = next.y % 3u;
        let s = stencil(pos(base + p));
        let d = vec2<f32>(f32(i) - s.fx.x, f32(j) - s.fx.y);
        let w = weight(s, i, j);
        let at = STATE * p;
        let gv = vec2<f32>(nj_lam[at + 2u] + dt * nj_lam[at], nj_lam[at + 3u] + dt * nj_lam[at + 1u]);
        let along0 = nj_lam[at + 4u] * d.x + nj_lam[at + 5u] * d.y;
        let along1 = nj_lam[at + 6u] * d.x + nj_lam[at + 7u] * d.y;
        g.x = g.x + w * gv.x + 4.0 * w * inv_dx * along0;
        g.y = g.y + w * gv.y + 4.0 * w * inv_dx * along1;
    }
    let at = GRID * k;
    let mom = vec2<f32>(nj_grid[at], nj_grid[at + 1u]);
    let inv_m = 1.0 / (nj_grid[at + 2u] + 1e-10);
    if walled(node.x, inv_m * mom.x) {
        g.x = 0.0;
    }
    if walled(node.y, inv_m * mom.y - f(H_GSTEP)) {
        g.y = 0.0;
    }
    let g_inv = g.x * mom.x + g.y * mom.y;
    nj_gadj[4u * k] = inv_m * g.x;
    nj_gadj[4u * k + 1u] = inv_m * g.y;
    nj_gadj[4u * k + 2u] = -(g_inv * inv_m * inv_m);
}

// The cotangent of A through `polar`, given that of its result.
fn polar_adjoint(a: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
    let d = a.x * a.w - a.z * a.y;
    let reflect = d < 0.0;
    var p = a.x + a.w;
    var q = a.y - a.z;
    var gp = g.x + g.w;
    var gq = g.y - g.z;
    if reflect {
        p = a.x - a.w;
        q = a.y + a.z;
        gp = g.x - g.w;
        gq = g.y + g.z;
    }
    let rho2 = p * p + q * q;
    if rho2 == 0.0 {
        return vec4<f32>(0.0);
    }
    let rho = sqrt(rho2);
    let along = (p * gp + q * gq) / (rho2 * rho);
    let dp = gp / rho - p * along;
    let dq = gq / rho - q * along;
    if reflect {
        return vec4<f32>(dp, dq, dq, -dp);
    }
    return vec4<f32>(dp, dq, -dq, dp);
}

// The cotangents of C, F and the actuation from those of A and of the stored F.
struct PushedGrad {
    c: vec4<f32>,
    f: vec4<f32>,
    act: f32,
}

fn pushed_adjoint(c: vec4<f32>, fm: vec4<f32>, pu: Pushed, act: f32, driven: bool, g_a: vec4<f32>, g_fs: vec4<f32>) -> PushedGrad {
    let fnw = pu.f_new;
    let cof = vec4<f32>(fnw.w, -fnw.z, -fnw.y, fnw.x);
    var g_c = f(H_MASS) * g_a;
    let g_sigma = f(H_STRESS) * g_a;
    let j = pu.j;
    let g_s = g_sigma.x + g_sigma.w;
    // Actuation: σ[i][k] += F'[i][1] a F'[k][1].
    var g_act = 0.0;
    var g_col = vec2<f32>(0.0);
    if driven {
        g_act = g_act + g_sigma.x * fnw.y * fnw.y;
        g_act = g_act + g_sigma.y * fnw.y * fnw.w;
        g_col.x = act * ((g_sigma.x + g_sigma.x) * fnw.y + (g_sigma.y + g_sigma.z) * fnw.w);
        g_act = g_act + g_sigma.z * fnw.w * fnw.y;
        g_act = g_act + g_sigma.w * fnw.w * fnw.w;
        g_col.y = act * ((g_sigma.z + g_sigma.y) * fnw.y + (g_sigma.w + g_sigma.w) * fnw.w);
    }
    var g_fnew: vec4<f32>;
    if info[H_MATERIAL] != 1u {
        let two_mu = f(H_TWO_MU);
        let m2 = vec4<f32>(
            two_mu * (fnw.x - pu.r.x),
            two_mu * (fnw.y - pu.r.y),
            two_mu * (fnw.z - pu.r.z),
            two_mu * (fnw.w - pu.r.w),
        );
        // σ[i][j] = Σ_k M2[i][k] F'[j][k]; indices (row, column) as (x, y, z, w).
        let g_m2 = vec4<f32>(
            g_sigma.x * fnw.x + g_sigma.y * fnw.z,
            g_sigma.x * fnw.y + g_sigma.y * fnw.w,
            g_sigma.z * fnw.x + g_sigma.w * fnw.z,
            g_sigma.z * fnw.y + g_sigma.w * fnw.w,
        );
        g_fnew = vec4<f32>(
            g_sigma.x * m2.x + g_sigma.z * m2.z,
            g_sigma.x * m2.y + g_sigma.z * m2.w,
            g_sigma.y * m2.x + g_sigma.w * m2.z,
            g_sigma.y * m2.y + g_sigma.w * m2.w,
        );
        g_fnew = g_fnew + two_mu * g_m2;
        let g_r = -(two_mu * g_m2);
        let g_polar = polar_adjoint(fnw, g_r);
        let g_j = g_s * f(H_LAMBDA) * (2.0 * j - 1.0);
        g_fnew = g_fnew + g_polar + g_j * cof + g_fs;
    } else {
        let root = sqrt(j);
        let g_root = g_fs.x + g_fs.w;
        let g_j = g_s * f(H_LAMBDA) * (2.0 * j - 1.0) + g_root * 0.5 / root;
        g_fnew = g_j * cof;
    }
    g_fnew.y = g_fnew.y + g_col.x;
    g_fnew.w = g_fnew.w + g_col.y;
    if info[H_MATERIAL] == 2u {
        g_fnew = project_adjoint(pu.f_pushed, g_fnew);
    }
    let dt = f(H_DT);
    let m = vec4<f32>(1.0 + dt * c.x, dt * c.y, dt * c.z, 1.0 + dt * c.w);
    // g_M = g_F' Fᵀ, g_C += dt g_M, g_F = Mᵀ g_F'.
    let g_m = vec4<f32>(
        g_fnew.x * fm.x + g_fnew.y * fm.y,
        g_fnew.x * fm.z + g_fnew.y * fm.w,
        g_fnew.z * fm.x + g_fnew.w * fm.y,
        g_fnew.z * fm.z + g_fnew.w * fm.w,
    );
    g_c = g_c + dt * g_m;
    let g_f = vec4<f32>(
        m.x * g_fnew.x + m.z * g_fnew.z,
        m.x * g_fnew.y + m.z * g_fnew.w,
        m.y * g_fnew.x + m.w * g_fnew.z,
        m.y * g_fnew.y + m.w * g_fnew.w,
    );
    return PushedGrad(g_c, g_f, g_act);
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
    let x = pos(src);
    let s = stencil(x);
    let c = mat_at(STATE * src + 4u);
    let fm = mat_at(STATE * src + 8u);
    let act = adjoint_act(p, k_sub);
    let driven = actuated(p);
    let pu = pushed(c, fm, act, driven);
    let a = pu.affine;
    let mass = f(H_MASS);
    let mv = mass * vel(src);
    let dt = f(H_DT);
    let dx = f(H_DX);
    let inv_dx = f(H_INV_DX);
    let at = STATE * p;
    let gx = vec2<f32>(pj_lam[at], pj_lam[at + 1u]);
    let gv = vec2<f32>(pj_lam[at + 2u] + dt * gx.x, pj_lam[at + 3u] + dt * gx.y);
    let gc = vec4<f32>(pj_lam[at + 4u], pj_lam[at + 5u], pj_lam[at + 6u], pj_lam[at + 7u]);
    let g_fs = vec4<f32>(pj_lam[at + 8u], pj_lam[at + 9u], pj_lam[at + 10u], pj_lam[at + 11u]);
    var g_fx = vec2<f32>(0.0);
    var g_v = vec2<f32>(0.0);
    var g_a = vec4<f32>(0.0);
    for (var i = 0u; i < 3u; i++) {
        for (var j = 0u; j < 3u; j++) {
            let k = (s.base.x + i) * info[H_GRID] + s.base.y + j;
            let w = weight(s, i, j);
            let dw = vec2<f32>(s.dw0[i] * s.w1[j], s.w0[i] * s.dw1[j]);
            let e = vec2<f32>(f32(i) - s.fx.x, f32(j) - s.fx.y);
            let vn = vec2<f32>(pj_grid[GRID * k + 3u], pj_grid[GRID * k + 4u]);
            var c_term = 0.0;
            c_term = c_term + gc.x * vn.x * e.x + gc.y * vn.x * e.y;
            c_term = c_term + gc.z * vn.y * e.x + gc.w * vn.y * e.y;
            let vg = vn.x * gv.x + vn.y * gv.y;
            let d = vec2<f32>(e.x * dx, e.y * dx);
            let ad = vec2<f32>(a.x * d.x + a.y * d.y, a.z * d.x + a.w * d.y);
            let gm = vec2<f32>(pj_gadj[4u * k], pj_gadj[4u * k + 1u]);
            let pushed_w = gm.x * (mv.x + ad.x) + gm.y * (mv.y + ad.y) + pj_gadj[4u * k + 2u] * mass;
            for (var axis = 0u; axis < 2u; axis++) {
                let gc_col = vec2<f32>(gc[axis], gc[2u + axis]);
                let direct = -(4.0 * w * inv_dx) * (gc_col.x * vn.x + gc_col.y * vn.y);
                g_fx[axis] = g_fx[axis] + dw[axis] * (vg + 4.0 * inv_dx * c_term) + direct;
            }
            for (var axis = 0u; axis < 2u; axis++) {
                let a_col = vec2<f32>(a[axis], a[2u + axis]);
                let through_d = -(w * dx) * (a_col.x * gm.x + a_col.y * gm.y);
                g_fx[axis] = g_fx[axis] + dw[axis] * pushed_w + through_d;
                g_v[axis] = g_v[axis] + w * mass * gm[axis];
            }
            g_a = vec4<f32>(
                g_a.x + w * gm.x * d.x,
                g_a.y + w * gm.x * d.y,
                g_a.z + w * gm.y * d.x,
                g_a.w + w * gm.y * d.y,
            );
        }
    }
    let cf = pushed_adjoint(c, fm, pu, act, driven, g_a, g_fs);
    pj_gact[p] = cf.act;
    let out = array<f32, 12>(
        gx.x + g_fx.x * inv_dx, gx.y + g_fx.y * inv_dx, g_v.x, g_v.y,
        cf.c.x, cf.c.y, cf.c.z, cf.c.w, cf.f.x, cf.f.y, cf.f.z, cf.f.w,
    );
    let clip = f(H_CLIP);
    let clipping = clip < 3.0e38;
    for (var e = 0u; e < STATE; e++) {
        pj_lam[at + e] = select(out[e], clamp(out[e], -clip, clip), clipping);
    }
}

fn project_adjoint(a: vec4<f32>, g_out: vec4<f32>) -> vec4<f32> {
    let r = polar(a);
    let e = eigen(stretch_of(r, a));
    let lo = f(H_PLASTIC_LO);
    let hi = f(H_PLASTIC_HI);
    let c = vec2<f32>(clamp(e.l.x, lo, hi), clamp(e.l.y, lo, hi));
    let gm = spectral(e.cs, c);
    // out = R G: g_R = g_out Gᵀ, g_G = Rᵀ g_out.
    var g_r = vec4<f32>(
        g_out.x * gm.x + g_out.y * gm.y,
        g_out.x * gm.z + g_out.y * gm.w,
        g_out.z * gm.x + g_out.w * gm.y,
        g_out.z * gm.z + g_out.w * gm.w,
    );
    let g_g = vec4<f32>(
        r.x * g_out.x + r.z * g_out.z,
        r.x * g_out.y + r.z * g_out.w,
        r.y * g_out.x + r.w * g_out.z,
        r.y * g_out.y + r.w * g_out.w,
    );
    let off = 0.5 * (g_g.y + g_g.z);
    let sym = vec4<f32>(g_g.x, off, off, g_g.w);
    let v = vec4<f32>(e.cs.x, -e.cs.y, e.cs.y, e.cs.x);
    // m = Vᵀ sym V.
    var m = vec4<f32>(0.0);
    for (var i = 0u; i < 2u; i++) {
        for (var k = 0u; k < 2u; k++) {
            var acc = 0.0;
            for (var p = 0u; p < 2u; p++) {
                for (var q = 0u; q < 2u; q++) {
                    acc = acc + v[2u * p + i] * sym[2u * p + q] * v[2u * q + k];
                }
            }
            m[2u * i + k] = acc;
        }
    }
    let d0 = select(1.0, 0.0, e.l.x < lo || e.l.x > hi);
    let d1 = select(1.0, 0.0, e.l.y < lo || e.l.y > hi);
    let gap = e.l.x - e.l.y;
    var cross = 0.5 * (d0 + d1);
    if abs(gap) > 1e-6 {
        cross = (c.x - c.y) / gap;
    }
    let gamma = vec4<f32>(d0, cross, cross, d1);
    var g_s = vec4<f32>(0.0);
    for (var i = 0u; i < 2u; i++) {
        for (var k = 0u; k < 2u; k++) {
            var acc = 0.0;
            for (var p = 0u; p < 2u; p++) {
                for (var q = 0u; q < 2u; q++) {
                    acc = acc + v[2u * i + p] * gamma[2u * p + q] * m[2u * p + q] * v[2u * k + q];
                }
            }
            g_s[2u * i + k] = acc;
        }
    }
    var g_a = vec4<f32>(
        r.x * g_s.x + r.y * g_s.z,
        r.x * g_s.y + r.y * g_s.w,
        r.z * g_s.x + r.w * g_s.z,
        r.z * g_s.y + r.w * g_s.w,
    );
    g_r = g_r + vec4<f32>(
        a.x * g_s.x + a.y * g_s.y,
        a.x * g_s.z + a.y * g_s.w,
        a.z * g_s.x + a.w * g_s.y,
        a.z * g_s.z + a.w * g_s.w,
    );
    return g_a + polar_adjoint(a, g_r);
}
