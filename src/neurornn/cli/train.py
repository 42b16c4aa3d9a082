"""``neurornn train`` (placeholder until the trainer lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network", description="Train a network on a task.")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise ValueError("neurornn train is not implemented yet")
