"""Atomic output: a failed compile leaves the output folder exactly as it was."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import UserError


def write_atomically(out_dir: str | Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write `files` into a fresh sibling folder, then swap it in for `out_dir`."""
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
            # Keep what the user put there that we do not generate.
            for entry in out_dir.iterdir():
                if entry.name not in files and not (staging / entry.name).exists():
                    os.replace(entry, staging / entry.name)
            backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, backup / "old")
            os.replace(staging, out_dir)
            shutil.rmtree(backup)
        else:
            os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [out_dir / name for name in files]
