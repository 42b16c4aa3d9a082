"""The run folder: everything a training run leaves behind, written and read back.

::

    RUN/
      config.yaml        task {name, params}, model (RNNConfig), train (TrainConfig): rerunnable
                         with ``neurornn train --config RUN/config.yaml`` (runs.config_yaml)
      metrics.csv        one row per evaluation: step, loss, task_loss, regularisers, grad_norm,
                         eval_loss, accuracy, the task's other scores, wall_seconds (runs.metrics)
      summary.json       task, steps, final_loss, final_accuracy, wall_seconds, seed,
                         stopped_because, ...
      model.safetensors  the final model (parameters and buffers, ``RNN.state_dict()``)
      history/           effective-weight snapshots (runs.history)
      checkpoints/       resumable state (runs.checkpoint)
      figures/           training curves, example trials
      analysis/          written by ``neurornn analyze``
      report.html        one page a person can read (runs.report)

Use :class:`RunWriter` to write the pieces one by one (the trainer does), or
:func:`save_run` to write a finished run at once (e.g. each network of an
ensemble); :func:`load_run` reads a folder back into a :class:`Run`. This package
is the only code that knows the folder's file names; it imports neither training
nor analysis.
"""

from .._folder import CorruptFileError
from .checkpoint import checkpoint_step, has_checkpoint, load_checkpoint, save_checkpoint
from .config_yaml import read_config_file, read_run_config, run_config, task_spec
from .history import WeightHistory
from .metrics import Metrics
from .reading import Run, is_run, load_run, read_tensors, rebuild_task, resume_hint
from .report import render_report, write_report
from .writer import RunWriter, save_run
from .settings import build_configs, parse_sets
from .yaml_io import dump_yaml, load_yaml, read_yaml_file

__all__ = [
    "Metrics",
    "Run",
    "RunWriter",
    "save_run",
    "load_run",
    "is_run",
    "write_report",
    "render_report",
    "task_spec",
    "run_config",
    "read_run_config",
    "read_config_file",
    "load_yaml",
    "dump_yaml",
    "read_yaml_file",
    "read_tensors",
    "rebuild_task",
    "resume_hint",
    "WeightHistory",
    "save_checkpoint",
    "load_checkpoint",
    "has_checkpoint",
    "checkpoint_step",
    "CorruptFileError",
    "RUN_FILES",
    "build_configs",
    "parse_sets",
]

RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "model.safetensors", "history",
             "checkpoints", "figures", "analysis", "report.html")
