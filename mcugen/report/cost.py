"""What a model costs: parameters, MACs and activation bytes per layer, what its
depthwise-separable pairs save over standard convolutions, and its flash and RAM.

Parameters and MACs come from the float canonical IR (batch norms folded, so every
conv has a bias); MACs are the kernels' own count (conv and fully-connected
multiply-accumulates; pool, add and softmax have none). Activation bytes are int8,
as the generated C stores them. Flash and the arena come from the compiled model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import CalibrationOptions, Compiled, compile_model
from ..errors import UserError
from ..ir import ConvAttrs, Graph, Node
from ..kernels import activation_inputs, kernel, kernel_of
from ..passes.select_kernels import DEFAULT_OPTIMIZE
from ..targets import Target

KINDS = ("standard", "depthwise", "pointwise", "FC", "pool", "add", "softmax")
_KIND_OF_OP = {"depthwise_conv2d": "depthwise", "fully_connected": "FC", "average_pool": "pool",
               "max_pool": "pool", "add": "add", "softmax": "softmax"}

# Text bytes of each kernel's C function, and of one call in the schedule, from
# arm-none-eabi-gcc 12.2 -O2 for cortex-m7 on the portable kernels (docs/report.md
# shows how to remeasure). Softmax includes its fixed-point exp. Code is 1-3% of a
# MobileNet's flash, so an estimate keeps the total within a few tenths of a percent.
KERNEL_CODE_BYTES = {"conv2d": 1064, "depthwise_conv2d": 684, "fully_connected": 180, "average_pool": 110,
                     "max_pool": 110, "add": 516, "softmax": 1392}
# A fast variant's functions (per distinct function: stride, stage kind...), text on M7 / M55 as
# `mcugen bench` lists them for the shared models (benchmarks/models.md), rounded up
VARIANT_CODE_BYTES = {"pointwise_dsp": 900, "pointwise_dsp8": 1000, "depthwise_dsp": 1400, "depthwise_tiny_dsp": 500,
                      "pointwise_ring_dsp": 900, "depthwise_fed_dsp": 1400, "pointwise_ring_mve": 1000, "depthwise_fed_mve": 1900,
                      "conv_dsp": 1200,
                      "add_dsp": 100, "pointwise_mve": 1000, "depthwise_mve": 1900, "conv_mve": 800}
CALL_CODE_BYTES = 41
PARAM_FIELD_BYTES = 4  # every field of every mcugen_<op>_params struct is an int32_t


@dataclass(frozen=True)
class LayerCost:
    index: int
    name: str
    op: str
    kind: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    weights: int
    biases: int
    macs: int
    input_bytes: int  # int8 bytes the layer reads
    output_bytes: int  # int8 bytes it writes

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def activation_bytes(self) -> int:
        """Bytes that must be live while the layer runs: its inputs and its output."""
        return self.input_bytes + self.output_bytes


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise M×N conv on C channels followed by a 1×1 conv to C' channels."""

    depthwise: int  # layer index
    pointwise: int
    kernel: tuple[int, int]  # M, N
    channels_in: int  # C
    channels_out: int  # C'
    out_hw: tuple[int, int]  # H', W' of the depthwise output
    separable_params: int  # weights of both layers
    separable_macs: int

    @property
    def standard_params(self) -> int:
        """M·N·C·C': the weights of one standard conv doing both steps."""
        m, n = self.kernel
        return m * n * self.channels_in * self.channels_out

    @property
    def standard_macs(self) -> int:
        """H'·W'·C'·M·N·C."""
        m, n = self.kernel
        return self.out_hw[0] * self.out_hw[1] * self.channels_out * m * n * self.channels_in

    @property
    def params_ratio(self) -> float:
        return self.separable_params / self.standard_params

    @property
    def macs_ratio(self) -> float:
        return self.separable_macs / self.standard_macs

    @property
    def formula(self) -> float:
        """1/C' + 1/(M·N): the reduction the MobileNet paper derives."""
        m, n = self.kernel
        return 1 / self.channels_out + 1 / (m * n)


@dataclass(frozen=True)
class FlashEstimate:
    """Bytes the generated model puts in flash (the user's firmware, startup and libc excluded)."""

    weights: int
    biases: int
    requant: int  # per-channel multipliers and shifts
    packed: int  # the fast variants' constants: weights, biases and output stage in their read order
    layer_params: int  # the const parameter struct of every layer
    code: int  # kernels used, plus one call per layer (estimate)

    @property
    def total(self) -> int:
        return self.weights + self.biases + self.requant + self.packed + self.layer_params + self.code


@dataclass(frozen=True)
class Budget:
    target: str
    part: str
    flash: int | None  # bytes; None: no limit
    ram: int | None


