#!/usr/bin/env python3
"""Export your own teacher (any torchvision or timm classifier) to ONNX for deitkd.

Writes the layout deitkd's precompute expects: input `input` Nx3xHxW float32 and
output `logits` NxK, both with a dynamic batch dimension, and embeds the
preprocessing and class names in the ONNX metadata_props (`deitkd.preprocess`,
`deitkd.class_names`) so `precompute --model FILE` needs no preprocessing flags.

torchvision (RegNetY-16GF first):
    /usr/bin/python3 teacher/export/export_torchvision.py --arch regnet_y_16gf \
        --weights regnet_y_16gf.pth --out regnety16gf.onnx
timm (when timm is installed):
    python3 teacher/export/export_torchvision.py --timm regnety_160.pycls_in1k \
        --weights model.safetensors --out regnety160.onnx

Without --weights the network has random weights (useful to check the pipeline
where no weights can be downloaded). The preprocessing defaults come from the
library's own metadata: for torchvision, the transforms of the weights entry named
by --tv-weights (default: the arch's IMAGENET1K_V1 entry, falling back to DEFAULT);
for timm, timm.data.resolve_data_config. Every field can be overridden by a flag.
"""

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnxmeta  # noqa: E402  (sibling module)


def load_state_dict(path):
    """A state_dict from .pt/.pth (plain or wrapped under model/state_dict) or .safetensors."""
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            sys.exit("export_torchvision: reading .safetensors needs the safetensors package; "
                     "convert to a .pth state_dict or install it")
        return load_file(path)
    sd = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model", "model_ema"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        sys.exit(f"export_torchvision: {path}: not a state_dict (got {type(sd).__name__})")
    # DataParallel / DDP checkpoints prefix every key with "module."
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _interp_name(mode):
    name = getattr(mode, "value", mode)
    return str(name).lower()


