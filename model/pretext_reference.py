#!/usr/bin/python3
"""PyTorch definitions of whorl's networks beyond rotnet.py's catalogue: pretext networks with
extra blocks (job config model.pretext_blocks) and wider ones (model.width), built from
rotnet.py's own modules so their state_dict names are rotnet.py's; the commands are
rotnet.py's ("names NAME", "load NAME PATH", strict).

    python3 model/pretext_reference.py ROTNET_PY names small+1
    python3 model/pretext_reference.py ROTNET_PY load small@256+2 pretrained.safetensors

small@W is rotnet.py's small() with blocks W/4, W/2 and W wide (small is small@128); small+K
adds K blocks of two 3x3 W->W convs, a max-pool 2 after every block but the last (so small's
third block is pooled too); nin3@W is nin(3, W) and nin3+K is nin(3+K) (nin3+1 is rotnet.py's
nin4). Fine-tuning takes the first 3 blocks, which load into small@W or nin(3, W) as they are.
"""
import importlib.util
import re
import sys

from torch import nn


def load_rotnet(path):
    spec = importlib.util.spec_from_file_location("rotnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small_plus(r, extra, width=128, classes=4):
    blocks = []
    cin = 3
    for i in range(3 + extra):
        cout = width >> max(0, 2 - i)
        pool = nn.MaxPool2d(2) if i < 2 + extra else None
        blocks.append(r.Block([r.ConvBNReLU(cin, cout, 3), r.ConvBNReLU(cout, cout, 3)], pool))
        cin = cout
    return r.Net(blocks, width, classes)


NAME = re.compile(r"^(small|nin3)(?:@(\d+))?(?:\+(\d+))?$")


class Models(dict):
    """rotnet.py's MODELS, plus the names above built on demand."""

    def __init__(self, r):
        super().__init__(r.MODELS)
        self.r = r

    def __missing__(self, name):
        m = NAME.match(name)
        if not m:
            raise KeyError(name)
        arch, width, extra = m.group(1), m.group(2), int(m.group(3) or 0)
        if arch == "small":
            return lambda: small_plus(self.r, extra, int(width or 128))
        return lambda: self.r.nin(3 + extra, int(width or 192))


def main():
    r = load_rotnet(sys.argv[1])
    r.MODELS = Models(r)
    sys.argv = [sys.argv[0]] + sys.argv[2:]
    r.main()


if __name__ == "__main__":
    main()
