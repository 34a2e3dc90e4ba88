"""The ctypes binding to libgracefulstop.so: where the library is found, and one table that
declares every C function of include/gracefulstop.h (argument types, result type, error check).

Nothing is compiled at import: the library is found, loaded, its version checked, and its
functions declared.
"""

from __future__ import annotations

import ctypes
import os

from .errors import error_for_status

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations stay strings
    from typing import Any, Callable

_PACKAGE_VERSION: str | None
try:  # an installed package: the version setup.py copied from Version.swift, which the library must report
    from ._version import VERSION as _PACKAGE_VERSION  # type: ignore[import-not-found,unused-ignore]  # written at build time
except ImportError:  # a checkout (PYTHONPATH=python): the library built from the same sources says it
    _PACKAGE_VERSION = None

LIBRARY_NAME = "libgracefulstop.so"
LIBRARY_ENV = "GRACEFULSTOP_LIBRARY"


class UnitList(ctypes.Structure):
    """``gracefulstop_unit_list``: ``count`` NUL-terminated names back to back in ``names``."""

    _fields_ = [("names", ctypes.c_void_p), ("size", ctypes.c_size_t), ("count", ctypes.c_size_t)]


NODE_DEFAULT = -1
ALL_NODES = -2

_c_state = ctypes.c_void_p
_c_state_out = ctypes.POINTER(ctypes.c_void_p)


def _candidates() -> list[str]:
    """Where to look for the library, in order: $GRACEFULSTOP_LIBRARY, the package folder, then
    the build folders of a source checkout (release before debug)."""
    places: list[str] = []
    override = os.environ.get(LIBRARY_ENV)
    if override:
        places.append(override)
    package = os.path.dirname(os.path.realpath(__file__))
    places.append(os.path.join(package, LIBRARY_NAME))
    checkout = os.path.dirname(os.path.dirname(package))
    for build in (".build/release", ".build-wheel/release", ".build/debug"):
        places.append(os.path.join(checkout, build, LIBRARY_NAME))
    return places


def _load() -> ctypes.CDLL:
    tried: list[str] = []
    override = os.environ.get(LIBRARY_ENV)
    for path in _candidates():
        if not os.path.isfile(path):
            tried.append(f"{path} (not there)")
            if override and str(path) == override:
                # An explicit override that is wrong is an error, not a reason to load another library.
                break
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as error:
            tried.append(f"{path} ({error})")
            if override and str(path) == override:
                break
    raise ImportError(
        "gracefulstop: cannot load libgracefulstop.so; tried:\n  "
        + "\n  ".join(tried)
        + f"\nInstall the package with `pip install ./python` from a checkout, or set {LIBRARY_ENV}."
    )


def _check_status(result: int, function: "Callable[..., Any]", arguments: "tuple[Any, ...]") -> int:
    """The error checker of every status-returning function: raise with the library's message."""
    if result != 0:
        message = _lib.gracefulstop_last_error()
        text = message.decode("utf-8", "replace") if message else f"{function.__name__} failed"
        raise error_for_status(result, text)
    return result


