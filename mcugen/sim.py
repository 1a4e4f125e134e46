"""The golden model: runs the IR through each kernel's NumPy reference.

A lowered graph runs `kernels/<op>.reference` (the integer semantics the C must
match bit for bit); a float graph runs `float_reference` (used for calibration
and to compare against onnxruntime).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .ir import Graph, IRError
from .kernels import kernel


def run(graph: Graph, x: np.ndarray, observe: Callable[[str, np.ndarray], None] | None = None) -> list[np.ndarray]:
    """Outputs for one sample `x` (batch axis included or not); `observe` sees every activation."""
    if graph.stage not in ("float", "lowered"):
        raise IRError(f"the simulator runs float or lowered graphs, not '{graph.stage}'")
    (input_name,) = graph.inputs
    shape = graph.tensor(input_name).shape
    values = {input_name: np.asarray(x).reshape(shape)}
    if observe:
        observe(input_name, values[input_name])
    for node in graph.nodes:
        module = kernel(node.op)
        args = [values[n] for n in node.inputs if not graph.tensor(n).is_const]
        fn = module.float_reference if graph.stage == "float" else module.reference
        out = fn(node, graph, args)
        expected = graph.tensor(node.outputs[0]).shape
        values[node.outputs[0]] = out.reshape(expected)
        if observe:
            observe(node.outputs[0], values[node.outputs[0]])
    return [values[name] for name in graph.outputs]


def run_batch(graph: Graph, xs: np.ndarray) -> list[np.ndarray]:
    """First output of the graph for each sample in `xs` (stacked)."""
    return np.stack([run(graph, x)[0] for x in xs])
