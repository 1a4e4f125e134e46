"""Loading user sample data: the one input convention for --calib and --inputs.

An array whose dtype is the model's own quantized input type (int8, or uint8 for
a uint8 model) is taken as already quantized. Any other array is converted to
float, preprocessed as `x * scale + offset`, brought from `layout` to NHWC, and
(when quantized samples are wanted) quantized with the model's input QParams.
Arrays may hold one sample or a batch; the batch axis may be missing.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .ir import QParams
from .kernels.common import round_half_away

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


@dataclass(frozen=True)
class Preprocess:
    scale: float = 1.0
    offset: float = 0.0
    layout: str | None = None  # layout of the user's arrays (None: the model's); the IR is NHWC


@dataclass(frozen=True)
class Sample:
    name: str
    data: np.ndarray  # one sample, no batch axis, as the user gave it


def load_samples(path: str | Path, keys: str | None = None) -> list[Sample]:
    """Samples from a .npy, a .npz (every array, or those whose key matches the glob `keys`) or an image folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_images(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = [(k, archive[k]) for k in archive.files if keys is None or fnmatch.fnmatch(k, keys)]
        elif path.suffix == ".npy":
            arrays = [(path.stem, np.load(path, allow_pickle=False))]
        else:
            raise UserError(f"{path}: expected a .npy or .npz file, or a folder of images")
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot read arrays ({exc})") from None
    if not arrays:
        raise UserError(f"{path}: no arrays" + (f" match --keys '{keys}'" if keys else ""))
    return [Sample(name, data) for name, data in arrays]


def _load_images(folder: Path) -> list[Sample]:
    try:
        from PIL import Image
    except ImportError:
        raise UserError("reading a folder of images needs Pillow: pip install pillow") from None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return [Sample(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in files]


def _split_batch(sample: Sample, rank: int) -> list[Sample]:
    if sample.data.ndim == rank - 1:
        return [sample]
    if sample.data.ndim == rank:
        if sample.data.shape[0] == 1:
            return [Sample(sample.name, sample.data[0])]
        return [Sample(f"{sample.name}[{i}]", x) for i, x in enumerate(sample.data)]
    raise UserError(f"sample '{sample.name}' has shape {sample.data.shape}; the model input has rank {rank}")


def _to_nhwc(x: np.ndarray, layout: str) -> np.ndarray:
    if x.ndim == 3 and layout == "nchw":
        return np.transpose(x, (1, 2, 0))
    return x


def prepare(
    samples: list[Sample],
    input_shape: tuple[int, ...],
    preprocess: Preprocess,
    input_qparams: QParams | None,
    quantized_dtype: str | None,
) -> tuple[list[str], np.ndarray]:
    """Stack samples into [N, *input_shape[1:]] NHWC: int8 when `input_qparams` is given, float32 otherwise.

    `quantized_dtype` is the model's own quantized input type ("int8"/"uint8") for
    pre-quantized models, None for float models.
    """
    names, rows = [], []
    for sample in samples:
        for one in _split_batch(sample, len(input_shape)):
            rows.append(_convert(one, input_shape, preprocess, input_qparams, quantized_dtype))
            names.append(one.name)
    return names, np.stack(rows)


def _convert(sample: Sample, input_shape, preprocess, input_qparams, quantized_dtype) -> np.ndarray:
    x = sample.data
    if x.dtype.kind not in "biuf":
        raise UserError(f"sample '{sample.name}' has dtype {x.dtype}; expected numbers (uint8 images, float32 "
                        "or the model's int8/uint8 input)")
    already_quantized = quantized_dtype is not None and x.dtype == np.dtype(quantized_dtype)
    if already_quantized:
        x = _to_nhwc(x, preprocess.layout)
        if quantized_dtype == "uint8":  # the IR is int8: same real value, zero point - 128
            x = (x.astype(np.int16) - 128).astype(np.int8)
    else:
        x = _to_nhwc(x.astype(np.float64) * preprocess.scale + preprocess.offset, preprocess.layout)
        if not np.all(np.isfinite(x)):
            raise UserError(f"sample '{sample.name}' contains NaN or Inf")
    expected = tuple(input_shape[1:])
    if x.shape != expected:
        other = "nhwc" if preprocess.layout == "nchw" else "nchw"  # the hint names the layout not tried
        hint = f" (try --layout {other})" if sorted(x.shape) == sorted(expected) else ""
        raise UserError(f"sample '{sample.name}' has shape {x.shape} after preprocessing; the model expects {expected}{hint}")
    if already_quantized:
        return x.astype(np.int8)
    if input_qparams is None:
        return x.astype(np.float32)
    q = round_half_away(x / input_qparams.scalar_scale) + input_qparams.scalar_zero_point
    return np.clip(q, -128, 127).astype(np.int8)
