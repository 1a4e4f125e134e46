"""Absorb each explicit zero Pad into the window pads of the convolutions reading it.

A conv's implicit padding is zeros, so a zero constant Pad in front of it
(exporters emit one before TF-style 'SAME' stride-2 convolutions) adds to the
conv's own pads. Any other reader would see the padded pixels, so all readers
must be convolutions.
"""
from __future__ import annotations

import dataclasses

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph, Node, Window

_ABSORBS = ("conv2d", "depthwise_conv2d")


def absorb_pad(graph: Graph) -> Graph:
    problems = []
    for pad in [n for n in graph.nodes if n.op == "pad"]:
        readers = graph.consumers(pad.outputs[0])
        others = [r for r in readers if r.op not in _ABSORBS]
        if pad.attrs.value != 0.0:
            reason = f"pads with {pad.attrs.value}; only zero padding can be absorbed"
            problems.append(Problem(pad.name, pad.op, reason))
        elif others or not readers or pad.outputs[0] in graph.outputs:
            what = ", ".join(f"'{r.name}' ({r.op})" for r in others) or "the graph output"
            problems.append(Problem(pad.name, pad.op, f"is read by {what}; only convolutions can absorb a Pad"))
        else:
            graph = _absorb(graph, pad, readers)
    if problems:
        raise UnsupportedModelError(problems, model=graph.meta.get("name", "model"))
    return graph.pruned()


def _absorb(graph: Graph, pad: Node, readers: list[Node]) -> Graph:
    replaced = {}
    for conv in readers:
        window = conv.attrs.window
        pads = tuple(a + b for a, b in zip(window.pads, pad.attrs.pads))
        attrs = dataclasses.replace(conv.attrs, window=Window(window.kernel, window.stride, pads))
        inputs = tuple(pad.inputs[0] if name == pad.outputs[0] else name for name in conv.inputs)
        replaced[id(conv)] = dataclasses.replace(conv, attrs=attrs, inputs=inputs)
    nodes = tuple(replaced.get(id(n), n) for n in graph.nodes if n is not pad)
    return graph.replace(nodes=nodes)
