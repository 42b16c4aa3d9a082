"""A sweep's points and shards, worked out from the sweep file alone.

Every point gets its model and training configs (the base, then its settings); a point
whose settings are not valid is failed here, with the error, and trains nowhere. The
other points are grouped into shards: points that can train as one ensemble (the same
:data:`~neurornn.models.ensemble.SHARED_FIELDS`, Dale's law on or off and
:data:`~neurornn.training.ensemble.SHARED_TRAIN_FIELDS`), taken in sweep order, at most
``shard_size`` per shard. Nothing here depends on the executor or the number of workers,
so the same sweep trains the same ensembles, and gives the same weights, everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RNNConfig, TrainConfig
from ..models.ensemble import SHARED_FIELDS
from ..runs import build_configs, run_config
from ..tasks.base import Task
from ..training.ensemble import SHARED_TRAIN_FIELDS
from ..training.ensemble_configs import ensemble_configs
from .spec import SweepSpec

__all__ = ["Point", "Shard", "Plan", "plan_sweep"]


@dataclass
class Point:
    """One point of a sweep: its settings, configs (plain dicts) and shard; ``error`` if its settings are bad."""

    name: str
    index: int
    settings: dict[str, Any]
    model: dict | None = None
    train: dict | None = None
    error: str | None = None
    shard: str | None = None


@dataclass
class Shard:
    """Points trained together as one ensemble, in folder ``SWEEP/NAME``."""

    name: str
    points: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a sweep trains: its task, its points in sweep order and its shards."""

    spec: SweepSpec
    task: Task
    task_section: dict
    points: list[Point]
    shards: list[Shard]

    def point(self, name: str) -> Point:
        return self._by_name[name]

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.points}

    def job(self, shard: Shard, folder: str | Path, trust_code: bool = False) -> dict[str, Any]:
        """What a worker needs to train ``shard`` (plain values: it travels to other processes and machines)."""
        points = [self.point(n) for n in shard.points]
        return {"shard": shard.name, "folder": str(Path(folder).resolve() / shard.name), "task": self.task_section,
                "points": shard.points, "models": [p.model for p in points], "trains": [p.train for p in points],
                "record": list(self.spec.record), "analysis": dict(self.spec.analysis),
                "figures": self.spec.figures, "trust_code": bool(trust_code)}


def _given(spec: SweepSpec, section: str, key: str) -> bool:
    """True when the base or a ``--set`` item sets ``section.key``."""
    return key in spec.base.get(section, {}) or any(s.split("=", 1)[0].strip() == f"{section}.{key}"
                                                     for s in spec.sets)


def plan_sweep(spec: SweepSpec, trust_code: bool = False) -> Plan:
    """Points and shards of ``spec`` (see the module docstring)."""
    try:
        task, base_model, base_train = build_configs(base=spec.base, sets=list(spec.sets), trust_code=trust_code)
    except (ValueError, TypeError) as err:
        raise ValueError(f"sweep base: {err}") from None
    if not _given(spec, "train", "threads"):
        base_train = base_train.replace(threads=spec.threads)
    seed_follows = not _given(spec, "model", "seed")
    task_section = run_config(task, base_model, base_train)["task"]
    settings = spec.points()
    width = max(4, len(str(len(settings) - 1)))
    points, shards, open_shards = [], [], {}
    shard_width = max(3, len(str(len(settings) - 1)))
    for i, values in enumerate(settings):
        point = Point(f"p{i:0{width}d}", i, dict(values))
        points.append(point)
        vary = {k: [v] for k, v in values.items()}
        if seed_follows and "train.seed" in vary and "model.seed" not in vary:
            vary["model.seed"] = vary["train.seed"]  # as in a config file: the model seed follows train.seed
        try:
            (model,), (train,) = ensemble_configs(base_model, base_train, vary or None, n=None if vary else 1)
        except (ValueError, TypeError) as err:
            point.error = f"{type(err).__name__}: {err}"
            continue
        point.model, point.train = model.to_dict(), train.to_dict()
        key = _shape_key(model, train)
        shard = open_shards.get(key)
        if shard is None or len(shard.points) == spec.shard_size:
            shard = open_shards[key] = Shard(f"shard_{len(shards):0{shard_width}d}")
            shards.append(shard)
        shard.points.append(point.name)
        point.shard = shard.name
    return Plan(spec, task, task_section, points, shards)


def _shape_key(model: RNNConfig, train: TrainConfig) -> str:
    m, t = model.to_dict(), train.to_dict()
    return json.dumps([[m[f] for f in SHARED_FIELDS], model.dale, [t[f] for f in SHARED_TRAIN_FIELDS]],
                      sort_keys=True, default=str)
