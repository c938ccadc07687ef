#!/usr/bin/env python3
"""torch.matmul on the shapes of gradflux's matmul bench (benches/matmul.rs), for ratios.

Times device kernels with CUDA events, operands already on the device, f32 with TF32 off
(so it is the same arithmetic as gradflux's f32 path) and f16. Writes one line per
measurement to a TSV that `cargo xtask bench` folds into its report:

    torch<TAB>f32<TAB>4096x4096x4096<TAB>seconds per product<TAB>device name

Usage: python3 benches/peers/torch_matmul.py [--out bench-report/peers/torch_matmul.tsv]
                                             [--max-flop 3e8] [--reps 20]
"""

import argparse
import os
import sys

# The shapes benches/matmul.rs times, (m, k, n) per line.
SHAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "matmul_shapes.txt")


def shapes():
    with open(SHAPES_FILE) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    return [tuple(int(x) for x in row) for row in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-report/peers/torch_matmul.tsv")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument(
        "--max-flop",
        type=float,
        default=None,
        help="skip larger shapes (default: none on CUDA, 3e8 on CPU)",
    )
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_matmul.py: PyTorch is not installed; no peer figures", file=sys.stderr)
        return 0

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else "CPU (torch)"
    max_flop = args.max_flop if args.max_flop is not None else (float("inf") if cuda else 3e8)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def seconds(a, b):
        for _ in range(3):
            torch.matmul(a, b)
        if not cuda:
            import time

            t = time.perf_counter()
            for _ in range(args.reps):
                torch.matmul(a, b)
            return (time.perf_counter() - t) / args.reps
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(args.reps):
            torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / args.reps

    lines = []
    for dtype_name, dtype in [("f32", torch.float32), ("f16", torch.float16)]:
        if dtype == torch.float16 and not cuda:
            continue
        for m, k, n in shapes():
            flop = 2.0 * m * k * n
            if flop > max_flop:
                continue
            a = torch.rand(m, k, device=device, dtype=dtype) * 2 - 1
            b = torch.rand(k, n, device=device, dtype=dtype) * 2 - 1
            s = seconds(a, b)
            lines.append(f"torch\t{dtype_name}\t{m}x{k}x{n}\t{s:.9g}\t{name}")
            print(f"torch {dtype_name} {m}x{k}x{n}: {s * 1e6:.1f} us, {flop / s / 1e12:.2f} TFLOP/s")
            del a, b
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
