#!/usr/bin/env python3
"""torch.topk on the shapes of gradflux's top_k bench (benches/select.rs), for ratios.

Times device kernels with CUDA events, the input already on the device, f32, sorted
output along the last axis. Writes one line per measurement to a TSV:

    torch<TAB>f32<TAB>{rows}x{n}k{k}<TAB>seconds per call<TAB>device name

Usage: python3 benches/peers/torch_top_k.py [--out bench-report/peers/torch_top_k.tsv]
                                            [--max-elements 1048576] [--reps 50]
"""

import argparse
import os
import sys
import time

SHAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "top_k_shapes.txt")


def shapes():
    with open(SHAPES_FILE) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    return [tuple(int(x) for x in row) for row in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-report/peers/torch_top_k.tsv")
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--max-elements", type=int, default=None,
                   help="skip larger inputs (default: none on CUDA, 2^20 on CPU)")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_top_k.py: PyTorch is not installed; no peer figures", file=sys.stderr)
        return 0
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else "CPU (torch)"
    limit = args.max_elements if args.max_elements is not None else (1 << 62 if cuda else 1 << 20)

    def seconds(x, k):
        for _ in range(3):
            torch.topk(x, k, dim=-1, sorted=True)
        if not cuda:
            t = time.perf_counter()
            for _ in range(args.reps):
                torch.topk(x, k, dim=-1, sorted=True)
            return (time.perf_counter() - t) / args.reps
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(args.reps):
            torch.topk(x, k, dim=-1, sorted=True)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / args.reps

    lines = []
    for rows, n, k in shapes():
        if rows * n > limit:
            continue
        x = torch.rand(rows, n, device=device) * 2 - 1
        s = seconds(x, k)
        lines.append(f"torch\tf32\t{rows}x{n}k{k}\t{s:.9g}\t{name}")
        print(f"torch topk {rows}x{n} k={k}: {s * 1e6:.1f} us, {rows * n / s / 1e9:.2f} Gelem/s")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
