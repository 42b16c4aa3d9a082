"""``train_ensemble``: E independent networks trained at once with batched matmuls.

Each network keeps everything a separate :func:`~neurornn.training.train` run
would have: its own trial batches and noise (from generators seeded by its own
``TrainConfig.seed``), its own loss and regularisers, its own gradient clipping,
learning rate and optimiser state, its own evaluations, stop criterion, weight
history and run folder. The result equals E separate ``train`` runs with the same
configs (to float32 rounding; tested), only faster: one batched forward and
backward pass per step for all networks.

Networks whose generators are seeded alike share one trial batch and one noise
draw per step (each scaled by its own noise levels), exactly as their separate
runs would draw them; when their draws would diverge (one stops, or evaluates
at a step the others do not) the generators are split.

Folder ``out``::

    OUT/
      ensemble.json   the networks, their names and what varies between them
      summary.csv     one row per network: name, varied settings, final metrics
      net_000/        a complete run folder per network (see neurornn.runs)
      net_001/ ...
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config.train import TrainConfig
from ..runs import RunWriter, read_run_config
from .._files import read_json, write_json, write_text
from .._validation import check_same_fields
from .._folder import CorruptFileError, make_folder, open_folder, verified_bytes
from ..models import RNN, RNNConfig, RNNEnsemble
from ..tasks.base import Task
from ._setup import check_compatible, training_threads
from .loop import train_networks

__all__ = ["train_ensemble", "ensemble_members", "EnsembleRun", "SHARED_TRAIN_FIELDS"]

#: TrainConfig fields every network of an ensemble must share.
SHARED_TRAIN_FIELDS = ("batch_size", "eval_batch_size", "eval_every", "optimizer", "loss", "device", "eval_noise",
                       "threads")


# ---------------------------------------------------------------------- result
@dataclass
class EnsembleRun:
    """What :func:`train_ensemble` returns.

    Attributes
    ----------
    path : Path or None
        The ensemble folder (``None`` when nothing was written).
    runs : list of Run
        One :class:`~neurornn.runs.Run` per network (each with its own folder
        ``path / name`` when written).
    names : list of str
    ensemble : RNNEnsemble
        The trained networks, stacked (eval mode).
    wall_seconds : float
    """

    path: Path | None
    runs: list
    names: list[str]
    ensemble: RNNEnsemble
    wall_seconds: float

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int):
        return self.runs[i]

    def __iter__(self):
        return iter(self.runs)

    def __repr__(self) -> str:
        accs = [r.summary.get("final_accuracy") for r in self.runs]
        text = ", ".join("None" if a is None else f"{a:.3f}" for a in accs)
        return f"EnsembleRun({len(self.runs)} networks, path={str(self.path) if self.path else None!r}, final_accuracy=[{text}])"


# ---------------------------------------------------------------------- helpers
def _check_train_configs(configs: Any, n_nets: int) -> list[TrainConfig]:
    if configs is None:
        configs = TrainConfig()
    if isinstance(configs, TrainConfig):
        configs = [configs] * n_nets
    if not isinstance(configs, Sequence):
        raise TypeError(f"configs must be a TrainConfig or a sequence of them, got {type(configs).__name__}")
    configs = list(configs)
    if len(configs) != n_nets:
        raise ValueError(f"configs must have one TrainConfig per network ({n_nets}), got {len(configs)}")
    for i, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise TypeError(f"configs[{i}] must be a TrainConfig, got {type(c).__name__}")
    check_same_fields(configs, SHARED_TRAIN_FIELDS, prefix="train ")
    return configs


def _varied(model_configs: Sequence[RNNConfig], train_configs: Sequence[TrainConfig]) -> dict[str, list]:
    out = {}
    for section, configs in (("model", model_configs), ("train", train_configs)):
        dicts = [c.to_dict() for c in configs]
        for key in dicts[0]:
            values = [d[key] for d in dicts]
            if any(v != values[0] for v in values):
                out[f"{section}.{key}"] = values
    return out


# ---------------------------------------------------------------------- training
def train_ensemble(
    models: RNN | Sequence[RNN] | Sequence[RNNConfig],
    task: Task,
    configs: TrainConfig | Sequence[TrainConfig] | None = None,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    figures: bool = True,
    names: Sequence[str] | None = None,
    progress: bool | None = None,
    callback: Callable[[int, RNN, dict[str, Any]], None] | None = None,
) -> EnsembleRun:
    """Train E networks at once; each is the same as its own :func:`~neurornn.training.train` run.

    Parameters
    ----------
    models : RNN of several networks, or sequence of RNN or of RNNConfig (E networks)
        Networks with the same shapes (see :data:`neurornn.models.ensemble.SHARED_FIELDS`).
        Given RNNs are not changed: the trained weights are in the result.
    task : Task
    configs : TrainConfig or sequence of E TrainConfig, optional
        Per network: seed, learning rate, Adam eps, momentum, gradient clipping,
        regularisers, steps, stop criteria, history and checkpoint intervals may
        differ; :data:`SHARED_TRAIN_FIELDS` must not.
    out : path, optional
        Ensemble folder (``ensemble.json``, ``summary.csv``, one run folder per
        network); never overwritten unless ``overwrite=True``.
    resume : bool
        Continue the ensemble at ``out`` from its networks' last checkpoints (the same models,
        task and networks; ``configs`` may change e.g. ``steps``). Each network's folder can
        also be resumed on its own with :func:`~neurornn.training.train`.
    figures : bool
        Draw each network's figures and report (needs ``out``).
    names : sequence of str, optional
        Folder names of the networks (default ``net_000``, ``net_001``, ...).
    progress : bool, optional
        Progress bar; default: ``configs[0].progress``.
    callback : callable, optional
        ``callback(step, model, info)`` after every step, as in :func:`~neurornn.training.train`
        (``model`` holds all networks; ``info["loss"]`` has one entry per network still training).

    Returns
    -------
    EnsembleRun
    """
    if isinstance(models, RNN):
        ens = RNN.stack(models.members())  # a copy: the given model is not changed
    elif isinstance(models, Sequence) and models and all(isinstance(m, RNN) for m in models):
        ens = RNN.stack(list(models))
    else:
        ens = RNNEnsemble(models)
    if not isinstance(task, Task):
        raise TypeError(f"task must be a neurornn.tasks.Task, got {type(task).__name__}")
    n_nets = ens.n_networks
    tcs = _check_train_configs(configs, n_nets)
    if resume and out is None:
        raise ValueError("resume=True needs out= the ensemble folder to resume")
    if resume and overwrite:
        raise ValueError("give overwrite=True or resume=True, not both")
    if resume and names is None:
        names = _saved_names(out)
    names = [f"net_{e:03d}" for e in range(n_nets)] if names is None else [str(n) for n in names]
    if len(names) != n_nets or len(set(names)) != n_nets:
        raise ValueError(f"names must be {n_nets} distinct folder names, got {names}")
    check_compatible(ens, task)  # inputs, outputs and dt_ms are shared by every network
    varied = _varied(ens.configs, tcs)
    with training_threads(tcs[0], ens.config.n_units, tcs[0].resolved_device()):
        if resume:
            root_folder = open_folder(out, "ensemble", what="ensemble folder")
        else:
            root_folder = make_folder(out, "ensemble", overwrite=overwrite, what="ensemble folder") if out else None
        root = root_folder.path if root_folder is not None else None
        writers = []
        t0 = time.perf_counter()
        try:
            writers.extend(RunWriter(root / name, resume=resume) if root is not None else None for name in names)
            if root is not None and not resume:
                write_json(root / "ensemble.json", {"format": "neurornn-ensemble", "version": 1,
                                                    "task": task.name, "networks": names,
                                                    "varied": varied})
            runs = train_networks(ens, task, tcs, writers, resume=resume, figures=figures, callback=callback,
                                  progress=progress,
                                  ensemble={"path": str(root) if root else None, "names": names})
            if root is not None:
                _write_summary_csv(root / "summary.csv", names, runs, varied)
        finally:
            for w in writers:
                if w is not None:
                    w.close()
            if root_folder is not None:
                root_folder.close()
    return EnsembleRun(root, runs, names, ens.eval(), round(time.perf_counter() - t0, 3))


def _saved_names(out) -> list[str]:
    """The network folder names an ensemble folder's ensemble.json lists."""
    path = Path(out) / "ensemble.json"
    saved = read_json(path, verified_bytes(path, "the ensemble cannot be resumed"))
    names = saved.get("networks") if isinstance(saved, dict) else None
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n and n not in (".", "..") and "/" not in n and "\\" not in n for n in names):
        raise CorruptFileError(f"{str(path)!r}: 'networks' must be a list of folder names, got {names!r}")
    return names


def ensemble_members(out: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """The networks of the ensemble folder ``out``: their folder names and saved run configs."""
    names = _saved_names(out)
    return names, [read_run_config(Path(out) / name) for name in names]


def _write_summary_csv(path: Path, names, runs, varied) -> None:
    cols = ["name", *varied, "steps", "stopped_because", "final_loss", "final_accuracy", "wall_seconds"]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(cols)
    for i, (name, run) in enumerate(zip(names, runs)):
        s = run.summary
        row = [name, *[json.dumps(v[i]) if isinstance(v[i], (list, dict)) else v[i] for v in varied.values()],
               s.get("steps"), s.get("stopped_because"), s.get("final_loss"), s.get("final_accuracy"),
               s.get("wall_seconds")]
        writer.writerow(["" if v is None else v for v in row])
    write_text(path, buf.getvalue())
