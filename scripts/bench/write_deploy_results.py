#!/usr/bin/python3
"""Last stage of scripts/bench_deploy.sh: merges the Google Benchmark JSON of sqakd_bench_deploy
(the kernel sweep and the rounds) and the JSON of torch_int8_resnet20.py into

  benchmarks/results/deploy_resnet20.json   records in the shared DESIGN.md format
  benchmarks/results/deploy_resnet20.md     the tables made from them

Metrics:
  conv_gops          every integer conv kernel (tier x bit widths x ResNet-20 layer), GOP/s, next to
                     oneDNN's int8 convolution on the same layer (same run);
  int8_conv_vs_onednn  our best tier's W8A8 conv against oneDNN's int8 conv, medians over the rounds
                     (gate: ratio >= 0.8, goal >= 1.0);
  latency_ms         ResNet-20 batch 1 (one thread) for FP32 and W8A8 W4A8 W4A4 W2A2 W1A1, against
                     PyTorch int8 batch 1 (FP32 against PyTorch FP32; gate for W8A8: >= 2x, goal 3x);
  throughput_img_s   ResNet-20 batch 64 on --threads threads, against PyTorch int8 batch 64, and
                     against our own W8A8 (goals: W4A4 1.5x, W2A2 2x, W1A1 3x).
Both files are written atomically. Standard library only.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_common import (  # noqa: E402
    add_run_arguments, baseline_name, commit, load, machine, median, utc_now, write_atomic, write_records)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--kernels", required=True, help="sqakd_bench_deploy JSON of the BM_conv/ sweep (with BM_onednn_conv/)")
ap.add_argument("--sqakd", nargs="+", required=True, help="sqakd_bench_deploy JSON, one per round")
ap.add_argument("--torch", nargs="+", required=True, help="torch_int8_resnet20.py JSON, one per round")
add_run_arguments(ap)
args = ap.parse_args()

TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def medians(doc):
    """name -> the median aggregate entry (or the single run) of each benchmark of a GB JSON."""
    out = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate" or name not in out:
            out[name] = b
    return out


def ms(b):
    return b["real_time"] * TO_MS[b.get("time_unit", "ns")]


def gops(b):
    """The GOPS counter: Google Benchmark stores the rate, already in GOP/s."""
    return b["GOPS"]


kdoc = load(args.kernels)
gb_context = kdoc.get("context", {})
kern = medians(kdoc)
rounds = [medians(load(p)) for p in args.sqakd]
troundsd = [load(p) for p in args.torch]
t0 = troundsd[0]
baseline_int8 = "%s int8, %s engine (FX post-training quantization)" % (
    baseline_name(t0["torch_version"], True).split(" (")[0], t0["engine"])
baseline_fp32 = baseline_name(t0["torch_version"], t0.get("mkldnn_available"))

mach, isa = machine(lscpu=True)
common = dict(kind="speed", model="resnet20", dataset="synthetic 1x28x28", input_shape=[1, 28, 28],
              method="int_deploy", quantizer="interval", estimator="none", machine=mach, isa=isa,
              command=args.command, commit=commit(args.root, "SQAKD_BENCH_COMMIT"), date=utc_now(),
              load_average_before=args.load_before, compiler=gb_context.get("sqakd_compiler", ""),
              torch_version=t0["torch_version"])
records = []

# --- 1. the kernel sweep -------------------------------------------------------------------------
CONV = re.compile(r"^BM_conv/([^/]+)/W(\d)A(\d)/([^/]+)$")
onednn_k = {n.split("/")[1]: b for n, b in kern.items() if n.startswith("BM_onednn_conv/")}
impl = next((b.get("label", "") for b in onednn_k.values()), "")
if re.search(r"ref|gemm", impl):
    raise SystemExit("write_deploy_results.py: oneDNN ran '%s', a reference or plain-gemm implementation" % impl)
for name, b in sorted(kern.items()):
    m = CONV.match(name)
    if not m:
        continue
    tier, wb, ab, layer = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    od = onednn_k.get(layer)
    records.append(dict(common, metric="conv_gops", layer=layer, tier=tier, tier_resolved=b.get("label", tier),
                        w_bits=wb, a_bits=ab, batch=1, threads=1, value=gops(b),
                        unit="GOP/s", time_us=ms(b) * 1e3,
                        baseline="oneDNN int8 convolution (%s), same layer, %d threads" % (impl, args.threads),
                        baseline_value=gops(od) if od else None,
                        ratio=None, ratio_meaning="value / baseline_value: >1 means sqakd is faster"))
    r = records[-1]
    r["ratio"] = r["value"] / r["baseline_value"] if r["baseline_value"] else None


# --- 2. W8A8 conv vs oneDNN, over the rounds -----------------------------------------------------
layers = sorted({n.split("/")[1] for r in rounds for n in r if n.startswith("BM_onednn_conv/")})
conv_rows = []
for layer in layers:
    ours = [gops(r["BM_conv/best/W8A8/" + layer]) for r in rounds if "BM_conv/best/W8A8/" + layer in r]
    theirs = [gops(r["BM_onednn_conv/" + layer]) for r in rounds if "BM_onednn_conv/" + layer in r]
    tier = next((r["BM_conv/best/W8A8/" + layer].get("label", "") for r in rounds if "BM_conv/best/W8A8/" + layer in r), "")
    if not ours or not theirs:
        continue
    v, bv = median(ours), median(theirs)
    rec = dict(common, metric="int8_conv_vs_onednn", layer=layer, w_bits=8, a_bits=8, batch=1, tier=tier, threads=1,
               value=v, unit="GOP/s", round_values=ours, baseline="oneDNN int8 convolution", baseline_impl=impl,
               baseline_threads=args.threads, baseline_value=bv, baseline_round_values=theirs, ratio=v / bv,
               ratio_meaning="value / baseline_value: >1 means sqakd is faster", rounds=len(ours),
               gate_min_ratio=0.8, gate_holds=v / bv >= 0.8, goal_ratio=1.0, goal_met=v / bv >= 1.0)
    records.append(rec)
    conv_rows.append(rec)

# --- 3. networks ---------------------------------------------------------------------------------
CONFIGS = [("fp32", 32, 32), ("w8a8", 8, 8), ("w4a8", 4, 8), ("w4a4", 4, 4), ("w2a2", 2, 2), ("w1a1", 1, 1)]


def net_name(c, batch):
    return "BM_resnet20_fp32/%d" % batch if c == "fp32" else "BM_resnet20_int/%s/%d" % (c.upper(), batch)


def torch_ms(kind, batch):
    return [next(x["median_ms"] for x in t[kind] if x["batch"] == batch) for t in troundsd]


net = {}
for c, wb, ab in CONFIGS:
    for batch in (1, 64):
        vals = [ms(r[net_name(c, batch)]) for r in rounds if net_name(c, batch) in r]
        if vals:
            net[(c, batch)] = vals
t_int8 = {b: torch_ms("int8", b) for b in (1, 64)}
t_fp32 = {b: torch_ms("fp32", b) for b in (1, 64)}
net_rows = []
for c, wb, ab in CONFIGS:
    if (c, 1) in net:
        v = median(net[(c, 1)])
        tb = t_fp32[1] if c == "fp32" else t_int8[1]
        bv = median(tb)
        rec = dict(common, metric="latency_ms", config=c, w_bits=wb, a_bits=ab, batch=1, threads=1, value=v, unit="ms",
                   round_values=net[(c, 1)], baseline=(baseline_fp32 + " FP32") if c == "fp32" else baseline_int8,
                   baseline_threads=args.threads, baseline_value=bv, baseline_round_values=tb, ratio=bv / v,
                   ratio_meaning="baseline_value / value: >1 means sqakd is faster", rounds=len(net[(c, 1)]))
        if c == "fp32":
            rec["method"] = "fp"
        if c == "w8a8":
            rec.update(gate_min_ratio=2.0, gate_holds=bv / v >= 2.0, goal_ratio=3.0, goal_met=bv / v >= 3.0)
        records.append(rec)
        net_rows.append(rec)
w8_tp = 64e3 / median(net[("w8a8", 64)]) if ("w8a8", 64) in net else None
GOALS = {"w4a4": 1.5, "w2a2": 2.0, "w1a1": 3.0}
for c, wb, ab in CONFIGS:
    if (c, 64) in net:
        tp = [64e3 / x for x in net[(c, 64)]]
        tb = [64e3 / x for x in (t_fp32[64] if c == "fp32" else t_int8[64])]
        v, bv = median(tp), median(tb)
        rec = dict(common, metric="throughput_img_s", config=c, w_bits=wb, a_bits=ab, batch=64, threads=args.threads,
                   value=v, unit="images/s", round_values=tp,
                   baseline=(baseline_fp32 + " FP32") if c == "fp32" else baseline_int8, baseline_threads=args.threads,
                   baseline_value=bv, baseline_round_values=tb, ratio=v / bv,
                   ratio_meaning="value / baseline_value: >1 means sqakd is faster", rounds=len(tp))
        if c == "fp32":
            rec["method"] = "fp"
        if w8_tp and c != "fp32":
            rec["vs_own_w8a8"] = v / w8_tp
            if c in GOALS:
                rec.update(goal_vs_own_w8a8=GOALS[c], goal_met=v / w8_tp >= GOALS[c])
        records.append(rec)
        net_rows.append(rec)

write_records(args.out_json, records)

# --- Markdown ------------------------------------------------------------------------------------


def f(x, d=1):
    return "-" if x is None else ("%%.%df" % d) % x


md = ["# Integer deployment speed: ResNet-20 (1x28x28)", "",
      "Made by `%s` on %s, commit %s, %s; load before: %s. Compiler: %s. Figures are medians (Google Benchmark: "
      "3 repetitions per round; PyTorch: median per round; then the median over %d rounds)."
      % (args.command, mach, common["commit"], common["date"], args.load_before, common["compiler"], len(rounds)), "",
      "## int8 convolution vs oneDNN (batch 1, same layer shapes)", "",
      "oneDNN: `%s`, %d threads (OMP_NUM_THREADS), weights reordered outside the timing. sqakd: `deploy::isa::best`, "
      "one thread, im2col and the weight-form correction included. Gate: ratio >= 0.8; goal >= 1.0." % (impl, args.threads), "",
      "| layer | sqakd tier | sqakd GOP/s | oneDNN GOP/s | ratio | gate 0.8 |", "|---|---|---|---|---|---|"]
for r in conv_rows:
    md.append("| %s | %s | %s | %s | %.2f | %s |" % (r["layer"], r["tier"], f(r["value"]), f(r["baseline_value"]), r["ratio"],
                                                    "pass" if r["gate_holds"] else "**fail**"))
md += ["", "## ResNet-20 end to end", "",
       "Batch 1: one thread (sqakd), %d threads (PyTorch). Batch 64: %d threads each (sqakd: `run_parallel`). "
       "Baseline: %s (FP32 row: PyTorch FP32). Random weights (speed does not depend on them)." % (args.threads, args.threads, baseline_int8), "",
       "| network | batch 1 ms | PyTorch ms | speed-up | batch 64 images/s | PyTorch images/s | ratio | vs own W8A8 |",
       "|---|---|---|---|---|---|---|---|"]
for c, wb, ab in CONFIGS:
    l = next((r for r in net_rows if r["config"] == c and r["batch"] == 1), None)
    t = next((r for r in net_rows if r["config"] == c and r["batch"] == 64), None)
    md.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        c.upper(), f(l and l["value"], 3), f(l and l["baseline_value"], 3), f(l and l["ratio"], 2) + "x",
        f(t and t["value"], 0), f(t and t["baseline_value"], 0), f(t and t["ratio"], 2) + "x",
        f(t and t.get("vs_own_w8a8"), 2)))
w8 = next((r for r in net_rows if r["config"] == "w8a8" and r["batch"] == 1), None)
if w8:
    md += ["", "W8A8 batch 1 vs PyTorch int8: %.2fx (gate >= 2: %s; goal >= 3: %s)."
           % (w8["ratio"], "pass" if w8["gate_holds"] else "**fail**", "met" if w8["goal_met"] else "not met")]
md += ["", "## Every conv kernel (GOP/s, batch 1, one thread)", "",
       "| layer | " + " | ".join("W%dA%d" % (w, a) for w, a in [(1, 1), (2, 2), (4, 4), (4, 8), (8, 8)]) + " | tier |",
       "|---|---|---|---|---|---|---|"]
tiers = []
for r in records:
    if r["metric"] == "conv_gops" and r["tier"] not in tiers:
        tiers.append(r["tier"])
for tier in tiers:
    for layer in layers:
        row = []
        for w, a in [(1, 1), (2, 2), (4, 4), (4, 8), (8, 8)]:
            x = next((r for r in records if r["metric"] == "conv_gops" and r["tier"] == tier and r["layer"] == layer
                      and r["w_bits"] == w and r["a_bits"] == a), None)
            row.append(f(x and x["value"]) + ("" if not x or x["tier_resolved"] == tier else " (%s)" % x["tier_resolved"]))
        md.append("| %s | %s | %s |" % (layer, " | ".join(row), tier))
md += ["", "oneDNN int8 on the same layers in that run: " +
       ", ".join("%s %s" % (l, f(gops(onednn_k[l]))) for l in layers if l in onednn_k) + " GOP/s.", ""]
write_atomic(args.out_md, "\n".join(md) + "\n")
print("write_deploy_results.py: %d records -> %s, %s" % (len(records), args.out_json, args.out_md))
