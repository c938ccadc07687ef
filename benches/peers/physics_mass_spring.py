#!/usr/bin/env python3
"""The mass-spring rollout of gradflux's physics bench (benches/physics.rs) in Warp 1.8's
warp.sim (semi-implicit Euler, the integrator gradflux reproduces bit for bit), for ratios:
a 40 x 60 cloth lattice (axis and face-diagonal springs, 9 302 of them), k = 1e3, c = 1,
unit masses, gravity, the bottom row 1 mm into a ground with ke 1e4, kd 10, kf 10, mu 0.5;
100 substeps of 1e-4 s. `springs-fwd-` ids time the rollout, `springs-fwdbwd-` ids the
rollout recorded on a wp.Tape and its backward for the gradient of sum(x_T). Warp runs on
CUDA where it finds a GPU, on its CPU backend otherwise. Writes one line per measurement:

    tool<TAB>f32<TAB>id<TAB>seconds per call<TAB>device name

Usage: python3 benches/peers/physics_mass_spring.py [--out bench-report/peers/x.tsv] [--reps 5]
"""

import argparse
import os
import time

COUNTS = (40, 60)
STEPS = 100
DT = 1e-4


def lattice():
    nx, ny = COUNTS
    positions = [(0.01 * (i % nx), -0.001 + 0.01 * (i // nx), 0.0) for i in range(nx * ny)]
    springs = []
    for i in range(nx * ny):
        cx, cy = i % nx, i // nx
        for ox, oy in ((1, 0), (1, 1), (1, -1), (0, 1)):
            x, y = cx + ox, cy + oy
            if 0 <= x < nx and 0 <= y < ny:
                springs.append((i, y * nx + x))
    return positions, springs


def warp_lines(reps):
    import numpy as np
    import warp as wp
    import warp.sim

    wp.config.quiet = True
    wp.init()
    device = "cuda" if wp.is_cuda_available() else "cpu"
    name = wp.get_device(device).name if device == "cuda" else "CPU"
    builder = wp.sim.ModelBuilder(up_vector=(0.0, 1.0, 0.0))
    positions, springs = lattice()
    for p in positions:
        builder.add_particle(p, (0.0, 0.0, 0.0), 1.0, radius=0.0)
    for i, j in springs:
        builder.add_spring(i, j, 1.0e3, 1.0, 0.0)
    builder.set_ground_plane(offset=0.0)
    model = builder.finalize(device, requires_grad=True)
    model.ground = True
    model.particle_max_radius = 0.0
    model.soft_contact_ke, model.soft_contact_kd = 1.0e4, 10.0
    model.soft_contact_kf, model.soft_contact_mu = 10.0, 0.5
    integrator = wp.sim.SemiImplicitIntegrator()
    states = [model.state(requires_grad=True) for _ in range(STEPS + 1)]
    loss = wp.zeros(1, dtype=float, device=device, requires_grad=True)

    @wp.kernel
    def total(q: wp.array(dtype=wp.vec3), out: wp.array(dtype=float)):
        i = wp.tid()
        wp.atomic_add(out, 0, q[i][0] + q[i][1])

    def rollout():
        for t in range(STEPS):
            states[t].clear_forces()
            integrator.simulate(model, states[t], states[t + 1], DT)

    def forward():
        rollout()
        wp.synchronize_device(device)

    def backward():
        loss.zero_()
        tape = wp.Tape()
        with tape:
            rollout()
            wp.launch(total, dim=model.particle_count, inputs=[states[STEPS].particle_q], outputs=[loss], device=device)
        tape.backward(loss)
        wp.synchronize_device(device)
        tape.zero()

    n = COUNTS[0] * COUNTS[1]
    out = []
    for kind, fn in (("fwd", forward), ("fwdbwd", backward)):
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        s = (time.perf_counter() - t) / reps
        out.append((f"warp-{device}", f"springs-{kind}-n{n}s{len(springs)}t{STEPS}", s, f"{name} (warp {wp.__version__})"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-report/peers/physics_mass_spring.tsv")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    try:
        lines = warp_lines(args.reps)
    except ImportError as e:
        print(f"physics_mass_spring: warp is not installed ({e}); pip install warp-lang==1.8.1")
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        for tool, ident, seconds, device in lines:
            f.write(f"{tool}\tf32\t{ident}\t{seconds:.6e}\t{device}\n")
            print(f"{tool}\t{ident}\t{seconds * 1e3:.3f} ms\t{device}")


if __name__ == "__main__":
    main()
