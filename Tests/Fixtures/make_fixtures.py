#!/usr/bin/env python3
"""Writes the fixtures under Tests/Fixtures from docs/state-format.md alone: an independent,
pure-Python implementation of the format (no gracefulstop import), so that the Swift and the Python
test suites both check the library against the documented format rather than against itself.

Run it after changing the format; commit its output. Each state directory has an expected.json that
both suites assert.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEPT = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def marker_stem(unit: str) -> str:
    """docs/state-format.md, "Marker file names"."""
    raw = unit.encode("utf-8")
    out = []
    for i, byte in enumerate(raw):
        if byte in KEPT and not (i == 0 and byte == ord(".")):
            out.append(chr(byte))
        else:
            out.append("%{:02X}".format(byte))
    stem = "".join(out)
    if len(stem) + len(".done") <= 255:
        return stem
    cut = 128
    if stem[cut - 1] == "%":
        cut -= 1
    elif stem[cut - 2] == "%":
        cut -= 2
    return stem[:cut] + "+" + hashlib.sha256(raw).hexdigest()


def marker_file(unit: str) -> str:
    return marker_stem(unit) + ".done"


def owner(index: int, count: int, nodes: int, rule: str) -> int:
    """docs/state-format.md, "Partition"."""
    if rule == "round-robin":
        return index % nodes
    q, r = divmod(count, nodes)
    large = r * (q + 1)
    return index // (q + 1) if index < large else r + (index - large) // q


def units_sha256(units: list[str]) -> str:
    """docs/state-format.md, "Version 2": SHA-256 over every name followed by one NUL byte."""
    digest = hashlib.sha256()
    for unit in units:
        digest.update(unit.encode("utf-8") + b"\0")
    return digest.hexdigest()


def write_manifest(root: Path, units: list[str], nodes: int, rule: str, legacy: str | None, version: int) -> None:
    if version == 1:
        manifest = {"format": "gracefulstop-state", "version": 1, "nodes": nodes, "partition": rule,
                    "legacy_done_dir": legacy, "unit_count": len(units), "units": units}
    else:  # version 2: the names go to units/<units_sha256>/<node>.json, the manifest has their hash
        sha = units_sha256(units)
        for node in range(nodes):
            owned = [u for i, u in enumerate(units) if owner(i, len(units), nodes, rule) == node]
            if not owned:
                continue  # a node that owns no unit has no shard
            shard = {"format": "gracefulstop-units", "node": node, "unit_count": len(owned), "units_sha256": sha,
                     "units": owned}
            (root / "units" / sha).mkdir(parents=True, exist_ok=True)
            (root / "units" / sha / f"{node}.json").write_text(json.dumps(shard, ensure_ascii=False) + "\n", encoding="utf-8")
        manifest = {"format": "gracefulstop-state", "version": 2, "nodes": nodes, "partition": rule,
                    "legacy_done_dir": legacy, "unit_count": len(units), "units_sha256": sha}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def make_state(name: str, units: list[str], nodes: int, rule: str, done: list[str], *,
               legacy: str | None = None, legacy_done: list[str] = (), stale_stop: bool = False,
               run_done: bool = False, strays: list[str] = (), version: int = 2,
               timings: dict | None = None, quarantined: dict | None = None, begun: list = (),
               claims: list = (), taken: list = (), attempts: list = ()) -> None:
    """timings: unit -> (started, ended) written into its marker after a NUL (docs/state-format.md,
    "The timing record"); quarantined: unit -> restarts of the attempts that condemned it; begun:
    (unit, restart) begin records (the release before's names) of a host that is not this one;
    claims: (unit, generation, how) claims of host n9, job 77 ("live", "released", "abandoned");
    taken: (unit, worker) units of another share done by the worker of share `worker`;
    attempts: dicts of gstop's attempts (job, node, restart, start, end, cause, exit, marked,
    quarantined, decision, decision_exit; end None: still running) written to events.jsonl as
    docs/state-format.md describes it, followed by a line cut short by a kill."""
    timings = timings or {}
    quarantined = quarantined or {}
    root = HERE / "states" / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "done").mkdir(parents=True)
    write_manifest(root, units, nodes, rule, legacy, version)
    for unit in done:  # docs/state-format.md: done/<owning node>/<marker>
        node = owner(units.index(unit), len(units), nodes, rule)
        (root / "done" / str(node)).mkdir(exist_ok=True)
        content = unit.encode("utf-8")
        if unit in timings:
            started, ended = timings[unit]
            content += b"\0" + json.dumps({"started": started, "ended": ended, "host": "n9", "node": node, "restart": 0}).encode()
        (root / "done" / str(node) / marker_file(unit)).write_bytes(content)
    places = {}
    for index, unit in enumerate(units):
        node = owner(index, len(units), nodes, rule)
        places[unit] = (node, sum(1 for i in range(index) if owner(i, len(units), nodes, rule) == node))
    # Begin records of host tag 00000000 (not a host of the tests), pid 1 (never over by a dead pid).
    for serial, (unit, restart) in enumerate(list(begun) + [(u, r) for u, rs in quarantined.items() for r in rs]):
        node, place = places[unit]
        (root / "begun" / str(node)).mkdir(parents=True, exist_ok=True)
        (root / "begun" / str(node) / f"{place}.{restart}.1.00000000.{serial}").write_text(json.dumps(
            {"unit": unit, "node": node, "host": "n9", "pid": 1, "restart": restart, "job": None, "started": 1700000000.0 + restart}) + "\n")
    for unit, generation, how in claims:  # docs/state-format.md, "begun/ — claims of attempts at units"
        node, place = places[unit]
        (root / "begun" / str(node)).mkdir(parents=True, exist_ok=True)
        record = {"unit": unit, "node": node, "worker": 1, "host": "n9", "pid": 1, "restart": 0, "job": "77",
                  "started": 1700000000.0 + generation}
        if how != "live":
            record[how] = True
        (root / "begun" / str(node) / f"{place}.{generation}").write_text(json.dumps(record) + "\n")
    for unit, worker in taken:  # docs/state-format.md, "taken/ — units done by others"
        node, place = places[unit]
        (root / "taken" / str(node)).mkdir(parents=True, exist_ok=True)
        (root / "taken" / str(node) / f"{place}.{worker}").write_text(json.dumps(
            {"unit": unit, "node": node, "worker": worker, "host": "n9", "pid": 1, "restart": 0, "job": "77", "started": 1700000000.0}) + "\n")
    for unit, restarts in quarantined.items():
        node, place = places[unit]
        (root / "quarantine" / str(node)).mkdir(parents=True, exist_ok=True)
        (root / "quarantine" / str(node) / f"{place}.json").write_text(json.dumps(
            {"unit": unit, "node": node, "attempts": [{"unit": unit, "node": node, "host": "n9", "pid": 1, "restart": r} for r in restarts],
             "max_unit_attempts": len(restarts), "quarantined_at": 1700000100.0, "by": "n9:1"}) + "\n")
    for stray in strays:  # files a scan must ignore: temporaries, foreign files
        (root / "done" / "0").mkdir(exist_ok=True)
        (root / "done" / "0" / stray).write_bytes(b"")
    if legacy is not None:
        (root / legacy).mkdir(parents=True, exist_ok=True)
        for unit in legacy_done:
            (root / legacy / (unit + ".done")).write_bytes(b"")
    if stale_stop:  # a request from an attempt long ago: must not stop anybody now
        (root / "stop.request").write_text(
            json.dumps({"requested_at": 1000000000.0, "by": "old-node:123", "reason": "signal SIGUSR1 to gstop"}) + "\n")
    if attempts:  # docs/state-format.md, "events.jsonl"
        lines = []
        for a in attempts:
            common = {"job": a["job"], "node": a["node"], "host": "n9", "pid": 100 + a["restart"]}
            lines.append({"time": a["start"], "event": "attempt_start", **common, "restart": a["restart"], "command": ["python3", "solve.py"],
                          "deadline": None, "attempt_start": str(a["start"])})
            if a["end"] is None:
                continue
            lines.append({"time": a["end"], "event": "child_exit", **common, "restart": a["restart"], "exit": a["exit"], "cause": a["cause"],
                          "route": None, "budget": "restart", "hard_stop": False, "asked_to_stop": a["cause"] != "ended",
                          "marked": a["marked"], "remaining": 0, "quarantined": a["quarantined"]})
            lines.append({"time": a["end"] + 0.5, "event": "decision", **common, "action": a["decision"], "exit": a["decision_exit"],
                          "reasons": ["fixture"]})
        text = "".join(json.dumps(line) + "\n" for line in lines) + '{"time": 1700009999.0, "event": "child_ex'
        (root / "events.jsonl").write_text(text)
    if run_done:
        (root / "run.done").write_text(json.dumps({"units": len(units), "completed_at": 1700000000.0, "by": "n1:1"}) + "\n")
    all_done = set(done) | set(legacy_done)
    remaining = {str(n): [u for i, u in enumerate(units) if owner(i, len(units), nodes, rule) == n and u not in all_done
                          and u not in quarantined] for n in range(nodes)}
    totals = {str(n): sum(1 for i in range(len(units)) if owner(i, len(units), nodes, rule) == n) for n in range(nodes)}
    expected = {"version": version, "nodes": nodes, "partition": rule, "unit_count": len(units), "done_count": len(all_done),
                "remaining": remaining, "totals": totals, "run_done": len(all_done) == len(units),
                "should_stop": False,
                "quarantined": {str(n): [u for u in quarantined if places[u][0] == n] for n in range(nodes)}}
    if claims or taken:  # balancing: units others did, and units a live attempt of another job holds
        expected["taken_by"] = {str(n): {str(w): sum(1 for u, wk in taken if places[u][0] == n and wk == w) for w in sorted({w for _, w in taken})
                                         if any(places[u][0] == n and wk == w for u, wk in taken)} for n in range(nodes)}
        expected["held"] = {str(n): sorted(u for u, _, how in claims if how == "live" and places[u][0] == n) for n in range(nodes)}
    if attempts:  # what gstop history must say: one row per attempt, the torn line skipped
        expected["history"] = [{key: a[key] for key in ("job", "node", "restart", "start", "end", "exit", "marked", "quarantined")}
                               | {"decision": a["decision"] if a["end"] is not None else None, "outcome": a["outcome"]}
                               for a in sorted(attempts, key=lambda a: a["start"])]  # oldest first
        expected["history_skipped_lines"] = 1
    if timings:  # what the estimate must say (nearest-rank percentiles of the recorded durations)
        def figures(durations):
            ordered = sorted(durations)
            rank = lambda f: ordered[max(0, min(len(ordered) - 1, -(-int(f * len(ordered) * 1000) // 1000) - 1))]
            return {"p50": rank(0.5), "p90": rank(0.9), "mean": sum(ordered) / len(ordered)} if ordered else None
        per_node = {n: [e - b for u, (b, e) in timings.items() if places[u][0] == n] for n in range(nodes)}
        expected["unit_seconds"] = figures([d for ds in per_node.values() for d in ds])
        expected["node_unit_seconds"] = {str(n): figures(ds) for n, ds in per_node.items()}
        run_mean = expected["unit_seconds"]["mean"]
        # Balancing: one worker per node shares all that is left, never less than the longest unit.
        means = [(figures(per_node[n]) or {"mean": run_mean})["mean"] for n in range(nodes)]
        work = sum(len(remaining[str(n)]) * means[n] for n in range(nodes))
        expected["eta_seconds"] = max(work / nodes, max(m for n, m in enumerate(means) if remaining[str(n)]))
    (root / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not any((root / "done").iterdir()):
        (root / "done" / ".keep").write_bytes(b"")  # git keeps no empty directory; scans skip dot files


ODD_NAMES = ["a/b/c", "with space", "..", ".hidden", "%41", "new\nline", "tab\tquote\"back\\slash", "ünïcödé ✓",
             "plus+sign", "x" * 1000, "é" * 200, "dots...", "-", "日本語の名前"]


def main() -> None:
    names = {name: marker_file(name) for name in ODD_NAMES + ["eq_1", "A-Z_0.9", "y" * 250, "y" * 251]}
    (HERE / "marker_names.json").write_text(json.dumps(names, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    equations = [f"eq_{i}" for i in range(1, 11)]
    shutil.rmtree(HERE / "states", ignore_errors=True)
    # Every state twice: as this release writes it (version 2) and as the last wrote it (version 1,
    # "v1-<name>"), which must still open and continue.
    for version, prefix in ((2, ""), (1, "v1-")):
        make_state(prefix + "round-robin-3", equations, 3, "round-robin", done=["eq_1", "eq_5", "eq_9", "eq_10"],
                   stale_stop=True, strays=[".tmp.1234.abcdef.1", "README", "eq_2.done.partial", "eq_2.DONE"],
                   version=version)
        make_state(prefix + "block-odd-names", ODD_NAMES, 4, "block",
                   done=["a/b/c", "..", "x" * 1000, "new\nline", "日本語の名前"], version=version)
        make_state(prefix + "seed-layout", equations, 2, "block", done=["eq_7"], legacy="logs/completed",
                   legacy_done=["eq_1", "eq_2", "eq_3", "eq_9"], version=version)
        make_state(prefix + "complete", ["u1", "u2", "u3"], 2, "round-robin", done=["u1", "u2", "u3"], run_done=True,
                   version=version)
        make_state(prefix + "more-nodes-than-units", ["only", "two"], 5, "block", done=["two"], version=version)
    # Per-unit records (issue 14): done-markers with timing records (and one without), a quarantined
    # unit with its three begin records, and a begin record of an attempt that may still be running.
    make_state("timed-quarantine", [f"t{i}" for i in range(10)], 2, "round-robin",
               done=["t0", "t2", "t4", "t1", "t3", "t5"],
               timings={"t0": (1700000000.0, 1700000002.0), "t2": (1700000010.0, 1700000014.0), "t4": (1700000020.0, 1700000026.0),
                        "t1": (1700000000.5, 1700000001.5), "t3": (1700000011.0, 1700000014.0)},
               quarantined={"t6": [0, 1, 2]}, begun=[("t8", 0)],
               attempts=[
                   {"job": "4242_1", "node": 0, "restart": 0, "start": 1699999990.0, "end": 1700000015.0, "exit": 0, "marked": 4, "quarantined": 0,
                    "cause": "stopped by SIGUSR1 (the time-limit warning)", "decision": "requeue", "decision_exit": 0, "outcome": "warning"},
                   {"job": "4242_1", "node": 0, "restart": 1, "start": 1700000019.0, "end": 1700000023.0, "exit": 139, "marked": 1, "quarantined": 0,
                    "cause": "the command ended on its own (no stop reached gstop or was recorded by the command's processes)",
                    "decision": "requeue", "decision_exit": 0, "outcome": "failed"},
                   {"job": "4242_1", "node": 0, "restart": 2, "start": 1700000024.0, "end": 1700000028.0, "exit": 0, "marked": 1, "quarantined": 1,
                    "cause": "the command ended on its own (no stop reached gstop or was recorded by the command's processes)",
                    "decision": "finish", "decision_exit": 65, "outcome": "done"},
                   {"job": "4242_2", "node": 1, "restart": 0, "start": 1700000005.0, "end": None, "exit": None, "marked": None, "quarantined": None,
                    "cause": None, "decision": None, "decision_exit": None, "outcome": "running"},
               ])
    # Balancing (issue 20): units of shares 1 and 2 done by the workers of shares 0 and 3 (taken/),
    # a unit held by a live claim of another job (b5), and one whose two claims were given up (b8:
    # released for a stop, then abandoned after an error), so that any worker may take it.
    make_state("balanced", [f"b{i}" for i in range(12)], 3, "round-robin",
               done=["b0", "b3", "b1", "b4", "b7", "b10", "b2", "b11"],
               taken=[("b7", 0), ("b10", 0), ("b11", 3)], claims=[("b5", 1, "live"), ("b8", 1, "released"), ("b8", 2, "abandoned")])
    bad_shards()

    bad = HERE / "bad-manifests"
    shutil.rmtree(bad, ignore_errors=True)
    bad.mkdir()
    good = {"format": "gracefulstop-state", "version": 1, "nodes": 2, "partition": "round-robin",
            "legacy_done_dir": None, "unit_count": 2, "units": ["a", "b"]}
    v2 = {**{k: v for k, v in good.items() if k != "units"}, "version": 2, "units_sha256": units_sha256(["a", "b"])}
    cases = {
        "truncated": (json.dumps(good)[:60], 4, "truncated"),
        "not-json": ("hello, world\n", 4, "not valid"),
        "empty": ("", 4, "empty"),
        "wrong-version": (json.dumps({**good, "version": 7}), 4, "format version 7"),
        # Version 2 manifests: the hash names a directory, so it must be a hash and nothing else.
        "v2-hash-is-a-path": (json.dumps({**v2, "units_sha256": "../../../etc"}), 4, "64 lowercase hex digits"),
        "v2-no-hash": (json.dumps({k: v for k, v in v2.items() if k != "units_sha256"}), 4, "no \"units_sha256\" field"),
        "v2-no-count": (json.dumps({k: v for k, v in v2.items() if k != "unit_count"}), 4, "no \"unit_count\" field"),
        "v2-zero-units": (json.dumps({**v2, "unit_count": 0}), 4, "at least one unit"),
        "wrong-format": (json.dumps({**good, "format": "something-else"}), 4, "not a gracefulstop manifest"),
        "duplicate-units": (json.dumps({**good, "units": ["a", "b", "a"], "unit_count": 3}), 4, "appears twice"),
        "zero-nodes": (json.dumps({**good, "nodes": 0}), 4, "at least 1"),
        "huge-node-count": (json.dumps({**good, "nodes": 10**12}), 4, "above the limit"),
        "unknown-partition": (json.dumps({**good, "partition": "random"}), 4, "unknown partition rule"),
        "empty-unit": (json.dumps({**good, "units": ["a", ""]}), 4, "must not be empty"),
        "nul-in-unit": (json.dumps({**good, "units": ["a", "b\u0000c"]}), 4, "NUL"),
        "count-mismatch": (json.dumps({**good, "unit_count": 3}), 4, "declares 3 units but lists 2"),
        "no-units": (json.dumps({k: v for k, v in good.items() if k != "units"}), 4, "no \"units\" field"),
        "zero-units": (json.dumps({**good, "units": [], "unit_count": 0}), 4, "at least one unit"),
        "trailing-garbage": (json.dumps(good) + " {}", 4, "after the end"),
        # An unknown field nested 10,000 deep: refused at 64 levels instead of overflowing the stack.
        "deeply-nested": (json.dumps(good)[:-1] + ', "extra": ' + "[" * 10000 + "]" * 10000 + "}", 4, "nested more than 64 deep"),
    }
    expected = {}
    for name, (text, status, message) in cases.items():
        (bad / name).mkdir()
        (bad / name / "manifest.json").write_text(text, encoding="utf-8")
        expected[name] = {"status": status, "message": message}
    (bad / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def bad_shards() -> None:
    """Version-2 states whose node 1 shard is broken: node 0 still opens and works (a node reads
    only its own shard); anything that needs node 1's names fails with a message naming the file."""
    root = HERE / "bad-shards"
    shutil.rmtree(root, ignore_errors=True)
    units = [f"u{i}" for i in range(6)]  # round-robin over 2 nodes: node 1 owns u1, u3, u5
    sha = units_sha256(units)
    good = {"format": "gracefulstop-units", "node": 1, "unit_count": 3, "units_sha256": sha, "units": ["u1", "u3", "u5"]}
    cases = {
        "missing": (None, "does not exist"),
        "truncated": (json.dumps(good)[:50], "truncated"),
        "empty": ("", "is empty"),
        "not-a-shard": (json.dumps({**good, "format": "something-else"}), "not a gracefulstop unit shard"),
        "wrong-node": (json.dumps({**good, "node": 0}), "holds the units of node 0, not of node 1"),
        "other-run": (json.dumps({**good, "units_sha256": "0" * 64}), "belongs to another unit list"),
        "too-few": (json.dumps({**good, "units": ["u1", "u3"], "unit_count": 2}), "lists 2 units, but the manifest's partition gives node 1 3"),
        "count-mismatch": (json.dumps({**good, "unit_count": 4}), "declares 4 units but lists 3"),
        "duplicate": (json.dumps({**good, "units": ["u1", "u3", "u1"]}), "appears twice"),
        "bad-name": (json.dumps({**good, "units": ["u1", "u3", ""]}), "must not be empty"),
        "deeply-nested": (json.dumps(good)[:-1] + ', "extra": ' + "[" * 10000 + "]" * 10000 + "}", "nested more than 64 deep"),
    }
    expected = {}
    for name, (text, message) in cases.items():
        state = root / name
        (state / "done" / "0").mkdir(parents=True)
        (state / "done" / "0" / "u0.done").write_bytes(b"u0")
        write_manifest(state, units, 2, "round-robin", None, 2)
        shard = state / "units" / sha / "1.json"
        if text is None:
            shard.unlink()
        else:
            shard.write_text(text, encoding="utf-8")
        expected[name] = {"status": 4, "message": message, "file": f"units/{sha}/1.json"}
    (root / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def bad_input() -> None:
    """The bad-input corpus (issue 6): unit names, as hex so that NUL and invalid UTF-8 fit, each with
    the expected outcome ("ok", or a piece of the error message), and gstop command lines with the
    expected exit code and message."""
    corpus = HERE / "bad-input"
    corpus.mkdir(exist_ok=True)
    def name(raw: bytes, why: str, expect: str) -> dict:
        return {"hex": raw.hex(), "why": why, "expect": expect}
    names = [
        name(b"", "empty", "must not be empty"),
        name(b"a\0b", "NUL inside", "contains a NUL byte at byte 1"),
        name(b"\0", "only NUL", "contains a NUL byte at byte 0"),
        name(b"a/b/c", "slashes", "ok"),
        name(b"..", "dot-dot", "ok"),
        name(b".", "dot", "ok"),
        name(b"../../etc/passwd", "path escape", "ok"),
        name(b"x" * 10240, "10 KB", "is 10240 bytes; the limit is 4096"),
        name(b"y" * 4096, "exactly the limit", "ok"),
        name(b"y" * 4097, "one byte over the limit", "the limit is 4096"),
        name(b"\xff\xfe", "invalid UTF-8", "not valid UTF-8"),
        name(b"\xc3", "truncated UTF-8 sequence", "not valid UTF-8"),
        name(b"\xed\xa0\x80", "UTF-8 of a surrogate", "not valid UTF-8"),
        name(b"\xc0\xaf", "overlong slash", "not valid UTF-8"),
        name(b"line\nbreak", "newline", "ok"),
        name(b"tab\tand\rreturn", "control characters", "ok"),
        name(b" spaced ", "spaces", "ok"),
        name("ünïcödé ✓ 日本".encode(), "non-ASCII", "ok"),
        name(b"%2F", "looks encoded", "ok"),
        name(b"a+b", "plus (the hash separator)", "ok"),
        name(b".hidden", "leading dot", "ok"),
        name(b"eq.done", "ends in .done", "ok"),
    ]
    (corpus / "unit-names.json").write_text(json.dumps(names, indent=1) + "\n")
    cli = [
        (["run", "--bogus"], 64, "unknown option --bogus for `gstop run`"),
        (["run", "-x"], 64, "unknown option -x"),
        (["run", "--state", "/tmp/x", "--grace"], 64, "--grace needs a value"),
        (["run", "--state", "/tmp/x", "--grace", "soon", "--", "true"], 64, "'soon' is not a duration"),
        (["run", "--state", "/tmp/x", "--grace", "-5s", "--", "true"], 64, "'-5s' is not a duration"),
        (["run", "--state", "/tmp/x", "--kill-after", "5x", "--", "true"], 64, "'5x' is not a duration"),
        (["run", "--state", "/tmp/x", "--time-limit", "1:2:3:4", "--", "true"], 64, "is not a duration"),
        (["run", "--state", "/tmp/x", "--requeue", "sometimes", "--", "true"], 64, "--requeue takes one of task, array, never"),
        (["run", "--state", "/tmp/x", "--remaining", "all", "--", "true"], 64, "--remaining takes one of auto, this, any"),
        (["run", "--state", "/tmp/x", "--signals", "USR9", "--", "true"], 64, "unknown signal 'USR9'"),
        (["run", "--state", "/tmp/x", "--child-signal", "USR1,TERM", "--", "true"], 64, "--child-signal takes one signal"),
        (["run", "--state", "/tmp/x", "--max-restarts", "-1", "--", "true"], 64, "whole number from 0"),
        (["run", "--state", "/tmp/x", "--max-restarts", "many", "--", "true"], 64, "whole number from 0"),
        (["run", "--state", "/tmp/x"], 64, "no command to run"),
        (["run", "--state", "/tmp/x", "python", "x.py"], 64, "put the command after --"),
        (["run", "--state", "/tmp/x", "--", "/nonexistent/cmd"], 64, "command not found: /nonexistent/cmd"),
        (["run", "--state", "/tmp/x", "--warn-before", "5m", "--time-limit", "1m", "--", "true"], 64, "must be shorter"),
        (["run", "--state", "/tmp/x", "--warn-before", "5m", "--", "true"], 64, "--warn-before needs --time-limit"),
        (["run", "--state=", "--", "true"], 64, "--state needs a directory (the path is empty)"),
        (["init", "--state", "/tmp/x", "--nodes", "2"], 64, "--units FILE is required"),
        (["init", "--state", "/tmp/x", "--units", "/nonexistent", "--nodes", "2"], 74, "/nonexistent"),
        (["init", "--state", "/tmp/x", "--units", "/dev/null", "--nodes", "0"], 64, "whole number from 1"),
        (["init", "--state", "/tmp/x", "--units", "/dev/null", "--nodes", "2"], 64, "at least one unit"),
        (["remaining", "--state", "/nonexistent/state"], 74, "/nonexistent/state does not exist"),
        (["remaining", "--state", "/tmp", "--node", "x"], 64, "whole number"),
        (["mark-done", "--state", "/tmp"], 64, "name the units to mark"),
        (["status"], 64, "no state directory: pass --state DIR or set GRACEFULSTOP_STATE_DIR"),
        (["status", "--json=yes"], 64, "--json takes no value"),
        (["frobnicate"], 64, "unknown command 'frobnicate'"),
        ([], 64, ""),
    ]
    (corpus / "cli.json").write_text(json.dumps([{"args": a, "exit": c, "message": m} for a, c, m in cli], indent=1) + "\n")


if __name__ == "__main__":
    main()
    bad_input()
