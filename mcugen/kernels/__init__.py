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
- `macs(node, graph) -> int` and `scratch_bytes(node, graph) -> int`: the planner
  gives the scratch its own arena buffer, live for the node's step only; the C
  function gets its address as the last argument (when `SCRATCH`).
- `overlap_limits(node, graph) -> tuple[int | None, ...]` (optional; absent means
  never): per activation input, the overlap the C kernel makes safe (below).
- `c_params(node, graph) -> dict[str, int]`: the fields of the kernel's
  `mcugen_<op>_params` struct, in declaration order.
- `c_constants(node, graph) -> list[tuple[str, ndarray]]`: arrays passed after
  the activations, in argument order; the array dtype is the C element type.

C calling convention (portable kernels): `mcugen_<op>(&params, in0[, in1], out,
const0, const1, ...[, scratch])`.

Overlap contract. `overlap_limits` returning D for input i promises: when input i
is not read after this node, the output may start at address input_start + d for
ANY d <= D (negative d: the output starts below the input), and the C kernel still
computes exactly the reference result. The memory planner (mcugen/plan) only ever
overlaps a dying input with the node's output within such a declaration, and the
arena simulator (mcugen/plan/execute.py) executes the kernels' real read/write
order so a limit that is too large changes the outputs. The limit must follow from
the kernel's order, stated in its template comment and derived with `raster_limit`:

- the output is written in units (one output byte, i.e. a pixel's channel, for
  the portable conv2d and depthwise; one element for add; one output row for the
  depthwise row ring), in order, each unit filling the next `unit_bytes` of the
  output in ascending addresses;
- when unit k has been written, the only input bytes still to be read are those
  read by units k + lag, k + lag + 1, ... and all lie at or above the lowest byte
  any of them reads (`first_read`): lag 1 when a unit reads all its input before
  writing (out[oc] after its window's taps), lag 0 if part of unit k may be
  written before all its input is read, lag r if r - 1 further units are computed
  into a buffer before unit k is written (the depthwise row ring);
- then D = min over k of first_read(units >= k + lag) - (k + 1) * unit_bytes.

A kernel variant with a different order (tiles, two pixels at a time, im2col)
must declare its own limit from its own order, or none.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..ir import KERNEL_OPS, Graph, IRError, Node

if TYPE_CHECKING:
    from .conv2d import ConvGeometry


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
    """The module whose C implements `node`: its op's portable kernel, or the variant chosen for
    it. Its C contract (c_params, c_constants, scratch_bytes, overlap_limits, SCRATCH) is the
    one to use; the op's semantics (reference, macs, lower, ...) are `kernel(node.op)`'s,
    which every variant reproduces bit for bit."""
    if node.variant != "portable":
        from .arm import implementation

        return implementation(node)
    return kernel(node.op)


def activation_inputs(node: Node, graph: Graph) -> list[str]:
    """The node's non-constant inputs, in order."""
    return [name for name in node.inputs if not graph.tensor(name).is_const]


NO_READ = np.iinfo(np.int64).max  # first_read of a unit that reads no input (a window all in the padding)


def raster_limit(first_read: np.ndarray, unit_bytes: int, input_bytes: int, lag: int) -> int:
    """The largest safe d for units that read from `first_read[k]` upwards and write `unit_bytes` each.

    `lag` as in the module docstring. The result is capped at `input_bytes` (any
    d >= input_bytes is disjoint, hence safe anyway)."""
    first = np.asarray(first_read, np.int64)
    # later[k]: lowest byte read by units k + lag, k + lag + 1, ... (still to read when unit k is written)
    later = np.minimum.accumulate(first[::-1])[::-1]
    later = np.append(later[lag:], np.full(min(lag, len(first)), NO_READ))
    ends = (np.arange(len(first), dtype=np.int64) + 1) * unit_bytes
    constrained = later != NO_READ
    if not constrained.any():
        return input_bytes
    return int(min(input_bytes, (later[constrained] - ends[constrained]).min()))


def window_first_reads(g: "ConvGeometry") -> np.ndarray:
    """Per output pixel in raster order: the lowest input byte its window reads (NHWC, padding skipped)."""
    top = np.arange(g.out_h)[:, None] * g.stride_h - g.pad_top
    left = np.arange(g.out_w)[None, :] * g.stride_w - g.pad_left
    y0, x0 = np.maximum(top, 0), np.maximum(left, 0)
    inside = (y0 < np.minimum(top + g.kernel_h, g.in_h)) & (x0 < np.minimum(left + g.kernel_w, g.in_w))
    first = (y0 * g.in_w + x0) * g.in_c
    return np.where(inside, first, NO_READ).ravel()
