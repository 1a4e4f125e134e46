"""CI runs the property tests on a fixed sequence of examples, so a landing never fails on a
case no earlier run drew; local runs keep exploring new ones (and hypothesis' database
replays any failure they find)."""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
