"""Output is atomic: a failure leaves the folder as it was; success keeps the user's other files."""
from __future__ import annotations

import pytest

from mcugen.output import write_atomically


def test_fresh_folder(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, {"a.c": "int a;\n", "b.h": b"x"})
    assert sorted(p.name for p in out.iterdir()) == ["a.c", "b.h"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_failure_leaves_existing_folder_unchanged(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, {"a.c": "old\n"})
    with pytest.raises(ValueError):
        write_atomically(out, {"a.c": "new\n", "../escape.c": "x"})
    assert (out / "a.c").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError):
        write_atomically(tmp_path / "out", {"sub/x.c": "x"})
    assert list(tmp_path.iterdir()) == []


def test_regenerate_replaces_generated_and_keeps_user_files(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, {"a.c": "old\n"})
    (out / "notes.txt").write_text("mine")
    write_atomically(out, {"a.c": "new\n"})
    assert (out / "a.c").read_text() == "new\n"
    assert (out / "notes.txt").read_text() == "mine"
