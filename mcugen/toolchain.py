"""Build a generated model into the test harness (firmware/) and run it: on the
host with its cc, or bare-metal under QEMU with arm-none-eabi-gcc.

The harness prints the line protocol of firmware/README.md; `run_firmware`
parses it back into outputs and per-layer instruction counts.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .codegen.environment import render
from .errors import UserError
from .targets import FIRMWARE, ICOUNT_SHIFT, Target

INSTALL_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
HOST_INSTALL_HINT = "apt-get install gcc libc6-dev binutils"

_WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
# The harness's own C must also meet the project's strict bar; generated model code is held to _WARNINGS.
_STRICT = ("-Wpedantic", "-Wshadow", "-Wconversion")
_HOST_FLAGS = ("-O2",)
_SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all")
_ARM_FLAGS = ("-O2", "-ffunction-sections", "-fdata-sections")
_ARM_LINK = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")
# Semihosting console to stdout (its default is stderr, mixed with QEMU's own messages).
_QEMU_FLAGS = ("-nographic", "-monitor", "none", "-serial", "none", "-chardev", "stdio,id=semihost",
               "-semihosting-config", "enable=on,target=native,chardev=semihost",
               "-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=off")
_BUILD_TIMEOUT_S = 600.0
_PER_LINE = 24
_EM_ARM = 40  # ELF e_machine of 32-bit Arm


class ToolchainError(UserError):
    """A compiler, binutils or QEMU is missing; the message says how to install it."""


class BuildError(Exception):
    """Compiling or linking the firmware failed."""


class RunError(Exception):
    """The firmware timed out, exited non-zero, or printed something unexpected."""


@dataclass(frozen=True)
class SizeInfo:
    text: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        """Bytes a flash-based part stores: code, constants and .data's initial values."""
        return self.text + self.data

    @property
    def ram(self) -> int:
        """Static RAM (without stack)."""
        return self.data + self.bss


@dataclass
class HarnessResult:
    outputs: list[np.ndarray]
    layer_instructions: list[list[int]] | None
    exit_code: int
    stdout: str


def _tools(target: Target) -> tuple[str, ...]:
    if target.is_host:
        return ("cc", "size")
    return ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


def _require(target: Target, tools: Sequence[str]) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        hint = HOST_INSTALL_HINT if target.is_host else INSTALL_HINT
        raise ToolchainError(f"target '{target.name}' needs {', '.join(missing)} on PATH; install with: {hint}")


def check_tools(target: Target) -> None:
    """Raise ToolchainError naming the missing tools and the install command."""
    _require(target, _tools(target))
    if not target.is_host:
        libc = _run(["arm-none-eabi-gcc", *target.cflags, "-print-file-name=libc_nano.a"], 60.0).stdout.strip()
        if not Path(libc).is_absolute():
            raise ToolchainError(f"arm-none-eabi-gcc has no newlib for {target.name}; install with: {INSTALL_HINT}")


def _run(command: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        # No stdin: QEMU's stdio chardev would otherwise take over a terminal.
        return subprocess.run(list(command), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s)
    except FileNotFoundError:
        hint = INSTALL_HINT if command[0].startswith(("arm-none-eabi", "qemu")) else HOST_INSTALL_HINT
        raise ToolchainError(f"cannot run '{command[0]}': not found; install with: {hint}") from None
    except subprocess.TimeoutExpired as e:
        raise RunError(f"'{' '.join(command)}' timed out after {timeout_s:g} s\n{_tail(e.stdout)}") from None


def _tail(text: str | bytes | None, lines: int = 40) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


def _compile(command: list[str]) -> None:
    result = _run(command, _BUILD_TIMEOUT_S)
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(command)}\n{_tail(result.stderr)}")


def _input_rows(sample: np.ndarray) -> list[str]:
    values = [str(v) for v in sample.tolist()]
    return [", ".join(values[i : i + _PER_LINE]) for i in range(0, len(values), _PER_LINE)]


def _write_glue(work_dir: Path, prefix: str, inputs: np.ndarray) -> Path:
    """Render the harness glue header and the inputs array; returns the inputs .c."""
    num_inputs, input_size = inputs.shape
    context = dict(prefix=prefix, macro=prefix.upper(), num_inputs=num_inputs, input_size=input_size)
    (work_dir / "harness_glue.h").write_text(render("harness/harness_glue.h.j2", **context))
    source = work_dir / "harness_inputs.c"
    source.write_text(render("harness/harness_inputs.c.j2", inputs=[_input_rows(x) for x in inputs], **context))
    return source


def _check_inputs(inputs: np.ndarray) -> np.ndarray:
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim != 2 or inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise UserError(f"test inputs must be int8 of shape [N, INPUT_SIZE] with N >= 1, got {inputs.dtype} "
                        f"{list(inputs.shape)}")
    return inputs


