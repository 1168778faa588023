#!/usr/bin/env python3
"""Generate golden forward/backward data for sqakd's layers with PyTorch.

Run offline (Debian's python3-torch; `python3` on PATH may lack torch):

    /usr/bin/python3 scripts/golden/make_golden_layers.py            # writes tests/data/golden/
    /usr/bin/python3 scripts/golden/make_golden_layers.py --check    # regenerate in memory and
                                                                     # compare with the files

Each case builds a small float32 input x, a float32 module (parameters and buffers) and a fixed
random float32 upstream gradient dy, and stores, one file per case:

    x, dy, param.<name>, buffer.<name>      inputs (buffers before the forward pass)
    y, dx, grad.<name>, buffer_after.<name> expected outputs (BN running stats after train mode)

File format (scripts/golden/golden_io.py, shared with make_golden_quant.py, writes it;
tests/golden/golden_reader.hpp reads it): '#' starts a comment line; every other
line is one float32 tensor

    name ndim d0 d1 ... : v0 v1 v2 ...

values row-major, printed with 9 significant digits, so a correctly rounded strtof gives back
the exact float32.

How the expected outputs are computed: the stored float32 inputs are converted exactly to
float64 and the module is run in float64; the results are rounded once to float32. The golden
values are therefore the correctly rounded answers for the stored inputs, and a comparison
with them measures the error of the float32 implementation under test alone. As a check that
the C++ tolerance is reachable by a float32 implementation, the script also runs PyTorch itself
in float32 and reports (and asserts) its error against the stored values with the same
measure the C++ tests use (see ERROR MEASURE below).

ERROR MEASURE (the same as tests/golden/test_layers_golden.cpp):
    err(a, b) = max_i |a_i - b_i| / max_i |b_i|     per tensor (b = golden)
and a tensor passes when err <= rtol (exact equality when b is all zeros).

Tolerances (asserted here for PyTorch float32, used by the C++ tests): single layers and the
basic block 1e-5; ResNet-20 in float32 1e-4 for quantities that are continuous in the inputs
(logits, running stats, FC and BatchNorm1d gradients) and 5e-2 for gradients below a ReLU,
whose mask float32 rounding can flip (tests/golden/test_resnet_golden.cpp explains; the C++
test also runs ResNet-20 in double against every stored tensor at 1e-6). For the basic block
the script requires every ReLU input to be at least RELU_MARGIN (relative) away from zero, so
no float32 implementation can flip a mask there.

The whole-network case (ResNet-20, 8 images: with 2 the train-mode BatchNorm1d over the batch
makes every earlier gradient ill-conditioned) does not store its 270k parameters: they come from a
deterministic counter-based generator (param_value() below, mirrored in the C++ test) and the
file stores the first values of every parameter (head.<name>) so that a generator mismatch is
reported as such.
"""

import copy
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# scripts/golden/golden_io.py: the file format and command line, shared with make_golden_quant.py
from golden_io import case_header, fmt_tensor, rel_err  # noqa: E402
import golden_io  # noqa: E402

SCRIPT = "scripts/golden/make_golden_layers.py"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "data", "golden")

RTOL_LAYER = 1e-5          # per-layer cases (the C++ side uses the same numbers)
RTOL_NET = 1e-4            # whole network, float32: quantities continuous in the inputs
RTOL_NET_KINKED = 5e-2     # whole network, float32: gradients below a ReLU (mask flips, see C++)
RELU_MARGIN = 1e-4         # composite layer cases: min |ReLU input| / max |ReLU input| required

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False


# ----------------------------------------------------------------------------------------------
# Helpers


def randn(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale + shift).float()


def run_module(module, x, dy, mode, dtype, eval_after=False):
    """Forward + backward of a copy of `module` in `dtype`; returns the output tensors."""
    m = copy.deepcopy(module).to(dtype)
    m.train(mode == "train")
    xx = x.detach().to(dtype).clone().requires_grad_(True)
    y = m(xx)
    y.backward(dy.detach().to(dtype))
    out = {"y": y.detach(), "dx": xx.grad.detach()}
    for n, p in m.named_parameters():
        out["grad." + n] = p.grad.detach()
    if mode == "train":
        for n, b in m.named_buffers():
            if n.endswith("num_batches_tracked"):
                continue
            out["buffer_after." + n] = b.detach()
    if eval_after:
        m.eval()
        with torch.no_grad():
            out["y_eval"] = m(x.detach().to(dtype))
    return out


