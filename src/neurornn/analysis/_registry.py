"""The registry of the analysis pipeline: each analysis' name, what it needs, which files it writes.

An analysis is a function of a :class:`~neurornn.analysis.pipeline.Context` that
writes its files through ``ctx.out`` and returns a one-sentence message (or
``(message, value)``, ``value`` being what :func:`~neurornn.analysis.analyze_run`
hands back to Python). It is registered with :func:`register_analysis`; the
pipeline and ``neurornn analyze`` then know it, and the contract tests
(``tests/test_pipeline.py``) run it from Python and from the command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .._validation import suggest

if TYPE_CHECKING:
    from .pipeline import AnalysisOptions, Context

__all__ = ["Analysis", "AnalysisResult", "ANALYSES", "NEEDS", "analysis_names", "register_analysis",
           "unregister_analysis"]

# What an analysis can ask the pipeline to prepare (and share with the others): the analysis batch
# (``options.n_trials`` trials from ``options.seed``), the activity it evokes in the recorded units
# (``options.area``) and in every unit. The run, model, task, options and the file writer are always there.
NEEDS = ("batch", "activity", "full_activity")

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ENTRY = re.compile(r"(analysis|figures)/[A-Za-z0-9][A-Za-z0-9_.-]*\.(json|npz|csv|png)")

_REGISTRY: dict[str, "Analysis"] = {}
ANALYSES = MappingProxyType(_REGISTRY)  # name -> Analysis, in registration order (read-only view)


@dataclass(frozen=True)
class Analysis:
    """One registered analysis.

    Attributes
    ----------
    name : str
        Its name in ``analyze_run(run, [name])`` and ``neurornn analyze RUN --only name``.
    run : callable ``(ctx) -> message`` or ``(ctx) -> (message, value)``
    needs : tuple of str
        Which of :data:`NEEDS` it uses (prepared before it runs; using another is an error).
    writes : tuple of str
        Every file it may write, relative to the run folder, e.g. ``"analysis/pca.json"``
        (the snapshot suffix goes before the extension: ``analysis/pca_snapshot0.json``).
    help : str
    plan : callable ``(ctx) -> iterable of str``, optional
        The entries of ``writes`` it writes for this run (default: all of them);
        e.g. no 3D figure for fewer than 3 units.
    memory : callable ``(options, n_units, n_steps) -> (bytes, option name or None)``, optional
        Memory its largest batch needs beyond the weights, and the option that lowers it.
        Default: the analysis batch's (``n_trials``) when it needs one, else nothing.
    """

    name: str
    run: Callable[["Context"], Any]
    needs: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    help: str = ""
    plan: Callable[["Context"], Iterable[str]] | None = None
    memory: Callable[["AnalysisOptions", int, int], tuple[float, str | None]] | None = None

    def planned(self, ctx: "Context") -> tuple[str, ...]:
        """The entries of ``writes`` this analysis writes for ``ctx``."""
        if self.plan is None:
            return self.writes
        entries = tuple(self.plan(ctx))
        undeclared = [e for e in entries if e not in self.writes]
        if undeclared:
            raise RuntimeError(f"analysis {self.name!r} plans {undeclared}, which it does not declare in "
                               f"writes={list(self.writes)}")
        return entries


@dataclass(frozen=True)
class AnalysisResult:
    """What one analysis of :func:`~neurornn.analysis.analyze_run` did.

    Attributes
    ----------
    name : str
    message : str
        One sentence, as ``neurornn analyze`` prints it.
    files : tuple of Path
        The files written, in order.
    seconds : float
        Wall time of the analysis itself (the shared batch and activity excluded).
    value : object
        What it computed: a dict of its JSON summary, an ``Activity``, a ``PCA``,
        a list of ``PsychometricCurve``, ``FixedPoints``, ... (``None`` if nothing).
    """

    name: str
    message: str
    files: tuple[Path, ...]
    seconds: float
    value: Any = None


def analysis_names() -> tuple[str, ...]:
    """Names of the registered analyses, in the order the pipeline runs them."""
    return tuple(_REGISTRY)


def _check_entries(name: str, writes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(writes, str):
        raise TypeError(f"writes of analysis {name!r} must be a sequence of file names, got the string {writes!r}")
    entries = tuple(writes)
    for entry in entries:
        if not isinstance(entry, str) or not _ENTRY.fullmatch(entry):
            raise ValueError(f"writes of analysis {name!r}: each entry must look like 'analysis/NAME.json' "
                             f"(folder analysis/ or figures/; .json, .npz, .csv or .png), got {entry!r}")
    if len(set(entries)) != len(entries):
        raise ValueError(f"writes of analysis {name!r} lists a file twice: {list(entries)}")
    return entries


def register_analysis(
    name: str,
    *,
    needs: Iterable[str] = (),
    writes: Iterable[str] = (),
    help: str = "",
    plan: Callable[["Context"], Iterable[str]] | None = None,
    memory: Callable[["AnalysisOptions", int, int], tuple[float, str | None]] | None = None,
    replace: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn(ctx)`` as the analysis ``name`` (see :class:`Analysis`).

    Example
    -------
    >>> @register_analysis("mean_rate", needs=("activity",), writes=("analysis/mean_rate.json",))
    ... def mean_rate(ctx):
    ...     value = float(ctx.activity.rates.mean())
    ...     ctx.out.json("mean_rate", {"mean_rate": value})
    ...     return f"Mean rate {value:.3g}.", value

    The function is returned unchanged. A name already registered is an error
    unless ``replace=True``.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"analysis name must be lower-case letters, digits and _ (a letter first), got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"analysis {name!r} is already registered; pass replace=True to replace it")
    if isinstance(needs, str):
        raise TypeError(f"needs of analysis {name!r} must be a sequence of names, got the string {needs!r}")
    needs = tuple(needs)
    for need in needs:
        if need not in NEEDS:
            raise ValueError(f"needs of analysis {name!r}: unknown need {need!r}{suggest(str(need), NEEDS)}; "
                             f"known: {list(NEEDS)}")
    entries = _check_entries(name, writes)
    if not isinstance(help, str):
        raise TypeError(f"help of analysis {name!r} must be a str, got {type(help).__name__}")
    for what, value in (("plan", plan), ("memory", memory)):
        if value is not None and not callable(value):
            raise TypeError(f"{what} of analysis {name!r} must be callable, got {type(value).__name__}")

    def decorate(fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"register_analysis({name!r}) decorates a function, got {type(fn).__name__}")
        _REGISTRY[name] = Analysis(name, fn, needs, entries, help, plan, memory)
        return fn

    return decorate


def unregister_analysis(name: str) -> Analysis:
    """Remove the analysis ``name`` from the registry; returns it."""
    if name not in _REGISTRY:
        raise ValueError(f"no analysis {name!r} is registered{suggest(str(name), _REGISTRY)}; "
                         f"registered: {list(_REGISTRY)}")
    return _REGISTRY.pop(name)
