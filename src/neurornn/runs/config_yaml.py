"""``config.yaml``: everything that reruns a run, in sections task {name, params}, model, train.

:func:`run_config` is what a run folder's ``config.yaml`` holds. The format has one reader,
:func:`read_config_sections`, behind the two ways it is read: :func:`read_run_config` (the
``config.yaml`` of a run folder, checked against the folder's manifest and complete) and
:func:`read_config_file` (a file as it is, e.g. one a person gives, ``neurornn train --config
FILE``, where any section may be left out and the task may be just a name).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Mapping

from .. import tasks as _tasks
from .._files import to_plain
from .._folder import verified_bytes
from .._validation import suggest
from ..config import RNNConfig, TrainConfig
from ..tasks.base import Task
from .yaml_io import read_yaml_file

__all__ = ["CONFIG_SECTIONS", "read_config_file", "read_config_sections", "read_run_config", "run_config",
           "task_spec"]

CONFIG_SECTIONS = ("task", "model", "train")


def task_spec(task: Task) -> str:
    """The name that rebuilds ``task`` with ``tasks.make``: its registered name, or
    ``"module:Class"`` / ``"path/file.py:Class"`` for a task class that is not registered."""
    if task.name in _tasks.names() and isinstance(task, _tasks.get(task.name)) or task.name.startswith("neurogym:"):
        return task.name
    cls = type(task)
    if cls.__module__.startswith("_neurornn_user_task_"):  # loaded from a file by tasks.make
        return f"{inspect.getfile(cls)}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def run_config(task: Task, model_config: RNNConfig, train_config: TrainConfig) -> dict[str, Any]:
    """The ``config.yaml`` dict: sections task {name, params}, model, train."""
    return {
        "task": {"name": task_spec(task), "params": to_plain(task.params())},
        "model": to_plain(model_config.to_dict()),
        "train": to_plain(train_config.to_dict()),
    }


def read_config_sections(data: Any, where: str) -> dict[str, Any]:
    """The sections of parsed ``config.yaml`` text as ``{"task": {"name", "params"}, "model": {...}, "train": {...}}``.

    ``data`` may leave sections out (``None``: all of them) and give the task as just its name;
    anything else than the three sections, or a section of the wrong kind, is a ``ValueError``
    that starts with ``where`` (the file, as the reader should name it).
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must hold a mapping with sections {list(CONFIG_SECTIONS)}")
    for key in data:
        if key not in CONFIG_SECTIONS:
            raise ValueError(f"{where}: unknown section {key!r}{suggest(str(key), CONFIG_SECTIONS)}; "
                             f"sections: {list(CONFIG_SECTIONS)}")
    task = data.get("task")
    if isinstance(task, str):
        task = {"name": task, "params": {}}
    elif task is None:
        task = {}
    elif isinstance(task, Mapping):
        for key in task:
            if key not in ("name", "params"):
                raise ValueError(f"{where}: unknown task key {key!r}{suggest(str(key), ['name', 'params'])}"
                                 " (task parameters go under task.params)")
        params = task.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"{where}: task.params must be a mapping, got {params!r}")
        task = {"name": task.get("name"), "params": dict(params or {})}
    else:
        raise ValueError(f"{where}: task must be a name or a mapping {{name, params}}, got {task!r}")
    for section in ("model", "train"):
        if data.get(section) is not None and not isinstance(data[section], Mapping):
            raise ValueError(f"{where}: {section} must be a mapping, got {data[section]!r}")
    return {"task": task, "model": dict(data.get("model") or {}), "train": dict(data.get("train") or {})}


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """The ``config.yaml`` of run folder ``path``, as :func:`read_config_sections` returns it.

    The file must be the one neurornn wrote (its sha256 in the folder's manifest) and complete:
    every section there, the task a mapping with a name.
    """
    file = Path(path) / "config.yaml"
    where = repr(str(file))
    data = read_yaml_file(file, verified_bytes(file, "the run cannot be rebuilt without it"))
    config = read_config_sections(data, where)
    for section in CONFIG_SECTIONS:
        if data is None or data.get(section) is None:
            raise ValueError(f"{where} has no {section!r} section")
    if not isinstance(data["task"], Mapping) or not isinstance(config["task"]["name"], str):
        raise ValueError(f"{where}: the task section must be a mapping with a name, got {data['task']!r}")
    return config


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A file in ``config.yaml``'s format as it is (no manifest check), as :func:`read_config_sections` returns it:
    a config file a person gives (``neurornn train --config FILE``), any section left out."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"config file {str(path)!r} is a folder; give a YAML file (e.g. RUN/config.yaml)")
    if not file.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    return read_config_sections(read_yaml_file(file) or {}, f"config file {str(path)!r}")
