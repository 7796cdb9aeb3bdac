#!/usr/bin/python3
"""Generate the PyTorch golden files the Go tests of package model compare against.

    /usr/bin/python3 golden.py [path/to/rotnet.py [CASE...]]    # default /work/shared/reference/rotnet.py, all cases

For each case it builds the rotnet.py network, sets every parameter from a closed formula that
golden_test.go reproduces (so no weights need storing), runs 3 training steps on a fixed batch with
SGD (momentum 0.9, Nesterov, weight decay 5e-4, lr 0.1) and writes CASE.golden.safetensors with:
input, labels, logits and loss of step 1, grad.NAME of step 1 for every parameter, sgd3.NAME of
every state_dict entry after 3 steps, eval_logits (eval mode after the steps) and, for the small
and ResNet cases, adam3.NAME: the parameters after 3 Adam steps (lr 1e-3, weight decay 1e-4) from
the start.

ResNet tensors are large (ResNet-18 has 11 M parameters), so every tensor of more than SAMPLES
elements is stored as SAMPLES values at the indices sample_index() picks (golden_test.go
sampleIndex) plus NAME#stats = [max |v|, sum v, sum |v|]: the files stay small while every
element still counts in the sums.
"""
import importlib.util
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

CASES = [
    # name, arch, blocks, width, size, batch, input key. The key picks the input's hash stream:
    # about half of the inputs a small-stem ResNet-18 sees put some ReLU input within float32
    # rounding of 0 (a flip that moves a gradient by 0.1-1%), which main() refuses; a flip can
    # also hit whorl's rounding and not PyTorch's, so a case is kept when both pass (tried and
    # dropped: small stem at 24 and 48 px, batch 8 and 4).
    ("small16", "small", 3, 64, 16, 4, 1000),
    ("nin4w48s16", "nin4", 4, 48, 16, 4, 1000),
    ("resnet18s64", "resnet18", 5, 512, 64, 8, 1000),
    ("resnet18s96", "resnet18", 5, 512, 96, 8, 1000),
    ("resnet18-smalls16", "resnet18-small", 5, 512, 16, 8, 1001),
    ("resnet18-smalls32", "resnet18-small", 5, 512, 32, 8, 1003),
]

# Optimiser settings per family: SGD (lr) and Adam (lr, eps). Three steps of lr 0.1 on a
# ResNet-18 with batch 8 are chaotic (float32 and float64 PyTorch part by 5%), and Adam turns
# gradients at rounding level into full-size steps unless eps dominates them.
OPTIM = {"default": (0.1, 1e-3, 1e-8), "resnet": (0.01, 1e-4, 1e-2)}

SAMPLES = 256


