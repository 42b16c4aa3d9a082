"""The ``neurornn`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser whose ``handler`` default is called with the parsed arguments and
returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `neurornn --help` lists them.
_SUBCOMMANDS = ("train", "tasks", "experiment", "analyze")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurornn",
        description="Build, train and dissect RNN models of brain circuits.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return f"neurornn {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``neurornn``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (ValueError, TypeError, KeyError, ImportError, FileExistsError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"neurornn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurornn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
