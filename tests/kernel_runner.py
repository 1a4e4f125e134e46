"""Run one kernel's portable C on many single-node cases with one compile.

Each case is a (node, graph, inputs) triple whose node is already lowered
(`single_node_case` builds one through the kernel's own quantize_constants and
lower, as the compiler's passes do). The C driver gets the same `c_params` /
`c_constants` codegen uses, so these tests check the kernel contract as well as
the arithmetic.
"""
from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import numpy as np

from c_harness import DEFAULT_CC, compile_and_run
from mcugen.codegen.environment import render
from mcugen.codegen.naming import c_type, kernel_function, params_type
from mcugen.ir import Graph, Node, Tensor
from mcugen.kernels import activation_inputs, kernel


@dataclass
class Case:
    node: Node
    graph: Graph
    inputs: list[np.ndarray]


def single_node_case(op: str, attrs: object, inputs: list[Tensor], out: Tensor, data: list[np.ndarray]) -> Case:
    """A one-node graph: `inputs` are activations (int8, with QParams) and constants in the
    node's input order, `out` has its QParams; constants are quantized, then the node lowered."""
    module = kernel(op)
    node = Node(f"{op}0", op, tuple(t.name for t in inputs), (out.name,), attrs)
    tensors = {t.name: t for t in [*inputs, out]}
    first = next(t.name for t in inputs if not t.is_const)
    graph = Graph((node,), tensors, (first,), (out.name,), stage="quantized")
    graph = graph.with_tensors(module.quantize_constants(node, graph))
    node = dataclasses.replace(node, lowered=module.lower(node, graph))
    return Case(node, graph.replace(nodes=(node,), stage="lowered"), data)


def _block(data: bytes) -> bytes:
    return struct.pack("<i", len(data)) + data


def run_c(op: str, cases: list[Case], cc: str = DEFAULT_CC) -> list[np.ndarray]:
    """Outputs of the C kernel (built with `cc`) for each case (int8, shaped like the node's output)."""
    module = kernel(op)
    first = cases[0]
    fields = list(module.c_params(first.node, first.graph))
    constants = module.c_constants(first.node, first.graph)
    num_inputs = len(activation_inputs(first.node, first.graph))
    has_scratch = module.SCRATCH
    source = render(
        "testing/kernel_main.c.j2",
        op=op,
        function=kernel_function(op),
        params_type=params_type(op),
        fields=fields,
        num_inputs=num_inputs,
        constant_types=[c_type(a.dtype) for _, a in constants],
        has_scratch=has_scratch,
    )
    stdin = [struct.pack("<i", len(cases))]
    shapes = []
    for case in cases:
        params = module.c_params(case.node, case.graph)
        assert list(params) == fields, "c_params must name the same fields for every node of an op"
        stdin.append(_block(np.array(list(params.values()), np.int32).tobytes()))
        for x in case.inputs:
            stdin.append(_block(np.ascontiguousarray(x, np.int8).tobytes()))
        for _, array in module.c_constants(case.node, case.graph):
            stdin.append(_block(np.ascontiguousarray(array).tobytes()))
        out = case.graph.tensor(case.node.outputs[0])
        shapes.append(out.shape)
        stdin.append(struct.pack("<ii", out.size, module.scratch_bytes(case.node, case.graph)))
    sanitizers = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all")
    raw = compile_and_run(source, stdin=b"".join(stdin), extra_flags=sanitizers, cc=cc)
    results, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        results.append(np.frombuffer(raw[offset : offset + size], np.int8).reshape(shape))
        offset += size
    assert offset == len(raw), "C driver wrote an unexpected number of bytes"
    return results
