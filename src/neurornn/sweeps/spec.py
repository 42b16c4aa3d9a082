"""The sweep file: a base configuration, the settings that vary, the shard size and what to record.

::

    base: config.yaml                  # a config file (relative to the sweep file), or its sections:
    # base: {task: {name, params}, model: {...}, train: {...}}
    grid:                              # every combination (the last key varies fastest)
      train.regularizers.0.strength: [0, 0.1, 0.3]
      model.seed: range(4)
    zip:                               # lists of one length, paired up
      train.learning_rate: [1e-3, 3e-3]
      train.grad_clip: [1.0, 0.5]
    random:                            # n draws from a seeded generator
      n: 4
      seed: 0
      settings:
        train.adam_eps: {loguniform: [1e-9, 1e-6]}
        model.sigma_rec: {uniform: [0.0, 0.1]}
        model.activation: {choice: [relu, tanh]}
        model.n_units: {integers: [16, 64]}     # low <= n <= high
    shard_size: 16                     # points of one shape trained together as one ensemble
    threads: 1                         # torch threads per shard (unless train.threads is set)
    figures: false                     # draw each point's figures
    record: [graph.final.modularity]   # ANALYSIS.PATH: a scalar of an analysis of each point
    analysis: {graph_nulls: 20}        # options of those analyses (AnalysisOptions)

The blocks combine as a product: every grid combination, times every zip row, times every
random draw, in that order. Varied keys are those of ``--vary`` (``model.FIELD``,
``train.FIELD``, ``train.regularizers.I.KEY``); values are lists or ``range(...)``, parsed by
:func:`neurornn.training.ensemble_configs.parse_vary`.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._validation import suggest
from ..analysis import AnalysisOptions, analysis_names
from ..config import RNNConfig, TrainConfig
from ..runs import dump_yaml, read_config_file, read_yaml_file
from ..runs.config_yaml import read_config_sections
from ..training.ensemble_configs import parse_vary

__all__ = ["SweepSpec", "read_sweep", "SWEEP_KEYS", "DRAWS"]

SWEEP_KEYS = ("base", "grid", "zip", "random", "shard_size", "threads", "figures", "record", "analysis")
DRAWS = ("uniform", "loguniform", "integers", "choice")
_RANDOM_KEYS = ("n", "seed", "settings")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file, read and checked (see the module docstring).

    ``base`` holds the config sections (task {name, params}, model, train) with the file
    inlined; ``sets`` the ``section.key=value`` items applied on top (``--set``).
    """

    base: dict
    grid: dict = field(default_factory=dict)
    zip: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)
    shard_size: int = 16
    threads: int = 1
    figures: bool = False
    record: tuple = ()
    analysis: dict = field(default_factory=dict)
    sets: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a self-contained sweep file (what ``SWEEP/sweep.yaml`` holds)."""
        out = {"base": self.base, "grid": self.grid, "zip": self.zip, "random": self.random,
               "shard_size": self.shard_size, "threads": self.threads, "figures": self.figures,
               "record": list(self.record), "analysis": self.analysis}
        if self.sets:
            out["sets"] = list(self.sets)
        return out

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    @property
    def varied(self) -> list[str]:
        """The varied keys, in the order of the table's columns."""
        return [*self.grid, *self.zip, *self.random.get("settings", {})]

    def points(self) -> list[dict[str, Any]]:
        """The settings of every point, in sweep order: ``[{key: value}, ...]``."""
        grid = [dict(zip(self.grid, combo)) for combo in itertools.product(*self.grid.values())]
        n_zip = len(next(iter(self.zip.values()))) if self.zip else 1
        rows = [{k: v[i] for k, v in self.zip.items()} for i in range(n_zip)]
        return [{**g, **z, **r} for g in grid for z in rows for r in self._draws()]

    def _draws(self) -> list[dict[str, Any]]:
        if not self.random:
            return [{}]
        rng = np.random.default_rng(self.random["seed"])
        draws: list[dict[str, Any]] = [{} for _ in range(self.random["n"])]
        for key, how in self.random["settings"].items():  # one setting after another: each its own stream
            (kind, args), = how.items()
            if kind == "uniform":
                values = [float(v) for v in rng.uniform(args[0], args[1], len(draws))]
            elif kind == "loguniform":
                values = [float(math.exp(v)) for v in rng.uniform(math.log(args[0]), math.log(args[1]), len(draws))]
            elif kind == "integers":
                values = [int(v) for v in rng.integers(args[0], args[1], len(draws), endpoint=True)]
            else:
                values = [args[int(i)] for i in rng.integers(0, len(args), len(draws))]
            for d, v in zip(draws, values):
                d[key] = v
        return draws


