#!/usr/bin/env python3
"""MLS-MPM 2D as gradflux's physics bench runs it (benches/physics.rs `mpm2d-` ids):
diffmpm_simple's formulas (fixed corotated, E = 100, dt = 3e-4, unit mass and volume,
g = 9.8, walls within 3 nodes) on a 128 x 128 grid, a block of side^2 particles spaced half
a cell from (0.1, 0.2) moving at (0.5, 0.5), 50 substeps; `fwd` times the rollout, `fwdbwd`
the rollout on a tape and the backward of sum(x_T) to the initial velocities. The
`mpm3d-` ids run the same formulas in 3D (40^3 particles on a 64^3 grid, 10 substeps), the
polar decomposition from an SVD (R = U Vᵀ) in each peer; Taichi's autodiff refuses its 3D
polar decomposition, so its 3D figures are forward only. In Taichi
(DiffTaichi's own kernels; CUDA where there is one, else every CPU thread), in Warp (the
same kernels written for Warp; CUDA where it finds a GPU, else its CPU backend) and in JAX
(the same formulas as array code, jit-compiled, the rollout a lax.scan, the backward
jax.grad of it; GPU where JAX has one). Taichi and Warp scatter with float atomics, JAX
with a scatter-add. Writes one line per measurement:

    tool<TAB>f32<TAB>id<TAB>seconds per call<TAB>device name

Usage: python3 benches/peers/physics_mpm.py [--out bench-report/peers/x.tsv] [--reps 3]
"""

import argparse
import os
import time

GRID = 128
STEPS = 50
SIDES = (90, 179)
DT = 3e-4
E = 100.0
GRAVITY = 9.8
BOUND = 3


def block(side):
    import numpy as np
    dx = 1.0 / GRID
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = np.stack([0.1 + 0.5 * dx * i.ravel(), 0.2 + 0.5 * dx * j.ravel()], axis=1)
    return x.astype(np.float32)


def timed(fn, reps):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def warp_rollout_timings(wp, device, kernels, dim, x0, steps, grid, reps):
    """Times Warp's MPM rollout (`fwd`) and its tape backward of sum(x_T) (`fwdbwd`) for the
    kernels (p2g, grid_op, g2p, total) of dimension `dim`, every substep's state kept."""
    import numpy as np
    p2g, grid_op, g2p, total = kernels
    vec, mat = (wp.vec2, wp.mat22) if dim == 2 else (wp.vec3, wp.mat33)
    n = x0.shape[0]
    cells = (grid,) * dim

    def arr(shape, dtype, value=None):
        a = wp.zeros(shape, dtype=dtype, device=device, requires_grad=True)
        if value is not None:
            a.assign(value)
        return a

    eye = np.broadcast_to(np.eye(dim, dtype=np.float32), (n, dim, dim)).copy()
    xs = [arr(n, vec, x0 if t == 0 else None) for t in range(steps + 1)]
    vs = [arr(n, vec, np.full((n, dim), 0.5, np.float32) if t == 0 else None) for t in range(steps + 1)]
    Cs = [arr(n, mat) for _ in range(steps + 1)]
    Fs = [arr(n, mat, eye if t == 0 else None) for t in range(steps + 1)]
    gvs = [arr(cells, vec) for _ in range(steps)]
    gms = [arr(cells, float) for _ in range(steps)]
    gouts = [arr(cells, vec) for _ in range(steps)]
    loss = arr(1, float)

    def rollout():
        for s in range(steps):
            gvs[s].zero_()
            gms[s].zero_()
            wp.launch(p2g, n, inputs=[xs[s], vs[s], Cs[s], Fs[s], Fs[s + 1], gvs[s], gms[s]], device=device)
            wp.launch(grid_op, cells, inputs=[gvs[s], gms[s], gouts[s]], device=device)
            wp.launch(g2p, n, inputs=[xs[s], gouts[s], xs[s + 1], vs[s + 1], Cs[s + 1]], device=device)

    def forward():
        rollout()
        wp.synchronize_device(device)

    def backward():
        loss.zero_()
        tape = wp.Tape()
        with tape:
            rollout()
            wp.launch(total, n, inputs=[xs[steps], loss], device=device)
        tape.backward(loss)
        wp.synchronize_device(device)
        tape.zero()

    return [(kind, timed(fn, reps)) for kind, fn in (("fwd", forward), ("fwdbwd", backward))]


