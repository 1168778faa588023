#!/usr/bin/env python3
"""Collects per-run result.json records into one JSON list, a Markdown report and (students) a plot.

    aggregate_results.py teacher <runs-dir> <out-prefix>
    aggregate_results.py students <runs-dir> <out-dir>

teacher: writes <out-prefix>.json (a list of records, the format of DESIGN.md "Results files") and
<out-prefix>.md (a table plus the mean over seeds).

students: reads <runs-dir>/*/result.json (each a list with one record) and writes into <out-dir>
students_resnet20_fmnist.json (all records, sorted by quantizer, bits, method, seed),
students_resnet20_fmnist.md (summary table, FP teacher row, comparison with the PyTorch re-run of
SQAKD.md section 7, the issue-3 gates, per-run details) and students_resnet20_fmnist.png (top-1 vs
bit width; skipped with a warning when matplotlib is not installed). The teacher row comes from
benchmarks/results/teacher_resnet20_fmnist.json of this repository. If <runs-dir>/jobs.txt exists,
its jobs appear in the table even before they have finished (shown as "—"). All files are written
atomically (temporary file + os.replace).
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER_JSON = os.path.join(ROOT, "benchmarks", "results", "teacher_resnet20_fmnist.json")
STUDENTS_NAME = "students_resnet20_fmnist"
DASH = "—"

# PyTorch re-run of the published recipe on this project's data (SQAKD.md section 7): interval
# quantizer, final-epoch top-1 (%), mean over the seeds that ran.
REF_TEACHER = 92.23
REF = {  # bits -> (QAT with labels, SQAKD without labels)
    1: (84.00, 84.99),
    2: (91.11, 90.92),
    4: (92.99, 92.11),
}
# Issue 3 gates: interval SQAKD, mean of seeds 0 and 1, final-epoch top-1 >= threshold.
GATES = {1: 84.0, 2: 90.4, 4: 91.6}
GATE_SEEDS = (0, 1)

QUANTIZER_ORDER = ["interval", "lsq", "lsq_pc", "pact_dorefa"]
METHOD_ORDER = ["sqakd", "qat_ce", "kd"]


def teacher_mode(kind, runs, prefix):
    records = []
    for path in sorted(glob.glob(os.path.join(runs, "*", "result.json"))):
        with open(path) as f:
            records.extend(json.load(f))
    if not records:
        sys.exit(f"no result.json under {runs}")
    tmp = prefix + ".json.tmp"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=2)
        f.write("\n")
    os.replace(tmp, prefix + ".json")
    lines = [f"# {kind}: {records[0]['model']} on {records[0]['dataset']}", "",
             "| seed | method | epochs | final-epoch top-1 (%) | mean of last 3 (%) | commit |",
             "|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['seed']} | {r['method']} | {r['epochs']} | {r['top1']:.2f} | "
                     f"{r['last3_top1']:.2f} | {r['commit'][:12]} |")
    mean = sum(r["top1"] for r in records) / len(records)
    lines += ["", f"Mean final-epoch top-1 over {len(records)} seeds: **{mean:.2f}%**", "",
              "Command (per seed): `" + records[0]["command"] + "`", ""]
    tmp = prefix + ".md.tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, prefix + ".md")
    print("\n".join(lines))


# ----------------------------------------------------------------------------------------------
# students mode


def warn(msg):
    print(f"aggregate_results.py: warning: {msg}", file=sys.stderr)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def fmt(x, signed=False):
    if x is None:
        return DASH
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def order_index(order, value):
    return (order.index(value), "") if value in order else (len(order), str(value))


def row_key(key):
    q, m, bits = key
    return (order_index(QUANTIZER_ORDER, q), order_index(METHOD_ORDER, m), bits)


def bits_of(r):
    return (r.get("w_bits") or 0, r.get("a_bits") or 0)


def record_sort_key(r):
    return (str(r.get("quantizer", "")), r.get("w_bits") or 0, r.get("a_bits") or 0,
            str(r.get("method", "")), r.get("seed") if r.get("seed") is not None else -1)


def load_student_records(runs):
    records = []
    for path in sorted(glob.glob(os.path.join(runs, "*", "result.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            warn(f"skipping unreadable {path}: {e}")
            continue
        if isinstance(data, dict):
            data = [data]
        for r in data:
            if not isinstance(r, dict) or "top1" not in r:
                warn(f"skipping malformed record in {path}")
                continue
            records.append(r)
    records.sort(key=record_sort_key)
    return records


def load_teacher():
    """{seed: record} of the FP teacher runs, or {} when the file is missing."""
    try:
        with open(TEACHER_JSON) as f:
            return {r["seed"]: r for r in json.load(f)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        warn(f"no teacher records ({TEACHER_JSON}: {e})")
        return {}


def load_jobs(runs):
    """(quantizer, method, (bits, bits)) of the jobs listed in <runs>/jobs.txt, if there is one."""
    keys = []
    try:
        with open(os.path.join(runs, "jobs.txt")) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 4 or parts[0].startswith("#"):
                    continue
                try:
                    b = int(parts[1])
                except ValueError:
                    continue
                keys.append((parts[0], parts[2], (b, b)))
    except OSError:
        pass
    return keys


def group(records):
    """{(quantizer, method, (w_bits, a_bits)): {seed: record}}."""
    groups = {}
    for r in records:
        key = (r.get("quantizer"), r.get("method"), bits_of(r))
        groups.setdefault(key, {})[r.get("seed")] = r
    return groups


def bits_label(bits):
    w, a = bits
    return f"W{w}A{a}"


def teacher_mean_for(seeds_runs, teachers):
    """Mean top-1 of the teachers the runs of one row distilled from."""
    vals = []
    for seed, r in seeds_runs.items():
        t = r.get("teacher_top1")
        if t is None and seed in teachers:
            t = teachers[seed].get("top1")
        vals.append(t)
    return mean(vals)


def interval_mean(groups, method, b, seeds=None):
    runs = groups.get(("interval", method, (b, b)), {})
    if seeds is not None:
        runs = {s: r for s, r in runs.items() if s in seeds}
    return mean([r["top1"] for r in runs.values()]), len(runs)


def build_markdown(records, groups, row_keys, teachers):
    model = records[0].get("model", "?")
    dataset = records[0].get("dataset", "?")
    epochs = sorted({r.get("epochs") for r in records if r.get("epochs") is not None})
    batch = sorted({r.get("batch") for r in records if r.get("batch") is not None})
    threads = sorted({r.get("threads") for r in records if r.get("threads") is not None})
    joined = lambda xs: ", ".join(str(x) for x in xs) or DASH
    lines = [f"# Quantized students: {model} on {dataset}", "",
             f"{len(records)} runs; epochs {joined(epochs)}, batch {joined(batch)}, "
             f"threads {joined(threads)}. Accuracies are test top-1 (%). \"{DASH}\" marks a run "
             "that has not finished (or was not planned for that seed).", "",
             "## Summary", "",
             "| quantizer | method | W/A bits | seed 0 final top-1 | seed 1 final top-1 | "
             "mean final top-1 | mean of last 3 epochs | teacher mean | gap to teacher |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in row_keys:
        q, m, bits = key
        runs = groups.get(key, {})
        s0 = runs[0]["top1"] if 0 in runs else None
        s1 = runs[1]["top1"] if 1 in runs else None
        mfinal = mean([r["top1"] for r in runs.values()])
        mlast3 = mean([r.get("last3_top1") for r in runs.values()])
        tmean = teacher_mean_for(runs, teachers) if runs else None
        gap = mfinal - tmean if mfinal is not None and tmean is not None else None
        extra = sorted(s for s in runs if s not in (0, 1))
        note = f" (+ seeds {', '.join(map(str, extra))})" if extra else ""
        lines.append(f"| {q} | {m}{note} | {bits_label(bits)} | {fmt(s0)} | {fmt(s1)} | "
                     f"{fmt(mfinal)} | {fmt(mlast3)} | {fmt(tmean)} | {fmt(gap, signed=True)} |")
    t0 = teachers[0]["top1"] if 0 in teachers else None
    t1 = teachers[1]["top1"] if 1 in teachers else None
    tm = mean([t["top1"] for t in teachers.values()])
    tl3 = mean([t.get("last3_top1") for t in teachers.values()])
    lines.append(f"| none (FP teacher) | fp | W32A32 | {fmt(t0)} | {fmt(t1)} | {fmt(tm)} | "
                 f"{fmt(tl3)} | {fmt(tm)} | {fmt(0.0 if tm is not None else None, signed=True)} |")
    lines += ["", "Gap to teacher = mean final top-1 of the student minus the mean final top-1 "
              "of the teachers it distilled from (negative: below the teacher).", ""]

    # comparison with the PyTorch re-run
    lines += ["## Comparison with the PyTorch re-run (SQAKD.md §7)", "",
              "Interval quantizer, final-epoch top-1, mean over the seeds that ran (n = number "
              "of seeds behind our mean); diff = ours − PyTorch.", "",
              "| W/A bits | QAT PyTorch | QAT ours | n | diff | SQAKD PyTorch | SQAKD ours | n | "
              "diff |", "|---|---|---|---|---|---|---|---|---|"]
    for b, (ref_qat, ref_sq) in sorted(REF.items()):
        qat, nq = interval_mean(groups, "qat_ce", b)
        sq, ns = interval_mean(groups, "sqakd", b)
        dq = qat - ref_qat if qat is not None else None
        ds = sq - ref_sq if sq is not None else None
        lines.append(f"| W{b}A{b} | {ref_qat:.2f} | {fmt(qat)} | {nq} | {fmt(dq, signed=True)} | "
                     f"{ref_sq:.2f} | {fmt(sq)} | {ns} | {fmt(ds, signed=True)} |")
    dt = tm - REF_TEACHER if tm is not None else None
    lines += ["", f"FP teacher: PyTorch {REF_TEACHER:.2f}, ours {fmt(tm)} "
              f"(n = {len(teachers)}), diff {fmt(dt, signed=True)}.", ""]

    # gates
    lines += ["## Gates (issue 3)", "",
              "Interval SQAKD, mean of seeds 0 and 1, final-epoch top-1; PENDING while a seed "
              "is missing.", "",
              "| W/A bits | seed 0 | seed 1 | measured (mean) | threshold | result |",
              "|---|---|---|---|---|---|"]
    for b, thr in sorted(GATES.items()):
        runs = groups.get(("interval", "sqakd", (b, b)), {})
        vals = [runs[s]["top1"] if s in runs else None for s in GATE_SEEDS]
        if any(v is None for v in vals):
            measured, result = None, "PENDING"
        else:
            measured = sum(vals) / len(vals)
            result = "PASS" if measured >= thr else "FAIL"
        lines.append(f"| W{b}A{b} | {fmt(vals[0])} | {fmt(vals[1])} | {fmt(measured)} | "
                     f">= {thr:.2f} | **{result}** |")
    lines.append("")

    # per-run details
    lines += ["## Per-run details", ""]
    for r in records:
        name = (f"{r.get('quantizer')} {bits_label(bits_of(r))} {r.get('method')} "
                f"seed {r.get('seed')}")
        per_epoch = ", ".join(f"{x:.2f}" for x in r.get("per_epoch_top1") or [])
        lines += [f"### {name}", "",
                  f"- final top-1: {fmt(r.get('top1'))}; mean of last 3: "
                  f"{fmt(r.get('last3_top1'))}; teacher top-1: {fmt(r.get('teacher_top1'))}",
                  f"- estimator: {r.get('estimator', DASH)}; delta: {r.get('delta', DASH)}; "
                  f"labels used: {r.get('labels_used', DASH)}; epochs: {r.get('epochs', DASH)}",
                  f"- per-epoch top-1: [{per_epoch}]",
                  f"- commit: {str(r.get('commit', DASH))[:12]}",
                  f"- command: `{r.get('command', DASH)}`", ""]
    return "\n".join(lines)


def write_plot(path, groups, teachers, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warn(f"matplotlib is not installed; skipping {path}")
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    lines = {}
    for (q, m, bits), runs in groups.items():
        if bits[0] != bits[1] or not runs:
            continue  # mixed W/A widths have no place on a one-axis plot
        lines.setdefault((q, m), {})[bits[0]] = mean([r["top1"] for r in runs.values()])
    all_bits = {1, 2, 4, 8}
    for (q, m) in sorted(lines, key=lambda k: row_key((k[0], k[1], 0))):
        pts = sorted(lines[(q, m)].items())
        all_bits.update(b for b, _ in pts)
        ax.plot([b for b, _ in pts], [v for _, v in pts], marker="o", linewidth=1.5,
                label=f"{q} / {m}")
    tm = mean([t["top1"] for t in teachers.values()])
    if tm is not None:
        ax.axhline(tm, color="black", linestyle="--", linewidth=1,
                   label=f"FP teacher (ours, {tm:.2f})")
    ref_bits = sorted(REF)
    ax.scatter(ref_bits, [REF[b][1] for b in ref_bits], marker="*", s=160, color="crimson",
               zorder=5, label="PyTorch re-run: interval SQAKD")
    ax.scatter(ref_bits, [REF[b][0] for b in ref_bits], marker="x", s=70, color="dimgray",
               zorder=5, label="PyTorch re-run: interval QAT")
    ax.set_xscale("log", base=2)
    ticks = sorted(all_bits)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(b) for b in ticks])
    ax.set_xlim(min(ticks) / 1.3, max(ticks) * 1.3)
    ax.set_xlabel("bit width (W = A bits, log scale)")
    ax.set_ylabel("final-epoch test top-1 (%), mean over seeds")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return True


def students_mode(runs, out_dir):
    records = load_student_records(runs)
    if not records:
        sys.exit(f"no result.json under {runs}")
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, STUDENTS_NAME)
    write_atomic(base + ".json", json.dumps(records, indent=2) + "\n")

    teachers = load_teacher()
    groups = group(records)
    row_keys = set(groups)
    row_keys.update(load_jobs(runs))
    for b in REF:  # the rows compared with the PyTorch re-run always show, finished or not
        row_keys.update({("interval", "sqakd", (b, b)), ("interval", "qat_ce", (b, b))})
    row_keys = sorted(row_keys, key=row_key)

    md = build_markdown(records, groups, row_keys, teachers)
    write_atomic(base + ".md", md + "\n")
    title = (f"{records[0].get('model', '?')} on {records[0].get('dataset', '?')}: "
             "quantized students")
    plotted = write_plot(base + ".png", groups, teachers, title)
    print(md)
    print(f"\nwrote {base}.json, {base}.md" + (f", {base}.png" if plotted else ""),
          file=sys.stderr)


# explore mode: recipes beyond the reference (scripts/run_students.sh --out <dir>)

def explore_mode(runs, out_dir):
    """One row per run: its recipe (quantizer, bits, epochs, estimator/delta, T) against its teacher."""
    records = load_student_records(runs)
    if not records:
        sys.exit(f"no result.json under {runs}")
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, os.path.basename(os.path.normpath(out_dir)))
    write_atomic(base + ".json", json.dumps(records, indent=2) + "\n")
    reference = {}  # the 6-epoch table's final top-1 per (quantizer, method, bits, seed)
    for r in load_student_records(os.path.join(os.path.dirname(TEACHER_JSON), "students_resnet20_fmnist")):
        reference[(r.get("quantizer"), r.get("method"), bits_of(r), r.get("seed"))] = r.get("top1")
    model, dataset = records[0].get("model", "?"), records[0].get("dataset", "?")
    lines = [f"# Beyond the reference recipe: {model} on {dataset}", "",
             "Label-free (sqakd) students with other recipes than the table's (6 epochs, clipped STE, "
             "T = 4), each against the teacher it distilled from. Accuracies are test top-1 (%); "
             "gap = student final top-1 minus its teacher's.", "",
             "| quantizer | method | W/A bits | seed | epochs | estimator | delta | Hessian update every | T "
             "| final top-1 | mean of last 3 | teacher | gap to teacher | 6-epoch reference | goal |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        t = r.get("teacher_top1")
        gap = r["top1"] - t if t is not None else None
        b = bits_of(r)
        goal = DASH
        if gap is not None and b == (2, 2):
            goal = "W2A2 within 1 point: " + ("**met**" if gap >= -1.0 else "not met")
        elif gap is not None and b == (4, 4):
            goal = "W4A4 at or above: " + ("**met**" if gap >= 0 else "not met")
        ref = reference.get((r.get("quantizer"), r.get("method"), b, r.get("seed")))
        lines.append(f"| {r.get('quantizer')} | {r.get('method')} | {bits_label(b)} | {r.get('seed')} "
                     f"| {r.get('epochs')} | {r.get('estimator')} | {r.get('delta')} "
                     f"| {r.get('ewgs_update_every') or DASH} | {r.get('temperature')} | {fmt(r['top1'])} "
                     f"| {fmt(r.get('last3_top1'))} | {fmt(t)} | {fmt(gap, signed=True)} | {fmt(ref)} | {goal} |")
    lines += ["", "## Commands", ""]
    for r in records:
        lines.append(f"- `{r.get('command', '?')}` (commit {str(r.get('commit', '?'))[:12]})")
    md = "\n".join(lines)
    write_atomic(base + ".md", md + "\n")
    print(md)
    print(f"\nwrote {base}.json, {base}.md", file=sys.stderr)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: aggregate_results.py teacher <runs-dir> <out-prefix>\n"
                 "       aggregate_results.py students <runs-dir> <out-dir>\n"
                 "       aggregate_results.py explore <runs-dir> <out-dir>")
    kind, runs, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if kind == "students":
        students_mode(runs, out)
    elif kind == "explore":
        explore_mode(runs, out)
    else:
        teacher_mode(kind, runs, out)


if __name__ == "__main__":
    main()
