"""The one input convention for --calib and --inputs."""
from __future__ import annotations

import numpy as np
import pytest

from mcugen.errors import UserError
from mcugen.inputs import Preprocess, load_samples, prepare
from mcugen.ir import QParams

SHAPE = (1, 2, 3, 3)  # NHWC


def test_float_data_is_preprocessed_and_quantized(tmp_path):
    x = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10  # a uint8 image, not the model's dtype
    np.save(tmp_path / "x.npy", x)
    names, q = prepare(load_samples(tmp_path / "x.npy"), SHAPE, Preprocess(1 / 255, 0.0, "nhwc"),
                       QParams.per_tensor(1 / 255, -128), None)
    assert names == ["x"] and q.dtype == np.int8 and q.shape == (1, 2, 3, 3)
    # pixel p -> real p/255 -> q = p - 128
    assert np.array_equal(q[0], x.astype(np.int16) - 128)


def test_model_dtype_passes_through_and_uint8_shifts(tmp_path):
    x = np.array([[[0, 128, 255]] * 3] * 2, np.uint8)
    np.savez(tmp_path / "x.npz", a=x, b=x)
    names, q = prepare(load_samples(tmp_path / "x.npz"), SHAPE, Preprocess(layout="nhwc"), QParams.per_tensor(1.0, 0), "uint8")
    assert names == ["a", "b"]
    assert np.array_equal(q[0], x.astype(np.int16) - 128)


def test_batches_keys_and_nchw(tmp_path):
    nchw = np.random.default_rng(0).normal(size=(4, 3, 2, 3)).astype(np.float32)
    np.savez(tmp_path / "x.npz", batch_float=nchw, other_int8=np.zeros((4, 3, 2, 3), np.int8))
    names, xs = prepare(load_samples(tmp_path / "x.npz", keys="*_float"), SHAPE, Preprocess(layout="nchw"), None, None)
    assert names == [f"batch_float[{i}]" for i in range(4)]
    assert np.allclose(xs, np.transpose(nchw, (0, 2, 3, 1)))


def test_wrong_shape_names_sample_and_hints_layout(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2, 3), np.float32))
    with pytest.raises(UserError, match=r"'x'.*\(3, 2, 3\).*--layout nchw"):
        prepare(load_samples(tmp_path / "x.npy"), SHAPE, Preprocess(layout="nhwc"), None, None)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_samples(tmp_path / "nope.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError, match="cannot read"):
        load_samples(tmp_path / "bad.npy")


def test_nan_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.full((2, 3, 3), np.nan, np.float32))
    with pytest.raises(UserError, match="NaN"):
        prepare(load_samples(tmp_path / "x.npy"), SHAPE, Preprocess(layout="nhwc"), None, None)
