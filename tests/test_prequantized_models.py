"""Real pre-quantized models end to end: bit-exact with TensorFlow Lite Micro (VWW, KWS), uint8
Coral MobileNet against onnxruntime, and a model quantized by onnxruntime's own quantize_static."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from mcugen import sim
from mcugen.compiler import CalibrationOptions, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from mcugen.reference import run_onnx
from mcugen.targets import get_target
from mcugen.tflm import run_tflm, tflm_available
from mcugen.verify import run_c
from onnx_builders import OnnxGraph
from shared_data import shared
from test_qlinear import quantize_with_onnxruntime

needs_cc = pytest.mark.skipif(subprocess.run(["which", "cc"], capture_output=True).returncode != 0,
                              reason="no host C compiler")
needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed (pip install tflite-micro)")


def mcugen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcugen", *map(str, args)], capture_output=True, text=True)


def verify_json(*args: object) -> dict:
    proc = mcugen("verify", *args, "--target", "host", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_cc
@needs_tflm
def test_vww_int8_equals_tflite_micro_on_every_photo(tmp_path: Path) -> None:
    photos = shared("inputs/photos_rgb_uint8_96.npz")
    with np.load(photos) as archive:
        shifted = {k: (archive[k].astype(np.int16) - 128).astype(np.int8) for k in archive.files}  # q = pixel - 128
    np.savez(tmp_path / "vww_int8.npz", **shifted)
    report = verify_json(shared("models/vww_96_int8.onnx"), "--inputs", tmp_path / "vww_int8.npz",
                         "--reference", shared("models/vww_96_int8.tflite"))
    assert report["inputs"] == 16 and report["bit_exact"] == 16 and report["reference_exact"] == 16


def test_vww_float_photos_quantize_to_pixel_minus_128() -> None:
    """--input-scale 1/255 on the raw photos gives the same int8 inputs as pixel - 128."""
    photos = shared("inputs/photos_rgb_uint8_96.npz")
    compiled = compile_model(shared("models/vww_96_int8.onnx"), CalibrationOptions(preprocess=Preprocess(1 / 255)))
    _, xs = quantized_inputs(compiled, str(photos))
    with np.load(photos) as archive:
        expected = np.stack([(archive[k].astype(np.int16) - 128).astype(np.int8) for k in archive.files])
    np.testing.assert_array_equal(xs, expected)


@needs_cc
@needs_tflm
def test_kws_int8_equals_tflite_micro() -> None:
    report = verify_json(shared("models/kws_ds_cnn_int8.onnx"), "--inputs", shared("inputs/kws_wav_features.npz"),
                         "--keys", "*_int8", "--reference", shared("models/kws_ds_cnn_int8.tflite"))
    assert report["inputs"] == 5 and report["bit_exact"] == 5 and report["reference_exact"] == 5


@needs_tflm
def test_a_wrong_reference_is_reported_not_ignored() -> None:
    """The KWS .tflite against the VWW model: shapes differ, the user is told so."""
    compiled = compile_model(shared("models/vww_96_int8.onnx"), CalibrationOptions())
    x = np.zeros((1, 1, 96, 96, 3), np.int8)
    with pytest.raises(Exception, match="do not match"):
        run_tflm(shared("models/kws_ds_cnn_int8.tflite"), x, compiled.graph.tensor(compiled.graph.outputs[0]).shape)


@needs_cc
def test_coral_uint8_c_equals_simulator_and_top1_follows_onnxruntime() -> None:
    pytest.importorskip("onnxruntime")
    report = verify_json(shared("models/coral_mobilenet_v1_0.5_160_quant.onnx"),
                         "--inputs", shared("inputs/photos_rgb_uint8_160.npz"))
    assert report["inputs"] == 16 and report["bit_exact"] == 16
    assert report["top1_agree_onnxruntime"] >= 15


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_coral_uint8_is_bit_exact_with_helium_kernels_on_the_m55() -> None:
    """Every conv of this model has a weight zero point: Helium's kernels take them (int16
    depthwise weights, the first conv's window sums), checked on the emulated core."""
    photos = str(shared("inputs/photos_rgb_uint8_160.npz"))
    compiled = compile_model(shared("models/coral_mobilenet_v1_0.5_160_quant.onnx"), CalibrationOptions(),
                             target="cortex-m55")
    variants = {n.variant for n in compiled.graph.nodes if n.op in ("conv2d", "depthwise_conv2d")}
    assert {"conv_mve", "depthwise_mve", "pointwise_mve"} <= variants
    xs = quantized_inputs(compiled, photos)[1][:2]
    outputs, _ = run_c(compiled, get_target("cortex-m55"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


def test_inspect_shows_the_models_own_qparams() -> None:
    proc = mcugen("inspect", shared("models/kws_ds_cnn_int8.onnx"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["quantization"] == "qdq" and len(report["layers"]) == 12
    first = report["layers"][0]
    model = onnx.load(shared("models/kws_ds_cnn_int8.onnx"))
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in values)  # the input's
    assert np.float32(first["inputs"][0]["scale"]) == values[dq.input[1]]
    assert first["inputs"][0]["zero_point"] == int(values[dq.input[2]])
    (rescale,) = first["rescales"]
    assert len(rescale["multiplier"]) == len(first["weight_scales"]) == 64
    expected = first["inputs"][0]["scale"] * np.asarray(first["weight_scales"]) / first["output"]["scale"]
    np.testing.assert_allclose(rescale["real"], expected, rtol=1e-8)


def mobilenet_with_residual(path: Path) -> Path:
    """A small MobileNet (V1 blocks, one V2-style residual Add), biased convs as exporters fold them."""
    g = OnnxGraph(seed=11, opset=13)
    x = g.input("image", [1, 3, 32, 32])
    x = g.clip(g.conv(x, 8, kernel=3, stride=2))
    for c_out, stride in ((16, 1), (24, 2), (24, 1)):
        x = g.relu(g.conv(g.clip(g.depthwise(x, kernel=3, stride=stride)), c_out, kernel=1))
    y = g.conv(g.clip(g.depthwise(x, kernel=3)), 24, kernel=1)
    x = g.flatten(g.global_avg_pool(g.add(x, y)))
    onnx.save(g.build([g.softmax(g.gemm(x, 10, bias_shape=(10,)))]), path)
    return path


@needs_cc
def test_onnxruntime_quantize_static_qdq_per_channel(tmp_path: Path) -> None:
    """onnxruntime quantizes (QDQ, per channel); mcugen's C equals its simulator bit for bit and
    its top-1 follows onnxruntime running the QDQ model."""
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 1, (16, 3, 32, 32)).astype(np.float32)
    qdq = quantize_with_onnxruntime(mobilenet_with_residual(tmp_path / "float.onnx"), tmp_path / "qdq.onnx", "QDQ",
                                    calibration)
    compiled = compile_model(qdq, CalibrationOptions())
    assert compiled.float_graph is None
    # the same kernels and windows as the float model (onnxruntime drops Relu/Clip into the Q ranges,
    # so fused activations may differ)
    float_twin = compile_model(tmp_path / "float.onnx", CalibrationOptions())
    assert [(n.op, getattr(n.attrs, "window", None)) for n in compiled.graph.nodes] == [
        (n.op, getattr(n.attrs, "window", None)) for n in float_twin.graph.nodes]
    tests = rng.uniform(0, 1, (24, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", tests)
    _, xs = quantized_inputs(compiled, str(tmp_path / "x.npy"))
    c_out, _ = run_c(compiled, get_target("host"), xs)
    sim_out = np.stack([sim.run(compiled.graph, x)[0] for x in xs])
    np.testing.assert_array_equal(c_out, sim_out)
    theirs = run_onnx(qdq, compiled.graph, tests.transpose(0, 2, 3, 1))
    agree = int((sim_out.reshape(len(xs), -1).argmax(1) == theirs.reshape(len(xs), -1).argmax(1)).sum())
    assert agree >= 22, f"top-1 agrees with onnxruntime on {agree}/24"
