"""Task registry: ``make(name, **params)``, ``names()``, ``register``.

Besides registered names, ``make`` accepts

- ``"package.module:ClassName"`` or ``"path/to/file.py:ClassName"``: a user's own
  :class:`~neurornn.tasks.Task` subclass, imported on demand (the module must be
  importable: the import path is never changed); ``trust_code=False`` refuses to
  import it (``UntrustedCodeError``), which is how run folders are loaded;
- ``"neurogym:EnvName-v0"``: any NeuroGym environment through the adapter
  (needs the ``neurogym`` extra).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from .._validation import suggest
from .base import Task
from .neurogym_adapter import NeuroGymTask

__all__ = ["register", "unregister", "make", "names", "get", "describe", "names_code", "UntrustedCodeError"]

_REGISTRY: dict[str, type[Task]] = {}


class UntrustedCodeError(ValueError):
    """A task name that imports code was given where code is not trusted (e.g. from a run folder)."""


def names_code(name: str) -> bool:
    """True when task ``name`` imports a user's code (``module:Class`` or ``file.py:Class``)."""
    return isinstance(name, str) and ":" in name and not name.startswith("neurogym:")


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: register a Task subclass under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register expects a Task subclass, got {cls!r}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a task named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a task registered with :func:`register` (neurornn's own tasks stay)."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"no task named {name!r}{suggest(str(name), _REGISTRY)}; registered: {names()}")
    if cls.__module__.startswith("neurornn."):
        raise ValueError(f"the built-in task {name!r} cannot be unregistered")
    del _REGISTRY[name]


def names() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """Registered task names with their one-line descriptions."""
    return {name: _REGISTRY[name].description for name in names()}


def _load_custom(spec: str) -> type[Task]:
    module_name, _, class_name = spec.rpartition(":")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"task module file {str(path)!r} does not exist (from task {spec!r})")
        mod_key = f"_neurornn_user_task_{path.stem}"
        mod_spec = importlib.util.spec_from_file_location(mod_key, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_key] = module
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"cannot import module {module_name!r} for task {spec!r}: {err} (put its folder on "
                             "PYTHONPATH, or name its file: path/to/module.py:Class)") from err
    cls = getattr(module, class_name, None)
    if cls is None:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ValueError(f"module {module_name!r} has no {class_name!r}{suggest(class_name, public)}")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{spec!r} must name a neurornn.tasks.Task subclass, got {cls!r}")
    return cls


def get(name: str, *, trust_code: bool = True) -> Callable[..., Task]:
    """The task class (or factory) behind ``name``.

    ``trust_code=False``: a name that would import a user's code is refused
    (``UntrustedCodeError``) instead of imported.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"task name must be a non-empty string, got {name!r}")
    if names_code(name) and not trust_code:
        raise UntrustedCodeError(f"task {name!r} names code to import; it is imported only when trusted "
                                 "(trust_code=True / --trust-code)")
    if name.startswith("neurogym:"):
        env_id = name.split(":", 1)[1]
        return functools.partial(NeuroGymTask, env_id)
    if ":" in name:
        return _load_custom(name)
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown task {name!r}{suggest(name, _REGISTRY)}; known tasks: {names()} "
            "(or 'module:Class' for your own, 'neurogym:Env-v0' for NeuroGym)"
        )
    return _REGISTRY[name]


def make(name: str, /, trust_code: bool = True, **params: Any) -> Task:
    """Build a task by name with validated keyword parameters.

    ``trust_code=False`` refuses names that import code (see :func:`get`).

    Examples
    --------
    >>> task = make("perceptual_decision_making", dt_ms=20)
    >>> task.n_inputs, task.n_outputs
    (3, 3)
    """
    factory = get(name, trust_code=trust_code)
    try:
        return factory(**params)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            bad = str(err).split("'")[-2] if "'" in str(err) else "?"
            known = _parameter_names(factory)
            raise ValueError(
                f"unknown parameter {bad!r} for task {name!r}{suggest(bad, known)}; known: {known}"
            ) from err
        raise


def _parameter_names(factory: Callable[..., Task]) -> list[str]:
    """The keyword parameters a task factory (a class, a partial, a function) accepts."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in signature.parameters.values() if p.kind in plain and p.name != "self"]
