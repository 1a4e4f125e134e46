"""Fast kernel variants on the emulated cores: bit-exact with the simulator, and faster than
the portable kernels on the layers they replace (VWW itself runs in test_qemu.py)."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from mcugen import sim
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.targets import get_target
from mcugen.verify import run_c
from onnx_builders import tiny_mobilenet

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "tiny_v1.onnx"
    onnx.save(tiny_mobilenet(version=1, size=16, width=16), path)
    return path


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_variants_are_bit_exact_and_beat_portable_pointwise(tiny, target):
    fast = compile_model(tiny, CalibrationOptions(), target=target)
    portable = compile_model(tiny, CalibrationOptions(), target="cortex-m3")
    chosen = [i for i, n in enumerate(fast.graph.nodes) if n.variant != "portable"]
    assert chosen, "no layer of the tiny MobileNet got a fast variant"
    (name,) = fast.graph.inputs
    xs = np.random.default_rng(5).integers(-128, 128, (2, *fast.graph.tensor(name).shape)).astype(np.int8)
    outputs, counts = run_c(fast, get_target(target), xs, profile=True)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(fast.graph, x)[0] for x in xs]))
    # the same layers with the portable kernels (chosen for cortex-m3), built for and run on the same core
    _, portable_counts = run_c(portable, get_target(target), xs[:1], profile=True)
    assert counts is not None and portable_counts is not None
    for i in chosen:
        assert counts[0][i] * 2 < portable_counts[0][i]


def test_size_mode_is_bit_exact_on_m7_with_int8_pointwise_weights(tiny):
    """--optimize size: the pointwise layers keep int8 weights (pointwise_dsp8) among the other variants."""
    compiled = compile_model(tiny, CalibrationOptions(), target="cortex-m7", optimize="size")
    pointwise = [n.variant for n in compiled.graph.nodes if n.op == "conv2d"][1:]  # the first conv is conv_dsp
    assert pointwise and set(pointwise) == {"pointwise_dsp8"}
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(8).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m7"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
