#!/usr/bin/env python3
"""Golden tensors for student/'s positional-embedding resampling (student.Init at another
image size): timm's resample_abs_pos_embed, copied below without timm (timm is not in Debian),
on seeded random embeddings, for an upsample 4×4→7×7, a larger 14×14→24×24 and a downsample
7×7→4×4, with D=8 and the class and distillation rows as prefix (2), and one case with the
class row only (1).

Run with Debian's PyTorch:  /usr/bin/python3 scripts/pos_embed_golden.py
Writes testdata/golden/pos_embed_resample.bin in student_golden.py's record format:
  u32 name length, name (utf-8), u32 ndim, u32 dims[ndim], float32 data (little endian)
Records per case NAME: NAME/in (1, prefix+g*g, D), NAME/out (1, prefix+G*G, D), and
NAME/prefix, a 1-element tensor holding the number of prefix rows.
"""
import math
import os
import struct

import torch
import torch.nn.functional as F


def resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1, interpolation="bicubic", antialias=True):
    """timm.layers.pos_embed.resample_abs_pos_embed (timm 0.9), old_size inferred as a square."""
    num_pos_tokens = posemb.shape[1]
    num_new_tokens = new_size[0] * new_size[1] + num_prefix_tokens
    if num_new_tokens == num_pos_tokens and new_size[0] == new_size[1]:
        return posemb
    hw = int(math.sqrt(num_pos_tokens - num_prefix_tokens))
    old_size = hw, hw
    if num_prefix_tokens:
        posemb_prefix, posemb = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    else:
        posemb_prefix, posemb = None, posemb
    embed_dim = posemb.shape[-1]
    posemb = posemb.float()
    posemb = posemb.reshape(1, old_size[0], old_size[1], -1).permute(0, 3, 1, 2)
    posemb = F.interpolate(posemb, size=new_size, mode=interpolation, antialias=antialias)
    posemb = posemb.permute(0, 2, 3, 1).reshape(1, -1, embed_dim)
    if posemb_prefix is not None:
        posemb = torch.cat([posemb_prefix, posemb], dim=1)
    return posemb


CASES = [  # name, old grid, new grid, prefix rows, D
    ("up4to7", 4, 7, 2, 8),
    ("up14to24", 14, 24, 2, 8),
    ("down7to4", 7, 4, 2, 8),
    ("up4to7_cls", 4, 7, 1, 8),
]


def main():
    torch.manual_seed(19)
    out = os.path.join(os.path.dirname(__file__), "..", "testdata", "golden", "pos_embed_resample.bin")
    with open(out, "wb") as f:
        def rec(name, t):
            t = t.detach().contiguous().float()
            b = name.encode()
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())

        for name, g, G, prefix, d in CASES:
            x = torch.randn(1, prefix + g * g, d) * 0.02 * 10
            y = resample_abs_pos_embed(x, (G, G), num_prefix_tokens=prefix)
            assert y.shape == (1, prefix + G * G, d)
            rec(name + "/in", x)
            rec(name + "/out", y)
            rec(name + "/prefix", torch.tensor([float(prefix)]))
    print("wrote", out, "torch", torch.__version__)


if __name__ == "__main__":
    main()
