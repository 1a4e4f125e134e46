"""TensorFlow Lite Micro's reference kernels on the host (PyPI `tflite-micro`): the outside reference.

mcugen claims bit-exactness with TFLM; `run_tflm` runs a .tflite on the same
int8 inputs the generated C takes so that claim is checked, not assumed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError


def tflm_available() -> bool:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflm(tflite_path: str | Path, inputs: np.ndarray, output_shape: tuple[int, ...]) -> np.ndarray:
    """TFLM's first output for each int8 sample in `inputs` (batch first, the IR's input layout).

    A uint8 model's input and output are moved to and from int8 (by 128), as mcugen
    does; outputs come back in `output_shape` (the IR output's)."""
    if not tflm_available():
        raise UserError("comparing against TensorFlow Lite Micro needs its Python package: pip install tflite-micro")
    from tflite_micro import runtime

    path = Path(tflite_path)
    if not path.is_file():
        raise UserError(f"{path}: no such .tflite file")
    try:
        interpreter = runtime.Interpreter.from_file(str(path))
    except Exception as exc:  # the runtime raises plain RuntimeError/ValueError on a bad file
        raise UserError(f"{path}: TFLite Micro cannot load it ({exc})") from None
    feed, fetch = interpreter.get_input_details(0), interpreter.get_output_details(0)
    in_shape = tuple(int(d) for d in feed["shape"])
    if int(np.prod(in_shape)) != inputs[0].size or int(np.prod(fetch["shape"])) != int(np.prod(output_shape)):
        raise UserError(f"{path}: its input {list(in_shape)} / output {list(fetch['shape'])} do not match the "
                        f"compiled model's {list(inputs[0].shape)} / {list(output_shape)}")
    outputs = []
    for x in inputs:
        x = np.asarray(x, np.int8).reshape(in_shape)
        if feed["dtype"] == np.uint8:
            x = (x.astype(np.int16) + 128).astype(np.uint8)
        elif feed["dtype"] != np.int8:
            raise UserError(f"{path}: input type {np.dtype(feed['dtype'])}; only int8 and uint8 models compare")
        interpreter.reset()
        interpreter.set_input(x, 0)
        interpreter.invoke()
        y = np.asarray(interpreter.get_output(0))
        if y.dtype == np.uint8:
            y = (y.astype(np.int16) - 128).astype(np.int8)
        outputs.append(y.astype(np.int8).reshape(output_shape))
    return np.stack(outputs)
