"""The ``neurornn`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser whose ``handler`` default is called with the parsed arguments and
returns an exit code.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from .._folder import CorruptFileError, FolderInUseError
from .._version import __version__
from . import analyze, experiment, export, sweep, tasks, train

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `neurornn --help` lists them.
_SUBCOMMANDS = (train, tasks, experiment, analyze, sweep, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurornn",
        description="Build, train and dissect RNN models of brain circuits.",
        epilog="Errors print one line; add --debug (or set NEURORNN_DEBUG=1) for the traceback. Exit codes: "
               "0 done, 1 internal error, 2 bad input (incl. a missing or existing path), 3 file system problem, "
               "4 corrupted file, 5 folder in use, 6 out of memory, disk full or device error, 7 a sweep ended "
               "with failed points, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _SUBCOMMANDS:
        command.register(sub)
    return parser


def _version() -> str:
    return f"neurornn {__version__}"


# Exit codes (documented in docs/training.md): what went wrong, for scripts that call neurornn.
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FILES, EXIT_CORRUPT, EXIT_IN_USE, EXIT_RESOURCES = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130
_DEBUG_ENV = "NEURORNN_DEBUG"


def _classify(err: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an error that reached the command line."""
    if isinstance(err, CorruptFileError):
        return EXIT_CORRUPT, str(err)
    if isinstance(err, FolderInUseError):
        return EXIT_IN_USE, str(err)
    if isinstance(err, (ValueError, TypeError)):
        return EXIT_USAGE, str(err)
    if isinstance(err, KeyError):
        return EXIT_USAGE, str(err.args[0]) if err.args else repr(err)
    if isinstance(err, ImportError):
        return EXIT_USAGE, str(err)
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        first = str(err).splitlines()[0] if str(err) else "out of memory"
        return EXIT_RESOURCES, (f"out of memory ({first}); lower the batch size, the number of units or the "
                                "number of trials")
    if isinstance(err, (FileNotFoundError, FileExistsError)):
        return EXIT_USAGE, str(err)  # a path given that is not (or already) there: bad input
    if isinstance(err, OSError):
        if err.errno == errno.ENOSPC:
            return EXIT_RESOURCES, f"the disk is full{_where(err)}; free some space, then resume the run (--resume)"
        if isinstance(err, PermissionError):
            return EXIT_FILES, f"permission denied{_where(err)}: choose a folder you can write to (--out)"
        return EXIT_FILES, str(err) if not err.filename else f"{err.strerror or err}{_where(err)}"
    if isinstance(err, RuntimeError) and any(w in str(err) for w in ("CUDA", "device", "Device")):
        return EXIT_RESOURCES, f"device error: {str(err).splitlines()[0]}; choose another device (e.g. cpu)"
    text = str(err).splitlines()[0] if str(err) else ""
    return EXIT_INTERNAL, (f"internal error ({type(err).__name__}: {text}); this is probably a bug in neurornn: "
                           f"rerun with --debug (or {_DEBUG_ENV}=1) for the traceback and report it")


def _where(err: OSError) -> str:
    return f" ({err.filename!r})" if err.filename else ""


def _one_line_warnings(command: str):
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        print(f"neurornn {command}: warning: {message}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``neurornn``; returns the exit code.

    Errors print one line ``neurornn COMMAND: error: ...`` and return a distinct exit
    code (see ``EXIT_*``); ``--debug`` anywhere on the line (or ``NEURORNN_DEBUG=1``)
    shows the traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(_DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _one_line_warnings(args.command)
        try:
            return int(args.handler(args) or 0)
        except KeyboardInterrupt:
            print(f"neurornn {args.command}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as err:  # noqa: BLE001 (the command line shows one line, not a traceback)
            if debug:
                raise
            code, message = _classify(err)
            print(f"neurornn {args.command}: error: {message}", file=sys.stderr)
            return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
