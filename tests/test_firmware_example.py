"""examples/firmware builds with make and CMake, runs on QEMU and agrees with the simulator."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from mcugen import sim
from mcugen.compiler import CalibrationOptions, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from shared_data import EXAMPLES

EXAMPLE = EXAMPLES / "firmware"
PHOTOS = EXAMPLES / "data" / "photos_rgb_uint8_96.npz"
PHOTO = 2  # grace_hopper

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make")),
    reason="needs make, arm-none-eabi-gcc and qemu-system-arm",
)


@pytest.fixture(scope="module")
def expected_line() -> str:
    compiled = compile_model(EXAMPLES / "models" / "vww_96_float.onnx",
                             CalibrationOptions(str(PHOTOS), preprocess=Preprocess(scale=1 / 255)),
                             target="cortex-m7")
    _, xs = quantized_inputs(compiled, str(PHOTOS))
    out = sim.run(compiled.graph, xs[PHOTO])[0].ravel()
    best = int(np.argmax(out))
    zero_point = compiled.graph.tensor(compiled.graph.outputs[0]).qparams.scalar_zero_point
    label = "person" if best == 1 else "no person"
    return f"class {best} ({label}) score {int(out[best]) - zero_point}/256"


def test_make_run(tmp_path, expected_line):
    proc = subprocess.run(["make", "-C", str(EXAMPLE), f"BUILD={tmp_path}", f"PHOTO={PHOTO}", "run"],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected_line in proc.stdout.splitlines()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_run(tmp_path, expected_line):
    configure = subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(tmp_path), f"-DPHOTO={PHOTO}"],
                               capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stderr[-2000:]
    proc = subprocess.run(["cmake", "--build", str(tmp_path), "--target", "run"], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(re.escape(expected_line), proc.stdout)
