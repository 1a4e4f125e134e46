"""An independent count of parameters and MACs, straight from an ONNX file.

Reads only the initializers and onnx's own shape inference, never mcugen, so the
report's numbers can be checked against it. Conventions the report also follows:
MACs are conv and fully-connected multiply-accumulates (pool, add and softmax have
none); parameters are weights plus one bias per output channel where the layer has
a bias or a BatchNormalization that folds into one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


@dataclass(frozen=True)
class Count:
    params: int
    macs: int
    layers: int  # conv and fully-connected layers


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
    return shapes


def count(model: onnx.ModelProto) -> Count:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    shapes = _shapes(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def bias_follows(output: str) -> bool:
        users = consumers.get(output, [])
        return len(users) == 1 and (
            users[0].op_type == "BatchNormalization"
            or (users[0].op_type == "Add" and any(i in inits for i in users[0].input))
        )

    params = macs = layers = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            out = shapes[node.output[0]]
            has_bias = len(node.input) > 2 and node.input[2] != ""
            params += w.size + (w.shape[0] if has_bias or bias_follows(node.output[0]) else 0)
            # every output element takes (C_in / group) * KH * KW products
            macs += int(np.prod(out)) * int(np.prod(w.shape[1:]))
            layers += 1
        elif node.op_type in ("Gemm", "MatMul"):
            w = inits[node.input[1]]
            bias = inits[node.input[2]].size if len(node.input) > 2 else 0
            if not bias and bias_follows(node.output[0]):
                (add,) = consumers[node.output[0]]
                bias = next(inits[i].size for i in add.input if i in inits)
            params += w.size + bias
            macs += w.size
            layers += 1
    return Count(params, macs, layers)
