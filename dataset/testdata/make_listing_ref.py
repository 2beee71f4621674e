#!/usr/bin/python3
"""torchvision's ImageFolder listing of a small tree, for TestListingMatchesImageFolder.

Builds TREE (empty files: the loader is the identity, nothing is read) in a temporary folder
and writes listing_ref.json: the tree, torchvision's version and, for each listing, its
classes, class_to_idx and samples (id relative to the root with '/', class index), in
ImageFolder's order:

  default   ImageFolder(root): torchvision's IMG_EXTENSIONS, matched by
            has_file_allowed_extension, filename.lower().endswith(IMG_EXTENSIONS)
  all       ImageFolder(root, is_valid_file=lambda p: True): every file
  custom    DatasetFolder(root, extensions=CUSTOM)

    cd dataset/testdata && /usr/bin/python3 make_listing_ref.py

Without torchvision, --emulate lists with EmulatedFolder below, a copy of the rule of
torchvision.datasets.folder (find_classes, make_dataset, has_file_allowed_extension), and
records "torchvision": "emulated"; rerun without it where torchvision is installed.
"""
import json
import os
import sys
import tempfile

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class EmulatedFolder:
    """torchvision's DatasetFolder listing, from its documented rule (torchvision 0.18+)."""

    def __init__(self, root, loader=None, extensions=None, is_valid_file=None, allow_empty=False):
        self.classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        if is_valid_file is None:
            exts = extensions if extensions is not None else IMG_EXTENSIONS
            is_valid_file = lambda p: p.lower().endswith(tuple(exts))  # noqa: E731
        self.samples = []
        for c in sorted(self.class_to_idx):
            d = os.path.join(root, c)
            for r, _, fnames in sorted(os.walk(d, followlinks=True)):
                for f in sorted(fnames):
                    p = os.path.join(r, f)
                    if is_valid_file(p):
                        self.samples.append((p, self.class_to_idx[c]))


if "--emulate" in sys.argv[1:]:
    VERSION = "emulated"
    ImageFolder = DatasetFolder = EmulatedFolder
    ALLOW_EMPTY = True
else:
    import inspect

    import torchvision
    from torchvision.datasets import DatasetFolder, ImageFolder
    from torchvision.datasets.folder import make_dataset as tv_make_dataset

    VERSION = torchvision.__version__
    ALLOW_EMPTY = "allow_empty" in inspect.signature(DatasetFolder.__init__).parameters

# Files under the root; a name ending in '/' is an empty folder. Mixed-case endings, GIFs
# (not in IMG_EXTENSIONS), names that are only an ending, endings without a dot, double
# endings, U+0130 (Python lower-cases "İ" to "i" + U+0307, so "A.TİF" does not end in ".tif"),
# a class with only a GIF, an empty class, and a file beside the class folders.
TREE = [
    "a/x.jpg", "a/Y.JPG", "a/z.Jpeg", "a/anim.gif", "a/still.GIF", "a/notes.txt", "a/.png",
    "a/.hidden.jpg", "a/png", "a/noext", "a/b.png.txt", "a/c.txt.png", "a/archive.tar.gz",
    "a/gray.pgm", "a/scan.TIFF", "a/d.tif", "a/photo.webp", "a/pic.BMP", "a/x.ppm",
    "a/A.T\u0130F", "a/\u03c9.PNG", "a/sub/deep.png", "a/sub/e.gif", "a/sub-x/f.png",
    "B/1.png", "B/2.gif", "c_gif_only/only.gif", "d_empty/", "top.png",
]
CUSTOM = (".gif", ".jpg", ".png", ".tar.gz")


def per_class_make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None):
    """torchvision before 0.18 has no allow_empty: its make_dataset raises when any class has no
    file. Listing one class at a time with torchvision's own make_dataset (same rule, same order:
    classes sorted, each walked sorted) and taking an empty class as no samples is the same
    listing that allow_empty=True gives."""
    samples = []
    for c in sorted(class_to_idx):
        try:
            samples += tv_make_dataset(directory, {c: class_to_idx[c]}, extensions, is_valid_file)
        except FileNotFoundError:
            pass
    return samples


def listing(ds, root):
    return {
        "classes": ds.classes,
        "class_to_idx": ds.class_to_idx,
        "samples": [[os.path.relpath(p, root).replace(os.sep, "/"), c] for p, c in ds.samples],
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as root:
        for name in TREE:
            p = os.path.join(root, *name.rstrip("/").split("/"))
            if name.endswith("/"):
                os.makedirs(p, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "wb").close()
        ident = lambda p: p  # noqa: E731
        if not ALLOW_EMPTY:
            DatasetFolder.make_dataset = staticmethod(per_class_make_dataset)
        empty = {"allow_empty": True} if ALLOW_EMPTY else {}
        out = {
            "tree": TREE,
            "torchvision": VERSION,
            "custom_extensions": list(CUSTOM),
            "default": listing(ImageFolder(root, loader=ident, **empty), root),
            "all": listing(ImageFolder(root, loader=ident, is_valid_file=lambda p: True, **empty), root),
            "custom": listing(DatasetFolder(root, loader=ident, extensions=CUSTOM, **empty), root),
        }
    with open(os.path.join(here, "listing_ref.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for k in ("default", "all", "custom"):
        print(k, len(out[k]["samples"]), "samples")


if __name__ == "__main__":
    main()
