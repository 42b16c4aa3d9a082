"""Mixed selectivity (Rigotti et al. 2013) and the geometry of abstraction (Bernardi et al. 2020).

- :func:`mixed_selectivity`: each unit's (period-averaged) rate regressed on the task
  variables and all their products; nested F-tests sort units into non-selective,
  pure, linear mixed and nonlinear mixed selectivity.
- :func:`shattering_dimensionality`: mean cross-validated accuracy of linear decoders of
  every balanced dichotomy of the conditions (combinations of binary variables).
- :func:`ccgp`: cross-condition generalisation performance of each binary variable
  (train on some conditions, test on conditions never seen in training).

Registered in the pipeline as ``mixed_selectivity`` (every trial period of the task).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping

import numpy as np

from .._validation import check_fraction, check_int
from ..plotting import new_figure, tight_layout
from ._registry import register_analysis
from .activity import Activity
from .decoding import _folds, _solver, activity_array

__all__ = ["MixedSelectivity", "ccgp", "mixed_selectivity", "period_responses", "plot_mixed_selectivity",
           "shattering_dimensionality", "task_variables"]

CATEGORIES = ("non_selective", "pure", "linear_mixed", "nonlinear_mixed")
_MAX_DICHOTOMIES = 100


def period_responses(activity: Any, periods: Any = None, period_names: Any = (), period: Any = None,
                     use: str = "rates") -> np.ndarray:
    """Mean activity of each trial in one period, shape (trials, units) (NaN rows: trials without it).

    Parameters
    ----------
    activity : Activity or array of shape (trials, time, units)
    periods : array of shape (trials, time), int, optional
        Period index of each step (a task batch's ``periods``). ``None`` (or ``period=None``): the whole trial.
    period_names : sequence of str
        Names of the period indices (``batch.period_names``).
    period : str or int, optional
    """
    x = activity_array(activity, use)
    if period is None or periods is None:
        return x.mean(1)
    p = np.asarray(periods.cpu() if hasattr(periods, "cpu") else periods)
    if p.shape != x.shape[:2]:
        raise ValueError(f"periods must have shape (trials, time) = {x.shape[:2]}, got {p.shape}")
    if isinstance(period, str):
        names = list(period_names)
        if period not in names:
            raise ValueError(f"period {period!r} is not one of {names}")
        period = names.index(period)
    sel = (p == int(period))[..., None]
    count = sel.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (x * sel).sum(1) / np.maximum(count, 1), np.nan)


def task_variables(conditions: Mapping[str, Any], max_levels: int = 10) -> dict[str, np.ndarray]:
    """The conditions that are task variables: at most ``max_levels`` values, not determined by earlier ones.

    A condition is kept when it splits the trials into more groups than the ones kept before it
    (``signed_coherence`` after ``choice`` and ``coherence``, ``xor`` after ``a`` and ``b`` are dropped).
    """
    kept: dict[str, np.ndarray] = {}
    groups = 1
    for name, values in conditions.items():
        v = np.asarray(values.cpu() if hasattr(values, "cpu") else values, dtype=float).reshape(-1)
        if not 2 <= len(np.unique(v)) <= max_levels:
            continue
        n = len(np.unique(np.column_stack([*kept.values(), v]), axis=0))
        if n > groups:
            kept[name], groups = v, n
    return kept


def _variables(variables: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    if not isinstance(variables, Mapping) or not variables:
        raise ValueError("variables must be a non-empty dict of name -> values of shape (trials,)")
    out = {}
    for k, v in variables.items():
        a = np.asarray(v, dtype=float).reshape(-1)
        if a.shape[0] != n:
            raise ValueError(f"variable {k!r} must have one value per trial ({n}), got {a.shape[0]}")
        if np.ptp(a) == 0:
            raise ValueError(f"variable {k!r} is constant")
        out[k] = a
    return out


def _rss(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return ((y - design @ coef) ** 2).sum(0), int(np.linalg.matrix_rank(design))


def _f_test(rss_r, rank_r, rss_f, rank_f, n, scale) -> np.ndarray:
    from scipy.stats import f as f_dist

    df1, df2 = rank_f - rank_r, n - rank_f
    if df1 <= 0 or df2 <= 0:
        return np.ones_like(rss_f)
    gain = np.maximum(rss_r - rss_f, 0.0)
    tiny = 1e-12 * (scale + 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (gain / df1) / (np.maximum(rss_f, 1e-300) / df2)
    p = f_dist.sf(stat, df1, df2)
    return np.where(gain <= tiny, 1.0, np.where(rss_f <= tiny, 0.0, p))


@dataclass(frozen=True)
class MixedSelectivity:
    """Result of :func:`mixed_selectivity`.

    Attributes
    ----------
    variables : tuple of str
    terms : tuple of str
        Regressors after the intercept: the variables, then their products (``"a*b"``).
    categories_ : ndarray of str, shape (units,)
        ``non_selective``, ``pure``, ``linear_mixed`` or ``nonlinear_mixed``.
    p_main_ : ndarray of shape (units, variables)
        F-test p-value of each variable in the additive model (drop-one).
    p_interaction_ : ndarray of shape (units,)
        F-test p-value of all interaction terms together (full against additive model).
    coef_ : ndarray of shape (units, 1 + terms)
    alpha : float
    """

    variables: tuple
    terms: tuple
    categories_: np.ndarray
    p_main_: np.ndarray
    p_interaction_: np.ndarray
    coef_: np.ndarray
    alpha: float

    @property
    def fractions_(self) -> dict[str, float]:
        return {c: float(np.mean(self.categories_ == c)) for c in CATEGORIES}

    def summary(self) -> dict:
        return {"variables": list(self.variables), "terms": list(self.terms), "alpha": self.alpha,
                "n_units": int(len(self.categories_)), "fractions": self.fractions_,
                "counts": {c: int(np.sum(self.categories_ == c)) for c in CATEGORIES}}


def mixed_selectivity(responses: Any, variables: Mapping[str, Any], *, alpha: float = 0.05) -> MixedSelectivity:
    """Sort units by their selectivity to task variables (Rigotti et al. 2013, by regression).

    Each unit's response ``r`` (one value per trial) is fitted by least squares with
    ``r = b0 + sum_i b_i z_i + sum_{S, |S|>=2} b_S prod_{i in S} z_i`` where ``z_i`` is variable ``i``
    z-scored over trials (binary variables become +-1). Then, per unit:

    1. the interaction terms together are tested by a nested F-test (full against additive model);
       ``p < alpha``: **nonlinear mixed**;
    2. otherwise each variable is tested in the additive model (drop-one F-test) at ``alpha / n_variables``
       (Bonferroni): two or more significant: **linear mixed**; one: **pure**; none: **non-selective**.

    Parameters
    ----------
    responses : array of shape (trials, units)
        E.g. :func:`period_responses` (trials with NaN responses are dropped).
    variables : dict of name -> array of shape (trials,)
    alpha : float in (0, 1)
        Needs repeated trials per condition (residual degrees of freedom > 0).

    Returns
    -------
    MixedSelectivity
    """
    y = np.asarray(responses, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"responses must have shape (trials, units), got {y.shape}")
    check_fraction("alpha", alpha)
    v = _variables(variables, y.shape[0])
    keep = np.isfinite(y).all(1)
    y = y[keep]
    z = {k: (a[keep] - a[keep].mean()) / (a[keep].std() + 1e-300) for k, a in v.items()}
    names = list(z)
    inter = [s for size in range(2, len(names) + 1) for s in combinations(names, size)]
    main_cols = [z[k] for k in names]
    inter_cols = [np.prod([z[k] for k in s], axis=0) for s in inter]
    n = y.shape[0]
    ones = np.ones((n, 1))
    additive = np.column_stack([ones, *main_cols])
    full = np.column_stack([additive, *inter_cols]) if inter_cols else additive
    if n <= np.linalg.matrix_rank(full):
        raise ValueError(f"mixed selectivity needs more trials ({n}) than regressors "
                         f"({np.linalg.matrix_rank(full)}): repeat each condition")
    scale = ((y - y.mean(0)) ** 2).sum(0)
    rss_add, rank_add = _rss(additive, y)
    rss_full, rank_full = _rss(full, y)
    p_int = _f_test(rss_add, rank_add, rss_full, rank_full, n, scale) if inter_cols else np.ones(y.shape[1])
    p_main = np.ones((y.shape[1], len(names)))
    for i in range(len(names)):
        reduced = np.delete(additive, i + 1, axis=1)
        rss_r, rank_r = _rss(reduced, y)
        p_main[:, i] = _f_test(rss_r, rank_r, rss_add, rank_add, n, scale)
    n_sig = (p_main < alpha / len(names)).sum(1)
    cats = np.where(p_int < alpha, "nonlinear_mixed",
                    np.where(n_sig >= 2, "linear_mixed", np.where(n_sig == 1, "pure", "non_selective")))
    coef, *_ = np.linalg.lstsq(full, y, rcond=None)
    terms = tuple(names) + tuple("*".join(s) for s in inter)
    return MixedSelectivity(tuple(names), terms, cats.astype(str), p_main, p_int, coef.T, float(alpha))


# ---------------------------------------------------------------------- Bernardi et al. 2020
def _conditions(responses: Any, variables: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"responses must have shape (trials, units), got {x.shape}")
    v = _variables(variables, x.shape[0])
    for k, a in v.items():
        if len(np.unique(a)) != 2:
            raise ValueError(f"variable {k!r} must be binary (2 values), got {len(np.unique(a))} values")
    keep = np.isfinite(x).all(1)
    table = np.column_stack([a[keep] for a in v.values()])
    combos, cond = np.unique(table, axis=0, return_inverse=True)
    cond = cond.reshape(-1)
    counts = np.bincount(cond, minlength=len(combos))
    if counts.min() < 2:
        raise ValueError(f"every condition needs at least 2 trials, got counts {counts.tolist()} for the "
                         f"conditions {combos.tolist()} of {list(v)}")
    return x[keep], cond, combos, list(v)


def _fit_score(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    mu, sd = x_train.mean(0), x_train.std(0) + 1e-9
    with threadpool_limits(1):  # small fits: BLAS threads only contend
        model = LogisticRegression(solver=_solver(x_train.shape[1], 2), max_iter=500).fit((x_train - mu) / sd,
                                                                                          y_train)
    return float((model.predict((x_test - mu) / sd) == y_test).mean())


def shattering_dimensionality(responses: Any, variables: Mapping[str, Any], *, n_splits: int = 5,
                              seed: int = 0) -> dict:
    """Shattering dimensionality (Bernardi et al. 2020): mean decoding accuracy over balanced dichotomies.

    The conditions are the combinations of the binary ``variables`` (``2**k`` if all occur). Every split of
    them into two halves (at most 100, drawn at random beyond that) is decoded by a logistic regression,
    cross-validated over trials (folds stratified by condition). Chance: 0.5.

    Returns
    -------
    dict with ``shattering_dimensionality`` (mean accuracy), ``accuracies`` (one per dichotomy),
    ``dichotomies`` (the conditions on side 1, as indices into ``conditions``), ``conditions``.
    """
    check_int("n_splits", n_splits, minimum=2)
    x, cond, combos, names = _conditions(responses, variables)
    m = len(combos)
    if m < 2:
        raise ValueError("shattering dimensionality needs at least 2 conditions")
    half = m // 2
    splits = [c for c in combinations(range(m), half) if 0 in c]
    rng = np.random.default_rng(seed)
    if len(splits) > _MAX_DICHOTOMIES:
        splits = [splits[i] for i in np.sort(rng.choice(len(splits), _MAX_DICHOTOMIES, replace=False))]
    folds = _folds(cond, "discrete", min(n_splits, int(np.bincount(cond).min())), rng)
    acc = []
    for side in splits:
        y = np.isin(cond, side).astype(int)
        scores = [_fit_score(x[np.setdiff1d(np.arange(len(y)), t)], y[np.setdiff1d(np.arange(len(y)), t)],
                             x[t], y[t]) for t in folds]
        acc.append(float(np.mean(scores)))
    return {"shattering_dimensionality": float(np.mean(acc)), "accuracies": acc,
            "dichotomies": [list(s) for s in splits], "conditions": combos.tolist(), "variables": names}


def ccgp(responses: Any, variables: Mapping[str, Any]) -> dict[str, float]:
    """Cross-condition generalisation performance of each binary variable (Bernardi et al. 2020).

    For variable ``v``, the conditions split by its value into sides A and B. For every held-out pair
    ``(a, b)`` of one condition from each side, a logistic regression is trained on the trials of the
    other conditions and tested on the trials of ``a`` and ``b``; CCGP is the mean test accuracy over
    the pairs (chance 0.5; an abstract, factorised variable gives values near 1). With 3 or more
    conditions per side every pair is held out in turn (Bernardi's 8 conditions: 16 pairs); with 2 per
    side (two binary variables) only the pairs that share the other variables' values (train on
    ``b = 0``, test on ``b = 1`` and the reverse), since training on one condition per side that
    differs in every variable does not define a direction for ``v``.
    Needs at least 2 conditions on each side (two binary variables or more).

    Returns
    -------
    dict of variable name -> CCGP
    """
    x, cond, combos, names = _conditions(responses, variables)
    out = {}
    for j, name in enumerate(names):
        side = combos[:, j] == combos[:, j].max()
        a_side, b_side = np.flatnonzero(side), np.flatnonzero(~side)
        if len(a_side) < 2 or len(b_side) < 2:
            raise ValueError(f"CCGP of {name!r} needs at least 2 conditions on each side, got "
                             f"{len(a_side)} and {len(b_side)} (give at least 2 binary variables)")
        y = side[cond].astype(int)
        others = np.delete(combos, j, axis=1)
        pairs = [(a, b) for a in a_side for b in b_side
                 if len(a_side) > 2 or np.array_equal(others[a], others[b])]
        scores = []
        for a, b in pairs:
            test = np.isin(cond, (a, b))
            scores.append(_fit_score(x[~test], y[~test], x[test], y[test]))
        out[name] = float(np.mean(scores))
    return out


def plot_mixed_selectivity(per_period: Mapping[str, Mapping[str, Any]]) -> Any:
    """Stacked fractions of unit categories per period; shattering dimensionality and CCGP per period."""

    fig = new_figure(9.0, 3.4)
    ax = fig.add_subplot(1, 2, 1)
    names = list(per_period)
    bottom = np.zeros(len(names))
    for i, c in enumerate(CATEGORIES):
        vals = np.array([per_period[p].get("fractions", {}).get(c, 0.0) for p in names])
        ax.bar(names, vals, bottom=bottom, color=f"C{i}", label=c.replace("_", " "))
        bottom += vals
    ax.set_ylabel("fraction of units")
    ax.set_xlabel("trial period")
    ax.set_title("selectivity (nested F-tests)", fontsize=9)
    ax.legend(fontsize=7)
    ax2 = fig.add_subplot(1, 2, 2)
    width = 0.8 / 2
    sd = [per_period[p].get("shattering_dimensionality") for p in names]
    cc = [np.mean(list(per_period[p]["ccgp"].values())) if per_period[p].get("ccgp") else None for p in names]
    pos = np.arange(len(names))
    ax2.bar(pos - width / 2, [np.nan if s is None else s for s in sd], width, label="shattering dim.")
    ax2.bar(pos + width / 2, [np.nan if s is None else s for s in cc], width, label="CCGP (mean over variables)")
    ax2.axhline(0.5, color="0.4", ls="--", lw=1, label="chance")
    ax2.set_xticks(pos, names)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("decoding accuracy")
    ax2.set_xlabel("trial period")
    ax2.legend(fontsize=7)
    tight_layout(fig)
    return fig


# ---------------------------------------------------------------------- the pipeline analysis
def _binary(variables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Binary versions of the task variables (multi-level ones split at their median)."""
    out = {}
    for k, v in variables.items():
        levels = np.unique(v)
        if len(levels) == 2:
            out[k] = v
        elif len(levels) > 2:
            out[f"{k}>median"] = (v > np.median(v)).astype(float)
    return out


def _period_result(x: np.ndarray, variables: dict, binary: dict, seed: int) -> dict:
    res: dict[str, Any] = {}
    keep = np.isfinite(x).all(1)
    res["n_trials"] = int(keep.sum())
    try:
        ms = mixed_selectivity(x, variables)
        res.update(ms.summary())
        res["categories"] = ms.categories_.tolist()
    except ValueError as err:
        res["mixed_selectivity_skipped"] = str(err)
    try:
        res["shattering_dimensionality"] = shattering_dimensionality(x, binary, seed=seed)["shattering_dimensionality"]
    except ValueError as err:
        res["shattering_skipped"] = str(err)
    try:
        res["ccgp"] = ccgp(x, binary)
    except ValueError as err:
        res["ccgp_skipped"] = str(err)
    return res


@register_analysis("mixed_selectivity", needs=("batch", "activity"),
                   writes=("analysis/mixed_selectivity.json", "figures/mixed_selectivity.png"),
                   help="pure / linear mixed / nonlinear mixed selectivity of units per trial period (Rigotti "
                        "2013), shattering dimensionality and CCGP (Bernardi 2020)")
def _mixed_selectivity_analysis(ctx) -> tuple[str, dict]:
    act, batch = ctx.activity, ctx.batch
    variables = task_variables(act.conditions)
    binary = _binary(variables)
    periods = batch.periods
    names = list(batch.period_names) if periods is not None and batch.period_names else ["trial"]
    per_period = {}
    for i, name in enumerate(names):
        x = period_responses(act, periods, names, None if name == "trial" and periods is None else i)
        if variables and np.isfinite(x).all(1).sum() >= 4:
            per_period[name] = _period_result(x, variables, binary, ctx.options.seed)
    parts = [f"{p}: " + ", ".join(f"{r['fractions'][c]:.2f} {c.replace('_', ' ')}" for c in CATEGORIES[1:])
             for p, r in per_period.items() if "fractions" in r]
    msg = (f"Mixed selectivity to {', '.join(variables) or 'no task variable'} "
           f"({act.n_units} units, alpha 0.05): " + ("; ".join(parts) or "not computable") + ".")
    data = {"message": msg, "snapshot": ctx.snapshot, "variables": list(variables), "binary_variables": list(binary),
            "periods": per_period}
    ctx.out.json("mixed_selectivity", data)
    ctx.out.figure("mixed_selectivity", plot_mixed_selectivity(per_period))
    return msg, data
