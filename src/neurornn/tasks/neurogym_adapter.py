"""Any NeuroGym environment as a neurornn task: ``tasks.make("neurogym:EnvId-v0", dt_ms=20)``.

NeuroGym (Molano-Mazon et al. 2022) builds trials one at a time, time first; the
adapter stacks them batch first, pads trials of different lengths (mask 0 on the
padding), and turns the ground truth into one-hot targets for discrete action
spaces (cross-entropy). Randomness comes from the batch's ``torch.Generator``:
the environment's ``rng`` is re-seeded from it before each batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice, suggest
from .base import Batch, Task

__all__ = ["NeuroGymTask", "neurogym_env_ids"]

MASKS = ("all", "decision")
_INSTALL = 'NeuroGym is not installed; install it with: pip install "neurornn[neurogym]"'


def _import_neurogym():
    try:
        import neurogym  # noqa: F401
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return neurogym


def neurogym_env_ids() -> list[str]:
    """Ids of the registered NeuroGym environments (sorted)."""
    _import_neurogym()
    import gymnasium

    return sorted(k for k, spec in gymnasium.envs.registry.items() if "neurogym" in str(spec.entry_point))


def _channel_names(space: Any, size: int, prefix: str) -> tuple[str, ...]:
    """Names of a NeuroGym space's channels from its ``name`` dict, else ``prefix_k``."""
    names = [f"{prefix}_{k}" for k in range(size)]
    mapping = getattr(space, "name", None)
    if isinstance(mapping, dict):
        for label, idx in mapping.items():
            idx = [idx] if isinstance(idx, (int, np.integer)) else list(idx)
            for j, i in enumerate(idx):
                if 0 <= i < size:
                    names[i] = str(label) if len(idx) == 1 else f"{label}_{j + 1}"
    if len(set(names)) != len(names):
        names = [f"{prefix}_{k}" for k in range(size)]
    return tuple(names)