def torchvision_model(args):
    import torchvision.models as tvm

    if not hasattr(tvm, "get_model_builder"):
        builder = getattr(tvm, args.arch, None)
    else:
        try:
            builder = tvm.get_model_builder(args.arch)
        except ValueError:
            builder = None
    if builder is None:
        names = tvm.list_models(module=tvm) if hasattr(tvm, "list_models") else []
        sys.exit(f"export_torchvision: unknown torchvision classifier {args.arch!r}"
                 + (f"; known: {', '.join(names)}" if names else ""))

    # Preprocessing and class names from torchvision's weights metadata (no download).
    pre = {"resize": 256, "crop": 224, "interpolation": "bilinear",
           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    categories, source = None, "ImageNet defaults (no torchvision weights entry)"
    try:
        enum = tvm.get_model_weights(args.arch)
    except (ValueError, AttributeError):
        enum = None
    if enum is not None:
        tag = args.tv_weights
        entry = None
        if tag in enum.__members__:
            entry = enum[tag]
        elif tag == "IMAGENET1K_V1" and "DEFAULT" in enum.__members__:
            entry = enum.DEFAULT
        else:
            sys.exit(f"export_torchvision: {enum.__name__} has no entry {tag!r}; "
                     f"have {', '.join(enum.__members__)}")
        tf = entry.transforms()
        pre = {"resize": int(_first(tf.resize_size)), "crop": int(_first(tf.crop_size)),
               "interpolation": _interp_name(tf.interpolation),
               "mean": [float(v) for v in tf.mean], "std": [float(v) for v in tf.std]}
        categories = entry.meta.get("categories")
        source = f"torchvision {enum.__name__}.{entry.name}.transforms()"

    kwargs = {}
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    model = builder(weights=None, **kwargs)
    return model, pre, categories, source


def _first(v):
    return v[0] if isinstance(v, (list, tuple)) else v


def timm_model(args):
    try:
        import timm
        from timm.data import resolve_data_config
    except ImportError as e:
        sys.exit(f"export_torchvision: --timm needs the timm package, which is not importable "
                 f"here ({e}); install it (pip install timm) or export a torchvision --arch")
    kwargs = {"pretrained": False}
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    model = timm.create_model(args.timm, **kwargs)
    cfg = resolve_data_config({}, model=model)
    crop = int(cfg["input_size"][-1])
    crop_pct = float(cfg.get("crop_pct", 0.875))
    pre = {"resize": int(math.floor(crop / crop_pct)), "crop": crop,
           "interpolation": str(cfg.get("interpolation", "bicubic")).lower(),
           "mean": [float(v) for v in cfg["mean"]], "std": [float(v) for v in cfg["std"]]}
    return model, pre, None, f"timm resolve_data_config for {args.timm}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="torchvision classifier name, e.g. regnet_y_16gf")
    src.add_argument("--timm", help="timm model name (needs timm installed)")
    ap.add_argument("--weights", help="state_dict file (.pt/.pth, or .safetensors); "
                                      "random weights when omitted")
    ap.add_argument("--tv-weights", default="IMAGENET1K_V1",
                    help="torchvision weights entry whose transforms give the preprocessing "
                         "defaults (IMAGENET1K_V1, IMAGENET1K_V2, ...); nothing is downloaded")
    ap.add_argument("--num-classes", type=int, default=0, help="K (default: the model's own)")
    ap.add_argument("--class-names", help="file with one class name per line (K lines)")
    ap.add_argument("--resize", type=int, help="shorter side before the centre crop (0: none)")
    ap.add_argument("--crop", type=int, help="centre-crop size = the model's input H and W")
    ap.add_argument("--interpolation", choices=["bilinear", "bicubic"])
    ap.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
    ap.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"))
    ap.add_argument("--opset", type=int, default=onnxmeta.OPSET)
    ap.add_argument("--check-batch", type=int, default=1,
                    help="compare ONNX with PyTorch on this many random inputs (0: skip; "
                         "uses a slow numpy interpreter)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.time()
    model, pre, categories, source = (torchvision_model(args) if args.arch else timm_model(args))
    if args.weights:
        sd = load_state_dict(args.weights)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            sys.exit(f"export_torchvision: {args.weights} does not fit the model: "
                     f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}")
    model.eval()

    for key in ("resize", "crop", "interpolation", "mean", "std"):
        v = getattr(args, key)
        if v is not None:
            pre[key] = list(v) if isinstance(v, list) else v
            source += f"; --{key} override"
    pre["channels"] = 3
    if pre["interpolation"] not in ("bilinear", "bicubic"):
        sys.exit(f"export_torchvision: {source} gives interpolation {pre['interpolation']!r}; "
                 "deitkd resizes with bilinear or bicubic: pass --interpolation")
    preprocess = {k: pre[k] for k in
                  ("resize", "crop", "interpolation", "mean", "std", "channels")}

    crop = preprocess["crop"]
    dummy = torch.zeros(2, 3, crop, crop)
    with torch.no_grad():
        k = int(model(dummy[:1]).shape[-1])
    if args.class_names:
        with open(args.class_names, encoding="utf-8") as f:
            names = f.read().rstrip("\r\n").split("\n")
        names = [n.rstrip("\r") for n in names]
        for i, n in enumerate(names):
            if not n.strip():
                sys.exit(f"export_torchvision: {args.class_names}: line {i + 1} is empty")
            if names.index(n) != i:
                sys.exit(f"export_torchvision: {args.class_names}: lines {names.index(n) + 1} "
                         f"and {i + 1} both name {n!r} (deitkd needs distinct names)")
        if len(names) != k:
            sys.exit(f"export_torchvision: {args.class_names} has {len(names)} names, "
                     f"the model has {k} classes")
    elif categories is not None and len(categories) == k:
        names = list(categories)
    else:
        names = [f"class_{i}" for i in range(k)]

    onnxmeta.export(model, dummy, args.out, preprocess, names, opset=args.opset)
    export_s = time.time() - t0
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size} bytes, {k} classes, export {export_s:.1f}s", flush=True)
    print(f"preprocess ({source}): {json.dumps(preprocess)}", flush=True)
    if args.check_batch > 0:
        t1 = time.time()
        x = torch.randn(args.check_batch, 3, crop, crop)
        try:
            diff, scale = onnxmeta.check(args.out, model, x)
        except NotImplementedError as e:
            print(f"check: onnx.checker and layout ok; output comparison skipped ({e})",
                  flush=True)
            return
        print(f"check: onnx.checker ok, max |onnx - torch| {diff:.2e} (max |logit| {scale:.2e}) "
              f"on {args.check_batch} random input(s) ({time.time() - t1:.1f}s)", flush=True)
        if diff > 1e-4 * max(1.0, scale):
            sys.exit(f"export_torchvision: ONNX and PyTorch disagree by {diff}")
    else:
        import onnx
        onnx.checker.check_model(args.out)
        print("check: onnx.checker ok (output comparison skipped)", flush=True)


if __name__ == "__main__":
    main()
