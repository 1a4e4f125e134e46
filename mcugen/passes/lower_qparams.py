"""Quantized graph -> lowered graph: each node gets its integer parameters."""
from __future__ import annotations

import dataclasses

from ..ir import Graph, check_stage
from ..kernels import kernel


def lower_qparams(graph: Graph) -> Graph:
    check_stage(graph, "quantized")
    nodes = tuple(dataclasses.replace(n, lowered=kernel(n.op).lower(n, graph)) for n in graph.nodes)
    graph = graph.replace(nodes=nodes, stage="lowered")
    check_stage(graph, "lowered")
    return graph
