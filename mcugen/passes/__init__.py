"""The compiler's passes, in the order they run. Each takes a Graph and returns one."""
from __future__ import annotations

from typing import Callable

from ..ir import Graph, check_stage
from .absorb_pad import absorb_pad
from .fold_batch_norm import fold_batch_norm
from .fold_reshape import fold_reshape
from .fuse_activation import fuse_activation

Pass = Callable[[Graph], Graph]

# Float canonicalisation: frontend output -> kernel ops only.
CANONICALIZE: tuple[tuple[str, Pass], ...] = (
    ("fold_batch_norm", fold_batch_norm),
    ("fuse_activation", fuse_activation),
    ("absorb_pad", absorb_pad),
    ("fold_reshape", fold_reshape),
)


def canonicalize(graph: Graph) -> Graph:
    for _, run in CANONICALIZE:
        graph = run(graph)
    check_stage(graph, "float")
    return graph
