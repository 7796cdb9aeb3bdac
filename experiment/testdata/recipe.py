#!/usr/bin/python3
"""Quick PyTorch exploration of RotNet recipes for whorl's quick preset (a tuning aid, not a runtime
dependency). Same protocol as the Go experiment: stratified 80/20 split, 10% of train labeled of which
15% held out for validation; tune on validation only.

    /usr/bin/python3 recipe.py '{"data":"full","size":32,"seed":1,"pre_epochs":10,...}'

Prints one JSON line per fine-tune variant with validation and test accuracy.
"""
import json, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, "/work/shared/reference")
import rotnet  # noqa: E402

ROOT = "/work/shared/data/flowers"


def load(size, ccby):
    cache = f"/tmp/whorl_flowers_{size}_{int(ccby)}.npz"
    if os.path.exists(cache):
        z = np.load(cache)
        return z["x"], z["y"]
    allowed = None
    if ccby:
        allowed = set(l.split()[0] for l in open(f"{ROOT}/LICENSE.txt") if "/" in l.split(" ")[0] and " CC-BY" in l)
    classes = sorted(d for d in os.listdir(ROOT) if os.path.isdir(f"{ROOT}/{d}"))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(f"{ROOT}/{c}")):
            if allowed is not None and f"{c}/{f}" not in allowed:
                continue
            im = Image.open(f"{ROOT}/{c}/{f}").convert("RGB")
            if ccby:  # the embedded set is stored at about 40 px
                w, h = im.size; s = 40 / min(w, h)
                im = im.resize((max(40, round(w * s)), max(40, round(h * s))), Image.BOX)
            w, h = im.size; s = size / min(w, h)
            im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BOX)
            w, h = im.size; l, t = (w - size) // 2, (h - size) // 2
            xs.append(np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.uint8)); ys.append(ci)
    x, y = np.stack(xs), np.array(ys)
    np.savez(cache, x=x, y=y)
    return x, y


def split(y, seed, test=0.2, lab=0.1, val=0.15):
    rng = np.random.RandomState(seed)
    tr, te, lt, lv = [], [], [], []
    for c in np.unique(y):
        idx = rng.permutation(np.where(y == c)[0])
        nt = round(len(idx) * test); te += list(idx[:nt]); rest = idx[nt:]; tr += list(rest)
        nl = max(1, round(len(rest) * lab)); li = rest[:nl]; nv = round(nl * val)
        lv += list(li[:nv]); lt += list(li[nv:])
    return [np.array(a) for a in (tr, te, lt, lv)]


