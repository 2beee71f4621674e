#!/usr/bin/python3
"""Makes the small ONNX models the teacher/ tests run, and their reference logits.

Run with Debian's PyTorch (never needed by the tests themselves; the outputs are committed):

    /usr/bin/python3 scripts/make_test_models.py            # writes testdata/models/

Everything is seeded, so a rerun on the same PyTorch writes the same weights and logits.

Models (all random-but-fixed weights; they are plumbing fixtures, not classifiers):
  tiny_regnet.onnx         torchvision RegNet (BlockParams: grouped convs + squeeze-excitation),
                           input N x 3 x 32 x 32 (dynamic N), output N x 5, with deitkd.preprocess
                           and deitkd.class_names in metadata_props
  tiny_regnet_fixed4.onnx  the same weights with the batch fixed at 4 (the padding path)
  tiny_gray.onnx           N x 1 x 28 x 28 -> N x 10, no metadata (works from flags)
  multi_output.onnx        two 2-D outputs, cls_logits (N x 5) and dist_logits (N x 5)
  wrong_int64_input.onnx   int64 input           wrong_3d_input.onnx   3-D input
  wrong_3d_output.onnx     3-D output            wrong_two_inputs.onnx two inputs
  wrong_dynamic_hw.onnx    N x 3 x H x W with H, W dynamic
  wrong_4_channels.onnx    N x 4 x 32 x 32
  dynamic_classes.onnx     N x 3 x 32 x 32 -> N x K, K symbolic (3 when run: the channel means)

Reference files (<model>.ref.json + <model>.input.f32): the input tensor as raw little-endian
float32 (seeded normal values) and PyTorch's logits for it, which ONNX Runtime must reproduce.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn
from torchvision.models.regnet import BlockParams, RegNet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "models")
OPSET = 13  # old enough for any ONNX Runtime the project meets, new enough for every op used

PREPROCESS = {
    "resize": 36,
    "crop": 32,
    "interpolation": "bilinear",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "channels": 3,
}
CLASS_NAMES = ["a_class", "b_class", "c_class", "d_class", "e_class"]


def randomise_batchnorm(model, gen):
    # Fresh BatchNorm layers are identities in eval mode; random statistics make the reference
    # test exercise them (folded or not by the runtime).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def tiny_regnet():
    # depth 3, widths 8 -> 16, group width 8 (so the 16-wide stage has grouped 3x3 convs), SE 1/4.
    params = BlockParams.from_init_params(depth=3, w_0=8, w_a=8.0, w_m=2.0, group_width=8,
                                          se_ratio=0.25)
    model = RegNet(params, num_classes=len(CLASS_NAMES), stem_width=8)
    # torchvision starts the head at std 0.01 (logits near 0.01, alike for every input); a
    # reference test wants logits of order one that differ from image to image.
    nn.init.normal_(model.fc.weight, std=1.0)
    nn.init.normal_(model.fc.bias, std=0.1)
    return model


class TinyGray(nn.Module):
    """A 28x28 grayscale classifier: two conv blocks, global pooling, a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(16), nn.ReLU(),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x):  # (N, 1, 28, 28)
        x = self.features(x)  # (N, 16, 7, 7)
        return self.head(x.mean(dim=(2, 3)))  # (N, 10)


class TwoHeads(nn.Module):
    """A DeiT-like pair of heads over a shared trunk: outputs cls_logits and dist_logits."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.cls = nn.Linear(8, 5)
        self.dist = nn.Linear(8, 5)

    def forward(self, x):
        f = self.trunk(x).mean(dim=(2, 3))
        return self.cls(f), self.dist(f)


def export(model, shape, path, input_name="input", output_names=("logits",), dynamic=True,
           metadata=None):
    model.eval()
    dummy = torch.zeros(*shape)
    axes = None
    if dynamic:
        axes = {input_name: {0: "batch"}}
        for name in output_names:
            axes[name] = {0: "batch"}
    torch.onnx.export(model, dummy, path, input_names=[input_name], output_names=list(output_names),
                      dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    m = onnx.load(path)
    if metadata:
        for k, v in metadata.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
    m.producer_name = "deitkd scripts/make_test_models.py"
    onnx.checker.check_model(m)
    onnx.save(m, path)


def write_reference(model, name, shape, seed):
    """Saves a seeded input tensor and the model's PyTorch logits for it."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        y = model.eval()(x)
    np.asarray(x.numpy(), dtype="<f4").tofile(os.path.join(OUT, name + ".input.f32"))
    ref = {
        "model": name + ".onnx",
        "input_file": name + ".input.f32",
        "input_shape": list(shape),
        # float32 values printed with repr of the float64 they widen to: exact round trip.
        "logits": [[float(v) for v in row] for row in y.numpy().astype(np.float32)],
        "made_by": "scripts/make_test_models.py (PyTorch %s)" % torch.__version__,
    }
    with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