def taichi_lines(reps):
    import taichi as ti
    # CUDA where there is one, else every CPU thread (not a software Vulkan adapter).
    ti.init(arch=ti.cuda, default_fp=ti.f32, offline_cache=True, log_level=ti.ERROR)
    if ti.lang.impl.current_cfg().arch != ti.cuda:
        ti.reset()
        ti.init(arch=ti.cpu, default_fp=ti.f32, offline_cache=True, log_level=ti.ERROR)
    arch = ti.lang.impl.current_cfg().arch
    device = "CPU" if arch == ti.cpu else "CUDA"
    out = []
    dx, inv_dx = 1.0 / GRID, float(GRID)
    for side in SIDES:
        n = side * side
        x = ti.Vector.field(2, float, shape=(STEPS + 1, n), needs_grad=True)
        v = ti.Vector.field(2, float, shape=(STEPS + 1, n), needs_grad=True)
        C = ti.Matrix.field(2, 2, float, shape=(STEPS + 1, n), needs_grad=True)
        F = ti.Matrix.field(2, 2, float, shape=(STEPS + 1, n), needs_grad=True)
        gv_in = ti.Vector.field(2, float, shape=(STEPS, GRID, GRID), needs_grad=True)
        gv_out = ti.Vector.field(2, float, shape=(STEPS, GRID, GRID), needs_grad=True)
        gm = ti.field(float, shape=(STEPS, GRID, GRID), needs_grad=True)
        loss = ti.field(float, shape=(), needs_grad=True)

        @ti.kernel
        def p2g(f: ti.i32):
            for p in range(n):
                base = ti.cast(x[f, p] * inv_dx - 0.5, ti.i32)
                fx = x[f, p] * inv_dx - ti.cast(base, ti.i32)
                w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
                new_F = (ti.Matrix.diag(dim=2, val=1) + DT * C[f, p]) @ F[f, p]
                F[f + 1, p] = new_F
                J = new_F.determinant()
                r, s = ti.polar_decompose(new_F)
                cauchy = 2 * E * (new_F - r) @ new_F.transpose() + ti.Matrix.diag(2, E * (J - 1) * J)
                stress = -(DT * 4 * inv_dx * inv_dx) * cauchy
                affine = stress + C[f, p]
                for i in ti.static(range(3)):
                    for j in ti.static(range(3)):
                        offset = ti.Vector([i, j])
                        dpos = (ti.cast(ti.Vector([i, j]), float) - fx) * dx
                        weight = w[i][0] * w[j][1]
                        gv_in[f, base + offset] += weight * (v[f, p] + affine @ dpos)
                        gm[f, base + offset] += weight

        @ti.kernel
        def grid_op(f: ti.i32):
            for i, j in ti.ndrange(GRID, GRID):
                inv_m = 1 / (gm[f, i, j] + 1e-10)
                v_out = inv_m * gv_in[f, i, j]
                v_out[1] -= DT * GRAVITY
                if i < BOUND and v_out[0] < 0:
                    v_out[0] = 0
                if i > GRID - BOUND and v_out[0] > 0:
                    v_out[0] = 0
                if j < BOUND and v_out[1] < 0:
                    v_out[1] = 0
                if j > GRID - BOUND and v_out[1] > 0:
                    v_out[1] = 0
                gv_out[f, i, j] = v_out

        @ti.kernel
        def g2p(f: ti.i32):
            for p in range(n):
                base = ti.cast(x[f, p] * inv_dx - 0.5, ti.i32)
                fx = x[f, p] * inv_dx - ti.cast(base, float)
                w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
                new_v = ti.Vector([0.0, 0.0])
                new_C = ti.Matrix([[0.0, 0.0], [0.0, 0.0]])
                for i in ti.static(range(3)):
                    for j in ti.static(range(3)):
                        dpos = ti.cast(ti.Vector([i, j]), float) - fx
                        g_v = gv_out[f, base[0] + i, base[1] + j]
                        weight = w[i][0] * w[j][1]
                        new_v += weight * g_v
                        new_C += 4 * weight * g_v.outer_product(dpos) * inv_dx
                v[f + 1, p] = new_v
                x[f + 1, p] = x[f, p] + DT * v[f + 1, p]
                C[f + 1, p] = new_C

        @ti.kernel
        def total():
            for p in range(n):
                loss[None] += x[STEPS, p][0] + x[STEPS, p][1]

        import numpy as np
        x0 = block(side)
        x.from_numpy(np.broadcast_to(x0, (STEPS + 1, n, 2)).copy())
        v.from_numpy(np.full((STEPS + 1, n, 2), 0.5, np.float32))
        F.from_numpy(np.broadcast_to(np.eye(2, dtype=np.float32), (STEPS + 1, n, 2, 2)).copy())

        def steps():
            for s in range(STEPS):
                p2g(s)
                grid_op(s)
                g2p(s)

        def forward():
            gv_in.fill(0)
            gm.fill(0)
            steps()
            ti.sync()

        def backward():
            gv_in.fill(0)
            gm.fill(0)
            loss[None] = 0
            with ti.ad.Tape(loss=loss):
                steps()
                total()
            ti.sync()

        for kind, fn in (("fwd", forward), ("fwdbwd", backward)):
            s = timed(fn, reps)
            out.append((f"taichi-{device.lower()}", f"mpm2d-{kind}-n{n}g{GRID}t{STEPS}", s, f"{device} (taichi {'.'.join(map(str, ti.__version__))})"))
    return out


