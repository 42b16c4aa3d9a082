"""The table of regulariser kinds: each kind's name and the factory that builds its term.

``TrainConfig`` checks every regulariser spec against this table (a known ``kind``, the
parameters of its factory); :mod:`neurornn.training.regularizers` and
:mod:`neurornn.training.spatial` register the built-in kinds with
:func:`register_regularizer` and build the terms.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

__all__ = ["register_regularizer", "regularizer_factory", "regularizer_kinds", "regularizer_parameters"]

_FACTORIES: dict[str, Callable[..., Any]] = {}


def register_regularizer(kind: str) -> Callable:
    """Decorator: register ``factory(model, strength, **params) -> Regularizer`` as ``kind``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _FACTORIES[kind] = factory
        return factory

    return deco


def regularizer_kinds() -> list[str]:
    return sorted(_FACTORIES)


def regularizer_factory(kind: str) -> Callable[..., Any]:
    """The factory registered as ``kind`` (a ``KeyError`` when there is none)."""
    return _FACTORIES[kind]


def regularizer_parameters(kind: str) -> list[str]:
    """The parameters a spec of ``kind`` may give besides ``kind`` and ``strength``."""
    return [name for name in inspect.signature(_FACTORIES[kind]).parameters if name not in ("model", "strength")]
