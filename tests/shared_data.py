"""Where the shared models and inputs live, and a skip marker for when they do not."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "examples"


def shared(relative: str) -> Path:
    """Path of a file under ../shared; skips the test with the reason when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data set sits beside the repo as ../shared)")
    return path