def warp_lines(reps):
    import warp as wp

    wp.config.quiet = True
    wp.init()
    device = "cuda" if wp.is_cuda_available() else "cpu"
    name = wp.get_device(device).name if device == "cuda" else "CPU"
    dx, inv_dx = 1.0 / GRID, float(GRID)

    @wp.func
    def polar(a: wp.mat22):
        d = a[0, 0] * a[1, 1] - a[1, 0] * a[0, 1]
        b = wp.mat22(a[0, 0] + a[1, 1], a[0, 1] - a[1, 0], a[1, 0] - a[0, 1], a[1, 1] + a[0, 0])
        if d < 0.0:
            b = wp.mat22(a[0, 0] - a[1, 1], a[0, 1] + a[1, 0], a[1, 0] + a[0, 1], a[1, 1] - a[0, 0])
        k = 1.0 / wp.sqrt(wp.abs(b[0, 0] * b[1, 1] - b[1, 0] * b[0, 1]))
        return b * k

    @wp.kernel
    def p2g(x: wp.array(dtype=wp.vec2), v: wp.array(dtype=wp.vec2), C: wp.array(dtype=wp.mat22),
            F: wp.array(dtype=wp.mat22), F_out: wp.array(dtype=wp.mat22),
            gv: wp.array2d(dtype=wp.vec2), gm: wp.array2d(dtype=float)):
        p = wp.tid()
        xs = x[p] * inv_dx - wp.vec2(0.5, 0.5)
        bx, by = int(xs[0]), int(xs[1])
        fx = x[p] * inv_dx - wp.vec2(float(bx), float(by))
        w0 = wp.vec3(0.5 * (1.5 - fx[0]) * (1.5 - fx[0]), 0.75 - (fx[0] - 1.0) * (fx[0] - 1.0), 0.5 * (fx[0] - 0.5) * (fx[0] - 0.5))
        w1 = wp.vec3(0.5 * (1.5 - fx[1]) * (1.5 - fx[1]), 0.75 - (fx[1] - 1.0) * (fx[1] - 1.0), 0.5 * (fx[1] - 0.5) * (fx[1] - 0.5))
        new_F = (wp.identity(n=2, dtype=float) + DT * C[p]) @ F[p]
        F_out[p] = new_F
        J = wp.determinant(new_F)
        r = polar(new_F)
        cauchy = 2.0 * E * (new_F - r) @ wp.transpose(new_F) + wp.identity(n=2, dtype=float) * (E * (J - 1.0) * J)
        affine = -(DT * 4.0 * inv_dx * inv_dx) * cauchy + C[p]
        for i in range(3):
            for j in range(3):
                dpos = (wp.vec2(float(i), float(j)) - fx) * dx
                weight = w0[i] * w1[j]
                wp.atomic_add(gv, bx + i, by + j, weight * (v[p] + affine @ dpos))
                wp.atomic_add(gm, bx + i, by + j, weight)

    @wp.kernel
    def grid_op(gv: wp.array2d(dtype=wp.vec2), gm: wp.array2d(dtype=float), out: wp.array2d(dtype=wp.vec2)):
        i, j = wp.tid()
        inv_m = 1.0 / (gm[i, j] + 1e-10)
        vo = inv_m * gv[i, j]
        vo = wp.vec2(vo[0], vo[1] - DT * GRAVITY)
        if i < BOUND and vo[0] < 0.0:
            vo = wp.vec2(0.0, vo[1])
        if i > GRID - BOUND and vo[0] > 0.0:
            vo = wp.vec2(0.0, vo[1])
        if j < BOUND and vo[1] < 0.0:
            vo = wp.vec2(vo[0], 0.0)
        if j > GRID - BOUND and vo[1] > 0.0:
            vo = wp.vec2(vo[0], 0.0)
        out[i, j] = vo

    @wp.kernel
    def g2p(x: wp.array(dtype=wp.vec2), gv: wp.array2d(dtype=wp.vec2), x_out: wp.array(dtype=wp.vec2),
            v_out: wp.array(dtype=wp.vec2), C_out: wp.array(dtype=wp.mat22)):
        p = wp.tid()
        xs = x[p] * inv_dx - wp.vec2(0.5, 0.5)
        bx, by = int(xs[0]), int(xs[1])
        fx = x[p] * inv_dx - wp.vec2(float(bx), float(by))
        w0 = wp.vec3(0.5 * (1.5 - fx[0]) * (1.5 - fx[0]), 0.75 - (fx[0] - 1.0) * (fx[0] - 1.0), 0.5 * (fx[0] - 0.5) * (fx[0] - 0.5))
        w1 = wp.vec3(0.5 * (1.5 - fx[1]) * (1.5 - fx[1]), 0.75 - (fx[1] - 1.0) * (fx[1] - 1.0), 0.5 * (fx[1] - 0.5) * (fx[1] - 0.5))
        nv = wp.vec2(0.0, 0.0)
        nc = wp.mat22(0.0, 0.0, 0.0, 0.0)
        for i in range(3):
            for j in range(3):
                dpos = wp.vec2(float(i), float(j)) - fx
                g = gv[bx + i, by + j]
                weight = w0[i] * w1[j]
                nv = nv + weight * g
                nc = nc + 4.0 * weight * wp.outer(g, dpos) * inv_dx
        v_out[p] = nv
        x_out[p] = x[p] + DT * nv
        C_out[p] = nc

    @wp.kernel
    def total(x: wp.array(dtype=wp.vec2), out: wp.array(dtype=float)):
        p = wp.tid()
        wp.atomic_add(out, 0, x[p][0] + x[p][1])

    out = []
    for side in SIDES:
        n = side * side
        kernels = (p2g, grid_op, g2p, total)
        for kind, t in warp_rollout_timings(wp, device, kernels, 2, block(side), STEPS, GRID, reps):
            out.append((f"warp-{device}", f"mpm2d-{kind}-n{n}g{GRID}t{STEPS}", t, f"{name} (warp {wp.__version__})"))
    return out


