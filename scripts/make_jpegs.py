#!/usr/bin/python3
"""Make N ImageNet-like JPEG files in a class-folder tree, for feeding and precompute benchmarks.

Each image is about 500x375 (a few portrait ones), natural-looking: smooth colour gradients,
overlapping blurred shapes with hard edges, and fine noise, saved at quality 90 like most of
ImageNet; every 16th file is progressive and every 23rd grayscale, as ImageNet has a few of each.
Deterministic for a given --seed. Uses only PIL and numpy (Debian's python3-pil, python3-numpy).

    /usr/bin/python3 scripts/make_jpegs.py --n 2000 --classes 10 --out /tmp/jpegs
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_image(rng, w, h, noise=4.0):
    # A smooth background: a bilinear blend of four random corner colours.
    corners = rng.uniform(0, 255, size=(2, 2, 3))
    ys = np.linspace(0, 1, h)[:, None, None]
    xs = np.linspace(0, 1, w)[None, :, None]
    bg = (corners[0, 0] * (1 - ys) * (1 - xs) + corners[0, 1] * (1 - ys) * xs
          + corners[1, 0] * ys * (1 - xs) + corners[1, 1] * ys * xs)
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(4, 12)):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            pts = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.integers(3, 7))]
            draw.polygon(pts, fill=colour)
    # Soften some edges (depth of field), keep others sharp, then add sensor-like noise.
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.5))))
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0, noise, size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    # Sensor-like noise (standard deviation in levels). 4 gives ~30 KB files; real ImageNet
    # photos average ~110 KB, which --noise 25 approaches: more entropy-decoding work per image.
    ap.add_argument("--noise", type=float, default=4.0)
    # Large photos (e.g. 4000x3000, a phone camera's) instead of ImageNet's ~500x375.
    ap.add_argument("--size", default="500x375", help="WxH of the landscape images")
    a = ap.parse_args()
    base_w, base_h = (int(v) for v in a.size.lower().split("x"))
    for i in range(a.n):
        rng = np.random.default_rng([a.seed, i])
        cls = i % a.classes
        d = os.path.join(a.out, "n%08d" % cls)
        os.makedirs(d, exist_ok=True)
        w, h = (base_w, base_h) if i % 7 else (base_h, base_w)
        w += int(rng.integers(-20, 21)) * base_w // 500
        h += int(rng.integers(-20, 21)) * base_h // 375
        img = make_image(rng, w, h, a.noise)
        if i % 23 == 0:
            img = img.convert("L")
        path = os.path.join(d, "img_%06d.JPEG" % i)
        img.save(path + ".tmp", "JPEG", quality=90, progressive=(i % 16 == 0))
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
