"""Cases shared by the fast-kernel tests: output-stage records for the vector stage's C drivers
(hypothesis strategies, and the C that reads them), and small ONNX models as files."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import onnx
from hypothesis import strategies as st

from mcugen.quant.arith import INT32_MAX, INT32_MIN, requantize
from onnx_builders import OnnxGraph, QdqGraph
from variant_checks import deaden_last_conv

Lane = tuple[int, int, int]  # acc, q, shift


@dataclass(frozen=True)
class Record:
    """One output stage's zero point and clamp, and the lanes it requantizes."""

    zp: int
    lo: int
    hi: int
    lanes: tuple[Lane, ...]

    def packed(self) -> bytes:
        """What the C drivers read: zp, lo, hi, then (acc, q, shift) per lane, as int32."""
        return struct.pack(f"<{3 + 3 * len(self.lanes)}i", self.zp, self.lo, self.hi,
                           *[v for lane in self.lanes for v in lane])

    def expected(self) -> list[int]:
        """TFLite's requantize of every lane (the portable reference, not the code under test)."""
        return [int(requantize(acc, q, shift, self.zp, self.lo, self.hi)) for acc, q, shift in self.lanes]

    @property
    def right_only(self) -> bool:
        return all(shift < 0 for _, _, shift in self.lanes)


# C for the drivers: Record.packed's lanes into per-lane stage operands
READ_LANES_C = """
/* Lane i of record v (zp, lo, hi, then acc, q, shift per lane) into slot[i] of the stage's
 * operands: left shift, right shift negated, the ties mask. Returns whether every lane shifts right. */
static int32_t read_lanes(const int32_t *v, int32_t count, const int32_t *slot, int32_t *acc, int32_t *q,
                          int32_t *left, int32_t *nr, int32_t *fix)
{
    int32_t i, right = 1;
    for (i = 0; i < count; ++i) {
        const int32_t s = slot[i], shift = v[3 + 3 * i + 2];
        acc[s] = v[3 + 3 * i];
        q[s] = v[3 + 3 * i + 1];
        left[s] = shift > 0 ? shift : 0;
        nr[s] = shift < 0 ? shift : 0;
        fix[s] = shift < 0 ? -1 : 0;
        right = right && shift < 0;
    }
    return right;
}
"""


@st.composite
def lanes(draw: st.DrawFn, left_fits: bool) -> Lane:
    """(acc, q, shift) of one lane: any int32 accumulator (with `left_fits`, one that the left shift
    keeps inside int32, as TFLite needs), or one whose rounding divide is a tie."""
    q = draw(st.one_of(st.just(0), st.just(1 << 30), st.just(INT32_MAX), st.integers(1 << 30, INT32_MAX)))
    shift = draw(st.integers(-31, 30))
    hi = (1 << (31 - max(shift, 0))) - 1 if left_fits else INT32_MAX
    acc = draw(st.one_of(st.integers(-hi - 1, hi), st.sampled_from([-hi - 1, hi, 0, -1, 1])))
    if draw(st.booleans()) and shift < 0:
        # srdhm(2y, 2^30) == y exactly, and y = k * 2^r +- 2^(r-1) is a tie of the divide by 2^r
        r = -shift
        k = draw(st.integers(-(1 << max(0, 29 - r)), 1 << max(0, 29 - r)))
        y = k * (1 << r) + draw(st.sampled_from([-1, 1])) * (1 << (r - 1))
        if INT32_MIN <= 2 * y <= INT32_MAX:
            acc, q = 2 * y, 1 << 30
    return acc, q, shift


@st.composite
def records(draw: st.DrawFn, count: int, left_fits: bool, right_only: bool = False) -> Record:
    """A Record of `count` lanes; with `right_only`, half the records shift every lane right (the
    stages that handle no left shift)."""
    zp = draw(st.integers(-128, 127))
    lo = draw(st.integers(-128, 127))
    hi = draw(st.integers(lo, 127))
    rows = draw(st.lists(lanes(left_fits), min_size=count, max_size=count))
    if right_only and draw(st.booleans()):
        rows = [(acc, q, min(shift, -1)) for acc, q, shift in rows]
    return Record(zp, lo, hi, tuple(rows))


def saved(tmp_path: Path, model: onnx.ModelProto, stem: str, dead: int = 0) -> str:
    """The model as tmp_path/<stem>.onnx, its last conv's first `dead` channels near-dead
    (deaden_last_conv)."""
    if dead:
        deaden_last_conv(model, dead)
    path = tmp_path / f"{stem}.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


def pointwise_chain(tmp_path: Path, seed: int, channels: list[int], hw: tuple[int, int], act: str = "relu",
                    dead: int = 0) -> str:
    """An ONNX file of 1x1 convs, each followed by `act` (relu, relu6 or none), the last one's
    first `dead` channels near-dead."""
    g = OnnxGraph(seed)
    x = g.input("x", [1, channels[0], *hw])
    for c_out in channels[1:]:
        x = g.conv(x, c_out, kernel=1, pads=[0, 0, 0, 0])
        x = g.relu(x) if act == "relu" else g.clip(x) if act == "relu6" else x
    return saved(tmp_path, g.build([x]), f"pw{seed}", dead)


def depthwise_net(tmp_path: Path, seed: int, in_c: int, c: int, hw: tuple[int, int], stride: int, pads: list[int],
                  relu6: bool, dead: int = 0) -> str:
    """An ONNX file: a 1x1 conv to `c` channels, then a 3x3 depthwise conv (then Clip(0, 6) if
    `relu6`), the depthwise's first `dead` channels near-dead."""
    g = OnnxGraph(seed)
    x = g.conv(g.input("x", [1, in_c, *hw]), c, kernel=1, pads=[0, 0, 0, 0])
    y = g.depthwise(x, stride=stride, pads=pads)
    return saved(tmp_path, g.build([g.clip(y) if relu6 else y]), f"dw{seed}", dead)


def uint8_pointwise_chain(tmp_path: Path, seed: int, channels: list[int], hw: tuple[int, int], relu: bool) -> str:
    """An ONNX file of uint8 QDQ 1x1 convs (per-tensor weights with random zero points, as the
    Coral models), each followed by ReLU if `relu`."""
    g = QdqGraph("uint8", seed)
    x = g.q_input("x", [1, channels[0], *hw], 0.02, -3)
    for i, c_out in enumerate(channels[1:]):
        if i:
            x = g.requant(x, 0.3 + 0.2 * i, -128 if relu else 5)
        y = g.qconv(x, c_out, kernel=1, pads=[0, 0, 0, 0], per_channel=False, weight_dtype="uint8")
        x = g.relu(y) if relu else y
    path = tmp_path / f"pw_u8_{seed}.onnx"
    path.write_bytes(g.build_quantized(g.quantize(x, 1.0, -128 if relu else 2)).SerializeToString())
    return str(path)
