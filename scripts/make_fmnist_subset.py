#!/usr/bin/python3
"""Cut the first N Fashion-MNIST test images into testdata/fmnist and count the demo teacher's top-1 on them.

Writes OUT/t10k-images-idx3-ubyte.gz and OUT/t10k-labels-idx1-ubyte.gz (MNIST-format IDX, so
`precompute --data idx:OUT/t10k` opens them), byte-for-byte reproducible (gzip level 9, mtime 0),
then prints the line the model card carries under "Result":

    first 600 test images: C/600

C is counted from the committed ONNX file (testdata/teacher/regnety_fmnist.onnx), run by the numpy
interpreter in teacher/export/onnxmeta.py with the preprocessing of the file's own metadata. With
--state (the state_dict train_fmnist.py --save-state wrote) it also evaluates PyTorch itself on the
subset and the whole test split, re-exports the state and checks the export's sha256 against
--model, so the count is shown to be PyTorch's for exactly the committed teacher. cmd/precompute's
TestTeacherCard reads C from the card and demands it from deitkd.

Why 600 images and not 1,000: Fashion-MNIST compresses to about 440 bytes an image, and the subset
must stay under 300 KB; 600 images are about 266 KB.

Tooling only (Debian's python3-torch, python3-torchvision, python3-onnx); deitkd never runs it:

    /usr/bin/python3 scripts/make_fmnist_subset.py --n 600 --out testdata/fmnist \\
        [--state /tmp/teacher_r2/state.pt]
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "teacher", "export"))


def write_idx_gz(path, header_dims, magic, payload):
    """Write a gzip'd IDX file; mtime 0 and no file name keep the bytes reproducible."""
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in header_dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(head + payload)


def normalise(x_u8, preprocess):
    """u8 N×28×28 → float32 N×1×28×28 as precompute feeds the teacher: (x/255 − mean)/std."""
    mean = np.float32(preprocess["mean"][0])
    std = np.float32(preprocess["std"][0])
    return ((x_u8.astype(np.float32) / np.float32(255.0) - mean) / std)[:, None]


def top1_margins(logits):
    """(predicted class, largest minus second-largest logit) per row."""
    s = np.sort(logits, axis=1)
    return logits.argmax(axis=1), s[:, -1] - s[:, -2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist",
                    help="folder with t10k-{images-idx3,labels-idx1}-ubyte.gz")
    ap.add_argument("--n", type=int, default=600, help="how many test images, from the first")
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata", "fmnist"))
    ap.add_argument("--model", default=os.path.join(ROOT, "testdata", "teacher", "regnety_fmnist.onnx"))
    ap.add_argument("--state", default="", help="the teacher's state_dict: also evaluate PyTorch and check the export")
    ap.add_argument("--batch", type=int, default=100, help="images per interpreter run (memory)")
    args = ap.parse_args()

    import onnx  # noqa: E402  (after the path is set: onnxmeta and train_fmnist live in teacher/export)
    import onnxmeta
    import train_fmnist

    x_all = train_fmnist.read_idx(os.path.join(args.src, "t10k-images-idx3-ubyte.gz"))
    y_all = train_fmnist.read_idx(os.path.join(args.src, "t10k-labels-idx1-ubyte.gz"))
    if not 0 < args.n <= len(y_all):
        sys.exit(f"--n {args.n}: the test split has {len(y_all)} images")
    x_u8, y = x_all[:args.n], y_all[:args.n].astype(np.int64)

    os.makedirs(args.out, exist_ok=True)
    img_path = os.path.join(args.out, "t10k-images-idx3-ubyte.gz")
    lab_path = os.path.join(args.out, "t10k-labels-idx1-ubyte.gz")
    write_idx_gz(img_path, [args.n, 28, 28], 0x0803, x_u8.tobytes())
    write_idx_gz(lab_path, [args.n], 0x0801, y_all[:args.n].tobytes())
    for p in (img_path, lab_path):
        print(f"wrote {os.path.relpath(p)}: {os.path.getsize(p)} bytes", flush=True)

    preprocess = json.loads(onnxmeta.metadata(args.model)["deitkd.preprocess"])
    x = normalise(x_u8, preprocess)
    m = onnx.load(args.model)
    onnx_logits = np.concatenate([onnxmeta.run(m, x[i:i + args.batch]) for i in range(0, args.n, args.batch)])
    pred, margin = top1_margins(onnx_logits)
    correct = int((pred == y).sum())
    print(f"ONNX file (numpy interpreter): top-1 {correct}/{args.n}; smallest top-1 margin "
          f"{margin.min():.3g} (image {int(margin.argmin())})", flush=True)

    if args.state:
        import torch
        torch.set_num_threads(2)
        model = train_fmnist.build_model()
        model.load_state_dict(torch.load(args.state, map_location="cpu"))
        model.eval()
        full_x = torch.from_numpy(normalise(x_all, preprocess))
        c1, _, logits = train_fmnist.evaluate(model, full_x, torch.from_numpy(y_all.astype(np.int64)))
        print(f"PyTorch, whole test split: top-1 {c1}/{len(y_all)}", flush=True)
        t_pred = logits[:args.n].numpy().argmax(axis=1)
        t_correct = int((t_pred == y).sum())
        diff = np.abs(logits[:args.n].numpy() - onnx_logits).max()
        print(f"PyTorch, first {args.n}: top-1 {t_correct}/{args.n}; predictions differ from the ONNX "
              f"file's on {int((t_pred != pred).sum())} images; max |logit difference| {diff:.2g}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            again = os.path.join(tmp, "again.onnx")
            onnxmeta.export(model, torch.zeros(2, 1, 28, 28), again, preprocess,
                            json.loads(onnxmeta.metadata(args.model)["deitkd.class_names"]))
            got = hashlib.sha256(open(again, "rb").read()).hexdigest()
        want = hashlib.sha256(open(args.model, "rb").read()).hexdigest()
        print(f"re-export of the state: sha256 {got} ({'matches' if got == want else 'DIFFERS from'} {args.model})",
              flush=True)
        if got != want or t_correct != correct:
            sys.exit("the state is not the committed teacher's, or PyTorch and the file disagree on the count")

    print(f"first {args.n} test images: {correct}/{args.n}")


if __name__ == "__main__":
    main()
