"""The teacher-student experiment: infer A -> B connectivity from input-output data.

See :mod:`neurornn.analysis.inference` for the set-up. :func:`run_teacher_student`
builds a teacher with known random weights, trains a student of the same
architecture on the teacher's stimulation -> activity data with
:func:`neurornn.training.train`, and scores the recovered weights.
:func:`infer_from_recording` does the same from recorded arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from .._validation import check_choice, check_int, check_nonnegative, check_positive
from .._files import write_bytes, write_csv, write_json
from .._folder import prepare_experiment_folder
from ..analysis.inference import (RecordedTask, TeacherTask, block, load_recording, make_network, plot_recovery,
                                  plot_recovery_history, recovery_history, recovery_scores, student_like,
                                  two_area_config)
from ..training import TrainConfig, train
from ._config import ExperimentConfig

__all__ = ["TeacherStudentConfig", "run_teacher_student", "infer_from_recording"]


@dataclass(frozen=True)
class TeacherStudentConfig(ExperimentConfig):
    """Settings of the teacher-student experiment (``--set key=value`` on the CLI).

    Circuit: ``n_a``, ``n_b`` units; ``activation``, ``dt_ms``, ``tau_ms``;
    teacher weights gaussian with gain ``w_rec_gain``; ``exc_fraction`` (Dale's law,
    None: off) and ``p_connect`` (sparse mask) apply to teacher and student alike.
    Data: ``n_steps`` per trial, ``stimulus`` ("gaussian" or "uniform") of
    ``stimulus_scale``, ``observation_noise`` on the recorded activity.
    Training: ``steps``, ``batch_size``, ``learning_rate`` (Adam), ``acc_criterion``
    (variance of B explained at which training stops; False: never),
    ``history_every``; seeds ``teacher_seed``, ``student_seed``, ``seed`` (data).
    """

    _label = "teacher-student config"  # not annotated: a class attribute, not a field

    n_a: int = 10
    n_b: int = 10
    activation: str = "tanh"
    dt_ms: float = 10.0
    tau_ms: float = 20.0
    w_rec_gain: float = 1.0
    exc_fraction: float | None = None
    p_connect: float = 1.0
    n_steps: int = 20
    stimulus: str = "gaussian"
    stimulus_scale: float = 1.0
    observation_noise: float = 0.0
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-2
    acc_criterion: float | bool = 0.9999
    eval_every: int = 25
    history_every: int = 25
    teacher_seed: int = 0
    student_seed: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("n_a", self.n_a, minimum=1)
        check_int("n_b", self.n_b, minimum=1)
        check_positive("w_rec_gain", self.w_rec_gain)
        check_int("n_steps", self.n_steps, minimum=1)
        check_choice("stimulus", self.stimulus, ("gaussian", "uniform"))
        check_positive("stimulus_scale", self.stimulus_scale)
        check_nonnegative("observation_noise", self.observation_noise)
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("learning_rate", self.learning_rate)
        check_int("eval_every", self.eval_every, minimum=1)
        check_int("history_every", self.history_every, minimum=1)
        for name in ("teacher_seed", "student_seed", "seed"):
            check_int(name, getattr(self, name), minimum=0)
        self.model_config()  # validates the circuit fields (activation, dt_ms, exc_fraction, ...)

    def model_config(self, seed: int | None = None):
        return two_area_config(
            self.n_a, self.n_b, activation=self.activation, dt_ms=float(self.dt_ms),
            tau_ms=float(self.tau_ms), w_rec_gain=float(self.w_rec_gain), exc_fraction=self.exc_fraction,
            p_connect=float(self.p_connect), seed=self.teacher_seed if seed is None else seed,
        )

    def train_config(self):
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, learning_rate=self.learning_rate,
            acc_criterion=self.acc_criterion, eval_every=self.eval_every, eval_batch_size=256,
            history_every=self.history_every, checkpoint_every=0, seed=self.seed, progress=False,
        )


def _train_student(student, task, train_config, out: Path | None):
    run_dir = None if out is None else out / "run"
    t0 = time.perf_counter()
    run = train(student, task, train_config, out=run_dir, figures=run_dir is not None)
    return run, time.perf_counter() - t0


def _report(teacher_w, before, run, config, mask, out: Path | None, wall: float, extra: dict) -> dict:
    after = run.model.effective_weights().w_rec.detach()
    blocks = ("A->B", "A->A", "B->B")
    scores_after = recovery_scores(teacher_w, after, config, mask, blocks) if teacher_w is not None else None
    scores_before = recovery_scores(teacher_w, before, config, mask, blocks) if teacher_w is not None else None
    history = recovery_history(run.history, teacher_w, config, mask) if teacher_w is not None else []
    results = {
        **extra,
        "train_seconds": round(wall, 3),
        "train_steps": run.summary.get("steps"),
        "stopped_because": run.summary.get("stopped_because"),
        "final_variance_explained": run.summary.get("final_accuracy"),
        "final_loss": run.summary.get("final_loss"),
    }
    if scores_after is not None:
        results["recovery_before"] = scores_before
        results["recovery_after"] = scores_after
        results["pearson_r_A_to_B"] = scores_after["A->B"]["pearson_r"]
        results["relative_error_A_to_B"] = scores_after["A->B"]["relative_error"]
    if out is not None:
        np.savez(out / "weights.npz", student_before=before.numpy(), student_after=after.numpy(),
                 **({} if teacher_w is None else {"teacher": teacher_w.numpy()}))
        if teacher_w is not None:
            fig = plot_recovery(teacher_w, before, after, config, "A->B", scores_after["A->B"])
            fig.savefig(out / "recovery_A_to_B.png", dpi=110)
            write_csv(out / "recovery_history.csv", history)
            plot_recovery_history(history).savefig(out / "recovery_history.png", dpi=110)
        write_json(out / "results.json", results)
    results["history"] = history
    results["run"] = run
    return results


def run_teacher_student(config: TeacherStudentConfig | Mapping[str, Any] | None = None, out=None,
                        overwrite: bool = False) -> dict[str, Any]:
    """Build a teacher, train a student on its data, and score the recovered weights.

    Parameters
    ----------
    config : TeacherStudentConfig or dict of its fields, optional
    out : path, optional
        Folder to write: ``run/`` (the student's run folder), ``results.json``,
        ``weights.npz`` (teacher, student before and after), ``recovery_A_to_B.png``,
        ``recovery_history.csv`` and ``.png``. Never overwritten unless ``overwrite``.

    Returns
    -------
    dict with ``pearson_r_A_to_B``, ``relative_error_A_to_B``, ``recovery_before`` and
    ``recovery_after`` (every block), ``train_seconds``, ``train_steps``,
    ``history`` (score per snapshot) and ``run`` (the :class:`~neurornn.runs.Run`).
    """
    config = TeacherStudentConfig.resolve(config)
    out = prepare_experiment_folder(out, "teacher-student", overwrite)
    model_config = config.model_config()
    teacher = make_network(model_config).eval()
    student = student_like(teacher, seed=config.student_seed)
    task = TeacherTask(teacher, n_steps=config.n_steps, stimulus=config.stimulus,
                       stimulus_scale=config.stimulus_scale, observation_noise=config.observation_noise)
    teacher_w = teacher.effective_weights().w_rec.detach().clone()
    before = student.effective_weights().w_rec.detach().clone()
    run, wall = _train_student(student, task, config.train_config(), out)
    if out is not None:
        write_bytes(out / "teacher.safetensors", save_safetensors(
            {k: v.detach().contiguous() for k, v in teacher.effective_weights().as_dict().items()}))
    mask = teacher.rec_mask.cpu().numpy()
    return _report(teacher_w, before, run, model_config, mask, out, wall, {"config": config.to_dict()})


def infer_from_recording(stimulation, activity, *, dt_ms: float = 10.0, model: Mapping[str, Any] | None = None,
                         train=None, out=None, overwrite: bool = False) -> dict[str, Any]:
    """Infer A -> B (and within-area) weights from recorded stimulation and activity.

    Parameters
    ----------
    stimulation : array of shape (trials, time, n_A), or a path to an npz with
        ``stimulation`` and ``activity`` (then ``activity`` must be None)
    activity : array of shape (trials, time, n_B) or None
    dt_ms : float
        Time step of the recording.
    model : dict, optional
        :class:`~neurornn.RNNConfig` fields of the student (see
        :func:`~neurornn.analysis.inference.two_area_config`).
    train : TrainConfig, optional
    out : path, optional
        Writes ``run/``, ``results.json`` and ``weights.npz``.

    Returns
    -------
    dict with ``weights`` (the inferred ``W_rec`` (n_units, n_units)), ``A->B``
    block, the final variance explained and ``run``.
    """
    if activity is None:
        stimulation, activity = load_recording(stimulation)
    task = RecordedTask(stimulation, activity, dt_ms=dt_ms)
    model = dict(model or {})
    model.setdefault("dt_ms", float(dt_ms))
    model_config = two_area_config(task.n_inputs, task.n_outputs, **model)
    student = make_network(model_config)
    train = train or TrainConfig(steps=1500, learning_rate=1e-2, eval_every=25, history_every=25,
                                 checkpoint_every=0, progress=False)
    if not isinstance(train, TrainConfig):
        raise TypeError(f"train must be a TrainConfig, got {type(train).__name__}")
    out = prepare_experiment_folder(out, "teacher-student-recording", overwrite)
    before = student.effective_weights().w_rec.detach().clone()
    run, wall = _train_student(student, task, train, out)
    results = _report(None, before, run, model_config, None, out, wall, {"n_trials": task.stimulation.shape[0]})
    results["weights"] = run.model.effective_weights().w_rec.detach().numpy()
    results["A->B"] = block(results["weights"], model_config, "A->B")
    return results
