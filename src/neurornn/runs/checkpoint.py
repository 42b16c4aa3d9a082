"""Resumable checkpoints without pickle: safetensors for tensors, JSON for the rest.

``RUN/checkpoints/`` holds ``step_NNNNNNN.safetensors`` (model parameters and
buffers under ``model.``, optimiser tensors under ``optim.<param>.<name>``, the
states of the random generators under ``rng.<name>``) and ``latest.json``
(step, optimiser hyperparameters, running totals, the name and sha256 of the
tensor file). The tensor file is written completely (unique temporary name,
flushed, renamed) before ``latest.json`` is replaced to point to it, and older
tensor files are deleted only then, so ``latest.json`` only ever points to a
complete file and a crash never loses the last good checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .._files import find_root, forget, read_json, sha256, write_bytes, write_json
from .._folder import CorruptFileError, verified_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "has_checkpoint", "checkpoint_step", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "neurornn-checkpoint"
_LATEST = "latest.json"


def _file_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


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
    fname = _file_name(step)
    data = save_safetensors(tensors)
    write_bytes(directory / fname, data)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "step": int(step),
        "file": fname,
        "sha256": sha256(data),
        "optimizer": {"param_groups": opt["param_groups"], "scalar_state": scalar_state},
        "extra": extra or {},
    }
    write_json(directory / _LATEST, meta)
    old = [p for p in directory.glob("step_*.safetensors") if p.name != fname]
    root = find_root(directory)
    if root is not None:
        forget(root, old)  # only files neurornn wrote; after latest.json points to the new one
    return directory / fname


def _latest(directory: Path) -> dict[str, Any]:
    latest = directory / _LATEST
    if not latest.is_file():
        raise FileNotFoundError(f"no checkpoint in {str(directory)!r} ({_LATEST} missing)")
    meta = read_json(latest, verified_bytes(latest, "the checkpoint cannot be used; start the run again "
                                                     "(--overwrite)"))
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(f"{str(latest)!r} is not a neurornn checkpoint")
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or meta.get("file") != _file_name(step):
        raise CorruptFileError(f"{str(latest)!r}: step {step!r} and file {meta.get('file')!r} do not name a "
                               "checkpoint of this folder (step_NNNNNNN.safetensors)")
    return meta


def checkpoint_step(directory: str | os.PathLike) -> int:
    """The step of the last checkpoint in ``directory``."""
    return int(_latest(Path(directory))["step"])


def load_checkpoint(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and optimiser and generators) in place; return the JSON metadata.

    The tensor file must be the one ``latest.json`` names, with the sha256 it records.
    """
    directory = Path(directory)
    meta = _latest(directory)
    path = directory / meta["file"]
    if not path.is_file():
        raise CorruptFileError(f"checkpoint tensor file {str(path)!r} is missing")
    data = verified_bytes(path)
    if sha256(data) != meta.get("sha256"):
        raise CorruptFileError(f"checkpoint {str(path)!r} does not match the sha256 recorded in {_LATEST}")
    try:
        tensors = load_safetensors(data)
    except SafetensorError as err:
        raise CorruptFileError(f"checkpoint {str(path)!r} is not readable ({err})") from None
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
            raise CorruptFileError(f"checkpoint {str(path)!r} has no state for generator {name!r}")
        gen.set_state(tensors[key])
    return meta
