"""The shared models under the planner: the issue's arena targets, the arena simulator equal to the
simulator, and the generated C with in-place layers (and input/output in the arena) bit-exact on the host."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from mcugen.plan.execute import run_in_arena
from mcugen.targets import get_target
from mcugen.verify import run_c
from shared_data import shared

MODELS = {
    "vww": ("models/vww_96_float.onnx", "inputs/photos_rgb_uint8_96.npz", None, Preprocess(1 / 255, 0.0, None)),
    "v2": ("models/mobilenet_v2_0.5_128_person_float_nchw.onnx", "inputs/photos_rgb_uint8_128.npz", None,
           Preprocess(1 / 127.5, -1.0, "nhwc")),
    "kws": ("models/kws_ds_cnn_float.onnx", "inputs/kws_wav_features.npz", "*_float", Preprocess()),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request) -> tuple[str, Compiled, np.ndarray]:
    path, samples, keys, preprocess = MODELS[request.param]
    samples_path = str(shared(samples))
    compiled = compile_model(shared(path), CalibrationOptions(samples_path, keys, "minmax", preprocess))
    _, xs = quantized_inputs(compiled, samples_path, keys)
    return request.param, compiled, xs[:3]


def test_arena_meets_the_issue_targets(model):
    name, compiled, _ = model
    plan = compiled.plan
    plain = compiled.replan(allow_overlap=False).plan
    assert plan.lower_bound <= plan.arena_size < plain.arena_size
    if name == "vww":
        assert plan.arena_size <= 40 * 1024  # X-CUBE-AI needs 66.96 KiB, the plain layer-by-layer plan 54 KiB
    assert plan.arena_size <= 1.10 * plan.lower_bound


@pytest.mark.parametrize("io_in_arena", [False, True])
def test_arena_simulator_equals_simulator(model, io_in_arena):
    _, compiled, xs = model
    compiled = compiled.replan(io_in_arena=io_in_arena)
    for x in xs:
        assert np.array_equal(run_in_arena(compiled.graph, compiled.plan, x)[0], sim.run(compiled.graph, x)[0])


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
def test_host_c_in_place_and_io_in_arena_bit_exact(model):
    name, compiled, xs = model
    in_arena = compiled.replan(io_in_arena=True)
    c_out, _ = run_c(in_arena, get_target("host"), xs)
    assert np.array_equal(c_out, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
    if name == "vww":  # and the same bytes as the C of the plain, un-overlapped plan
        plain_out, _ = run_c(compiled.replan(allow_overlap=False), get_target("host"), xs)
        assert np.array_equal(c_out, plain_out)
