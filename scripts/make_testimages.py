#!/usr/bin/python3
"""Make deitkd's small test images (run with Debian's /usr/bin/python3; needs PIL and numpy).

    /usr/bin/python3 scripts/make_testimages.py [ROOT]     # ROOT defaults to testdata

Writes ROOT/images/<class>/... (every pixel format dataset/ must read exactly as PIL does),
ROOT/bad/ (files dataset/ must refuse with a clear error) and ROOT/idx/ (a tiny MNIST-format
fixture, gzip and plain). Deterministic: the same PIL gives the same bytes. Sides are 20-60 px,
so against a 32-pixel crop some images are shrunk and some enlarged.
"""
import gzip
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, features

ROOT = sys.argv[1] if len(sys.argv) > 1 else "testdata"
IMAGES = os.path.join(ROOT, "images")
BAD = os.path.join(ROOT, "bad")
IDX = os.path.join(ROOT, "idx")

rng = np.random.default_rng(20261126)


def scene(w, h, seed):
    """A smooth natural-looking RGB picture with hard edges: gradients, a disc, a bar, grain."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([
        128 + 100 * np.sin(x / w * np.pi * r.uniform(0.5, 2) + r.uniform(0, 6)),
        128 + 100 * np.cos(y / h * np.pi * r.uniform(0.5, 2) + r.uniform(0, 6)),
        128 + 90 * np.sin((x + y) / (w + h) * np.pi * r.uniform(1, 3)),
    ], -1)
    cx, cy, rad = r.uniform(0.3, 0.7) * w, r.uniform(0.3, 0.7) * h, r.uniform(0.2, 0.35) * min(w, h)
    disc = (x - cx) ** 2 + (y - cy) ** 2 < rad ** 2
    base[disc] = r.uniform(0, 255, 3)
    bar = (np.abs(x - r.uniform(0, w)) < max(1, w / 12))
    base[bar] = r.uniform(0, 255, 3)
    base += r.normal(0, 6, base.shape)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def save(img, cls, name, **kw):
    d = os.path.join(IMAGES, cls)
    os.makedirs(d, exist_ok=True)
    img.save(os.path.join(d, name), **kw)


def main():
    n = 0

    def nxt():
        nonlocal n
        n += 1
        return n

    # PNG family.
    save(Image.fromarray(scene(40, 30, nxt())), "png", "rgb_40x30.png")
    save(Image.fromarray(scene(23, 57, nxt())), "png", "rgb_23x57.png")
    rgba = np.dstack([scene(48, 36, nxt()), np.linspace(0, 255, 48 * 36).reshape(36, 48).astype(np.uint8)])
    rgba[:5, :5, 3] = 0  # fully transparent corner: PIL keeps its colour, it does not go black
    save(Image.fromarray(rgba, "RGBA"), "png", "rgba_48x36.png")
    g = scene(33, 45, nxt())[..., 1]
    save(Image.fromarray(g, "L"), "png", "gray_33x45.png")
    la = np.dstack([g[:30, :28], np.full((30, 28), 90, np.uint8)])
    save(Image.fromarray(la, "LA"), "png", "la_28x30.png")
    g16 = (scene(26, 34, nxt())[..., 0].astype(np.uint16) * 3 // 2)  # 0..382: PIL clamps >255
    save(Image.fromarray(g16, "I;16"), "png", "gray16_26x34.png")
    p = Image.fromarray(scene(50, 25, nxt())).quantize(colors=32)
    save(p, "png", "paletted_trns_50x25.png", transparency=3)
    save(Image.fromarray(scene(36, 36, nxt())).convert("1"), "png", "bilevel_36x36.png")
    rgb16 = scene(30, 22, nxt()).astype(np.uint16) * 257 + rng.integers(0, 257, (22, 30, 3)).astype(np.uint16)
    write_png16_rgb(os.path.join(IMAGES, "png", "rgb16_30x22.png"), rgb16)
    # A nested folder inside a class: ImageFolder walks it (torchvision's os.walk order).
    os.makedirs(os.path.join(IMAGES, "png", "nested"), exist_ok=True)
    Image.fromarray(scene(60, 20, nxt())).save(os.path.join(IMAGES, "png", "nested", "wide_60x20.png"))
    # Not an image extension inside a class folder: ImageFolder ignores it.
    with open(os.path.join(IMAGES, "png", "notes.txt"), "w") as f:
        f.write("not an image\n")

    # JPEG family.
    save(Image.fromarray(scene(45, 33, nxt())), "jpeg", "baseline420_45x33.jpg", quality=90)
    save(Image.fromarray(scene(32, 48, nxt())), "jpeg", "baseline444_32x48.jpg", quality=90, subsampling=0)
    save(Image.fromarray(scene(41, 29, nxt())), "jpeg", "baseline422_41x29.jpg", quality=85, subsampling=1)
    save(Image.fromarray(scene(56, 42, nxt())), "jpeg", "progressive_56x42.jpeg", quality=90, progressive=True)
    save(Image.fromarray(scene(37, 21, nxt())[..., 2], "L"), "jpeg", "gray_37x21.jpg", quality=90)
    save(Image.fromarray(scene(34, 38, nxt())).convert("CMYK"), "jpeg", "cmyk_34x38.jpg", quality=90)
    save(Image.fromarray(scene(20, 20, nxt())), "jpeg", "small_20x20.JPG", quality=75)
    # A JPEG whose extension says PNG: decoding goes by content.
    save(Image.fromarray(scene(44, 31, nxt())), "jpeg", "really_jpeg.png", format="JPEG", quality=90)

    # GIF and WebP.
    save(Image.fromarray(scene(39, 27, nxt())).quantize(colors=64), "other", "paletted_39x27.gif")
    # A transparent index: PIL's convert("RGB") shows the entry's stored colour (Go's decoder
    # blanks it to transparent black, which dataset/ undoes).
    save(Image.fromarray(scene(30, 42, nxt())).quantize(colors=16), "other", "transparent_30x42.gif", transparency=5)
    if features.check("webp"):
        save(Image.fromarray(scene(46, 34, nxt())), "other", "lossy_46x34.webp", quality=85)
        save(Image.fromarray(scene(27, 41, nxt())), "other", "lossless_27x41.webp", lossless=True)
        wa = np.dstack([scene(31, 25, nxt()), np.full((25, 31), 200, np.uint8)])
        save(Image.fromarray(wa, "RGBA"), "other", "lossy_alpha_31x25.webp", quality=80)

    # A top-level file in an ImageFolder root is not part of any class: ignored.
    Image.fromarray(scene(24, 24, nxt())).save(os.path.join(IMAGES, "toplevel_ignored.png"))

    make_bad()
    make_idx()


def write_png16_rgb(path, a):
    """PIL cannot write 16-bit RGB; write it by hand (colour type 2, depth 16)."""
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_bad():
    os.makedirs(BAD, exist_ok=True)
    open(os.path.join(BAD, "zero_bytes.jpg"), "wb").close()
    import io
    b = io.BytesIO()
    Image.fromarray(scene(40, 40, 900)).save(b, "JPEG", quality=90)
    with open(os.path.join(BAD, "truncated.jpg"), "wb") as f:
        f.write(b.getvalue()[: len(b.getvalue()) // 2])
    b = io.BytesIO()
    Image.fromarray(scene(40, 40, 901)).save(b, "PNG")
    with open(os.path.join(BAD, "truncated.png"), "wb") as f:
        f.write(b.getvalue()[: len(b.getvalue()) // 2])
    with open(os.path.join(BAD, "text.jpg"), "w") as f:
        f.write("this is a text file, whatever its name says\n")
    # A valid PNG header claiming 100000 x 100000 pixels (10^10): refuse before allocating.
    with open(os.path.join(BAD, "huge_dimensions.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(b"\x00" * 64)))
        f.write(chunk(b"IEND", b""))


def make_idx():
    """Five 28x28 images with labels, as train (gzip) and t10k (plain)."""
    os.makedirs(IDX, exist_ok=True)
    for prefix, count, gz in (("train", 5, True), ("t10k", 3, False)):
        imgs = np.stack([scene(28, 28, 1000 + i + (50 if prefix == "t10k" else 0))[..., 0] for i in range(count)])
        labels = np.arange(count, dtype=np.uint8) * 3 % 10
        ib = struct.pack(">IIII", 0x803, count, 28, 28) + imgs.tobytes()
        lb = struct.pack(">II", 0x801, count) + labels.tobytes()
        for name, data in ((prefix + "-images-idx3-ubyte", ib), (prefix + "-labels-idx1-ubyte", lb)):
            if gz:
                with open(os.path.join(IDX, name + ".gz"), "wb") as f:
                    # mtime=0 keeps the bytes reproducible.
                    with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as z:
                        z.write(data)
            else:
                with open(os.path.join(IDX, name), "wb") as f:
                    f.write(data)


if __name__ == "__main__":
    main()