def build_firmware(target: Target, model_dir: Path, prefix: str, inputs: np.ndarray, work_dir: Path,
                   profile: bool = False, sanitize: bool = False, extra_cflags: Sequence[str] = ()) -> Path:
    """Compile the model in `model_dir` with the harness and `inputs`; returns the executable (host) or ELF."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise UserError(f"prefix '{prefix}' is not a C identifier")
    if profile and target.is_host:
        raise UserError("profiling counts instructions under QEMU; the host target cannot profile")
    if sanitize and not target.is_host:
        raise UserError("sanitizers run on the host target only")
    inputs = _check_inputs(inputs)
    model_dir, work_dir = Path(model_dir), Path(work_dir)
    model_sources = [model_dir / f"{prefix}.c", model_dir / f"{prefix}_weights.c"]
    for path in (model_dir / f"{prefix}.h", *model_sources):
        if not path.is_file():
            raise UserError(f"{path} not found: is '{prefix}' the prefix the model was generated with?")
    check_tools(target)
    work_dir.mkdir(parents=True, exist_ok=True)
    inputs_source = _write_glue(work_dir, prefix, inputs)

    if target.is_host:
        compiler, flags = "cc", [*_HOST_FLAGS, *(_SANITIZE if sanitize else ())]
        harness = [FIRMWARE / "harness.c", FIRMWARE / "platform_host.c", inputs_source]
        exe, link = work_dir / "firmware", []
    else:
        assert target.linker_script is not None
        compiler, flags = "arm-none-eabi-gcc", [*target.cflags, *_ARM_FLAGS]
        harness = [FIRMWARE / "harness.c", FIRMWARE / "semihost.c", FIRMWARE / "startup.c", inputs_source]
        exe = work_dir / "firmware.elf"
        link = [*_ARM_LINK, f"-L{target.linker_script.parent}", f"-T{target.linker_script}",
                f"-Wl,-Map={exe.with_suffix('.map')}"]
    flags += ["-I", str(model_dir), "-I", str(work_dir), "-I", str(FIRMWARE), *extra_cflags]
    if profile:
        flags += ["-include", str(FIRMWARE / "profile.h")]

    commands, objects = [], []
    for source in [*model_sources, *harness]:
        strict = _STRICT if source in harness else ()
        # Distinct object names even for a model whose prefix is "harness" or "startup".
        obj = work_dir / f"{'harness' if strict else 'model'}_{source.stem}.o"
        commands.append([compiler, *_WARNINGS, *strict, *flags, "-c", str(source), "-o", str(obj)])
        objects.append(str(obj))
    # Weights and test inputs are large initialisers that each take seconds to parse: compile side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_compile, commands))
    _compile([compiler, *flags, *objects, *link, "-o", str(exe)])
    return exe


_OUT = re.compile(r"out (\d+) ([0-9a-f]*)")
_TICKS = re.compile(r"ticks (\d+)((?: \d+)*)")


def _parse(target: Target, stdout: str) -> tuple[list[np.ndarray], list[list[int]] | None]:
    lines = stdout.splitlines()
    begin = re.fullmatch(r"begin (\d+) (\d+) (\d+)", lines[0]) if lines else None
    if begin is None:
        raise RunError(f"harness output does not start with 'begin N OUTPUT_SIZE NUM_LAYERS':\n{_tail(stdout)}")
    num_inputs, output_size, num_layers = (int(g) for g in begin.groups())
    outputs: list[np.ndarray] = []
    ticks: list[list[int]] = []
    for line in lines[1:]:
        if (m := _OUT.fullmatch(line)) and int(m[1]) == len(outputs) and len(m[2]) == 2 * output_size:
            outputs.append(np.frombuffer(bytes.fromhex(m[2]), np.int8).copy())
        elif (m := _TICKS.fullmatch(line)) and int(m[1]) == len(ticks) and len(m[2].split()) == num_layers:
            ticks.append([int(t) for t in m[2].split()])
        elif line == f"done {num_inputs}" and len(outputs) == num_inputs and len(ticks) in (0, num_inputs):
            if not ticks:
                return outputs, None
            per_tick = target.instructions_per_tick
            return outputs, [[round(t * per_tick) for t in row] for row in ticks]
        else:
            raise RunError(f"unexpected harness line {line!r}:\n{_tail(stdout)}")
    raise RunError(f"harness output ended without 'done {num_inputs}':\n{_tail(stdout)}")


def run_firmware(target: Target, exe: Path, timeout_s: float = 120) -> HarnessResult:
    """Run a `build_firmware` result; raises RunError on timeout, non-zero exit or malformed output."""
    if target.is_host:
        command = [str(exe)]
    else:
        assert target.qemu_machine is not None
        _require(target, ("qemu-system-arm",))
        command = ["qemu-system-arm", "-machine", target.qemu_machine, *_QEMU_FLAGS, "-kernel", str(exe)]
    result = _run(command, timeout_s)
    if result.returncode != 0:
        raise RunError(f"{exe} on {target.name} exited with status {result.returncode}\n"
                       f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}")
    outputs, layers = _parse(target, result.stdout)
    return HarnessResult(outputs=outputs, layer_instructions=layers, exit_code=result.returncode,
                         stdout=result.stdout)


def _is_arm_elf(path: Path) -> bool:
    header = Path(path).read_bytes()[:20]
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return False
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big") == _EM_ARM


def size(elf: Path) -> SizeInfo:
    """Section sizes (Berkeley format): arm-none-eabi-size for an Arm ELF, the host's size otherwise."""
    arm = _is_arm_elf(elf)
    tool = "arm-none-eabi-size" if arm else "size"
    if shutil.which(tool) is None:
        raise ToolchainError(f"{tool} not found; install with: {INSTALL_HINT if arm else HOST_INSTALL_HINT}")
    result = _run([tool, "-B", str(elf)], 60.0)
    if result.returncode != 0:
        raise BuildError(f"{tool} {elf} failed: {result.stderr.strip()}")
    fields = result.stdout.splitlines()[1].split()
    return SizeInfo(text=int(fields[0]), data=int(fields[1]), bss=int(fields[2]))
