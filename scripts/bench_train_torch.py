#!/usr/bin/env python3
"""The reference for `make bench-train`: one training step in PyTorch — forward,
hard-distillation loss, backward, global-norm clipping and AdamW — the step
BenchmarkTrainStep in student/ runs, for its shapes: fm-tiny (28×28×1, batch 128)
and DeiT-tiny's shape on 3×96×96 inputs (D 192, 12 blocks, 3 heads, patch 16,
10 classes, batch 64).

Run with Debian's PyTorch:
  /usr/bin/python3 scripts/bench_train_torch.py [--shape fm-tiny|deit-tiny-96] [--threads 2] [--steps 20]
Prints one line: "torch  img/s N  cpu-ms/img M  maxrss-MiB R" (CPU time per image,
less sensitive than img/s to other processes on a shared machine; the process's
peak resident set size).
"""
import argparse
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from student_golden import DeiT, K  # noqa: E402  the same timm-named model

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--shape", choices=["fm-tiny", "deit-tiny-96"], default="fm-tiny")
ap.add_argument("--batch", type=int, default=0, help="0: the shape's (128, 64)")
args = ap.parse_args()
SHAPES = {  # DeiT keyword arguments and batch
    "fm-tiny": (dict(), 128),
    "deit-tiny-96": (dict(img=96, ch=3, patch=16, dim=192, depth=12, heads=3, mlp=4), 64),
}
kw, B = SHAPES[args.shape]
if args.batch:
    B = args.batch
IMG, CH = kw.get("img", 28), kw.get("ch", 1)

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = DeiT(**kw).train()
no_decay = {"cls_token", "dist_token", "pos_embed"}
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and n not in no_decay]
other = [p for n, p in model.named_parameters() if not (p.ndim > 1 and n not in no_decay)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}], lr=1e-3)

images = torch.randn(B, CH, IMG, IMG)
labels = torch.randint(0, K, (B,))
teacher_hard = torch.randint(0, K, (B,))


def step():
    cls, dist = model(images)
    loss = 0.5 * F.cross_entropy(cls, labels) + 0.5 * F.cross_entropy(dist, teacher_hard)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(3):  # warm-up: oneDNN picks its kernels
    step()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(args.steps):
    step()
dt, dc = time.perf_counter() - t0, time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print("torch  img/s %.1f  cpu-ms/img %.3f  maxrss-MiB %.0f" % (B * args.steps / dt, dc * 1000 / (B * args.steps), rss))
