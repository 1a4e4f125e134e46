"""Per-op kernel contracts.

Each module `kernels/<op>.py` owns everything mcugen knows about one IR op, and
`templates/kernels/<op>.c.j2` is its C twin (same stem). A module provides:

- `OP`: the IR op name; `SCRATCH`: whether the C function takes a scratch pointer.
- `float_reference(node, graph, inputs) -> ndarray`: float semantics (calibration).
- `output_qparams(node, graph) -> QParams | None`: output quantization the op
  imposes (pools keep the input's, softmax is 1/256, -128); None: calibrate.
- `quantize_constants(node, graph) -> list[Tensor]`: weights/bias quantized
  once activations have QParams (empty for ops without constants).
- `lower(node, graph) -> params`: the integer parameters (frozen dataclass)
  derived from QParams with quant/arith.py; stored in `node.lowered`.
- `reference(node, graph, inputs) -> ndarray`: the golden int8 semantics.
- `macs(node, graph) -> int` and `scratch_bytes(node, graph) -> int`.
- `c_params(node, graph) -> dict[str, int]`: the fields of the kernel's
  `mcugen_<op>_params` struct, in declaration order.
- `c_constants(node, graph) -> list[tuple[str, ndarray]]`: arrays passed after
  the activations, in argument order; the array dtype is the C element type.

C calling convention (portable kernels): `mcugen_<op>(&params, in0[, in1], out,
const0, const1, ...[, scratch])`.
"""
from __future__ import annotations

from types import ModuleType

from ..ir import KERNEL_OPS, Graph, IRError, Node


def _load() -> dict[str, ModuleType]:
    from . import add, average_pool, conv2d, depthwise_conv2d, fully_connected, max_pool, softmax

    modules = (conv2d, depthwise_conv2d, fully_connected, average_pool, max_pool, add, softmax)
    return {m.OP: m for m in modules}


_REGISTRY: dict[str, ModuleType] | None = None


def kernel(op: str) -> ModuleType:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _load()
    if op not in _REGISTRY:
        raise IRError(f"no kernel for op '{op}' (kernels exist for {', '.join(KERNEL_OPS)})")
    return _REGISTRY[op]


def kernel_of(node: Node) -> ModuleType:
    return kernel(node.op)


def activation_inputs(node: Node, graph: Graph) -> list[str]:
    """The node's non-constant inputs, in order."""
    return [name for name in node.inputs if not graph.tensor(name).is_const]
