"""Connectivity inference: recover a circuit's weights from its input-output behaviour.

The set-up of the teacher-student experiment (a practical guide to RNNs for
neuroscience, example 3): two areas, A and B. Every unit of A is stimulated on
its own (a frozen identity ``w_in``, ``input_areas=("A",)``); A projects onto B
(``area_projections`` A -> A, A -> B, B -> B; no B -> A), and the activity of B
is what is recorded (an identity readout of B, frozen). A *teacher* network with
known random weights generates data (random stimulation of A -> activity of B);
a *student* of the same architecture is trained on that data, and its weights
are compared with the teacher's (:func:`recovery_scores`).

The same machinery infers connectivity from recorded data: give the stimulation
``(trials, time, n_A)`` and the activity ``(trials, time, n_B)``
(:class:`RecordedTask`, :func:`load_recording`).

Blocks are named ``"A->B"`` (``W_rec[B, A]``: from A onto B), ``"A->A"``, ``"B->B"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice, check_int, check_nonnegative, check_positive
from ..models import RNN, RNNConfig, Weights
from ..models.connectivity import init_recurrent
from ..ops.losses import masked_mse
from ..tasks.base import Batch, Task

__all__ = [
    "two_area_config",
    "make_network",
    "student_like",
    "TeacherTask",
    "RecordedTask",
    "load_recording",
    "block",
    "recovery_scores",
    "recovery_history",
    "plot_recovery",
    "plot_recovery_history",
]

STIMULI = ("gaussian", "uniform")


def two_area_config(n_a: int = 10, n_b: int = 10, **model: Any) -> RNNConfig:
    """Config of the two-area circuit: A stimulated one-to-one, A -> B, B read out.

    Parameters
    ----------
    n_a, n_b : int
        Units of area A (each driven by its own input) and of area B (recorded).
    **model : RNNConfig fields to override (defaults: tanh, ``dt_ms=10``,
        ``tau_ms=20``, recurrence within A and within B, no biases).

    Returns
    -------
    RNNConfig with ``n_inputs = n_a``, ``n_units = n_a + n_b``, ``n_outputs = n_b``.
    """
    check_int("n_a", n_a, minimum=1)
    check_int("n_b", n_b, minimum=1)
    fields = dict(
        n_inputs=n_a,
        n_units=n_a + n_b,
        n_outputs=n_b,
        dt_ms=10.0,
        tau_ms=20.0,
        activation="tanh",
        areas=(("A", n_a), ("B", n_b)),
        area_projections=(("A", "A"), ("A", "B"), ("B", "B")),
        input_areas=("A",),
        output_areas=("B",),
        w_in_init="identity",
        train_w_in=False,
        train_w_out=False,
        train_b_out=False,
        train_b_rec=False,
    )
    fixed = ("n_inputs", "n_units", "n_outputs", "areas", "input_areas", "output_areas")
    for key in fixed:
        if key in model:
            raise ValueError(f"{key} is set by the two-area circuit (n_a={n_a}, n_b={n_b}); do not pass it")
    unknown = set(model) - set(RNNConfig.field_names())
    if unknown:
        RNNConfig.from_dict({**fields, **model})  # raises with a suggestion
    fields.update(model)
    return RNNConfig(**fields)


def _readout_of_b(config: RNNConfig) -> Tensor:
    sl = config.area_slices()["B"]
    w_out = torch.zeros(config.n_outputs, config.n_units)
    w_out[:, sl] = torch.eye(sl.stop - sl.start)
    return w_out


def make_network(config: RNNConfig, w_rec: Tensor | None = None) -> RNN:
    """A two-area network whose outputs are exactly B's rates (identity readout of B).

    Parameters
    ----------
    config : RNNConfig from :func:`two_area_config`
    w_rec : Tensor of shape (n_units, n_units), optional
        Effective recurrent weights (default: the config's seeded initialisation).
    """
    if not isinstance(config, RNNConfig):
        raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
    slices = config.area_slices()
    if set(slices) != {"A", "B"}:
        raise ValueError(f"config must have areas A and B (see two_area_config), got {list(slices)}")
    weights: dict[str, Tensor] = {"w_out": _readout_of_b(config)}
    if w_rec is not None:
        weights["w_rec"] = torch.as_tensor(w_rec, dtype=torch.float32)
    return RNN(config, weights=weights)


def student_like(teacher: RNN, seed: int = 1) -> RNN:
    """A student of the teacher's architecture and connectivity mask, with other initial weights.

    The student keeps the teacher's config (and so its sparse mask and Dale
    signs: the anatomy is taken as known); its initial recurrent weights are
    drawn with ``seed`` and masked by the teacher's mask.
    """
    if not isinstance(teacher, RNN):
        raise TypeError(f"teacher must be an RNN, got {type(teacher).__name__}")
    check_int("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    w0 = init_recurrent(teacher.config, teacher.rec_mask.cpu(), gen)
    return make_network(teacher.config, w_rec=w0)


def _r2(outputs: Tensor, targets: Tensor, mask: Tensor) -> float:
    m = mask[..., None].expand_as(targets)
    y = targets[m > 0]
    yhat = outputs[m > 0]
    sst = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((yhat - y) ** 2).sum() / sst.clamp_min(1e-30))


class _RegressionTask(Task):
    loss = "mse"
    criterion = 0.999

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``accuracy`` = variance of the activity explained (R^2, clipped at 0); ``mse``."""
        r2 = _r2(outputs.detach(), batch.targets, batch.mask)
        return {
            "accuracy": max(r2, 0.0),
            "r2": r2,
            "mse": float(masked_mse(outputs.detach(), batch.targets, batch.mask)),
        }


