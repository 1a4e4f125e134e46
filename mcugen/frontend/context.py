"""The importer's state while it walks an ONNX graph: what the op functions build on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import Problem
from ..ir import Node, Tensor
from .layout import storage_shape


class Unsupported(Exception):
    """Raised by an op function: the node cannot be compiled, for the reason given."""


@dataclass(frozen=True)
class OnnxNode:
    name: str  # the ONNX name, or <op_type>_<index> when it has none
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    proto: onnx.NodeProto

    @staticmethod
    def of(proto: onnx.NodeProto, index: int) -> "OnnxNode":
        attrs = {}
        for attr in proto.attribute:
            value = helper.get_attribute_value(attr)
            attrs[attr.name] = value.decode() if isinstance(value, bytes) else value
        name = proto.name or f"{proto.op_type}_{index}"
        return OnnxNode(name, proto.op_type, tuple(proto.input), tuple(proto.output), attrs, proto)

    def input(self, index: int) -> str:
        """The name of input `index`, or "" when the optional input is absent."""
        return self.inputs[index] if index < len(self.inputs) else ""


@dataclass(frozen=True)
class Activation:
    """An ONNX activation: its ONNX-semantics shape and whether the IR stores it NHWC."""

    shape: tuple[int, ...]
    transposed: bool

    @property
    def rank(self) -> int:
        return len(self.shape)


class Importer:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.constants: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.activations: dict[str, Activation] = {}
        self.poisoned: set[str] = set()  # outputs of nodes that failed: downstream stays quiet
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.problems: list[Problem] = []
        self.graph_outputs = {v.name for v in model.graph.output}
        self.onnx_names = set(self.constants) | {n for p in model.graph.node for n in p.output}
        self.consumer_count: dict[str, int] = {}
        for proto in model.graph.node:
            for name in set(proto.input):
                self.consumer_count[name] = self.consumer_count.get(name, 0) + 1

    # Reading inputs -------------------------------------------------------

    def activation(self, name: str) -> Activation:
        if name in self.activations:
            return self.activations[name]
        if name in self.constants:
            raise Unsupported(f"input '{name}' is a constant where an activation is expected")
        raise Unsupported(f"input '{name}' is not produced by any node")

    def constant(self, name: str, role: str) -> np.ndarray:
        if name in self.constants:
            return self.constants[name]
        raise Unsupported(f"the {role} '{name}' must be a constant (initializer or foldable expression)")

    def optional_constant(self, name: str, role: str) -> np.ndarray | None:
        return self.constant(name, role) if name else None

    def has_single_use(self, name: str) -> bool:
        """Read by exactly one ONNX node and not a graph output: safe to fuse into its producer."""
        return self.consumer_count.get(name, 0) == 1 and name not in self.graph_outputs

    # Building the IR --------------------------------------------------------

    def add_activation(self, name: str, shape: tuple[int, ...], transposed: bool | None = None) -> None:
        """Register an ONNX activation; 4-D ones are NCHW, stored NHWC, unless told otherwise."""
        act = Activation(tuple(int(d) for d in shape), len(shape) == 4 if transposed is None else transposed)
        self.activations[name] = act
        self.tensors[name] = Tensor(name, storage_shape(act.shape, act.transposed), "float32")

    def add_constant(self, name: str, data: np.ndarray) -> str:
        """A constant of the IR under `name`, suffixed when taken: each IR node owns its constants."""
        unique, k = name, 1
        while unique in self.tensors or (unique != name and unique in self.onnx_names):
            unique, k = f"{name}_{k}", k + 1
        data = np.ascontiguousarray(data, np.float32)
        self.tensors[unique] = Tensor(unique, tuple(data.shape), "float32", data=data)
        return unique

    def emit(self, node: OnnxNode, op: str, inputs: list[str], output: str, shape: tuple[int, ...], attrs: Any) -> Node:
        """Append an IR node computing ONNX activation `output` of ONNX shape `shape`."""
        if not shape or shape[0] != 1:
            raise Unsupported(f"output shape {list(shape)} is not batch 1 (mcugen compiles batch-1 models)")
        self.add_activation(output, shape)
        ir_node = Node(node.name, op, tuple(inputs), (output,), attrs)
        self.nodes.append(ir_node)
        return ir_node

    def producer(self, name: str) -> Node | None:
        return next((n for n in reversed(self.nodes) if name in n.outputs), None)

    def replace_node(self, old: Node, new: Node) -> None:
        self.nodes[self.nodes.index(old)] = new
