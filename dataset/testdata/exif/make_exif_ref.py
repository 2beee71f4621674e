#!/usr/bin/python3
"""PIL's ImageOps.exif_transpose of one JPEG under each EXIF orientation, for TestTransposeMatchesPIL.

Writes orient-N.jpg for N in 1..8: testdata/images/jpeg/baseline420_45x33.jpg with an APP1
"Exif\\0\\0" segment (big-endian TIFF, IFD0 holding only Orientation = N) inserted after the SOI,
so the compressed image data is the original's; and orient-N.png, the pixels of
ImageOps.exif_transpose(Image.open(orient-N.jpg)).convert("RGB"), stored losslessly.

    cd dataset/testdata/exif && /usr/bin/python3 make_exif_ref.py
"""
import os
import struct

from PIL import Image, ImageOps

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "..", "..", "testdata", "images", "jpeg", "baseline420_45x33.jpg")
with open(src, "rb") as f:
    jpg = f.read()
assert jpg[:2] == b"\xff\xd8"

for n in range(1, 9):
    # TIFF header, IFD0 at 8 with one entry (0x0112 SHORT count 1 value n), next IFD 0.
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, n, 0) + struct.pack(">I", 0)
    seg = b"Exif\x00\x00" + tiff
    data = jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(seg) + 2) + seg + jpg[2:]
    p = os.path.join(here, "orient-%d.jpg" % n)
    with open(p, "wb") as f:
        f.write(data)
    im = Image.open(p)
    assert im.getexif().get(0x0112) == n
    ImageOps.exif_transpose(im).convert("RGB").save(os.path.join(here, "orient-%d.png" % n))
