"""Validation helpers shared by every public entry point.

Each helper raises ``ValueError`` or ``TypeError`` naming the parameter, what was
expected and what arrived, e.g. ``ValueError("tau_ms must be > 0, got -5")``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_choice",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_nonnegative",
    "check_known_keys",
    "suggest",
]


def suggest(name: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest known names, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(name: str, value: Any) -> float:
    """``value`` must be a finite real number > 0."""
    if not _is_real(value) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` must be a finite real number >= 0."""
    if not _is_real(value) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """``value`` must be a real number in [0, 1]."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` must be an ``int`` (not bool), optionally >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices``; suggests the close ones."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {choices}, got {value!r}{suggest(str(value), choices)}"
        )
    return value


def check_known_keys(where: str, keys: Iterable[str], known: Iterable[str]) -> None:
    """Raise if any key is not in ``known``, suggesting close names."""
    known = list(known)
    for key in keys:
        if key not in known:
            raise ValueError(f"unknown {where} key {key!r}{suggest(key, known)}; known keys: {sorted(known)}")
