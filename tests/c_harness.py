"""Compile a C program with the host compiler, run it, return its stdout (for tests).

Programs are compiled with the project's warning flags (any warning fails) and
`-I` the runtime headers as mcugen emits them (templates/runtime rendered). Compiled binaries are cached per (source, flags,
compiler) for the test session, so a test that runs one program many times pays
for one compile.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
RUNTIME = TEMPLATES / "runtime"
CFLAGS = (
    "-std=c99", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror",
)  # fmt: skip
DEFAULT_CC = os.environ.get("CC", "cc")


class CompileError(RuntimeError):
    """The compiler rejected the program; the message holds its diagnostics."""


class RunError(RuntimeError):
    """The program exited non-zero; the message holds its status and stderr."""


def available_compilers(candidates: Sequence[str] = ("gcc", "clang")) -> list[str]:
    """The host compilers among candidates that are installed (to parametrize tests over)."""
    return [cc for cc in candidates if shutil.which(cc)]


@lru_cache(maxsize=1)
def _build_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mcugen_c_"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@lru_cache(maxsize=1)
def _runtime_dir() -> Path:
    """templates/runtime rendered, as codegen writes the headers beside a model."""
    from mcugen.codegen.environment import render

    path = _build_dir() / "runtime"
    path.mkdir()
    for header in RUNTIME.glob("*.h"):
        (path / header.name).write_text(render(f"runtime/{header.name}"))
    return path


@lru_cache(maxsize=64)
def compile_c(source: str, extra_flags: tuple[str, ...] = (), cc: str = DEFAULT_CC) -> Path:
    """Compile source into an executable (cached) and return its path."""
    build = Path(tempfile.mkdtemp(dir=_build_dir()))
    (build / "main.c").write_text(source)
    cmd = [cc, *CFLAGS, *extra_flags, f"-I{_runtime_dir()}", "main.c", "-o", "main"]
    done = subprocess.run(cmd, cwd=build, capture_output=True, text=True)
    if done.returncode != 0:
        raise CompileError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return build / "main"


def run(binary: Path, stdin: bytes = b"", timeout: float = 120.0) -> bytes:
    """Run a compiled program on stdin and return its stdout."""
    done = subprocess.run([str(binary)], input=stdin, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        raise RunError(f"{binary} exited with {done.returncode}:\n{stderr}")
    return done.stdout


def compile_and_run(
    source: str, stdin: bytes = b"", extra_flags: Sequence[str] = (), cc: str = DEFAULT_CC, timeout: float = 120.0
) -> bytes:
    """Compile source (with CFLAGS, extra_flags and -I the rendered runtime headers), run it on stdin, return stdout."""
    return run(compile_c(source, tuple(extra_flags), cc), stdin, timeout)
