"""Seeing a run: `gstop history`, the progress lines of `gstop run` and `gstop report`, on a real
campaign in local mode (time-limit warnings, a unit that segfaults its worker until quarantined,
requeues) and on a fixture state written from docs/state-format.md alone. The report is opened in
headless Chromium (Debian's `chromium`): the page's DOM after load, its console, and a screenshot
whose pixels are checked (no stored picture)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import worker_command
from test_gstop import gstop

import gracefulstop

UNITS = 12


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    # Units of 0.3 s under a 2 s limit (warned 0.5 s before): each attempt stops at its deadline and
    # is requeued; u005 segfaults its worker every time, so three attempts fail and it is
    # quarantined; the last attempt finishes the rest (exit 65: done but for the quarantined one).
    state = tmp_path_factory.mktemp("campaign") / "state"
    result = gstop(
        "run",
        "--state",
        str(state),
        "--time-limit",
        "2s",
        "--warn-before",
        "0.5s",
        "--progress-every",
        "0.4s",
        "--max-idle-attempts",
        "0",
        "--",
        *worker_command(),
        WORKER_UNITS=str(UNITS),
        WORKER_SECONDS="0.3",
        WORKER_MODE="poison",
        WORKER_POISON="u005",
        timeout=180,
    )
    assert result.returncode == 65, result.stderr[-3000:]
    return state, result


def events(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "events.jsonl").read_text().splitlines()]


def test_history_has_one_row_per_attempt_matching_the_events(campaign):
    state, _ = campaign
    lines = events(state)
    starts = [e for e in lines if e["event"] == "attempt_start"]
    exits = [e for e in lines if e["event"] == "child_exit"]
    decisions = [e for e in lines if e["event"] == "decision"]
    result = gstop("history", "--json", "--state", str(state))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    history = json.loads(result.stdout)
    rows = history["attempts"]
    assert history["skipped_lines"] == 0
    assert len(rows) == len(starts) == len(exits) == len(decisions) >= 4, (len(rows), len(starts), len(exits))
    for row, start, end, decision in zip(rows, starts, exits, decisions):
        assert (row["job"], row["node"], row["restart"]) == (start["job"], 0, start["restart"]) == (end["job"], 0, end["restart"])
        assert row["start"] == start["time"] and row["end"] == end["time"]
        assert row["duration"] == pytest.approx(end["time"] - start["time"], abs=0.002)
        assert (row["exit"], row["marked"], row["quarantined"], row["cause"]) == (end["exit"], end["marked"], end["quarantined"], end["cause"])
        assert (row["decision"], row["decision_exit"]) == (decision["action"], decision["exit"])
    outcomes = [row["outcome"] for row in rows]
    assert outcomes.count("failed") == 3 and outcomes[-1] == "done" and "warning" in outcomes, outcomes
    assert sum(row["marked"] for row in rows) == UNITS - 1 and sum(row["quarantined"] for row in rows) == 1
    table = gstop("history", "--state", str(state)).stdout.splitlines()
    assert len(table) == len(rows) + 1 and table[0].split()[:3] == ["job", "node", "restart"]
    # --last N: the last N attempts to start, the same rows, read from the log's end.
    last = json.loads(gstop("history", "--last", "2", "--json", "--state", str(state)).stdout)["attempts"]
    assert last == rows[-2:]
    refused = gstop("history", "--last", "0", "--state", str(state))
    assert refused.returncode == 64 and "--last takes a whole number from 1" in refused.stderr
    # A line cut short by a kill is skipped, with a note; the rows stay.
    torn = state.parent / "torn"
    shutil.copytree(state, torn)
    with open(torn / "events.jsonl", "a") as log:
        log.write('{"time": 1, "event": "child_ex')
    again = gstop("history", "--json", "--state", str(torn))
    assert again.returncode == 0 and json.loads(again.stdout)["attempts"] == rows and json.loads(again.stdout)["skipped_lines"] == 1
    assert "1 line of events.jsonl did not parse" in again.stderr


def marker_end_times(state: Path) -> list[float]:
    ends = []
    for marker in (state / "done" / "0").iterdir():
        content = marker.read_bytes()
        if b"\0" in content:
            ends.append(json.loads(content.split(b"\0", 1)[1])["ended"])
    return sorted(ends)


def test_progress_lines_come_at_the_interval_and_say_what_the_state_held(campaign):
    state, result = campaign
    # From where gstop's line starts: the command shares the output, and a line of its own may
    # lack its newline when gstop writes (under load, seen in the quick tier).
    printed = [line[line.index("gstop: progress: ") :] for line in result.stderr.splitlines() if "gstop: progress: " in line]
    recorded = [e for e in events(state) if e["event"] == "progress"]
    assert len(printed) == len(recorded) >= 6, (len(printed), len(recorded))
    ends = marker_end_times(state)
    for line, event in zip(printed, recorded):
        assert line.startswith(f"gstop: progress: node 0: {event['done']} of {UNITS} units done"), (line, event)
        # What the share's directory held at that moment: the units whose marker had ended by then
        # (a marker's time is taken just before its file is created, hence the 0.1 s).
        assert sum(1 for end in ends if end <= event["time"] - 0.1) <= event["done"] <= sum(1 for end in ends if end <= event["time"])
        assert ("quarantined" in line) == (event["quarantined"] > 0)
    # At the interval: within each attempt, lines 0.4 s apart.
    starts = [e["time"] for e in events(state) if e["event"] == "attempt_start"]
    for first, second in zip(recorded, recorded[1:]):
        if not any(first["time"] < start < second["time"] for start in starts):
            assert second["time"] - first["time"] == pytest.approx(0.4, abs=0.15)
    assert any("units/h in this attempt" in line and "done at " in line for line in printed), printed


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: ./scripts/test installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (./scripts/test installs it)")
    return found


def open_in_chromium(page: Path, screenshot: Path) -> tuple[str, str]:
    """The page's DOM after load and Chromium's log (console messages included), and a screenshot."""
    flags = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={screenshot.parent / 'chromium-profile'}",
    ]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-3000:]
    shot = subprocess.run(
        [*flags, "--window-size=1200,1800", f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-3000:]
    return dom.stdout, dom.stderr + shot.stderr


def png_pixels(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """A PNG's RGB pixels (8-bit RGB or RGBA, not interlaced: what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunk = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    pixels = [tuple(row[x * channels : x * channels + 3]) for row in rows for x in range(width)]
    return width, height, pixels


