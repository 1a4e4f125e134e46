"""Remove every reshape: aliases disappear, reorderings are folded into fully_connected weights.

A reshape whose gather is None leaves storage as it is, so its readers can read
its input directly. A reordering (an NCHW Flatten of an NHWC tensor) can only be
absorbed by fully_connected readers: reading x[gather] with weights W is reading
x with W's columns scattered to `gather`. Chains of reshapes are composed first.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph, Node, ReshapeAttrs, Tensor


def fold_reshape(graph: Graph) -> Graph:
    graph = _compose_chains(graph)
    problems, refused = [], set()
    while True:
        reshape = next((n for n in graph.nodes if n.op == "reshape" and n.outputs[0] not in refused), None)
        if reshape is None:
            break
        try:
            graph = _remove(graph, reshape)
        except _Refused as exc:
            problems.append(Problem(reshape.name, reshape.op, str(exc)))
            refused.add(reshape.outputs[0])
    if problems:
        raise UnsupportedModelError(problems, model=graph.meta.get("name", "model"))
    return graph.pruned()


class _Refused(Exception):
    pass


def _compose_chains(graph: Graph) -> Graph:
    """reshape(reshape(x)) -> one reshape of x; the first goes once nothing else reads it."""
    nodes: list[Node | None] = list(graph.nodes)
    for i, node in enumerate(nodes):
        if node is None or node.op != "reshape":
            continue
        j = next((k for k, n in enumerate(nodes) if n is not None and node.inputs[0] in n.outputs), None)
        first = nodes[j] if j is not None else None
        if first is None or first.op != "reshape":
            continue
        gather = _compose(first.attrs.gather, node.attrs.gather)
        nodes[i] = dataclasses.replace(node, inputs=first.inputs, attrs=ReshapeAttrs(gather))
        still_read = any(n is not None and first.outputs[0] in n.inputs for n in nodes)
        if not still_read and first.outputs[0] not in graph.outputs:
            nodes[j] = None
    return graph.replace(nodes=tuple(n for n in nodes if n is not None))


def _compose(first: tuple[int, ...] | None, second: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if first is None or second is None:
        return first if second is None else second
    composed = np.asarray(first)[np.asarray(second)]
    return None if np.array_equal(composed, np.arange(composed.size)) else tuple(int(i) for i in composed)


def _remove(graph: Graph, reshape: Node) -> Graph:
    (x,), (y,) = reshape.inputs, reshape.outputs
    readers = graph.consumers(y)
    if reshape.attrs.gather is None:
        return _alias(graph, reshape, readers)
    blockers = [r for r in readers if r.op != "fully_connected"]
    if blockers or y in graph.outputs:
        what = ", ".join(f"'{r.name}' ({r.op})" for r in blockers) or "the graph output"
        raise _Refused(f"reorders elements (a layout change) and is read by {what}; only fully_connected absorbs that")
    gather = np.asarray(reshape.attrs.gather)
    if gather.size != graph.tensor(x).size or not np.array_equal(np.sort(gather), np.arange(gather.size)):
        raise _Refused("the gather is not a permutation of its input")
    for fc in readers:
        graph = _permute_fc(graph, fc, x, gather)
    return graph.replace(nodes=tuple(n for n in graph.nodes if n is not reshape))


def _permute_fc(graph: Graph, fc: Node, x: str, gather: np.ndarray) -> Graph:
    """fc reads y = x[gather]: W @ y == W' @ x with W'[:, gather] = W."""
    weights = graph.tensor(fc.inputs[1])
    permuted = np.empty_like(weights.data)
    permuted[:, gather] = weights.data
    name = weights.name if len(graph.consumers(weights.name)) == 1 else f"{weights.name}/{fc.name}"
    new = dataclasses.replace(fc, inputs=(x, name) + fc.inputs[2:])
    tensor = dataclasses.replace(weights, name=name, data=permuted)  # keeps a pre-quantized model's QParams
    return graph.with_tensors([tensor]).replace(nodes=tuple(new if n is fc else n for n in graph.nodes))


def _alias(graph: Graph, reshape: Node, readers: list[Node]) -> Graph:
    (x,), (y,) = reshape.inputs, reshape.outputs
    x_tensor, y_tensor = graph.tensor(x), graph.tensor(y)
    sole_reader = len(graph.consumers(x)) == 1
    if x in graph.inputs and sole_reader and x_tensor.shape != y_tensor.shape:
        # The model reshapes its own input (e.g. [1,49,10] -> [1,49,10,1]): take the reshaped view as the input.
        graph = graph.with_tensors([dataclasses.replace(x_tensor, shape=y_tensor.shape)])
    elif x_tensor.shape != y_tensor.shape:
        for reader in readers:
            if not _shape_blind(reader, x_tensor, y_tensor):
                shapes = f"{list(y_tensor.shape)}, not {list(x_tensor.shape)}"
                raise _Refused(f"'{reader.name}' ({reader.op}) needs shape {shapes}")
    outputs = graph.outputs
    if y in outputs:
        if x in graph.inputs:
            raise _Refused("the graph output is a reshaped graph input: the model computes nothing")
        outputs = tuple(x if name == y else name for name in outputs)
    nodes = tuple(_repoint(n, y, x) if y in n.inputs else n for n in graph.nodes if n is not reshape)
    return graph.replace(nodes=nodes, outputs=outputs)


def _repoint(node: Node, old: str, new: str) -> Node:
    return dataclasses.replace(node, inputs=tuple(new if n == old else n for n in node.inputs))


def _shape_blind(reader: Node, x: Tensor, y: Tensor) -> bool:
    """Whether `reader` computes the same on x's shape as on y's (same storage)."""
    if reader.op == "fully_connected":
        return True  # reads its input flat
    return reader.op == "softmax" and x.shape[-1] == y.shape[-1]