def graph_model(path, inputs, outputs, nodes, initializers=()):
    g = helper.make_graph(nodes, os.path.basename(path), inputs, outputs, list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="deitkd scripts/make_test_models.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def wrong_models():
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    vi = helper.make_tensor_value_info
    flat = helper.make_tensor("flat", i64, [2], [0, -1])
    pool = helper.make_node("GlobalAveragePool", ["x"], ["p"])
    to_2d = helper.make_node("Reshape", ["p", "flat"], ["logits"])

    # int64 input (e.g. token ids).
    graph_model(os.path.join(OUT, "wrong_int64_input.onnx"),
                [vi("ids", i64, ["N", 3, 32, 32])], [vi("logits", f, ["N", 3])],
                [helper.make_node("Cast", ["ids"], ["x"], to=f), pool, to_2d], [flat])
    # 3-D input (a sequence model).
    graph_model(os.path.join(OUT, "wrong_3d_input.onnx"),
                [vi("seq", f, ["N", 3, 1024])], [vi("logits", f, ["N", 3])],
                [helper.make_node("ReduceMean", ["seq"], ["logits"], axes=[2], keepdims=0)])
    # 3-D output (a dense map, not logits).
    graph_model(os.path.join(OUT, "wrong_3d_output.onnx"),
                [vi("input", f, ["N", 3, 32, 32])], [vi("map", f, ["N", 3, 1024])],
                [helper.make_node("Reshape", ["input", "shape3"], ["map"])],
                [helper.make_tensor("shape3", i64, [3], [0, 3, 1024])])
    # Two inputs.
    graph_model(os.path.join(OUT, "wrong_two_inputs.onnx"),
                [vi("image", f, ["N", 3, 32, 32]), vi("mask", f, ["N", 3, 32, 32])],
                [vi("logits", f, ["N", 3])],
                [helper.make_node("Mul", ["image", "mask"], ["x"]), pool, to_2d], [flat])
    # Dynamic height and width: no fixed size to crop to.
    graph_model(os.path.join(OUT, "wrong_dynamic_hw.onnx"),
                [vi("x", f, ["N", 3, "H", "W"])], [vi("logits", f, ["N", 3])],
                [pool, to_2d], [flat])
    # Accepted, not wrong: the class count is symbolic in the file (K), 3 when run. The target
    # shape passes through Identity so that shape inference cannot read it off the initializer.
    graph_model(os.path.join(OUT, "dynamic_classes.onnx"),
                [vi("x", f, ["N", 3, 32, 32])], [vi("logits", f, ["N", "K"])],
                [pool, helper.make_node("Identity", ["flat"], ["flat_hidden"]),
                 helper.make_node("Reshape", ["p", "flat_hidden"], ["logits"])], [flat])
    # Four channels (RGBA or RGB-D): neither 1 nor 3.
    graph_model(os.path.join(OUT, "wrong_4_channels.onnx"),
                [vi("x", f, ["N", 4, 32, 32])], [vi("logits", f, ["N", 4])],
                [pool, to_2d], [flat])


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20261126)
    gen = torch.Generator().manual_seed(1)

    regnet = tiny_regnet()
    randomise_batchnorm(regnet, gen)
    meta = {
        "deitkd.preprocess": json.dumps(PREPROCESS),
        "deitkd.class_names": json.dumps(CLASS_NAMES),
    }
    export(regnet, (1, 3, 32, 32), os.path.join(OUT, "tiny_regnet.onnx"), metadata=meta)
    export(regnet, (4, 3, 32, 32), os.path.join(OUT, "tiny_regnet_fixed4.onnx"), dynamic=False,
           metadata=meta)
    write_reference(regnet, "tiny_regnet", (7, 3, 32, 32), seed=2)

    gray = TinyGray()
    randomise_batchnorm(gray, gen)
    export(gray, (1, 1, 28, 28), os.path.join(OUT, "tiny_gray.onnx"))
    write_reference(gray, "tiny_gray", (3, 1, 28, 28), seed=3)

    two = TwoHeads()
    export(two, (1, 3, 32, 32), os.path.join(OUT, "multi_output.onnx"),
           output_names=("cls_logits", "dist_logits"))

    wrong_models()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d files, %d bytes)" % (os.path.normpath(OUT), len(os.listdir(OUT)), total),
          file=sys.stderr)


if __name__ == "__main__":
    main()
