"""Builds libgracefulstop.so and gstop from the Swift package and puts them in the Python package,
so that an installed gracefulstop compiles nothing at import.

Two routes:
- From source (`pip install ./python`, or the sdist, which carries the Swift package in swift/):
  a release build with the Swift standard library linked statically (-static-stdlib); the binaries
  need this machine's libc, libstdc++ and libgcc_s. The build goes to <package>/.build-wheel so
  that it never disturbs a developer's .build.
- Prebuilt (GRACEFULSTOP_PREBUILT=DIR, set by scripts/wheel): the binaries in DIR, relinked for
  glibc 2.17 with no C++ runtime needed.

Either way the wheel is tagged with what its binaries need (read from their ELF version
requirements): manylinux_2_17 for the release wheel, manylinux_2_35 for a source build on
Debian 12, so pip refuses a wheel on a system too old for it instead of failing at import.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import struct
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - setuptools >= 70 ships its own
    from setuptools.command.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
# In a checkout the Swift package is the repository; in an sdist, its copy in swift/.
SWIFT_PACKAGE = HERE / "swift" if (HERE / "swift" / "Package.swift").is_file() else HERE.parent
# What of the Swift package an sdist carries: enough to build both products (SwiftPM wants the
# test target's folder too, and its tests read the fixtures).
SWIFT_PACKAGE_PARTS = ("Package.swift", "Sources", "include", "Tests/GracefulStopTests", "Tests/Fixtures")
SCRATCH = SWIFT_PACKAGE / ".build-wheel"
NATIVE = HERE / "build" / "native"
# The supervisor goes to the environment's bin/ as the binary itself: no Python start-up in front of it.
GSTOP = NATIVE / "gstop"
PREBUILT_ENV = "GRACEFULSTOP_PREBUILT"
# Libraries every manylinux system has (PEP 600's policy lists); anything else must not be needed.
SYSTEM_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
}


def swift_version() -> str:
    """The version, kept in one place: Sources/GracefulStop/System/Version.swift (gstop --version and
    the library's gracefulstop_version() report it; the package's metadata and _version.py copy it)."""
    source = (SWIFT_PACKAGE / "Sources" / "GracefulStop" / "System" / "Version.swift").read_text()
    found = re.search(r'static let string = "([0-9][^"]*)"', source)
    if found is None:
        raise SystemExit("gracefulstop: Sources/GracefulStop/System/Version.swift holds no version string")
    return found.group(1)


def swift_build(product: str) -> Path:
    """Builds a product of the Swift package in release mode and returns the build folder."""
    if not (SWIFT_PACKAGE / "Package.swift").is_file():
        raise SystemExit(
            f"gracefulstop: no Package.swift at {SWIFT_PACKAGE}: build the Python package from a checkout of the "
            "gracefulstop repository (pip install ./python) or from its sdist"
        )
    swift = shutil.which("swift")
    if swift is None:
        raise SystemExit(
            "gracefulstop: building the library needs the Swift toolchain (swift on PATH); "
            "on a cluster, install the release wheel instead (see README.md)"
        )
    command = [
        swift,
        "build",
        "-c",
        "release",
        "--package-path",
        str(SWIFT_PACKAGE),
        "--scratch-path",
        str(SCRATCH),
        "--product",
        product,
        "-Xswiftc",
        "-static-stdlib",
    ]
    print("gracefulstop:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return SCRATCH / "release"


def built(product: str, name: str) -> Path:
    """A binary from GRACEFULSTOP_PREBUILT when set, else from a Swift build."""
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        path = Path(prebuilt) / name
        if not path.is_file():
            raise SystemExit(f"gracefulstop: {PREBUILT_ENV}={prebuilt} has no {name}; run ./scripts/wheel")
        return path
    return swift_build(product) / name


def elf_needs(path: Path) -> tuple[set[str], set[str]]:
    """The libraries an ELF file needs (DT_NEEDED) and the symbol versions it needs from them
    (SHT_GNU_verneed), read from its section headers."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SystemExit(f"gracefulstop: {path} is not a 64-bit ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQII", data, shoff + i * shentsize) for i in range(shnum)]

    def string(table: int, offset: int) -> str:
        start = sections[table][4] + offset
        return data[start : data.index(b"\0", start)].decode()

    libraries: set[str] = set()
    versions: set[str] = set()
    for _, kind, _, _, offset, size, link, _ in sections:
        if kind == 6:  # SHT_DYNAMIC: (tag, value) pairs; DT_NEEDED = 1
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                if tag == 1:
                    libraries.add(string(link, value))
        elif kind == 0x6FFFFFFE:  # SHT_GNU_verneed: a chain of files, each with a chain of versions
            at = offset
            while True:
                _, count, _, aux, following = struct.unpack_from("<HHIII", data, at)
                entry = at + aux
                for _ in range(count):
                    _, _, _, name, after = struct.unpack_from("<IHHII", data, entry)
                    versions.add(string(link, name))
                    entry += after
                if not following:
                    break
                at += following
    return libraries, versions


