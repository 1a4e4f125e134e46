"""The intermediate representation: the only thing passes share.

A `Graph` is immutable; every pass returns a new one (`dataclasses.replace`).
Activations are stored NHWC (4-D) or NC (2-D), batch 1. Constants live in the
tensor table with their data. The graph moves through three stages, and
`check_stage` verifies the invariants of each at every stage boundary:

- "float":     kernel ops only, float32 activations, float constants.
- "quantized": int8 activations with per-tensor QParams, int8 per-channel weights,
               int32 biases.
- "lowered":   every kernel node carries its integer parameters (`node.lowered`),
               derived from QParams by quant/arith.py; nothing float is left for C.

Frontends may emit the "layout" ops (reshape, pad, batch_norm, clamp; see LAYOUT_OPS)
that canonicalising passes remove before the graph reaches the "float" stage.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np

DType = Literal["float32", "int8", "uint8", "int32"]
Stage = Literal["float", "quantized", "lowered"]

KERNEL_OPS = (
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "average_pool",
    "max_pool",
    "add",
    "softmax",
)
# Ops a frontend may emit; canonicalising passes remove all of them.
LAYOUT_OPS = ("reshape", "pad", "batch_norm", "clamp")


class IRError(ValueError):
    """An invariant of the IR does not hold: always a compiler bug or bad input."""


@dataclass(frozen=True, eq=False)
class QParams:
    """Affine quantization real = scale * (q - zero_point).

    Per-tensor when `axis` is None (scale and zero_point have one element),
    per-channel along `axis` otherwise.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QParams":
        return QParams(np.array([scale], np.float64), np.array([zero_point], np.int64))

    @property
    def scalar_scale(self) -> float:
        if self.scale.size != 1:
            raise IRError("per-channel QParams used where a per-tensor scale is required")
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        if self.zero_point.size != 1:
            raise IRError("per-channel QParams used where a per-tensor zero point is required")
        return int(self.zero_point[0])


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    data: np.ndarray | None = None
    qparams: QParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Activation:
    """A fused clamp in the real (float) domain; infinite bounds mean none."""

    lo: float = float("-inf")
    hi: float = float("inf")

    def then(self, other: "Activation") -> "Activation":
        return Activation(max(self.lo, other.lo), min(self.hi, other.hi))


@dataclass(frozen=True)
class Window:
    """Spatial window of a conv or pool: kernel, stride and explicit pads."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right

    def output_hw(self, in_h: int, in_w: int) -> tuple[int, int]:
        top, left, bottom, right = self.pads
        out_h = (in_h + top + bottom - self.kernel[0]) // self.stride[0] + 1
        out_w = (in_w + left + right - self.kernel[1]) // self.stride[1] + 1
        return out_h, out_w


@dataclass(frozen=True)
class ConvAttrs:
    """conv2d: weights (C_out, KH, KW, C_in); depthwise_conv2d: (1, KH, KW, C_out)."""

    window: Window
    activation: Activation = Activation()
    depth_multiplier: int = 1


@dataclass(frozen=True)
class PoolAttrs:
    window: Window
    activation: Activation = Activation()


@dataclass(frozen=True)
class ActivationAttrs:
    """fully_connected (weights (C_out, C_in)) and add."""

    activation: Activation = Activation()


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass(frozen=True)
class ReshapeAttrs:
    """Output element i takes input storage element `gather[i]` (None: same order)."""

    gather: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[int, int, int, int]  # top, left, bottom, right (spatial, NHWC)
    value: float = 0.0


@dataclass(frozen=True)
class BatchNormAttrs:
    epsilon: float = 1e-5


@dataclass(frozen=True)
class ClampAttrs:
    activation: Activation


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Any
    lowered: Any = None  # per-op integer parameters, set by passes.lower_qparams
    # which C implementation of the op runs (passes.select_kernels); every variant computes the same int8 result
    variant: str = "portable"


@dataclass(frozen=True, eq=False)
class Graph:
    """Nodes in execution order; `tensors` holds activations and constants."""

    nodes: tuple[Node, ...]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    stage: Stage = "float"
    meta: dict[str, Any] = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise IRError(f"unknown tensor '{name}'") from None

    def producer(self, name: str) -> Node | None:
        return next((n for n in self.nodes if name in n.outputs), None)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def replace(self, **changes: Any) -> "Graph":
        return dataclasses.replace(self, **changes)

    def with_tensors(self, updates: Iterable[Tensor]) -> "Graph":
        tensors = dict(self.tensors)
        tensors.update({t.name: t for t in updates})
        return self.replace(tensors=tensors)

    def pruned(self) -> "Graph":
        """Drop tensors no node or graph boundary refers to any more."""
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        return self.replace(tensors={k: v for k, v in self.tensors.items() if k in used})

    def activations(self) -> list[Tensor]:
        return [t for t in self.tensors.values() if not t.is_const]


def check_stage(graph: Graph, stage: Stage) -> None:
    """Raise IRError unless `graph` satisfies every invariant of `stage`."""
    if graph.stage != stage:
        raise IRError(f"graph is at stage '{graph.stage}', expected '{stage}'")
    _check_structure(graph)
    for node in graph.nodes:
        if node.op not in KERNEL_OPS:
            raise IRError(f"node '{node.name}': op '{node.op}' left after canonicalisation")
        if stage == "lowered" and node.lowered is None:
            raise IRError(f"node '{node.name}' ({node.op}) has no integer parameters")
    act_dtype = "float32" if stage == "float" else "int8"
    for t in graph.activations():
        if t.dtype != act_dtype:
            raise IRError(f"activation '{t.name}' is {t.dtype}, expected {act_dtype}")
        if stage != "float" and (t.qparams is None or t.qparams.scale.size != 1):
            raise IRError(f"activation '{t.name}' needs per-tensor QParams")
        if len(t.shape) not in (2, 4) or t.shape[0] != 1:
            raise IRError(f"activation '{t.name}' has shape {t.shape}; expected batch-1 NHWC or NC")


def _check_structure(graph: Graph) -> None:
    defined = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for name in graph.inputs:
        graph.tensor(name)
    for node in graph.nodes:
        for name in node.inputs:
            if name not in defined:
                raise IRError(f"node '{node.name}' ({node.op}) reads '{name}' before it is produced")
        for name in node.outputs:
            graph.tensor(name)
            if name in defined:
                raise IRError(f"tensor '{name}' is produced twice (node '{node.name}')")
            defined.add(name)
    for name in graph.outputs:
        if name not in defined:
            raise IRError(f"graph output '{name}' is never produced")
