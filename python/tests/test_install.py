"""How the package finds, checks and loads the library."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import GSTOP, REPOSITORY, child_environment

import gracefulstop
import gracefulstop._ffi


def test_the_library_carries_the_swift_runtime_inside():
    libraries = subprocess.run(["ldd", gracefulstop.LIBRARY_PATH], capture_output=True, text=True, check=True).stdout
    assert "libswift" not in libraries and "libFoundation" not in libraries, libraries
    if os.environ.get("GRACEFULSTOP_TEST_INSTALLED") == "1":
        # Under the test command, gracefulstop is the pip-installed package with its own library.
        assert os.path.join(os.path.dirname(gracefulstop.__file__), "libgracefulstop.so") == gracefulstop.LIBRARY_PATH


def test_a_wrong_override_is_an_import_error_listing_what_was_tried(tmp_path):
    env = child_environment(GRACEFULSTOP_LIBRARY=str(tmp_path / "missing.so"))
    out = subprocess.run([sys.executable, "-c", "import gracefulstop"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "ImportError: gracefulstop: cannot load libgracefulstop.so; tried:" in out.stderr
    assert f"{tmp_path / 'missing.so'} (not there)" in out.stderr


def test_one_version_everywhere():
    # Kept in Version.swift alone: the library, gstop, the package and its metadata report it.
    swift = re.search(r'static let string = "([^"]+)"', (REPOSITORY / "Sources/GracefulStop/System/Version.swift").read_text()).group(1)
    assert gracefulstop.__version__ == gracefulstop._ffi.lib.gracefulstop_version().decode() == swift
    assert f'#define GRACEFULSTOP_VERSION "{swift}"' in (REPOSITORY / "include/gracefulstop.h").read_text()
    assert subprocess.run([GSTOP, "--version"], capture_output=True, text=True).stdout == f"gstop {swift}\n"
    assert not re.search(r"^version\s*=", (REPOSITORY / "python/pyproject.toml").read_text(), re.MULTILINE)  # dynamic, from setup.py
    if os.environ.get("GRACEFULSTOP_TEST_INSTALLED") == "1":
        assert importlib.metadata.version("gracefulstop") == swift
        from gracefulstop import _version  # written at build time from Version.swift

        assert swift == _version.VERSION


def test_a_version_mismatch_is_an_import_error_that_says_so(tmp_path):
    package = tmp_path / "gracefulstop"
    shutil.copytree(os.path.dirname(gracefulstop.__file__), package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (package / "_version.py").write_text('VERSION = "9.9.9"\n')  # as an installed package of another version has it
    env = child_environment(PYTHONPATH=str(tmp_path), GRACEFULSTOP_LIBRARY=gracefulstop.LIBRARY_PATH)
    out = subprocess.run([sys.executable, "-c", "import gracefulstop"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert f"is version {gracefulstop.__version__}, but the Python package is version 9.9.9" in out.stderr


def test_import_from_any_directory_compiles_nothing(tmp_path):
    env = child_environment()
    out = subprocess.run(
        [sys.executable, "-c", "import gracefulstop, sys; print(gracefulstop.LIBRARY_PATH)"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == gracefulstop.LIBRARY_PATH


def test_pip_installs_the_native_gstop_next_to_python():
    if os.environ.get("GRACEFULSTOP_TEST_INSTALLED") != "1":
        pytest.skip("only meaningful for the pip-installed package (./scripts/test installs it)")
    gstop = os.path.join(os.path.dirname(sys.executable), "gstop")
    with open(gstop, "rb") as binary:
        assert binary.read(4) == b"\x7fELF"  # the executable itself, no Python start-up in front of it
    assert os.access(gstop, os.X_OK)
    libraries = subprocess.run(["ldd", gstop], capture_output=True, text=True, check=True).stdout
    assert "libswift" not in libraries and "libFoundation" not in libraries, libraries
    assert subprocess.run([gstop, "--version"], capture_output=True, text=True).stdout == f"gstop {gracefulstop.__version__}\n"


def test_importing_gracefulstop_imports_no_integration_library():
    # The integrations are optional modules: `import gracefulstop` (every job's first line) must not
    # pay for torch, Lightning or Optuna, nor gracefulstop.torch for torch until it is used.
    probe = (
        "import sys, gracefulstop, gracefulstop.torch; print(sorted(m for m in ('torch', 'lightning', 'optuna', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=child_environment(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