class TeacherTask(_RegressionTask):
    """Random stimulation of area A; targets: the teacher's activity of area B.

    Parameters
    ----------
    teacher : RNN from :func:`make_network`
    n_steps : int
        Time steps per trial.
    stimulus : {"gaussian", "uniform"}
        Independent ``N(0, scale^2)`` or ``U[0, scale)`` input to every unit of A
        at every step.
    stimulus_scale : float
    observation_noise : float
        Std of Gaussian noise added to the recorded activity.

    Batches: inputs (batch, n_steps, n_A), targets (batch, n_steps, n_B), mask ones.
    """

    name = "teacher_student"
    description = "random stimulation of area A, activity of area B of a teacher network as targets"

    def __init__(self, teacher: RNN, n_steps: int = 20, stimulus: str = "gaussian",
                 stimulus_scale: float = 1.0, observation_noise: float = 0.0) -> None:
        if not isinstance(teacher, RNN):
            raise TypeError(f"teacher must be an RNN, got {type(teacher).__name__}")
        cfg = teacher.config
        super().__init__(cfg.dt_ms)
        check_int("n_steps", n_steps, minimum=1)
        check_choice("stimulus", stimulus, STIMULI)
        check_positive("stimulus_scale", stimulus_scale)
        check_nonnegative("observation_noise", observation_noise)
        self.teacher = teacher.eval()
        self.n_steps, self.stimulus = n_steps, stimulus
        self.stimulus_scale, self.observation_noise = stimulus_scale, observation_noise
        self.input_names = tuple(f"stim_{i}" for i in range(cfg.n_inputs))
        self.output_names = tuple(f"rate_{i}" for i in range(cfg.n_outputs))
        self._params.update(n_steps=n_steps, stimulus=stimulus, stimulus_scale=stimulus_scale,
                            observation_noise=observation_noise)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        shape = (n, self.n_steps, self.n_inputs)
        if self.stimulus == "gaussian":
            u = torch.randn(shape, generator=generator) * self.stimulus_scale
        else:
            u = torch.rand(shape, generator=generator) * self.stimulus_scale
        device = self.teacher.alpha.device
        with torch.no_grad():
            y = self.teacher(u.to(device), noise=False).outputs.cpu()
        if self.observation_noise > 0:
            y = y + self.observation_noise * torch.randn(y.shape, generator=generator)
        return Batch(u, y, torch.ones(n, self.n_steps))


class RecordedTask(_RegressionTask):
    """Trials of recorded stimulation and activity, served in random batches.

    Parameters
    ----------
    stimulation : array of shape (trials, time, n_A)
        Input to each stimulated unit at every step.
    activity : array of shape (trials, time, n_B)
        Recorded activity (e.g. rates, scaled to the range of the activation).
    dt_ms : float
        Time step of the recording.

    ``batch(n)`` draws ``n`` trials with replacement from the ``generator``.
    """

    name = "recorded"
    description = "recorded stimulation of area A and activity of area B"

    def __init__(self, stimulation, activity, dt_ms: float = 10.0) -> None:
        super().__init__(dt_ms)
        stim = torch.as_tensor(np.asarray(stimulation), dtype=torch.float32)
        act = torch.as_tensor(np.asarray(activity), dtype=torch.float32)
        if stim.ndim != 3:
            raise ValueError(f"stimulation must have shape (trials, time, n_A), got {tuple(stim.shape)}")
        if act.ndim != 3:
            raise ValueError(f"activity must have shape (trials, time, n_B), got {tuple(act.shape)}")
        if stim.shape[:2] != act.shape[:2]:
            raise ValueError(
                f"stimulation and activity must have the same (trials, time), got {tuple(stim.shape[:2])} "
                f"and {tuple(act.shape[:2])}"
            )
        for name, x in (("stimulation", stim), ("activity", act)):
            if not torch.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or inf")
        self.stimulation, self.activity = stim, act
        self.input_names = tuple(f"stim_{i}" for i in range(stim.shape[-1]))
        self.output_names = tuple(f"rate_{i}" for i in range(act.shape[-1]))
        self._params.update(n_trials=stim.shape[0], n_steps=stim.shape[1])

    def build(self, n: int, generator: torch.Generator) -> Batch:
        idx = torch.randint(0, self.stimulation.shape[0], (n,), generator=generator)
        return Batch(self.stimulation[idx], self.activity[idx], torch.ones(n, self.stimulation.shape[1]))


