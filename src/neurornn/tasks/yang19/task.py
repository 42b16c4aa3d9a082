"""The multitask set of Yang et al. (2019) as one batched task (``yang19``) and 20 single tasks.

Inputs (``1 + 2 * n_eachring + 20``): ``fixation``, two rings of ``n_eachring`` direction-tuned
units (``mod1_00`` ..., ``mod2_00`` ...) and one rule input per rule (``rule_fdgo`` ...),
one-hot, on for the whole trial. Outputs (``1 + n_eachring``): ``fixation`` and a ring
(``ring_00`` ...). A stimulus at direction ``theta`` with strength ``s`` drives ring unit ``k``
(preferred direction ``2 pi k / n_eachring``) by ``0.8 s exp(-d^2 / 2)``, ``d`` the circular
distance in units of ``pi / 8``; every input gets gaussian noise of std
``sigma_x sqrt(2 tau_ms / dt_ms)``, as in the paper's code.

Targets: 0.05 everywhere, the fixation output 0.85 until the go cue (the whole trial on no-go
trials), the ring ``0.05 + 0.8 exp(-d^2 / 2)`` around the response direction from the go cue.
Loss weights (the paper's cost mask divided by 5 so that they lie in [0, 1]): 0 for the first
100 ms, 0.2 until the go cue, 0 for the 100 ms after it, 1 for the rest of the response, 0 in
the padding after a trial's end (trials of one batch differ in length).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from ..._validation import check_int, check_nonnegative, check_positive, is_real, suggest
from ..base import Batch, Task
from ..registry import register
from ._rules import RULES, Trials, draw_rule

__all__ = ["PERIODS", "RULES", "Yang19", "SINGLE_TASKS", "popvec"]

PERIODS = ("fixation", "stimulus1", "delay1", "stimulus2", "delay2", "go", "response", "end")
_FIX_TARGET, _BASELINE, _BUMP = 0.85, 0.05, 0.8
_UNSCORED_MS = 100.0  # the first 100 ms of a trial and of the response are not scored


def _bump(loc: Tensor, n_eachring: int) -> Tensor:
    """(n,) directions -> (n, n_eachring): ``exp(-d^2 / 2)``, d the circular distance / (pi / 8)."""
    pref = torch.arange(n_eachring, dtype=torch.float64) * (2 * math.pi / n_eachring)
    dist = (loc[:, None] - pref[None, :]).abs()
    dist = torch.minimum(dist, 2 * math.pi - dist) / (math.pi / 8)
    return torch.exp(-0.5 * dist**2)


def popvec(ring: Tensor) -> Tensor:
    """Population-vector direction (rad, in [0, 2 pi)) of ring activity (..., n_eachring)."""
    n = ring.shape[-1]
    pref = torch.arange(n, dtype=ring.dtype, device=ring.device) * (2 * math.pi / n)
    angle = torch.atan2((ring * torch.sin(pref)).sum(-1), (ring * torch.cos(pref)).sum(-1))
    return angle % (2 * math.pi)


def _check_rules(rules: Any) -> tuple[str, ...]:
    if rules is None:
        return RULES
    if isinstance(rules, str):
        rules = [rules]
    if not hasattr(rules, "__iter__"):
        raise TypeError(f"rules must be a sequence of rule names, got {rules!r}")
    out = []
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"rules: unknown rule {rule!r}{suggest(str(rule), RULES)}; known: {list(RULES)}")
        if rule in out:
            raise ValueError(f"rules lists {rule!r} twice")
        out.append(rule)
    if not out:
        raise ValueError("rules must not be empty")
    return tuple(out)


def _check_weights(weights: Any, rules: tuple[str, ...]) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if isinstance(weights, dict):
        unknown = [k for k in weights if k not in rules]
        if unknown:
            raise ValueError(f"rule_weights names {unknown}, which are not in rules={list(rules)}")
        weights = [weights.get(r, 0.0) for r in rules]
    weights = list(weights)
    if len(weights) != len(rules):
        raise ValueError(f"rule_weights must have one weight per rule ({len(rules)}), got {len(weights)}")
    for w in weights:
        if not is_real(w) or not math.isfinite(w) or w < 0:
            raise ValueError(f"rule_weights entries must be finite numbers >= 0, got {w!r}")
    if sum(weights) <= 0:
        raise ValueError("rule_weights must not all be 0")
    return tuple(float(w) for w in weights)


@register
class Yang19(Task):
    """The 20 tasks of Yang et al. (2019), mixed trial by trial (see the module docstring).

    Each trial draws its rule (uniformly, or by ``rule_weights``) and then its stimuli and
    timings as the paper's code does (per trial here). A trial is correct when the fixation
    output stays above 0.5 from 100 ms into the trial until the go cue and, at the trial's last
    response step, is below 0.5 with the ring's population-vector direction within
    ``tolerance_deg`` (36) of the target, or above 0.5 on a no-go trial (the paper's
    ``get_perf`` checks that last step only: ``accuracy_last_step``).

    Parameters
    ----------
    dt_ms : float
        Time step (the paper: 20 ms); must divide 100 ms.
    rules : sequence of str, optional
        The rules to mix (default: all 20, in the paper's order). The rule inputs are always
        all 20, so a network trained on a subset can be given the others.
    rule_weights : sequence of float or dict rule -> weight, optional
        Relative frequency of each rule (default: uniform).
    n_eachring : int
        Units per ring (inputs and output), default 32.
    sigma_x : float
        Input noise level (std ``sigma_x sqrt(2 tau_ms / dt_ms)``, the paper: 0.01).
    tau_ms : float
        Time constant used to scale the input noise (the paper: 100 ms).
    tolerance_deg : float
        A response within this angle of the target is correct (the paper: 36 degrees).
    """

    name = "yang19"
    description = "Yang et al. 2019: 20 cognitive tasks (go, anti, dm, context dm, dms, dmc) mixed per trial, MSE"
    loss = "mse"
    criterion = 0.9
    defaults = {
        "model": {"n_units": 256, "tau_ms": 100.0, "activation": "relu", "w_rec_init": "orthogonal",
                  "sigma_rec": 0.05},
        "train": {"steps": 20000, "batch_size": 64, "learning_rate": 0.001, "eval_batch_size": 512},
    }
    fixed_rules: tuple[str, ...] | None = None

    def __init__(self, dt_ms: float = 20.0, rules: Sequence[str] | None = None,
                 rule_weights: Sequence[float] | None = None, n_eachring: int = 32, sigma_x: float = 0.01,
                 tau_ms: float = 100.0, tolerance_deg: float = 36.0) -> None:
        super().__init__(dt_ms)
        ratio = _UNSCORED_MS / self.dt_ms
        if self.dt_ms > _UNSCORED_MS or not math.isclose(ratio, round(ratio), abs_tol=1e-6):
            raise ValueError(f"dt_ms must divide 100 ms (the unscored windows), got {dt_ms}")
        self.rules = _check_rules(rules)
        self.rule_weights = _check_weights(rule_weights, self.rules)
        self.n_eachring = check_int("n_eachring", n_eachring, minimum=2)
        self.sigma_x = float(check_nonnegative("sigma_x", sigma_x))
        self.tau_ms = float(check_positive("tau_ms", tau_ms))
        self.tolerance_deg = float(check_positive("tolerance_deg", tolerance_deg))
        if self.tolerance_deg >= 180:
            raise ValueError(f"tolerance_deg must be < 180, got {tolerance_deg}")
        if self.fixed_rules is None:
            self._params.update(rules=list(self.rules), rule_weights=None if self.rule_weights is None
                                else list(self.rule_weights))
        self._params.update(n_eachring=self.n_eachring, sigma_x=self.sigma_x, tau_ms=self.tau_ms,
                            tolerance_deg=self.tolerance_deg)
        ring = [f"{k:02d}" for k in range(self.n_eachring)]
        self.input_names = ("fixation", *(f"mod1_{k}" for k in ring), *(f"mod2_{k}" for k in ring),
                            *(f"rule_{r}" for r in RULES))
        self.output_names = ("fixation", *(f"ring_{k}" for k in ring))

    @property
    def rule_start(self) -> int:
        """Index of the first rule input."""
        return 1 + 2 * self.n_eachring

    def condition_values(self) -> dict[str, tuple]:
        values = {"rule": tuple(float(RULES.index(r)) for r in self.rules)}
        nogo = any(r.startswith(("dms", "dmc")) for r in self.rules)
        go = any(not r.startswith(("dms", "dmc")) for r in self.rules) or nogo
        values["respond"] = (0.0, 1.0) if nogo else (1.0,) if go else ()
        return values

    # ------------------------------------------------------------------ trials
    def build(self, n: int, generator: torch.Generator) -> Batch:
        if len(self.rules) == 1:
            which = torch.zeros(n, dtype=torch.long)
        else:
            w = torch.ones(len(self.rules)) if self.rule_weights is None else torch.tensor(self.rule_weights)
            which = torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)
        return self._render([self.rules[int(i)] for i in which], generator)

    def rule_batch(self, rule: str, n: int, generator: torch.Generator | None = None) -> Batch:
        """``n`` trials of one ``rule`` (any of the 20, also one not in ``rules``), as :meth:`batch`."""
        _check_rules([rule])
        n = check_int("n", n, minimum=1)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        batch = self._render([rule] * n, generator)
        self._check_batch(batch, n)
        return batch

    def _render(self, trial_rules: list[str], generator: torch.Generator) -> Batch:
        n, dt, R = len(trial_rules), self.dt_ms, self.n_eachring
        groups = {r: [i for i, tr in enumerate(trial_rules) if tr == r] for r in dict.fromkeys(trial_rules)}
        drawn = {r: draw_rule(r, len(idx), generator, dt) for r, idx in groups.items()}
        T = int(max(int(t.end.max()) for t in drawn.values()))
        inputs = torch.zeros(n, T, self.rule_start + len(RULES))
        targets = torch.full((n, T, 1 + R), _BASELINE)
        mask, periods = torch.zeros(n, T), torch.zeros(n, T, dtype=torch.long)
        keys = set.intersection(*(set(t.conditions) for t in drawn.values()))
        conds = {k: torch.zeros(n) for k in ("rule", "respond", "response_loc", "go_step", "end_step")}
        conds.update({k: torch.zeros(n) for k in sorted(keys)})
        time = torch.arange(T)[None, :]
        unscored = int(round(_UNSCORED_MS / dt))
        for rule, idx in groups.items():
            tr, rows = drawn[rule], torch.tensor(idx)
            inputs[rows] = self._inputs(tr, time, RULES.index(rule))
            targets[rows] = self._targets(tr, time)
            go, end = tr.go[:, None], tr.end[:, None]
            m = torch.zeros(len(idx), T)
            m[(time >= unscored) & (time < go)] = 0.2
            m[(time >= go + unscored) & (time < end)] = 1.0
            mask[rows] = m
            bounds = (*tr.bounds, tr.go, tr.go + unscored, tr.end)
            periods[rows] = sum((time >= b[:, None]).long() for b in bounds)
            conds["rule"][rows] = float(RULES.index(rule))
            conds["respond"][rows] = tr.respond.float()
            conds["response_loc"][rows] = tr.out_loc.float()
            conds["go_step"][rows], conds["end_step"][rows] = tr.go.float(), tr.end.float()
            for k in keys:
                conds[k][rows] = tr.conditions[k].float()
        if self.sigma_x > 0:
            std = self.sigma_x * math.sqrt(2 * self.tau_ms / dt)
            inputs += std * torch.randn(inputs.shape, generator=generator)
        return Batch(inputs, targets, mask, conds, periods, PERIODS)

    def _inputs(self, tr: Trials, time: Tensor, rule_index: int) -> Tensor:
        n, R = tr.go.shape[0], self.n_eachring
        x = torch.zeros(n, time.shape[1], self.rule_start + len(RULES))
        x[..., 0] = (time < tr.fix_off[:, None]).float()
        for s in tr.stimuli:
            bump = (_BUMP * s.strength[:, None] * _bump(s.loc, R)).float()  # (n, R)
            rings = torch.zeros(n, 2 * R)
            rings[s.mod == 0, :R], rings[s.mod == 1, R:] = bump[s.mod == 0], bump[s.mod == 1]
            on = ((time >= s.on[:, None]) & (time < s.off[:, None])).float()  # (n, T)
            x[..., 1:self.rule_start] += on[..., None] * rings[:, None, :]
        x[..., self.rule_start + rule_index] = 1.0
        return x

    def _targets(self, tr: Trials, time: Tensor) -> Tensor:
        n, R = tr.go.shape[0], self.n_eachring
        y = torch.full((n, time.shape[1], 1 + R), _BASELINE)
        before = time < tr.go[:, None]
        fixate = before | ~tr.respond[:, None]
        y[..., 0] = torch.where(fixate, _FIX_TARGET, _BASELINE)
        bump = (_BASELINE + _BUMP * _bump(tr.out_loc, R)).float()  # (n, R)
        answer = (~fixate).float()[..., None]
        y[..., 1:] = answer * bump[:, None, :] + (1 - answer) * _BASELINE
        return y

    # ------------------------------------------------------------------ scoring
    def correct(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per trial (bool (batch,)): correct as this task scores it, and as the paper's last-step check."""
        outputs = outputs.detach().float().cpu()
        c = {k: v.cpu() for k, v in batch.conditions.items()}
        n, T = outputs.shape[:2]
        go, last = c["go_step"].long(), (c["end_step"].long() - 1).clamp(max=T - 1)
        respond = c["respond"].bool()
        time = torch.arange(T)[None, :]
        fix = outputs[..., 0] > 0.5
        unscored = int(round(_UNSCORED_MS / self.dt_ms))
        window = (time >= unscored) & (time < go[:, None])
        held = (fix | ~window).all(1)
        rows = torch.arange(n)
        fix_last = fix[rows, last]
        direction = popvec(outputs[rows, last, 1:])
        dist = (direction - c["response_loc"]).abs()
        dist = torch.minimum(dist, 2 * math.pi - dist)
        near = dist < math.radians(self.tolerance_deg)
        last_ok = torch.where(respond, ~fix_last & near, fix_last)
        return held & last_ok, last_ok

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Accuracy (fixation held until the go cue and the right answer at the end), per rule too."""
        ok, last_ok = self.correct(outputs, batch)
        scores = {"accuracy": ok.float().mean().item(), "accuracy_last_step": last_ok.float().mean().item()}
        if len(self.rules) > 1:
            rule = batch.conditions["rule"].cpu()
            for r in self.rules:
                sel = rule == RULES.index(r)
                if sel.any():
                    scores[f"accuracy_{r}"] = ok[sel].float().mean().item()
        return scores


def _single(rule: str) -> type[Yang19]:
    """The single task ``yang19_<rule>``: the mixture restricted to one rule."""

    def __init__(self, dt_ms: float = 20.0, n_eachring: int = 32, sigma_x: float = 0.01, tau_ms: float = 100.0,
                 tolerance_deg: float = 36.0) -> None:
        Yang19.__init__(self, dt_ms, rules=(rule,), n_eachring=n_eachring, sigma_x=sigma_x, tau_ms=tau_ms,
                        tolerance_deg=tolerance_deg)

    cls = type(f"Yang19_{rule}", (Yang19,), {
        "name": f"yang19_{rule}", "fixed_rules": (rule,), "__init__": __init__, "__module__": __name__,
        "description": f"Yang et al. 2019 task {rule!r} alone (ring inputs, 20 rule inputs), MSE",
        "__doc__": f"Yang et al. (2019) rule ``{rule}`` alone; see :class:`Yang19` (no ``rules``, ``rule_weights``).",
    })
    return register(cls)


SINGLE_TASKS = {rule: _single(rule) for rule in RULES}
