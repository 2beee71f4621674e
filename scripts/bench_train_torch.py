#!/usr/bin/env python3
"""The reference for `make bench-train`: one fm-tiny training step at batch
128 in PyTorch — forward, hard-distillation loss, backward, global-norm
clipping and AdamW — the step BenchmarkTrainStep in student/ runs.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/bench_train_torch.py [--threads 2] [--steps 20]
Prints one line: "torch  img/s N  cpu-ms/img M" (CPU time per image, less
sensitive than img/s to other processes on a shared machine).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from student_golden import DeiT, K  # noqa: E402  the same timm-named model

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--batch", type=int, default=128)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = DeiT().train()
no_decay = {"cls_token", "dist_token", "pos_embed"}
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and n not in no_decay]
other = [p for n, p in model.named_parameters() if not (p.ndim > 1 and n not in no_decay)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}], lr=1e-3)

B = args.batch
images = torch.randn(B, 1, 28, 28)
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
print("torch  img/s %.1f  cpu-ms/img %.3f" % (B * args.steps / dt, dc * 1000 / (B * args.steps)))
