"""A bounded fuzz corpus in CI: 1,200 mutated models (scripts/fuzz.py), each must
compile or be refused with a UserError; any other exception is a crash. Longer runs:
`python3 scripts/fuzz.py --cases 20000 --jobs 4`."""
from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import fuzz  # noqa: E402

CORPUS = 1200


def test_mutated_models_compile_or_are_refused_never_crash() -> None:
    per_model = math.ceil(CORPUS / len(fuzz.seed_models()))
    outcomes = fuzz.run_corpus(per_model, jobs=2)
    counts = Counter(o.kind for o in outcomes)
    crashes = [o for o in outcomes if o.kind == "crashed"]
    report = "\n".join(f"python3 scripts/fuzz.py --replay {o.seed_model} {o.case}\n{o.detail}" for o in crashes[:3])
    assert not crashes, f"{len(crashes)} crash(es) in {len(outcomes)} cases; the first:\n{report}"
    assert len(outcomes) >= CORPUS
    # Both outcomes occur, so the mutations neither break everything nor change nothing.
    assert counts["compiled"] > 0.05 * len(outcomes) and counts["refused"] > 0.5 * len(outcomes), counts


def test_a_case_is_reproducible_from_its_number() -> None:
    data = fuzz.seed_models()["tiny_v1"]
    assert fuzz.mutated_case("tiny_v1", data, 7) == fuzz.mutated_case("tiny_v1", data, 7)
    assert fuzz.mutated_case("tiny_v1", data, 7) != fuzz.mutated_case("tiny_v1", data, 8)