# name: (argument types, result type, error checker)
_DECLARATIONS: "dict[str, tuple[list[Any], Any, Any]]" = {
    "gracefulstop_version": ([], ctypes.c_char_p, None),
    "gracefulstop_last_error": ([], ctypes.c_char_p, None),
    "gracefulstop_string_free": ([ctypes.c_void_p], None, None),
    "gracefulstop_create": (
        [ctypes.c_char_p, ctypes.POINTER(UnitList), ctypes.c_uint32, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int64, _c_state_out],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_open": ([ctypes.c_char_p, ctypes.c_int64, _c_state_out], ctypes.c_int, _check_status),
    "gracefulstop_open_sweep": ([ctypes.c_char_p, _c_state_out], ctypes.c_int, _check_status),
    "gracefulstop_close": ([_c_state], None, None),
    "gracefulstop_info": (
        [_c_state, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_should_stop": ([_c_state], ctypes.c_bool, None),
    "gracefulstop_set_default": ([_c_state], None, None),
    "gracefulstop_should_stop_default": ([], ctypes.c_bool, None),
    "gracefulstop_trapped_signals": ([ctypes.POINTER(ctypes.c_int), ctypes.c_size_t], ctypes.c_size_t, None),
    "gracefulstop_stop_reason": (
        [_c_state, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p)],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_request_stop": ([_c_state, ctypes.c_char_p], ctypes.c_int, _check_status),
    "gracefulstop_set_check_interval": ([_c_state, ctypes.c_double], ctypes.c_int, _check_status),
    "gracefulstop_install_signals": ([ctypes.POINTER(ctypes.c_int), ctypes.c_size_t], ctypes.c_int, _check_status),
    "gracefulstop_uninstall_signals": ([ctypes.POINTER(ctypes.c_int), ctypes.c_size_t], ctypes.c_int, _check_status),
    "gracefulstop_received_signal": ([], ctypes.c_int, None),
    "gracefulstop_clear_signal": ([], None, None),
    "gracefulstop_mark_done": ([_c_state, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_bool)], ctypes.c_int, _check_status),
    "gracefulstop_is_done": ([_c_state, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_bool)], ctypes.c_int, _check_status),
    "gracefulstop_remaining_units": ([_c_state, ctypes.c_int64, ctypes.POINTER(UnitList)], ctypes.c_int, _check_status),
    "gracefulstop_unit_list_free": ([ctypes.POINTER(UnitList)], None, None),
    "gracefulstop_counts": (
        [_c_state, ctypes.c_int64, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64)],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_run_done": ([_c_state, ctypes.POINTER(ctypes.c_bool)], ctypes.c_int, _check_status),
    "gracefulstop_mark_study_done": ([_c_state, ctypes.c_char_p], ctypes.c_int, _check_status),
    "gracefulstop_study_done": ([_c_state, ctypes.POINTER(ctypes.c_bool)], ctypes.c_int, _check_status),
    "gracefulstop_record_finished": ([_c_state, ctypes.c_int64, ctypes.c_char_p], ctypes.c_int, _check_status),
    "gracefulstop_job": ([ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int, _check_status),
    "gracefulstop_restart_count": ([], ctypes.c_int64, None),
    "gracefulstop_marker_path": ([_c_state, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int, _check_status),
    "gracefulstop_begin_unit": (
        [_c_state, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_double, ctypes.POINTER(ctypes.c_int)],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_abandon_unit": ([_c_state, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int, _check_status),
    "gracefulstop_next_unit": (
        [_c_state, ctypes.c_int, ctypes.c_bool, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)],
        ctypes.c_int,
        _check_status,
    ),
    "gracefulstop_release_unit": ([_c_state, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_bool)], ctypes.c_int, _check_status),
    "gracefulstop_status_json": ([_c_state, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int, _check_status),
    "gracefulstop_marker_name": ([ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int, _check_status),
}


def _declare(library: ctypes.CDLL) -> None:
    for name, (argtypes, restype, errcheck) in _DECLARATIONS.items():
        function = getattr(library, name)
        function.argtypes = argtypes
        function.restype = restype
        if errcheck is not None:
            function.errcheck = errcheck


_lib = _load()
_declare(_lib)
LIBRARY_PATH: str = _lib._name

_library_version = _lib.gracefulstop_version().decode()
if _PACKAGE_VERSION is not None and _library_version != _PACKAGE_VERSION:
    raise ImportError(
        f"gracefulstop: the library {LIBRARY_PATH} is version {_library_version}, but the Python package is "
        f"version {_PACKAGE_VERSION}; reinstall both from the same checkout (pip install ./python)"
    )
#: The package version: the one the library reports (and, installed, the package's own).
VERSION: str = _library_version

if TYPE_CHECKING:
    from typing import Protocol

    class _Library(Protocol):
        """What the declarations make of the library, for type checkers (ctypes cannot tell them):
        the few functions whose result is a value, and every other one returning its status."""

        def gracefulstop_version(self) -> bytes: ...
        def gracefulstop_last_error(self) -> bytes | None: ...
        def gracefulstop_should_stop(self, state: Any, /) -> bool: ...
        def gracefulstop_should_stop_default(self) -> bool: ...
        def gracefulstop_received_signal(self) -> int: ...
        def gracefulstop_restart_count(self) -> int: ...
        def gracefulstop_trapped_signals(self, signals: Any, count: int, /) -> int: ...
        def __getattr__(self, name: str) -> Callable[..., int]: ...


#: The loaded library, declared (one table, above).
lib: _Library = _lib  # a CDLL whose functions the table declared

#: The signal flag as a ctypes integer: reading ``signal_flag.value`` costs no function call.
signal_flag = ctypes.c_int.in_dll(_lib, "gracefulstop_signal_flag")


def take_string(pointer: ctypes.c_void_p) -> str:
    """Copies a library-allocated string into Python and frees it."""
    if not pointer.value:
        return ""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8", "replace")
    finally:
        _lib.gracefulstop_string_free(pointer)


def take_unit_list(units: UnitList) -> list[str]:
    """Copies a library-allocated unit list into Python and frees it."""
    try:
        if units.count == 0:
            return []
        return ctypes.string_at(units.names, units.size)[:-1].decode("utf-8").split("\0")
    finally:
        _lib.gracefulstop_unit_list_free(ctypes.byref(units))
