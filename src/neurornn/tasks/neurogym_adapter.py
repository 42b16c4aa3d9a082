"""Any NeuroGym environment as a neurornn task: ``tasks.make("neurogym:EnvId-v0")``.

NeuroGym (Molano-Mazon et al. 2022) builds trials one at a time, time first; the
adapter stacks them batch first, pads trials of different lengths (mask 0 on the
padding), and chooses the targets and loss from the environment's ground truth:
one-hot classes and cross-entropy for a ``Discrete`` action space, the continuous
ground truth and MSE otherwise. Environments without supervised targets
(reinforcement-learning ones) are refused. Randomness comes from the batch's
``torch.Generator``: the environment's random state is re-seeded from it before
each batch, and every batch starts from the environment's state before its
first trial, so a seed reproduces a batch exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice, check_positive, suggest
from ._neurogym_env import open_env, probe_env, restore, snapshot, trial_arrays
from .base import Batch, Task

__all__ = ["NeuroGymTask", "neurogym_env_ids"]

MASKS = ("all", "decision")
TOLERANCE = 0.1  # continuous targets: a step is right within this fraction of each channel's target range
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
    space), of shape (batch, time, n_inputs). Targets, of shape (batch, time,
    n_outputs), from its ground truth ``gt``, told apart on a few trials drawn at
    construction:

    - a ``Discrete`` action space whose ground truth is a class index at every
      step: one-hot targets over its actions, loss ``"cross_entropy"``;
    - a ``Box`` action space (ReachingDelayResponse, SpatialSuppressMotion), or a
      ``Discrete`` one whose ground truth is continuous (Reaching1D's target angle
      in radians, one output ``ground_truth``): the ground truth itself, loss ``"mse"``.

    An environment whose trials define no ground truth (Bandit, DawTwoStep,
    EconomicDecisionMaking, Null: reinforcement-learning environments) is refused
    with a ValueError that says so.

    Mask: ``"all"`` scores every step of every trial (NeuroGym's supervised
    ``Dataset``), ``"decision"`` only the steps of its ``decision`` period; padding
    is never scored.

    Accuracy, discrete targets: on the decision-period steps (or, for environments
    without one, the steps whose ground truth is not the fixation action 0), the
    fraction where the argmax output is the ground truth, as NeuroGym scores its
    decisions; ``trial_accuracy``: the same on each trial's last step.
    Continuous targets: the fraction of the masked steps where every output channel
    k is within ``TOLERANCE`` (0.1) x ``target_range[k]`` of its target, the range
    being max - min of that channel's ground truth over the construction's probe
    trials; ``mse``: the mean squared error on those steps; ``explained_variance``:
    1 - that error / the targets' variance there.

    Parameters
    ----------
    env_id : str
        A NeuroGym environment id, e.g. ``"PerceptualDecisionMaking-v0"``.
    dt_ms : float, optional
        NeuroGym's ``dt``; default: the environment's own (100 ms for most, 50 for
        ToneDetection, 8.3 for SpatialSuppressMotion, ...).
    mask : {"all", "decision"}
    env_kwargs : dict, optional
        Passed to ``neurogym.make`` (e.g. ``{"timing": {...}}``; AnnubesEnv needs
        ``session`` and ``catch_prob``).
    """

    loss = "cross_entropy"
    criterion = 0.8
    defaults = {
        "model": {"n_units": 64, "tau_ms": 100.0, "activation": "relu"},
        "train": {"steps": 2000, "batch_size": 32, "learning_rate": 0.01},
    }

    def __init__(self, env_id: str, dt_ms: float | None = None, mask: str = "all",
                 env_kwargs: dict[str, Any] | None = None) -> None:
        ngym = _import_neurogym()
        if dt_ms is not None:
            check_positive("dt_ms", dt_ms)
        self.mask_mode = check_choice("mask", mask, MASKS)
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(env_kwargs).__name__}")
        env_kwargs = dict(env_kwargs or {})
        known = neurogym_env_ids()
        if env_id not in known:
            raise ValueError(f"unknown NeuroGym environment {env_id!r}{suggest(env_id, known)}; known: {known}")
        self.env = open_env(ngym, env_id, dt_ms, env_kwargs)
        super().__init__(self.env.dt if dt_ms is None else dt_ms)
        self.env_kwargs = env_kwargs
        self.env_id = env_id
        self.name = f"neurogym:{env_id}"
        doc = (type(self.env).__doc__ or "").strip().splitlines()
        self.description = f"NeuroGym {env_id}: {doc[0] if doc else ''}".strip()
        self._state = snapshot(self.env)  # before any trial: every batch starts from it
        probe = probe_env(self.env, env_id, self._state)
        self.discrete = probe.discrete
        self.loss = "cross_entropy" if self.discrete else "mse"
        self.target_range = torch.tensor(probe.target_range)  # (n_outputs,), continuous targets only
        obs, act = self.env.observation_space, self.env.action_space
        self.input_names = _channel_names(obs, int(np.prod(obs.shape)), "ob")
        if self.discrete:
            self.output_names = _channel_names(act, int(act.n), "action")
        elif hasattr(act, "n"):  # continuous ground truth of a Discrete action space
            n = probe.n_targets
            self.output_names = ("ground_truth",) if n == 1 else tuple(f"ground_truth_{k}" for k in range(n))
        else:
            self.output_names = _channel_names(act, int(np.prod(act.shape)), "action")
        # "padding" first so its index never moves when trials reveal new periods.
        self.period_order: tuple[str, ...] = ("padding",) + tuple(dict.fromkeys((*self.env.timing, *probe.periods)))
        self._params.update(mask=mask, env_kwargs=self.env_kwargs or None)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        env = restore(self.env, self._state, int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        trials, obs, gts, bounds = zip(*(trial_arrays(env) for _ in range(n)))
        T = max(len(o) for o in obs)
        for b in bounds:
            new = [p for p in b if p not in self.period_order]
            self.period_order = self.period_order + tuple(new)
        inputs = torch.zeros(n, T, self.n_inputs)
        periods = torch.zeros(n, T, dtype=torch.long)  # 0: padding
        real = torch.zeros(n, T)
        targets = torch.zeros(n, T, self.n_outputs)
        for i in range(n):
            L = len(obs[i])
            inputs[i, :L] = torch.from_numpy(obs[i])
            real[i, :L] = 1.0
            targets[i, :L] = torch.from_numpy(gts[i].astype(np.float32).reshape(L, -1))
            for p, (a, b) in bounds[i].items():
                periods[i, a:b] = self.period_order.index(p)
        if self.discrete:
            labels = targets[..., 0]
            if not (torch.equal(labels, labels.round()) and labels.min() >= 0 and labels.max() < self.n_outputs):
                raise ValueError(f"{self.env_id}: a ground truth that is not one of its {self.n_outputs} actions "
                                 f"(values {sorted(set(labels.unique().tolist()))[:8]})")
            targets = torch.nn.functional.one_hot(labels.long(), self.n_outputs).float()
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
        """Discrete: decision-step and last-step accuracy. Continuous: steps within tolerance, MSE."""
        if not self.discrete:
            scored = batch.mask > 0
            count = max(scored.sum().item(), 1)
            tolerance = TOLERANCE * self.target_range.to(outputs.device, outputs.dtype)
            within = ((outputs - batch.targets).abs() <= tolerance).all(-1)
            sq = ((outputs - batch.targets) ** 2)[scored]
            variance = ((batch.targets[scored] - batch.targets[scored].mean(0)) ** 2).mean().clamp_min(1e-12)
            return {"accuracy": (within & scored).sum().item() / count, "mse": sq.mean().item(),
                    "explained_variance": 1.0 - (sq.mean() / variance).item()}
        scored = self._scored(batch)
        right = outputs.argmax(-1) == batch.targets.argmax(-1)
        acc = (right & scored).sum().item() / max(scored.sum().item(), 1)
        last = (batch.periods != 0).long().sum(1) - 1
        rows = torch.arange(len(last))
        trial = right[rows, last].float().mean().item()
        return {"accuracy": acc, "trial_accuracy": trial}
