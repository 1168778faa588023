"""PyTorch reference of the SQAKD student: ResNet-20 with the "interval" quantizer (SQAKD.md 3, 4).

    QuantResNetCifar    models.ResNetCifar (same module and parameter names) whose 18 block convs
                        (layer{1,2,3}.{0,1,2}.conv{1,2}) are QConv2d; the first conv, the FC, the
                        BatchNorms and the option-A shortcuts stay FP.
    QConv2d             out = conv2d(Q_a(x), Q_w(W)) * |s|, with Q_a/Q_w the interval quantizer:
                          x_n = clamp((x - l)/(u - l), 0, 1), v = x_n*(L - 1), k = round(v)
                          weights:     y_w = 2k/(L - 1) - 1   in [-1, 1]   params l_w, u_w
                          activations: y_a = k/(L - 1)        in [0, 1]    params l_a, u_a
                        plus the output scale s. Rounding is half-to-even (torch.round); its
                        backward is RoundEWGS: dL/dv = g*(1 + delta*sign(g)*(v - k)), delta = 0 is
                        the STE (default), a fixed delta > 0 is EWGS (level units, SQAKD.md 3).
                        Clipped elements give no gradient to x, l or u (autograd of clamp).
    make_student(teacher, w_bits, a_bits, delta=0.0)   a student with the teacher's weights
    init_quantizers(student, x)                        the SQAKD.md 3 interval init, one train-mode
                                                       forward, layer by layer in forward order
    quant_parameters / model_parameters                the two optimiser groups (SQAKD.md 5)
    clamp_intervals(student)                           keep u - l >= 1e-8 (after an update)

Run with /usr/bin/python3 (Debian's python3-torch).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import models  # scripts/torch_ref/models.py, the FP ResNet-20

QUANT_PARAM_NAMES = ("l_w", "u_w", "l_a", "u_a", "s")
MIN_INTERVAL = 1e-8


class RoundEWGS(torch.autograd.Function):
    """k = round_half_even(v); backward dL/dv = g * (1 + delta * sign(g) * (v - k))."""

    @staticmethod
    def forward(ctx, v, delta):
        k = torch.round(v)
        ctx.delta = float(delta)
        if ctx.delta != 0.0:
            ctx.save_for_backward(v - k)
        return k

    @staticmethod
    def backward(ctx, g):
        if ctx.delta == 0.0:
            return g, None
        (err,) = ctx.saved_tensors
        return g * (1.0 + ctx.delta * torch.sign(g) * err), None


def interval_codes(x, l, u, levels, delta=0.0):
    """Codes k (float, integer valued, in [0, levels - 1]) of x on [l, u], differentiable."""
    x_n = torch.clamp((x - l) / (u - l), 0.0, 1.0)
    return RoundEWGS.apply(x_n * (levels - 1), delta)


class QConv2d(nn.Conv2d):
    """conv2d(Q_a(x), Q_w(W)) * |s| with the interval quantizer on the input and the weights."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, w_bits=4, a_bits=4, delta_w=0.0, delta_a=0.0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.w_bits, self.a_bits = int(w_bits), int(a_bits)
        self.w_levels, self.a_levels = 2 ** self.w_bits, 2 ** self.a_bits
        self.delta_w, self.delta_a = float(delta_w), float(delta_a)
        self.l_w = nn.Parameter(torch.tensor(-1.0))
        self.u_w = nn.Parameter(torch.tensor(1.0))
        self.l_a = nn.Parameter(torch.tensor(0.0))
        self.u_a = nn.Parameter(torch.tensor(1.0))
        self.s = nn.Parameter(torch.tensor(1.0))

    @classmethod
    def from_conv(cls, conv, w_bits, a_bits, delta_w=0.0, delta_a=0.0):
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                conv.dilation, conv.groups, conv.bias is not None, w_bits, a_bits, delta_w, delta_a)
        with torch.no_grad():
            q.weight.copy_(conv.weight)
            if conv.bias is not None:
                q.bias.copy_(conv.bias)
        return q

    def weight_codes(self):
        return interval_codes(self.weight, self.l_w, self.u_w, self.w_levels, self.delta_w)

    def act_codes(self, x):
        return interval_codes(x, self.l_a, self.u_a, self.a_levels, self.delta_a)

    def quantize_weight(self):
        return self.weight_codes() * (2.0 / (self.w_levels - 1)) - 1.0

    def quantize_act(self, x):
        return self.act_codes(x) * (1.0 / (self.a_levels - 1))

    def forward(self, x):
        return self._conv_forward(self.quantize_act(x), self.quantize_weight(), self.bias) * self.s.abs()

    def extra_repr(self):
        return super().extra_repr() + ", w_bits=%d, a_bits=%d, delta_w=%g, delta_a=%g" % (
            self.w_bits, self.a_bits, self.delta_w, self.delta_a)

    @torch.no_grad()
    def init_from(self, x):
        """SQAKD.md 3 interval init from this layer's real input x (std: unbiased sample std)."""
        sw = self.weight.std().item()
        self.u_w.fill_(3.0 * sw)
        self.l_w.fill_(-3.0 * sw)
        self.l_a.fill_(x.min().item())
        self.u_a.fill_(3.0 * x.std().item() / math.sqrt(1.0 - 2.0 / math.pi))
        clamp_module_intervals(self)
        fp = self._conv_forward(x, self.weight, self.bias).abs().mean().item()
        qn = self._conv_forward(self.quantize_act(x), self.quantize_weight(), self.bias).abs().mean().item()
        self.s.fill_(fp / qn if qn > 0.0 and math.isfinite(fp / qn) else 1.0)


