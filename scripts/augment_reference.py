#!/usr/bin/python3
"""Reference outputs for dataset/'s augmentations (dataset/augment_*_test.go), from Debian's PIL and
PyTorch (/usr/bin/python3). timm is not installed here: each RandAugment op below is the PIL call
timm's timm/data/auto_augment.py makes (huggingface/pytorch-image-models, the file's functions
shear_x … sharpness and AugmentOp.__call__), given the op's argument after timm's level→arg
mapping, which dataset/ computes itself and the Go test checks separately. Mixup/CutMix is the
pixel and target math of timm's timm/data/mixup.py (Mixup._mix_elem, mixup_target) on tensors.

    /usr/bin/python3 scripts/augment_reference.py     # writes dataset/testdata/augment/

ref.json indexes ref.bin.gz (uncompressed offsets): the input images (uint8 HWC), each op's
output for an input, argument and resampling filter, and the mixing cases (float32).
"""
import gzip
import json
import os

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

OUT = os.path.join("dataset", "testdata", "augment")
# timm's fill for DeiT: create_transform's img_mean = round(255·mean) of ImageNet's mean.
FILL_RGB = tuple(min(255, round(255 * x)) for x in (0.485, 0.456, 0.406))
FILL_L = 73  # Fashion-MNIST's mean 0.2860 → 73

buf = bytearray()
entries = []


def add(kind, name, arr, **kw):
    arr = np.ascontiguousarray(arr)
    entries.append(dict(kind=kind, name=name, shape=list(arr.shape), dtype=str(arr.dtype), offset=len(buf), **kw))
    buf.extend(arr.tobytes())


def fmnist(i):
    with gzip.open(os.path.join("testdata", "fmnist", "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read()
    return Image.frombytes("L", (28, 28), data[16 + 784 * i:16 + 784 * (i + 1)])


inputs = {
    "rgb32": Image.open("testdata/images/jpeg/baseline444_32x48.jpg").convert("RGB").crop((0, 8, 32, 40)),
    "rgb20x12": Image.open("testdata/images/jpeg/progressive_56x42.jpeg").convert("RGB").crop((10, 10, 30, 22)),
    "gray28": fmnist(0),
}
fills = {"rgb32": FILL_RGB, "rgb20x12": FILL_RGB, "gray28": FILL_L}

# The PIL calls of timm's op functions (auto_augment.py), argument after level→arg.
def solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    if img.mode == "RGB":
        lut = lut + lut + lut
    return img.point(lut)


def posterize(img, bits):
    return img if bits >= 8 else ImageOps.posterize(img, bits)


PIXEL = {
    "AutoContrast": (lambda im, a: ImageOps.autocontrast(im), [None]),
    "Equalize": (lambda im, a: ImageOps.equalize(im), [None]),
    "Invert": (lambda im, a: ImageOps.invert(im), [None]),
    "Posterize": (posterize, [0, 1, 2, 4, 8]),
    "Solarize": (lambda im, a: ImageOps.solarize(im, a), [0, 26, 128, 256]),
    "SolarizeAdd": (solarize_add, [0, 30, 99]),
    "Color": (lambda im, a: ImageEnhance.Color(im).enhance(a), [0.1, 0.55, 1.0, 1.72, 1.9]),
    "Contrast": (lambda im, a: ImageEnhance.Contrast(im).enhance(a), [0.1, 0.55, 1.72, 1.9]),
    "Brightness": (lambda im, a: ImageEnhance.Brightness(im).enhance(a), [0.1, 0.55, 1.72, 1.9]),
    "Sharpness": (lambda im, a: ImageEnhance.Sharpness(im).enhance(a), [0.1, 0.55, 1.72, 1.9]),
}
GEOM = {
    "Rotate": (lambda im, a, kw: im.rotate(a, **kw), [0.0, 27.0, -27.0, 13.37, 30.0]),
    "ShearX": (lambda im, a, kw: im.transform(im.size, Image.AFFINE, (1, a, 0, 0, 1, 0), **kw), [0.27, -0.27, 0.1]),
    "ShearY": (lambda im, a, kw: im.transform(im.size, Image.AFFINE, (1, 0, 0, a, 1, 0), **kw), [0.27, -0.27, 0.1]),
    "TranslateXRel": (lambda im, a, kw: im.transform(im.size, Image.AFFINE, (1, 0, a * im.size[0], 0, 1, 0), **kw), [0.405, -0.405, 0.1]),
    "TranslateYRel": (lambda im, a, kw: im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, a * im.size[1]), **kw), [0.405, -0.405, 0.1]),
}
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}

for iname, im in inputs.items():
    add("input", iname, np.asarray(im))
    for op, (fn, args) in PIXEL.items():
        for a in args:
            add("op", op, np.asarray(fn(im, a)), input=iname, arg=a)
    for op, (fn, args) in GEOM.items():
        for a in args:
            for rname, r in RESAMPLE.items():
                out = fn(im, a, dict(resample=r, fillcolor=fills[iname]))
                add("op", op, np.asarray(out), input=iname, arg=a, resample=rname, fill=[int(v) for v in np.atleast_1d(fills[iname])])

# Mixup/CutMix per element as timm's Mixup._mix_elem: x_orig = x.clone(); mixed row i =
# x[i]·λ_i + x_orig[j]·(1−λ_i) for Mixup, x_orig[j]'s box pasted for CutMix; j = the partner.
g = torch.Generator().manual_seed(18)
x = torch.randn(2, 3, 6, 5, generator=g)
add("mix_input", "x", x.numpy())
# λ as float32 values: deitkd stores λ as float32 and computes 1 − λ from it.
cases = [("mixup", float(np.float32(0.7316)), None), ("mixup", float(np.float32(0.05)), None), ("cutmix", 0.6, (1, 4, 0, 3))]
for n, (mode, lam, box) in enumerate(cases):
    out = x.clone()
    x_orig = x.clone()
    if mode == "mixup":
        out[0] = out[0] * lam + x_orig[1] * (1.0 - lam)
    else:
        yl, yh, xl, xh = box
        out[0][:, yl:yh, xl:xh] = x_orig[1][:, yl:yh, xl:xh]
    add("mix", mode, out[0].numpy(), lam=lam, box=box)

# mixup_target + SoftTargetCrossEntropy with smoothing 0.1 over K = 10 classes.
def one_hot(t, K, on, off):
    return torch.full((t.size(0), K), off, dtype=torch.float64).scatter_(1, t.view(-1, 1), on)


K, smoothing = 10, 0.1
labels = torch.tensor([3, 7, 0])
partner = torch.tensor([7, 3, 0])
lams = torch.tensor([0.7316, 0.3, 1.0], dtype=torch.float64)
logits = torch.randn(3, K, generator=g, dtype=torch.float64)
off = smoothing / K
on = 1.0 - smoothing + off
target = one_hot(labels, K, on, off) * lams.view(-1, 1) + one_hot(partner, K, on, off) * (1 - lams.view(-1, 1))
loss = torch.sum(-target * torch.log_softmax(logits, dim=-1), dim=-1).mean()
add("soft_ce", "logits", logits.numpy(), labels=labels.tolist(), partner=partner.tolist(), lams=lams.tolist(),
    smoothing=smoothing, loss=loss.item())

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "ref.json"), "w") as f:
    json.dump(dict(pil=__import__("PIL").__version__, torch=torch.__version__, entries=entries), f, separators=(",", ":"))
with gzip.GzipFile(os.path.join(OUT, "ref.bin.gz"), "wb", mtime=0) as f:
    f.write(bytes(buf))
print(len(entries), "entries,", len(buf), "bytes")
