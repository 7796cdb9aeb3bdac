#!/usr/bin/python3
"""Generate the PyTorch golden files the Go tests of package model compare against.

    /usr/bin/python3 golden.py [path/to/rotnet.py]    # default /work/shared/reference/rotnet.py

For each case it builds the rotnet.py network, sets every parameter from a closed formula that
golden_test.go reproduces (so no weights need storing), runs 3 training steps on a fixed batch with
SGD (momentum 0.9, Nesterov, weight decay 5e-4, lr 0.1) and writes CASE.golden.safetensors with:
input, labels, logits and loss of step 1, grad.NAME of step 1 for every parameter, sgd3.NAME of
every state_dict entry after 3 steps, eval_logits (eval mode after the steps) and, for the small
case, adam3.NAME: the parameters after 3 Adam steps (lr 1e-3, weight decay 1e-4) from the start.
"""
import importlib.util
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

CASES = [
    # name, arch, blocks, width, size, batch
    ("small16", "small", 3, 64, 16, 4),
    ("nin4w48s16", "nin4", 4, 48, 16, 4),
]


def load_rotnet(path):
    spec = importlib.util.spec_from_file_location("rotnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(rotnet, arch, blocks, width):
    if arch == "small":
        # rotnet.small has widths 32/64/128; scale them by width/128 as whorl's Config.Width does.
        import torch.nn as nn
        w = [width // 4, width // 2, width]
        cbr = rotnet.ConvBNReLU
        return rotnet.Net([rotnet.Block([cbr(3, w[0], 3), cbr(w[0], w[0], 3)], nn.MaxPool2d(2)),
                           rotnet.Block([cbr(w[0], w[1], 3), cbr(w[1], w[1], 3)], nn.MaxPool2d(2)),
                           rotnet.Block([cbr(w[1], w[2], 3), cbr(w[2], w[2], 3)])], w[2], 4)
    return rotnet.nin(blocks, width, 4)


M32 = 0xFFFFFFFF


def hash_uniform(k, n):
    """n values in [-1, 1) from a 32-bit integer hash of (k, i); golden_test.go hashUniform."""
    h = (torch.arange(n, dtype=torch.int64) * 2654435761 + k * 40503 + 12345) & M32
    h = h ^ (h >> 15)
    h = (h * 0x2C1B3C6D) & M32
    h = h ^ (h >> 12)
    h = (h * 0x297A2D39) & M32
    h = h ^ (h >> 15)
    return h.double() / 2.0**31 - 1


def formula_init(model):
    """Parameter k (state_dict order, parameters only) element i: see golden_test.go formulaInit."""
    k = 0
    for name, p in model.named_parameters():
        n = p.numel()
        s = hash_uniform(k, n)
        if name.endswith("bn.weight"):
            v = 1 + 0.1 * s
        elif name.endswith("bn.bias") or name.endswith("classifier.bias"):
            v = 0.1 * s
        else:
            fan_in = n // p.shape[0]
            v = s / math.sqrt(fan_in)
        with torch.no_grad():
            p.copy_(v.reshape(p.shape).float())
        k += 1


def formula_input(batch, size):
    return (1.5 * hash_uniform(1000, batch * 3 * size * size)).float().reshape(batch, 3, size, size)


def train(model, opt, x, y, steps):
    first = None
    for s in range(steps):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        if s == 0:
            first = (logits.detach().clone(), loss.detach().clone(),
                     {n: p.grad.detach().clone() for n, p in model.named_parameters()})
        opt.step()
    return first


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def run(rotnet, case, dtype):
    """All golden tensors of one case, computed in dtype."""
    name, arch, blocks, width, size, batch = case
    model = build(rotnet, arch, blocks, width)
    formula_init(model)
    model.train().to(dtype)
    x = formula_input(batch, size).to(dtype)
    y = torch.arange(batch) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    logits, loss, grads = train(model, opt, x, y, 3)
    out = {"input": x, "labels": y.float(), "logits": logits, "loss": loss.reshape(1)}
    out.update({"grad." + n: g for n, g in grads.items()})
    out.update({"sgd3." + n: v for n, v in model.state_dict().items()})
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(x)
    if arch == "small":
        model = build(rotnet, arch, blocks, width)
        formula_init(model)
        model.train().to(dtype)
        adam = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        train(model, adam, x, y, 3)
        out.update({"adam3." + n: p.detach() for n, p in model.named_parameters()})
    return {k: v.detach().float() for k, v in out.items()}


def rel(a, b):
    den = b.double().abs().max()
    num = (a.double() - b.double()).abs().max()
    return float(num / den) if den > 0 else float(num)


def main():
    rotnet = load_rotnet(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/rotnet.py")
    torch.set_num_threads(1)
    for case in CASES:
        name, arch, blocks, width, size, batch = case
        out = run(rotnet, case, torch.float32)
        # Conditioning: float32 PyTorch against float64 PyTorch must agree far inside the Go
        # tests' 1e-4 tolerance, or the case is too sensitive (ReLU/max-pool flips) to be a test.
        ref = run(rotnet, case, torch.float64)
        worst = max((rel(out[k], ref[k]), k) for k in out)
        cfg = {"arch": arch, "blocks": blocks, "width": width, "input_size": size, "classes": 4}
        write_safetensors(name + ".golden.safetensors", out,
                          {"config": json.dumps(cfg), "torch": torch.__version__, "batch": str(batch)})
        print(name, "loss %.6f" % float(out["loss"]), "tensors", len(out),
              "float32-vs-float64 worst %.2g (%s)" % worst)
        if worst[0] > 1e-5:
            sys.exit(name + ": ill-conditioned case, choose other shapes")


if __name__ == "__main__":
    main()
