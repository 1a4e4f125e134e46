"""MobileNetV1 and V2 as ONNX, written the way a framework exporter writes them.

NCHW, opset 13, batch 1: Conv without bias + BatchNormalization + Clip(0, 6) with
min/max as inputs (PyTorch's ReLU6), depthwise as Conv with group=C, V2's inverted
residuals with Add, then GlobalAveragePool, Flatten (V2) or Reshape (V1), Gemm and
Softmax. Channel rules follow the reference implementations so α and resolution mean
what they mean in the papers: V1 uses TF-slim's max(8, int(c·α)), V2 torchvision's
round-to-a-multiple-of-8.

Weights are seeded He-normal. Each BatchNormalization takes the mean and variance its
input actually has when the network runs on seeded noise, so every layer's output is
normalised and ReLU6 neither dies nor saturates: int8 calibration then sees ranges a
trained network would have, not ones that explode or vanish with depth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ALPHAS = (0.25, 0.35, 0.5, 0.75, 1.0)
RESOLUTIONS = (96, 128, 160, 192, 224)
OPSET = 13
BN_EPSILON = 1e-5
NOISE_BATCH = 2  # images of noise the BN statistics are measured on

# (output channels, stride) of each depthwise-separable block (Howard et al. 2017,
# table 1; the last depthwise runs at stride 1, as in every released model).
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, output channels c, repeats n, first stride s) (Sandler et al. 2018, table 2).
V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@dataclass
class _Value:
    """A tensor of the graph being built, with its value on the noise batch."""

    name: str
    data: np.ndarray  # NCHW (or NC after the head's flatten)


@dataclass
class _Builder:
    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv_bn(self, x: _Value, name: str, cout: int, kernel: int, stride: int = 1,
                depthwise: bool = False, relu6: bool = True) -> _Value:
        cin = x.data.shape[1]
        group = cin if depthwise else 1
        if depthwise and cout != cin:
            raise ValueError(f"{name}: a depthwise conv keeps the channel count ({cin} -> {cout})")
        fan_in = (cin // group) * kernel * kernel
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, cin // group, kernel, kernel)).astype(np.float32)
        pad = (kernel - 1) // 2
        y = _conv(x.data, w, stride, pad, group)
        conv = self.node("Conv", [x.name, self.const(f"{name}.weight", w)], f"{name}.conv",
                         kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4,
                         group=group, dilations=[1, 1])
        mean = y.mean(axis=(0, 2, 3))
        var = y.var(axis=(0, 2, 3))
        # A linear bottleneck feeds a residual sum: keep it smaller than the identity path.
        gamma = (self.rng.uniform(0.8, 1.2, cout) if relu6 else self.rng.uniform(0.3, 0.6, cout)).astype(np.float32)
        beta = (self.rng.uniform(0.0, 0.5, cout) if relu6 else self.rng.uniform(-0.1, 0.1, cout)).astype(np.float32)
        params = [self.const(f"{name}.bn.{p}", v)
                  for p, v in (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var))]
        bn = self.node("BatchNormalization", [conv] + params, f"{name}.bn", epsilon=BN_EPSILON)
        shape = (1, cout, 1, 1)
        z = gamma.reshape(shape) * (y - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + BN_EPSILON)
        z += beta.reshape(shape)
        if not relu6:
            return _Value(bn, z)
        clip = self.node("Clip", [bn, "relu6.min", "relu6.max"], f"{name}.relu6")
        return _Value(clip, np.clip(z, 0.0, 6.0))

    def add(self, a: _Value, b: _Value, name: str) -> _Value:
        return _Value(self.node("Add", [a.name, b.name], name), a.data + b.data)

    def classifier(self, x: _Value, num_classes: int, flatten: bool) -> _Value:
        channels = x.data.shape[1]
        pooled = self.node("GlobalAveragePool", [x.name], "pool")
        if flatten:
            flat = self.node("Flatten", [pooled], "flatten", axis=1)
        else:
            flat = self.node("Reshape", [pooled, self.const("reshape.shape", np.array([1, -1], np.int64))], "reshape")
        w = self.rng.normal(0.0, np.sqrt(2.0 / channels), (num_classes, channels)).astype(np.float32)
        b = self.rng.uniform(-0.1, 0.1, num_classes).astype(np.float32)
        logits = self.node("Gemm", [flat, self.const("fc.weight", w), self.const("fc.bias", b)], "fc", transB=1)
        probs = self.node("Softmax", [logits], "softmax", axis=-1)
        features = x.data.mean(axis=(2, 3))
        return _Value(probs, features @ w.T + b)

    def model(self, name: str, resolution: int, num_classes: int) -> onnx.ModelProto:
        self.const("relu6.min", np.array(0.0, np.float32))
        self.const("relu6.max", np.array(6.0, np.float32))
        out_name = self.nodes[-1].output[0]
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, resolution, resolution])],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [1, num_classes])],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="mcugen.zoo")
        model.ir_version = 8  # opset 13's IR; keeps the file loadable by older runtimes
        onnx.checker.check_model(model)
        return model


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, group: int) -> np.ndarray:
    """NCHW convolution, standard (group 1) or depthwise (group = C), tap by tap."""
    n, _, h, wd = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, cout, oh * ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride].reshape(n, -1, oh * ow)
            if group == 1:
                out += w[:, :, i, j] @ patch
            else:
                out += w[:, 0, i, j][None, :, None] * patch
    return out.reshape(n, cout, oh, ow)


def _check(alpha: float, resolution: int) -> None:
    if alpha not in ALPHAS:
        raise ValueError(f"alpha {alpha} not one of {ALPHAS}")
    if not 32 <= resolution <= 1024:
        raise ValueError(f"resolution {resolution} outside 32..1024")


def _start(seed: int, resolution: int) -> tuple[_Builder, _Value]:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, (NOISE_BATCH, 3, resolution, resolution)).astype(np.float32)
    return _Builder(rng), _Value("input", noise)


def v1_channels(c: int, alpha: float) -> int:
    """TF-slim's depth rule for MobileNetV1."""
    return max(8, int(c * alpha))


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rule for MobileNetV2: nearest multiple of 8, never 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenet_v1(alpha: float, resolution: int, num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """MobileNetV1 (Howard et al. 2017) with width multiplier `alpha` on `resolution`² RGB input."""
    _check(alpha, resolution)
    b, x = _start(seed, resolution)
    x = b.conv_bn(x, "conv0", v1_channels(32, alpha), 3, stride=2)
    for i, (c, stride) in enumerate(V1_BLOCKS, start=1):
        x = b.conv_bn(x, f"block{i}.dw", x.data.shape[1], 3, stride, depthwise=True)
        x = b.conv_bn(x, f"block{i}.pw", v1_channels(c, alpha), 1)
    b.classifier(x, num_classes, flatten=False)
    return b.model(f"mobilenet_v1_{alpha}_{resolution}", resolution, num_classes)


def mobilenet_v2(alpha: float, resolution: int, num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2 (Sandler et al. 2018) with width multiplier `alpha` on `resolution`² RGB input."""
    _check(alpha, resolution)
    b, x = _start(seed, resolution)
    x = b.conv_bn(x, "conv0", make_divisible(32 * alpha), 3, stride=2)
    block = 0
    for t, c, n, s in V2_BLOCKS:
        cout = make_divisible(c * alpha)
        for i in range(n):
            block += 1
            cin = x.data.shape[1]
            stride = s if i == 0 else 1
            h = x
            if t != 1:
                h = b.conv_bn(h, f"block{block}.expand", int(round(cin * t)), 1)
            h = b.conv_bn(h, f"block{block}.dw", h.data.shape[1], 3, stride, depthwise=True)
            h = b.conv_bn(h, f"block{block}.project", cout, 1, relu6=False)
            x = b.add(x, h, f"block{block}.add") if stride == 1 and cin == cout else h
    x = b.conv_bn(x, "conv_last", make_divisible(1280 * max(1.0, alpha)), 1)
    b.classifier(x, num_classes, flatten=True)
    return b.model(f"mobilenet_v2_{alpha}_{resolution}", resolution, num_classes)


GENERATORS = {"v1": mobilenet_v1, "v2": mobilenet_v2}
