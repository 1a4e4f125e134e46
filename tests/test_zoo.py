"""The MobileNet generator: valid ONNX, runs in onnxruntime, sane activations, the papers' sizes."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from mcugen import zoo
from onnx_count import count

ort = pytest.importorskip("onnxruntime")


def run_all_outputs(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output, so the test can look inside the network."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for node in model.graph.node[:-1]:
        model.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x})))


@settings(max_examples=6, deadline=None)
@given(version=st.sampled_from(["v1", "v2"]), alpha=st.sampled_from(zoo.ALPHAS[:3]),
       resolution=st.integers(96, 160), seed=st.integers(0, 2**16))
def test_models_validate_and_run_with_sane_activations(version, alpha, resolution, seed):
    model = zoo.GENERATORS[version](alpha, resolution, num_classes=10, seed=seed)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13
    x = np.random.default_rng(seed + 1).uniform(-1, 1, (1, 3, resolution, resolution)).astype(np.float32)
    outs = run_all_outputs(model, x)
    probs = outs[model.graph.output[0].name]
    assert probs.shape == (1, 10)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.ptp(np.log(probs)) > 0.1  # the logits are spread, not all equal (a collapsed net gives ~0)
    relus = [n.output[0] for n in model.graph.node if n.op_type == "Clip"]
    assert relus
    for name in relus:
        y = outs[name]
        alive = (y > 0).mean()
        # BN statistics from a forward pass keep every layer active on fresh inputs
        assert 0.2 < alive < 0.9, f"{name}: {alive:.2f} of the outputs are positive"
        assert (y >= 6.0).mean() < 0.05, f"{name} saturates ReLU6"


def test_exporter_style_ops():
    ops = {n.op_type for n in zoo.mobilenet_v2(0.35, 96).graph.node}
    assert ops == {"Conv", "BatchNormalization", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"}
    v1 = zoo.mobilenet_v1(0.25, 96)
    assert {n.op_type for n in v1.graph.node} == ops - {"Add", "Flatten"} | {"Reshape"}
    convs = [n for n in v1.graph.node if n.op_type == "Conv"]
    assert all(len(n.input) == 2 for n in convs)  # no bias: BatchNormalization carries it
    groups = [next(a.i for a in n.attribute if a.name == "group") for n in convs]
    assert sum(g > 1 for g in groups) == 13  # thirteen depthwise convs
    clip = next(n for n in v1.graph.node if n.op_type == "Clip")
    inits = {i.name: numpy_helper.to_array(i) for i in v1.graph.initializer}
    assert (float(inits[clip.input[1]]), float(inits[clip.input[2]])) == (0.0, 6.0)


# Published sizes (Howard et al. 2017 tables 6-7; Sandler et al. 2018 table 3;
# torchvision's mobilenet_v2 weights card: 3,504,872 parameters), all with 1000 classes.
@pytest.mark.parametrize("version,alpha,resolution,million_macs", [
    ("v1", 1.0, 224, 569), ("v1", 0.75, 224, 325), ("v1", 0.5, 224, 149), ("v1", 0.25, 224, 41),
    ("v1", 1.0, 128, 186), ("v2", 1.0, 224, 300), ("v2", 0.35, 224, 59),
])
def test_macs_match_the_papers(version, alpha, resolution, million_macs):
    macs = count(zoo.GENERATORS[version](alpha, resolution)).macs
    assert macs / 1e6 == pytest.approx(million_macs, rel=0.01)


def test_v2_parameters_match_torchvision_exactly():
    inits = {i.name: numpy_helper.to_array(i) for i in zoo.mobilenet_v2(1.0, 224).graph.initializer}
    # torchvision counts BN's scale and bias as parameters, not its running statistics
    n = sum(v.size for k, v in inits.items() if k.endswith(".weight") or k == "fc.bias")
    n += sum(2 * v.size for k, v in inits.items() if k.endswith(".bn.scale"))
    assert n == 3_504_872


def test_v1_width_multiplier_leaves_eight_channel_minimum():
    first = zoo.mobilenet_v1(0.25, 96).graph.initializer[0]
    assert first.name == "conv0.weight" and first.dims[0] == 8


def test_seed_makes_models_reproducible():
    a, b, c = (zoo.mobilenet_v1(0.25, 96, seed=s).SerializeToString() for s in (3, 3, 4))
    assert a == b and a != c


@pytest.mark.parametrize("alpha,resolution", [(0.3, 96), (0.25, 8)])
def test_rejects_unsupported_sizes(alpha, resolution):
    with pytest.raises(ValueError):
        zoo.mobilenet_v1(alpha, resolution)
