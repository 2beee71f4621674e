#!/usr/bin/env python3
"""The plain PyTorch loop of issue 16's parity table: the fm-tiny DeiT of
scripts/student_golden.py (timm's names) trained on Fashion-MNIST with
labels only (both heads learn the labels: deitkd's --distill none), no
augmentation, AdamW, batch 128, evaluated on the 10,000 test images by the
class head, the distillation head and their fusion (mean of the softmaxes).

Run with Debian's PyTorch:
  /usr/bin/python3 scripts/parity_torch.py --limit 20000 --epochs 1 --seed 1 \
      --init torch --sched cosine --warmup 0.1
Prints one JSON line: {"top1_cls":…, "top1_dist":…, "top1_fused":…, …}.

--init torch: PyTorch's default initialisation (nn.Linear's uniform
±1/√fan_in, zero tokens and positions); --init timm: timm's DeiT
(trunc_normal_(std=0.02) on linear weights, tokens and positions, zero
biases; its bounds ±2 are absolute, so nothing is truncated at this std);
--init deitkd: trunc-normal(0.02) truncated at ±2σ, deitkd's student.New.
--sched onecycle: torch's OneCycleLR (its defaults: 30% warm-up from lr/25,
cosine to lr/25e4, β1 cycled 0.95→0.85→0.95); --sched cosine: deitkd's
(linear warm-up over --warmup of the steps, cosine to --min-lr).
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from student_golden import DeiT  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--limit", type=int, default=0)
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--min-lr", type=float, default=1e-5)
ap.add_argument("--wd", type=float, default=0.05)
ap.add_argument("--clip", type=float, default=0)
ap.add_argument("--warmup", type=float, default=0.1)
ap.add_argument("--sched", choices=["onecycle", "cosine"], default="cosine")
ap.add_argument("--init", choices=["torch", "timm", "deitkd"], default="torch")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--mean", type=float, default=0.286)
ap.add_argument("--std", type=float, default=0.353)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)


def idx(name):
    with gzip.open(os.path.join(args.data, name), "rb") as f:
        b = f.read()
    if b[2] == 8 and b[3] == 3:
        n, h, w = (int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(b, np.uint8, offset=8).astype(np.int64)


def images(name):
    x = torch.from_numpy(idx(name).astype(np.float32) / 255)
    return (x - args.mean) / args.std


xtr, ytr = images("train-images-idx3-ubyte.gz"), torch.from_numpy(idx("train-labels-idx1-ubyte.gz"))
if args.limit:
    xtr, ytr = xtr[:args.limit], ytr[:args.limit]
xte, yte = images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz"))

model = DeiT()
if args.init != "torch":
    def tn(t):
        if args.init == "timm":
            nn.init.trunc_normal_(t, std=0.02)
        else:
            nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith("patch_embed"):
                continue
            if n.endswith(".bias"):
                p.zero_()
            elif "norm" in n:
                p.fill_(1)
            else:
                tn(p)
no_decay = {"cls_token", "dist_token", "pos_embed"}
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and n not in no_decay]
other = [p for n, p in model.named_parameters() if not (p.ndim > 1 and n not in no_decay)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": other, "weight_decay": 0.0}], lr=args.lr)
steps_per_epoch = math.ceil(len(xtr) / args.batch)
total = steps_per_epoch * args.epochs
warm = round(args.warmup * total)
if args.sched == "onecycle":
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total)
else:
    def lr_at(s):
        if s < warm:
            return args.lr * (s + 1) / warm
        d = (s - warm) / max(1, total - warm)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * d))
    sched = None

t0 = time.time()
step = 0
model.train()
for ep in range(args.epochs):
    perm = torch.randperm(len(xtr))
    for i in range(steps_per_epoch):
        j = perm[i * args.batch:(i + 1) * args.batch]
        if sched is None:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
        cls, dist = model(xtr[j])
        loss = 0.5 * F.cross_entropy(cls, ytr[j]) + 0.5 * F.cross_entropy(dist, ytr[j])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if sched is not None:
            sched.step()
        step += 1
model.eval()
hits = np.zeros(3)
with torch.no_grad():
    for i in range(0, len(xte), 500):
        cls, dist = model(xte[i:i + 500])
        fused = (cls.softmax(-1) + dist.softmax(-1)) / 2
        y = yte[i:i + 500]
        hits += [(o.argmax(-1) == y).sum().item() for o in (cls, dist, fused)]
r = dict(zip(["top1_cls", "top1_dist", "top1_fused"], (hits / len(xte)).round(4).tolist()))
r.update(vars(args), train_s=round(time.time() - t0, 1))
print(json.dumps(r))
