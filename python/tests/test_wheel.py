"""The release wheel (scripts/wheel) as the clusters users have meet it: tagged manylinux2014,
binaries that need nothing newer than glibc 2.17 and no C++ runtime, the library exporting only its
C API, and a real run in an older userland (Debian 11 "bullseye": glibc 2.31, Python 3.9, in a
chroot), both through Python and with gstop alone. Then the developer's routes: a wheel built from
the checkout or from the sdist is tagged with what its binaries need, as auditwheel judges it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPOSITORY

CI = os.environ.get("CI") == "true"
GLIBC_CEILING = (2, 17)
# What a manylinux2014 system has; the release binaries may need these and nothing else.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2"}
BULLSEYE_TIMEOUT = 900  # debootstrap on a fresh machine (~40 s) and a venv with pip inside


def need_tool(condition: bool, why: str) -> None:
    if not condition:
        if CI:
            pytest.fail(why)
        pytest.skip(why)


def ensure_module(module: str, requirement: str) -> None:
    """Installs a PyPI tool the test drives (auditwheel, build) into this environment when missing."""
    if importlib.util.find_spec(module) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement], check=True, timeout=300)


@pytest.fixture(scope="module")
def release_wheel(tmp_path_factory) -> Path:
    """The wheel ./scripts/test built with ./scripts/wheel (GRACEFULSTOP_RELEASE_WHEEL), else one built now."""
    given = os.environ.get("GRACEFULSTOP_RELEASE_WHEEL")
    if given:
        return Path(given)
    need_tool(
        shutil.which("swift") is not None and os.uname().machine == "x86_64",
        "building the release wheel needs the Swift toolchain on x86_64 (./scripts/wheel)",
    )
    out = tmp_path_factory.mktemp("release")
    result = subprocess.run([str(REPOSITORY / "scripts" / "wheel"), "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def unpacked(release_wheel, tmp_path_factory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(release_wheel) as wheel:
        wheel.extractall(where)
    return {"library": where / "gracefulstop" / "libgracefulstop.so", "gstop": where / "gracefulstop-0.1.0.data" / "data" / "bin" / "gstop"}


def auditwheel_verdict(wheel: Path) -> str:
    ensure_module("auditwheel", "auditwheel")
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    verdict = re.search(r'is consistent with the following platform tag: "([^"]+)"', text)
    assert verdict, text
    return verdict.group(1)


def test_the_release_wheel_is_tagged_manylinux2014_and_auditwheel_agrees(release_wheel):
    assert release_wheel.name == "gracefulstop-0.1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert auditwheel_verdict(release_wheel) == "manylinux_2_17_x86_64"
    with zipfile.ZipFile(release_wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("gracefulstop-0.1.0.dist-info/METADATA").decode()
    assert {"gracefulstop/libgracefulstop.so", "gracefulstop-0.1.0.data/data/bin/gstop"} <= names
    assert "Requires-Python: >=3.9" in metadata


def version_needs(binary: Path) -> tuple[set[str], dict[str, set[str]]]:
    """DT_NEEDED and the symbol versions needed from each library, as binutils' objdump reads them."""
    text = subprocess.run(["objdump", "-p", str(binary)], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"^\s+NEEDED\s+(\S+)$", text, re.M))
    versions: dict[str, set[str]] = {}
    library = None
    for line in text.splitlines():
        required = re.match(r"\s+required from (\S+):", line)
        if required:
            library = required.group(1)
            versions[library] = set()
        elif library and re.match(r"\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)$", line):
            versions[library].add(line.split()[-1])
        elif library and line.strip() and not line.startswith(" "):
            library = None
    return needed, versions


@pytest.mark.parametrize("binary", ["library", "gstop"])
def test_the_release_binaries_need_glibc_2_17_at_most_and_no_cxx_runtime(unpacked, binary):
    need_tool(shutil.which("objdump") is not None, "objdump (binutils) reads the version requirements")
    needed, versions = version_needs(unpacked[binary])
    assert needed <= SYSTEM_LIBRARIES, needed - SYSTEM_LIBRARIES  # no libstdc++, no libgcc_s, no Swift
    assert set(versions) <= needed and versions
    everything = set().union(*versions.values())
    too_new = [
        v
        for v in everything
        if not re.fullmatch(r"GLIBC_2\.\d+(\.\d+)?", v) or tuple(int(p) for p in v[len("GLIBC_") :].split(".")[:2]) > GLIBC_CEILING
    ]
    assert not too_new, f"{binary} needs {sorted(too_new)}"
    assert "GLIBC_2.17" in everything or "GLIBC_2.16" in everything  # the check reads real version needs


