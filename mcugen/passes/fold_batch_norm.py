"""Fold each batch_norm into the convolution that feeds it (weights and bias rescaled).

y = (conv(x) - mean) / sqrt(var + eps) * scale + B is a convolution with every
output channel's weights multiplied by s = scale / sqrt(var + eps) and bias
(bias - mean) * s + B. Only legal when the batch_norm is the conv's only reader.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph, Node, Tensor

_FOLDS_INTO = ("conv2d", "depthwise_conv2d")


def fold_batch_norm(graph: Graph) -> Graph:
    problems = []
    for bn in [n for n in graph.nodes if n.op == "batch_norm"]:
        conv = graph.producer(bn.inputs[0])
        if conv is None or conv.op not in _FOLDS_INTO:
            what = "a graph input" if conv is None else f"'{conv.name}' ({conv.op})"
            problems.append(Problem(bn.name, bn.op, f"follows {what}; it can only be folded into a convolution"))
        elif len(graph.consumers(conv.outputs[0])) != 1 or conv.outputs[0] in graph.outputs:
            reason = f"the output of '{conv.name}' is also read elsewhere, so the conv cannot absorb it"
            problems.append(Problem(bn.name, bn.op, reason))
        else:
            graph = _fold(graph, conv, bn)
    if problems:
        raise UnsupportedModelError(problems, model=graph.meta.get("name", "model"))
    return graph.pruned()


def _fold(graph: Graph, conv: Node, bn: Node) -> Graph:
    x, weights_name, bias_name = conv.inputs
    scale, offset, mean, var = (graph.tensor(n).data.astype(np.float64) for n in bn.inputs[1:])
    s = scale / np.sqrt(var + bn.attrs.epsilon)
    weights = graph.tensor(weights_name).data.astype(np.float64)
    # conv2d weights are (C_out, KH, KW, C_in); depthwise (1, KH, KW, C_out).
    weights = weights * (s[:, None, None, None] if conv.op == "conv2d" else s)
    bias = (graph.tensor(bias_name).data - mean) * s + offset
    new_weights = _own_constant(graph, conv, weights_name, weights)
    new_bias = _own_constant(graph, conv, bias_name, bias)
    folded = dataclasses.replace(conv, inputs=(x, new_weights.name, new_bias.name), outputs=bn.outputs)
    nodes = tuple(folded if n is conv else n for n in graph.nodes if n is not bn)
    return graph.with_tensors([new_weights, new_bias]).replace(nodes=nodes)


def _own_constant(graph: Graph, node: Node, name: str, data: np.ndarray) -> Tensor:
    """The changed constant, renamed if another node still reads the original."""
    if any(n is not node for n in graph.consumers(name)):
        name = f"{name}/{node.name}"
    return Tensor(name, tuple(data.shape), "float32", data=data.astype(np.float32))
