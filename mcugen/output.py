"""Atomic output: a failed compile leaves the output folder exactly as it was."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import UserError


def write_atomically(out_dir: str | Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write `files` into a fresh sibling folder, then swap it in for `out_dir`.

    Entries of an existing `out_dir` that are not generated (the user's own files) are
    carried over. If anything fails, `out_dir` is restored as it was and no temporary
    folder is left beside it.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir}: exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, content in files.items():
            if Path(name).name != name:
                raise ValueError(f"generated file name '{name}' must not contain a path")
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(staging / name, mode) as f:
                f.write(content)
        if out_dir.exists():
            _swap(staging, out_dir, set(files))
        else:
            os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [out_dir / name for name in files]


def _swap(staging: Path, out_dir: Path, generated: set[str]) -> None:
    """Move `out_dir` aside, carry the user's entries into `staging`, rename `staging` to `out_dir`.

    The user's files are only ever renamed, never copied or deleted: on failure they move
    back and the old folder returns to its place before `staging` is removed."""
    holder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    old = holder / "old"
    os.replace(out_dir, old)
    carried: list[str] = []
    try:
        for entry in sorted(old.iterdir()):
            if entry.name not in generated:
                os.replace(entry, staging / entry.name)
                carried.append(entry.name)
        os.replace(staging, out_dir)
    except BaseException:
        for name in carried:
            os.replace(staging / name, old / name)
        os.replace(old, out_dir)
        shutil.rmtree(holder)
        raise
    shutil.rmtree(holder)
