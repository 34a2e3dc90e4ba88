"""The committed fixtures (written from docs/state-format.md by an independent implementation)
read the same through the Python binding as through the Swift tests."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, expected

import gracefulstop

# Every state twice: version 2 (as this release writes it) and "v1-<name>" (as the last one did).
STATES = sorted(p.name for p in (FIXTURES / "states").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("name", STATES)
def test_fixture_state_reads_as_expected(fixture_state, name):
    path = fixture_state(name)
    want = expected(name)
    for node in range(want["nodes"]):
        with gracefulstop.open(path, node=node) as state:
            assert state.nodes == want["nodes"] and state.unit_count == want["unit_count"]
            assert state.remaining_units() == want["remaining"][str(node)]
            progress = state.progress()
            assert (progress.node, progress.total, progress.remaining) == (node, want["totals"][str(node)], len(want["remaining"][str(node)]))
            assert (progress.run_done, progress.run_total) == (want["done_count"], want["unit_count"])
    if "unit_seconds" in want:  # markers with timing records: the estimate and the quarantine
        with gracefulstop.open(path, node=0) as state:
            progress = state.progress()
            status = progress.status
            figures = lambda s: {k: s[k] for k in ("p50", "p90")}  # noqa: E731
            assert status["unit_seconds"] == {**figures(want["unit_seconds"]), "sampled": 5}
            for node in status["nodes"]:
                assert figures(node["unit_seconds"]) == figures(want["node_unit_seconds"][str(node["node"])])
                assert node["quarantined"] == len(want["quarantined"][str(node["node"])])
            assert status["eta_seconds"] == want["eta_seconds"] and progress.run_eta_seconds == want["eta_seconds"]
            assert progress.quarantined == [u for n in sorted(want["quarantined"]) for u in want["quarantined"][n]]
            assert [q["attempts"] for q in status["quarantined"]] == [3]
    if "taken_by" in want:  # balancing: who did each share's units
        with gracefulstop.open(path, node=0) as state:
            status = state.status()
            assert {str(n["node"]): n["taken_by"] for n in status["nodes"]} == want["taken_by"]
            assert status["taken"] == sum(sum(by.values()) for by in want["taken_by"].values())
    with gracefulstop.open(path, node=0) as state:
        state.set_check_interval(0)
        assert state.should_stop() is want["should_stop"]
        assert state.run_done() is want["run_done"]
    assert (path / "run.done").exists() is want["run_done"]


def test_a_worker_takes_over_what_the_independent_writers_claims_leave_free(fixture_state):
    # balanced: b5 is held by a live claim of another job (host n9, job 77); b8's two claims were
    # given up (released, then abandoned), so node 0's worker, once its own b6 and b9 are done,
    # takes b8 (the generation after them) and leaves b5 to its holder.
    path = fixture_state("balanced")
    want = expected("balanced")
    with gracefulstop.open(path, node=0) as state:
        worked = []
        for unit in state.work():
            state.mark_done(unit)
            worked.append(unit)
        assert worked == ["b6", "b9", "b8"]
        assert state.remaining_units(2) == want["held"]["2"] == ["b5"]
        assert state.begin("b5") == "claimed"
    # b8's claim (generation 3) went to taken/ when marked; its given-up claims were tidied by the
    # loop's next look at share 2 (the unit is done); b5's live claim stays.
    assert (path / "taken" / "2" / "2.0").exists()
    assert sorted(p.name for p in (path / "begun" / "2").iterdir()) == ["1.1"]


def test_marker_names_follow_the_documented_encoding():
    names = json.loads((FIXTURES / "marker_names.json").read_text(encoding="utf-8"))
    assert len(names) >= 15
    for unit, file_name in names.items():
        assert gracefulstop.marker_name(unit) == file_name, unit


def test_seed_layout_is_honoured_without_redoing_work(fixture_state):
    path = fixture_state("seed-layout")
    with gracefulstop.open(path, node=0) as state:
        # eq_1..eq_3 were finished by the old scripts (logs/completed/<eq>.done).
        assert state.is_done("eq_1") and state.is_done("eq_3")
        assert list(state.work(balance=False)) == ["eq_4", "eq_5"]  # its own share (balancing goes on to node 1's)
        state.mark_done("eq_2")  # already done the old way: nothing new is written
    assert not (path / "done" / "0" / "eq_2.done").exists()


BAD = json.loads((FIXTURES / "bad-manifests" / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_manifests_give_clear_errors(name):
    path = FIXTURES / "bad-manifests" / name
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(gracefulstop.BadStateError) as raised:
        gracefulstop.open(path, node=0)
    assert raised.value.status == BAD[name]["status"]
    assert BAD[name]["message"] in str(raised.value)
    assert str(path) in str(raised.value)
    assert (path / "manifest.json").read_bytes() == before


def test_both_format_versions_are_among_the_fixtures():
    versions = {expected(name)["version"] for name in STATES}
    assert versions == {1, 2} and len(STATES) >= 10


@pytest.mark.parametrize("name", [n for n in STATES if n.startswith("v1-")])
def test_a_version_1_state_continues_and_is_never_rewritten(fixture_state, name):
    path = fixture_state(name)
    manifest = (path / "manifest.json").read_bytes()
    want = expected(name)
    for node in range(want["nodes"]):
        with gracefulstop.open(path, node=node) as state:
            for unit in state.work():
                state.mark_done(unit)
            assert state.remaining_units() == []
    with gracefulstop.open(path, node=0) as state:
        assert state.run_done()
    assert (path / "run.done").exists()
    assert (path / "manifest.json").read_bytes() == manifest
    assert not (path / "units").exists()


SHARDS = json.loads((FIXTURES / "bad-shards" / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(SHARDS))
def test_a_broken_shard_leaves_other_nodes_working_and_is_named_when_needed(tmp_path, name):
    import shutil

    path = tmp_path / name
    shutil.copytree(FIXTURES / "bad-shards" / name, path)
    case = SHARDS[name]
    shard = path / case["file"]
    before = shard.read_bytes() if shard.exists() else None
    with gracefulstop.open(path, node=0) as state:  # node 0 reads its own shard only
        assert state.remaining_units() == ["u2", "u4"]
        state.mark_done("u4")
        assert state.remaining_units() == ["u2"]
        with pytest.raises(gracefulstop.BadStateError) as raised:
            state.progress()  # the run's totals need node 1's names
        assert raised.value.status == case["status"] and case["message"] in str(raised.value)
        assert str(shard.parent) in str(raised.value)
    with pytest.raises(gracefulstop.BadStateError) as raised, gracefulstop.open(path, node=1) as state:
        state.remaining_units()
    assert case["message"] in str(raised.value)
    assert (shard.read_bytes() if shard.exists() else None) == before


@pytest.mark.parametrize("name", [n for n in STATES if "history" in expected(n)])
def test_fixture_history_reads_as_expected(fixture_state, name):
    # events.jsonl written from docs/state-format.md: gstop history lists each attempt, skips the torn line.
    from test_gstop import gstop

    path = fixture_state(name)
    want = expected(name)
    result = gstop("history", "--json", "--state", str(path))
    assert result.returncode == 0, result.stderr
    history = json.loads(result.stdout)
    assert history["skipped_lines"] == want["history_skipped_lines"] and "did not parse" in result.stderr
    rows = [{key: row[key] for key in want["history"][0]} for row in history["attempts"]]
    assert rows == want["history"]
