"""Shared timeline of the memory tasks (stimulus, memory, recall), seed 002."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import Timeline, to_steps
from .base import Task

__all__ = ["MemoryTask"]

PERIODS = ("fixation", "stimulus", "memory", "recall")


class MemoryTask(Task):
    """Base of trainRNNbrain's memory tasks: a brief stimulus whose onset is jittered,
    a memory period, then a recall period signalled by a ``recall_cue`` input.

    The stimulus starts ``fixation_ms`` plus a random integer number of steps in
    ``[0, jitter_ms]`` after the trial start (trainRNNbrain's ``stim_on_range``);
    the recall period starts at ``fixation_ms + jitter_ms + stimulus_ms +
    memory_ms`` for every trial, so the memory lasts ``memory_ms`` to
    ``memory_ms + jitter_ms``.
    """

    loss = "mse"
    criterion = 0.9
    # eval_batch_size 1024: trial accuracy near the criterion; 256 trials leave a sampling error of ~0.016.
    defaults = {
        "model": {"n_units": 64, "tau_ms": 50.0, "activation": "relu", "w_rec_gain": 0.8},
        "train": {"steps": 3000, "batch_size": 64, "learning_rate": 0.003, "eval_batch_size": 1024},
    }

    def _setup_timeline(self, fixation_ms, stimulus_ms, jitter_ms, memory_ms, recall_ms) -> None:
        s = to_steps({"fixation_ms": fixation_ms, "stimulus_ms": stimulus_ms, "jitter_ms": jitter_ms,
                      "memory_ms": memory_ms, "recall_ms": recall_ms}, self.dt_ms,
                     required=("stimulus", "recall"))
        self.jitter_steps = s["jitter"]
        self.stimulus_steps = s["stimulus"]
        self.timeline = Timeline({"fixation": s["fixation"], "stimulus": s["stimulus"] + s["jitter"],
                                  "memory": s["memory"], "recall": s["recall"]})
        self._params.update(fixation_ms=fixation_ms, stimulus_ms=stimulus_ms, jitter_ms=jitter_ms,
                            memory_ms=memory_ms, recall_ms=recall_ms)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def _stimulus_on(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Boolean (n, time) of the stimulus steps and the onset step of each trial (n,)."""
        start = self.timeline.bounds["stimulus"][0]
        onset = start + torch.randint(0, self.jitter_steps + 1, (n,), generator=generator)
        t = torch.arange(self.n_steps)[None, :]
        on = (t >= onset[:, None]) & (t < onset[:, None] + self.stimulus_steps)
        return on, onset

    def _periods(self, n: int) -> Tensor:
        return self.timeline.periods(n)
