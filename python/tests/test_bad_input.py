"""The bad-input corpus (Tests/Fixtures/bad-input/): unit names through the Python API, and gstop
command lines, each with its expected outcome. Bad input never writes a marker."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import FIXTURES, GSTOP, child_environment, marker_files

import gracefulstop

NAMES = json.loads((FIXTURES / "bad-input" / "unit-names.json").read_text())
CLI = json.loads((FIXTURES / "bad-input" / "cli.json").read_text())


@pytest.mark.parametrize("case", NAMES, ids=[c["why"] for c in NAMES])
def test_unit_names(tmp_path, case):
    name = bytes.fromhex(case["hex"])
    if case["expect"] == "ok":
        state = gracefulstop.create(tmp_path, [name], nodes=1)
        state.mark_done(name)
        assert state.is_done(name) and state.remaining_units() == []
        assert gracefulstop.open(tmp_path).remaining_units() == []
        return
    # As a unit of a new state: refused, and nothing is created.
    with pytest.raises(gracefulstop.InvalidArgumentError) as raised:
        gracefulstop.create(tmp_path / "new", [b"fine", name], nodes=1)
    assert case["expect"] in str(raised.value)
    assert not (tmp_path / "new" / "manifest.json").exists()
    # As a unit to mark in a good state: refused, and no marker is written.
    state = gracefulstop.create(tmp_path / "good", ["fine"], nodes=1)
    with pytest.raises(gracefulstop.InvalidArgumentError) as raised:
        state.mark_done(name)
    assert case["expect"] in str(raised.value)
    assert marker_files(tmp_path / "good") == []


@pytest.mark.parametrize("case", CLI, ids=[" ".join(c["args"]) or "(nothing)" for c in CLI])
def test_command_lines(case):
    result = subprocess.run([GSTOP, *case["args"]], env=child_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == case["exit"], result.stderr
    assert case["message"] in result.stderr
