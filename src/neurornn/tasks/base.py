"""The task interface: ``Task`` builds batches of trials, ``Batch`` holds them.

A task defines how a batch of trials is built (its periods, inputs and targets)
and how its accuracy is scored; the base class validates parameters and the
shapes of what a task returns, so a custom task with a wrong shape fails with a
message that names the tensor.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import Tensor

from .._validation import check_int, check_memory, check_nonnegative, check_positive, plain, suggest, suggest_keywords

__all__ = ["Batch", "Task", "ms_to_steps"]


@dataclass(frozen=True)
class Batch:
    """A batch of trials, batch first.

    Attributes
    ----------
    inputs : Tensor of shape (batch, time, n_inputs)
    targets : Tensor of shape (batch, time, n_outputs)
        Target outputs; for cross-entropy tasks a one-hot class per time step.
    mask : Tensor of shape (batch, time)
        Loss weight of every time step (0 where the output is not scored).
    conditions : dict of name -> Tensor of shape (batch,)
        Per-trial conditions (choice, coherence, context, ...).
    periods : Tensor of shape (batch, time), int, optional
        Index into ``period_names`` of the period each time step belongs to.
    period_names : tuple of str
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    conditions: dict[str, Tensor] = field(default_factory=dict)
    periods: Tensor | None = None
    period_names: tuple[str, ...] = ()

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]

    @property
    def n_steps(self) -> int:
        return self.inputs.shape[1]

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch on another device."""
        return Batch(
            self.inputs.to(device),
            self.targets.to(device),
            self.mask.to(device),
            {k: v.to(device) for k, v in self.conditions.items()},
            None if self.periods is None else self.periods.to(device),
            self.period_names,
        )

    def period_mask(self, name: str) -> Tensor:
        """Boolean (batch, time): the steps of period ``name``."""
        if self.periods is None or name not in self.period_names:
            raise ValueError(f"period {name!r} not in this batch's periods {list(self.period_names)}")
        return self.periods == self.period_names.index(name)


def ms_to_steps(name: str, ms: float, dt_ms: float, *, allow_zero: bool = True) -> int:
    """Convert a duration in ms to a number of steps of ``dt_ms``.

    Raises if the duration is negative or not a whole multiple of ``dt_ms``.
    """
    if allow_zero:
        check_nonnegative(name, ms)
    else:
        check_positive(name, ms)
    steps = ms / dt_ms
    if not math.isclose(steps, round(steps), rel_tol=0, abs_tol=1e-6):
        raise ValueError(f"{name} must be a multiple of dt_ms={dt_ms}, got {ms}")
    return int(round(steps))


class Task(ABC):
    """Base of every task.

    Subclasses set ``name``, ``description``, ``input_names``, ``output_names``,
    ``loss`` ("mse" or "cross_entropy") and ``criterion`` (the accuracy a trained
    network should reach), validate their parameters in ``__init__`` (calling
    ``super().__init__(dt_ms)``), record them in ``self._params``, and implement
    :meth:`build` and :meth:`evaluate`.

    ``defaults`` may hold recommended ``model`` and ``train`` settings used by
    ``neurornn train --task NAME`` when no config file is given.
    """

    name: ClassVar[str] = "task"
    description: ClassVar[str] = ""
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    loss: ClassVar[str] = "mse"
    criterion: ClassVar[float] = 0.9
    defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, dt_ms: float) -> None:
        self.dt_ms = float(check_positive("dt_ms", dt_ms))
        self._params: dict[str, Any] = {"dt_ms": self.dt_ms}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A misspelt keyword names the task and suggests the parameter, as tasks.make does.
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = suggest_keywords(cls.__init__, _unknown_parameter)

    # ------------------------------------------------------------------ sizes
    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def params(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this task with :func:`neurornn.tasks.make`."""
        return {k: _plain_value(v) for k, v in self._params.items()}

    # ------------------------------------------------------------------ trials
    def batch(self, n: int, generator: torch.Generator | None = None) -> Batch:
        """Build ``n`` trials, drawing all randomness from ``generator``.

        Returns
        -------
        Batch with inputs (n, time, n_inputs), targets (n, time, n_outputs),
        mask (n, time) and conditions of shape (n,).
        """
        return self._draw(self.build, n, generator, getattr(self, "n_steps", None))

    def evaluation_batch(self, n: int, generator: torch.Generator | None = None) -> Batch:
        """Build ``n`` trials for scoring a network (the loop's evaluations, the held-out score).

        The same as :meth:`batch` unless the task overrides :meth:`build_evaluation`
        (the flip-flop adds a probe of every memory and a long hold, so that a
        network that loses one memory cannot pass).
        """
        return self._draw(self.build_evaluation, n, generator, self.evaluation_steps)

    @property
    def evaluation_steps(self) -> int | None:
        """Steps of an evaluation trial, for the memory check (default ``n_steps``; None: unknown)."""
        return getattr(self, "n_steps", None)

    def build_evaluation(self, n: int, generator: torch.Generator) -> Batch:
        """Build ``n`` evaluation trials (called by :meth:`evaluation_batch`); default :meth:`build`."""
        return self.build(n, generator)

    def _draw(self, build: Callable[[int, torch.Generator], Batch], n: int,
              generator: torch.Generator | None, steps: Any) -> Batch:
        n = check_int("n", n, minimum=1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self._check_batch_memory(n, steps)
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        batch = build(n, generator)
        self._check_batch(batch, n)
        return batch

    def _check_batch_memory(self, n: int, steps: Any) -> None:
        """Refuse a batch of ``n`` trials of ``steps`` steps whose tensors would not fit in memory
        (tasks that know their trial length)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            return
        channels = self.n_inputs + self.n_outputs
        # float32 inputs, targets and mask and int64 periods, about twice over while building
        n_bytes = 2 * n * steps * (4 * (channels + 1) + 8)
        check_memory(f"n={n}: a batch of {n} trials of task {self.name!r} needs", n_bytes,
                     "use fewer trials (a smaller batch_size / eval_batch_size / n_trials)",
                     detail=f"inputs, targets, mask and periods: {steps} steps x {channels} input and output "
                            "channels, and as much again while building")

    @abstractmethod
    def build(self, n: int, generator: torch.Generator) -> Batch:
        """Build ``n`` trials (called by :meth:`batch`, which validates the result)."""

    def _check_batch(self, batch: Batch, n: int) -> None:
        who = f"task {self.name!r}"
        if not isinstance(batch, Batch):
            raise TypeError(f"{who}: build() must return a Batch, got {type(batch).__name__}")
        for tensor_name in ("inputs", "targets", "mask"):
            if not isinstance(getattr(batch, tensor_name), Tensor):
                raise TypeError(f"{who}: batch.{tensor_name} must be a torch.Tensor")
        expected = {
            "inputs": (n, None, self.n_inputs),
            "targets": (n, None, self.n_outputs),
            "mask": (n, None),
        }
        steps = batch.inputs.shape[1] if batch.inputs.ndim == 3 else None
        for tensor_name, shape in expected.items():
            got = tuple(getattr(batch, tensor_name).shape)
            want = tuple(steps if s is None else s for s in shape)
            if got != want:
                pretty = "(" + ", ".join("time" if s is None else str(s) for s in shape) + ")"
                raise ValueError(f"{who}: batch.{tensor_name} must have shape {pretty} = {want}, got {got}")
        for cond, value in batch.conditions.items():
            if not isinstance(value, Tensor) or tuple(value.shape[:1]) != (n,):
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"{who}: condition {cond!r} must be a tensor of shape ({n},), got {got}")
        if batch.periods is not None and tuple(batch.periods.shape) != (n, steps):
            raise ValueError(
                f"{who}: batch.periods must have shape ({n}, {steps}), got {tuple(batch.periods.shape)}"
            )

    def condition_values(self) -> dict[str, tuple]:
        """The possible values of each discrete condition (for tests and plots).

        Returns a dict condition name -> tuple of every value it can take; tasks
        with continuous or unbounded conditions leave those out.
        """
        return {}

    # ------------------------------------------------------------------ scoring
    @abstractmethod
    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Score outputs (batch, time, n_outputs) against a batch.

        Returns a dict with at least ``"accuracy"`` as the task's seed defines it.
        Values may be numbers, bools, NumPy scalars or tensors (see :meth:`scores`).
        """

    def scores(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """:meth:`evaluate` as plain floats, the one way every trainer and analysis reads scores.

        A number, bool (1.0 / 0.0), NumPy scalar or one-element tensor becomes its float; a
        numeric array or tensor of several values (e.g. one score per trial) becomes its mean;
        anything else (text, ...) is left out. ``"accuracy"`` must be there.
        """
        raw = self.evaluate(outputs, batch)
        if not isinstance(raw, Mapping) or "accuracy" not in raw:
            got = list(raw) if isinstance(raw, Mapping) else type(raw).__name__
            raise ValueError(f"task {self.name!r}: evaluate() must return a dict with 'accuracy', got {got}")
        out = {}
        for key, value in raw.items():
            number = _score_value(value)
            if number is not None:
                out[str(key)] = number
        if "accuracy" not in out:
            raise ValueError(f"task {self.name!r}: evaluate()['accuracy'] must be a number, got {raw['accuracy']!r}")
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


def _unknown_parameter(task: Task, name: str, known: list[str]) -> ValueError:
    return ValueError(f"unknown parameter {name!r} for task {type(task).name!r}{suggest(name, known)}; "
                      f"known: {known}")


def _score_value(value: Any) -> float | None:
    """One score as a float (see :meth:`Task.scores`); ``None`` when it is not numeric."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # torch tensors, NumPy arrays and scalars
        tensor = torch.as_tensor(value.detach().cpu() if isinstance(value, Tensor) else value)
        if tensor.dtype.is_complex or tensor.numel() == 0:
            return None
        return float(tensor.double().mean())
    return None


def _plain_value(value: Any) -> Any:
    """NumPy scalars (also inside lists and tuples) as Python numbers, for config.yaml."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_value(v) for v in value)
    return plain(value)
