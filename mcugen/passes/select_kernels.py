"""Choose each node's C implementation for the target recorded in graph.meta["target"].

Runs on the lowered graph, before memory planning: a variant may declare its own
scratch and overlap (mcugen/kernels/arm). `graph.meta["optimize"]` ("speed" or
"size") chooses between some variants (size: pointwise_dsp8's int8 weights) and is left
for code generation, which specialises more for speed."""
from __future__ import annotations

import dataclasses

from ..ir import Graph, check_stage
from ..kernels.arm import choose
from ..targets import get_target

OPTIMIZE = ("speed", "size")
DEFAULT_OPTIMIZE = "speed"


def select_kernels(graph: Graph) -> Graph:
    check_stage(graph, "lowered")
    target = get_target(graph.meta.get("target", "host"))
    nodes = tuple(dataclasses.replace(n, variant=choose(n, graph, target)) for n in graph.nodes)
    return graph.replace(nodes=nodes)
