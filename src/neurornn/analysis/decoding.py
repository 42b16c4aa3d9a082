"""Cross-validated linear decoding of trial conditions from activity, per time step and across time.

:func:`decode` trains a linear decoder of one trial condition at each time step
(scikit-learn's ``LogisticRegression`` for a discrete condition, ``Ridge`` for a
continuous one), scores it on held-out trials at every time step (the
cross-temporal matrix: train at ``t1``, test at ``t2``) and gives the chance level
from the same cross-validation with shuffled labels. Registered in the pipeline as
``decoding`` (every condition of the task's batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._validation import check_choice, check_int, check_positive
from ..plotting import new_figure, tight_layout
from ._registry import register_analysis
from .activity import Activity

__all__ = ["Decoding", "decode", "decode_conditions", "plot_decoding", "condition_kind"]

_MAX_LEVELS = 10  # a condition with at most this many integer levels is decoded as discrete


def activity_array(source: Any, use: str = "rates", name: str = "activity") -> np.ndarray:
    """(trials, time, units) float64 array of an Activity (``use``: rates, states, outputs) or an array."""
    if isinstance(source, Activity):
        check_choice("use", use, ("rates", "states", "outputs"))
        return np.asarray(getattr(source, use), dtype=float)
    try:
        x = np.asarray(source, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an Activity or an array of shape (trials, time, units), "
                        f"got {type(source).__name__}") from None
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{name} must have shape (trials, time, units), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def condition_kind(values: Any) -> str:
    """``"discrete"`` for integer-valued conditions with at most 10 levels, else ``"continuous"``."""
    v = np.asarray(values, dtype=float)
    levels = np.unique(v)
    return "discrete" if len(levels) <= _MAX_LEVELS and np.allclose(levels, np.round(levels)) else "continuous"


@dataclass(frozen=True)
class Decoding:
    """Result of :func:`decode`.

    Attributes
    ----------
    condition : str
    kind : {"discrete", "continuous"}
    metric : {"accuracy", "r2"}
    time_ms : ndarray of shape (times,)
        Times of the decoded steps (``time_step`` subsampling).
    score_ : ndarray of shape (times,)
        Cross-validated score of the decoder trained and tested at each time.
    chance_ : ndarray of shape (n_shuffles, times)
        The same with shuffled labels (one row per shuffle).
    cross_temporal_ : ndarray of shape (times, times) or None
        ``[t1, t2]``: trained at ``t1``, tested at ``t2`` (diagonal = ``score_``).
    """

    condition: str
    kind: str
    metric: str
    time_ms: np.ndarray
    score_: np.ndarray
    chance_: np.ndarray
    cross_temporal_: np.ndarray | None = None
    n_splits: int = 5
    extra: dict = field(default_factory=dict)

    @property
    def chance_mean_(self) -> np.ndarray:
        return self.chance_.mean(0)

    @property
    def chance_band_(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): 2.5 and 97.5 percentiles of the shuffled scores at each time."""
        return np.percentile(self.chance_, 2.5, axis=0), np.percentile(self.chance_, 97.5, axis=0)

    def table(self) -> list[dict]:
        """One row per time: time_ms, score, chance mean, chance band."""
        low, high = self.chance_band_
        return [{"condition": self.condition, "time_ms": float(t), "score": float(s), "chance_mean": float(c),
                 "chance_low": float(lo), "chance_high": float(hi)}
                for t, s, c, lo, hi in zip(self.time_ms, self.score_, self.chance_mean_, low, high)]

    def summary(self) -> dict:
        i = int(np.argmax(self.score_))
        above = self.score_ > self.chance_band_[1]
        return {"condition": self.condition, "kind": self.kind, "metric": self.metric, "n_splits": self.n_splits,
                "n_shuffles": int(self.chance_.shape[0]), "peak_score": float(self.score_[i]),
                "peak_time_ms": float(self.time_ms[i]), "mean_chance": float(self.chance_.mean()),
                "fraction_of_times_above_chance": float(above.mean()),
                "final_score": float(self.score_[-1])}


