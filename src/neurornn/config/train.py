"""``TrainConfig``: the frozen, validated description of a training run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from ._base import ConfigMethods
from .._validation import (
    check_bool,
    check_choice,
    check_int,
    check_known_keys,
    check_positive,
    check_real,
    is_real,
    plain,
    suggest,
    suggest_keywords,
)
from ..ops.losses import LOSSES
from .regularizer_kinds import regularizer_kinds, regularizer_parameters

__all__ = ["TrainConfig", "OPTIMIZERS", "LOSSES", "DEVICES", "SMALL_NETWORK_UNITS"]

OPTIMIZERS = ("adam", "sgd")
DEVICES = ("cpu", "cuda", "auto")
SMALL_NETWORK_UNITS = 256  # up to this size one network trains fastest on one CPU thread


def _check_criterion(name: str, value: Any, upper: float | None) -> Any:
    """``None`` (default), ``False`` (off) or a finite number (in (0, upper] if given)."""
    if value is None or value is False:
        return value
    if not is_real(value):
        raise TypeError(f"{name} must be a number, None (default) or False (off), got {value!r}")
    value = plain(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, None (default) or False (off), got {value!r}")
    if value < 0 or (upper is not None and value > upper):
        bound = f"[0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TrainConfig(ConfigMethods):
    """How to train a network on a task (everything ``config.yaml`` records under ``train``).

    Optimisation
    ------------
    steps : int
        Step budget (one step = one batch, forward + backward + update).
    batch_size : int
        Trials per training batch.
    learning_rate : float
    optimizer : {"adam", "sgd"}
    adam_eps : float
        Adam's epsilon (1e-8; larger values, e.g. 1e-3, damp the adaptive steps).
    momentum : float
        SGD momentum (ignored by Adam).
    grad_clip : float or None
        Clip the global gradient norm to this value; ``None``: no clipping.
    loss : {"mse", "cross_entropy"} or None
        ``None``: the task's loss. Both are averaged over the time steps the
        task's mask weights (see :mod:`neurornn.ops.losses`).
    regularizers : sequence of dict
        Terms added to the loss, each ``{"kind": NAME, "strength": s, **params}``
        (see :mod:`neurornn.training.regularizers`).

    Stopping
    --------
    acc_criterion : float, None or False
        Stop when the evaluation accuracy reaches this value; ``None``: the task's
        ``criterion``; ``False``: never stop on accuracy.
    loss_criterion : float, None or False
        Stop when the evaluation task loss is at or below this value; ``None`` or
        ``False``: off.

    Evaluation and records
    ----------------------
    eval_every : int
        Steps between evaluations; each evaluation scores a fresh batch of
        ``eval_batch_size`` trials drawn from a separate seeded generator, and
        writes one row of ``metrics.csv``.
    eval_batch_size : int
    eval_noise : bool
        Evaluate with the network's noise on (True, as in training: the accuracy is
        that of the noisy network that was trained), or noise-free (False).
    history_every : int
        Steps between weight snapshots (plus step 0 and the last step); 0: only those two.
    checkpoint_every : int
        Steps between resumable checkpoints (plus the last step); 0: only the last.

    Other
    -----
    seed : int
        Seeds the generators of training trials, network noise and evaluation
        (the initial weights are seeded by ``RNNConfig.seed``).
    device : {"cpu", "cuda", "auto"}
        ``auto``: CUDA when available, else CPU.
    threads : int or None
        CPU threads torch uses while training (restored afterwards). ``None``: one
        thread for a network of up to ``SMALL_NETWORK_UNITS`` (256) units on the CPU,
        whose per-step products are too small to share between threads (and which a
        second thread slows down 30-fold when other processes keep the cores busy),
        torch's setting otherwise.
    progress : bool
        Show a progress bar (stderr).
    """

    _what: ClassVar[str] = "train config"
    _replace_what: ClassVar[str] = "train config"

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    adam_eps: float = 1e-8
    momentum: float = 0.0
    grad_clip: float | None = 1.0
    loss: str | None = None
    regularizers: tuple = ()
    acc_criterion: float | None | bool = None
    loss_criterion: float | None | bool = None
    eval_every: int = 50
    eval_batch_size: int = 256
    eval_noise: bool = True
    history_every: int = 100
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen)
        set_("steps", check_int("steps", self.steps, minimum=0))
        set_("batch_size", check_int("batch_size", self.batch_size, minimum=1))
        set_("learning_rate", check_positive("learning_rate", self.learning_rate))
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        set_("adam_eps", check_positive("adam_eps", self.adam_eps))
        momentum = check_real("momentum", self.momentum, "a number in [0, 1)")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        set_("momentum", momentum)
        if self.grad_clip is not None:
            set_("grad_clip", check_positive("grad_clip", self.grad_clip))
        if self.loss is not None:
            check_choice("loss", self.loss, LOSSES)
        set_("regularizers", self._check_regularizers(self.regularizers))
        set_("acc_criterion", _check_criterion("acc_criterion", self.acc_criterion, 1.0))
        set_("loss_criterion", _check_criterion("loss_criterion", self.loss_criterion, None))
        set_("eval_every", check_int("eval_every", self.eval_every, minimum=1))
        set_("eval_batch_size", check_int("eval_batch_size", self.eval_batch_size, minimum=1))
        set_("history_every", check_int("history_every", self.history_every, minimum=0))
        set_("checkpoint_every", check_int("checkpoint_every", self.checkpoint_every, minimum=0))
        set_("seed", check_int("seed", self.seed, minimum=0))
        check_choice("device", self.device, DEVICES)
        if self.threads is not None:
            set_("threads", check_int("threads", self.threads, minimum=1))
        for name in ("progress", "eval_noise"):
            set_(name, check_bool(name, getattr(self, name)))

    @staticmethod
    def _check_regularizers(specs: Any) -> tuple:
        if isinstance(specs, Mapping) or isinstance(specs, (str, bytes)):
            raise TypeError(
                "regularizers must be a list of specs like {'kind': 'l2_rates', 'strength': 1e-3}, "
                f"got {specs!r}"
            )
        try:
            specs = list(specs)
        except TypeError:
            raise TypeError(f"regularizers must be a list of specs, got {specs!r}") from None
        out = []
        kinds = regularizer_kinds()
        for i, spec in enumerate(specs):
            if not isinstance(spec, Mapping) or "kind" not in spec:
                raise ValueError(
                    f"regularizers[{i}] must be a mapping with a 'kind' and a 'strength', got {spec!r}"
                )
            kind = spec["kind"]
            if kind not in kinds:
                raise ValueError(f"regularizers[{i}]: unknown kind {kind!r}{suggest(str(kind), kinds)}; known: {kinds}")
            if "strength" not in spec:
                raise ValueError(f"regularizers[{i}] ({kind!r}) needs a 'strength'")
            s = spec["strength"]
            if not is_real(s) or not math.isfinite(s) or s < 0:
                raise ValueError(f"regularizers[{i}] ({kind!r}) strength must be a number >= 0, got {s!r}")
            known = regularizer_parameters(kind)
            for key in spec:
                if key not in ("kind", "strength") and key not in known:
                    raise ValueError(f"regularizers[{i}] ({kind!r}): unknown parameter {key!r}"
                                     f"{suggest(str(key), known)}; known: {known}")
            out.append({key: plain(value) for key, value in spec.items()})
        return tuple(out)

    # ------------------------------------------------------------------ helpers
    def resolved_device(self) -> str:
        """The device to train on (``auto`` resolved)."""
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but CUDA is not available; use 'cpu' or 'auto'")
        return self.device

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-friendly dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["regularizers"] = [dict(s) for s in self.regularizers]
        return out



# ``TrainConfig(step=3)``: "TrainConfig got an unexpected parameter 'step' (did you mean 'steps'?)".
TrainConfig.__init__ = suggest_keywords(TrainConfig.__init__)