def manylinux_platform(binaries: list[Path]) -> str:
    """The platform tag the binaries earn: manylinux_2_N for the newest GLIBC_2.N they need."""
    needed: set[str] = set()
    ceiling = 5
    for binary in binaries:
        libraries, versions = elf_needs(binary)
        needed |= libraries
        for version in versions:
            match = re.fullmatch(r"GLIBC_2\.(\d+)(?:\.\d+)?", version)
            if match:
                ceiling = max(ceiling, int(match.group(1)))
    unknown = sorted(needed - SYSTEM_LIBRARIES)
    if unknown:
        raise SystemExit(f"gracefulstop: the binaries need {', '.join(unknown)}, which no manylinux system promises")
    machine = platform.machine()
    tag = f"manylinux_2_{ceiling}_{machine}"
    if ceiling <= 17:  # the legacy alias, for pip before 20.3 (RHEL 8's own pip is 9.0/20.2)
        tag += f".manylinux2014_{machine}"
    return tag


class BuildWithSwift(build_py):
    """build_py, plus the library copied into the package and gstop staged for the bin/ directory."""

    def run(self) -> None:
        super().run()
        (Path(self.build_lib) / "gracefulstop" / "_version.py").write_text(
            f'"""Written by setup.py from Version.swift: the version the library must report."""\nVERSION = "{swift_version()}"\n'
        )
        target = Path(self.build_lib) / "gracefulstop" / "libgracefulstop.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built("gracefulstop", "libgracefulstop.so"), target)
        os.chmod(target, 0o755)
        NATIVE.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built("gstop", "gstop"), GSTOP)
        os.chmod(GSTOP, 0o755)


class PlatformWheel(bdist_wheel):
    """The wheel carries a native library but no Python extension: any Python 3.9+ on the platform
    its binaries were linked for."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        library = Path(self.bdist_dir) / "gracefulstop" / "libgracefulstop.so"
        if not library.is_file():  # before install_lib has run; the built copy is the same file
            library = Path(self.get_finalized_command("build_py").build_lib) / "gracefulstop" / "libgracefulstop.so"
        return "py3", "none", manylinux_platform([library, GSTOP])


class SdistWithSwiftPackage(sdist):
    """The sdist carries the Swift package (in swift/), so that it builds away from a checkout."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        if SWIFT_PACKAGE == HERE / "swift":
            return  # an sdist of an sdist: the files list already has them
        for part in SWIFT_PACKAGE_PARTS:
            source = SWIFT_PACKAGE / part
            target = Path(base_dir) / "swift" / part
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    version=swift_version(),
    cmdclass={"build_py": BuildWithSwift, "bdist_wheel": PlatformWheel, "sdist": SdistWithSwiftPackage},
    distclass=BinaryDistribution,
    data_files=[("bin", [str(GSTOP.relative_to(HERE))])],
)