def relu_margin(module, x, mode):
    """Smallest |ReLU input| / max |ReLU input| over every ReLU of `module` (float64 forward).
    A composite case whose ReLU inputs come this close to zero could have its ReLU mask flipped
    by float32 rounding in the implementation under test, which changes gradients by O(1)
    elements; the script refuses such data instead."""
    m = copy.deepcopy(module).double()
    m.train(mode == "train")
    seen = []
    orig_relu = F.relu

    def relu_spy(t, inplace=False):  # nn.ReLU calls F.relu too
        seen.append(t.detach())
        return orig_relu(t, inplace=inplace)

    F.relu = relu_spy
    try:
        with torch.no_grad():
            m(x.double())
    finally:
        F.relu = orig_relu
    return min((t.abs().min() / t.abs().max()).item() for t in seen), len(seen)


def inputs_of(module, x, dy, with_params=True):
    d = {"x": x, "dy": dy}
    if with_params:
        for n, p in module.named_parameters():
            d["param." + n] = p.detach()
        for n, b in module.named_buffers():
            if n.endswith("num_batches_tracked"):
                continue
            d["buffer." + n] = b.detach()
    return d


def set_bn_state(bn, gen_stats=True):
    """Non-trivial affine parameters and running statistics (float32)."""
    c = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.5 * torch.randn(c))
        bn.bias.copy_(0.5 * torch.randn(c))
        if gen_stats:
            bn.running_mean.copy_(0.5 * torch.randn(c))
            bn.running_var.copy_(0.5 + 1.5 * torch.rand(c))


# ----------------------------------------------------------------------------------------------
# Modules mirroring sqakd's composite layers


