"""Errors a user can act on. The CLI maps UserError to exit code 2, anything else to 1."""
from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """Bad input: the message says what, where and how to fix it."""


@dataclass(frozen=True)
class Problem:
    node: str
    op: str
    reason: str
    hint: str = ""  # what the user can do about it

    def __str__(self) -> str:
        hint = f"; hint: {self.hint}" if self.hint else ""
        return f"  node '{self.node}' ({self.op}): {self.reason}{hint}"


class UnsupportedModelError(UserError):
    """Every problem in the model at once, so the user fixes them in one go."""

    def __init__(self, problems: list[Problem], model: str = "model") -> None:
        self.problems = problems
        lines = [f"{model}: {len(problems)} node(s) cannot be compiled:"] + [str(p) for p in problems]
        super().__init__("\n".join(lines))


class InvalidModelError(UserError):
    """The file is ONNX but breaks ONNX's own rules (or ours for a model): every problem at once."""

    def __init__(self, problems: list[Problem], model: str = "model") -> None:
        self.problems = problems
        lines = [f"{model}: invalid model, {len(problems)} problem(s):"] + [str(p) for p in problems]
        super().__init__("\n".join(lines))
