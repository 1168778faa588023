#!/usr/bin/python3
"""Last stage of scripts/bench_sqakd_step.sh: merges the Google Benchmark JSON of
sqakd_bench_sqakd and the JSON of torch_sqakd_step.py into

  benchmarks/results/sqakd_step_resnet20.json   records in the shared DESIGN.md format
  benchmarks/results/sqakd_step_resnet20.md     the tables made from them

Metrics: sqakd_step_ms (one per W<b>A<b> interval student), kd_fp_step_ms (the same step with an
FP student), fake_quant_overhead (sqakd_step / kd_fp_step - 1, ours and PyTorch's). Both files are
written atomically (temporary file + rename). Standard library only.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# scripts/bench/results_common.py, next to this file: what this writer shares with write_results.py
from results_common import (  # noqa: E402
    add_run_arguments, baseline_name, commit, f1, load, machine,
    median, quantile, utc_now, write_atomic, write_records)

BATCH = 256
GATE_OVERHEAD = 0.20  # the issue gate: fake quantization adds at most 20% over the FP student step

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--sqakd", nargs="+", required=True,
                help="sqakd_bench_sqakd JSON, one per run (BM_resnet20_sqakd_step/<b> or BM_resnet20_kd_fp_step)")
ap.add_argument("--sqakd-steplog", help="per-step times of all runs (--step_log of sqakd_bench_sqakd)")
ap.add_argument("--torch", nargs="+", required=True, help="torch_sqakd_step.py step JSON, one per run")
ap.add_argument("--sqakd-parts", help="sqakd_bench_sqakd JSON of the BM_sqakd_step_parts/ benchmarks")
add_run_arguments(ap)
args = ap.parse_args()


# --- sqakd ---------------------------------------------------------------------------------------

STEP_RE = re.compile(r"^(BM_resnet20_sqakd_step/(\d+)|BM_resnet20_kd_fp_step)(/|$)")


def config_of_name(name):
    m = STEP_RE.match(name)
    if not m:
        return None
    return "w%sa%s" % (m.group(2), m.group(2)) if m.group(2) else "fp"


sq_runs = {}  # config -> [Google Benchmark benchmark entries, one per run]
gb_context = None
for p in args.sqakd:
    doc = load(p)
    gb_context = gb_context or doc.get("context", {})
    for b in doc["benchmarks"]:
        c = config_of_name(b["name"])
        if c is None:
            continue
        if b.get("error_occurred"):
            raise SystemExit("write_sqakd_results.py: %s failed in %s: %s" % (b["name"], p, b.get("error_message")))
        sq_runs.setdefault(c, []).append(b)
gb_context = gb_context or {}

sq_steps = {}  # config -> every timed step (ms) of every run
if args.sqakd_steplog and os.path.exists(args.sqakd_steplog):
    with open(args.sqakd_steplog) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and config_of_name(parts[0]):
                sq_steps.setdefault(config_of_name(parts[0]), []).append(float(parts[1]))

# --- PyTorch -------------------------------------------------------------------------------------

t_runs = {}
for p in args.torch:
    r = load(p)
    c = "fp" if r["variant"] == "fp_student" else "w%da%d" % (r["w_bits"], r["a_bits"])
    t_runs.setdefault(c, []).append(r)
any_torch = next(iter(t_runs.values()))[0]
baseline = baseline_name(any_torch["torch_version"], any_torch.get("mkldnn_available"))

parts = {}
if args.sqakd_parts:
    for b in load(args.sqakd_parts)["benchmarks"]:
        m = re.match(r"^BM_sqakd_step_parts/(\w+)", b["name"])
        if not m or b.get("error_occurred"):
            continue
        c = "fp" if m.group(1) == "fp" else "w%sa%s" % (m.group(1), m.group(1))
        parts[c] = {k: b[k] for k in ("zero_grad_ms", "teacher_fwd_ms", "student_fwd_ms", "loss_ms",
                                      "student_bwd_ms", "optim_ms", "median_ms")}
        parts[c]["iterations"] = int(b["iterations"])

# --- per configuration ---------------------------------------------------------------------------


def summary(c):
    runs, truns = sq_runs.get(c, []), t_runs.get(c, [])
    if not runs or not truns:
        return None
    steps = sq_steps.get(c) or []
    round_medians = [b["median_ms"] for b in runs]
    ts = [t for r in truns for t in r["step_ms"]]
    s = dict(
        value=median(steps) if steps else median(round_medians),
        p10_ms=quantile(steps, 0.1), p90_ms=quantile(steps, 0.9),
        steps_timed=len(steps) if steps else sum(int(b["iterations"]) for b in runs),
        round_medians_ms=round_medians,
        warmup_steps=int(runs[0]["warmup_steps"]),
        loss_last=runs[-1].get("loss_last"),
        baseline_value=median(ts), baseline_p10_ms=quantile(ts, 0.1), baseline_p90_ms=quantile(ts, 0.9),
        baseline_steps_timed=len(ts), baseline_round_medians_ms=[r["median_ms"] for r in truns],
        baseline_warmup_steps=truns[0]["warmup"], baseline_loss_last=truns[-1]["loss_last"],
        steps=int(truns[0]["steps"]), rounds=len(runs))
    s["ratio"] = s["baseline_value"] / s["value"] if s["value"] else None
    if c != "fp":
        s["quantized_layers"] = int(runs[0].get("quantized_layers", 0))
        s["quant_params"] = int(runs[0].get("quant_params", 0))
        s["baseline_quantized_layers"] = truns[0].get("quantized_convs")
        s["baseline_quant_params"] = truns[0].get("quant_params")
    return s


configs = sorted((c for c in set(sq_runs) | set(t_runs) if c != "fp"), key=lambda c: -int(c[1:c.index("a")]))
summ = {c: summary(c) for c in configs + ["fp"]}
missing = [c for c, s in summ.items() if s is None]
if missing:
    raise SystemExit("write_sqakd_results.py: no sqakd and PyTorch runs for %s" % ", ".join(missing))
fp = summ["fp"]

# --- records -------------------------------------------------------------------------------------

mach, isa = machine(lscpu=True)
common = dict(kind="speed", model="resnet20", dataset="synthetic 1x28x28", input_shape=[1, 28, 28],
              data="one fixed batch of N(0,1) inputs of Fashion-MNIST's shape; random-weight teacher",
              method="sqakd", batch=BATCH, baseline=baseline, threads=args.threads, machine=mach, isa=isa,
              command=args.command, commit=commit(args.root, "SQAKD_BENCH_COMMIT"), date=utc_now(),
              load_average_before=args.load_before, compiler=gb_context.get("sqakd_compiler", ""),
              benchmark_library_build=gb_context.get("library_build_type", ""),
              torch_version=any_torch["torch_version"], torch_threads=any_torch["num_threads"],
              torch_interop_threads=any_torch["num_interop_threads"])
step_desc = ("nn::zero_grad(student); teacher.forward(x, eval); student.forward(x, train); "
             "distill::sqakd_kl{4}(zs, zt, dlogits); student.backward(dlogits, need_dx=false); "
             "opt_model.step() (Adam lr 1e-3, L2 1e-4, model parameters); opt_quant.step() (Adam lr 1e-5, "
             "quantizer parameters) - train::distill's step")
torch_desc = ("scripts/bench/torch_sqakd_step.py: zero_grad of both optimisers; teacher(x) under no_grad; "
              "student(x); T^2 KL(log_softmax(zs/T), softmax(zt/T)), T = 4; backward; opt_model.step(); "
              "opt_quant.step() (Adam, same hyper-parameters); student from scripts/torch_ref/quant_models.py")
fp_desc = "the same step with an FP ResNet-20 student (a copy of the teacher) and only opt_model"
RATIO_MEANING = "baseline_value / value: >1 means sqakd is faster"

records = []
for c in configs:
    s = summ[c]
    b = int(c[1:c.index("a")])
    rec = dict(common, quantizer="interval", estimator="ste", w_bits=b, a_bits=b, metric="sqakd_step_ms",
               unit="ms", ratio_meaning=RATIO_MEANING, step=step_desc, baseline_step=torch_desc, **s)
    rec["gate_at_least_as_fast"] = s["ratio"] is not None and s["ratio"] >= 1.0
    rec["goal_2x"] = s["ratio"] is not None and s["ratio"] >= 2.0
    if c in parts:
        rec["parts_ms"] = parts[c]
    records.append(rec)
rec = dict(common, quantizer="none", estimator="none", w_bits=32, a_bits=32, metric="kd_fp_step_ms", unit="ms",
           ratio_meaning=RATIO_MEANING, step=step_desc.replace("; opt_quant.step() (Adam lr 1e-5, "
                                                               "quantizer parameters)", "") + " - " + fp_desc,
           baseline_step="torch_sqakd_step.py --variant fp_student: " + fp_desc, **fp)
if "fp" in parts:
    rec["parts_ms"] = parts["fp"]
records.append(rec)
for c in configs:
    s = summ[c]
    b = int(c[1:c.index("a")])
    ov = s["value"] / fp["value"] - 1
    tov = s["baseline_value"] / fp["baseline_value"] - 1
    records.append(dict(
        common, quantizer="interval", estimator="ste", w_bits=b, a_bits=b, metric="fake_quant_overhead",
        value=ov, unit="fraction", baseline_value=tov, ratio=(1 + tov) / (1 + ov),
        ratio_meaning="(1 + baseline_value) / (1 + value): >1 means fake quantization costs relatively less "
                      "in sqakd",
        derived_from="median sqakd_step_ms / median kd_fp_step_ms - 1, each side its own",
        gate_max=GATE_OVERHEAD, gate_within=ov <= GATE_OVERHEAD,
        sqakd_step_ms=s["value"], kd_fp_step_ms=fp["value"],
        baseline_sqakd_step_ms=s["baseline_value"], baseline_kd_fp_step_ms=fp["baseline_value"],
        steps=s["steps"], rounds=s["rounds"]))


# --- Markdown ------------------------------------------------------------------------------------


def f2(x):
    return "-" if x is None else "%.2f" % x


def pct(x):
    return "-" if x is None else "%+.1f%%" % (100 * x)


def yes(ok):
    return "**pass**" if ok else "**fail**"


r0 = records[0]
md = []
md.append("# One SQAKD distillation step, ResNet-20: sqakd vs PyTorch (CPU, %d threads)\n" % args.threads)
md.append("The step of `train::distill` at batch %d on 1x28x28 inputs (one fixed N(0, 1) batch, random-weight "
          "teacher `nn::models::resnet20<1, 10>`): %s. Students: `nn::quantize_t<teacher, "
          "quant::interval_weight<B>, quant::interval_act<B>>` (18 quantized block convs; first conv, FC and "
          "shortcuts FP), and for the fake-quantization overhead %s. PyTorch: %s.\n"
          % (BATCH, step_desc, fp_desc, torch_desc))
md.append("Medians over all timed steps of %d alternating rounds (per round and student: sqakd, then PyTorch), "
          "%d timed steps per run after %d untimed warm-up steps (sqakd: plus one untimed step that initialises "
          "the quantizers). Wall-clock time per step.\n" % (r0["rounds"], r0["steps"], r0["warmup_steps"]))
md.append("| step | sqakd median ms | sqakd p10 - p90 | %s median ms | PyTorch p10 - p90 | ratio (>1: sqakd faster) |"
          % baseline)
md.append("|---|---:|---:|---:|---:|---:|")
for r in records:
    if r["metric"] == "fake_quant_overhead":
        continue
    name = ("SQAKD step, W%dA%d interval student" % (r["w_bits"], r["a_bits"]) if r["metric"] == "sqakd_step_ms"
            else "KD step, FP student")
    md.append("| %s | %s | %s - %s | %s | %s - %s | %s |" % (
        name, f1(r["value"]), f1(r["p10_ms"]), f1(r["p90_ms"]), f1(r["baseline_value"]),
        f1(r["baseline_p10_ms"]), f1(r["baseline_p90_ms"]), f2(r["ratio"])))
for r in records:
    if r["metric"] == "fake_quant_overhead":
        md.append("| fake-quantization overhead, W%dA%d (step / FP step - 1) | %s | | %s | | %s |" % (
            r["w_bits"], r["a_bits"], pct(r["value"]), pct(r["baseline_value"]), f2(r["ratio"])))
md.append("")
md.append("Round medians (ms), sqakd / PyTorch: " + "; ".join(
    "%s %s / %s" % ("W%dA%d" % (r["w_bits"], r["a_bits"]) if r["w_bits"] != 32 else "FP",
                    ", ".join(f1(x) for x in r["round_medians_ms"]),
                    ", ".join(f1(x) for x in r["baseline_round_medians_ms"]))
    for r in records if r["metric"] != "fake_quant_overhead") + ".\n")

md.append("## Issue gate\n")
md.append("One SQAKD step at least as fast as PyTorch's (goal 2x), fake quantization adding at most %d%% over the "
          "FP-student step.\n" % round(100 * GATE_OVERHEAD))
md.append("| student | ratio vs PyTorch | >= 1 | goal >= 2 | fake-quant overhead | <= %d%% |" % round(100 * GATE_OVERHEAD))
md.append("|---|---:|---|---|---:|---|")
for r in records:
    if r["metric"] != "sqakd_step_ms":
        continue
    ov = next(o for o in records if o["metric"] == "fake_quant_overhead" and o["w_bits"] == r["w_bits"])
    md.append("| W%dA%d | %s | %s | %s | %s | %s |" % (
        r["w_bits"], r["a_bits"], f2(r["ratio"]), yes(r["gate_at_least_as_fast"]), yes(r["goal_2x"]),
        pct(ov["value"]), yes(ov["gate_within"])))
md.append("")

if parts:
    md.append("## Where sqakd's time goes\n")
    md.append("`BM_sqakd_step_parts`: the same step with each phase timed, median per phase over %d timed steps "
              "of one run (after the warm-up); the phases' medians need not add up to the step's median.\n"
              % next(iter(parts.values()))["iterations"])
    order = [c for c in configs + ["fp"] if c in parts]
    md.append("| phase | " + " | ".join(("W%sA%s ms" % (c[1:c.index("a")], c[c.index("a") + 1:]))
                                       if c != "fp" else "FP student ms" for c in order) + " |")
    md.append("|---|" + "---:|" * len(order))
    for key, title in (("zero_grad_ms", "nn::zero_grad(student)"), ("teacher_fwd_ms", "teacher forward (eval)"),
                       ("student_fwd_ms", "student forward (train)"), ("loss_ms", "sqakd_kl loss + gradient"),
                       ("student_bwd_ms", "student backward"), ("optim_ms", "Adam step(s)"),
                       ("median_ms", "**whole step (median)**")):
        fmt = f2 if key in ("zero_grad_ms", "loss_ms", "optim_ms") else f1
        md.append("| %s | %s |" % (title, " | ".join(fmt(parts[c][key]) for c in order)))
    md.append("")

md.append("Machine: %s, ISA %s; threads: OMP_NUM_THREADS=%d for sqakd, torch.set_num_threads(%d) and "
          "set_num_interop_threads(%d) for PyTorch. sqakd built by %s (Google Benchmark library build: %s). "
          "Load average before the run: %s. Commit %s, %s.\n"
          % (mach, isa, args.threads, r0["torch_threads"], r0["torch_interop_threads"], r0["compiler"] or "?",
             r0["benchmark_library_build"] or "?", args.load_before or "?", r0["commit"], r0["date"]))
md.append("## Command\n")
md.append("```\n%s\n```\n" % args.command)
md.append("Records: `%s` (metrics `sqakd_step_ms` per bit width, `kd_fp_step_ms`, `fake_quant_overhead`; sqakd's "
          "phase breakdown under `parts_ms`).\n" % os.path.basename(args.out_json))

write_records(args.out_json, records)
write_atomic(args.out_md, "\n".join(md))
print("wrote %s and %s" % (args.out_json, args.out_md))
for r in records:
    if r["metric"] == "fake_quant_overhead":
        print("  fake-quant overhead W%dA%d: sqakd %s, PyTorch %s" % (r["w_bits"], r["a_bits"], pct(r["value"]),
                                                                    pct(r["baseline_value"])))
    else:
        print("  %s W%dA%d: sqakd %.1f ms, PyTorch %.1f ms, ratio %.2f" % (
            r["metric"], r["w_bits"], r["a_bits"], r["value"], r["baseline_value"], r["ratio"]))
