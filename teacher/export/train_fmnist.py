#!/usr/bin/env python3
"""Train deitkd's demo teacher: a small RegNetY on Fashion-MNIST, exported to ONNX.

Tooling only: deitkd never imports PyTorch at run or test time. This script reads
the Fashion-MNIST IDX files (Debian package dataset-fashion-mnist), trains
torchvision's RegNet built from BlockParams (grouped 3x3 convolutions,
squeeze-excitation) with a stem for 28x28 grayscale, measures top-1/top-5 on the
10,000 test images, and writes an ONNX file (input `input` Nx1x28x28 float32,
output `logits` Nx10, dynamic batch) whose metadata_props carry the
preprocessing (`deitkd.preprocess`) and class names (`deitkd.class_names`).

Run with Debian's interpreter, e.g.
    /usr/bin/python3 teacher/export/train_fmnist.py --epochs 11 --seed 1 --threads 2 \
        --out testdata/teacher/regnety_fmnist.onnx
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import sys
import time

# Threads that spin while waiting cost a shared machine dearly: let them sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.models.regnet import BlockParams, RegNet  # noqa: E402
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnxmeta  # noqa: E402  (sibling module)

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# The architecture: three stages at 14x14, 7x7 and 4x4 (each stage's first block
# has stride 2), RegNetY blocks (1x1, grouped 3x3, SE, 1x1, residual).
STEM_WIDTH = 24
DEPTHS = [1, 2, 3]
WIDTHS = [48, 96, 192]
GROUP_WIDTHS = [16, 16, 16]
BOTTLENECK = [1.0, 1.0, 1.0]
STRIDES = [2, 2, 2]
SE_RATIO = 0.25


class GrayStem(Conv2dNormActivation):
    """3x3 stride-1 conv from one channel: keeps 28x28 for the first stage to downsample."""

    def __init__(self, width_in, width_out, norm_layer, activation_layer):
        del width_in  # RegNet passes 3 (RGB); the demo teacher sees grayscale.
        super().__init__(1, width_out, kernel_size=3, stride=1,
                         norm_layer=norm_layer, activation_layer=activation_layer)


def build_model():
    params = BlockParams(depths=DEPTHS, widths=WIDTHS, group_widths=GROUP_WIDTHS,
                         bottleneck_multipliers=BOTTLENECK, strides=STRIDES,
                         se_ratio=SE_RATIO)
    return RegNet(params, num_classes=10, stem_width=STEM_WIDTH, stem_type=GrayStem)


def build_vit(patch, dim, depth, heads):
    """torchvision's VisionTransformer (class token, pre-norm blocks, GELU MLP of 4·dim) for
    28x28 grayscale: the patch embedding takes one channel."""
    model = VisionTransformer(image_size=28, patch_size=patch, num_layers=depth, num_heads=heads,
                              hidden_dim=dim, mlp_dim=4 * dim, num_classes=10)
    model.conv_proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
    nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1.0 / (patch * patch)))
    nn.init.zeros_(model.conv_proj.bias)
    return model


def attention_macs(model):
    """Multiply-accumulates of a ViT's attention for one image that the module hooks of
    count_flops do not see: nn.MultiheadAttention calls its Q/K/V and output projections
    (4·T·D²) and the products QK^T and AV (2·T²·D) functionally."""
    if not isinstance(model, VisionTransformer):
        return 0
    tokens = (28 // model.patch_size) ** 2 + 1
    d = model.hidden_dim
    return len(model.encoder.layers) * (4 * tokens * d * d + 2 * tokens * tokens * d)


class FlipTTA(nn.Module):
    """Mean of the logits for the image and its horizontal mirror (test-time augmentation)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return 0.5 * (self.net(x) + self.net(torch.flip(x, dims=[3])))


