"""Generated C, built and run for a target, against the simulator: bit for bit."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import sim
from .compiler import Compiled
from .output import write_atomically
from .targets import Target
from .toolchain import build_firmware, run_firmware


@dataclass(frozen=True)
class Verification:
    target: str
    names: list[str]
    c_outputs: np.ndarray
    sim_outputs: np.ndarray
    layer_instructions: list[list[int]] | None

    @property
    def exact(self) -> np.ndarray:
        return np.array([np.array_equal(c, s) for c, s in zip(self.c_outputs, self.sim_outputs)])

    @property
    def mismatches(self) -> list[str]:
        return [n for n, ok in zip(self.names, self.exact) if not ok]

    @property
    def instructions(self) -> int | None:
        """Instructions of one inference (the first input), from the harness's per-layer marks."""
        if not self.layer_instructions:
            return None
        return int(sum(self.layer_instructions[0]))


def run_c(compiled: Compiled, target: Target, inputs: np.ndarray, prefix: str = "mcugen",
          profile: bool = False, work_dir: Path | None = None) -> tuple[np.ndarray, list[list[int]] | None]:
    """Build the generated C for `target`, run it on `inputs` (int8), return outputs and per-layer counts."""
    with tempfile.TemporaryDirectory(prefix="mcugen-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        model_dir = work / "model"
        write_atomically(model_dir, compiled.emit(prefix))
        exe = build_firmware(target, model_dir, prefix, inputs.reshape(len(inputs), -1), work / "build",
                             profile=profile, sanitize=target.name == "host")
        result = run_firmware(target, exe)
    shape = compiled.graph.tensor(compiled.graph.outputs[0]).shape
    outputs = np.stack([o.reshape(shape) for o in result.outputs])
    return outputs, result.layer_instructions


def verify(compiled: Compiled, target: Target, names: list[str], inputs: np.ndarray,
           prefix: str = "mcugen", profile: bool = False) -> Verification:
    c_outputs, layers = run_c(compiled, target, inputs, prefix, profile)
    sim_outputs = np.stack([sim.run(compiled.graph, x)[0] for x in inputs])
    return Verification(target.name, names, c_outputs, sim_outputs, layers)
