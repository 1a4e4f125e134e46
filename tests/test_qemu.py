"""`mcugen run`, `verify --target` and `bench` on QEMU: the C on an emulated Cortex-M equals the simulator."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from mcugen import sim
from mcugen.bench import FunctionSize, function_sizes
from mcugen.compiler import CalibrationOptions, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from mcugen.report.cost import layer_costs
from onnx_builders import tiny_mobilenet
from shared_data import EXAMPLES

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm (apt-get install gcc-arm-none-eabi "
           "libnewlib-arm-none-eabi qemu-system-arm)",
)

VWW = EXAMPLES / "models" / "vww_96_float.onnx"
PHOTOS = EXAMPLES / "data" / "photos_rgb_uint8_96.npz"
VWW_OPTIONS = ("--calib", PHOTOS, "--input-scale", 1 / 255)


def mcugen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcugen", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    model = folder / "tiny_v2.onnx"
    onnx.save(tiny_mobilenet(version=2, size=16, width=8), model)
    samples = np.random.default_rng(3).uniform(-1, 1, (4, 3, 16, 16))  # the model is NCHW.astype(np.float32)
    np.save(folder / "samples.npy", samples)
    return model, folder / "samples.npy"


@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
def test_verify_on_every_target(tiny, target):
    model, samples = tiny
    proc = mcugen("verify", model, "--target", target, "--calib", samples, "--inputs", samples, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["target"] == target and report["bit_exact"] == report["inputs"] == 4
    assert report["instructions"] > 0


def test_run_prints_the_simulators_outputs(tiny, tmp_path):
    model, samples = tiny
    out = tmp_path / "out.npy"
    proc = mcugen("run", model, "--target", "cortex-m7", "--calib", samples, "--inputs", samples, "-o", out)
    assert proc.returncode == 0, proc.stderr
    compiled = compile_model(model, CalibrationOptions(str(samples), preprocess=Preprocess()))
    _, xs = quantized_inputs(compiled, str(samples))
    expected = np.stack([sim.run(compiled.graph, x)[0] for x in xs])
    np.testing.assert_array_equal(np.load(out), expected)
    assert proc.stdout.count("top-1") == 4


def test_bench_json_accounts_for_every_layer(tiny):
    model, samples = tiny
    proc = mcugen("bench", model, "--target", "cortex-m55", "--calib", samples, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    compiled = compile_model(model, CalibrationOptions(str(samples)), target="cortex-m55")
    costs = layer_costs(compiled.graph)
    assert [layer["name"] for layer in report["layers"]] == [c.name for c in costs]
    assert [layer["macs"] for layer in report["layers"]] == [c.macs for c in costs]
    assert [layer["kind"] for layer in report["layers"]] == [c.kind for c in costs]
    assert all(layer["instructions"] > 0 for layer in report["layers"])
    assert report["total_instructions"] == sum(layer["instructions"] for layer in report["layers"])
    assert report["arena_bytes"] == compiled.plan.arena_size
    assert report["bss_bytes"] >= report["arena_bytes"]
    assert 0 < report["code_bytes"] < report["firmware"]["text"]
    assert report["weights_bytes"] >= sum(t.nbytes for t in compiled.graph.tensors.values() if t.is_const)
    # the linked functions of the model's object account for its text, less small read-only data:
    # a few constants and one params struct per layer (at most 16 int32 fields)
    functions = {f["name"]: f["bytes"] for f in report["functions"]}
    assert "mcugen_run" in functions
    assert 0 <= report["code_bytes"] - sum(functions.values()) < 256 + 64 * len(compiled.graph.nodes)


def test_bench_refuses_the_host(tiny):
    model, samples = tiny
    proc = mcugen("bench", model, "--target", "host", "--calib", samples)
    assert proc.returncode == 2
    assert "pick a Cortex-M target" in proc.stderr


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m55"])
def test_vww_is_bit_exact_and_counted(target):
    proc = mcugen("verify", VWW, "--target", target, *VWW_OPTIONS, "--inputs", PHOTOS, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["bit_exact"] == report["inputs"] == 16
    assert report["top1_agree_float"] >= 15
    assert report["instructions"] > 7_489_664 / 4  # VWW's MACs: no kernel does 4 MACs per instruction


def test_function_sizes_read_the_kept_sections_of_one_object(tmp_path):
    (tmp_path / "firmware.map").write_text(
        "Discarded input sections\n\n"
        " .text.mcugen_unused\n                0x00000000       0x40 build/model_mcugen.o\n\n"
        "Linker script and memory map\n\n"
        " .text.mcugen_pw_dsp_36_128_128.constprop.0\n                0x00001e3c      0x894 /w/build/model_mcugen.o\n"
        " .text.mcugen_run\n                0x000026d0      0x1c0 /w/build/model_mcugen.o\n"
        " .text.main      0x00002890       0x24 /w/build/harness_harness.o\n"
    )
    assert function_sizes(tmp_path / "firmware.map", "model_mcugen.o") == (
        FunctionSize("mcugen_pw_dsp_36_128_128", 0x894), FunctionSize("mcugen_run", 0x1C0))
