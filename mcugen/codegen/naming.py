"""The only place C identifiers are made."""
from __future__ import annotations

import re

import numpy as np

_C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t", np.dtype(np.int16): "int16_t"}


def c_type(dtype: np.dtype) -> str:
    try:
        return _C_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no C type for dtype {dtype}") from None


def kernel_function(op: str) -> str:
    return f"mcugen_{op}"


def params_type(op: str) -> str:
    return f"mcugen_{op}_params"


class Names:
    """C names of one generated model; `prefix` keeps two models apart in one firmware."""

    def __init__(self, prefix: str) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            raise ValueError(f"--prefix '{prefix}' is not a C identifier")
        self.prefix = prefix

    @property
    def macro(self) -> str:
        return self.prefix.upper()

    @property
    def run(self) -> str:
        return f"{self.prefix}_run"

    @property
    def arena(self) -> str:
        return f"{self.prefix}_arena"

    def layer_params(self, index: int) -> str:
        return f"{self.prefix}_l{index}_params"

    def layer_constant(self, index: int, role: str) -> str:
        return f"{self.prefix}_l{index}_{role}"

    def file(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"
