"""``neurornn tasks``: list the registered tasks."""

from __future__ import annotations

import argparse

from .. import tasks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the tasks", description="List every registered task.")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    described = tasks.describe()
    width = max(len(n) for n in described)
    for name, text in described.items():
        print(f"{name:<{width}}  {text}")
    return 0
