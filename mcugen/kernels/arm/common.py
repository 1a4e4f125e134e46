"""What the fast (Arm DSP / Helium) kernel variants share: their C source descriptor and
the compile-time facts about a weighted layer they rely on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...ir import Graph, Node
from ..common import io_qparams
from ..conv2d import lowered_params
from ..weights import OutputStage, constants
from .requant import FastStage, fast_channels, fast_stage


@dataclass(frozen=True)
class KernelSource:
    """One C function of a variant: rendered once per distinct `name` from `template` with
    `spec` (its compile-time constants). The schedule calls it as `name(in, out, consts...)`,
    or, when `params` names a struct type, as `name(&layer_params, in, out, consts...)`
    with the variant's `c_params` as that struct's int32_t fields (emit.py declares the
    type), so one function can serve layers that differ only in those run-time values."""

    name: str
    template: str
    spec: Any
    headers: tuple[str, ...]
    params: str | None = None


def spec_name(stem: str, values: tuple[object, ...]) -> str:
    """A C function name that differs whenever a compile-time constant differs."""
    return "_".join([stem, *(str(v).replace("-", "m") for v in values)])


def acc_bounds(node: Node, graph: Graph, axis: int) -> np.ndarray:
    """Per output channel, the largest |accumulator| any int8 input gives (bias included)."""
    weights, bias = constants(node, graph)
    zp_in = io_qparams(node, graph)[0].scalar_zero_point
    max_input = max(128 + zp_in, 127 - zp_in)
    w = np.moveaxis(weights.data.astype(np.int64), axis, 0).reshape(weights.shape[axis], -1)
    return np.abs(bias.data.astype(np.int64)) + max_input * np.abs(w).sum(axis=1)


def folded_bias(node: Node, graph: Graph, stage: OutputStage, axis: int) -> np.ndarray:
    """bias + input_offset * sum(weights) per output channel, wrapped to int32, so the inner
    loops multiply raw int8 inputs.

    Folding is exact for taps that read an input and for padding taps that read the input
    zero point (x + input_offset = 0 there): kernels that fold must pad with the zero point.
    Partial sums may leave int32 on the way; they wrap like the hardware and the final sum
    is the reference's, which lower_output_stage keeps within int32."""
    weights, bias = constants(node, graph)
    w = np.moveaxis(weights.data.astype(np.int64), axis, 0).reshape(weights.shape[axis], -1)
    folded = bias.data.astype(np.int64) + stage.input_offset * w.sum(axis=1)
    return ((folded + (1 << 31)) % (1 << 32)) - (1 << 31)


@dataclass(frozen=True, eq=False)
class ChannelSplit:
    """Output channels in the order a variant computes them: pairs of fast channels, then pairs
    of slow ones (the portable output stage). An odd group repeats its last channel, which
    then computes and stores the same byte twice."""

    fast: np.ndarray  # (pairs, 2) channel indices
    slow: np.ndarray  # (pairs, 2)
    stage: FastStage  # of fast.ravel()
    bias: np.ndarray  # folded, per channel


def _pairs(channels: np.ndarray) -> np.ndarray:
    if channels.size % 2:
        channels = np.append(channels, channels[-1])
    return channels.reshape(-1, 2)


def split_channels(node: Node, graph: Graph, stage: OutputStage, axis: int) -> ChannelSplit:
    bias = folded_bias(node, graph, stage, axis)
    ok = fast_channels(stage, acc_bounds(node, graph, axis))
    fast, slow = _pairs(np.flatnonzero(ok)), _pairs(np.flatnonzero(~ok))
    return ChannelSplit(fast, slow, fast_stage(stage, bias, fast.ravel()), bias)


def slow_table(split: ChannelSplit, stage: OutputStage) -> np.ndarray:
    """Per slow pair: c0, c1, then bias, q, shift of each (the portable output stage's words)."""
    rows = [np.stack([split.bias[c], stage.multiplier[c], stage.shift[c]], axis=1) for c in split.slow.T]
    return np.concatenate([split.slow, *rows], axis=1).astype(np.int32) if split.slow.size else np.zeros(0, np.int32)


def fast_table(split: ChannelSplit) -> np.ndarray:
    """Per fast pair: c0, c1, then the fast stage's row of each."""
    if not split.fast.size:
        return np.zeros(0, np.int32)
    rows = split.stage.table().reshape(len(split.fast), -1)
    return np.concatenate([split.fast, rows], axis=1).astype(np.int32)


def paired_constants(node: Node, graph: Graph, split: ChannelSplit,
                     pack: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Weights packed in channel-pair order (fast pairs first), then the fast and slow tables that exist."""
    weights, _ = constants(node, graph)
    w = np.asarray(weights.data, np.int8).reshape(weights.shape[0], -1)
    pairs = np.concatenate([split.fast, split.slow])
    stage = lowered_params(node).stage
    tables = [("fast", fast_table(split).ravel()), ("slow", slow_table(split, stage).ravel())]
    return [("weights", pack(w, pairs)), *((role, t) for role, t in tables if t.size)]
