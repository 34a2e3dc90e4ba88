"""Builds libgracefulstop.so from the Swift package at the repository root and puts it inside the
Python package, so that an installed gracefulstop compiles nothing at import.

The library is built in release mode with the Swift standard library linked statically
(-static-stdlib): the installed .so depends on libc, libm, libstdc++ and libgcc_s only, which is
what a compute node without a Swift toolchain has. The build goes to <repo>/.build-wheel so that it
never disturbs a developer's .build.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - setuptools >= 70 ships its own
    from setuptools.command.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
SCRATCH = REPOSITORY / ".build-wheel"
NATIVE = HERE / "build" / "native"
# The supervisor goes to the environment's bin/ as the binary itself: no Python start-up in front of it.
GSTOP = NATIVE / "gstop"


def swift_build(product: str) -> Path:
    """Builds a product of the Swift package in release mode and returns the build folder."""
    if not (REPOSITORY / "Package.swift").is_file():
        raise SystemExit(
            f"gracefulstop: no Package.swift at {REPOSITORY}: build the Python package from a checkout of the "
            "gracefulstop repository (pip install ./python)")
    swift = shutil.which("swift")
    if swift is None:
        raise SystemExit("gracefulstop: building the library needs the Swift toolchain (swift on PATH); see README.md")
    command = [swift, "build", "-c", "release", "--package-path", str(REPOSITORY), "--scratch-path", str(SCRATCH),
               "--product", product, "-Xswiftc", "-static-stdlib"]
    print("gracefulstop:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return SCRATCH / "release"


class BuildWithSwift(build_py):
    """build_py, plus the library copied into the package and gstop staged for the bin/ directory."""

    def run(self) -> None:
        super().run()
        built = swift_build("gracefulstop")
        target = Path(self.build_lib) / "gracefulstop" / "libgracefulstop.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built / "libgracefulstop.so", target)
        os.chmod(target, 0o755)
        built = swift_build("gstop")
        NATIVE.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built / "gstop", GSTOP)
        os.chmod(GSTOP, 0o755)


class PlatformWheel(bdist_wheel):
    """The wheel carries a native library but no Python extension: any Python 3 on this platform."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildWithSwift, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
    data_files=[("bin", [str(GSTOP.relative_to(HERE))])],
)