def _folds(y: np.ndarray, kind: str, n_splits: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test-index folds (stratified for discrete labels)."""
    n = len(y)
    if kind == "discrete":
        folds: list[list[int]] = [[] for _ in range(n_splits)]
        offset = 0
        for level in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == level))
            for j, i in enumerate(idx):
                folds[(j + offset) % n_splits].append(int(i))
            offset += len(idx)
        return [np.sort(np.asarray(f, dtype=int)) for f in folds if f]
    return [np.sort(f) for f in np.array_split(rng.permutation(n), n_splits)]


def _solver(n_features: int, n_classes: int) -> str:
    """Newton-Cholesky for small problems (fastest there), L-BFGS when its Hessian gets large."""
    return "newton-cholesky" if n_features * (1 if n_classes <= 2 else n_classes) <= 256 else "lbfgs"


def _cv_scores(x: np.ndarray, y: np.ndarray, kind: str, folds: list[np.ndarray], reg: float,
               cross: bool) -> np.ndarray:
    """Mean over folds of the (times, times) score matrix (or (times,) diagonal when not ``cross``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # many small fits: BLAS threads only contend (tens of times slower on 2 cores)
        return _cv_scores_one_thread(x, y, kind, folds, reg, cross)


def _cv_scores_one_thread(x: np.ndarray, y: np.ndarray, kind: str, folds: list[np.ndarray], reg: float,
                          cross: bool) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression, Ridge

    n, t_len, _ = x.shape
    total = np.zeros((t_len, t_len) if cross else t_len)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        for t1 in range(t_len):
            xt = x[train, t1]
            mu, sd = xt.mean(0), xt.std(0) + 1e-9
            if kind == "discrete":
                model = LogisticRegression(C=1.0 / reg, solver=_solver(x.shape[2], len(np.unique(y))),
                                           max_iter=500).fit((xt - mu) / sd, y[train])
            else:
                model = Ridge(alpha=reg).fit((xt - mu) / sd, y[train])
            test_x = x[test] if cross else x[test, t1:t1 + 1]
            pred = model.predict(((test_x - mu) / sd).reshape(-1, x.shape[2])).reshape(len(test), -1)
            if kind == "discrete":
                score = (pred == y[test, None]).mean(0)
            else:
                resid = ((pred - y[test, None]) ** 2).sum(0)
                score = 1.0 - resid / max(((y[test] - y[test].mean()) ** 2).sum(), 1e-12)
            if cross:
                total[t1] += score
            else:
                total[t1] += score[0]
    return total / len(folds)


def decode(
    activity: Any,
    labels: Any,
    *,
    condition: str = "condition",
    kind: str = "auto",
    use: str = "rates",
    n_splits: int = 5,
    n_shuffles: int = 5,
    cross_temporal: bool = True,
    time_step: int = 1,
    regularization: float = 1.0,
    dt_ms: float | None = None,
    seed: int = 0,
) -> Decoding:
    """Cross-validated linear decoding of ``labels`` from activity at each time step.

    Parameters
    ----------
    activity : Activity or array of shape (trials, time, units)
    labels : array of shape (trials,), or the name of a condition of ``activity``
    kind : {"auto", "discrete", "continuous"}
        Discrete: ``LogisticRegression`` (score: accuracy); continuous: ``Ridge`` (score: R^2).
        ``"auto"``: discrete for integer values with at most 10 levels (:func:`condition_kind`).
    use : {"rates", "states", "outputs"}
        Which array of an Activity.
    n_splits : int
        Folds of the cross-validation (stratified for discrete labels; lowered to the smallest
        class size, at least 2).
    n_shuffles : int
        Label permutations for the chance level (each decoded like the real labels, per time step).
    cross_temporal : bool
        Also score every decoder at every other time (``cross_temporal_``).
    time_step : int
        Decode every ``time_step``-th step only.
    regularization : float
        Ridge ``alpha``; ``1 / C`` of the logistic regression. Features are z-scored on the training folds.
    seed : int
        Seed of the folds and shuffles.

    Returns
    -------
    Decoding
    """
    if isinstance(labels, str):
        if not isinstance(activity, Activity) or labels not in activity.conditions:
            known = list(activity.conditions) if isinstance(activity, Activity) else []
            raise ValueError(f"labels {labels!r} is not a condition of the activity; conditions: {known}")
        condition, labels = labels, activity.conditions[labels]
    x = activity_array(activity, use)
    y = np.asarray(labels, dtype=float).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have one value per trial ({x.shape[0]}), got shape {np.shape(labels)}")
    if not np.isfinite(y).all():
        raise ValueError("labels contain NaN or inf")
    check_choice("kind", kind, ("auto", "discrete", "continuous"))
    kind = condition_kind(y) if kind == "auto" else kind
    check_int("n_splits", n_splits, minimum=2)
    check_int("n_shuffles", n_shuffles, minimum=1)
    check_int("time_step", time_step, minimum=1)
    check_positive("regularization", regularization)
    if kind == "discrete":
        _, counts = np.unique(y, return_counts=True)
        if len(counts) < 2:
            raise ValueError(f"labels of {condition!r} take a single value: nothing to decode")
        n_splits = min(n_splits, int(counts.min()))
        if n_splits < 2:
            raise ValueError(f"labels of {condition!r}: every value needs at least 2 trials for cross-validation, "
                             f"got counts {counts.tolist()}")
    elif np.ptp(y) == 0:
        raise ValueError(f"labels of {condition!r} are constant: nothing to decode")
    n_splits = min(n_splits, x.shape[0] // 2) if kind == "continuous" else n_splits
    if n_splits < 2:
        raise ValueError(f"decoding needs at least 4 trials, got {x.shape[0]}")
    steps = np.arange(0, x.shape[1], time_step)
    x = x[:, steps]
    dt = float(activity.dt_ms) if isinstance(activity, Activity) else float(dt_ms or 1.0)
    rng = np.random.default_rng(seed)
    folds = _folds(y, kind, n_splits, rng)
    matrix = _cv_scores(x, y, kind, folds, regularization, cross_temporal)
    score = np.diag(matrix).copy() if cross_temporal else matrix
    chance = np.stack([_cv_scores(x, yp, kind, _folds(yp, kind, n_splits, rng), regularization, False)
                       for yp in (rng.permutation(y) for _ in range(n_shuffles))])
    return Decoding(condition, kind, "accuracy" if kind == "discrete" else "r2", (steps + 1) * dt, score, chance,
                    matrix if cross_temporal else None, n_splits)


def decode_conditions(activity: Activity, conditions: Any = None, **kwargs: Any) -> dict[str, Decoding]:
    """:func:`decode` each condition of ``activity`` (default: all that can be decoded).

    Conditions that cannot be decoded (one value, or too few trials per value) are left out.
    """
    if not isinstance(activity, Activity):
        raise TypeError(f"activity must be an Activity, got {type(activity).__name__}")
    names = list(activity.conditions) if conditions is None else list(conditions)
    out = {}
    for name in names:
        try:
            out[name] = decode(activity, name, **kwargs)
        except ValueError:
            if conditions is not None:
                raise
    return out


def plot_decoding(results: Mapping[str, Decoding] | Decoding, *, cross_temporal: bool = False) -> Any:
    """Score over time with the chance band (one panel per condition), or the cross-temporal matrices."""

    if isinstance(results, Decoding):
        results = {results.condition: results}
    items = list(results.values())
    n = max(len(items), 1)
    fig = new_figure(3.6 * n, 3.2)
    if not items:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no condition could be decoded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    for i, d in enumerate(items):
        ax = fig.add_subplot(1, n, i + 1)
        label = "accuracy" if d.metric == "accuracy" else "R$^2$"
        if cross_temporal and d.cross_temporal_ is not None:
            t = d.time_ms
            im = ax.imshow(d.cross_temporal_, origin="lower", aspect="auto", cmap="viridis",
                           extent=(t[0], t[-1], t[0], t[-1]))
            fig.colorbar(im, ax=ax, label=f"test {label}")
            ax.set_xlabel("test time (ms)")
            ax.set_ylabel("train time (ms)")
        else:
            low, high = d.chance_band_
            ax.fill_between(d.time_ms, low, high, color="0.8", label="chance (shuffles, 95%)")
            ax.plot(d.time_ms, d.chance_mean_, color="0.5", lw=1)
            ax.plot(d.time_ms, d.score_, color="C0", lw=2, label="decoder")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel(f"cross-validated {label}")
            ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{d.condition} ({d.kind})", fontsize=9)
    tight_layout(fig)
    return fig


# ---------------------------------------------------------------------- the pipeline analysis
_MAX_TIMES = 40  # decoded time points per condition in the pipeline


@register_analysis("decoding", needs=("activity",),
                   writes=("analysis/decoding.json", "analysis/decoding.csv", "analysis/decoding.npz",
                           "figures/decoding.png", "figures/decoding_cross_temporal.png"),
                   help="cross-validated linear decoding of each trial condition over time and across time, "
                        "with chance from label shuffles")
def _decoding_analysis(ctx) -> tuple[str, dict]:
    act = ctx.activity
    step = max(1, int(np.ceil(act.rates.shape[1] / _MAX_TIMES)))
    results = decode_conditions(act, time_step=step, n_shuffles=5, seed=ctx.options.seed)
    rows = [row for d in results.values() for row in d.table()]
    path = ctx.out.path("analysis/decoding.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "condition,time_ms,score,chance_mean,chance_low,chance_high"
    lines = [header] + [",".join(str(r[k]) for k in header.split(",")) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    ctx.out.record([path])
    best = "; ".join(f"{k} peak {d.metric} {d.summary()['peak_score']:.2f} at {d.summary()['peak_time_ms']:.0f} ms "
                     f"(chance {d.summary()['mean_chance']:.2f})" for k, d in results.items())
    skipped = [k for k in act.conditions if k not in results]
    msg = (f"Decoding ({len(results)} condition(s), {act.n_trials} trials): {best or 'none decodable'}."
           + (f" Not decodable: {', '.join(skipped)}." if skipped else ""))
    data = {"message": msg, "snapshot": ctx.snapshot, "time_step": step, "skipped": skipped,
            "conditions": {k: d.summary() for k, d in results.items()}}
    ctx.out.json("decoding", data)
    arrays = {}
    for k, d in results.items():
        arrays[f"{k}_time_ms"], arrays[f"{k}_score"], arrays[f"{k}_chance"] = d.time_ms, d.score_, d.chance_
        if d.cross_temporal_ is not None:
            arrays[f"{k}_cross_temporal"] = d.cross_temporal_
    ctx.out.npz("decoding", arrays)
    ctx.out.figure("decoding", plot_decoding(results))
    ctx.out.figure("decoding_cross_temporal", plot_decoding(results, cross_temporal=True))
    return msg, data
