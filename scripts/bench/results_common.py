"""What the result writers of the benchmark scripts share: scripts/bench/write_results.py
(scripts/bench_train_step.sh) and scripts/bench/write_sqakd_results.py (scripts/bench_sqakd_step.sh).

Both merge sqakd's Google Benchmark JSON with the PyTorch side's JSON into records in the shared
DESIGN.md format and a Markdown page; the fields that describe the run (machine, commit, date),
the statistics and the way the files are written must not drift apart between them, so they
live here once. Standard library only: the writers run under /usr/bin/python3 without torch.
"""

import datetime
import json
import os
import statistics
import subprocess

ISA_FLAGS = ("avx512_vnni", "avx512bw", "avx512f", "avx2", "fma", "sse4_1")


def add_run_arguments(ap):
    """The writers' last arguments, what the shell script knows about the run: OMP threads, the
    command line and load average to record, the checkout (for the commit) and the two outputs."""
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--load-before", default="")
    ap.add_argument("--root", required=True, help="repository root (for git)")
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--out-md", required=True)


def load(p):
    with open(p) as f:
        return json.load(f)


def median(v, empty=None):
    """Median of v; `empty` for an empty list (write_results.py has always recorded 0.0 there)."""
    return statistics.median(v) if v else empty


def quantile(v, q, empty=None):
    """Linear-interpolation quantile (numpy's default); `empty` for an empty list."""
    v = sorted(v)
    if not v:
        return empty
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def machine(lscpu=False):
    """(model name and core count, vector ISA): the model from /proc/cpuinfo, or with lscpu=True
    from lscpu's "Model name" first (write_sqakd_results.py) and /proc/cpuinfo where lscpu has none."""
    model, n, flags = None, 0, set()
    if lscpu:
        try:
            r = subprocess.run(["lscpu"], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
            for line in r.stdout.splitlines():
                k, _, v = line.partition(":")
                if k.strip() == "Model name" and v.strip():
                    model = v.strip()
                    break
        except OSError:
            pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and model is None:
                    model = v.strip()
                elif k == "processor":
                    n += 1
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    isa = [f for f in ISA_FLAGS if f in flags]
    return "%s (%d cores)" % (model or "unknown CPU", n or os.cpu_count() or 0), " ".join(isa)


def commit(root, env_var=None):
    """HEAD of the checkout at root, "+dirty" with uncommitted changes, "unknown" without git;
    the environment variable env_var, when named and set, instead (a run from an exported tree)."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]

    def git(*a):
        return subprocess.run(["git", "-C", root] + list(a), capture_output=True, text=True)

    try:
        r = git("rev-parse", "HEAD")
        if r.returncode != 0:
            return "unknown"
        dirty = git("diff", "--quiet", "HEAD", "--").returncode != 0
    except OSError:
        return "unknown"
    return r.stdout.strip() + ("+dirty" if dirty else "")


def utc_now():
    """The records' date: UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def baseline_name(torch_version, mkldnn_available):
    """The baseline's name in the records, e.g. "pytorch-1.13.0 (python3-torch, oneDNN)"; Debian's
    "1.13.0a0" and pip's "2.1.0+cpu" both name the release."""
    v = torch_version.split("a0")[0].split("+")[0]
    return "pytorch-%s (python3-torch, %s)" % (v, "oneDNN" if mkldnn_available else "native CPU kernels")


def write_atomic(path, text):
    """Temporary file + rename: a reader never sees half a file, an interrupted run leaves the old one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def rounded(x):
    """Floats to 6 significant digits: timings are not more precise than that."""
    if isinstance(x, float):
        return float("%.6g" % x)
    if isinstance(x, list):
        return [rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    return x


def write_records(path, records):
    """The records file: a JSON list, one record per metric, floats rounded."""
    write_atomic(path, json.dumps(rounded(records), indent=1) + "\n")


def f1(x):
    """A Markdown table cell: one decimal, "-" for a missing value."""
    return "-" if x is None else "%.1f" % x
