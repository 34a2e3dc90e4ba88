"""A C program compiled against include/gracefulstop.h and linked to the library checks the C ABI
call by call (Tests/CABI/abi_smoke.c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPOSITORY

import gracefulstop


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_the_header_compiles_and_matches_the_library(tmp_path, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed (the other compiler still runs this test)")
    library = Path(gracefulstop.LIBRARY_PATH)
    program = tmp_path / "abi_smoke"
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    if compiler == "clang":
        flags.append("-Wnullability-completeness")
    build = subprocess.run(
        [
            compiler,
            *flags,
            f"-I{REPOSITORY / 'include'}",
            str(REPOSITORY / "Tests/CABI/abi_smoke.c"),
            str(library),
            f"-Wl,-rpath,{library.parent}",
            "-o",
            str(program),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    result = subprocess.run([str(program), str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout


def test_every_exported_c_symbol_has_the_prefix():
    symbols = subprocess.run(["nm", "-D", "--defined-only", gracefulstop.LIBRARY_PATH], capture_output=True, text=True, check=True).stdout.split("\n")
    c_symbols = [
        line.split()[-1]
        for line in symbols
        if line.strip()
        and line.split()[1] in "TDBR"
        and not line.split()[-1].startswith(("$s", "_Z", "__", "_edata", "_end", "_init", "_fini", "swift_", "_swift"))
    ]
    assert c_symbols, "no C symbols found"
    assert [s for s in c_symbols if not s.startswith("gracefulstop_")] == []
    header = (REPOSITORY / "include" / "gracefulstop.h").read_text()
    for symbol in c_symbols:
        if not symbol.startswith("gracefulstop_shim_"):
            assert symbol in header, f"{symbol} is exported but not declared in the header"
