"""Shared ONNX export helpers for deitkd's teacher scripts (tooling, not run-time code).

export() writes a model with the layout deitkd's precompute expects (input `input`
NxCxHxW float32, output `logits` NxK, dynamic batch) and embeds the preprocessing
and class names in metadata_props under the keys `deitkd.preprocess` and
`deitkd.class_names`. check() runs onnx.checker and compares the file's outputs
with PyTorch's using a small numpy interpreter for the operators these
classifiers export to (this machine has no Python ONNX Runtime).
"""

import json

import numpy as np
import onnx
import torch
from onnx import numpy_helper

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export(model, dummy, path, preprocess, class_names, opset=OPSET):
    """Export model (in eval mode) to path and embed the deitkd metadata."""
    model.eval()
    # Not under torch.no_grad(): without autograd, nn.MultiheadAttention (torchvision's
    # ViT) takes a fused fast path that has no ONNX export.
    torch.onnx.export(
        model, dummy, path,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
        opset_version=opset, do_constant_folding=True,
    )
    m = onnx.load(path)
    meta = {
        "deitkd.preprocess": json.dumps(preprocess, separators=(",", ":")),
        "deitkd.class_names": json.dumps(list(class_names), separators=(",", ":")),
    }
    keep = [p for p in m.metadata_props if p.key not in meta]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, path)
    return path


def metadata(path):
    """The metadata_props of an ONNX file as a dict."""
    m = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def check(path, model, x):
    """onnx.checker, the I/O layout, then (max |onnx - torch|, max |torch|) over the batch x.

    Raises NotImplementedError when the graph uses an operator the numpy
    interpreter does not know (the checker and layout checks have passed by then).
    """
    onnx.checker.check_model(path)  # path form also handles files > 2 GB
    m = onnx.load(path)
    inp = [i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    if [i.name for i in inp] != [INPUT_NAME] or [o.name for o in m.graph.output] != [OUTPUT_NAME]:
        raise ValueError(f"{path}: inputs {[i.name for i in inp]} outputs "
                         f"{[o.name for o in m.graph.output]}, want [{INPUT_NAME}] [{OUTPUT_NAME}]")
    dim0 = inp[0].type.tensor_type.shape.dim[0]
    if not dim0.dim_param:
        raise ValueError(f"{path}: batch dimension is fixed ({dim0.dim_value}), want dynamic")
    model.eval()
    with torch.no_grad():
        want = model(x).numpy()
    got = run(m, x.numpy())
    if got.shape != want.shape:
        raise ValueError(f"{path}: output shape {got.shape}, torch gives {want.shape}")
    return float(np.abs(got - want).max()), float(np.abs(want).max())


# --- a minimal numpy ONNX interpreter (float32, the ops of conv classifiers) ---

def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    dh, dw = a.get("dilations", [1, 1])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    # columns: n, c, kh, kw, oh, ow
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                  j * dw:j * dw + sw * (ow - 1) + 1:sw]
    cols = cols.reshape(n, g, cg * kh * kw, oh * ow)
    wg = w.reshape(g, m // g, cg * kh * kw)
    out = np.einsum("gmk,ngkp->ngmp", wg, cols, optimize=True).reshape(n, m, oh, ow)
    if b is not None:
        out += b.reshape(1, m, 1, 1)
    return out.astype(np.float32)


def _gemm(a_, b_, c_, at):
    if at.get("transA", 0):
        a_ = a_.T
    if at.get("transB", 0):
        b_ = b_.T
    y = at.get("alpha", 1.0) * (a_ @ b_)
    if c_ is not None:
        y = y + at.get("beta", 1.0) * c_
    return y.astype(np.float32)


def run(model, x):
    """Evaluate an ONNX ModelProto on the numpy array x (the single graph input)."""
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in env]
    env[names[0]] = x.astype(np.float32)
    for node in model.graph.node:
        at = _attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            y = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, at)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-ins[0]))
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Mul":
            y = ins[0] * ins[1]
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "ReduceMean":
            y = ins[0].mean(axis=tuple(at["axes"]), keepdims=bool(at.get("keepdims", 1)))
        elif op == "Flatten":
            ax = at.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Gemm":
            y = _gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, at)
        elif op == "MatMul":
            y = ins[0] @ ins[1]
        elif op == "Constant":
            y = numpy_helper.to_array(at["value"])
        elif op == "Shape":
            y = np.array(ins[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(ins[0], ins[1], axis=at.get("axis", 0))
        elif op == "Unsqueeze":
            y = np.expand_dims(ins[0], tuple(int(a) for a in ins[1]))
        elif op == "Concat":
            y = np.concatenate(ins, axis=at["axis"])
        elif op == "Reshape":
            shp = [d if d != 0 else ins[0].shape[i] for i, d in enumerate(ins[1].tolist())]
            y = ins[0].reshape(shp)
        elif op == "Slice":
            y = _slice(ins)
        elif op == "MaxPool":
            y = _maxpool(ins[0], at)
        elif op == "Identity":
            y = ins[0]
        # The operators of a transformer (torchvision's ViT): layer norm, attention, GELU.
        elif op == "Sub":
            y = ins[0] - ins[1]
        elif op == "Div":
            y = ins[0] / ins[1]
        elif op == "Pow":
            y = np.power(ins[0], ins[1])
        elif op == "Sqrt":
            y = np.sqrt(ins[0])
        elif op == "Erf":
            y = _erf(ins[0])
        elif op == "Softmax":
            e = np.exp(ins[0] - ins[0].max(axis=at.get("axis", -1), keepdims=True))
            y = e / e.sum(axis=at.get("axis", -1), keepdims=True)
        elif op == "Transpose":
            y = np.transpose(ins[0], at.get("perm"))
        elif op == "Cast":
            y = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[at["to"]])
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
            y = np.full(tuple(int(d) for d in ins[0]), v.reshape(-1)[0], dtype=v.dtype)
        elif op == "Equal":
            y = ins[0] == ins[1]
        elif op == "Where":
            y = np.where(ins[0], ins[1], ins[2])
        elif op == "Expand":
            y = ins[0] * np.ones(tuple(int(d) for d in ins[1]), dtype=ins[0].dtype)
        else:
            raise NotImplementedError(f"numpy check: ONNX op {op} not handled")
        env[node.output[0]] = np.asarray(y).astype(ins[0].dtype if op != "Shape" else np.int64) \
            if op not in ("Shape", "Gather", "Concat", "Unsqueeze", "Constant", "Cast", "ConstantOfShape",
                          "Equal", "Where", "Expand") else np.asarray(y)
    return env[model.graph.output[0].name]


def _erf(x):
    """erf elementwise (float64 inside): scipy's when installed, else the math module's."""
    try:
        from scipy.special import erf
        return erf(x.astype(np.float64)).astype(x.dtype)
    except ImportError:
        import math
        return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def _slice(ins):
    x, starts, ends = ins[0], ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), np.int64)
    idx = [slice(None)] * x.ndim
    for s0, e0, ax, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        dim = x.shape[ax]
        # ONNX clamps out-of-range ends (e.g. INT64_MIN for a reversed slice to the start).
        if st < 0:
            s0 = min(s0 + dim if s0 < 0 else s0, dim - 1)
            e0 = e0 + dim if e0 < 0 else e0
            idx[ax] = slice(s0, None if e0 < 0 else e0, st)
        else:
            idx[ax] = slice(max(0, s0 + dim if s0 < 0 else s0), min(dim, e0 + dim if e0 < 0 else e0), st)
    return x[tuple(idx)]


def _maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    out = np.full(x.shape[:2] + (oh, ow), -np.inf, dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw])
    return out