def jax_lines(reps):
    import jax
    import jax.numpy as jnp

    dev = jax.devices()[0]
    name = "CPU" if dev.platform == "cpu" else dev.device_kind
    dx, inv_dx = 1.0 / GRID, float(GRID)
    eye = jnp.eye(2, dtype=jnp.float32)
    node = jnp.arange(GRID)
    ii, jj = jnp.meshgrid(node, node, indexing="ij")

    def polar(a):
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 1, 0] * a[:, 0, 1]
        b_pos = jnp.stack([jnp.stack([a[:, 0, 0] + a[:, 1, 1], a[:, 0, 1] - a[:, 1, 0]], -1),
                           jnp.stack([a[:, 1, 0] - a[:, 0, 1], a[:, 1, 1] + a[:, 0, 0]], -1)], -2)
        b_neg = jnp.stack([jnp.stack([a[:, 0, 0] - a[:, 1, 1], a[:, 0, 1] + a[:, 1, 0]], -1),
                           jnp.stack([a[:, 1, 0] + a[:, 0, 1], a[:, 1, 1] - a[:, 0, 0]], -1)], -2)
        b = jnp.where((det < 0)[:, None, None], b_neg, b_pos)
        k = 1.0 / jnp.sqrt(jnp.abs(b[:, 0, 0] * b[:, 1, 1] - b[:, 1, 0] * b[:, 0, 1]))
        return b * k[:, None, None]

    def substep(state, _):
        x, v, C, F = state
        base = (x * inv_dx - 0.5).astype(jnp.int32)
        fx = x * inv_dx - base.astype(jnp.float32)
        w = jnp.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2], 1)
        new_F = (eye + DT * C) @ F
        J = new_F[:, 0, 0] * new_F[:, 1, 1] - new_F[:, 0, 1] * new_F[:, 1, 0]
        r = polar(new_F)
        cauchy = 2 * E * (new_F - r) @ jnp.swapaxes(new_F, 1, 2) + (E * (J - 1) * J)[:, None, None] * eye
        affine = -(DT * 4 * inv_dx * inv_dx) * cauchy + C
        gv = jnp.zeros((GRID, GRID, 2), jnp.float32)
        gm = jnp.zeros((GRID, GRID), jnp.float32)
        for o in range(9):
            i, j = o // 3, o % 3
            dpos = (jnp.array([i, j], jnp.float32) - fx) * dx
            weight = w[:, i, 0] * w[:, j, 1]
            mom = weight[:, None] * (v + jnp.einsum("pij,pj->pi", affine, dpos))
            gv = gv.at[base[:, 0] + i, base[:, 1] + j].add(mom)
            gm = gm.at[base[:, 0] + i, base[:, 1] + j].add(weight)
        vo = gv / (gm + 1e-10)[..., None]
        vo = vo.at[..., 1].add(-DT * GRAVITY)
        vo = vo.at[..., 0].set(jnp.where(((ii < BOUND) & (vo[..., 0] < 0)) | ((ii > GRID - BOUND) & (vo[..., 0] > 0)), 0.0, vo[..., 0]))
        vo = vo.at[..., 1].set(jnp.where(((jj < BOUND) & (vo[..., 1] < 0)) | ((jj > GRID - BOUND) & (vo[..., 1] > 0)), 0.0, vo[..., 1]))
        new_v = jnp.zeros_like(v)
        new_C = jnp.zeros_like(C)
        for o in range(9):
            i, j = o // 3, o % 3
            dpos = jnp.array([i, j], jnp.float32) - fx
            g = vo[base[:, 0] + i, base[:, 1] + j]
            weight = w[:, i, 0] * w[:, j, 1]
            new_v = new_v + weight[:, None] * g
            new_C = new_C + 4 * inv_dx * weight[:, None, None] * jnp.einsum("pi,pj->pij", g, dpos)
        return (x + DT * new_v, new_v, new_C, new_F), None

    def rollout(x0, v0):
        n = x0.shape[0]
        state = (x0, v0, jnp.zeros((n, 2, 2), jnp.float32), jnp.broadcast_to(eye, (n, 2, 2)))
        final, _ = jax.lax.scan(substep, state, None, length=STEPS)
        return final[0]

    forward = jax.jit(rollout)
    backward = jax.jit(jax.grad(lambda x0, v0: jnp.sum(rollout(x0, v0)), argnums=1))
    out = []
    for side in SIDES:
        n = side * side
        x0 = jnp.asarray(block(side))
        v0 = jnp.full((n, 2), 0.5, jnp.float32)
        for kind, fn in (("fwd", forward), ("fwdbwd", backward)):
            s = timed(lambda: fn(x0, v0).block_until_ready(), reps)
            out.append((f"jax-{dev.platform}", f"mpm2d-{kind}-n{n}g{GRID}t{STEPS}", s, f"{name} (jax {jax.__version__})"))
    return out


