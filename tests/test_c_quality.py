"""The generated C of every shared model (and two small generated ones): no warning under
the project's strictest flags on gcc, clang and arm-none-eabi-gcc; clean under ASan and
UBSan with guard bytes around the arena intact and outputs equal to the simulator; no
cppcheck finding. A deliberately broken model shows the guard check can fail."""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest

from c_harness import CFLAGS
from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model, quantized_inputs
from mcugen.errors import UnsupportedModelError
from mcugen.inputs import Preprocess, load_samples
from mcugen.targets import get_target
from mcugen.toolchain import RunError, build_firmware, run_firmware
from onnx_builders import tiny_mobilenet
from shared_data import SHARED

STRICT = tuple(f for f in CFLAGS if not f.startswith("-O")) + ("-O2",)
GUARD = ("-DMCUGEN_ARENA_GUARD=64",)
SAMPLES = 4  # calibration and sanitizer inputs per shared model: enough to reach every kernel path
# Kernel code does not depend on the model, only constants do: the slower second
# target of each check runs on a few models.
FEW = ("tiny_v1", "tiny_v2", "vww_float")
# --optimize size has kernels of its own (int8-weight pointwise, with and without a weight zero point)
SIZE = ("tiny_v1", "coral")


@dataclass(frozen=True)
class Case:
    model: str  # file under ../shared/models, or "tiny_v1"/"tiny_v2"
    samples: str | None  # file under ../shared/inputs
    keys: str | None = None
    preprocess: Preprocess = Preprocess()


CASES = {
    "vww_float": Case("vww_96_float.onnx", "photos_rgb_uint8_96.npz", preprocess=Preprocess(1 / 255)),
    "vww_int8": Case("vww_96_int8.onnx", "photos_rgb_uint8_96.npz", preprocess=Preprocess(1 / 255)),
    "kws_float": Case("kws_ds_cnn_float.onnx", "kws_wav_features.npz", "*_float"),
    "kws_int8": Case("kws_ds_cnn_int8.onnx", "kws_wav_features.npz", "*_int8"),
    "v2_nchw": Case("mobilenet_v2_0.5_128_person_float_nchw.onnx", "photos_rgb_uint8_128.npz",
                    preprocess=Preprocess(1 / 127.5, -1.0, "nhwc")),
    "coral": Case("coral_mobilenet_v1_0.5_160_quant.onnx", "photos_rgb_uint8_160.npz"),
    "tiny_v1": Case("tiny_v1", None),
    "tiny_v2": Case("tiny_v2", None),
}


def _model_path(case: Case, tmp: Path) -> Path:
    if case.model.startswith("tiny_v"):
        path = tmp / f"{case.model}.onnx"
        onnx.save(tiny_mobilenet(int(case.model[-1]), size=16, width=8), path)
        return path
    path = SHARED / "models" / case.model
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data set sits beside the repo as ../shared)")
    return path


def _samples_file(name: str, tmp: Path) -> str | None:
    """The first SAMPLES samples of the case's inputs, in an .npz of their own."""
    case = CASES[name]
    if case.samples is None:
        return None
    path = tmp / f"{name}_samples.npz"
    if not path.exists():
        samples = load_samples(SHARED / "inputs" / case.samples, case.keys)[:SAMPLES]
        np.savez(path, **{s.name: s.data for s in samples})
    return str(path)


@lru_cache(maxsize=None)
def _compiled(name: str, target: str, tmp: Path, optimize: str = "speed") -> Compiled:
    case = CASES[name]
    path = _model_path(case, tmp)
    calibration = CalibrationOptions(_samples_file(name, tmp), None, "minmax", case.preprocess)
    try:
        return compile_model(path, calibration, target=target, optimize=optimize)
    except UnsupportedModelError as exc:  # pre-quantized QDQ models, until that frontend lands
        pytest.skip(f"{name} does not compile yet: {str(exc).splitlines()[1].strip()}")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("c_quality")


def _emit(name: str, target: str, tmp: Path, io_in_arena: bool = False, optimize: str = "speed") -> Path:
    compiled = _compiled(name, target, tmp, optimize)
    if io_in_arena:
        compiled = compiled.replan(io_in_arena=True)
    out = tmp / f"{name}_{target}_{'io' if io_in_arena else 'ext'}_{optimize}"
    if not out.exists():
        out.mkdir()
        for file, text in compiled.emit().items():
            (out / file).write_text(text)
    return out


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _compile_all(commands: list[list[str]], cwd: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _run(c, cwd), commands))
    for command, result in zip(commands, results):
        assert result.returncode == 0 and not result.stderr, f"{' '.join(command)}:\n{result.stderr}"


