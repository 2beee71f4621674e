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

# timm's train transform order on a whole pipeline: resized_crop (RandomResizedCrop's box),
# hflip, RandAugment ops (timm's arguments for the magnitudes named), ToTensor, Normalize.
from torchvision.transforms import InterpolationMode as IM
from torchvision.transforms import functional as TF

PIPELINES = [
    dict(name="photo45x33", file="testdata/images/jpeg/baseline420_45x33.jpg", mode="RGB", box=(3, 5, 25, 30), size=24,
         interpolation="bicubic", flip=True, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
         ops=[("Rotate", 9.0, lambda im, f: im.rotate(27.0, resample=Image.BICUBIC, fillcolor=f)),
              ("ColorIncreasing", -9.0, lambda im, f: ImageEnhance.Color(im).enhance(max(0.1, 1.0 - (9.0 / 10.0) * 0.9)))]),
    dict(name="fmnist1", mode="L", box=(2, 3, 20, 22), size=28, interpolation="bilinear", flip=True, mean=[0.286], std=[0.353],
         ops=[("ShearX", -9.0, lambda im, f: im.transform(im.size, Image.AFFINE, (1, -0.27, 0, 0, 1, 0), resample=Image.BILINEAR, fillcolor=f)),
              ("SolarizeAdd", 9.0, lambda im, f: solarize_add(im, 99))]),
]
for p in PIPELINES:
    im = Image.open(p["file"]).convert(p["mode"]) if "file" in p else fmnist(1)
    fill = tuple(min(255, round(255 * m)) for m in p["mean"])
    if p["mode"] == "L":
        fill = fill[0]
    top, left, h, w = p["box"]
    interp = IM.BICUBIC if p["interpolation"] == "bicubic" else IM.BILINEAR
    v = TF.resized_crop(im, top, left, h, w, [p["size"], p["size"]], interpolation=interp)
    if p["flip"]:
        v = TF.hflip(v)
    for _, _, fn in p["ops"]:
        v = fn(v, fill)
    x = TF.normalize(TF.to_tensor(v), p["mean"], p["std"])
    add("pipeline_input", p["name"], np.asarray(im))
    add("pipeline", p["name"], x.numpy(), box=list(p["box"]), size=p["size"], interpolation=p["interpolation"], flip=p["flip"],
        mean=p["mean"], std=p["std"], ops=[[n, m] for n, m, _ in p["ops"]])

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
