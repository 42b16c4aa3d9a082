"""A custom task in your own file: the template.

Train it without changing neurornn::

    neurornn train --task examples/my_task.py:MyTask
    neurornn train --task my_task:MyTask          # when my_task.py is importable (e.g. in the cwd)
    neurornn tasks show examples/my_task.py:MyTask --out my_task.png

or from Python::

    from neurornn import tasks
    task = tasks.make("examples/my_task.py:MyTask", delay_ms=300)

The task here: a pulse of a random amplitude in [0.2, 1] on the ``stimulus`` input;
after a delay, reproduce the amplitude on the ``report`` output while the ``go``
cue is on. It shows the whole contract: class attributes, validated keyword
parameters recorded in ``self._params``, ``build`` returning a :class:`Batch`
batch first, and ``evaluate`` returning a dict with ``"accuracy"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurornn.tasks import Batch, Task, ms_to_steps

__all__ = ["MyTask"]

PERIODS = ("fixation", "stimulus", "delay", "report")


class MyTask(Task):
    """Remember an amplitude across a delay and report it on a go cue.

    Inputs (2): ``stimulus`` (the amplitude during the stimulus), ``go`` (1 during
    the report period). Output (1, MSE): ``report`` = the amplitude during the
    report period, 0 before. Accuracy: trials whose mean report is within
    ``tolerance`` of the amplitude.
    """

    # Required class attributes: what `neurornn tasks` lists and the trainer reads.
    name = "my_task"
    description = "Remember an amplitude across a delay and report it on a go cue (template), MSE"
    input_names = ("stimulus", "go")
    output_names = ("report",)
    loss = "mse"               # or "cross_entropy" with one-hot targets
    criterion = 0.9            # accuracy at which training stops by default
    defaults = {               # recommended settings for `neurornn train --task ...`
        "model": {"n_units": 64, "tau_ms": 100.0, "activation": "relu"},
        "train": {"steps": 2000, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(self, dt_ms: float = 20.0, fixation_ms: float = 100.0, stimulus_ms: float = 200.0,
                 delay_ms: float = 500.0, report_ms: float = 200.0, tolerance: float = 0.1) -> None:
        super().__init__(dt_ms)  # validates dt_ms and starts self._params
        # Validate every parameter here, naming it in the error (ms_to_steps checks multiples of dt_ms).
        self.steps = {
            "fixation": ms_to_steps("fixation_ms", fixation_ms, self.dt_ms),
            "stimulus": ms_to_steps("stimulus_ms", stimulus_ms, self.dt_ms, allow_zero=False),
            "delay": ms_to_steps("delay_ms", delay_ms, self.dt_ms),
            "report": ms_to_steps("report_ms", report_ms, self.dt_ms, allow_zero=False),
        }
        if not isinstance(tolerance, (int, float)) or tolerance <= 0:
            raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}")
        self.tolerance = float(tolerance)
        # Record the parameters: tasks.make(name, **task.params()) must rebuild the task.
        self._params.update(fixation_ms=fixation_ms, stimulus_ms=stimulus_ms, delay_ms=delay_ms,
                            report_ms=report_ms, tolerance=self.tolerance)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` trials; ALL randomness from ``generator`` (so a seed reproduces the batch)."""
        T = sum(self.steps.values())
        bounds, start = {}, 0
        for period, length in self.steps.items():
            bounds[period] = slice(start, start + length)
            start += length
        amplitude = 0.2 + 0.8 * torch.rand(n, generator=generator)
        inputs = torch.zeros(n, T, 2)                      # (batch, time, n_inputs)
        inputs[:, bounds["stimulus"], 0] = amplitude[:, None]
        inputs[:, bounds["report"], 1] = 1.0
        targets = torch.zeros(n, T, 1)                     # (batch, time, n_outputs)
        targets[:, bounds["report"], 0] = amplitude[:, None]
        periods = torch.zeros(n, T, dtype=torch.long)      # (batch, time): index into PERIODS
        for i, period in enumerate(PERIODS):
            periods[:, bounds[period]] = i
        return Batch(inputs=inputs, targets=targets, mask=torch.ones(n, T),  # mask (batch, time)
                     conditions={"amplitude": amplitude},  # each (batch,)
                     periods=periods, period_names=PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """outputs (batch, time, n_outputs) -> {"accuracy": ..., ...}."""
        report = outputs[:, batch.period_mask("report")[0], 0].mean(1)
        error = (report - batch.conditions["amplitude"]).abs()
        return {"accuracy": (error < self.tolerance).float().mean().item(), "mean_abs_error": error.mean().item()}
