"""Sequential image classification (the Keras guide's MNIST example, seed 000).

An image is fed row by row, one row per time step; the class is read out at the
last step. The default data set is scikit-learn's 8x8 digits (shipped with
scikit-learn, no download); real MNIST comes from a local file the user gives.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_choice, check_fraction, check_int
from ._image_data import load_digits_split, load_mnist
from .base import Batch, Task
from .registry import register

__all__ = ["SequentialDigits"]

SOURCES = ("digits", "mnist")
SPLITS = ("train", "validation")


@register
class SequentialDigits(Task):
    """Classify an image seen one row per step (seed 000).

    Inputs (image width): ``column_j`` = pixel ``(t, j)`` of the image at step ``t``,
    in [0, 1]. So 8 steps of 8 inputs for the digits, 28 of 28 for MNIST.

    Outputs (10 classes ``digit_0`` ... ``digit_9``, cross-entropy): the target holds
    the label at every step, the mask scores only the last step.

    Each batch draws images uniformly, with replacement, from the chosen split.
    :meth:`dataset` returns the whole split in order (for validation accuracy).

    Accuracy: last-step argmax equals the label.

    Parameters
    ----------
    source : {"digits", "mnist"}
    split : {"train", "validation"}
        For the digits, a seeded split (``validation_fraction``, ``split_seed``);
        for MNIST, its training and test sets.
    path : str, optional
        MNIST only: ``mnist.npz`` (x_train, y_train, x_test, y_test) or a folder of
        IDX files.
    validation_fraction : float in (0, 1)
    split_seed : int
    dt_ms : float
        Only sets the model's ``alpha`` with ``tau_ms`` (seed: discrete time).
    """

    name = "sequential_digits"
    description = "Classify an image fed one row per step: sklearn 8x8 digits or local MNIST (seed 000), cross-entropy"
    output_names = tuple(f"digit_{k}" for k in range(10))
    loss = "cross_entropy"
    criterion = 0.9
    defaults = {
        "model": {"n_units": 64, "tau_ms": 1.0, "activation": "tanh", "w_rec_init": "orthogonal"},
        "train": {"steps": 1500, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(
        self,
        source: str = "digits",
        split: str = "train",
        path: str | None = None,
        validation_fraction: float = 0.2,
        split_seed: int = 0,
        dt_ms: float = 1.0,
    ) -> None:
        super().__init__(dt_ms)
        self.source = check_choice("source", source, SOURCES)
        self.split = check_choice("split", split, SPLITS)
        check_fraction("validation_fraction", validation_fraction)
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        check_int("split_seed", split_seed, minimum=0)
        if source == "digits" and path is not None:
            raise ValueError("path is only for source='mnist' (the digits ship with scikit-learn)")
        if source == "digits":
            images, labels = load_digits_split(split, validation_fraction, split_seed)
        else:
            images, labels = load_mnist(path, split)
        self.images = torch.from_numpy(images)  # (n_images, rows, columns)
        self.labels = torch.from_numpy(labels)
        self.input_names = tuple(f"column_{j}" for j in range(self.images.shape[2]))
        self._params.update(source=source, split=split, path=None if path is None else str(path),
                            validation_fraction=validation_fraction, split_seed=split_seed)

    @property
    def n_steps(self) -> int:
        return int(self.images.shape[1])

    def condition_values(self) -> dict[str, tuple]:
        return {"label": tuple(float(k) for k in range(10))}

    def _make(self, index: Tensor) -> Batch:
        n, T = len(index), self.n_steps
        labels = self.labels[index]
        targets = torch.nn.functional.one_hot(labels, 10).float()[:, None, :].expand(n, T, 10).clone()
        mask = torch.zeros(n, T)
        mask[:, -1] = 1.0
        return Batch(self.images[index].clone(), targets, mask,
                     {"label": labels.float(), "index": index.float()},
                     torch.zeros(n, T, dtype=torch.long), ("image",))

    def build(self, n: int, generator: torch.Generator) -> Batch:
        return self._make(torch.randint(0, len(self.labels), (n,), generator=generator))

    def dataset(self) -> Batch:
        """Every image of this split, in order, as one batch."""
        batch = self._make(torch.arange(len(self.labels)))
        self._check_batch(batch, len(self.labels))
        return batch

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Last-step argmax accuracy."""
        pred = outputs[:, -1, :].argmax(-1).float()
        return {"accuracy": (pred == batch.conditions["label"]).float().mean().item()}
