"""The table of regulariser kinds: each kind's name and the factory that builds its term.

``TrainConfig`` checks every regulariser spec against this table (a known ``kind``, the
parameters of its factory); :mod:`neurornn.training.regularizers` and
:mod:`neurornn.training.spatial` register the built-in kinds with
:func:`register_regularizer` and build the terms.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

__all__ = ["register_regularizer", "unregister_regularizer", "regularizer_factory", "regularizer_kinds",
           "regularizer_parameters"]

_FACTORIES: dict[str, Callable[..., Any]] = {}
_BUILT_IN: set[str] = set()


def register_regularizer(kind: str, *, replace: bool = False) -> Callable:
    """Decorator: register ``factory(model, strength, **params) -> Regularizer`` as ``kind``.

    A kind already registered is refused unless ``replace=True`` (the built-in kinds never are
    replaced); :func:`unregister_regularizer` removes one.
    """
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"a regulariser kind must be an identifier, got {kind!r}")

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(factory):
            raise TypeError(f"regulariser {kind!r}: the factory must be callable, got {type(factory).__name__}")
        if kind in _BUILT_IN or (kind in _FACTORIES and not replace and _FACTORIES[kind] is not factory):
            raise ValueError(f"a regulariser kind {kind!r} is already registered"
                             + (" (built in)" if kind in _BUILT_IN else "; give replace=True to replace it"))
        _FACTORIES[kind] = factory
        return factory

    return deco


def built_in(kinds) -> None:
    """Mark ``kinds`` as neurornn's own (never replaced or unregistered)."""
    _BUILT_IN.update(kinds)


def unregister_regularizer(kind: str) -> None:
    """Remove a kind registered with :func:`register_regularizer` (the built-in kinds stay)."""
    if kind in _BUILT_IN:
        raise ValueError(f"the built-in regulariser kind {kind!r} cannot be unregistered")
    if kind not in _FACTORIES:
        raise ValueError(f"no regulariser kind {kind!r}; registered: {regularizer_kinds()}")
    del _FACTORIES[kind]


def regularizer_kinds() -> list[str]:
    return sorted(_FACTORIES)


def regularizer_factory(kind: str) -> Callable[..., Any]:
    """The factory registered as ``kind`` (a ``KeyError`` when there is none)."""
    return _FACTORIES[kind]


def regularizer_parameters(kind: str) -> list[str]:
    """The parameters a spec of ``kind`` may give besides ``kind`` and ``strength``."""
    return [name for name in inspect.signature(_FACTORIES[kind]).parameters if name not in ("model", "strength")]
