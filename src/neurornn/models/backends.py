"""Time-loop backends: the one place that decides which implementation runs the loop.

A backend runs :func:`~neurornn.models.dynamics.reference_loop`'s computation
(same arguments, same results): ``run(dynamics, initial_state, drive, w_rec, noise)
-> (states, rates)``, and says through ``why_not(...)`` (same arguments) why it
cannot run a call, or ``None`` when it can. ``RNNConfig.loop`` names one;
``"auto"`` takes the first backend in :func:`backend_names` order that can run the
call (the reference loop can run every call, so it comes last).

Built in: ``"fused"`` (:mod:`neurornn.models.fused`: hand-written backward through
time, CPU and CUDA, float32/float64) and ``"reference"`` (autograd through
:meth:`~neurornn.models.dynamics.Dynamics.step`). A new backend (a CUDA kernel, a
compiled CPU loop) is one :func:`register_backend` call; see docs/extending.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from .._validation import suggest
from ..config.model import allow_loop
from .dynamics import Dynamics, StepNoise, reference_loop
from .fused import fused_loop, fused_unsupported_reason

__all__ = ["Backend", "register_backend", "unregister_backend", "backend_names", "get_backend",
           "select_backend", "AUTO"]

AUTO = "auto"

LoopFunction = Callable[[Dynamics, Tensor, Tensor, Tensor, "StepNoise | None"], "tuple[Tensor, Tensor]"]
WhyNot = Callable[[Dynamics, Tensor, Tensor, Tensor, "StepNoise | None"], "str | None"]


def _always(*_args) -> None:
    return None


@dataclass(frozen=True)
class Backend:
    """A time-loop implementation.

    Attributes
    ----------
    name : str
        What ``RNNConfig.loop`` names it by.
    run : callable ``(dynamics, initial_state, drive, w_rec, noise) -> (states, rates)``
        The arguments and results of :func:`~neurornn.models.dynamics.reference_loop`.
    why_not : callable, same arguments -> str or None
        Why this backend cannot run the call (``None``: it can). It sees a ``drive``
        of the right shape, dtype and device but not its values (an expanded zero).
    time_major : bool
        The backend works on buffers laid out (time, batch) underneath: the model then
        computes the drive in that row order, and reads the rates in it, so that
        nothing is transposed in memory.
    description : str
    """

    name: str
    run: LoopFunction
    why_not: WhyNot = _always
    time_major: bool = False
    description: str = ""


_BACKENDS: dict[str, Backend] = {}
_ORDER: list[str] = []


def register_backend(backend: Backend, *, before: str | None = None) -> Backend:
    """Add ``backend`` to the registry; ``"auto"`` tries it before ``before`` (default: before the
    reference loop, i.e. after every backend registered earlier). Returns ``backend``."""
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a neurornn.models.backends.Backend, got {type(backend).__name__}")
    if not isinstance(backend.name, str) or not backend.name.isidentifier() or backend.name == AUTO:
        raise ValueError(f"a backend's name must be an identifier other than 'auto', got {backend.name!r}")
    if backend.name in _BACKENDS:
        raise ValueError(f"a backend named {backend.name!r} is already registered; unregister_backend it first")
    if not callable(backend.run) or not callable(backend.why_not):
        raise TypeError(f"backend {backend.name!r}: run and why_not must be callables")
    anchor = before if before is not None else ("reference" if "reference" in _BACKENDS else None)
    if anchor is not None and anchor not in _BACKENDS:
        raise ValueError(f"before must name a registered backend ({backend_names()}), got {anchor!r}")
    _BACKENDS[backend.name] = backend
    _ORDER.insert(_ORDER.index(anchor) if anchor is not None else len(_ORDER), backend.name)
    allow_loop(backend.name)
    return backend


def unregister_backend(name: str) -> None:
    """Remove a backend registered with :func:`register_backend` (the built-in ones stay)."""
    if name in ("reference", "fused"):
        raise ValueError(f"the built-in backend {name!r} cannot be unregistered")
    if name not in _BACKENDS:
        raise ValueError(f"no backend named {name!r}; registered: {backend_names()}")
    del _BACKENDS[name]
    _ORDER.remove(name)
    allow_loop(name, allowed=False)


def backend_names() -> list[str]:
    """The registered backends, in the order ``"auto"`` tries them."""
    return list(_ORDER)


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS:
        raise ValueError(f"loop must be 'auto' or a registered backend {backend_names()}, got {name!r}"
                         f"{suggest(str(name), _ORDER)}")
    return _BACKENDS[name]


def select_backend(requested: str, dynamics: Dynamics, initial_state: Tensor, drive: Tensor, w_rec: Tensor,
                   noise: StepNoise | None) -> Backend:
    """The backend that runs this call: ``requested`` if it can (a ValueError saying why not
    otherwise), or for ``"auto"`` the first in :func:`backend_names` that can."""
    args = (dynamics, initial_state, drive, w_rec, noise)
    if requested != AUTO:
        backend = get_backend(requested)
        reason = backend.why_not(*args)
        if reason is not None:
            raise ValueError(f"loop={requested!r} cannot run here: {reason}; use loop='auto' or loop='reference'")
        return backend
    for name in _ORDER:
        backend = _BACKENDS[name]
        if backend.why_not(*args) is None:
            return backend
    raise ValueError("no registered backend can run this call")  # pragma: no cover - reference runs every call


register_backend(Backend("reference", reference_loop, description="autograd through Dynamics.step, step by step"))
register_backend(Backend("fused", fused_loop, fused_unsupported_reason, time_major=True,
                         description="hand-written backward through time (CPU and CUDA, float32/float64)"))
