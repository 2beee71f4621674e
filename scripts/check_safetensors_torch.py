#!/usr/bin/env python3
"""Check a deitkd safetensors export in plain PyTorch, as timm would load it.

Builds timm's DeiT structure (VisionTransformerDistilled, or VisionTransformer for a student
without the distillation token) with timm's module names, so its state-dict keys are timm's;
parses the safetensors file itself (no safetensors package); loads it with strict=True; runs
the committed input batch; and compares with the logits deitkd wrote beside the export:
cls_logits, dist_logits, fused_softmax (the mean of the two softmaxes) and fused_logits (the
mean of the logits: what timm's distilled DeiT returns in eval mode).

Run with Debian's PyTorch (no other package):

    /usr/bin/python3 scripts/check_safetensors_torch.py [testdata/export/fm_tiny.logits.json]

The JSON names the model and input files (relative to itself); the go test TestFixture in
export/ writes all three (go test ./export -run Fixture -update). Exits 1 when any output
differs by more than 1e-4.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TOLERANCE = 1e-4
EPS = 1e-6  # timm's DeiT: partial(nn.LayerNorm, eps=1e-6)

# student.Config's defaults: the JSON omits fields at their default (fm-tiny).
DEFAULTS = dict(image_size=28, channels=1, patch=4, dim=64, depth=4, heads=4, mlp_ratio=4.0,
                classes=10, no_dist_token=False)


def read_safetensors(path):
    """Returns ({name: float32 tensor}, metadata) from a safetensors file, F32 only."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {e['dtype']}, only F32 is handled")
        begin, end = e["data_offsets"]
        count = math.prod(e["shape"])
        if end - begin != 4 * count or end > len(body):
            raise ValueError(f"{name}: offsets {begin}..{end} for shape {e['shape']}")
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32) if count else torch.zeros(0)
        tensors[name] = t.reshape(e["shape"])
    return tensors, meta


# ------------------------------------------------------- timm's modules, by timm's names

class PatchEmbed(nn.Module):
    def __init__(self, img, patch, chans, dim):
        super().__init__()
        self.num_patches = (img // patch) ** 2
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # (B, N, D)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, N, hs)
        q, k = self.q_norm(q), self.k_norm(k)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf), timm's default
        self.drop1 = nn.Dropout(0.0)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads)
        self.ls1 = nn.Identity()
        self.drop_path1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = nn.Identity()
        self.drop_path2 = nn.Identity()

    def forward(self, x):
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer(nn.Module):
    """timm's VisionTransformer (global_pool='token', class token, no registers), and with
    distilled=True its VisionTransformerDistilled: a dist_token, two more positions, head_dist."""

    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_ratio,
                 distilled):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.num_prefix_tokens = 2 if distilled else 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + self.num_prefix_tokens, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if distilled else None
        self.pos_drop = nn.Dropout(0.0)
        self.norm_pre = nn.Identity()
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=EPS)
        self.fc_norm = nn.Identity()
        self.head_drop = nn.Dropout(0.0)
        self.head = nn.Linear(embed_dim, num_classes)
        self.head_dist = nn.Linear(embed_dim, num_classes) if distilled else None

    def forward_heads(self, x):
        """Returns (class-head logits, distillation-head logits or None)."""
        x = self.patch_embed(x)
        B = x.shape[0]
        tokens = [self.cls_token.expand(B, -1, -1)]
        if self.dist_token is not None:
            tokens.append(self.dist_token.expand(B, -1, -1))
        x = self.pos_drop(torch.cat(tokens + [x], dim=1) + self.pos_embed)
        x = self.norm(self.blocks(self.norm_pre(x)))
        cls = self.head(self.head_drop(self.fc_norm(x[:, 0])))
        dist = self.head_dist(x[:, 1]) if self.head_dist is not None else None
        return cls, dist


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ref_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "testdata", "export", "fm_tiny.logits.json")
    with open(ref_path) as f:
        ref = json.load(f)
    base = os.path.dirname(os.path.abspath(ref_path))

    state, meta = read_safetensors(os.path.join(base, ref["model"]))
    cfg = dict(DEFAULTS, **json.loads(meta["deitkd.student_config"]))
    distilled = not cfg["no_dist_token"]
    model = VisionTransformer(img_size=cfg["image_size"], patch_size=cfg["patch"], in_chans=cfg["channels"],
                              num_classes=cfg["classes"], embed_dim=cfg["dim"], depth=cfg["depth"],
                              num_heads=cfg["heads"], mlp_ratio=cfg["mlp_ratio"], distilled=distilled)
    model.load_state_dict(state, strict=True)  # every key and shape exactly timm's
    model.eval()

    shape = ref["input_shape"]
    with open(os.path.join(base, ref["input_file"]), "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        cls, dist = model.forward_heads(x)
    if dist is None:
        dist = cls
    got = {
        "cls_logits": cls,
        "dist_logits": dist,
        "fused_softmax": (F.softmax(cls, dim=1) + F.softmax(dist, dim=1)) / 2,
        "fused_logits": (cls + dist) / 2,  # timm's VisionTransformerDistilled in eval mode
    }
    worst = 0.0
    for name, t in got.items():
        if name not in ref:
            continue
        d = (t - torch.tensor(ref[name])).abs().max().item()
        worst = max(worst, d)
        print(f"{name:14s} max |PyTorch - deitkd| = {d:.3g}")
    print(f"{len(state)} tensors loaded with strict=True; batch {shape}; worst {worst:.3g} (tolerance {TOLERANCE:g})")
    if not worst <= TOLERANCE:
        print("FAIL", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
