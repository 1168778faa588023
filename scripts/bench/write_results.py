#!/usr/bin/python3
"""Last stage of scripts/bench_train_step.sh: merges the Google Benchmark JSON of
sqakd_bench_train and the JSON of torch_train_step.py into

  benchmarks/results/train_step_resnet20.json   records in the shared DESIGN.md format
  benchmarks/results/train_step_resnet20.md     the tables made from them

Both are written atomically (temporary file + rename). Standard library only.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# scripts/bench/results_common.py, next to this file: what this writer shares with write_sqakd_results.py
from results_common import (  # noqa: E402
    add_run_arguments, commit, f1, load, machine, median, quantile,
    utc_now, write_atomic, write_records)

BATCH = 256

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--sqakd-step", nargs="+", required=True, help="Google Benchmark JSON, one per round")
ap.add_argument("--sqakd-steplog", help="per-step times of all rounds (--step_log of sqakd_bench_train)")
ap.add_argument("--sqakd-layers", required=True, help="Google Benchmark JSON of the layer/ benchmarks")
ap.add_argument("--torch-step", nargs="+", required=True, help="torch_train_step.py step JSON, one per round")
ap.add_argument("--torch-profile", required=True, help="torch_train_step.py profile JSON")
add_run_arguments(ap)
args = ap.parse_args()


# --- sqakd ---------------------------------------------------------------------------------------

def gb_benchmarks(doc, prefix):
    return [b for b in doc["benchmarks"] if b["name"].startswith(prefix)]


step_runs = [gb_benchmarks(load(p), "BM_resnet20_train_step")[0] for p in args.sqakd_step]
sq_round_medians = [b["median_ms"] for b in step_runs]
sq_steps = []
if args.sqakd_steplog and os.path.exists(args.sqakd_steplog):
    with open(args.sqakd_steplog) as f:
        sq_steps = [float(l.split()[1]) for l in f if l.startswith("resnet20_train_step ")]
sq_median = median(sq_steps) if sq_steps else median(sq_round_medians, 0.0)
gb_context = load(args.sqakd_step[0])["context"]

layer_doc = load(args.sqakd_layers)
sq_layers = {}
for b in gb_benchmarks(layer_doc, "layer/"):
    name = b["name"].split("/")[1]
    sq_layers[name] = dict(fwd_ms=b["fwd_ms"], bwd_ms=b["bwd_ms"], count=int(b["count"]),
                           per_step_ms=b["per_step_ms"], label=b.get("label", ""),
                           iterations=b["iterations"])

# --- PyTorch -------------------------------------------------------------------------------------

torch_runs = [load(p) for p in args.torch_step]
tp = load(args.torch_profile)
t_steps = [t for r in torch_runs for t in r["step_ms"]]
t_round_medians = [r["median_ms"] for r in torch_runs]
t_median = median(t_steps, 0.0)
t_layers = {l["name"]: l for l in tp["layers"]}
baseline = torch_runs[0]["baseline"]

# --- records -------------------------------------------------------------------------------------

mach, isa = machine()
common = dict(kind="speed", model="resnet20", dataset="fashion-mnist", input_shape=[1, 28, 28],
              data="fixed N(0,1) inputs of Fashion-MNIST's shape, fixed random labels",
              method="fp", w_bits=32, a_bits=32, batch=BATCH, baseline=baseline,
              threads=args.threads, machine=mach, isa=isa, command=args.command, commit=commit(args.root),
              date=utc_now())
step_desc = ("nn::zero_grad, forward (train mode), distill::cross_entropy, backward(need_dx=false), "
             "optim::adam step (lr 1e-3, L2 weight decay 1e-4)")
torch_desc = ("opt.zero_grad(), model(x), F.cross_entropy, loss.backward(), opt.step() with "
              "torch.optim.Adam(lr=1e-3, weight_decay=1e-4); ResNet-20 of scripts/torch_ref/models.py")

n_sq = len(sq_steps) if sq_steps else sum(int(b["iterations"]) for b in step_runs)
records = []
records.append(dict(
    common, metric="train_step_ms", value=sq_median, unit="ms", baseline_value=t_median,
    ratio=t_median / sq_median if sq_median else None,
    ratio_meaning="baseline_value / value: >1 means sqakd is faster",
    step=step_desc, baseline_step=torch_desc,
    rounds=len(step_runs), steps_timed=n_sq, baseline_steps_timed=len(t_steps),
    warmup_steps=int(step_runs[0]["warmup_steps"]), baseline_warmup_steps=torch_runs[0]["warmup_steps"],
    p10_ms=quantile(sq_steps, 0.1) if sq_steps else None, p90_ms=quantile(sq_steps, 0.9) if sq_steps else None,
    baseline_p10_ms=quantile(t_steps, 0.1, 0.0), baseline_p90_ms=quantile(t_steps, 0.9, 0.0),
    round_medians_ms=sq_round_medians, baseline_round_medians_ms=t_round_medians,
    loss_last=step_runs[-1].get("loss_last"), baseline_loss_last=torch_runs[-1]["loss_last"],
    torch_version=torch_runs[0]["torch_version"], torch_threads=torch_runs[0]["num_threads"],
    torch_interop_threads=torch_runs[0]["num_interop_threads"], torch_conv_backend=tp["conv_backend"],
    load_average_before=args.load_before,
    compiler=gb_context.get("sqakd_compiler", ""),
    benchmark_library_build=gb_context.get("library_build_type", ""),
))
sq_ips = 1e3 * BATCH / sq_median if sq_median else 0.0
t_ips = 1e3 * BATCH / t_median if t_median else 0.0
records.append(dict(
    common, metric="images_per_second", value=sq_ips, unit="images/s", baseline_value=t_ips,
    ratio=sq_ips / t_ips if t_ips else None,
    ratio_meaning="value / baseline_value: >1 means sqakd is faster",
    derived_from="batch 256 / median train_step_ms"))

order = list(sq_layers)
for name in order:
    s = sq_layers[name]
    t = t_layers.get(name)
    v = s["fwd_ms"] + s["bwd_ms"]
    bv = (t["fwd_ms"] + t["bwd_ms"]) if t else None
    records.append(dict(
        common, metric="layer_ms", layer=name, shape=s["label"], value=v, unit="ms",
        fwd_ms=s["fwd_ms"], bwd_ms=s["bwd_ms"], count_per_step=s["count"], per_step_ms=s["per_step_ms"],
        share_of_step=s["per_step_ms"] / sq_median if sq_median else None,
        baseline_value=bv, baseline_fwd_ms=t["fwd_ms"] if t else None,
        baseline_bwd_ms=t["bwd_ms"] if t else None, baseline_per_step_ms=t["per_step_ms"] if t else None,
        ratio=(bv / v) if (bv and v) else None,
        ratio_meaning="baseline_value / value (forward + backward): >1 means sqakd is faster",
        iterations=int(s["iterations"])))
records[0]["baseline_profile"] = dict(
    tool="torch.profiler, CPU activity, self CPU time", steps=tp["profile_steps"],
    profiled_step_ms=tp["profiled_step_ms"], total_self_cpu_ms_per_step=tp["total_self_cpu_ms_per_step"],
    top_ops=tp["top_ops"], conv_ops_by_shape=tp["conv_ops_by_shape"])


write_records(args.out_json, records)

# --- Markdown ------------------------------------------------------------------------------------


def f2(x):
    return "-" if x is None else ("%.2f" % x if x >= 0.1 or x == 0 else "%.3f" % x)


r0 = records[0]
md = []
md.append("# ResNet-20 training step: sqakd vs PyTorch (CPU, %d threads)\n" % args.threads)
md.append("One training step of ResNet-20 (`nn::models::resnet20<1, 10>` / `scripts/torch_ref/models.py`) "
          "at batch %d on 1x28x28 inputs (Fashion-MNIST's shape; fixed random data and labels): %s. "
          "PyTorch: %s.\n" % (BATCH, step_desc, torch_desc))
md.append("Medians over all timed steps of %d alternating rounds (sqakd, PyTorch, sqakd, PyTorch, ...), "
          "%d (sqakd) and %d (PyTorch) timed steps in all, after %d untimed warm-up steps per round and "
          "side. Wall-clock time per step.\n"
          % (r0["rounds"], r0["steps_timed"], r0["baseline_steps_timed"], r0["warmup_steps"]))
md.append("| metric | sqakd | %s | ratio (>1: sqakd faster) |" % baseline)
md.append("|---|---:|---:|---:|")
md.append("| train step, median (ms) | %s | %s | %.2f |" % (f1(sq_median), f1(t_median), r0["ratio"]))
md.append("| train step, p10 - p90 (ms) | %s - %s | %s - %s | |" % (
    f1(r0["p10_ms"]), f1(r0["p90_ms"]), f1(r0["baseline_p10_ms"]), f1(r0["baseline_p90_ms"])))
md.append("| round medians (ms) | %s | %s | |" % (
    ", ".join(f1(x) for x in sq_round_medians), ", ".join(f1(x) for x in t_round_medians)))
md.append("| images / s | %.0f | %.0f | %.2f |" % (sq_ips, t_ips, records[1]["ratio"]))
md.append("")
md.append("Machine: %s, ISA %s; threads: OMP_NUM_THREADS=%d for sqakd (OpenMP + OpenBLAS-openmp), "
          "torch.set_num_threads(%d) and set_num_interop_threads(%d) for PyTorch (convolutions: %s). "
          "sqakd built by %s. Load average before the run: %s. Commit %s, %s.\n"
          % (mach, isa, args.threads, r0["torch_threads"], r0["torch_interop_threads"],
             tp["conv_backend"], r0["compiler"] or "?", args.load_before or "?", r0["commit"], r0["date"]))

md.append("## Where the time goes: per-layer profile\n")
md.append("Each distinct layer shape of the step timed alone at batch %d (train mode; forward, then "
          "backward with the step's need_dx), median of %d iterations after 3 warm-up ones; the PyTorch "
          "columns time the same shapes with torch.nn modules (autograd on). \"ms/step\" = occurrences "
          "per step x (fwd + bwd); \"%% of step\" relates it to sqakd's measured step median. Layers timed "
          "alone run with warm caches, so the sum is an estimate of the step, not a decomposition.\n"
          % (BATCH, records[2]["iterations"] if len(records) > 2 else 0))
md.append("| layer | input | per step | sqakd fwd ms | sqakd bwd ms | sqakd ms/step | % of step | "
          "PyTorch fwd ms | PyTorch bwd ms | PyTorch ms/step | ratio (>1: sqakd faster) |")
md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
sum_sq = sum_t = 0.0
for r in records[2:]:
    sum_sq += r["per_step_ms"]
    sum_t += r["baseline_per_step_ms"] or 0
    shape = re.sub(r",? ?x\d+ per step$", "", r["shape"])
    md.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["layer"], shape, r["count_per_step"], f2(r["fwd_ms"]), f2(r["bwd_ms"]), f1(r["per_step_ms"]),
        "%.1f%%" % (100 * r["share_of_step"]) if r["share_of_step"] is not None else "-",
        f2(r["baseline_fwd_ms"]), f2(r["baseline_bwd_ms"]), f1(r["baseline_per_step_ms"]),
        "%.2f" % r["ratio"] if r["ratio"] else "-"))
md.append("| **sum of rows** | | | | | **%s** | %.0f%% | | | **%s** | %.2f |" % (
    f1(sum_sq), 100 * sum_sq / sq_median if sq_median else 0, f1(sum_t), sum_t / sum_sq if sum_sq else 0))
md.append("| **measured step (median)** | | | | | **%s** | 100%% | | | **%s** | %.2f |\n" % (
    f1(sq_median), f1(t_median), r0["ratio"]))


def group(prefixes):
    return sum(r["per_step_ms"] for r in records[2:] if r["layer"].startswith(prefixes))


def tgroup(prefixes):
    return sum(r["baseline_per_step_ms"] or 0 for r in records[2:] if r["layer"].startswith(prefixes))


md.append("By kind (sum of the rows above, ms per step):\n")
md.append("| kind | sqakd ms/step | % of sqakd step | PyTorch ms/step |")
md.append("|---|---:|---:|---:|")
for title, pre in (("convolutions", ("conv",)), ("batch norm (2d + 1d)", ("bn",)), ("ReLU", ("relu",)),
                   ("residual add + ReLU", ("residual",)), ("option-A shortcuts", ("shortcut",)),
                   ("pool + FC + loss", ("global", "fc", "cross")), ("Adam + zero_grad", ("adam", "zero"))):
    g = group(pre)
    md.append("| %s | %s | %.1f%% | %s |" % (title, f1(g), 100 * g / sq_median if sq_median else 0, f1(tgroup(pre))))
md.append("")

md.append("## PyTorch profiler: top ops of the step\n")
md.append("torch.profiler (CPU activity) over %d step(s) after warm-up; self CPU time per step (a step under "
          "the profiler took %.1f ms; total self CPU time %.1f ms per step).\n"
          % (tp["profile_steps"], tp["profiled_step_ms"], tp["total_self_cpu_ms_per_step"]))
md.append("| op | calls / step | self CPU ms / step | share |")
md.append("|---|---:|---:|---:|")
for o in tp["top_ops"]:
    md.append("| `%s` | %.0f | %s | %.1f%% |" % (o["op"], o["calls_per_step"], f1(o["self_cpu_ms_per_step"]),
                                                 100 * o["share"]))
md.append("")
md.append("Convolution ops by input shape:\n")
md.append("| op | input shapes | calls / step | self CPU ms / step |")
md.append("|---|---|---:|---:|")
for o in tp["conv_ops_by_shape"]:
    if o["self_cpu_ms_per_step"] < 0.005 * tp["total_self_cpu_ms_per_step"]:
        continue  # the dispatch wrappers (aten::conv2d, aten::_convolution, ...) around the kernels
    shapes = "; ".join("x".join(str(d) for d in s) for s in o["input_shapes"][:3])
    md.append("| `%s` | %s | %.0f | %s |" % (o["op"], shapes, o["calls_per_step"], f1(o["self_cpu_ms_per_step"])))
md.append("")
md.append("## Command\n")
md.append("```\n%s\n```\n" % args.command)
md.append("Records: `%s` (metrics `train_step_ms`, `images_per_second`, `layer_ms` per layer shape; "
          "the PyTorch profile is under `baseline_profile` of the first record). Google Benchmark library "
          "build: %s.\n" % (os.path.basename(args.out_json), gb_context.get("library_build_type", "?")))
write_atomic(args.out_md, "\n".join(md))
print("wrote %s and %s: sqakd %.1f ms, PyTorch %.1f ms per step, ratio %.2f"
      % (args.out_json, args.out_md, sq_median, t_median, r0["ratio"]))
