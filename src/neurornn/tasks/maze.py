"""The seRNN maze task (Achterberg, Akarca et al. 2023; seed 001, ``mazeGeneratorI`` v1.2.0).

A goal location is shown, then a delay, then the possible first moves; the network
answers with the first step towards the goal (left, up, right or down), read out
at the last step. The eight problems are the seed's table exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_int
from ._common import Timeline
from .base import Batch, Task
from .registry import register

__all__ = ["Maze", "MAZES", "DIRECTIONS", "GOALS"]

_PERIODS = ("goal", "delay", "choices")

DIRECTIONS = ("l", "u", "r", "d")
GOALS = (7, 9, 17, 19)
#: The seed's maze dictionary: (goal, choices category, next step), in its order.
MAZES = (
    (9, "ul", "u"),
    (9, "rd", "r"),
    (19, "ld", "d"),
    (17, "rd", "d"),
    (17, "ul", "l"),
    (7, "ur", "u"),
    (19, "lr", "r"),
    (7, "lr", "l"),
)


def _maze_tables() -> tuple[Tensor, Tensor, Tensor]:
    goal = torch.zeros(len(MAZES), 8)
    choices = torch.zeros(len(MAZES), 8)
    label = torch.zeros(len(MAZES), dtype=torch.long)
    for i, (g, cats, step) in enumerate(MAZES):
        goal[i, GOALS.index(g)] = 1.0  # observation dims 0-3: goal 7, 9, 17, 19
        for c in cats:
            choices[i, 4 + DIRECTIONS.index(c)] = 1.0  # dims 4-7: l, u, r, d available
        label[i] = DIRECTIONS.index(step)
    return goal, choices, label


@register
class Maze(Task):
    """First choice in a 2-step maze (seRNN, seed 001).

    Inputs (8, one-hot codes as the seed): dims 0-3 the goal (7, 9, 17, 19) during
    the goal period; dims 4-7 the available moves (l, u, r, d) during the choices
    period; all zero during the delay.

    Outputs (4 classes ``left``, ``up``, ``right``, ``down``; cross-entropy): the
    first step towards the goal. The target holds the answer at every step but the
    mask scores only the last step (the seed's Keras model returned its last output).

    Label-shuffle control (the seed's ``np_shuffle_data='Labels'``): with
    ``shuffle_labels=True`` the answers of a batch are permuted among its trials (a
    permutation drawn from the batch's generator), so answers keep their frequencies
    but no longer depend on the inputs; ``true_label`` keeps the real answer.

    Accuracy: fraction of trials whose last-step argmax is the (possibly shuffled)
    target; ``true_accuracy`` against the real answer.

    Parameters
    ----------
    goal_steps, delay_steps, choices_steps : int
        Period lengths in steps (seed: 20, 10, 20).
    dt_ms : float
        Only sets the model's ``alpha`` with ``tau_ms`` (seed: discrete time).
    shuffle_labels : bool
    """

    name = "maze"
    description = "seRNN maze: goal, delay, choices, answer the first step (seed 001), cross-entropy"
    input_names = ("goal_7", "goal_9", "goal_17", "goal_19",
                   "choice_left", "choice_up", "choice_right", "choice_down")
    output_names = ("left", "up", "right", "down")
    loss = "cross_entropy"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 100, "tau_ms": 1.0, "activation": "relu", "w_rec_init": "orthogonal",
                  "sigma_in": 0.05},
        "train": {"steps": 1000, "batch_size": 128, "learning_rate": 0.001},
    }

    def __init__(
        self,
        goal_steps: int = 20,
        delay_steps: int = 10,
        choices_steps: int = 20,
        dt_ms: float = 1.0,
        shuffle_labels: bool = False,
    ) -> None:
        super().__init__(dt_ms)
        check_int("goal_steps", goal_steps, minimum=1)
        check_int("delay_steps", delay_steps, minimum=0)
        check_int("choices_steps", choices_steps, minimum=1)
        if not isinstance(shuffle_labels, bool):
            raise TypeError(f"shuffle_labels must be True or False, got {shuffle_labels!r}")
        self.shuffle_labels = shuffle_labels
        self.timeline = Timeline({"goal": goal_steps, "delay": delay_steps, "choices": choices_steps})
        self._goal, self._choices, self._label = _maze_tables()
        self._params.update(goal_steps=goal_steps, delay_steps=delay_steps, choices_steps=choices_steps,
                            shuffle_labels=shuffle_labels)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def condition_values(self) -> dict[str, tuple]:
        return {"maze": tuple(float(i) for i in range(len(MAZES))), "goal": tuple(float(g) for g in GOALS),
                "label": (0.0, 1.0, 2.0, 3.0), "true_label": (0.0, 1.0, 2.0, 3.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl = self.timeline
        maze = torch.randint(0, len(MAZES), (n,), generator=generator)
        true_label = self._label[maze]
        label = true_label[torch.randperm(n, generator=generator)] if self.shuffle_labels else true_label
        inputs = torch.zeros(n, tl.n_steps, 8)
        inputs[:, tl.slice("goal"), :] = self._goal[maze][:, None, :]
        inputs[:, tl.slice("choices"), :] = self._choices[maze][:, None, :]
        targets = torch.nn.functional.one_hot(label, 4).float()[:, None, :].expand(n, tl.n_steps, 4).clone()
        mask = torch.zeros(n, tl.n_steps)
        mask[:, -1] = 1.0
        goals = torch.tensor(GOALS, dtype=torch.float32)[self._goal[maze].argmax(1)]
        return Batch(inputs, targets, mask,
                     {"maze": maze.float(), "goal": goals, "label": label.float(), "true_label": true_label.float()},
                     tl.periods(n), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Last-step argmax against the target (and against the true answer)."""
        pred = outputs[:, -1, :].argmax(-1).float()
        return {"accuracy": (pred == batch.conditions["label"]).float().mean().item(),
                "true_accuracy": (pred == batch.conditions["true_label"]).float().mean().item()}