class NeuroGymTask(Task):
    """A NeuroGym environment seen as a supervised task (batch first).

    Inputs: the environment's observations ``ob`` (named from its observation
    space). Targets: for a ``Discrete`` action space, the one-hot ground truth
    ``gt`` (cross-entropy); for a ``Box`` action space, ``gt`` itself (MSE).

    Mask: ``"all"`` scores every step of every trial (NeuroGym's supervised
    ``Dataset``), ``"decision"`` only the steps of its ``decision`` period; padding
    is never scored.

    Accuracy: on the decision-period steps (or, for environments without one, the
    steps whose ground truth is not the fixation action 0), the fraction where the
    argmax output is the ground truth, as NeuroGym scores its decisions.

    Parameters
    ----------
    env_id : str
        A NeuroGym environment id, e.g. ``"PerceptualDecisionMaking-v0"``.
    dt_ms : float
        NeuroGym's ``dt`` (default 100 ms as NeuroGym).
    mask : {"all", "decision"}
    env_kwargs : dict, optional
        Passed to ``neurogym.make`` (e.g. ``{"timing": {...}}``).
    """

    loss = "cross_entropy"
    criterion = 0.8
    defaults = {
        "model": {"n_units": 64, "tau_ms": 100.0, "activation": "relu"},
        "train": {"steps": 2000, "batch_size": 32, "learning_rate": 0.01},
    }

    def __init__(self, env_id: str, dt_ms: float = 100.0, mask: str = "all",
                 env_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(dt_ms)
        ngym = _import_neurogym()
        self.mask_mode = check_choice("mask", mask, MASKS)
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(env_kwargs).__name__}")
        self.env_kwargs = dict(env_kwargs or {})
        known = neurogym_env_ids()
        if env_id not in known:
            raise ValueError(f"unknown NeuroGym environment {env_id!r}{suggest(env_id, known)}; known: {known}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.env = ngym.make(env_id, dt=self.dt_ms, **self.env_kwargs).unwrapped
            except TypeError as err:
                raise ValueError(f"bad env_kwargs for NeuroGym {env_id!r}: {err}") from err
        self.env_id = env_id
        self.name = f"neurogym:{env_id}"
        doc = (type(self.env).__doc__ or "").strip().splitlines()
        self.description = f"NeuroGym {env_id}: {doc[0] if doc else ''}".strip()
        obs, act = self.env.observation_space, self.env.action_space
        self.discrete = hasattr(act, "n")
        self.loss = "cross_entropy" if self.discrete else "mse"
        self.input_names = _channel_names(obs, int(np.prod(obs.shape)), "ob")
        n_out = int(act.n) if self.discrete else int(np.prod(act.shape))
        self.output_names = _channel_names(act, n_out, "action")
        # "padding" first so its index never moves when trials reveal new periods.
        self.period_order: tuple[str, ...] = ("padding",) + tuple(self.env.timing)
        self._params.update(mask=mask, env_kwargs=self.env_kwargs or None)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        env = self.env
        env.seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        obs, gts, trials, bounds = [], [], [], []
        for _ in range(n):
            trials.append(env.new_trial())
            obs.append(np.asarray(env.ob, dtype=np.float32).reshape(len(env.ob), -1))
            gts.append(np.asarray(env.gt))
            bounds.append({p: (env.start_ind[p], env.end_ind[p]) for p in env.start_ind})
        T = max(len(o) for o in obs)
        for b in bounds:
            new = [p for p in b if p not in self.period_order]
            self.period_order = self.period_order + tuple(new)
        inputs = torch.zeros(n, T, self.n_inputs)
        periods = torch.zeros(n, T, dtype=torch.long)  # 0: padding
        real = torch.zeros(n, T)
        if self.discrete:
            labels = torch.zeros(n, T, dtype=torch.long)
        else:
            targets = torch.zeros(n, T, self.n_outputs)
        for i in range(n):
            L = len(obs[i])
            inputs[i, :L] = torch.from_numpy(obs[i])
            real[i, :L] = 1.0
            gt = torch.from_numpy(gts[i].astype(np.int64 if self.discrete else np.float32))
            if self.discrete:
                labels[i, :L] = gt.reshape(L)
            else:
                targets[i, :L] = gt.reshape(L, -1)
            for p, (a, b) in bounds[i].items():
                periods[i, a:b] = self.period_order.index(p)
        if self.discrete:
            targets = torch.nn.functional.one_hot(labels, self.n_outputs).float()
            targets[real == 0] = 0.0
        mask = real
        if self.mask_mode == "decision":
            if "decision" not in self.period_order:
                raise ValueError(f"mask='decision' but {self.env_id} has no 'decision' period "
                                 f"(periods: {list(self.period_order[1:])})")
            mask = real * (periods == self.period_order.index("decision")).float()
        conditions = {}
        for key, value in trials[0].items():
            values = [t.get(key) for t in trials]
            if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
                conditions[key] = torch.tensor([float(v) for v in values])
        return Batch(inputs, targets, mask, conditions, periods, self.period_order)

    def _scored(self, batch: Batch) -> Tensor:
        real = batch.periods != 0  # 0 is "padding"
        if "decision" in batch.period_names:
            return batch.periods == batch.period_names.index("decision")
        return real & (batch.targets.argmax(-1) != 0)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Decision-step accuracy (argmax == ground truth) and last-step trial accuracy."""
        if not self.discrete:
            real = batch.periods != 0
            err = ((outputs - batch.targets) ** 2).mean(-1)
            return {"accuracy": ((err < 0.25) & real).sum().item() / max(real.sum().item(), 1),
                    "mse": err[real].mean().item()}
        scored = self._scored(batch)
        right = outputs.argmax(-1) == batch.targets.argmax(-1)
        acc = (right & scored).sum().item() / max(scored.sum().item(), 1)
        last = (batch.periods != 0).long().sum(1) - 1
        rows = torch.arange(len(last))
        trial = right[rows, last].float().mean().item()
        return {"accuracy": acc, "trial_accuracy": trial}
