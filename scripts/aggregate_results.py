#!/usr/bin/env python3
"""Collects per-run result.json records into one JSON list and a Markdown table.

    aggregate_results.py teacher <runs-dir> <out-prefix>

writes <out-prefix>.json (a list of records, the format of DESIGN.md "Results files") and
<out-prefix>.md (a table plus the mean over seeds).
"""
import glob
import json
import os
import sys


def main():
    kind, runs, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
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


if __name__ == "__main__":
    main()
