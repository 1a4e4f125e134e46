"""ONNX (float) -> IR at stage "float", layout ops included for the passes to remove.

The importer walks the nodes once, in order. Each node is constant-folded if it
can be, or else handed to its op function in ops.py. Every problem in the graph
is collected, so the user sees all of them in one UnsupportedModelError.
"""
from __future__ import annotations

import onnx
from onnx import helper

from typing import Callable, Mapping

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph
from .constant_folding import SHAPE_OF, fold
from .context import Importer, OnnxNode, Unsupported
from .load import graph_inputs, input_shape
from .ops import OPS

OpTable = Mapping[str, Callable[[Importer, OnnxNode], None]]

# A 4-D input read only by these is reordered by the model itself (tf2onnx NHWC inputs,
# KWS's Reshape): it is stored in its own order and the reordering becomes a gather.
_REORDERING = frozenset({"Transpose", "Reshape"})


def import_model(model: onnx.ModelProto, name: str = "model", ops: OpTable = OPS) -> Graph:
    """`ops` maps op types to their import functions (the pre-quantized frontend wraps some)."""
    ctx = Importer(model)
    layout = _add_inputs(ctx, model.graph)
    for index, proto in enumerate(model.graph.node):
        _import_node(ctx, OnnxNode.of(proto, index), ops)
    for value in model.graph.output:
        if value.name in ctx.constants:
            ctx.problems.append(Problem(value.name, "output", "the graph output is a constant"))
    if ctx.problems:
        raise UnsupportedModelError(ctx.problems, model=name)
    inputs = tuple(v.name for v in graph_inputs(model.graph))
    outputs = tuple(v.name for v in model.graph.output)
    meta = {
        "name": name,
        "input_layout": layout,
        "onnx_inputs": inputs,
        "onnx_outputs": outputs,
        "opset": ctx.opset,
    }
    return Graph(tuple(ctx.nodes), ctx.tensors, inputs, outputs, "float", meta).pruned()


def _add_inputs(ctx: Importer, graph: onnx.GraphProto) -> str:
    """Register the graph inputs; returns the layout of the first ('nchw' or 'nhwc')."""
    layouts = []
    for value in graph_inputs(graph):
        shape = input_shape(value)
        elem_type = value.type.tensor_type.elem_type
        if elem_type != onnx.TensorProto.FLOAT:
            dtype = helper.tensor_dtype_to_np_dtype(elem_type)
            reason = f"input type is {dtype}; the float frontend needs float32"
            ctx.problems.append(Problem(value.name, "input", reason))
        readers = {p.op_type for p in graph.node if value.name in p.input}
        transposed = len(shape) == 4 and not (readers and readers <= _REORDERING)
        ctx.add_activation(value.name, shape, transposed)
        layouts.append("nchw" if transposed else "nhwc")
    return layouts[0] if layouts else "nhwc"


def _import_node(ctx: Importer, node: OnnxNode, ops: OpTable) -> None:
    # Downstream of a failed node, only ops that could have handled an activation stay quiet.
    known = node.op_type in ops or node.op_type in SHAPE_OF
    if node.proto.domain not in ("", "ai.onnx"):
        _fail(ctx, node, f"operator domain '{node.proto.domain}' is not supported")
    elif any(name in ctx.poisoned for name in node.inputs):
        if known:
            ctx.poisoned.update(node.outputs)  # an upstream problem is already reported
        else:
            _fail(ctx, node, "unsupported operator")
    else:
        try:
            if fold(ctx, node):
                return
            if node.op_type not in ops:
                raise Unsupported("unsupported operator")
            ops[node.op_type](ctx, node)
        except Unsupported as exc:
            _fail(ctx, node, str(exc))


def _fail(ctx: Importer, node: OnnxNode, reason: str) -> None:
    ctx.problems.append(Problem(node.name, node.op_type, reason))
    ctx.poisoned.update(node.outputs)
