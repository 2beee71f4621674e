#!/usr/bin/python3
"""Compute torchvision reference tensors for dataset/'s fidelity tests (Debian's /usr/bin/python3:
PyTorch, torchvision, PIL). Run after scripts/make_testimages.py:

    /usr/bin/python3 scripts/torchvision_reference.py [ROOT]   # ROOT defaults to testdata

For every image under ROOT/images (ImageFolder's list) it records, in ROOT/preprocess/:
  decode   PIL's loader: Image.open(f).convert('RGB') and .convert('L'), as uint8 CHW
  eval     Resize(R) + CenterCrop(S) + ToTensor + Normalize, for three settings
  crop     torchvision.transforms.functional.resized_crop on two RandomResizedCrop boxes
           (torchvision's own get_params), the second one flipped

ToTensor's output is v/255 for a uint8 v, so each tensor is stored as those uint8 values (the
script asserts the round trip is exact) and Normalize is checked on a few tensors stored as
float32. reference.json indexes reference.bin.gz (uncompressed offsets): {id, kind, setting, shape [C,H,W], dtype, offset}.
"""
import gzip
import json
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode as IM
from torchvision.transforms import functional as F

ROOT = sys.argv[1] if len(sys.argv) > 1 else "testdata"
OUT = os.path.join(ROOT, "preprocess")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SETTINGS = {
    "a": dict(channels=3, resize=36, crop=32, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "b": dict(channels=3, resize=40, crop=32, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    # No resize given: dataset/ resizes the shorter side to the crop, as Resize(28) does here.
    "c": dict(channels=1, resize=0, crop=28, interpolation="bilinear", mean=[0.5], std=[0.5]),
}
INTERP = {"bilinear": IM.BILINEAR, "bicubic": IM.BICUBIC}


def pil_loader(path, channels):
    # torchvision.datasets.folder.pil_loader, with the mode the teacher wants.
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB" if channels == 3 else "L")


def to_u8(t):
    v = t.numpy() * 255.0
    r = np.round(v)
    assert np.abs(v - r).max() < 1e-3, "ToTensor output is not k/255"
    return r.astype(np.uint8)


def main():
    ds = torchvision.datasets.ImageFolder(os.path.join(ROOT, "images"), loader=lambda p: p,
                                          is_valid_file=lambda p: os.path.splitext(p)[1].lower() in
                                          {".jpg", ".jpeg", ".png", ".gif", ".webp"})
    root = os.path.join(ROOT, "images")
    entries, blob = [], bytearray()

    def add(id_, kind, setting, arr, extra=None):
        e = dict(id=id_, kind=kind, setting=setting, shape=list(arr.shape),
                 dtype="uint8" if arr.dtype == np.uint8 else "float32", offset=len(blob))
        e.update(extra or {})
        blob.extend(arr.astype("<f4").tobytes() if arr.dtype != np.uint8 else arr.tobytes())
        entries.append(e)

    torch.manual_seed(7)
    for n, (path, label) in enumerate(ds.samples):
        id_ = os.path.relpath(path, root).replace(os.sep, "/")
        for ch in (3, 1):
            img = pil_loader(path, ch)
            add(id_, "decode", "rgb" if ch == 3 else "l", to_u8(F.to_tensor(img)), dict(label=label))
        for name, s in SETTINGS.items():
            img = pil_loader(path, s["channels"])
            tf = T.Compose([T.Resize(s["resize"] or s["crop"], interpolation=INTERP[s["interpolation"]]),
                            T.CenterCrop(s["crop"])])
            x = F.to_tensor(tf(img))
            add(id_, "eval", name, to_u8(x))
            if n < 2 and name != "b":
                add(id_, "eval_normalized", name, T.Normalize(s["mean"], s["std"])(x).numpy())
        img = pil_loader(path, 3)
        for k, interp in enumerate(("bilinear", "bicubic")):
            i, j, h, w = T.RandomResizedCrop.get_params(img, scale=[0.08, 1.0], ratio=[3 / 4, 4 / 3])
            out = F.resized_crop(img, i, j, h, w, [32, 32], interpolation=INTERP[interp])
            flip = k == 1
            if flip:
                out = F.hflip(out)
            add(id_, "crop", interp, to_u8(F.to_tensor(out)),
                dict(box=[i, j, h, w], flip=flip, size=32, width=img.size[0], height=img.size[1]))

    os.makedirs(OUT, exist_ok=True)
    # gzip with mtime 0: reproducible bytes, and a third of the size.
    with open(os.path.join(OUT, "reference.bin.gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as z:
            z.write(bytes(blob))
    meta = dict(
        generator="scripts/torchvision_reference.py",
        torch=torch.__version__, torchvision=torchvision.__version__, pil=Image.__version__,
        settings=SETTINGS, classes=ds.classes, entries=entries,
    )
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        entries = meta.pop("entries")
        text = json.dumps(meta, indent=1)[:-2]
        text += ',\n "entries": [\n' + ",\n".join(json.dumps(e) for e in entries) + "\n ]\n}\n"
        f.write(text)
    print(f"{len(entries)} tensors, {len(blob)} bytes")


if __name__ == "__main__":
    main()
