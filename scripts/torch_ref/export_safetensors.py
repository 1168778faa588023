#!/usr/bin/python3
"""Write (and read back) a PyTorch state dict as safetensors without the safetensors package.

    from export_safetensors import save_safetensors, load_safetensors
    save_safetensors(model.state_dict(), "model.safetensors", {"seed": "0"})

    /usr/bin/python3 scripts/torch_ref/export_safetensors.py model.pt model.safetensors

Format: 8-byte little-endian header length N, N bytes of JSON
{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
padded with spaces to a multiple of 8, then the little-endian data. Tensors are written as F32
(floating tensors are converted), in sorted name order. BatchNorm's num_batches_tracked is
skipped (sqakd does not keep it), as are other non-floating tensors.
"""

import json
import struct
import sys

import torch


def save_safetensors(state_dict, path, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(state_dict):
        t = state_dict[name]
        if name.endswith("num_batches_tracked") or not torch.is_floating_point(t):
            continue
        data = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Returns (dict name -> float32 tensor, metadata dict). F32 only."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    buf = raw[8 + n:]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", f"{name}: only F32 is read here"
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(buf[b:end]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_safetensors.py state_dict.pt out.safetensors")
    sd = torch.load(sys.argv[1], map_location="cpu")
    if isinstance(sd, torch.nn.Module):
        sd = sd.state_dict()
    save_safetensors(sd, sys.argv[2], {"source": sys.argv[1]})
