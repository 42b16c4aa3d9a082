"""The 20 rules of Yang, Joglekar, Song, Newsome and Wang (2019), drawn trial by trial.

Private: each rule family draws, for ``n`` trials, the stimuli (ring modality, direction,
strength, on and off step), the go cue, the trial's end and whether and where to respond,
with the distributions and timings of the paper's code (``gyyang/multitask``, ``task.py``,
mode ``random``), except that every timing is drawn per trial instead of per batch. Times are
in steps of ``dt_ms``, converted from ms as the paper does (``int(ms / dt)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

__all__ = ["RULES", "Stimulus", "Trials", "draw_rule"]

RULES = ("fdgo", "reactgo", "delaygo", "fdanti", "reactanti", "delayanti",
         "dm1", "dm2", "contextdm1", "contextdm2", "multidm",
         "delaydm1", "delaydm2", "contextdelaydm1", "contextdelaydm2", "multidelaydm",
         "dmsgo", "dmsnogo", "dmcgo", "dmcnogo")

#: A stimulus that stays on until the end of the trial ends at this step.
FOREVER = 10**6
_TWO_PI = 2 * math.pi
_DMC_LOCS = tuple(v * math.pi for v in (0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9))


@dataclass
class Stimulus:
    """One bump on a ring: modality (0 or 1), direction (rad), strength, steps [on, off); each (n,)."""

    mod: Tensor
    loc: Tensor
    strength: Tensor
    on: Tensor
    off: Tensor


@dataclass
class Trials:
    """``n`` trials of one rule. Step tensors are long, shape (n,).

    ``bounds`` = (stimulus1 on, stimulus1 off, stimulus2 on, stimulus2 off): the period
    boundaries before the go cue (equal where a period is absent); ``fix_off`` is when the
    fixation input goes off (``FOREVER``: never, the go cue is a stimulus); ``go`` is the go
    cue (response onset); ``end`` the trial's end; ``respond`` (bool) whether the network must
    answer (no-go trials keep fixating) and ``out_loc`` where.
    """

    stimuli: list[Stimulus]
    bounds: tuple[Tensor, Tensor, Tensor, Tensor]
    fix_off: Tensor
    go: Tensor
    end: Tensor
    respond: Tensor
    out_loc: Tensor
    conditions: dict[str, Tensor] = field(default_factory=dict)


class _Draw:
    """The random draws of one batch (all from ``generator``), timings in steps of ``dt_ms``."""

    def __init__(self, n: int, generator: torch.Generator, dt_ms: float) -> None:
        self.n, self.g, self.dt = n, generator, dt_ms

    def uniform(self, low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(self.n, generator=self.g, dtype=torch.float64)

    def choice(self, values) -> Tensor:
        table = torch.as_tensor(values, dtype=torch.float64)
        return table[torch.randint(0, len(table), (self.n,), generator=self.g)]

    def sign(self) -> Tensor:
        return self.choice((-1.0, 1.0))

    def steps(self, ms: Tensor | float) -> Tensor:
        """``int(ms / dt)`` as the paper converts (a tiny slack against float error)."""
        ms = torch.as_tensor(ms, dtype=torch.float64).expand(self.n)
        return torch.floor(ms / self.dt + 1e-9).long()

    def modality(self) -> Tensor:
        return torch.randint(0, 2, (self.n,), generator=self.g)

    def direction(self) -> Tensor:
        return self.uniform(0.0, _TWO_PI)


def _const(d: _Draw, value: float) -> Tensor:
    return torch.full((d.n,), float(value), dtype=torch.float64)


def _go_family(d: _Draw, kind: str, anti: bool) -> Trials:
    loc, mod, one = d.direction(), d.modality(), _const(d, 1.0)
    if kind == "fd":      # stimulus on from stim_on to the end; go cue: fixation off
        on = d.steps(d.uniform(300, 700))
        go = on + d.steps(d.uniform(500, 1500))
        off = torch.full_like(on, FOREVER)
        bounds = (on, go, go, go)
    elif kind == "react":  # stimulus onset is the go cue; fixation stays on
        on = d.steps(d.uniform(500, 2500))
        go, off = on, torch.full_like(on, FOREVER)
        bounds = (go, go, go, go)
    else:                  # delayed: stimulus, delay, then fixation off
        on = d.steps(d.choice((300, 500, 700)))
        off = on + d.steps(d.choice((200, 400, 600)))
        go = off + d.steps(d.choice((200, 400, 800, 1600)))
        bounds = (on, off, go, go)
    fix_off = torch.full_like(go, FOREVER) if kind == "react" else go
    out = (loc + math.pi) % _TWO_PI if anti else loc
    return Trials([Stimulus(mod, loc, one, on, off)], bounds, fix_off, go, go + d.steps(500.0),
                  torch.ones(d.n, dtype=torch.bool), out,
                  {"stim1_loc": loc, "stim1_mod": mod.double()})


def _two_locations(d: _Draw) -> tuple[Tensor, Tensor]:
    loc1 = d.direction()
    return loc1, (loc1 + d.uniform(0.5 * math.pi, 1.5 * math.pi) * d.sign()) % _TWO_PI


def _strengths(d: _Draw, cohs) -> tuple[Tensor, Tensor]:
    """``contextdm_genstim``: mean U(0.8, 1.2) plus and minus a signed coherence."""
    mean, coh = d.uniform(0.8, 1.2), d.choice(cohs) * d.sign()
    return mean + coh, mean - coh


def _dm_family(d: _Draw, attend: str, delayed: bool) -> Trials:
    """dm1/dm2 (attend 'mod1'/'mod2', one ring), contextdm1/2 ('ctx1'/'ctx2'), multidm ('both');
    ``delayed``: the two stimuli one after the other (delaydm ...)."""
    loc1, loc2 = _two_locations(d)
    cohs = (0.08, 0.16, 0.32) if delayed else (0.01, 0.02, 0.04, 0.08)
    if delayed:
        on1 = d.steps(d.choice((200, 400, 600)))
        off1 = on1 + d.steps(d.choice((200, 400, 600)))
        on2 = off1 + d.steps(d.choice((200, 400, 800, 1600)))
        off2 = on2 + d.steps(d.choice((200, 400, 600)))
        go = off2 + d.steps(d.uniform(100, 300))
        bounds = (on1, off1, on2, off2)
    else:
        on1 = on2 = d.steps(d.uniform(100, 400))
        off1 = off2 = go = on1 + d.steps(d.choice((400, 800, 1600)))
        bounds = (on1, go, go, go)
    zeros, ones = torch.zeros(d.n, dtype=torch.long), torch.ones(d.n, dtype=torch.long)
    if attend in ("mod1", "mod2"):
        s1, s2 = _strengths(d, cohs)
        mod = zeros if attend == "mod1" else ones
        stimuli = [Stimulus(mod, loc1, s1, on1, off1), Stimulus(mod, loc2, s2, on2, off2)]
        choose1 = s1 > s2
        conds = {"stim1_strength": s1, "stim2_strength": s2}
    else:
        if attend == "both":
            s1, s2 = _strengths(d, cohs)
            d1, d2 = s1 * d.uniform(0.2, 0.8) * d.sign(), s2 * d.uniform(0.2, 0.8) * d.sign()
            a1, a2, b1, b2 = s1 + d1 / 2, s2 + d2 / 2, s1 - d1 / 2, s2 - d2 / 2
            choose1 = (a1 + b1) > (a2 + b2)
        else:
            a1, a2 = _strengths(d, cohs)  # modality 1
            b1, b2 = _strengths(d, cohs)  # modality 2
            choose1 = (a1 > a2) if attend == "ctx1" else (b1 > b2)
        stimuli = [Stimulus(zeros, loc1, a1, on1, off1), Stimulus(zeros, loc2, a2, on2, off2),
                   Stimulus(ones, loc1, b1, on1, off1), Stimulus(ones, loc2, b2, on2, off2)]
        conds = {"mod1_strength_diff": a1 - a2, "mod2_strength_diff": b1 - b2}
    out = torch.where(choose1, loc1, loc2)
    return Trials(stimuli, bounds, go, go, go + d.steps(500.0), torch.ones(d.n, dtype=torch.bool), out,
                  {"stim1_loc": loc1, "stim2_loc": loc2, "choose_stim1": choose1.double(), **conds})


def _match_family(d: _Draw, category: bool, nogo_on_match: bool) -> Trials:
    """dmsgo/dmsnogo (match = same direction), dmcgo/dmcnogo (match = same half of the ring).

    The second stimulus is the go cue and stays on; fixation input stays on. Go trials answer
    at the second stimulus' direction; no-go trials keep fixating."""
    mod1, mod2 = d.modality(), d.modality()
    if category:
        loc1, loc2 = d.choice(_DMC_LOCS), d.choice(_DMC_LOCS)
        match = (loc1 < math.pi) == (loc2 < math.pi)
    else:
        match = torch.randint(0, 2, (d.n,), generator=d.g).bool()
        dist = d.uniform(math.pi / 9, 17 * math.pi / 9) * d.sign()
        loc1 = d.direction()
        loc2 = (loc1 + dist * (~match).double()) % _TWO_PI
    on1 = d.steps(d.choice((200, 400, 600)))
    off1 = on1 + d.steps(d.choice((200, 400, 600)))
    go = off1 + d.steps(d.choice((200, 400, 800, 1600)))
    end = go + d.steps(d.choice((200, 400, 600)) if category else 500.0)
    one = _const(d, 1.0)
    stimuli = [Stimulus(mod1, loc1, one, on1, off1), Stimulus(mod2, loc2, one, go, torch.full_like(go, FOREVER))]
    respond = ~match if nogo_on_match else match
    return Trials(stimuli, (on1, off1, go, go), torch.full_like(go, FOREVER), go, end, respond, loc2,
                  {"stim1_loc": loc1, "stim2_loc": loc2, "match": match.double()})


