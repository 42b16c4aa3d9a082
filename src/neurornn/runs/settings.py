"""A run's settings assembled from the task's defaults, a config file or a saved run, and
``section.key=value`` items (what ``neurornn train`` does with ``--task``, ``--config``,
``--resume`` and ``--set``; callable from Python).

Later sources win: the task's ``defaults`` (model and train), the config file (sections
``task`` {name, params}, ``model``, ``train``, as in a run's ``config.yaml``) or the saved
run config, then the ``section.key=value`` items (values parsed as YAML: numbers, lists
``[0, 51.2]``, ``true``/``false``, ``null``). The model's ``n_inputs``, ``n_outputs`` and
``dt_ms`` follow the task; the model's ``seed`` follows ``train.seed`` unless set.
"""

from __future__ import annotations

from typing import Any, Mapping

from .. import tasks
from .._validation import suggest
from ..config import RNNConfig, TrainConfig
from .config_yaml import read_config_file
from .yaml_io import load_yaml

__all__ = ["DEFAULT_TASK", "parse_sets", "build_configs"]

DEFAULT_TASK = "perceptual_decision_making"
_SECTIONS = ("task", "model", "train")


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``section.key=value`` items into ``{section: {key: value}}`` (values as YAML)."""
    out: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if "." not in key:
            raise ValueError(f"--set key must be section.key with section one of {list(_SECTIONS)}, got {key!r}")
        section, name = key.split(".", 1)
        if section not in _SECTIONS:
            raise ValueError(f"--set: unknown section {section!r}{suggest(section, _SECTIONS)} in {item!r}; "
                             f"sections: {list(_SECTIONS)}")
        if not name:
            raise ValueError(f"--set: empty key in {item!r}")
        try:
            value = load_yaml(text, source="it") if text.strip() else None
        except ValueError as err:
            raise ValueError(f"--set {key}: cannot parse value {text!r}: {str(err)[3:]}") from None
        out[section][name] = value
    return out


def build_configs(
    task_name: str | None = None,
    config_file: str | None = None,
    sets: list[str] | None = None,
    base: Mapping[str, Any] | None = None,
    trust_code: bool = False,
):
    """Resolve (task, RNNConfig, TrainConfig) from defaults, a config file/dict and --set items.

    A task named on the command line (``task_name``, ``--set task.name=``) may be code to
    import; one named by the config file or ``base`` only with ``trust_code``.
    """
    if task_name is not None and not task_name.strip():
        raise ValueError("--task must name a task (see `neurornn tasks`), got an empty string")
    cfg = {"task": {"name": None, "params": {}}, "model": {}, "train": {}}
    if base is not None:
        cfg = {"task": {"name": base["task"].get("name"), "params": dict(base["task"].get("params") or {})},
               "model": dict(base["model"]), "train": dict(base["train"])}
    if config_file is not None:
        cfg = read_config_file(config_file)
    overrides = parse_sets(sets or [])
    given = overrides["task"].pop("name", None) or task_name
    name = given or cfg["task"].get("name") or DEFAULT_TASK
    params = dict(cfg["task"].get("params") or {}) if name == cfg["task"].get("name") else {}
    params.update(overrides["task"])
    source = "--config" if config_file is not None else "--resume"
    if given is None and tasks.names_code(name) and not trust_code:
        raise tasks.UntrustedCodeError(
            f"the {'config file ' + repr(config_file) if config_file else 'run folder'} names task code "
            f"{name!r} (task.name); running it needs --trust-code (given with {source}), or name the task "
            "yourself with --task")
    task = tasks.make(name, **params)

    task_cls_defaults = getattr(task, "defaults", {}) or {}
    given_model = {**cfg["model"], **overrides["model"]}
    model = {**dict(task_cls_defaults.get("model", {})), **given_model}
    for key, value in (("n_inputs", task.n_inputs), ("n_outputs", task.n_outputs), ("dt_ms", task.dt_ms)):
        if key in given_model and given_model[key] != value:
            hint = " (set task.dt_ms instead)" if key == "dt_ms" else ""
            raise ValueError(f"model.{key}={given_model[key]!r} does not match the task's {key}={value!r}{hint}")
        model[key] = value
    train = {**dict(task_cls_defaults.get("train", {})), **cfg["train"], **overrides["train"]}
    train_config = TrainConfig.from_dict(train)
    model.setdefault("seed", train_config.seed)
    model_config = RNNConfig.from_dict(model)
    return task, model_config, train_config