def load_rotnet(path):
    spec = importlib.util.spec_from_file_location("rotnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(rotnet, arch, blocks, width):
    if arch.startswith("resnet"):
        return rotnet.MODELS[arch]()
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
        if p.dim() == 1 and name.endswith(".weight"):  # BatchNorm weights
            v = 1 + 0.1 * s
        elif p.dim() == 1:  # BatchNorm and head biases
            v = 0.1 * s
        else:
            fan_in = n // p.shape[0]
            v = s / math.sqrt(fan_in)
        with torch.no_grad():
            p.copy_(v.reshape(p.shape).float())
        k += 1


def formula_input(batch, size, key):
    """The input batch; golden_test.go formulaInput."""
    return (1.5 * hash_uniform(key, batch * 3 * size * size)).float().reshape(batch, 3, size, size)


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


def perturbed(t, seed):
    """t with every element moved by up to one float32 rounding (relative 2^-24), from seed."""
    if seed is None:
        return t
    g = torch.Generator().manual_seed(seed)
    return t * (1 + (2 * torch.rand(t.shape, generator=g, dtype=torch.float64) - 1).to(t.dtype) * 2.0**-24)


def fresh(rotnet, arch, blocks, width, dtype, seed):
    """The formula-initialised network in dtype, its parameters perturbed with seed."""
    model = build(rotnet, arch, blocks, width)
    formula_init(model)
    model.train().to(dtype)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(perturbed(p, None if seed is None else seed * 1000 + i))
    return model


def run(rotnet, case, dtype, seed=None):
    """All golden tensors of one case, computed in dtype (inputs and parameters perturbed by
    float32 rounding with seed, when set)."""
    name, arch, blocks, width, size, batch, key = case
    model = fresh(rotnet, arch, blocks, width, dtype, seed)
    x = perturbed(formula_input(batch, size, key).to(dtype), seed)
    y = torch.arange(batch) % 4
    sgd_lr, adam_lr, adam_eps = OPTIM["resnet" if arch.startswith("resnet") else "default"]
    opt = torch.optim.SGD(model.parameters(), lr=sgd_lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    logits, loss, grads = train(model, opt, x, y, 3)
    out = {"input": x, "labels": y.float(), "logits": logits, "loss": loss.reshape(1)}
    out.update({"grad." + n: g for n, g in grads.items()})
    out.update({"sgd3." + n: v for n, v in model.state_dict().items()})
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(x)
    if arch == "small" or arch.startswith("resnet"):
        model = fresh(rotnet, arch, blocks, width, dtype, seed)
        adam = torch.optim.Adam(model.parameters(), lr=adam_lr, eps=adam_eps, weight_decay=1e-4)
        train(model, adam, x, y, 3)
        out.update({"adam3." + n: p.detach() for n, p in model.named_parameters()})
    return {k: v.detach().float() for k, v in out.items()}


def sample_index(j, n):
    """The j-th of SAMPLES indices into a tensor of n elements; golden_test.go sampleIndex."""
    step = n // SAMPLES
    return j * step + (j * 7919) % step


def compact(tensors):
    """Tensors of more than SAMPLES elements as samples plus NAME#stats (see the module doc)."""
    out = {}
    for k, v in tensors.items():
        flat = v.reshape(-1).double()
        if flat.numel() <= SAMPLES:
            out[k] = v
            continue
        idx = torch.tensor([sample_index(j, flat.numel()) for j in range(SAMPLES)])
        out[k] = flat[idx].float()
        out[k + "#stats"] = torch.stack([flat.abs().max(), flat.sum(), flat.abs().sum()]).float()
    return out


def rel(a, b):
    den = b.double().abs().max()
    num = (a.double() - b.double()).abs().max()
    return float(num / den) if den > 0 else float(num)


def main():
    rotnet = load_rotnet(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/rotnet.py")
    torch.set_num_threads(1)
    only, failed = sys.argv[2:], []
    for case in CASES:
        name, arch, blocks, width, size, batch, key = case
        if only and name not in only:
            continue
        ref = run(rotnet, case, torch.float64)
        # Conditioning: how far float32 PyTorch, and float64 PyTorch from inputs and parameters
        # moved by one float32 rounding, land from the reference, per tensor. The first step
        # (logits, loss, gradients) must be conditioned far inside the Go tests' 1e-4 (no ReLU
        # or max-pool input within rounding of its threshold); after 3 steps a deep net may
        # amplify rounding, and the Go test then accepts up to 4x this spread, refusing cases
        # where even that exceeds 1e-3.
        err = {}
        for out in (run(rotnet, case, torch.float32), run(rotnet, case, torch.float64, 1), run(rotnet, case, torch.float64, 2)):
            for k in out:
                err[k] = max(err.get(k, 0.0), rel(out[k], ref[k]))
        first = max((e, k) for k, e in err.items() if k in ("logits", "loss") or k.startswith("grad."))
        worst = max((e, k) for k, e in err.items())
        cfg = {"arch": arch, "blocks": blocks, "width": width, "input_size": size, "classes": 4}
        if arch.startswith("resnet"):
            cfg["arch"], cfg["stem"] = arch.split("-")[0], "small" if arch.endswith("-small") else "imagenet"
        optim = OPTIM["resnet" if arch.startswith("resnet") else "default"]
        if arch.startswith("resnet"):
            del ref["input"]  # golden_test.go recomputes it from input_key
            ref = compact(ref)
        write_safetensors(name + ".golden.safetensors", ref,
                          {"config": json.dumps(cfg), "torch": torch.__version__, "batch": str(batch), "input_key": str(key),
                           "optim": json.dumps(optim), "err": json.dumps({k: float("%.3g" % e) for k, e in err.items()})})
        print(name, "loss %.6f" % float(ref["loss"]), "tensors", len(ref),
              "rounding spread: first step %.2g (%s), worst %.2g (%s)" % (first + worst))
        if first[0] > 1e-5 or worst[0] > 1e-3:
            failed.append(name)
    if failed:
        sys.exit("ill-conditioned cases, choose other shapes: " + " ".join(failed))


if __name__ == "__main__":
    main()