def count_flops(model, shape=(1, 1, 28, 28)):
    """Multiply-accumulates of convolutions and linear layers for one image (hooks)."""
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs[0] += out.numel() // out.shape[0] * k

    def lin_hook(m, inp, out):  # once per token when applied to a sequence
        macs[0] += m.in_features * m.out_features * (out.numel() // out.shape[0] // m.out_features)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs[0]


def read_idx(path):
    """Read a gzip'd IDX file (images u8 NxHxW or labels u8 N) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes of data, header says {dims}")
    return arr.reshape(dims)


def load_split(root, prefix):
    x = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def augment(xb, pad, gen):
    """Random crop with zero padding (of the normalised image's background) and horizontal flip."""
    n, c, h, w = xb.shape
    padded = F.pad(xb, (pad, pad, pad, pad), value=0.0)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n x w
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_r = rows[:, None, :, None].expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, idx_r)
    idx_c = cols[:, None, None, :].expand(n, c, h, w)
    return out.gather(3, idx_c)


def evaluate(model, x, y, batch=1000):
    model.eval()
    logits = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits.append(model(x[i:i + batch]))
    logits = torch.cat(logits)
    top5 = logits.topk(5, dim=1).indices
    c1 = int((top5[:, 0] == y).sum())
    c5 = int((top5 == y[:, None]).any(dim=1).sum())
    return c1, c5, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                    help="folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz")
    ap.add_argument("--arch", default="regnet", choices=["regnet", "vit"],
                    help="regnet: the demo teacher; vit: a small ViT teacher (AdamW)")
    ap.add_argument("--vit-patch", type=int, default=4)
    ap.add_argument("--vit-dim", type=int, default=96)
    ap.add_argument("--vit-depth", type=int, default=6)
    ap.add_argument("--vit-heads", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=11)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="testdata/teacher/regnety_fmnist.onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.0,
                    help="peak learning rate (OneCycle); 0: 0.1 (regnet, SGD) or 2e-3 (vit, AdamW)")
    ap.add_argument("--wd", type=float, default=0.0, help="0: 5e-4 (regnet) or 0.05 (vit)")
    ap.add_argument("--pad", type=int, default=2, help="random-crop padding in pixels")
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop after this many steps (timing runs); 0: full schedule")
    ap.add_argument("--summary", default="", help="write a JSON summary of the run here")
    ap.add_argument("--save-state", default="", help="save the trained state_dict here")
    ap.add_argument("--load-state", default="",
                    help="skip training: load this state_dict (from --save-state) and export")
    ap.add_argument("--flip-tta", action="store_true",
                    help="export (and measure) the mean of the logits of the image and its mirror")
    args = ap.parse_args()

    if args.lr == 0.0:
        args.lr = 0.1 if args.arch == "regnet" else 2e-3
    if args.wd == 0.0:
        args.wd = 5e-4 if args.arch == "regnet" else 0.05
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    xtr_u8, ytr = load_split(args.data, "train")
    xte_u8, yte = load_split(args.data, "t10k")
    xtr = xtr_u8.float().div_(255.0)
    mean = float(xtr.mean())
    std = float(xtr.std())
    print(f"train {tuple(xtr.shape)} test {tuple(xte_u8.shape)} mean {mean:.4f} std {std:.4f}",
          flush=True)
    mean_r, std_r = round(mean, 4), round(std, 4)
    xtr = ((xtr - mean_r) / std_r).unsqueeze(1)
    xte = ((xte_u8.float() / 255.0 - mean_r) / std_r).unsqueeze(1)
    pad_value = (0.0 - mean_r) / std_r  # black background after normalisation

    if args.arch == "vit":
        model = build_vit(args.vit_patch, args.vit_dim, args.vit_depth, args.vit_heads)
    else:
        model = build_model()
        # channels_last runs the grouped convolutions through oneDNN's faster path on CPU.
        model = model.to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    macs = count_flops(model) + attention_macs(model)
    print(f"params {n_params} MACs/image {macs}", flush=True)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # No decay on biases, norms, the class token or the position embedding (as timm).
        (no_decay if p.ndim <= 1 or name.endswith(("class_token", "pos_embedding")) else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.wd},
              {"params": no_decay, "weight_decay": 0.0}]
    if args.arch == "vit":
        opt = torch.optim.AdamW(groups, lr=args.lr)
    else:
        opt = torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = math.ceil(xtr.shape[0] / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total,
                                                pct_start=0.15, div_factor=10.0,
                                                final_div_factor=100.0)
    crit = nn.CrossEntropyLoss(label_smoothing=args.smoothing)

    t0 = time.time()
    step = 0
    if args.load_state:
        model.load_state_dict(torch.load(args.load_state, map_location="cpu"))
        print(f"loaded {args.load_state}; not training", flush=True)
    for epoch in range(0 if args.load_state else args.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        run_loss, run_n, te = 0.0, 0, time.time()
        for i in range(0, xtr.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            xb = augment(xtr[idx] - pad_value, args.pad, gen) + pad_value
            out = model(xb.contiguous(memory_format=torch.channels_last))
            loss = crit(out, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += float(loss) * idx.numel()
            run_n += idx.numel()
            if step % 50 == 0:
                el = time.time() - t0
                print(f"epoch {epoch + 1} step {step}/{total} loss {run_loss / run_n:.4f} "
                      f"{el:.0f}s ({el / step:.3f}s/step)", flush=True)
            if args.max_steps and step >= args.max_steps:
                print(f"stopping after {step} steps: {(time.time() - t0) / step:.3f}s/step, "
                      f"{steps_per_epoch} steps/epoch", flush=True)
                return
        # Progress only: the first 2000 test images (the full set is measured once, at the end).
        c1, c5, _ = evaluate(model, xte[:2000], yte[:2000])
        print(f"epoch {epoch + 1}/{args.epochs} train loss {run_loss / run_n:.4f} "
              f"test[:2000] top1 {c1 / 20:.2f}% top5 {c5 / 20:.2f}% epoch {time.time() - te:.0f}s "
              f"total {time.time() - t0:.0f}s", flush=True)
    train_s = time.time() - t0

    model = model.to(memory_format=torch.contiguous_format)
    if args.save_state:
        torch.save(model.state_dict(), args.save_state)
    if args.flip_tta:
        model = FlipTTA(model)
    model.eval()
    c1, c5, logits = evaluate(model, xte, yte)
    print(f"final test top1 {c1}/10000 = {c1 / 10000:.4f}  top5 {c5}/10000 = {c5 / 10000:.4f}",
          flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    preprocess = {"resize": 0, "crop": 28, "interpolation": "bilinear",
                  "mean": [mean_r], "std": [std_r], "channels": 1}
    onnxmeta.export(model, torch.zeros(2, 1, 28, 28), args.out, preprocess, CLASS_NAMES)
    max_diff, _ = onnxmeta.check(args.out, model, xte[:64])
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size} bytes sha256 {digest}; max |onnx-torch| on 64 test images "
          f"{max_diff:.2e}", flush=True)

    summary = {
        "params": n_params, "macs": macs, "flops": 2 * macs,
        "top1_correct": c1, "top5_correct": c5, "top1": c1 / 10000, "top5": c5 / 10000,
        "train_seconds": round(train_s, 1), "epochs": args.epochs, "seed": args.seed,
        "arch": args.arch, "batch": args.batch, "lr": args.lr, "wd": args.wd, "pad": args.pad,
        "smoothing": args.smoothing, "flip_tta": args.flip_tta, "threads": args.threads, "mean": mean, "std": std,
        "mean_used": mean_r, "std_used": std_r, "onnx_bytes": size, "sha256": digest,
        "torch": torch.__version__, "machine": platform.machine(), "cpu": _cpu_name(),
        "argv": sys.argv,
    }
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps(summary), flush=True)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
