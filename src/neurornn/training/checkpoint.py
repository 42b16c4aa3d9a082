"""Resumable checkpoints without pickle: safetensors for tensors, JSON for the rest.

``RUN/checkpoints/`` holds ``step_NNNNNNN.safetensors`` (model parameters and
buffers under ``model.``, optimiser tensors under ``optim.<param>.<name>``, the
states of the random generators under ``rng.<name>``) and ``latest.json``
(step, optimiser hyperparameters, running totals, and the name of the tensor
file). ``latest.json`` is replaced atomically after its tensor file is written,
and older tensor files are deleted only then, so a crash never loses the last
good checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .._files import write_json

__all__ = ["save_checkpoint", "load_checkpoint", "has_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "neurornn-checkpoint"
_LATEST = "latest.json"


def has_checkpoint(directory: str | os.PathLike) -> bool:
    return (Path(directory) / _LATEST).is_file()


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of training state after ``step`` completed steps."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        tensors[f"model.{name}"] = value.detach().cpu().contiguous().clone()
    opt = optimizer.state_dict()
    scalar_state: dict[str, dict[str, Any]] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalar_state.setdefault(str(pid), {})[key] = value
    for name, gen in generators.items():
        tensors[f"rng.{name}"] = gen.get_state().clone()
    fname = f"step_{step:07d}.safetensors"
    save_file(tensors, str(directory / fname))
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "step": int(step),
        "file": fname,
        "optimizer": {"param_groups": opt["param_groups"], "scalar_state": scalar_state},
        "extra": extra or {},
    }
    write_json(directory / _LATEST, meta)
    for old in directory.glob("step_*.safetensors"):
        if old.name != fname:
            old.unlink(missing_ok=True)
    return directory / fname


def load_checkpoint(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and optimiser and generators) in place; return the JSON metadata."""
    directory = Path(directory)
    latest = directory / _LATEST
    if not latest.is_file():
        raise FileNotFoundError(f"no checkpoint in {str(directory)!r} ({_LATEST} missing)")
    meta = json.loads(latest.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(latest)!r} is not a neurornn checkpoint")
    path = directory / meta["file"]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint tensor file {str(path)!r} is missing")
    tensors = load_file(str(path))
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state)
    if optimizer is not None:
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, values in meta["optimizer"]["scalar_state"].items():
            state.setdefault(int(pid), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    for name, gen in (generators or {}).items():
        key = f"rng.{name}"
        if key not in tensors:
            raise ValueError(f"checkpoint has no state for generator {name!r}")
        gen.set_state(tensors[key])
    return meta
