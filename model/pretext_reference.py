#!/usr/bin/python3
"""PyTorch definitions of whorl's pretext networks with extra blocks (job config
model.pretext_blocks), built from rotnet.py's own modules so their state_dict names are
rotnet.py's; the commands are rotnet.py's ("names NAME", "load NAME PATH", strict).

    python3 model/pretext_reference.py ROTNET_PY names small+1
    python3 model/pretext_reference.py ROTNET_PY load small+2 pretrained.safetensors

small+K is rotnet.py's small() with K more blocks of two 3x3 128->128 convs, a max-pool 2
after every block but the last (so small's third block is pooled too); nin3+K is nin(3+K)
(nin3+1 is rotnet.py's nin4). Fine-tuning takes the first 3 blocks, which load into small()
or nin(3) as they are.
"""
import importlib.util
import sys

from torch import nn


def load_rotnet(path):
    spec = importlib.util.spec_from_file_location("rotnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small_plus(r, extra, classes=4):
    base = r.small(classes)
    blocks = list(base.features)
    blocks[-1].pool = nn.MaxPool2d(2)
    for k in range(extra):
        pool = nn.MaxPool2d(2) if k < extra - 1 else None
        blocks.append(r.Block([r.ConvBNReLU(128, 128, 3), r.ConvBNReLU(128, 128, 3)], pool))
    return r.Net(blocks, 128, classes)


def main():
    r = load_rotnet(sys.argv[1])
    for k in (1, 2):
        r.MODELS[f"small+{k}"] = lambda k=k: small_plus(r, k)
        r.MODELS[f"nin3+{k}"] = lambda k=k: r.nin(3 + k)
    sys.argv = [sys.argv[0]] + sys.argv[2:]
    r.main()


if __name__ == "__main__":
    main()
