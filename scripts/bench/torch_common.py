"""What the PyTorch sides of the benchmarks share: scripts/bench/torch_train_step.py
(scripts/bench_train_step.sh) and scripts/bench/torch_sqakd_step.py (scripts/bench_sqakd_step.sh).

Both time a training step the same way as their C++ counterparts, so the thread setup, the
timing loop and the result file must be the same code. This module does not import torch
itself: import_torch() does, after the caller has parsed its arguments (--help works without
torch), and the other functions expect it to have run.
"""

import json
import os
import time

# scripts/bench/results_common.py: the baseline's name must be the one the result writers use
from results_common import baseline_name

# scripts/torch_ref (models.py, quant_models.py): the reference models, put on sys.path by the callers
TORCH_REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ref")


def import_torch(threads):
    """torch with `threads` intra-op threads and one inter-op thread. The thread counts are set
    right after importing torch, before any tensor exists: set_num_interop_threads fails once
    inter-op work has started."""
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return torch


def info(with_baseline=False):
    """The torch build and thread counts, as recorded in every result JSON; with_baseline adds
    the baseline's name (torch_train_step.py's JSON carries it, write_results.py reads it)."""
    import torch

    d = {"torch_version": torch.__version__}
    if with_baseline:
        d["baseline"] = baseline_name(torch.__version__, torch.backends.mkldnn.is_available())
    d.update(mkldnn_available=bool(torch.backends.mkldnn.is_available()),
             num_threads=torch.get_num_threads(), num_interop_threads=torch.get_num_interop_threads())
    return d


def time_steps(step, warmup, steps):
    """`warmup` untimed calls of step(), then `steps` timed ones (wall clock, as the C++ side's
    manual time). step() returns the loss. Returns (ms per timed step, loss after the warm-up or
    None without one, loss of the last step)."""
    loss = None
    for _ in range(warmup):
        loss = step()
    loss_first = float(loss) if loss is not None else None
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        ms.append(1e3 * (time.perf_counter() - t0))
    return ms, loss_first, float(loss)


def write_json(path, res):
    """The result JSON, written to a temporary file and renamed: the shell script never reads
    half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, path)