@dataclass(frozen=True)
class CostReport:
    model: str
    layers: tuple[LayerCost, ...]
    pairs: tuple[SeparablePair, ...]
    flash: FlashEstimate
    arena: int  # MCUGEN_ARENA_SIZE: the planned activation arena
    io_bytes: int  # the input and output buffers, which the caller owns
    budget: Budget | None

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def biases(self) -> int:
        return sum(layer.biases for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def ram(self) -> int:
        """Arena plus the input and output buffers; the stack is not counted."""
        return self.arena + self.io_bytes

    @property
    def fits_flash(self) -> bool | None:
        if self.budget is None or self.budget.flash is None:
            return None
        return self.flash.total <= self.budget.flash

    @property
    def fits_ram(self) -> bool | None:
        if self.budget is None or self.budget.ram is None:
            return None
        return self.ram <= self.budget.ram


def layer_kind(node: Node) -> str:
    if node.op == "conv2d":
        assert isinstance(node.attrs, ConvAttrs)
        return "pointwise" if node.attrs.window.kernel == (1, 1) else "standard"
    return _KIND_OF_OP[node.op]


def _weights_and_biases(node: Node, graph: Graph) -> tuple[int, int]:
    consts = [graph.tensor(name) for name in node.inputs if graph.tensor(name).is_const]
    # Kernels take weights first, then a 1-D bias.
    weights = consts[0].size if consts else 0
    return weights, sum(t.size for t in consts[1:])


def layer_costs(graph: Graph) -> list[LayerCost]:
    """One LayerCost per node of `graph` (any stage: only shapes and constants are read)."""
    costs = []
    for i, node in enumerate(graph.nodes):
        inputs = [graph.tensor(name) for name in activation_inputs(node, graph)]
        output = graph.tensor(node.outputs[0])
        weights, biases = _weights_and_biases(node, graph)
        costs.append(LayerCost(
            index=i, name=node.name, op=node.op, kind=layer_kind(node),
            input_shapes=tuple(t.shape for t in inputs), output_shape=output.shape,
            weights=weights, biases=biases, macs=int(kernel(node.op).macs(node, graph)),
            input_bytes=sum(t.size for t in inputs), output_bytes=output.size,
        ))
    return costs


def separable_pairs(graph: Graph, layers: list[LayerCost]) -> list[SeparablePair]:
    """Every depthwise conv whose only consumer is a pointwise conv."""
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    pairs = []
    for i, node in enumerate(graph.nodes):
        if node.op != "depthwise_conv2d":
            continue
        users = graph.consumers(node.outputs[0])
        if len(users) != 1 or layer_kind(users[0]) != "pointwise" or node.outputs[0] in graph.outputs:
            continue
        j = index[users[0].name]
        dw, pw = layers[i], layers[j]
        assert isinstance(node.attrs, ConvAttrs)
        _, out_h, out_w, _ = dw.output_shape
        pairs.append(SeparablePair(
            depthwise=i, pointwise=j, kernel=node.attrs.window.kernel,
            channels_in=dw.input_shapes[0][-1], channels_out=pw.output_shape[-1], out_hw=(out_h, out_w),
            separable_params=dw.weights + pw.weights, separable_macs=dw.macs + pw.macs,
        ))
    return pairs


def flash_estimate(lowered: Graph) -> FlashEstimate:
    """Constants exactly as the C emits them, plus an estimate of the code."""
    sizes = {"weights": 0, "bias": 0, "requant": 0, "packed": 0}
    fields = 0
    functions: dict[str, int] = {}
    optimize = lowered.meta.get("optimize", "speed")
    for node in lowered.nodes:
        module = kernel_of(node)
        for role, array in module.c_constants(node, lowered):
            kind = "packed" if node.variant != "portable" else role if role in ("weights", "bias") else "requant"
            sizes[kind] += int(np.asarray(array).nbytes)
        fields += len(module.c_params(node, lowered))
        if node.variant == "portable":
            functions[node.op] = KERNEL_CODE_BYTES[node.op]
        else:
            functions[module.c_kernel(node, lowered, optimize).name] = VARIANT_CODE_BYTES[node.variant]
    code = sum(functions.values()) + CALL_CODE_BYTES * len(lowered.nodes)
    return FlashEstimate(sizes["weights"], sizes["bias"], sizes["requant"], sizes["packed"], PARAM_FIELD_BYTES * fields,
                         code)


def cost_report(compiled: Compiled, target: Target | None = None) -> CostReport:
    graph = compiled.float_graph if compiled.float_graph is not None else compiled.graph
    layers = layer_costs(graph)
    lowered = compiled.graph
    io_bytes = sum(lowered.tensor(name).nbytes for name in (*lowered.inputs, *lowered.outputs))
    budget = None if target is None else Budget(target.name, target.part, target.flash_bytes, target.ram_bytes)
    return CostReport(
        model=compiled.name, layers=tuple(layers), pairs=tuple(separable_pairs(graph, layers)),
        flash=flash_estimate(lowered), arena=compiled.plan.arena_size, io_bytes=io_bytes, budget=budget,
    )


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}


def parse_bytes(text: str) -> int:
    """'320KiB', '1MiB', '1M', '65536' -> bytes. K/KB/KiB all mean 1024, as in MCU datasheets."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match[2].lower() not in _UNITS:
        raise UserError(f"'{text}' is not a size; write e.g. 320KiB, 1MiB or a number of bytes")
    value = float(match[1]) * _UNITS[match[2].lower()]
    if value <= 0 or value != int(value):
        raise UserError(f"'{text}' is not a positive whole number of bytes")
    return int(value)


def analyze(path: str | Path, calib: CalibrationOptions, target: Target | None = None,
            optimize: str = DEFAULT_OPTIMIZE) -> CostReport:
    """Compile the model at `path` (fallback ranges without calibration data) and cost it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    # Kernel variants differ per target (and --optimize: size keeps pointwise weights int8 on DSP
    # cores) in scratch, overlap and constants, so arena and flash are the target's own.
    return cost_report(compile_model(path, calib, target=target.name if target else "host", optimize=optimize),
                       target)