_FAMILIES: dict[str, Callable[[_Draw], Trials]] = {
    "fdgo": lambda d: _go_family(d, "fd", False),
    "reactgo": lambda d: _go_family(d, "react", False),
    "delaygo": lambda d: _go_family(d, "delay", False),
    "fdanti": lambda d: _go_family(d, "fd", True),
    "reactanti": lambda d: _go_family(d, "react", True),
    "delayanti": lambda d: _go_family(d, "delay", True),
    "dm1": lambda d: _dm_family(d, "mod1", False),
    "dm2": lambda d: _dm_family(d, "mod2", False),
    "contextdm1": lambda d: _dm_family(d, "ctx1", False),
    "contextdm2": lambda d: _dm_family(d, "ctx2", False),
    "multidm": lambda d: _dm_family(d, "both", False),
    "delaydm1": lambda d: _dm_family(d, "mod1", True),
    "delaydm2": lambda d: _dm_family(d, "mod2", True),
    "contextdelaydm1": lambda d: _dm_family(d, "ctx1", True),
    "contextdelaydm2": lambda d: _dm_family(d, "ctx2", True),
    "multidelaydm": lambda d: _dm_family(d, "both", True),
    "dmsgo": lambda d: _match_family(d, False, False),
    "dmsnogo": lambda d: _match_family(d, False, True),
    "dmcgo": lambda d: _match_family(d, True, False),
    "dmcnogo": lambda d: _match_family(d, True, True),
}
assert tuple(_FAMILIES) == RULES


def draw_rule(rule: str, n: int, generator: torch.Generator, dt_ms: float) -> Trials:
    """``n`` trials of ``rule`` (one of :data:`RULES`)."""
    return _FAMILIES[rule](_Draw(n, generator, dt_ms))
