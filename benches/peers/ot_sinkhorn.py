#!/usr/bin/env python3
"""Sinkhorn in POT (numpy and torch backends) and OTT-JAX on the shapes of gradflux's
sinkhorn bench (benches/ot.rs), for ratios.

Each call runs 10 log-domain iterations (no early stop) between n and m uniform points of
[0, 1)^d with uniform weights, squared Euclidean cost and eps = 0.05 * d / 6, as the bench
does: `dense-` ids over a precomputed cost matrix, `online-` ids with the cost computed on
the fly (OTT-JAX's batched PointCloud; POT has no online solver). Device arrays are
resident; GPU work is synchronised before the clock stops. Writes one line per
measurement to a TSV:

    tool<TAB>f32<TAB>{dense|online}-n{n}m{m}d{d}<TAB>seconds per call<TAB>device name

GeomLoss is left out: its loop follows its own eps-scaling schedule, so a fixed number of
iterations cannot be asked of it and its time per call is not comparable.

Usage: python3 benches/peers/ot_sinkhorn.py [--out bench-report/peers/ot_sinkhorn.tsv]
                                            [--reps 5] [--max-dense 4000000]
"""

import argparse
import os
import sys
import time

SHAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sinkhorn_shapes.txt")
ITERATIONS = 10


def shapes():
    with open(SHAPES_FILE) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    return [tuple(int(x) for x in row) for row in rows]


def timed(fn, reps, sync=lambda r: r):
    sync(fn())
    t = time.perf_counter()
    for _ in range(reps):
        r = fn()
    sync(r)
    return (time.perf_counter() - t) / reps


def pot_numpy(n, m, d, reps, lines):
    import numpy as np
    import ot
    rng = np.random.default_rng(0)
    x, y = rng.random((n, d), dtype=np.float32), rng.random((m, d), dtype=np.float32)
    a, b = np.full(n, 1 / n, np.float32), np.full(m, 1 / m, np.float32)
    cost = ot.dist(x, y)
    eps = 0.05 * d / 6
    s = timed(lambda: ot.bregman.sinkhorn_log(a, b, cost, eps, numItermax=ITERATIONS, stopThr=0), reps)
    lines.append(("pot-numpy", f"dense-n{n}m{m}d{d}", s, "CPU (numpy)"))


def pot_torch(n, m, d, reps, lines):
    import torch
    import ot
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "CPU (torch)"
    x, y = torch.rand(n, d, device=dev), torch.rand(m, d, device=dev)
    a, b = torch.full((n,), 1 / n, device=dev), torch.full((m,), 1 / m, device=dev)
    cost = torch.cdist(x, y) ** 2
    eps = 0.05 * d / 6
    sync = (lambda r: torch.cuda.synchronize()) if dev == "cuda" else (lambda r: r)
    s = timed(lambda: ot.bregman.sinkhorn_log(a, b, cost, eps, numItermax=ITERATIONS, stopThr=0), reps, sync)
    lines.append(("pot-torch", f"dense-n{n}m{m}d{d}", s, name))


def ott_jax(n, m, d, reps, lines, dense):
    import jax
    import jax.numpy as jnp
    from ott.geometry import geometry, pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn
    name = jax.devices()[0].device_kind
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x, y = jax.random.uniform(kx, (n, d)), jax.random.uniform(ky, (m, d))
    eps = 0.05 * d / 6
    if dense:
        geom = geometry.Geometry(cost_matrix=pointcloud.PointCloud(x, y).cost_matrix, epsilon=eps)
    else:
        geom = pointcloud.PointCloud(x, y, epsilon=eps, batch_size=min(n, m, 4096))
    solver = sinkhorn.Sinkhorn(max_iterations=ITERATIONS, min_iterations=ITERATIONS,
                               inner_iterations=ITERATIONS, threshold=0.0, lse_mode=True)
    run = jax.jit(lambda g: solver(linear_problem.LinearProblem(g)).f)
    s = timed(lambda: run(geom), reps, lambda r: r.block_until_ready())
    kind = "dense" if dense else "online"
    lines.append(("ott-jax", f"{kind}-n{n}m{m}d{d}", s, name))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-report/peers/ot_sinkhorn.tsv")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--max-dense", type=int, default=None,
                   help="largest n*m with a dense cost (default 4e6 on CPU, 1e8 on GPU)")
    args = p.parse_args()
    try:
        import torch
        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    max_dense = args.max_dense or (10 ** 8 if gpu else 4 * 10 ** 6)
    max_online = 10 ** 10 if gpu else 4 * 10 ** 6
    lines = []
    for n, m, d in shapes():
        runs = []
        if n * m <= max_dense:
            runs += [("pot-numpy", lambda: pot_numpy(n, m, d, args.reps, lines))] if n * m <= 4 * 10 ** 6 else []
            runs += [("pot-torch", lambda: pot_torch(n, m, d, args.reps, lines))]
            runs += [("ott-jax dense", lambda: ott_jax(n, m, d, args.reps, lines, True))]
        if n * m <= max_online:
            runs += [("ott-jax online", lambda: ott_jax(n, m, d, args.reps, lines, False))]
        for tool, run in runs:
            try:
                run()
                t, ident, s, name = lines[-1]
                print(f"{t} {ident}: {s * 1e3:.3f} ms per {ITERATIONS} iterations on {name}")
            except ImportError as e:
                print(f"ot_sinkhorn.py: {tool} not installed ({e}); no figures from it", file=sys.stderr)
            except Exception as e:  # a peer that fails one shape (memory) keeps the rest
                print(f"ot_sinkhorn.py: {tool} failed on n={n} m={m} d={d}: {e}", file=sys.stderr)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("".join(f"{t}\tf32\t{i}\t{s:.9g}\t{name}\n" for t, i, s, name in lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
