#!/usr/bin/env python3
"""The bundled RegNet teacher at another input size, for precompute --views-from at a fine-tuning
resolution (issue 19): testdata/teacher/regnety_fmnist.onnx takes N x 1 x 28 x 28; this writes
the same graph and weights with a fixed N x 1 x S x S input (deitkd's teacher wants H and W fixed)
and deitkd.preprocess's crop set to S.

The graph allows it only if nothing in it depends on the spatial size: the script checks that
every operator is one of Conv, Relu, Sigmoid, Mul, Add, GlobalAveragePool, Flatten and Gemm
(convolutions and element-wise ops take any H x W; the global average pool makes the head's
input N x C x 1 x 1 whatever they were; no Reshape, Resize, Slice or pooling with a fixed window
hard-codes a size) and that Flatten is applied to the global pool's output. ONNX's shape
inference then runs over the new input as a check; ONNX Runtime's run at S pixels is in
teacher/regnet_size_test.go (Python ONNX Runtime is not in Debian).

Run with Debian's python3-onnx:  /usr/bin/python3 scripts/regnet_input_size.py [S [OUT]]
(default 56 and regnety_fmnist_S_as_is.onnx in the current folder). The committed
testdata/teacher/regnety_fmnist_56.onnx is no longer this file as it is (about 48% top-1 at 56
pixels) but the same graph fine-tuned at 56 by teacher/export/finetune_regnet_size.py, which
reuses these checks; this script makes the as-is file its card compares against.
"""
import json
import os
import sys

import onnx
from onnx import shape_inference

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "testdata", "teacher", "regnety_fmnist.onnx")
SPATIAL_FREE = {"Conv", "Relu", "Sigmoid", "Mul", "Add", "GlobalAveragePool", "Flatten", "Gemm"}


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 56
    m = onnx.load(SRC)
    g = m.graph
    ops = {n.op_type for n in g.node}
    if not ops <= SPATIAL_FREE:
        sys.exit("operators %s may depend on the input size" % sorted(ops - SPATIAL_FREE))
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type == "Flatten" and producer[n.input[0]].op_type != "GlobalAveragePool":
            sys.exit("Flatten of %s, not of a global pool: the head would see the spatial size" % n.input[0])
    (inp,) = g.input
    dims = inp.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [1, 28, 28], dims
    dims[2].dim_value = size
    dims[3].dim_value = size
    del g.value_info[:]
    for p in m.metadata_props:
        if p.key == "deitkd.preprocess":
            pre = json.loads(p.value)
            pre["crop"] = size
            p.value = json.dumps(pre, separators=(",", ":"))
    onnx.checker.check_model(m)
    inferred = shape_inference.infer_shapes(m, strict_mode=True)
    out = inferred.graph.output[0].type.tensor_type.shape.dim
    print("output", [d.dim_param or d.dim_value for d in out])
    dst = sys.argv[2] if len(sys.argv) > 2 else "regnety_fmnist_%d_as_is.onnx" % size
    onnx.save(m, dst)
    print("wrote", os.path.normpath(dst), "input N x 1 x %d x %d, onnx %s" % (size, size, onnx.__version__))


if __name__ == "__main__":
    main()
