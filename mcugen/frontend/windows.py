"""ONNX conv/pool window attributes (kernel_shape, strides, pads, auto_pad, ...) -> ir.Window."""
from __future__ import annotations

import math
from typing import Sequence

from ..ir import Window
from .context import OnnxNode, Unsupported

Pair = tuple[int, int]


def spatial_window(node: OnnxNode, in_hw: Pair, kernel: Pair) -> Window:
    declared = node.attrs.get("kernel_shape")
    if declared is not None and tuple(declared) != kernel:
        raise Unsupported(f"kernel_shape {list(declared)} does not match the weights' {list(kernel)}")
    dilations = node.attrs.get("dilations", [1, 1])
    if any(d != 1 for d in dilations):
        raise Unsupported(f"dilations {list(dilations)} (only 1 is supported)")
    if min(kernel) < 1:
        raise Unsupported(f"kernel_shape {list(kernel)} must be positive")
    strides = _pair(node.attrs.get("strides", [1, 1]), "strides")
    if min(strides) < 1:
        raise Unsupported(f"strides {list(strides)} must be positive")
    window = Window(kernel, strides, _pads(node, in_hw, kernel, strides))
    if min(window.output_hw(*in_hw)) < 1:
        raise Unsupported(f"the {list(kernel)} window does not fit the {list(in_hw)} input")
    return window


def pool_window(node: OnnxNode, in_hw: Pair) -> Window:
    window = spatial_window(node, in_hw, _pair(node.attrs.get("kernel_shape", []), "kernel_shape"))
    if node.attrs.get("ceil_mode", 0) and _ceil_output_hw(window, in_hw) != window.output_hw(*in_hw):
        raise Unsupported("ceil_mode=1 changes the output size here (TFLite rounds down)")
    return window


def _pair(values: Sequence[int], what: str) -> Pair:
    if len(values) != 2:
        raise Unsupported(f"{what} {list(values)}: only 2-D windows are supported")
    return int(values[0]), int(values[1])


def _pads(node: OnnxNode, in_hw: Pair, kernel: Pair, strides: Pair) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) pads."""
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s in zip(in_hw, kernel, strides):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            # SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            begins.append(begin)
            ends.append(total - begin)
        return (begins[0], begins[1], ends[0], ends[1])
    if auto_pad != "NOTSET":
        raise Unsupported(f"auto_pad '{auto_pad}' is not an ONNX value")
    pads = [int(p) for p in node.attrs.get("pads", (0, 0, 0, 0))]
    if len(pads) != 4 or min(pads) < 0:
        raise Unsupported(f"pads {pads} (need 4 non-negative values)")
    top, left, bottom, right = pads  # ONNX [h_begin, w_begin, h_end, w_end]
    return (top, left, bottom, right)


def _ceil_output_hw(window: Window, in_hw: Pair) -> Pair:
    sizes = []
    for size, k, s, begin, end in zip(in_hw, window.kernel, window.stride, window.pads[:2], window.pads[2:]):
        out = math.ceil((size + begin + end - k) / s) + 1
        if (out - 1) * s >= size + begin:  # ONNX drops a last window starting in the end padding
            out -= 1
        sizes.append(out)
    return sizes[0], sizes[1]
