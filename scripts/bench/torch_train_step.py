#!/usr/bin/python3
"""PyTorch side of scripts/bench_train_step.sh: the same ResNet-20 training step as
benchmarks/bench_train.cpp (BM_resnet20_train_step), timed the same way.

  torch_train_step.py step    --threads 2 --steps 25 --warmup 5 --out FILE.json
      per-step wall times (ms) of: opt.zero_grad(); out = model(x); loss = F.cross_entropy(out, y);
      loss.backward(); opt.step()  with the ResNet-20 of scripts/torch_ref/models.py, batch 256,
      1x28x28 N(0, 1) inputs, fixed labels, torch.optim.Adam(lr=1e-3, weight_decay=1e-4).
  torch_train_step.py profile --threads 2 --layer-iters 20 --profile-steps 5 --out FILE.json
      forward/backward medians of the same layer shapes as the C++ per-layer profile, the Adam
      step / zero_grad / loss, and torch.profiler's self CPU time per op and step.

Run with /usr/bin/python3 (Debian's python3-torch). The thread counts are set right after
importing torch, before any tensor exists.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# scripts/bench/torch_common.py and results_common.py, next to this file: shared with torch_sqakd_step.py
import torch_common as tc  # noqa: E402
from results_common import median  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("mode", choices=["step", "profile"])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=25, help="timed training steps (step mode)")
ap.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
ap.add_argument("--layer-iters", type=int, default=20, help="timed iterations per layer (profile mode)")
ap.add_argument("--profile-steps", type=int, default=5, help="steps under torch.profiler (profile mode)")
ap.add_argument("--top", type=int, default=15, help="ops kept from the profiler")
ap.add_argument("--out", required=True)
args = ap.parse_args()

torch = tc.import_torch(args.threads)

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, tc.TORCH_REF)
import models  # noqa: E402  scripts/torch_ref/models.py: the reference ResNet-20

BATCH = 256


def make_step():
    torch.manual_seed(20)
    model = models.resnet20(in_channels=1, num_classes=10).train()
    x = torch.randn(BATCH, 1, 28, 28)
    y = torch.randint(0, 10, (BATCH,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss

    return model, x, y, opt, step


def info():
    return tc.info(with_baseline=True)  # write_results.py takes the baseline's name from here


def run_step():
    _, _, _, _, step = make_step()
    ms, loss_first, loss_last = tc.time_steps(step, args.warmup, args.steps)
    return dict(info(), step_ms=ms, median_ms=median(ms, 0.0), warmup_steps=args.warmup,
                loss_first=loss_first, loss_last=loss_last)


# ---------------------------------------------------------------------------------------------
# Per-layer profile: the shapes of benchmarks/bench_train.cpp, same names and counts.

def layer_table():
    B = BATCH
    opt_a = models._option_a  # the reference option-A shortcut
    L = models.LambdaLayer
    return [
        # name, module, input shape, need_dx, count per step
        ("conv3x3_1_16_28x28_stem", nn.Conv2d(1, 16, 3, 1, 1, bias=False), (B, 1, 28, 28), False, 1),
        ("conv3x3_16_16_28x28", nn.Conv2d(16, 16, 3, 1, 1, bias=False), (B, 16, 28, 28), True, 6),
        ("conv3x3_16_32_s2_28to14", nn.Conv2d(16, 32, 3, 2, 1, bias=False), (B, 16, 28, 28), True, 1),
        ("conv3x3_32_32_14x14", nn.Conv2d(32, 32, 3, 1, 1, bias=False), (B, 32, 14, 14), True, 5),
        ("conv3x3_32_64_s2_14to7", nn.Conv2d(32, 64, 3, 2, 1, bias=False), (B, 32, 14, 14), True, 1),
        ("conv3x3_64_64_7x7", nn.Conv2d(64, 64, 3, 1, 1, bias=False), (B, 64, 7, 7), True, 5),
        ("bn_16_28x28", nn.BatchNorm2d(16), (B, 16, 28, 28), True, 7),
        ("bn_32_14x14", nn.BatchNorm2d(32), (B, 32, 14, 14), True, 6),
        ("bn_64_7x7", nn.BatchNorm2d(64), (B, 64, 7, 7), True, 6),
        ("relu_16_28x28", L(F.relu), (B, 16, 28, 28), True, 4),
        ("relu_32_14x14", L(F.relu), (B, 32, 14, 14), True, 3),
        ("relu_64_7x7", L(F.relu), (B, 64, 7, 7), True, 3),
        ("shortcut_a_16_32_28to14", opt_a(16, 32), (B, 16, 28, 28), True, 1),
        ("shortcut_a_32_64_14to7", opt_a(32, 64), (B, 32, 14, 14), True, 1),
        # BasicBlock.forward's own work: F.relu(out + shortcut(x)), here with out = shortcut(x) = x
        ("residual_add_16_28x28", L(lambda x: F.relu(x + x)), (B, 16, 28, 28), True, 3),
        ("residual_add_32_14x14", L(lambda x: F.relu(x + x)), (B, 32, 14, 14), True, 3),
        ("residual_add_64_7x7", L(lambda x: F.relu(x + x)), (B, 64, 7, 7), True, 3),
        ("global_avg_pool_64_7x7", L(lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)), (B, 64, 7, 7), True, 1),
        ("bn1d_64", nn.BatchNorm1d(64), (B, 64), True, 1),
        ("fc_64_10", nn.Linear(64, 10), (B, 64), True, 1),
    ]


def time_layer(m, shape, need_dx, iters, warmup=3):
    torch.manual_seed(7)
    m.train()
    x = torch.randn(*shape).requires_grad_(need_dx)
    with torch.no_grad():
        dy = 1e-2 * torch.randn_like(m(x))
    fwd, bwd = [], []
    for i in range(warmup + iters):
        x.grad = None  # dx goes on to the previous layer in the real step, it is not accumulated
        t0 = time.perf_counter()
        y = m(x)
        t1 = time.perf_counter()
        y.backward(dy)
        t2 = time.perf_counter()
        if i >= warmup:
            fwd.append(1e3 * (t1 - t0))
            bwd.append(1e3 * (t2 - t1))
    return median(fwd, 0.0), median(bwd, 0.0)


def time_parts(iters, warmup=3):
    model, x, y, opt, step = make_step()
    step()  # gradients and Adam state exist, as in the steady state
    out = {}

    def timed(fn):
        ts = []
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                ts.append(1e3 * (time.perf_counter() - t0))
        return median(ts, 0.0)

    out["adam"] = (0.0, timed(opt.step))
    out["zero_grad"] = (0.0, timed(opt.zero_grad))
    logits = model(x).detach().requires_grad_(True)

    def ce():
        logits.grad = None
        F.cross_entropy(logits, y).backward()

    out["cross_entropy"] = (timed(ce), 0.0)
    return out


def run_profile():
    layers = []
    for name, m, shape, need_dx, count in layer_table():
        f, b = time_layer(m, shape, need_dx, args.layer_iters)
        layers.append(dict(name=name, fwd_ms=f, bwd_ms=b, count=count, per_step_ms=count * (f + b)))
    for name, (f, b) in time_parts(args.layer_iters).items():
        layers.append(dict(name=name, fwd_ms=f, bwd_ms=b, count=1, per_step_ms=f + b))

    from torch.profiler import ProfilerActivity, profile

    _, _, _, _, step = make_step()
    for _ in range(max(args.warmup, 2)):
        step()
    P = max(args.profile_steps, 1)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(P):
            step()
    profiled_step_ms = 1e3 * (time.perf_counter() - t0) / P

    def rows(events, n, with_shapes=False):
        ev = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
        out = []
        for e in ev:
            r = dict(op=e.key, self_cpu_ms_per_step=e.self_cpu_time_total / 1e3 / P, calls_per_step=e.count / P)
            if with_shapes:
                r["input_shapes"] = [list(s) for s in e.input_shapes if s]
            out.append(r)
        return out

    ka = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in ka) / 1e3 / P
    ops = [dict(r, share=r["self_cpu_ms_per_step"] / total_self if total_self else 0) for r in rows(ka, args.top)]
    conv = [e for e in prof.key_averages(group_by_input_shape=True) if "conv" in e.key]
    return dict(info(), layers=layers, profile_steps=P, profiled_step_ms=profiled_step_ms,
                total_self_cpu_ms_per_step=total_self, top_ops=ops,
                conv_ops_by_shape=rows(conv, 2 * args.top, with_shapes=True),
                conv_backend="oneDNN (aten::mkldnn_convolution)"
                if any(e.key == "aten::mkldnn_convolution" for e in ka) else
                "native (%s)" % ", ".join(sorted({e.key for e in ka if "conv" in e.key})))


def main():
    tc.write_json(args.out, run_step() if args.mode == "step" else run_profile())


if __name__ == "__main__":
    main()
