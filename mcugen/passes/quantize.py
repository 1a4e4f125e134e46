"""Float graph + activation QParams -> quantized graph (int8 activations, int8/int32 constants)."""
from __future__ import annotations

import dataclasses

from ..ir import Graph, IRError, QParams, check_stage
from ..kernels import kernel


def quantize(graph: Graph, activation_qparams: dict[str, QParams]) -> Graph:
    """Give every activation its QParams, in execution order, so an op that imposes
    its output QParams (pools keep their input's, softmax is fixed) sees its inputs'."""
    check_stage(graph, "float")
    (input_name,) = graph.inputs
    graph = _set_qparams(graph, input_name, _lookup(activation_qparams, input_name))
    for node in graph.nodes:
        module = kernel(node.op)
        out = node.outputs[0]
        imposed = module.output_qparams(node, graph)
        graph = _set_qparams(graph, out, imposed if imposed is not None else _lookup(activation_qparams, out))
    for node in graph.nodes:
        graph = graph.with_tensors(kernel(node.op).quantize_constants(node, graph))
    graph = graph.replace(stage="quantized")
    check_stage(graph, "quantized")
    return graph


def _lookup(qparams: dict[str, QParams], name: str) -> QParams:
    if name not in qparams:
        raise IRError(f"no calibration statistics for activation '{name}'")
    return qparams[name]


def _set_qparams(graph: Graph, name: str, qparams: QParams) -> Graph:
    tensor = dataclasses.replace(graph.tensor(name), dtype="int8", qparams=qparams)
    return graph.with_tensors([tensor])
