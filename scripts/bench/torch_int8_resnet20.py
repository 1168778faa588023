#!/usr/bin/python3
"""PyTorch's int8 inference of ResNet-20 (1x28x28, 10 classes), the peer of sqakd's integer
network in scripts/bench_deploy.sh.

The network is scripts/torch_ref/models.py's resnet20 (the same architecture as
sqakd::nn::models::resnet20<1, 10>: option-A shortcuts, BatchNorm1d before the FC), random
weights, BatchNorm running statistics set from a calibration batch. It is quantized the way
PyTorch users do it, with its own best coverage: FX graph mode post-training quantization
(prepare_fx / convert_fx) with the default qconfig of the quantized engine, every conv (BN and
ReLU fused), the residual add+ReLU and the linear layer in int8; the engine is `onednn` (Debian's
python3-torch 1.13 ships onednn and qnnpack, no fbgemm). Timed: --warmup untimed then --iters
timed forwards under torch.inference_mode() for each batch size, wall clock, medians; also the
FP32 model for reference. Writes one JSON file (atomically).

  /usr/bin/python3 scripts/bench/torch_int8_resnet20.py --threads 2 --out /tmp/torch_int8.json
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import TORCH_REF, import_torch, info, write_json  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--iters", type=int, default=200, help="timed forwards at batch 1 (fewer, >= 10, at larger batches)")
ap.add_argument("--engine", default="onednn")
ap.add_argument("--out", required=True)
args = ap.parse_args()
if args.threads < 1 or args.warmup < 0 or args.iters < 1:
    ap.error("--threads and --iters must be >= 1, --warmup >= 0")

torch = import_torch(args.threads)
sys.path.insert(0, TORCH_REF)
from models import resnet20  # noqa: E402
from torch.ao.quantization import get_default_qconfig_mapping  # noqa: E402
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx  # noqa: E402

if args.engine not in torch.backends.quantized.supported_engines:
    raise SystemExit("torch_int8_resnet20.py: engine %s not in %s" % (args.engine, torch.backends.quantized.supported_engines))
torch.backends.quantized.engine = args.engine
torch.manual_seed(0)

fp = resnet20(in_channels=1, num_classes=10)
fp.train()
with torch.no_grad():  # BatchNorm statistics of a random batch (as a trained network has some)
    for _ in range(3):
        fp(torch.randn(64, 1, 28, 28))
fp.eval()

example = (torch.randn(1, 1, 28, 28),)
prepared = prepare_fx(fp, get_default_qconfig_mapping(args.engine), example_inputs=example)
with torch.no_grad():
    for _ in range(4):
        prepared(torch.randn(32, 1, 28, 28))
q = convert_fx(prepared)
q.eval()

# what was quantized: the int8 modules of the converted graph
qmods = [type(m).__module__ + "." + type(m).__name__ for m in q.modules() if "quantized" in type(m).__module__]
n_qconv = sum(1 for m in qmods if "Conv" in m)
n_qlinear = sum(1 for m in qmods if m.endswith(".Linear"))
if n_qconv < 19:
    raise SystemExit("torch_int8_resnet20.py: only %d int8 convolutions after convert_fx (expected 19)" % n_qconv)


def time_model(model, batch):
    x = torch.randn(batch, 1, 28, 28)
    iters = args.iters if batch == 1 else max(10, args.iters // 10)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        ms = []
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            ms.append(1e3 * (time.perf_counter() - t0))
    ms.sort()
    return dict(batch=batch, iters=iters, warmup=args.warmup, median_ms=ms[len(ms) // 2], ms=ms)


batches = [int(b) for b in args.batches.split(",")]
res = dict(info(with_baseline=False), engine=args.engine, quantized_convs=n_qconv, quantized_linears=n_qlinear,
           quantized_modules=sorted(set(qmods)),
           int8=[time_model(q, b) for b in batches], fp32=[time_model(fp, b) for b in batches])
write_json(args.out, res)
for kind in ("int8", "fp32"):
    for r in res[kind]:
        print("torch %s batch %d: median %.3f ms (%d iters)" % (kind, r["batch"], r["median_ms"], r["iters"]))
