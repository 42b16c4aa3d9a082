"""Validation helpers shared by every public entry point.

Each helper raises ``ValueError`` or ``TypeError`` naming the parameter, what was
expected and what arrived, e.g. ``ValueError("tau_ms must be > 0, got -5")``.
NumPy scalars (``np.int64(10)``, ``np.float32(1e-3)``) are accepted wherever a
Python number is, and come back as plain Python numbers (configs stay YAML-writable);
booleans are never numbers here.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_bool",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_int",
    "check_memory",
    "check_positive",
    "check_nonnegative",
    "check_known_keys",
    "check_real",
    "is_real",
    "plain",
    "suggest",
    "suggest_keywords",
]


def suggest(name: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest known names, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python ``int`` / ``float`` / ``bool`` it holds; anything else unchanged."""
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(str(value))  # np.float32(1e-3) -> 0.001, the number it was written as
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def is_real(value: Any) -> bool:
    """A Python or NumPy real number, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _shown(value: Any) -> str:
    return repr(plain(value))


def check_real(name: str, value: Any, what: str = "a finite number") -> float:
    """``value`` must be a finite real number (TypeError if not a number, ValueError if NaN / inf)."""
    if not is_real(value):
        raise TypeError(f"{name} must be {what}, got {_shown(value)}{_type_note(value)}")
    value = plain(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def _type_note(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return " (a bool)"
    if isinstance(value, str):
        return " (a string)"
    if is_real(value) or value is None:
        return ""
    return f" (of type {type(value).__name__})"


def check_positive(name: str, value: Any) -> float:
    """``value`` must be a finite real number > 0."""
    value = check_real(name, value, "a finite number > 0")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` must be a finite real number >= 0."""
    value = check_real(name, value, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """``value`` must be a real number in [0, 1]."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1], got {_shown(value)}{_type_note(value)}")
    value = plain(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` must be an integer (Python or NumPy, not bool), optionally >= ``minimum``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {_shown(value)}{_type_note(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be ``True`` or ``False`` (a NumPy bool is accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_shown(value)}{_type_note(value)}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices``; suggests the close ones."""
    choices = list(choices)
    try:
        known = value in choices
    except TypeError:  # unhashable or incomparable
        known = False
    if not known:
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


def check_finite(name: str, values: Any, verb: str = "contains") -> Any:
    """Raise ``ValueError`` if a tensor / array holds NaN or inf, saying how many; returns ``values``."""
    if hasattr(values, "detach") and hasattr(values, "is_floating_point"):  # a torch tensor
        v = values.detach()
        if not (v.is_floating_point() or v.is_complex()):
            return values
        bad = ~torch.isfinite(v)
        if not bool(bad.any()):
            return values
        n_nan, n_bad, total = int(torch.isnan(v).sum()), int(bad.sum()), v.numel()
    else:
        arr = np.asarray(values)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating)):
            return values
        bad = ~np.isfinite(arr)
        if not bad.any():
            return values
        n_nan, n_bad, total = int(np.isnan(arr).sum()), int(bad.sum()), arr.size
    raise ValueError(
        f"{name} {verb} NaN or inf ({n_nan} NaN and {n_bad - n_nan} inf among {total} entries); "
        "it must be finite"
    )


# ---------------------------------------------------------------------------- memory
def available_memory_bytes() -> int | None:
    """Memory the system can still give (``MemAvailable`` of /proc/meminfo), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


_SMALL_ALLOCATION = 64 * 2**20


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


def check_memory(what: str, n_bytes: float, hint: str, *, detail: str = "", available: int | None = None,
                 where: str = "available") -> None:
    """Refuse (``ValueError``) to allocate about ``n_bytes`` when more than the available memory.

    ``what`` names the parameter and its value and says what needs the memory, e.g.
    ``"batch_size=100000000: one batch needs"``; ``detail`` (optional) what the estimate
    counts; ``hint`` says what to do instead.
    ``available`` defaults to the system's available RAM (no check when unknown).
    """
    if available is None:
        if n_bytes <= _SMALL_ALLOCATION:
            return  # not worth reading /proc/meminfo on every batch
        available = available_memory_bytes()
    if available is None or n_bytes <= available:
        return
    detail = f" ({detail})" if detail else ""
    raise ValueError(f"{what} about {_gb(n_bytes)}{detail}, more than the {_gb(available)} {where}; {hint}")


# ---------------------------------------------------------------------------- keywords
def suggest_keywords(init: Any, error: Any = None) -> Any:
    """Wrap an ``__init__`` so that an unexpected keyword is refused with a suggestion.

    By default it raises ``TypeError("RNNConfig got an unexpected parameter 'n_unit'
    (did you mean 'n_units'?); parameters: [...]")``; ``error(obj, name, known)`` may
    build another exception. An ``__init__`` taking ``**kwargs`` is returned unchanged.
    """
    signature = inspect.signature(init)
    params = list(signature.parameters.values())[1:]  # without self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return init
    positional = [p.name for p in params
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    keywords = [p.name for p in params
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in keywords]
        if unknown:
            known = [k for k in keywords if k not in positional[: len(args)]]
            if error is not None:
                raise error(self, unknown[0], known)
            raise TypeError(f"{type(self).__name__} got an unexpected parameter {unknown[0]!r}"
                            f"{suggest(unknown[0], known)}; parameters: {known}")
        init(self, *args, **kwargs)

    return __init__


def check_same_fields(configs: Sequence[Any], fields: Iterable[str], prefix: str = "") -> None:
    """Every config of the networks of an ensemble has the same value of each of ``fields``."""
    for name in fields:
        values = [getattr(c, name) for c in configs]
        if any(v != values[0] for v in values):
            raise ValueError(f"all networks of an ensemble must have the same {prefix}{name}, got {values}")