def augment(x, pad, flip, g):
    if pad:
        n, c, h, w = x.shape
        p = F.pad(x, (pad, pad, pad, pad))
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=g); oy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        x = torch.stack([p[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])
    if flip:
        m = torch.rand(x.shape[0], generator=g) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def sched(kind, base, step, total):
    if kind == "cosine":
        return base * 0.5 * (1 + np.cos(np.pi * step / total))
    return base


def pretrain(net, X, cfg, g):
    opt = torch.optim.SGD(net.parameters(), lr=cfg["pre_lr"], momentum=0.9, weight_decay=5e-4, nesterov=True)
    B = cfg["pre_batch"]; n = len(X); steps = (n // B) * cfg["pre_epochs"]; s = 0
    for e in range(cfg["pre_epochs"]):
        net.train(); perm = torch.randperm(n, generator=g); tot = cor = 0
        for b in range(n // B):
            xb = augment(X[perm[b * B:(b + 1) * B]], cfg["pre_pad"], True, g)
            if cfg.get("pre_rrc"):
                pass
            x = torch.cat([torch.rot90(xb, r, (2, 3)) for r in range(4)]); y = torch.arange(4).repeat_interleave(len(xb))
            for pg in opt.param_groups: pg["lr"] = sched("cosine", cfg["pre_lr"], s, steps)
            out = net(x); loss = F.cross_entropy(out, y)
            opt.zero_grad(); loss.backward(); opt.step(); s += 1
            cor += (out.argmax(1) == y).sum().item(); tot += len(y)
        print(json.dumps({"pre_epoch": e, "rot_train_acc": cor / tot}), file=sys.stderr, flush=True)


def rot_acc(net, X):
    net.eval(); c = t = 0
    with torch.no_grad():
        for i in range(0, len(X), 256):
            xb = X[i:i + 256]
            x = torch.cat([torch.rot90(xb, r, (2, 3)) for r in range(4)]); y = torch.arange(4).repeat_interleave(len(xb))
            c += (net(x).argmax(1) == y).sum().item(); t += len(y)
    return c / t


def acc(net, X, Y):
    net.eval()
    with torch.no_grad():
        p = torch.cat([net(X[i:i + 256]).argmax(1) for i in range(0, len(X), 256)])
    return (p == Y).float().mean().item()


def supervised(net, X, Y, cfg, v, g):
    body_lr = v.get("body_lr_mult", 1.0)
    head = list(net.classifier.parameters()); hid = set(id(p) for p in head)
    body = [p for p in net.parameters() if id(p) not in hid and p.requires_grad]
    lr = v.get("lr", 1e-3)
    groups = [{"params": body, "lr": lr * body_lr, "base": lr * body_lr}, {"params": head, "lr": lr, "base": lr}]
    if v.get("opt", "adam") == "adam":
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=v.get("wd", 0))
    else:
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=v.get("wd", 5e-4))
    B = cfg["sup_batch"]; E = v.get("epochs", cfg["sup_epochs"]); n = len(X); nb = (n + B - 1) // B; steps = nb * E; s = 0
    for e in range(E):
        net.train(); perm = torch.randperm(n, generator=g)
        for b in range(nb):
            idx = perm[b * B:(b + 1) * B]
            if len(idx) < 2: continue
            x = augment(X[idx], cfg["sup_pad"], True, g)
            for pg in opt.param_groups: pg["lr"] = sched("cosine", pg["base"], s, steps)
            loss = F.cross_entropy(net(x), Y[idx]); opt.zero_grad(); loss.backward(); opt.step(); s += 1


def main():
    cfg = {"data": "full", "size": 32, "seed": 1, "model": "small", "pre_epochs": 10, "pre_batch": 32,
           "pre_lr": 0.1, "pre_pad": 4, "sup_epochs": 40, "sup_batch": 32, "sup_pad": 4, "threads": 2,
           "variants": [{"name": "ft_all_adam"}], "baselines": [{"name": "base_adam"}], "pre_on": "train"}
    cfg.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
    torch.set_num_threads(cfg["threads"])
    t0 = time.time()
    x, y = load(cfg["size"], cfg["data"] == "ccby")
    tr, te, lt, lv = split(y, cfg["seed"])
    X = torch.tensor(x).permute(0, 3, 1, 2).float() / 255
    mean = X[tr].mean((0, 2, 3), keepdim=True); std = X[tr].std((0, 2, 3), keepdim=True)
    X = (X - mean) / std; Y = torch.tensor(y)
    res = {"cfg": {k: v for k, v in cfg.items() if k not in ("variants", "baselines")}, "n": [len(tr), len(te), len(lt), len(lv)]}
    g = torch.Generator().manual_seed(cfg["seed"])
    for b in cfg["baselines"]:
        torch.manual_seed(cfg["seed"] + 100)
        net = rotnet.MODELS[cfg["model"]](); net.classifier = nn.Linear(net.classifier.in_features, 5)
        supervised(net, X[lt], Y[lt], cfg, b, g)
        print(json.dumps({**res, "variant": b["name"], "val": acc(net, X[lv], Y[lv]), "test": acc(net, X[te], Y[te]), "t": time.time() - t0}), flush=True)
    torch.manual_seed(cfg["seed"])
    pre = rotnet.MODELS[cfg["model"]]()
    pretrain(pre, X[tr], cfg, g)
    ra = rot_acc(pre, X[te]); tp = time.time() - t0
    print(json.dumps({**res, "variant": "pretext", "rot_test": ra, "t": tp}), flush=True)
    state = {k: v.clone() for k, v in pre.state_dict().items()}
    for v in cfg["variants"]:
        torch.manual_seed(cfg["seed"] + 100)
        net = rotnet.MODELS[cfg["model"]](); net.load_state_dict(state)
        net.classifier = nn.Linear(net.classifier.in_features, 5)
        for bi in v.get("reinit_blocks", []):
            fresh = rotnet.MODELS[cfg["model"]]()
            net.features[bi].load_state_dict(fresh.features[bi].state_dict())
        for bi in v.get("freeze", []):
            for p in net.features[bi].parameters(): p.requires_grad = False
        supervised(net, X[lt], Y[lt], cfg, v, g)
        print(json.dumps({**res, "variant": v["name"], "val": acc(net, X[lv], Y[lv]), "test": acc(net, X[te], Y[te]), "t": time.time() - t0}), flush=True)


if __name__ == "__main__":
    main()