# ---------------------------------------------------------------------- reading
def read_sweep(sweep: str | os.PathLike | Mapping[str, Any], *, sets: Sequence[str] = (),
               vary: Sequence[str] = ()) -> SweepSpec:
    """Read and check a sweep file (a path or its parsed mapping); errors name the key.

    ``sets``: ``section.key=value`` items for the base (``--set``); ``vary``: ``KEY=VALUES``
    items (``--vary``) added to the grid (replacing a grid key of the same name).
    """
    if isinstance(sweep, Mapping):
        data, where, folder = dict(sweep), "sweep", Path.cwd()
    elif isinstance(sweep, (str, os.PathLike)):
        path = Path(sweep)
        if not path.is_file():
            raise FileNotFoundError(f"sweep file {str(path)!r} does not exist" if not path.is_dir() else
                                    f"sweep file {str(path)!r} is a folder; give a YAML file")
        data, where, folder = read_yaml_file(path), f"sweep file {str(path)!r}", path.parent
    else:
        raise TypeError(f"sweep must be a path or a mapping, got {type(sweep).__name__}")
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must hold a mapping with keys {list(SWEEP_KEYS)}, got {type(data).__name__}")
    data = dict(data)
    old_sets = data.pop("sets", [])  # a sweep.yaml that neurornn wrote keeps its --set items
    for key in data:
        if key not in SWEEP_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}{suggest(str(key), SWEEP_KEYS)}; keys: {list(SWEEP_KEYS)}")
    if "base" not in data:
        raise ValueError(f"{where}: 'base' is missing: give a config file (base: config.yaml) or its sections "
                         "(base: {task: ..., model: ..., train: ...})")
    base = data["base"]
    if isinstance(base, str):
        base_path = Path(base) if Path(base).is_absolute() else folder / base
        try:
            base = read_config_file(base_path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{where}: base: {err}") from None
    elif isinstance(base, Mapping):
        base = read_config_sections(base, f"{where}: base")
    else:
        raise ValueError(f"{where}: base must be a config file path or a mapping with sections task, model, train, "
                         f"got {base!r}")
    grid = _settings(data.get("grid"), f"{where}: grid")
    grid.update(_settings(parse_vary(list(vary)), "--vary"))
    zipped = _settings(data.get("zip"), f"{where}: zip")
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: zip: every list needs the same length, got {lengths}")
    random = _random(data.get("random"), f"{where}: random")
    repeated = [k for k in zipped if k in grid] + [k for k in random.get("settings", {}) if k in {**grid, **zipped}]
    if repeated:
        raise ValueError(f"{where}: {repeated[0]!r} varies in more than one of grid, zip and random")
    record = _record(data.get("record", []), f"{where}: record")
    analysis = data.get("analysis") or {}
    if not isinstance(analysis, Mapping):
        raise ValueError(f"{where}: analysis must be a mapping of analysis options, got {analysis!r}")
    try:
        AnalysisOptions.of(dict(analysis))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: analysis: {err}") from None
    return SweepSpec(base=base, grid=grid, zip=zipped, random=random,
                     shard_size=_positive_int(data.get("shard_size", 16), f"{where}: shard_size"),
                     threads=_positive_int(data.get("threads", 1), f"{where}: threads"),
                     figures=_flag(data.get("figures", False), f"{where}: figures"), record=record,
                     analysis=dict(analysis), sets=tuple(old_sets) + tuple(sets))


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key.startswith(("model.", "train.")):
        raise ValueError(f"{where}: a varied key must start with 'model.' or 'train.', got {key!r}")
    section, _, name = key.partition(".")
    known = RNNConfig.field_names() if section == "model" else TrainConfig.field_names()
    head = name.split(".", 1)[0]
    if head not in known:
        raise ValueError(f"{where}: unknown setting {key!r}{suggest(head, known)}")
    if "." in name and head != "regularizers":
        raise ValueError(f"{where}: {key!r}: only train.regularizers.I.KEY has a dotted name")
    return key


def _settings(block: Any, where: str) -> dict[str, list]:
    """``{key: list}`` from a grid / zip block: lists or ``range(...)`` (through ``parse_vary``)."""
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping of setting -> values, got {block!r}")
    out = {}
    for key, values in block.items():
        _check_key(key, where)
        if isinstance(values, str):
            try:
                values = parse_vary([f"{key}={values}"])[key]
            except ValueError as err:
                raise ValueError(f"{where}: {key}: {str(err).split(': ', 1)[-1]}") from None
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: {key} must be a non-empty list of values or range(...), got {values!r}")
        out[key] = values
    return out


def _random(block: Any, where: str) -> dict[str, Any]:
    if block is None or block == {}:
        return {}
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping with keys {list(_RANDOM_KEYS)}, got {block!r}")
    for key in block:
        if key not in _RANDOM_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}{suggest(str(key), _RANDOM_KEYS)}; keys: "
                             f"{list(_RANDOM_KEYS)} (the drawn settings go under settings)")
    for key in ("n", "seed", "settings"):
        if key not in block:
            raise ValueError(f"{where}: {key!r} is missing")
    n = _positive_int(block["n"], f"{where}: n")
    seed = block["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{where}: seed must be an integer >= 0, got {seed!r}")
    settings = block["settings"]
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError(f"{where}: settings must be a mapping of setting -> {{DRAW: ARGS}}, got {settings!r}")
    checked = {}
    for key, how in settings.items():
        _check_key(key, f"{where}: settings")
        if not isinstance(how, Mapping) or len(how) != 1 or next(iter(how)) not in DRAWS:
            raise ValueError(f"{where}: settings: {key} must be one of {{uniform: [low, high]}}, "
                             f"{{loguniform: [low, high]}}, {{integers: [low, high]}}, {{choice: [values]}}; "
                             f"got {how!r}")
        (kind, args), = how.items()
        if not isinstance(args, list) or not args or (kind != "choice" and len(args) != 2):
            raise ValueError(f"{where}: settings: {key}: {kind} takes "
                             + ("a non-empty list of values" if kind == "choice" else "[low, high]") + f", got {args!r}")
        if kind != "choice":
            if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args) \
                    or args[0] > args[1] or (kind == "loguniform" and args[0] <= 0) \
                    or (kind == "integers" and not all(isinstance(a, int) for a in args)):
                need = {"uniform": "numbers", "loguniform": "numbers > 0", "integers": "integers"}[kind]
                raise ValueError(f"{where}: settings: {key}: {kind} takes [low, high] with low <= high, {need}; "
                                 f"got {args!r}")
        checked[key] = {kind: list(args)}
    return {"n": n, "seed": seed, "settings": checked}


def _record(record: Any, where: str) -> tuple[str, ...]:
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, list):
        raise ValueError(f"{where} must be a list of ANALYSIS.PATH entries (e.g. graph.final.modularity), "
                         f"got {record!r}")
    names = analysis_names()
    for entry in record:
        if not isinstance(entry, str) or "." not in entry:
            raise ValueError(f"{where}: entries are ANALYSIS.PATH (e.g. graph.final.modularity), got {entry!r}")
        name = entry.split(".", 1)[0]
        if name not in names:
            raise ValueError(f"{where}: {entry!r}: unknown analysis {name!r}{suggest(name, names)}; analyses: "
                             f"{list(names)}")
    if len(set(record)) != len(record):
        raise ValueError(f"{where}: an entry is listed twice in {record!r}")
    return tuple(record)
