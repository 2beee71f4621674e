#!/usr/bin/env python3
"""Golden tensors for student/: an fm-tiny DeiT in plain PyTorch (timm's
parameter names, no timm needed), one batch, its logits, every loss mode's
value and logit gradients, every parameter's gradient for one loss, and two
AdamW steps with global-norm clipping.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/student_golden.py
Writes testdata/golden/student_fm_tiny.bin: a sequence of records
  u32 name length, name (utf-8), u32 ndim, u32 dims[ndim], float32 data (little endian)
"""
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

IMG, CH, P, D, L, H, MLP, K = 28, 1, 4, 64, 4, 4, 4, 10
EPS = 1e-6  # timm's DeiT: partial(nn.LayerNorm, eps=1e-6)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, N, hs)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact, erf
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, dim * mlp)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, ch=CH, dim=D, patch=P):
        super().__init__()
        self.proj = nn.Conv2d(ch, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D)


class DeiT(nn.Module):
    """fm-tiny by default; the keyword arguments give other shapes (scripts/bench_train_torch.py)."""

    def __init__(self, img=IMG, ch=CH, patch=P, dim=D, depth=L, heads=H, mlp=MLP, classes=K):
        super().__init__()
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 2, dim))
        self.patch_embed = PatchEmbed(ch, dim, patch)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.head = nn.Linear(dim, classes)
        self.head_dist = nn.Linear(dim, classes)

    def forward(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1), x), dim=1)
        x = x + self.pos_embed
        for b in self.blocks:
            x = b(x)
        x = self.norm(x)
        return self.head(x[:, 0]), self.head_dist(x[:, 1])


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = DeiT()
    # Weights larger than timm's init so that attention is far from uniform and
    # every norm weight and bias matters: the test then checks every path.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif name.startswith("patch_embed"):
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))

    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    B = 8
    images = torch.randn(B, CH, IMG, IMG)
    labels = torch.randint(0, K, (B,))
    teacher_logits = 2 * torch.randn(B, K)
    teacher_hard = teacher_logits.argmax(dim=1)


    def loss_fn(cls, dist, mode, alpha=0.5, tau=1.0, smoothing=0.0, kl_norm="batch"):
        ce = F.cross_entropy(cls, labels, label_smoothing=smoothing)
        if mode == "none":
            return 0.5 * ce + 0.5 * F.cross_entropy(dist, labels, label_smoothing=smoothing)
        if mode == "hard":
            return (1 - alpha) * ce + alpha * F.cross_entropy(dist, teacher_hard)
        kl = F.kl_div(F.log_softmax(dist / tau, dim=1), F.log_softmax(teacher_logits / tau, dim=1),
                      reduction="sum", log_target=True) * tau * tau
        kl = kl / (dist.numel() if kl_norm == "numel" else dist.shape[0])
        return (1 - alpha) * ce + alpha * kl


    CASES = {  # name: kwargs; the Go test reads the same table
        "none": dict(mode="none"),
        "none_s0.1": dict(mode="none", smoothing=0.1),
        "soft_t1_a0.5": dict(mode="soft", tau=1.0, alpha=0.5),
        "soft_t3_a0.1_s0.1": dict(mode="soft", tau=3.0, alpha=0.1, smoothing=0.1),
        "soft_t2_a0.5_numel": dict(mode="soft", tau=2.0, alpha=0.5, kl_norm="numel"),
        "hard": dict(mode="hard", alpha=0.5),
    }
    GRAD_CASE = "soft_t3_a0.1_s0.1"

    out = []


    def put(name, t):
        out.append((name, t.detach().to(torch.float32).clone().contiguous()))  # a copy: AdamW updates the parameters in place later


    for name, p in model.named_parameters():
        put("param/" + name, p)
    put("images", images)
    put("labels", labels.float())
    put("teacher_logits", teacher_logits)

    cls, dist = model(images)
    put("cls_logits", cls)
    put("dist_logits", dist)

    for case, kw in CASES.items():
        c = cls.detach().clone().requires_grad_(True)
        d = dist.detach().clone().requires_grad_(True)
        l = loss_fn(c, d, **kw)
        l.backward()
        put("loss/" + case, l.reshape(1))
        put("dlogits/" + case + "/cls", c.grad)
        put("dlogits/" + case + "/dist", d.grad)

    model.zero_grad()
    cls, dist = model(images)
    loss = loss_fn(cls, dist, **CASES[GRAD_CASE])
    loss.backward()
    grad_loss = loss.item()
    for name, p in model.named_parameters():
        put("grad/" + name, p.grad)

    # Two AdamW steps from these gradients, clipped to half their global norm,
    # with timm's groups: no decay on 1-D parameters and the tokens/positions.
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    gnorm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
    clip = 0.5 * gnorm
    LR, WD = 1e-3, 0.05
    no_decay = {"cls_token", "dist_token", "pos_embed"}
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and n not in no_decay]
    other = [p for n, p in model.named_parameters() if not (p.ndim > 1 and n not in no_decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": other, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    for step in range(2):
        for n, p in model.named_parameters():
            p.grad = grads[n].clone()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    put("adamw/config", torch.tensor([LR, WD, clip]))
    for name, p in model.named_parameters():
        put("adamw/" + name, p)

    # Ten training steps from the initial parameters on the same batch (hard
    # distillation, constant lr, clipping at 1, AdamW): the losses check that
    # step after step nothing drifts.
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(initial[n])
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": other, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for step in range(10):
        opt.zero_grad()
        cls, dist = model(images)
        loss = loss_fn(cls, dist, mode="hard", alpha=0.5)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    put("train/losses", torch.tensor(losses))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "golden", "student_fm_tiny.bin")
    with open(path, "wb") as f:
        for name, t in out:
            b = name.encode()
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())
    print("wrote", os.path.normpath(path), len(out), "tensors; loss", GRAD_CASE, grad_loss, "grad norm", gnorm,
          "training losses", " ".join("%.4f" % l for l in losses))


if __name__ == "__main__":
    main()
