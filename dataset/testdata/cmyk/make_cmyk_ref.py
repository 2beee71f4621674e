#!/usr/bin/python3
"""CMYK and YCCK JPEGs and PIL's decodes of them, for TestDecodeCMYKMatchesPIL.

Photo-like RGB content (scripts/make_jpegs.py's generator: gradients, blurred and sharp
shapes, noise) converted to CMYK with PIL, then stored as:
  pil_q90_300x200.jpg    PIL's own CMYK writer (Adobe marker, transform 0, inverted samples,
                         no subsampling: PIL subsamples nothing with 4 layers), quality 90
  pil_q75_301x203.jpg    the same at quality 75, odd size
  ycck_sub_299x201.jpg   YCCK (Adobe transform 2), Y and K 2x2, Cb/Cr 1x1 (Photoshop's
                         layout), quality 85, written by write4.c through libjpeg, since
                         neither PIL nor cjpeg writes YCCK
  cmyk_sub_299x201.jpg   CMYK (transform 0), C and K 2x2, M/Y 1x1, quality 85, write4.c
  ycck_q90_64x48.jpg     YCCK without subsampling, quality 90, write4.c
For each X.jpg: X.rgb.png and X.l.png, Image.open(X).convert("RGB") and .convert("L"), and
X.draft-S.png, Image.open(X) after .draft("RGB", (S, S)) then .convert("RGB") (PIL keeps a CMYK
image CMYK under draft and decodes it at the reduced scale). PNG so they are stored losslessly.

    gcc -O2 -o /tmp/write4 dataset/testdata/cmyk/write4.c -ljpeg
    cd dataset/testdata/cmyk && /usr/bin/python3 make_cmyk_ref.py /tmp/write4
"""
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_jpegs", os.path.join(here, "..", "..", "..", "scripts", "make_jpegs.py"))
mj = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mj)
write4 = sys.argv[1]


def cmyk(seed, w, h):
    return mj.make_image(np.random.default_rng([14, 2, seed]), w, h, noise=6.0).convert("CMYK")


def with_write4(im, name, quality, space, sub):
    # PIL hands libjpeg its CMYK samples inverted ("CMYK;I", Adobe's convention); so do we.
    raw = 255 - np.asarray(im)
    with tempfile.NamedTemporaryFile(suffix=".raw") as f:
        f.write(raw.tobytes())
        f.flush()
        subprocess.run([write4, f.name, str(im.width), str(im.height), str(quality), space, str(sub),
                        os.path.join(here, name)], check=True)


cmyk(1, 300, 200).save(os.path.join(here, "pil_q90_300x200.jpg"), "JPEG", quality=90)
cmyk(2, 301, 203).save(os.path.join(here, "pil_q75_301x203.jpg"), "JPEG", quality=75)
with_write4(cmyk(3, 299, 201), "ycck_sub_299x201.jpg", 85, "ycck", 2)
with_write4(cmyk(4, 299, 201), "cmyk_sub_299x201.jpg", 85, "cmyk", 2)
with_write4(cmyk(5, 64, 48), "ycck_q90_64x48.jpg", 90, "ycck", 1)

DRAFTS = [100, 40]  # scale 1/2 (min(300//100, 200//100) = 2) and 1/4 (min(7, 5) = 5 → 4)
for name in sorted(os.listdir(here)):
    if not name.endswith(".jpg"):
        continue
    base = os.path.join(here, name[:-4])
    im = Image.open(base + ".jpg")
    print(name, im.mode, im.size, im.info.get("adobe_transform"), [l[1:3] for l in im.layer])
    im.convert("RGB").save(base + ".rgb.png")
    Image.open(base + ".jpg").convert("L").save(base + ".l.png")
    for s in DRAFTS:
        im = Image.open(base + ".jpg")
        im.draft("RGB", (s, s))
        assert im.mode == "CMYK"
        im.convert("RGB").save(base + ".draft-%d.png" % s)
