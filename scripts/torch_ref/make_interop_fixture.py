#!/usr/bin/python3
"""Make the PyTorch -> sqakd interop fixture (tests/io/test_interop.cpp reads it).

Builds the reference ResNet-20 (models.py) with seed 0, trains it a few SGD steps in train
mode on real Fashion-MNIST training images, runs a few more train-mode batches without
gradients (so the BatchNorm running statistics are far from their initial 0/1 and match the
weights), then in eval mode computes the logits of the first 64 test images.

Writes
    tests/data/io/resnet20_fmnist.safetensors     the state dict (PyTorch names, F32)
    tests/data/io/resnet20_fmnist_logits.txt      64 rows x 10 logits, 9 significant digits

Run from anywhere:  /usr/bin/python3 scripts/torch_ref/make_interop_fixture.py
Needs python3-torch and dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/).
"""

import gzip
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_safetensors import load_safetensors, save_safetensors  # noqa: E402
from models import resnet20  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(HERE, "..", "..", "tests", "data", "io")
MEAN, STD = 0.2860406, 0.3530242
SEED, STEPS, BATCH, N_TEST = 0, 12, 64, 64
# Train-mode forward passes without gradient after the SGD steps: with momentum 0.1 the
# running statistics lag the weights by ~10 steps; these let them catch up, so the eval-mode
# logits are those of a sane model (moderate magnitudes, better than chance).
CALIB = 12


def read_idx_images(path, count):
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, f"{path}: not an IDX image file"
        count = min(count, n)
        raw = f.read(count * rows * cols)
    x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(count, 1, rows, cols)
    return x


def read_idx_labels(path, count):
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049, f"{path}: not an IDX label file"
        raw = f.read(min(count, n))
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()


def normalise(x_u8):
    # Same arithmetic as the C++ test: float32 x/255, then (x - mean) / std.
    return (x_u8.float() / 255.0 - MEAN) / STD


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    model = resnet20(in_channels=1, num_classes=10)

    n_train = (STEPS + CALIB) * BATCH
    xtr = normalise(read_idx_images(os.path.join(DATA, "train-images-idx3-ubyte.gz"), n_train))
    ytr = read_idx_labels(os.path.join(DATA, "train-labels-idx1-ubyte.gz"), n_train)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    model.train()
    for s in range(STEPS):
        xb, yb = xtr[s * BATCH:(s + 1) * BATCH], ytr[s * BATCH:(s + 1) * BATCH]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        print(f"step {s}: loss {loss.item():.4f}")
    with torch.no_grad():
        for s in range(STEPS, STEPS + CALIB):
            model(xtr[s * BATCH:(s + 1) * BATCH])

    model.eval()
    xte = normalise(read_idx_images(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), N_TEST))
    yte = read_idx_labels(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"), N_TEST)
    with torch.no_grad():
        logits = model(xte)
    acc = (logits.argmax(1) == yte).float().mean().item()
    print(f"eval logits: max |z| {logits.abs().max().item():.3f}, accuracy on {N_TEST} test images {acc:.3f}")

    os.makedirs(OUT, exist_ok=True)
    st_path = os.path.join(OUT, "resnet20_fmnist.safetensors")
    meta = {
        "producer": "scripts/torch_ref/make_interop_fixture.py",
        "torch": torch.__version__,
        "seed": str(SEED),
        "sgd_steps": str(STEPS),
        "bn_calibration_batches": str(CALIB),
        "batch": str(BATCH),
    }
    save_safetensors(model.state_dict(), st_path, meta)

    # Self-check: the file reloads into a fresh model and gives the same logits.
    sd, _ = load_safetensors(st_path)
    again = resnet20(1, 10)
    missing, unexpected = again.load_state_dict(sd, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing) and not unexpected, (missing, unexpected)
    again.eval()
    with torch.no_grad():
        assert torch.equal(again(xte), logits), "safetensors round trip changed the logits"

    with open(os.path.join(OUT, "resnet20_fmnist_logits.txt"), "w") as f:
        f.write(f"# {N_TEST}x10 eval-mode logits of the first {N_TEST} Fashion-MNIST test images,\n")
        f.write("# normalised (x/255 - 0.2860406)/0.3530242, from resnet20_fmnist.safetensors;\n")
        f.write("# made by scripts/torch_ref/make_interop_fixture.py\n")
        for row in logits.tolist():
            f.write(" ".join(f"{v:.9g}" for v in row) + "\n")
    print(f"wrote {st_path} ({os.path.getsize(st_path)} bytes)")


if __name__ == "__main__":
    main()