def test_the_release_library_exports_exactly_the_c_api_of_the_header(unpacked):
    need_tool(shutil.which("nm") is not None, "nm (binutils) lists the exported symbols")
    text = subprocess.run(["nm", "-D", "--defined-only", str(unpacked["library"])], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in text.splitlines() if line.split()[1:2] != ["A"]}
    header = (REPOSITORY / "include" / "gracefulstop.h").read_text()
    declared = set(re.findall(r"\b(gracefulstop_[a-z0-9_]+)\s*\(", header))
    declared |= set(re.findall(r"^extern [^;(]*\b(gracefulstop_[a-z0-9_]+);", header, re.M))
    assert "gracefulstop_should_stop" in declared and "gracefulstop_signal_flag" in declared
    assert exported == declared


def in_bullseye(script: str, timeout: float = BULLSEYE_TIMEOUT) -> subprocess.CompletedProcess:
    """Runs a bash script in the Debian 11 chroot of scripts/userland (this machine's /tmp is shared)."""
    need_tool(os.geteuid() == 0, "the older userland is a chroot: it needs root (./scripts/test runs as root in CI)")
    return subprocess.run(
        [str(REPOSITORY / "scripts" / "userland"), "run", "bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=timeout
    )


SMOKE = r'''
import json, os, signal, sys
import gracefulstop

state = gracefulstop.create(sys.argv[1], [f"unit-{i}" for i in range(10)], nodes=2)
state.mark_done("unit-0")
state.mark_done("unit-3")
remaining = {node: state.remaining_units(node) for node in (0, 1)}
before = state.should_stop()          # installs the handlers; nothing has asked for a stop yet
os.kill(os.getpid(), signal.SIGUSR1)  # a real signal, caught by the library's handler
after = state.should_stop()
reason = state.stop_reason()
print(json.dumps({"python": list(sys.version_info[:2]), "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
                  "library": gracefulstop.LIBRARY_PATH, "remaining": remaining, "before": before, "after": after,
                  "reason": reason.kind if reason else None, "signal": reason.signal if reason else None}))
'''


def test_the_release_wheel_installs_and_runs_in_bullseye(release_wheel, tmp_path):
    work = tmp_path / "bullseye"
    work.mkdir()
    shutil.copy2(release_wheel, work / release_wheel.name)
    (work / "smoke.py").write_text(SMOKE)
    shutil.copy2(REPOSITORY / "examples" / "demo_loop.py", work / "demo_loop.py")
    result = in_bullseye(f"""
        cd {work}
        python3 -m venv venv
        venv/bin/pip install --quiet --no-index --no-cache-dir {release_wheel.name}
        venv/bin/python smoke.py {work}/state > smoke.json
        venv/bin/gstop run --state {work}/demo --time-limit 4s --warn-before 2s --deadline-margin off -- \
            venv/bin/python -u demo_loop.py {work}/demo 0.75 > demo.log 2>&1
        venv/bin/gstop status --state {work}/demo >> demo.log
    """)
    demo_log = (work / "demo.log").read_text() if (work / "demo.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{demo_log[-3000:]}"
    smoke = json.loads((work / "smoke.json").read_text())
    assert smoke["python"] == [3, 9] and smoke["glibc"] == "glibc 2.31"
    assert smoke["library"] == f"{work}/venv/lib/python3.9/site-packages/gracefulstop/libgracefulstop.so"
    # round-robin over 2 nodes: node 0 has the even units, node 1 the odd ones
    assert smoke["remaining"] == {"0": ["unit-2", "unit-4", "unit-6", "unit-8"], "1": ["unit-1", "unit-5", "unit-7", "unit-9"]}
    assert (smoke["before"], smoke["after"], smoke["reason"], smoke["signal"]) == (False, True, "signal", 10)
    # The demo under gstop: stopped by real signals, restarted, every unit worked on exactly once.
    worked = (work / "demo" / "work.log").read_text().split()
    assert sorted(worked) == [f"unit-{i:02d}" for i in range(1, 9)], worked
    attempts = (work / "demo" / "events.jsonl").read_text().count('"event": "attempt_start"')
    assert attempts >= 2, demo_log
    assert (work / "demo" / "run.done").exists()


def test_gstop_alone_from_the_wheel_runs_in_bullseye(release_wheel, tmp_path):
    """README's way to get only the supervisor: unzip its one file onto a PATH; no Python involved."""
    need_tool(shutil.which("unzip") is not None, "README's command uses unzip")
    bin_dir = tmp_path / "bin"
    subprocess.run(["unzip", "-q", "-j", str(release_wheel), "gracefulstop-*.data/data/bin/gstop", "-d", str(bin_dir)], check=True)
    units = "\n".join(f"case-{i}" for i in range(6)) + "\n"
    (tmp_path / "units.txt").write_text(units)
    result = in_bullseye(f"""
        export PATH={bin_dir}:$PATH
        gstop --version
        gstop init --state {tmp_path}/state --units {tmp_path}/units.txt --nodes 1
        gstop mark-done --state {tmp_path}/state case-0
        gstop run --state {tmp_path}/state -- bash -c 'for unit in $(gstop remaining); do gstop mark-done "$unit"; done'
        gstop status --state {tmp_path}/state
    """)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.startswith("gstop 0.1.0\n")
    assert (tmp_path / "state" / "run.done").exists()
    decision = [json.loads(line) for line in (tmp_path / "state" / "events.jsonl").read_text().splitlines() if '"event": "decision"' in line]
    assert decision and decision[-1]["action"] == "finish", decision


@pytest.mark.parametrize("route", ["checkout", "sdist"])
def test_a_source_build_is_tagged_with_what_its_binaries_need(route, tmp_path):
    need_tool(shutil.which("swift") is not None, "a source build needs the Swift toolchain")
    source = str(REPOSITORY / "python")
    if route == "sdist":
        ensure_module("build", "build")
        subprocess.run(
            [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "sdist"), source], check=True, capture_output=True, timeout=600
        )
        (source,) = map(str, (tmp_path / "sdist").glob("gracefulstop-*.tar.gz"))
        with __import__("tarfile").open(source) as sdist:
            assert "gracefulstop-0.1.0/swift/Sources/CSignalShim/signal_shim.c" in sdist.getnames()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "wheel"), source],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("gracefulstop-*.whl")
    tag = re.fullmatch(r"gracefulstop-0\.1\.0-py3-none-(manylinux_2_(\d+)_x86_64)\.whl", wheel.name)
    assert tag, wheel.name
    # The tag is this machine's glibc as the binaries use it: auditwheel draws the same line.
    assert auditwheel_verdict(wheel) == tag.group(1)
    assert int(tag.group(2)) <= int(os.confstr("CS_GNU_LIBC_VERSION").split(".")[1])
    if route == "checkout" and int(tag.group(2)) > 31 and os.geteuid() == 0:
        # What the honest tag buys: an older system's pip refuses the wheel, instead of installing
        # one that fails at import with "GLIBC_2.34 not found".
        (tmp_path / "refused").mkdir()
        refused = in_bullseye(
            f"python3 -m venv {tmp_path}/refused/venv && {tmp_path}/refused/venv/bin/pip install --no-index {tmp_path}/wheel/{wheel.name}"
        )
        assert refused.returncode != 0 and "is not a supported wheel on this platform" in refused.stderr, refused.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--no-deps", str(wheel)], check=True)
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import gracefulstop, sys; s = gracefulstop.create(sys.argv[1], ['a', 'b'], nodes=1); s.mark_done('a'); print(s.remaining_units())",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['b']\n"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_pip_installs_gracefulstop_by_name_from_a_package_index_in_bullseye(release_wheel, tmp_path):
    # What a user types: `pip install gracefulstop` and `pip install "gracefulstop[optuna]"`, by name,
    # from an index (pypiserver on 127.0.0.1 serving the release wheel and the sdist, passing any
    # other name to PyPI), in the older userland; then the smoke test.
    for module, requirement in (("pypiserver", "pypiserver"), ("build", "build"), ("twine", "twine")):
        ensure_module(module, requirement)
    packages = tmp_path / "packages"
    packages.mkdir()
    shutil.copy2(release_wheel, packages / release_wheel.name)
    sdist = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(packages), str(REPOSITORY / "python")], capture_output=True, text=True, timeout=600
    )
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(packages.iterdir()))], capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stdout.count("PASSED") == 2, checked.stdout + checked.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port), "--fallback-url", "https://pypi.org/simple/", str(packages)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import time
        import urllib.request

        for _ in range(100):
            try:
                listing = urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/gracefulstop/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert release_wheel.name in listing and "gracefulstop-0.1.0.tar.gz" in listing, listing
        (tmp_path / "smoke.py").write_text(SMOKE)
        # This machine's certificate authorities (a site's TLS proxy among them) for PyPI's names.
        shutil.copy2(ssl.get_default_verify_paths().openssl_cafile, tmp_path / "ca.crt")
        result = in_bullseye(f"""
            cd {tmp_path}
            index="--index-url http://127.0.0.1:{port}/simple/ --cert {tmp_path}/ca.crt --disable-pip-version-check --no-cache-dir --quiet"
            python3 -m venv plain
            plain/bin/pip install $index gracefulstop
            plain/bin/python smoke.py {tmp_path}/state > smoke.json
            plain/bin/gstop --version > gstop-version.txt
            python3 -m venv with-optuna
            with-optuna/bin/pip install $index "gracefulstop[optuna]"
            with-optuna/bin/python -c "import gracefulstop.optuna, optuna; print(optuna.__version__)" > optuna-version.txt
        """)
        assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    finally:
        server.terminate()
        server.wait(timeout=30)
    smoke = json.loads((tmp_path / "smoke.json").read_text())
    assert smoke["python"] == [3, 9] and smoke["after"] and smoke["reason"] == "signal"
    assert smoke["library"].startswith(f"{tmp_path}/plain/lib/python3.9/site-packages/gracefulstop/")
    assert (tmp_path / "gstop-version.txt").read_text() == "gstop 0.1.0\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", (tmp_path / "optuna-version.txt").read_text())
