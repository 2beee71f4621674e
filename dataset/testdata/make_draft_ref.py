#!/usr/bin/python3
"""PIL's JPEG draft decoding of one photo-like JPEG, for TestDecodeDraftMatchesPIL.

Writes draft/photo_520x390.jpg (quality 90, 4:2:0, made by scripts/make_jpegs.py's generator)
and, for each requested size in SIZES, draft/photo_520x390.draft-S.png: the pixels of
Image.open(jpg) after .draft("RGB", (S, S)), PNG so they are stored losslessly.

    cd dataset/testdata && /usr/bin/python3 make_draft_ref.py
"""
import importlib.util
import os

import numpy as np
from PIL import Image

SIZES = [192, 64, 32]  # scales 1/2, 1/4 (min(520//64, 390//64) = 6 → 4), 1/8

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_jpegs", os.path.join(here, "..", "..", "scripts", "make_jpegs.py"))
mj = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mj)

os.makedirs(os.path.join(here, "draft"), exist_ok=True)
jpg = os.path.join(here, "draft", "photo_520x390.jpg")
mj.make_image(np.random.default_rng([7, 7]), 520, 390).save(jpg, "JPEG", quality=90)
for s in SIZES:
    im = Image.open(jpg)
    im.draft("RGB", (s, s))
    im.convert("RGB").save(os.path.join(here, "draft", "photo_520x390.draft-%d.png" % s))
    print(s, im.size)