SIDE3, GRID3, STEPS3 = 40, 64, 10


def block3():
    import numpy as np
    dx = 1.0 / GRID3
    i, j, k = np.meshgrid(np.arange(SIDE3), np.arange(SIDE3), np.arange(SIDE3), indexing="ij")
    x = np.stack([0.15 + 0.5 * dx * i.ravel(), 0.2 + 0.5 * dx * j.ravel(), 0.15 + 0.5 * dx * k.ravel()], axis=1)
    return x.astype(np.float32)


def taichi3d_lines(reps):
    """The `mpm3d-` ids: the 2D kernels on a 27-node stencil (DiffTaichi's diffmpm3d form),
    40^3 particles on a 64^3 grid, 10 substeps."""
    import numpy as np
    import taichi as ti
    ti.init(arch=ti.cuda, default_fp=ti.f32, offline_cache=True, log_level=ti.ERROR)
    if ti.lang.impl.current_cfg().arch != ti.cuda:
        ti.reset()
        ti.init(arch=ti.cpu, default_fp=ti.f32, offline_cache=True, log_level=ti.ERROR)
    arch = ti.lang.impl.current_cfg().arch
    device = "CPU" if arch == ti.cpu else "CUDA"
    n, G, S = SIDE3 ** 3, GRID3, STEPS3
    dx, inv_dx = 1.0 / G, float(G)
    x = ti.Vector.field(3, float, shape=(S + 1, n), needs_grad=True)
    v = ti.Vector.field(3, float, shape=(S + 1, n), needs_grad=True)
    C = ti.Matrix.field(3, 3, float, shape=(S + 1, n), needs_grad=True)
    F = ti.Matrix.field(3, 3, float, shape=(S + 1, n), needs_grad=True)
    gv_in = ti.Vector.field(3, float, shape=(S, G, G, G), needs_grad=True)
    gv_out = ti.Vector.field(3, float, shape=(S, G, G, G), needs_grad=True)
    gm = ti.field(float, shape=(S, G, G, G), needs_grad=True)
    loss = ti.field(float, shape=(), needs_grad=True)

    @ti.kernel
    def p2g(f: ti.i32):
        for p in range(n):
            base = ti.cast(x[f, p] * inv_dx - 0.5, ti.i32)
            fx = x[f, p] * inv_dx - ti.cast(base, ti.i32)
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
            new_F = (ti.Matrix.identity(float, 3) + DT * C[f, p]) @ F[f, p]
            F[f + 1, p] = new_F
            J = new_F.determinant()
            r, s = ti.polar_decompose(new_F)
            cauchy = 2 * E * (new_F - r) @ new_F.transpose() + ti.Matrix.identity(float, 3) * (E * (J - 1) * J)
            affine = -(DT * 4 * inv_dx * inv_dx) * cauchy + C[f, p]
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                offset = ti.Vector([i, j, k])
                dpos = (ti.cast(offset, float) - fx) * dx
                weight = w[i][0] * w[j][1] * w[k][2]
                gv_in[f, base + offset] += weight * (v[f, p] + affine @ dpos)
                gm[f, base + offset] += weight

    @ti.kernel
    def grid_op(f: ti.i32):
        for i, j, k in ti.ndrange(G, G, G):
            inv_m = 1 / (gm[f, i, j, k] + 1e-10)
            vo = inv_m * gv_in[f, i, j, k]
            vo[1] -= DT * GRAVITY
            for a in ti.static(range(3)):
                idx = [i, j, k][a]
                if idx < BOUND and vo[a] < 0:
                    vo[a] = 0
                if idx > G - BOUND and vo[a] > 0:
                    vo[a] = 0
            gv_out[f, i, j, k] = vo

    @ti.kernel
    def g2p(f: ti.i32):
        for p in range(n):
            base = ti.cast(x[f, p] * inv_dx - 0.5, ti.i32)
            fx = x[f, p] * inv_dx - ti.cast(base, float)
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
            new_v = ti.Vector([0.0, 0.0, 0.0])
            new_C = ti.Matrix.zero(float, 3, 3)
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                dpos = ti.cast(ti.Vector([i, j, k]), float) - fx
                g_v = gv_out[f, base[0] + i, base[1] + j, base[2] + k]
                weight = w[i][0] * w[j][1] * w[k][2]
                new_v += weight * g_v
                new_C += 4 * weight * g_v.outer_product(dpos) * inv_dx
            v[f + 1, p] = new_v
            x[f + 1, p] = x[f, p] + DT * v[f + 1, p]
            C[f + 1, p] = new_C

    @ti.kernel
    def total():
        for p in range(n):
            loss[None] += x[S, p][0] + x[S, p][1] + x[S, p][2]

    x.from_numpy(np.broadcast_to(block3(), (S + 1, n, 3)).copy())
    v.from_numpy(np.full((S + 1, n, 3), 0.5, np.float32))
    F.from_numpy(np.broadcast_to(np.eye(3, dtype=np.float32), (S + 1, n, 3, 3)).copy())

    def steps():
        for t in range(S):
            p2g(t)
            grid_op(t)
            g2p(t)

    def forward():
        gv_in.fill(0)
        gm.fill(0)
        steps()
        ti.sync()

    def backward():
        gv_in.fill(0)
        gm.fill(0)
        loss[None] = 0
        with ti.ad.Tape(loss=loss):
            steps()
            total()
        ti.sync()

    out = []
    for kind, fn in (("fwd", forward), ("fwdbwd", backward)):
        try:
            s = timed(fn, reps)
        except RuntimeError as e:
            # Taichi's autodiff refuses its own 3D polar decomposition (its SVD's loops).
            print(f"physics_mpm: taichi mpm3d-{kind}: {str(e).splitlines()[0]}; no figure")
            continue
        out.append((f"taichi-{device.lower()}", f"mpm3d-{kind}-n{n}g{G}t{S}", s, f"{device} (taichi {'.'.join(map(str, ti.__version__))})"))
    return out


