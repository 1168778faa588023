#!/usr/bin/python3
"""PyTorch side of the SQAKD distillation-step benchmark: one label-free KD step of a quantized
ResNet-20 student against a frozen FP ResNet-20 teacher (SQAKD.md 2-5), timed like
scripts/bench/torch_train_step.py.

  torch_sqakd_step.py step --threads 2 --steps 20 --warmup 5 --w-bits 4 --a-bits 4
                           --variant {sqakd,fp_student} [--delta 0] --out FILE.json
      teacher: scripts/torch_ref/models.py ResNet-20 (1 input channel, 10 classes), eval mode,
      requires_grad False. Student, variant sqakd: quant_models.make_student(teacher, w, a)
      (18 interval-quantized block convs, STE for delta = 0) after init_quantizers on the batch;
      variant fp_student: an FP copy of the teacher (the same step without fake quantization).
      Batch 256 of fixed 1x28x28 N(0, 1) inputs. Optimisers: Adam(model params, lr 1e-3,
      weight_decay 1e-4) and Adam(quant params *.l_w/u_w/l_a/u_a/s, lr 1e-5) (none for
      fp_student). One timed step:
        opt_model.zero_grad(); opt_quant.zero_grad()
        with torch.no_grad(): zt = teacher(x)
        zs = student(x)
        loss = T*T * F.kl_div(F.log_softmax(zs/T, 1), F.softmax(zt/T, 1), reduction='batchmean')  (T = 4)
        loss.backward(); opt_model.step(); opt_quant.step()
      The u - l >= 1e-8 clamp of SQAKD.md 3 is not part of the timed step (quant_models.clamp_intervals).
      JSON: variant, w_bits, a_bits, threads, batch, steps, warmup, step_ms (per timed step, ms),
      median_ms, torch_version, plus delta, loss_first/loss_last, param counts, thread info.
  torch_sqakd_step.py selftest   (or --selftest)
      asserts: the KL loss and its gradient w.r.t. zs, (T/B)(softmax(zs/T) - softmax(zt/T)), in
      float64 to 1e-6; the quantized student's codes are integers in range, y_w = 2k/(L-1) - 1,
      y_a = k/(L-1), outputs = conv(y_a, y_w)*|s|, for several bit widths; the EWGS backward.

Run with /usr/bin/python3 (Debian's python3-torch). The thread counts are set right after
importing torch, before any tensor exists.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# scripts/bench/torch_common.py and results_common.py, next to this file: shared with torch_train_step.py
import torch_common as tc  # noqa: E402
from results_common import median  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("mode", nargs="?", default="step", choices=["step", "selftest"])
ap.add_argument("--selftest", action="store_true", help="same as the selftest mode")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=20, help="timed distillation steps")
ap.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
ap.add_argument("--w-bits", type=int, default=4)
ap.add_argument("--a-bits", type=int, default=4)
ap.add_argument("--variant", choices=["sqakd", "fp_student"], default="sqakd")
ap.add_argument("--delta", type=float, default=0.0, help="fixed EWGS delta (level units); 0 = STE")
ap.add_argument("--out", help="JSON result (step mode)")
args = ap.parse_args()
if args.selftest:
    args.mode = "selftest"
if args.mode == "step" and not args.out:
    ap.error("step mode needs --out FILE.json")
if args.mode == "step" and (args.steps < 1 or args.warmup < 0 or args.threads < 1
                            or not 1 <= args.w_bits <= 16 or not 1 <= args.a_bits <= 16):
    ap.error("need --steps >= 1, --warmup >= 0, --threads >= 1, 1 <= bits <= 16")

torch = tc.import_torch(args.threads)

import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, tc.TORCH_REF)
import models  # noqa: E402  scripts/torch_ref/models.py: the reference ResNet-20
import quant_models as qm  # noqa: E402  scripts/torch_ref/quant_models.py: the interval student

BATCH = 256
T = 4.0


def sqakd_loss(zs, zt, temp=T):
    """SQAKD.md 2: T^2 * KL(softmax(zt/T) || softmax(zs/T)), summed over classes, batch mean."""
    return temp * temp * F.kl_div(F.log_softmax(zs / temp, 1), F.softmax(zt / temp, 1), reduction="batchmean")


def make_teacher():
    teacher = models.resnet20(in_channels=1, num_classes=10).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def make_step(variant, w_bits, a_bits, delta):
    torch.manual_seed(20)
    teacher = make_teacher()
    x = torch.randn(BATCH, 1, 28, 28)
    if variant == "sqakd":
        student = qm.make_student(teacher, w_bits, a_bits, delta=delta)
        qm.init_quantizers(student, x)
    else:
        student = models.resnet20(in_channels=1, num_classes=10)
        student.load_state_dict(teacher.state_dict())
    student.train()
    mparams, qparams = qm.model_parameters(student), qm.quant_parameters(student)
    opt_model = torch.optim.Adam(mparams, lr=1e-3, weight_decay=1e-4)
    # fp_student has no quantizer parameters (Adam refuses an empty list): no second optimiser
    opt_quant = torch.optim.Adam(qparams, lr=1e-5, weight_decay=0.0) if qparams else None

    if opt_quant is not None:
        def step():
            opt_model.zero_grad()
            opt_quant.zero_grad()
            with torch.no_grad():
                zt = teacher(x)
            zs = student(x)
            loss = sqakd_loss(zs, zt)
            loss.backward()
            opt_model.step()
            opt_quant.step()
            return loss
    else:
        def step():
            opt_model.zero_grad()
            with torch.no_grad():
                zt = teacher(x)
            zs = student(x)
            loss = sqakd_loss(zs, zt)
            loss.backward()
            opt_model.step()
            return loss

    counts = dict(model_params=sum(p.numel() for p in mparams), quant_params=sum(p.numel() for p in qparams),
                  quantized_convs=len(qm.qconvs(student)))
    return step, counts


def run_step():
    step, counts = make_step(args.variant, args.w_bits, args.a_bits, args.delta)
    ms, loss_first, loss_last = tc.time_steps(step, args.warmup, args.steps)
    fp = args.variant == "fp_student"
    return dict(tc.info(), variant=args.variant, w_bits=32 if fp else args.w_bits,
                a_bits=32 if fp else args.a_bits, threads=args.threads, batch=BATCH, steps=args.steps,
                warmup=args.warmup, step_ms=ms, median_ms=median(ms, 0.0), delta=0.0 if fp else args.delta,
                temperature=T, loss_first=loss_first, loss_last=loss_last, **counts)


# ---------------------------------------------------------------------------------------------
# Self-test.

def selftest():
    torch.manual_seed(3)
    # 1. The loss and its gradient w.r.t. the student logits, float64.
    B, C = 37, 10
    zs = (3 * torch.randn(B, C, dtype=torch.float64)).requires_grad_(True)
    zt = 3 * torch.randn(B, C, dtype=torch.float64)
    loss = sqakd_loss(zs, zt)
    loss.backward()
    pt, lps = F.softmax(zt / T, 1), F.log_softmax(zs / T, 1)
    ref = T * T * (pt * (pt.log() - lps)).sum() / B
    assert abs(loss.item() - ref.item()) < 1e-6 * max(1.0, abs(ref.item())), (loss.item(), ref.item())
    gref = (T / B) * (F.softmax(zs.detach() / T, 1) - pt)
    gerr = (zs.grad - gref).abs().max().item()
    assert gerr < 1e-6, gerr
    print("selftest: KL loss %.6g, |dL/dzs - (T/B)(p_s - p_t)|_max = %.3g" % (loss.item(), gerr))

    # 2. The EWGS rounding backward (and STE for delta = 0).
    v = torch.tensor([0.2, 0.7, 1.5, 2.5, 2.9], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1.0, -2.0, 0.5, -0.5, 3.0], dtype=torch.float64)
    for delta in (0.0, 0.3):
        v.grad = None
        k = qm.RoundEWGS.apply(v, delta)
        assert torch.equal(k, torch.tensor([0.0, 1.0, 2.0, 2.0, 3.0], dtype=torch.float64))  # half-to-even
        k.backward(g)
        want = g * (1 + delta * torch.sign(g) * (v.detach() - k.detach()))
        assert torch.allclose(v.grad, want, atol=1e-12), (delta, v.grad, want)

    # 3. The quantized student: codes in range, values on the grid, init sane, grads flow.
    teacher = make_teacher()
    x = torch.randn(64, 1, 28, 28)
    for wb, ab in ((1, 1), (2, 2), (4, 4), (8, 8), (2, 4)):
        student = qm.make_student(teacher, wb, ab)
        convs = qm.qconvs(student)
        assert len(convs) == 18, len(convs)
        qm.init_quantizers(student, x)
        Lw, La = 2 ** wb, 2 ** ab
        seen = []

        def hook(m, inp, out):
            with torch.no_grad():
                xin = inp[0]
                kw, ka = m.weight_codes(), m.act_codes(xin)
                yw, ya = m.quantize_weight(), m.quantize_act(xin)
                for kk, L in ((kw, Lw), (ka, La)):
                    assert torch.equal(kk, kk.round()), "codes not integer"
                    assert kk.min() >= 0 and kk.max() <= L - 1, (kk.min(), kk.max(), L)
                assert torch.allclose(yw, 2 * kw / (Lw - 1) - 1, atol=1e-6) and yw.abs().max() <= 1 + 1e-6
                assert torch.allclose(ya, ka / (La - 1), atol=1e-6) and ya.min() >= 0 and ya.max() <= 1 + 1e-6
                ref_out = F.conv2d(ya, yw, m.bias, m.stride, m.padding) * m.s.abs()
                assert torch.allclose(out, ref_out, rtol=1e-5, atol=1e-5)
                assert m.u_w > m.l_w and m.u_a > m.l_a and torch.isfinite(m.s) and m.s > 0
                seen.append((int(kw.max()) - int(kw.min()) + 1, int(ka.max()) - int(ka.min()) + 1))

        hs = [m.register_forward_hook(hook) for m in convs]
        out = student(x)
        for h in hs:
            h.remove()
        assert len(seen) == 18 and out.shape == (64, 10) and torch.isfinite(out).all()
        loss = sqakd_loss(out, teacher(x))
        loss.backward()
        qg = [p.grad for p in qm.quant_parameters(student)]
        assert len(qg) == 5 * 18 and all(gq is not None and torch.isfinite(gq).all() for gq in qg)
        assert sum(int(gq.abs().sum() > 0) for gq in qg) > 0, "no quantizer gradient"
        print("selftest: W%dA%d ok, 18 QConv2d, codes used per layer (w, a) min %s max %s, loss %.4g" % (
            wb, ab, tuple(min(s[i] for s in seen) for i in (0, 1)),
            tuple(max(s[i] for s in seen) for i in (0, 1)), loss.item()))
    print("selftest: all passed")
    return 0


def main():
    if args.mode == "selftest":
        return selftest()
    tc.write_json(args.out, run_step())
    return 0


if __name__ == "__main__":
    sys.exit(main())
