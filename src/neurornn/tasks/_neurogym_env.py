"""Opening, seeding and probing a NeuroGym environment for the adapter (private).

NeuroGym is an optional dependency: it is imported by the caller and passed in.
"""

from __future__ import annotations

import copy
import inspect
import types
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Probe", "open_env", "probe_env", "restore", "snapshot", "trial_arrays"]

PROBE_TRIALS = 16  # trials drawn once, at construction, to learn what the environment's trials hold
PROBE_SEED = 0


def _required_parameters(env_id: str) -> list[str]:
    """The constructor parameters of ``env_id`` that have no default (AnnubesEnv: session, catch_prob)."""
    import gymnasium

    entry = gymnasium.envs.registry[env_id].entry_point
    creator = gymnasium.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    try:  # a class's own __init__: gymnasium's Env (a typing.Generic) hides it behind (*args, **kwargs)
        signature = inspect.signature(creator.__init__ if isinstance(creator, type) else creator)
    except (TypeError, ValueError):
        return []
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = list(signature.parameters.values())[1 if isinstance(creator, type) else 0:]
    return [p.name for p in params if p.kind in plain and p.default is p.empty]


def _init_float_gt(env: Any) -> None:
    """NeuroGym's ``_init_gt``, then the ground truth as float64 (bound to the environment)."""
    type(env)._init_gt(env)
    env.gt = env.gt.astype(np.float64)


def _float_ground_truth(env: Any) -> None:
    """Have the environment store its ground truth as float64 rather than its action space's dtype.

    NeuroGym allocates ``gt`` with the action space's dtype, so a ``Discrete`` environment whose
    ground truth is continuous (Reaching1D's target angle) would have it truncated to an integer.
    Integer ground truth is exact in float64 and is turned back into class labels.
    """
    if hasattr(type(env), "_init_gt") and np.issubdtype(np.dtype(env.action_space.dtype), np.integer):
        env._init_gt = types.MethodType(_init_float_gt, env)


def open_env(ngym: Any, env_id: str, dt_ms: float | None, env_kwargs: dict[str, Any]) -> Any:
    """``neurogym.make(env_id, dt=dt_ms, **env_kwargs).unwrapped``, its own default dt when ``dt_ms`` is None."""
    if "dt" in env_kwargs:
        raise ValueError(f"give NeuroGym {env_id!r} its time step as dt_ms, not env_kwargs['dt']")
    missing = [name for name in _required_parameters(env_id) if name not in env_kwargs and name != "dt"]
    if missing:
        raise ValueError(f"NeuroGym {env_id!r} has no default for {missing}: give them in env_kwargs "
                         f"(e.g. env_kwargs={{{missing[0]!r}: ...}})")
    kwargs = dict(env_kwargs) if dt_ms is None else {"dt": dt_ms, **env_kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = ngym.make(env_id, **kwargs).unwrapped
        except TypeError as err:
            raise ValueError(f"bad env_kwargs for NeuroGym {env_id!r}: {err}") from err
        except ValueError as err:
            shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "its defaults"
            raise ValueError(f"NeuroGym {env_id!r} refuses {shown}: {err}") from err
    _float_ground_truth(env)
    return env


def snapshot(env: Any) -> dict[str, Any]:
    """The environment's state (its ``__dict__``, deep-copied), for :func:`restore`."""
    return copy.deepcopy(env.__dict__, {id(env): env})


def restore(env: Any, state: dict[str, Any], seed: int) -> Any:
    """Put ``env`` back in ``state`` (from :func:`snapshot`) and re-seed it with ``seed``; returns ``env``.

    Every batch starts from the same state, so a seed reproduces it even for environments
    that carry state from trial to trial (HierarchicalReasoning's blocks of one rule). The
    environment object itself is kept, not copied: some hold functions that draw from its
    own ``rng`` (timing lambdas). ``env.seed`` resets ``env.rng`` and the timing samplers; a
    NumPy ``Generator`` kept as ``_rng`` (AnnubesEnv draws from it instead) is re-seeded too.
    """
    env.__dict__.clear()
    env.__dict__.update(copy.deepcopy(state, {id(env): env}))
    env.seed(seed)
    if isinstance(getattr(env, "_rng", None), np.random.Generator):
        env._rng = np.random.default_rng(seed)
    return env


def trial_arrays(env: Any) -> tuple[dict, np.ndarray, np.ndarray, dict[str, tuple[int, int]]]:
    """A new trial: its info dict, ``ob`` of shape (time, n_inputs), ``gt`` (time, ...) and period bounds."""
    trial = env.new_trial()
    ob = np.asarray(env.ob, dtype=np.float32)
    ob = ob.reshape(len(ob), -1)
    gt = np.asarray(env.gt)
    bounds = {p: (env.start_ind[p], env.end_ind[p]) for p in env.start_ind}
    return trial, ob, gt, bounds


@dataclass(frozen=True)
class Probe:
    """What an environment's trials hold, from ``PROBE_TRIALS`` trials drawn at construction.

    ``discrete``: the ground truth is a class index of a ``Discrete`` action space at every step;
    otherwise it is continuous, of ``n_targets`` channels, each spanning ``target_range``
    (max - min over the probe trials, 1 where constant). ``periods``: the periods seen, in order.
    """

    discrete: bool
    n_targets: int
    target_range: tuple[float, ...]
    periods: tuple[str, ...]


def probe_env(env: Any, env_id: str, state: dict[str, Any]) -> Probe:
    """Draw a few trials (from ``state``, left as they end) and tell supervised discrete / continuous targets apart, refusing RL environments.

    An environment whose trials define no observations ``ob`` or no ground truth ``gt``
    (Bandit, DawTwoStep, EconomicDecisionMaking, Null) is a reinforcement-learning
    environment: a ValueError says so.
    """
    space = env.action_space
    if not (hasattr(space, "n") or type(space).__name__ == "Box"):
        raise ValueError(f"NeuroGym {env_id!r} has a {type(space).__name__} action space; the adapter "
                         "supports Discrete (classes) and Box (continuous targets)")
    restore(env, state, PROBE_SEED)
    gts, periods = [], []
    for _ in range(PROBE_TRIALS):
        env.new_trial()
        if not (hasattr(env, "gt") and hasattr(env, "ob")):
            raise ValueError(f"{env_id} is a reinforcement-learning environment without supervised targets "
                             "(its trials define no ground truth 'gt'); neurornn trains supervised tasks")
        gt = np.asarray(env.gt, dtype=np.float64)
        gts.append(gt.reshape(len(gt), -1))
        periods += [p for p in env.start_ind if p not in periods]
    values = np.concatenate(gts)
    discrete = (hasattr(space, "n") and values.shape[1] == 1 and bool(np.all(values == np.round(values)))
                and bool(np.all((values >= 0) & (values < space.n))))
    spread = values.max(0) - values.min(0)
    target_range = tuple(float(s) if s > 0 else 1.0 for s in spread)
    return Probe(discrete, values.shape[1], target_range, tuple(periods))