class OptionA(nn.Module):
    """SQAKD.md §6: x[:, :, ::s, ::s], then (Out - In)/2 zero channels before and after."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        p = (self.cout - self.cin) // 2
        return F.pad(x, (0, 0, 0, 0, p, p))


class BasicBlock(nn.Module):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, + option-A shortcut, then ReLU.
    Parameter names match sqakd's nn::basic_block: branch.0 conv1, branch.1 bn1, branch.3
    conv2, branch.4 bn2."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if (cin == cout and stride == 1) else OptionA(cin, cout, stride)

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


def resnet20(in_ch=1, classes=10):
    """Same layer indices as sqakd::nn::models::resnet20 (0 conv, 1 bn, 2 relu, 3-11 blocks,
    12 pool, 13 bn1d, 14 fc), so parameter names coincide."""
    layers = [nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in [(16, 1), (32, 2), (64, 2)]:
        for b in range(3):
            layers.append(BasicBlock(cin, cout, stride if b == 0 else 1))
            cin = cout
    layers += [GlobalAvgPool(), nn.BatchNorm1d(64), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# Deterministic parameter generator for the whole-network case (mirrored in C++).
#
# value(name, i) = float32(offset + scale * s),  s = (k - 2^23) / 2^23 in [-1, 1),
#   k = top 24 bits of splitmix64(fnv1a64(name) + i)  (64-bit wrap-around).
# s is exact in double; scale * s is one rounding and offset != 0 only with a power-of-two
# scale (exact product), so the result does not depend on FMA contraction in the C++ build.

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for ch in s.encode():
        h ^= ch
        h = (h * 0x100000001B3) & M64
    return h


def splitmix64_np(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def param_rule(name, shape):
    """(offset, scale) for a ResNet-20 parameter: uniform with the kaiming-normal variance for
    conv/FC weights, 1 +- 0.25 for BN weights, +-0.125 for biases."""
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return 0.0, math.sqrt(6.0 / fan_in)
    if len(shape) == 2:
        return 0.0, math.sqrt(6.0 / shape[1])
    if name.endswith("weight"):  # BN gamma
        return 1.0, 0.25
    return 0.0, 0.125


def param_values(name, shape):
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
        h = splitmix64_np(z)
    k = (h >> np.uint64(40)).astype(np.float64)
    s = (k - 8388608.0) * (1.0 / 8388608.0)
    off, sc = param_rule(name, shape)
    v = (off + sc * s) if off != 0.0 else sc * s
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


# ----------------------------------------------------------------------------------------------
# Cases. Each returns (description, mode, module, x, dy, options).


def case_conv(cin, cout, k, s, p, g, bias, shape):
    def make():
        m = nn.Conv2d(cin, cout, k, s, p, groups=g, bias=bias)
        x = randn(*shape)
        with torch.no_grad():
            y = m(x)
        return m, x, randn(*y.shape)
    return make


def case_linear():
    m = nn.Linear(10, 7, bias=True)
    x = randn(4, 10)
    return m, x, randn(4, 7)


def case_bn(c, shape):
    def make():
        m = nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)
        set_bn_state(m)
        # non-zero mean and non-unit scale so that the normalisation does something
        x = randn(*shape, scale=2.0, shift=1.5)
        return m, x, randn(*shape)
    return make


def case_plain(module_fn, shape, scale=1.0, zeros_at=(), value_at=()):
    def make():
        m = module_fn()
        x = randn(*shape, scale=scale)
        flat = x.view(-1)
        for i in zeros_at:
            flat[i] = 0.0
        for i, v in value_at:
            flat[i] = v
        with torch.no_grad():
            y = m(x)
        return m, x, randn(*y.shape)
    return make


def case_block():
    m = BasicBlock(4, 8, 2)
    set_bn_state(m.branch[1])
    set_bn_state(m.branch[4])
    x = randn(3, 4, 8, 8)
    return m, x, randn(3, 8, 4, 4)


CASES = [
    # name, description, mode, maker
    ("conv3x3_s1_p1", "nn.Conv2d(4, 6, 3, stride=1, padding=1, bias=False); sqakd conv2d<4, 6, 3, 1, 1>",
     "train", case_conv(4, 6, 3, 1, 1, 1, False, (2, 4, 7, 7))),
    ("conv3x3_s2_p1_bias", "nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True); sqakd conv2d<4, 6, 3, 2, 1, 1, true>",
     "train", case_conv(4, 6, 3, 2, 1, 1, True, (2, 4, 9, 9))),
    ("conv3x3_groups2", "nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2, bias=False); sqakd conv2d<4, 6, 3, 1, 1, 2>",
     "train", case_conv(4, 6, 3, 1, 1, 2, False, (2, 4, 6, 6))),
    ("conv3x3_depthwise_s2", "nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6, bias=False); sqakd conv2d<6, 6, 3, 2, 1, 6>",
     "train", case_conv(6, 6, 3, 2, 1, 6, False, (2, 6, 8, 8))),
    ("conv1x1", "nn.Conv2d(5, 7, 1, bias=False); sqakd conv2d<5, 7, 1>",
     "train", case_conv(5, 7, 1, 1, 0, 1, False, (2, 5, 5, 5))),
    ("linear", "nn.Linear(10, 7, bias=True); sqakd linear<10, 7, true>", "train", case_linear),
    ("bn2d_train", "nn.BatchNorm2d(5) train mode, momentum 0.1, eps 1e-5; sqakd batch_norm<5>",
     "train", case_bn(5, (3, 5, 4, 4))),
    ("bn2d_eval", "nn.BatchNorm2d(5) eval mode; sqakd batch_norm<5>", "eval", case_bn(5, (3, 5, 4, 4))),
    ("bn1d_train", "nn.BatchNorm1d(6) train mode, momentum 0.1, eps 1e-5; sqakd batch_norm<6>",
     "train", case_bn(6, (8, 6))),
    ("bn1d_eval", "nn.BatchNorm1d(6) eval mode; sqakd batch_norm<6>", "eval", case_bn(6, (8, 6))),
    ("max_pool2x2", "nn.MaxPool2d(2) on 7x7 (floor); sqakd max_pool<2>",
     "train", case_plain(lambda: nn.MaxPool2d(2), (2, 3, 7, 7))),
    ("max_pool3x3_s2_p1", "nn.MaxPool2d(3, stride=2, padding=1); sqakd max_pool<3, 2, 1>",
     "train", case_plain(lambda: nn.MaxPool2d(3, 2, 1), (2, 3, 7, 7))),
    ("avg_pool2x2", "nn.AvgPool2d(2) on 7x7 (floor); sqakd avg_pool<2>",
     "train", case_plain(lambda: nn.AvgPool2d(2), (2, 3, 7, 7))),
    ("avg_pool3x3_s2_p1", "nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True); sqakd avg_pool<3, 2, 1>",
     "train", case_plain(lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 8, 8))),
    ("global_avg_pool", "x.mean(dim=(2, 3)); sqakd global_avg_pool<>",
     "train", case_plain(GlobalAvgPool, (2, 5, 3, 4))),
    ("flatten", "nn.Flatten(); sqakd flatten<>", "train", case_plain(nn.Flatten, (2, 3, 2, 2))),
    # exact zeros (and exact 6s) in x: the gradient at the kinks is 0, as in PyTorch
    ("relu", "nn.ReLU() with exact zeros in x; sqakd relu<>",
     "train", case_plain(nn.ReLU, (2, 3, 5, 5), zeros_at=(0, 7, 33))),
    ("relu6", "nn.ReLU6() with exact 0 and 6 in x; sqakd relu6<>",
     "train", case_plain(nn.ReLU6, (2, 3, 5, 5), scale=4.0, zeros_at=(0, 7), value_at=((5, 6.0), (40, 6.0)))),
    ("option_a", "x[:, :, ::2, ::2] zero-padded by 2 channels each side on 7x7 (odd); sqakd option_a<4, 8, 2>",
     "train", case_plain(lambda: OptionA(4, 8, 2), (2, 4, 7, 7))),
    ("basic_block", "ResNet basic block, option-A shortcut, In 4, Out 8, stride 2, train mode; "
     "sqakd basic_block<4, 8, 2>", "train", case_block),
]

NET_BATCH = 8


def make_resnet20_case():
    m = resnet20(1, 10)
    sd = {}
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(param_values(n, tuple(p.shape)))
            sd[n] = p
    x = randn(NET_BATCH, 1, 28, 28)
    dy = randn(NET_BATCH, 10)
    return m, x, dy


NET_GRADS = ["0.weight", "1.weight", "1.bias", "3.branch.0.weight", "6.branch.0.weight",
             "11.branch.4.weight", "11.branch.4.bias", "13.weight", "13.bias", "14.weight", "14.bias"]
NET_BUFFERS = ["1.running_mean", "1.running_var", "13.running_mean", "13.running_var"]


# ----------------------------------------------------------------------------------------------


def build_all():
    files = {}
    report = []
    for idx, (name, desc, mode, maker) in enumerate(CASES):
        torch.manual_seed(1000 + idx)
        m, x, dy = maker()
        m = m.float()
        if isinstance(m, BasicBlock):  # composite: ReLU inputs are computed, not stored
            margin, count = relu_margin(m, x, mode)
            print(f"  {name}: {count} ReLU inputs, min |v| / max |v| = {margin:.3e}")
            if margin < RELU_MARGIN:
                raise SystemExit(f"{name}: a ReLU input lies within {margin:.1e} of zero; pick another seed")
        ins = inputs_of(m, x, dy)
        ref = run_module(m, x, dy, mode, torch.float64)
        f32 = run_module(m, x, dy, mode, torch.float32)
        lines = [case_header(SCRIPT, name),
                 f"# module: {desc}\n", f"# mode: {mode}\n",
                 "# expected values: float64 computation on the stored float32 inputs, rounded to float32\n"]
        worst = 0.0
        for k, v in ins.items():
            lines.append(fmt_tensor(k, v))
        for k, v in ref.items():
            lines.append(fmt_tensor(k, v.float()))
            e = rel_err(f32[k].numpy(), v.float().numpy())
            worst = max(worst, e)
        files[name] = "".join(lines)
        report.append((name, worst, RTOL_LAYER))

    # whole network
    torch.manual_seed(2000)
    m, x, dy = make_resnet20_case()
    ref = run_module(m, x, dy, "train", torch.float64, eval_after=True)
    f32 = run_module(m, x, dy, "train", torch.float32, eval_after=True)
    lines = [case_header(SCRIPT, "resnet20"),
             f"# module: ResNet-20 (SQAKD.md §6), 1 input channel, 10 classes, batch {NET_BATCH} of 1x28x28; "
             "sqakd nn::models::resnet20<1, 10>\n",
             "# mode: train (forward + backward), then an eval-mode forward with the updated running stats (y_eval)\n",
             "# parameters: not stored; generated by param_value() (see the script), head.<name> = first values\n",
             "# expected values: float64 computation on the float32 inputs, rounded to float32\n"]
    lines.append(fmt_tensor("x", x))
    lines.append(fmt_tensor("dy", dy))
    for n, p in m.named_parameters():
        lines.append(fmt_tensor("head." + n, p.detach().reshape(-1)[:4]))
    keep = ["y", "dx", "y_eval"] + ["grad." + n for n in NET_GRADS] + ["buffer_after." + n for n in NET_BUFFERS]
    worst_smooth = worst_kinked = 0.0
    for k in keep:
        lines.append(fmt_tensor(k, ref[k].float()))
        e = rel_err(f32[k].numpy(), ref[k].float().numpy())
        # continuous in the inputs: forward values, running stats, BN1d (13) and FC (14) grads
        if k == "dx" or (k.startswith("grad.") and not k.startswith(("grad.13.", "grad.14."))):
            worst_kinked = max(worst_kinked, e)
        else:
            worst_smooth = max(worst_smooth, e)
    files["resnet20"] = "".join(lines)
    report.append(("resnet20 (smooth)", worst_smooth, RTOL_NET))
    report.append(("resnet20 (below ReLU)", worst_kinked, RTOL_NET_KINKED))
    margin, count = relu_margin(m, x, "train")
    print(f"  resnet20: {count} ReLUs, min |v| / max |v| = {margin:.3e} (float32 mask flips possible)")
    return files, report


def main():
    return golden_io.main(__doc__, OUT_DIR, build_all,
                          "PyTorch float32 vs stored golden (float64 rounded), max_i|a-b| / max_i|b| over all tensors:",
                          24)


if __name__ == "__main__":
    sys.exit(main())
