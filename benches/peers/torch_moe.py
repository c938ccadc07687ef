#!/usr/bin/env python3
"""An eager PyTorch MoE layer and router on the shapes of gradflux's moe bench
(benches/moe.rs, shapes in benches/moe_shapes.txt), for ratios.

Routing: softmax over experts, torch.topk, renormalisation and the per-expert histogram
(torch.bincount), the peer of gradflux's fused routing kernel (ids prefixed fused-); then
the same plus the stable grouping of choices by expert (torch.argsort, stable).
Layer: router, softmax, topk and renormalisation (no histogram or sort: the eager layer
finds each expert's tokens with torch.where), then for each expert its tokens' relu(x w1) w2, scaled
by the gates and summed back with index_add_ (the usual eager implementation), forward
and forward+backward. Times device work with CUDA events, f32, TF32 off. Writes one line
per measurement to a TSV:

    torch<TAB>f32<TAB>{id}<TAB>seconds per call<TAB>device name

where id is [fused-]T{t}E{e}k{k} (routing) or fwd-/fwdbwd-T{t}D{d}H{h}E{e}k{k} (layer), as the
gradflux bench names them.

Usage: python3 benches/peers/torch_moe.py [--out bench-report/peers/torch_moe.tsv] [--reps 20]
"""

import argparse
import os
import sys
import time

SHAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "moe_shapes.txt")


def shapes():
    with open(SHAPES_FILE) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    return [(row[0], tuple(int(x) for x in row[1:])) for row in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-report/peers/torch_moe.tsv")
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_moe.py: PyTorch is not installed; no peer figures", file=sys.stderr)
        return 0
    cuda = torch.cuda.is_available()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else "CPU (torch)"

    def seconds(fn):
        for _ in range(3):
            fn()
        if not cuda:
            t = time.perf_counter()
            for _ in range(args.reps):
                fn()
            return (time.perf_counter() - t) / args.reps
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(args.reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / args.reps

    def gates_of(logits, k):
        probs = torch.softmax(logits, dim=-1)
        gates, experts = torch.topk(probs, k, dim=-1)
        return gates / gates.sum(dim=-1, keepdim=True), experts

    def route_only(logits, e, k):
        gates, experts = gates_of(logits, k)
        return gates, experts, torch.bincount(experts.reshape(-1), minlength=e)

    def route(logits, e, k):
        gates, experts, counts = route_only(logits, e, k)
        return gates, experts, counts, torch.argsort(experts.reshape(-1), stable=True)

    def layer(x, wr, w1, w2, e, k):
        gates, experts = gates_of(x @ wr, k)
        out = torch.zeros_like(x)
        for ex in range(e):
            tok, slot = torch.where(experts == ex)
            if tok.numel() == 0:
                continue
            y = torch.relu(x[tok] @ w1[ex]) @ w2[ex]
            out = out.index_add(0, tok, y * gates[tok, slot].unsqueeze(1))
        return out

    lines = []
    for kind, dims in shapes():
        if kind == "routing":
            t, e, k = dims
            logits = torch.rand(t, e, device=device) * 2 - 1
            ident = f"T{t}E{e}k{k}"
            for prefix, fn in (("fused-", route_only), ("", route)):
                s = seconds(lambda: fn(logits, e, k))
                lines.append(f"torch\tf32\t{prefix}{ident}\t{s:.9g}\t{name}")
                print(f"torch routing {prefix}{ident}: {s * 1e6:.1f} us")
            continue
        t, d, h, e, k = dims
        if not cuda and t * d * h > 1 << 26:
            continue
        params = [torch.randn(*s, device=device) * 0.05 for s in ((t, d), (d, e), (e, d, h), (e, h, d))]
        x, wr, w1, w2 = [p.requires_grad_() for p in params]
        ident = f"T{t}D{d}H{h}E{e}k{k}"

        def forward():
            with torch.no_grad():
                layer(x, wr, w1, w2, e, k)

        def forward_backward():
            for p_ in (x, wr, w1, w2):
                p_.grad = None
            layer(x, wr, w1, w2, e, k).sum().backward()

        for prefix, fn in (("fwd-", forward), ("fwdbwd-", forward_backward)):
            s = seconds(fn)
            lines.append(f"torch\tf32\t{prefix}{ident}\t{s:.9g}\t{name}")
            print(f"torch layer {prefix}{ident}: {s * 1e3:.3f} ms, {t / s / 1e6:.2f} Mtoken/s")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