def load_recording(path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``stimulation (trials, time, n_A)`` and ``activity (trials, time, n_B)`` from an npz file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recording {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as data:
        for key in ("stimulation", "activity"):
            if key not in data.files:
                raise ValueError(f"{str(path)!r} must hold arrays 'stimulation' and 'activity', has {data.files}")
        return data["stimulation"], data["activity"]


def _w_rec(w) -> np.ndarray:
    if isinstance(w, RNN):
        w = w.effective_weights().w_rec
    elif isinstance(w, Weights):
        w = w.w_rec
    if isinstance(w, Tensor):
        w = w.detach().cpu().double().numpy()
    return np.asarray(w, dtype=float)


def block(w, config: RNNConfig, name: str) -> np.ndarray:
    """The block ``"SRC->DST"`` of a recurrent weight matrix: ``W[DST, SRC]`` (n_dst, n_src)."""
    slices = config.area_slices()
    if not isinstance(name, str) or name.count("->") != 1:
        raise ValueError(f"block name must look like 'A->B', got {name!r}")
    src, dst = (s.strip() for s in name.split("->"))
    for a in (src, dst):
        check_choice("block area", a, list(slices))
    return _w_rec(w)[slices[dst], slices[src]]


def recovery_scores(teacher, student, config: RNNConfig, mask=None,
                    blocks: Sequence[str] = ("A->B", "A->A", "B->B")) -> dict[str, dict[str, float]]:
    """How well the student's weights match the teacher's, block by block.

    Parameters
    ----------
    teacher, student : RNN, Weights or array (n_units, n_units)
    config : RNNConfig (areas)
    mask : array (n_units, n_units), optional
        Compare only these connections (the teacher's sparse mask); default: all.

    Returns
    -------
    dict block -> {"pearson_r", "relative_error" (``||S - T||_F / ||T||_F``),
    "n_weights"}.
    """
    t, s = _w_rec(teacher), _w_rec(student)
    if t.shape != s.shape:
        raise ValueError(f"teacher and student weights must have the same shape, got {t.shape} and {s.shape}")
    m = np.ones_like(t, dtype=bool) if mask is None else _w_rec(mask) > 0
    out = {}
    for name in blocks:
        keep = block(m.astype(float), config, name) > 0
        tb, sb = block(t, config, name)[keep], block(s, config, name)[keep]
        r = float(np.corrcoef(tb, sb)[0, 1]) if tb.size > 1 and tb.std() > 0 and sb.std() > 0 else float("nan")
        norm = np.linalg.norm(tb)
        out[name] = {
            "pearson_r": r,
            "relative_error": float(np.linalg.norm(sb - tb) / norm) if norm > 0 else float("nan"),
            "n_weights": int(keep.sum()),
        }
    return out


def recovery_history(history, teacher, config: RNNConfig, mask=None, block_name: str = "A->B") -> list[dict]:
    """Recovery of one block at every snapshot of a weight history.

    Parameters
    ----------
    history : WeightHistory (``.steps`` and ``[i] -> Weights``)

    Returns
    -------
    list of {"step", "pearson_r", "relative_error"}.
    """
    records = []
    for i, step in enumerate(history.steps):
        score = recovery_scores(teacher, history[i], config, mask, blocks=(block_name,))[block_name]
        records.append({"step": int(step), "pearson_r": score["pearson_r"],
                        "relative_error": score["relative_error"]})
    return records


def plot_recovery(teacher, before, after, config: RNNConfig, block_name: str = "A->B",
                  scores: Mapping[str, float] | None = None):
    """Heatmaps of one block: teacher, student before and after training, and a scatter.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    mats = [block(x, config, block_name) for x in (teacher, before, after)]
    vmax = max(float(np.abs(m).max()) for m in mats) or 1.0
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    src, dst = block_name.split("->")
    for ax, m, title in zip(axes, mats, ("teacher", "student before", "student after")):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{title}: {block_name}", fontsize=9)
        ax.set_xlabel(f"from unit of {src}")
        ax.set_ylabel(f"onto unit of {dst}")
    fig.colorbar(im, ax=axes[:3], shrink=0.8)
    axes[3].scatter(mats[0].ravel(), mats[1].ravel(), s=8, c="0.6", label="before")
    axes[3].scatter(mats[0].ravel(), mats[2].ravel(), s=8, c="C3", label="after")
    axes[3].plot([-vmax, vmax], [-vmax, vmax], "k--", lw=0.8)
    axes[3].set_xlabel("teacher weight")
    axes[3].set_ylabel("student weight")
    axes[3].legend(fontsize=8)
    if scores:
        axes[3].set_title(f"r = {scores['pearson_r']:.3f}, rel. err = {scores['relative_error']:.3f}", fontsize=9)
    return fig


def plot_recovery_history(records: Sequence[Mapping[str, float]], block_name: str = "A->B"):
    """Pearson r and relative error of a block against training step.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not records:
        raise ValueError("records must not be empty")
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(steps, [r["pearson_r"] for r in records], "o-", ms=3)
    ax1.set_ylabel(f"Pearson r ({block_name})")
    ax2.plot(steps, [r["relative_error"] for r in records], "o-", ms=3, c="C3")
    ax2.set_ylabel(f"relative error ({block_name})")
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")
    return fig