def warp3d_lines(reps):
    """The `mpm3d-` ids in Warp: the 2D Warp kernels on a 27-node stencil, the polar
    decomposition R = U Vᵀ from `wp.svd3` (as Taichi's `polar_decompose`)."""
    import warp as wp

    wp.config.quiet = True
    wp.init()
    device = "cuda" if wp.is_cuda_available() else "cpu"
    name = wp.get_device(device).name if device == "cuda" else "CPU"
    n, G, S = SIDE3 ** 3, GRID3, STEPS3
    dx, inv_dx = 1.0 / G, float(G)

    @wp.func
    def weights(f: float):
        return wp.vec3(0.5 * (1.5 - f) * (1.5 - f), 0.75 - (f - 1.0) * (f - 1.0), 0.5 * (f - 0.5) * (f - 0.5))

    @wp.kernel
    def p2g(x: wp.array(dtype=wp.vec3), v: wp.array(dtype=wp.vec3), C: wp.array(dtype=wp.mat33),
            F: wp.array(dtype=wp.mat33), F_out: wp.array(dtype=wp.mat33),
            gv: wp.array3d(dtype=wp.vec3), gm: wp.array3d(dtype=float)):
        p = wp.tid()
        xs = x[p] * inv_dx - wp.vec3(0.5, 0.5, 0.5)
        bx, by, bz = int(xs[0]), int(xs[1]), int(xs[2])
        fx = x[p] * inv_dx - wp.vec3(float(bx), float(by), float(bz))
        w0, w1, w2 = weights(fx[0]), weights(fx[1]), weights(fx[2])
        new_F = (wp.identity(n=3, dtype=float) + DT * C[p]) @ F[p]
        F_out[p] = new_F
        J = wp.determinant(new_F)
        U = wp.mat33()
        sig = wp.vec3()
        V = wp.mat33()
        wp.svd3(new_F, U, sig, V)
        r = U @ wp.transpose(V)
        cauchy = 2.0 * E * (new_F - r) @ wp.transpose(new_F) + wp.identity(n=3, dtype=float) * (E * (J - 1.0) * J)
        affine = -(DT * 4.0 * inv_dx * inv_dx) * cauchy + C[p]
        for i in range(3):
            for j in range(3):
                for k in range(3):
                    dpos = (wp.vec3(float(i), float(j), float(k)) - fx) * dx
                    weight = w0[i] * w1[j] * w2[k]
                    wp.atomic_add(gv, bx + i, by + j, bz + k, weight * (v[p] + affine @ dpos))
                    wp.atomic_add(gm, bx + i, by + j, bz + k, weight)

    @wp.kernel
    def grid_op(gv: wp.array3d(dtype=wp.vec3), gm: wp.array3d(dtype=float), out: wp.array3d(dtype=wp.vec3)):
        i, j, k = wp.tid()
        inv_m = 1.0 / (gm[i, j, k] + 1e-10)
        vo = inv_m * gv[i, j, k]
        vo = wp.vec3(vo[0], vo[1] - DT * GRAVITY, vo[2])
        idx = wp.vec3i(i, j, k)
        for a in range(3):
            if (idx[a] < BOUND and vo[a] < 0.0) or (idx[a] > G - BOUND and vo[a] > 0.0):
                vo = wp.vec3(wp.where(a == 0, 0.0, vo[0]), wp.where(a == 1, 0.0, vo[1]), wp.where(a == 2, 0.0, vo[2]))
        out[i, j, k] = vo

    @wp.kernel
    def g2p(x: wp.array(dtype=wp.vec3), gv: wp.array3d(dtype=wp.vec3), x_out: wp.array(dtype=wp.vec3),
            v_out: wp.array(dtype=wp.vec3), C_out: wp.array(dtype=wp.mat33)):
        p = wp.tid()
        xs = x[p] * inv_dx - wp.vec3(0.5, 0.5, 0.5)
        bx, by, bz = int(xs[0]), int(xs[1]), int(xs[2])
        fx = x[p] * inv_dx - wp.vec3(float(bx), float(by), float(bz))
        w0, w1, w2 = weights(fx[0]), weights(fx[1]), weights(fx[2])
        nv = wp.vec3(0.0, 0.0, 0.0)
        nc = wp.mat33()
        for i in range(3):
            for j in range(3):
                for k in range(3):
                    dpos = wp.vec3(float(i), float(j), float(k)) - fx
                    g = gv[bx + i, by + j, bz + k]
                    weight = w0[i] * w1[j] * w2[k]
                    nv = nv + weight * g
                    nc = nc + 4.0 * weight * wp.outer(g, dpos) * inv_dx
        v_out[p] = nv
        x_out[p] = x[p] + DT * nv
        C_out[p] = nc

    @wp.kernel
    def total(x: wp.array(dtype=wp.vec3), out: wp.array(dtype=float)):
        p = wp.tid()
        wp.atomic_add(out, 0, x[p][0] + x[p][1] + x[p][2])

    out = []
    for kind, t in warp_rollout_timings(wp, device, (p2g, grid_op, g2p, total), 3, block3(), S, G, reps):
        out.append((f"warp-{device}", f"mpm3d-{kind}-n{n}g{G}t{S}", t, f"{name} (warp {wp.__version__})"))
    return out