# Warnings -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_host_c_has_no_warnings(name: str, cc: str, tmp: Path) -> None:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    out = _emit(name, "host", tmp)
    # The weights file is data only: its warnings are the front end's, so it is only parsed.
    commands = [[cc, *STRICT, *guard, "-I.", "-c", "mcugen.c", "-o", f"{cc}{len(guard)}.o"] for guard in ((), GUARD)]
    commands.append([cc, *STRICT, "-I.", "-fsyntax-only", "mcugen_weights.c"])
    _compile_all(commands, out)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("name, target, optimize", [(n, "cortex-m4", "speed") for n in CASES]
                         + [(n, "cortex-m55", "speed") for n in FEW] + [(n, "cortex-m4", "size") for n in SIZE])
def test_arm_c_has_no_warnings(name: str, target: str, optimize: str, tmp: Path) -> None:
    out = _emit(name, target, tmp, optimize=optimize)
    flags = [*get_target(target).cflags, *STRICT, "-I."]
    _compile_all([["arm-none-eabi-gcc", *flags, "-c", "mcugen.c", "-o", "model.o"]], out)


# cppcheck -------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("cppcheck") is None, reason="needs cppcheck (apt-get install cppcheck)")
@pytest.mark.parametrize("name, target, optimize", [(n, "host", "speed") for n in CASES]
                         + [(n, "cortex-m4", "speed") for n in FEW] + [(n, "cortex-m4", "size") for n in SIZE])
def test_cppcheck_finds_nothing(name: str, target: str, optimize: str, tmp: Path) -> None:
    out = _emit(name, target, tmp, optimize=optimize)
    # Every #ifdef configuration is checked, the arena guard included. The weights file is
    # data only, so the model's code is what cppcheck reads.
    result = _run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability", "--inline-suppr",
                   "--error-exitcode=1", "--quiet", "-I.", "mcugen.c"], out)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# Sanitizers and guard bytes --------------------------------------------------------


def _samples(name: str, compiled: Compiled, tmp: Path) -> np.ndarray:
    """int8 inputs as the harness takes them: [N, INPUT_SIZE]."""
    path = _samples_file(name, tmp)
    if path is None:
        size = compiled.graph.tensor(compiled.graph.inputs[0]).size
        return np.random.default_rng(0).integers(-128, 128, (SAMPLES, size), dtype=np.int8)
    _, xs = quantized_inputs(compiled, path)
    return xs.reshape(len(xs), -1)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler")
@pytest.mark.parametrize("name, io_in_arena", [(n, False) for n in CASES] + [(n, True) for n in FEW])
def test_asan_ubsan_clean_and_arena_guard_intact(name: str, io_in_arena: bool, tmp: Path) -> None:
    compiled = _compiled(name, "host", tmp)
    if io_in_arena:
        compiled = compiled.replan(io_in_arena=True)
    out = _emit(name, "host", tmp, io_in_arena)
    xs = _samples(name, compiled, tmp)
    exe = build_firmware(get_target("host"), out, "mcugen", xs, out / "asan", sanitize=True, extra_cflags=GUARD)
    result = run_firmware(get_target("host"), exe)  # a sanitizer report or a damaged guard exits non-zero
    shape = compiled.graph.tensor(compiled.graph.inputs[0]).shape
    expected = sim.run_batch(compiled.graph, xs.reshape((len(xs), *shape)))
    np.testing.assert_array_equal(np.stack(result.outputs), expected.reshape(len(xs), -1))


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler")
def test_arena_guard_catches_a_write_past_the_arena(tmp: Path) -> None:
    out = _emit("tiny_v2", "host", tmp)
    broken = tmp / "broken"
    shutil.copytree(out, broken)
    source = broken / "mcugen.c"
    text = source.read_text()
    # The first layer's output moved to end 4 bytes past the arena: into the guard after it.
    compiled = _compiled("tiny_v2", "host", tmp)
    output_size = compiled.graph.tensor(compiled.graph.nodes[0].outputs[0]).nbytes
    first_output = re.search(r"mcugen_conv2d\(&mcugen_l0_params, input, (&mcugen_arena\.bytes\[\d+\])", text)
    assert first_output is not None, "the first layer is not a conv2d writing into the arena"
    moved = f"&mcugen_arena.bytes[MCUGEN_ARENA_SIZE - {output_size - 4}]"
    source.write_text(text.replace(first_output[1], moved, 1))
    xs = _samples("tiny_v2", compiled, tmp)[:1]
    exe = build_firmware(get_target("host"), broken, "mcugen", xs, broken / "build", extra_cflags=GUARD)
    with pytest.raises(RunError, match=r"error 0 guard \d+"):
        run_firmware(get_target("host"), exe)
