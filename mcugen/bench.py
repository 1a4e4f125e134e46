"""Cost of a compiled model on a QEMU target: instructions per layer and bytes.

Instruction counts come from QEMU run with -icount (see mcugen.targets): they
are exact and deterministic, but they are instructions, not cycles — QEMU models
no pipeline, caches or wait states. Sizes come from arm-none-eabi-size on the
model's own object files, so the harness and C library are not counted.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .compiler import Compiled
from .kernels import kernel
from .output import write_atomically
from .report.cost import layer_kind
from .report.render import short_name
from .targets import Target
from .toolchain import SizeInfo, build_firmware, run_firmware, size


@dataclass(frozen=True)
class LayerBench:
    name: str
    op: str
    kind: str
    macs: int
    instructions: int

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0


@dataclass(frozen=True)
class ModelSize:
    """Bytes of the generated C alone. `code` is the text of <prefix>.c (kernels,
    schedule and layer parameters); `weights` the constants of <prefix>_weights.c."""

    code: int
    weights: int
    data: int
    bss: int

    @property
    def text(self) -> int:
        return self.code + self.weights


@dataclass(frozen=True)
class FunctionSize:
    """Text bytes of one function of the generated model, as linked (from the linker map)."""

    name: str
    bytes: int


@dataclass(frozen=True)
class Bench:
    target: str
    layers: tuple[LayerBench, ...]
    model: ModelSize
    firmware: SizeInfo  # the whole test firmware: harness, startup and newlib included
    arena_bytes: int
    functions: tuple[FunctionSize, ...]  # largest first

    @property
    def total_instructions(self) -> int:
        return sum(layer.instructions for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "total_instructions": self.total_instructions,
            "total_macs": self.total_macs,
            "layers": [asdict(layer) for layer in self.layers],
            "text_bytes": self.model.text,
            "code_bytes": self.model.code,
            "weights_bytes": self.model.weights,
            "data_bytes": self.model.data,
            "bss_bytes": self.model.bss,
            "arena_bytes": self.arena_bytes,
            "firmware": asdict(self.firmware),
            "functions": [asdict(f) for f in self.functions],
            "unit": "instructions under qemu -icount (not cycles)",
        }


def _model_size(work_dir: Path, prefix: str) -> ModelSize:
    code = size(work_dir / f"model_{prefix}.o")
    weights = size(work_dir / f"model_{prefix}_weights.o")
    return ModelSize(code=code.text, weights=weights.text + weights.data,
                     data=code.data + weights.data, bss=code.bss + weights.bss)


# An input section in the map: its name, then (on the same line or the next) address, size and object.
_SECTION = re.compile(r"^ \.text\.(\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$", re.MULTILINE)


def function_sizes(map_file: Path, obj: str) -> tuple[FunctionSize, ...]:
    """The kept .text sections of object `obj` (built with -ffunction-sections: one per function),
    largest first. Sections the linker discarded are listed before the memory map and skipped."""
    text = map_file.read_text()
    linked = text[text.find("Linker script and memory map"):]
    sizes = [FunctionSize(m[1].removesuffix(".constprop.0"), int(m[2], 16))
             for m in _SECTION.finditer(linked) if Path(m[3]).name == obj]
    return tuple(sorted(sizes, key=lambda f: (-f.bytes, f.name)))


def bench(compiled: Compiled, target: Target, x: np.ndarray, prefix: str = "mcugen") -> Bench:
    """Build `compiled` for `target` with per-layer marks and run it once on `x` (int8)."""
    if target.is_host:
        raise ValueError("bench counts instructions under QEMU; pick a Cortex-M target")
    graph = compiled.graph
    with tempfile.TemporaryDirectory(prefix="mcugen-bench-") as tmp:
        work = Path(tmp)
        write_atomically(work / "model", compiled.emit(prefix))
        exe = build_firmware(target, work / "model", prefix, x.reshape(1, -1), work / "build", profile=True)
        result = run_firmware(target, exe)
        model = _model_size(work / "build", prefix)
        firmware = size(exe)
        functions = function_sizes(exe.with_suffix(".map"), f"model_{prefix}.o")
    assert result.layer_instructions is not None  # a profiling build always marks layers
    counts = result.layer_instructions[0]
    layers = tuple(
        LayerBench(node.name, node.op, layer_kind(node), kernel(node.op).macs(node, graph), count)
        for node, count in zip(graph.nodes, counts)
    )
    return Bench(target.name, layers, model, firmware, compiled.plan.arena_size, functions)


def format_bench(result: Bench) -> str:
    lines = [f"{'#':>3} {'layer':<32} {'kind':<10} {'MACs':>11} {'instructions':>13} {'MAC/instr':>9}"]
    for i, layer in enumerate(result.layers):
        lines.append(f"{i:>3} {short_name(layer.name, 32):<32} {layer.kind:<10} {layer.macs:>11,} {layer.instructions:>13,} "
                     f"{layer.macs_per_instruction:>9.3f}")
    total, macs = result.total_instructions, result.total_macs
    lines.append(f"    {'total':<32} {'':<10} {macs:>11,} {total:>13,} {macs / total if total else 0:>9.3f}")
    m = result.model
    lines += [
        "",
        f"{result.target}: {total:,} instructions per inference "
        "(QEMU -icount instruction count, not cycles)",
        f"model code   {m.code:>9,} bytes  (kernels, schedule, layer parameters: text of the generated .c)",
        f"weights      {m.weights:>9,} bytes",
        f"arena        {result.arena_bytes:>9,} bytes  (static .bss; input and output are the caller's)",
        f"firmware     text {result.firmware.text:,}  data {result.firmware.data:,}  bss {result.firmware.bss:,} "
        "(whole test image: harness, startup, newlib)",
        "",
        "model code by function (text bytes, from the linker map):",
        *(f"  {f.bytes:>7,}  {f.name}" for f in result.functions),
    ]
    return "\n".join(lines)