def jax3d_lines(reps):
    """The `mpm3d-` ids in JAX: the 2D array code on a 27-node stencil, the polar
    decomposition R = U Vᵀ from `jnp.linalg.svd`."""
    import jax
    import jax.numpy as jnp

    dev = jax.devices()[0]
    name = "CPU" if dev.platform == "cpu" else dev.device_kind
    n, G, S = SIDE3 ** 3, GRID3, STEPS3
    dx, inv_dx = 1.0 / G, float(G)
    eye = jnp.eye(3, dtype=jnp.float32)
    node = jnp.arange(G)
    at = jnp.stack(jnp.meshgrid(node, node, node, indexing="ij"), -1)
    offsets = [(i, j, k) for i in range(3) for j in range(3) for k in range(3)]

    def substep(state, _):
        x, v, C, F = state
        base = (x * inv_dx - 0.5).astype(jnp.int32)
        fx = x * inv_dx - base.astype(jnp.float32)
        w = jnp.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2], 1)
        new_F = (eye + DT * C) @ F
        J = jnp.linalg.det(new_F)
        u, _, vt = jnp.linalg.svd(new_F)
        r = u @ vt
        cauchy = 2 * E * (new_F - r) @ jnp.swapaxes(new_F, 1, 2) + (E * (J - 1) * J)[:, None, None] * eye
        affine = -(DT * 4 * inv_dx * inv_dx) * cauchy + C
        gv = jnp.zeros((G, G, G, 3), jnp.float32)
        gm = jnp.zeros((G, G, G), jnp.float32)
        for i, j, k in offsets:
            dpos = (jnp.array([i, j, k], jnp.float32) - fx) * dx
            weight = w[:, i, 0] * w[:, j, 1] * w[:, k, 2]
            mom = weight[:, None] * (v + jnp.einsum("pij,pj->pi", affine, dpos))
            gv = gv.at[base[:, 0] + i, base[:, 1] + j, base[:, 2] + k].add(mom)
            gm = gm.at[base[:, 0] + i, base[:, 1] + j, base[:, 2] + k].add(weight)
        vo = gv / (gm + 1e-10)[..., None]
        vo = vo.at[..., 1].add(-DT * GRAVITY)
        stop = ((at < BOUND) & (vo < 0)) | ((at > G - BOUND) & (vo > 0))
        vo = jnp.where(stop, 0.0, vo)
        new_v = jnp.zeros_like(v)
        new_C = jnp.zeros_like(C)
        for i, j, k in offsets:
            dpos = jnp.array([i, j, k], jnp.float32) - fx
            g = vo[base[:, 0] + i, base[:, 1] + j, base[:, 2] + k]
            weight = w[:, i, 0] * w[:, j, 1] * w[:, k, 2]
            new_v = new_v + weight[:, None] * g
            new_C = new_C + 4 * inv_dx * weight[:, None, None] * jnp.einsum("pi,pj->pij", g, dpos)
        return (x + DT * new_v, new_v, new_C, new_F), None

    def rollout(x0, v0):
        state = (x0, v0, jnp.zeros((n, 3, 3), jnp.float32), jnp.broadcast_to(eye, (n, 3, 3)))
        final, _ = jax.lax.scan(substep, state, None, length=S)
        return final[0]

    forward = jax.jit(rollout)
    backward = jax.jit(jax.grad(lambda x0, v0: jnp.sum(rollout(x0, v0)), argnums=1))
    x0 = jnp.asarray(block3())
    v0 = jnp.full((n, 3), 0.5, jnp.float32)
    out = []
    for kind, fn in (("fwd", forward), ("fwdbwd", backward)):
        s = timed(lambda: fn(x0, v0).block_until_ready(), reps)
        out.append((f"jax-{dev.platform}", f"mpm3d-{kind}-n{n}g{G}t{S}", s, f"{name} (jax {jax.__version__})"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-report/peers/physics_mpm.tsv")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    lines = []
    peers = (
        ("taichi", taichi_lines),
        ("warp", warp_lines),
        ("jax", jax_lines),
        ("taichi", taichi3d_lines),
        ("warp", warp3d_lines),
        ("jax", jax3d_lines),
    )
    for tool, fn in peers:
        try:
            lines += fn(args.reps)
        except ImportError as e:
            print(f"physics_mpm: {tool} is not installed ({e}); no {tool} figures")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        for tool, ident, seconds, device in lines:
            f.write(f"{tool}\tf32\t{ident}\t{seconds:.6e}\t{device}\n")
            print(f"{tool}\t{ident}\t{seconds * 1e3:.3f} ms\t{device}")


if __name__ == "__main__":
    main()