@torch.no_grad()
def clamp_module_intervals(m):
    m.u_w.copy_(torch.maximum(m.u_w, m.l_w + MIN_INTERVAL))
    m.u_a.copy_(torch.maximum(m.u_a, m.l_a + MIN_INTERVAL))


def clamp_intervals(model):
    """Keep u - l >= 1e-8 in every QConv2d (SQAKD.md 3: after each quantizer update)."""
    for m in model.modules():
        if isinstance(m, QConv2d):
            clamp_module_intervals(m)


class QuantResNetCifar(models.ResNetCifar):
    """models.ResNetCifar with the 18 block convs replaced by QConv2d (names unchanged)."""

    def __init__(self, num_blocks=(3, 3, 3), in_channels=1, num_classes=10, w_bits=4, a_bits=4,
                 delta_w=0.0, delta_a=0.0):
        super().__init__(num_blocks, in_channels, num_classes)
        self.w_bits, self.a_bits = w_bits, a_bits
        for layer in (self.layer1, self.layer2, self.layer3):
            for block in layer:
                block.conv1 = QConv2d.from_conv(block.conv1, w_bits, a_bits, delta_w, delta_a)
                block.conv2 = QConv2d.from_conv(block.conv2, w_bits, a_bits, delta_w, delta_a)


def qconvs(model):
    return [m for m in model.modules() if isinstance(m, QConv2d)]


def make_student(teacher, w_bits, a_bits, delta=0.0, delta_w=None, delta_a=None):
    """A W{w_bits}A{a_bits} ResNet-20 student holding the teacher's weights and BN statistics.

    The quantizer parameters keep placeholder values until init_quantizers(student, x)."""
    num_blocks = tuple(len(l) for l in (teacher.layer1, teacher.layer2, teacher.layer3))
    student = QuantResNetCifar(num_blocks, teacher.conv1.in_channels, teacher.linear.out_features,
                               w_bits, a_bits, delta if delta_w is None else delta_w,
                               delta if delta_a is None else delta_a)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    bad = [k for k in missing if k.rsplit(".", 1)[-1] not in QUANT_PARAM_NAMES]
    if bad or unexpected:
        raise RuntimeError("make_student: state dict mismatch: missing %s, unexpected %s" % (bad, unexpected))
    for p in student.parameters():
        p.requires_grad_(True)
    return student.train()


@torch.no_grad()
def init_quantizers(student, x):
    """One train-mode forward of the student on x; each QConv2d is initialised from the input it
    really gets (earlier layers already quantized). Updates BN running statistics once, like the
    reference code's init pass."""
    was_training = student.training
    student.train()
    handles = [m.register_forward_pre_hook(lambda mod, inp: mod.init_from(inp[0])) for m in qconvs(student)]
    try:
        student(x)
    finally:
        for h in handles:
            h.remove()
    student.train(was_training)
    return student


def is_quant_param(name):
    return name.rsplit(".", 1)[-1] in QUANT_PARAM_NAMES


def quant_parameters(model):
    """Quantizer parameters (*.l_w, *.u_w, *.l_a, *.u_a, *.s): Adam lr 1e-5, no decay."""
    return [p for n, p in model.named_parameters() if is_quant_param(n)]


def model_parameters(model):
    """Everything else (conv/FC weights and biases, BN affine): Adam lr 1e-3, L2 1e-4."""
    return [p for n, p in model.named_parameters() if not is_quant_param(n)]