def check_page(state: Path, page: Path, tmp_path: Path) -> str:
    dom, log = open_in_chromium(page, tmp_path / "shot.png")
    assert "CONSOLE" not in log and "Uncaught" not in log, [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    status = json.loads(gstop("status", "--json", "--state", str(state)).stdout)
    for element, value in (
        ("units", status["units"]),
        ("done", status["done"]),
        ("remaining", status["remaining"]),
        ("quarantined", len(status["quarantined"])),
    ):
        assert re.search(rf'id="{element}">{value}<', dom), (element, value)
    history = json.loads(gstop("history", "--json", "--state", str(state)).stdout)["attempts"]
    bars = re.findall(r'<rect class="attempt (\w+)"', dom)
    assert bars == [row["outcome"] for row in history], (bars, [row["outcome"] for row in history])
    assert re.search(rf'id="attempts">{len(history)}<', dom)
    # The screenshot is a page, not a blank: many colours, and the bars' own among them.
    width, height, pixels = png_pixels(tmp_path / "shot.png")
    assert (width, height) == (1200, 1800)
    white = sum(1 for p in pixels if p == (255, 255, 255))
    assert white < 0.97 * len(pixels), white / len(pixels)
    colours = {"done": (0x3A, 0xA3, 0x7A), "warning": (0x2A, 0x6F, 0xDB), "failed": (0xD4, 0x47, 0x6B), "running": (0x8F, 0xB3, 0xEE)}
    present = set(pixels)
    for outcome in set(bars):
        if outcome in colours:
            assert colours[outcome] in present, outcome
    return dom


def test_the_report_opens_in_chromium_and_shows_the_campaign(campaign, tmp_path):
    state, _ = campaign
    page = tmp_path / "report.html"
    result = gstop("report", "--state", str(state), "--out", str(page))
    assert result.returncode == 0 and result.stdout.startswith(f"wrote {page}:"), result.stderr
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    dom = check_page(state, page, tmp_path)
    assert 'id="quarantine"' in dom and "u005" in dom and f"gstop release --state {state} u005" in dom
    assert 'id="unit-times"' in dom and 'id="slowest"' in dom and 'id="progress"' in dom


def test_the_report_of_a_state_written_from_the_format_alone(fixture_state, tmp_path):
    state = fixture_state("timed-quarantine")
    page = tmp_path / "report.html"
    result = gstop("report", "--state", str(state), "--out", str(page))
    assert result.returncode == 0, result.stderr
    dom = check_page(state, page, tmp_path)
    assert re.findall(r'<rect class="attempt (\w+)"', dom) == ["warning", "running", "failed", "done"]
    assert "1 line of events.jsonl did not parse" in dom and "t6" in dom and "restart 2 on n9" in dom


def test_the_timeline_of_a_long_history_draws_the_newest_attempts_and_says_so(tmp_path):
    # 6,000 attempts of 60 array tasks (a big array after many requeues): the page draws the
    # newest 5,000 as bars and says how many there are; gstop history lists every one.
    state = tmp_path / "state"
    gracefulstop.create(state, ["u0", "u1"], nodes=1)
    with open(state / "events.jsonl", "w") as log:
        for index in range(6000):
            common = {"job": f"5_{index % 60}", "node": 0, "host": "h"}
            log.write(json.dumps({"time": 1.7e9 + index * 10, "event": "attempt_start", **common, "restart": index // 60}) + "\n")
            exit_line = {"time": 1.7e9 + index * 10 + 5, "event": "child_exit", **common, "restart": index // 60, "exit": 0, "marked": 0}
            log.write(json.dumps(exit_line) + "\n")
            log.write(json.dumps({"time": 1.7e9 + index * 10 + 6, "event": "decision", **common, "action": "requeue", "exit": 0}) + "\n")
    page = tmp_path / "report.html"
    result = gstop("report", "--out", str(page), "--state", str(state))
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert "The last 5000 of 6000 attempts" in html
    bars = re.findall(r'<rect class="attempt [a-z]+"[^>]*data-restart="(\d+)"', html)
    assert len(bars) == 5000 and min(map(int, bars)) == 1000 // 60  # the oldest drawn: attempt 1,000 (restart 16)
    history = json.loads(gstop("history", "--json", "--state", str(state)).stdout)["attempts"]
    assert len(history) == 6000
