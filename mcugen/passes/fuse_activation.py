"""Merge each clamp (Relu, Clip) into the kernel op that produces its input.

The producer then writes the clamped values itself (its `activation`), which
is only legal when the clamp is the sole reader of the unclamped tensor.
"""
from __future__ import annotations

import dataclasses

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph, Node

# Kernel ops whose attrs carry a fused `activation`.
_FUSES_INTO = ("conv2d", "depthwise_conv2d", "fully_connected", "average_pool", "max_pool", "add")


def fuse_activation(graph: Graph) -> Graph:
    problems = []
    for clamp in [n for n in graph.nodes if n.op == "clamp"]:
        producer = graph.producer(clamp.inputs[0])
        if producer is None or producer.op not in _FUSES_INTO:
            what = "a graph input" if producer is None else f"'{producer.name}' ({producer.op})"
            problems.append(Problem(clamp.name, clamp.op, f"follows {what}, which cannot fuse an activation"))
        elif len(graph.consumers(producer.outputs[0])) != 1 or producer.outputs[0] in graph.outputs:
            reason = f"the unclamped output of '{producer.name}' is also read elsewhere"
            problems.append(Problem(clamp.name, clamp.op, reason))
        else:
            graph = _fuse(graph, producer, clamp)
    if problems:
        raise UnsupportedModelError(problems, model=graph.meta.get("name", "model"))
    return graph.pruned()


def _fuse(graph: Graph, producer: Node, clamp: Node) -> Graph:
    activation = producer.attrs.activation.then(clamp.attrs.activation)
    attrs = dataclasses.replace(producer.attrs, activation=activation)
    fused = dataclasses.replace(producer, attrs=attrs, outputs=clamp.outputs)
    return graph.replace(nodes=tuple(fused if n is producer else n for n in graph.nodes if n is not clamp))
