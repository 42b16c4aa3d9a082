"""Task library: the ``Task`` interface, the registry and the tasks of the seeds."""

from .base import Batch, Task, masked_mse, ms_to_steps
from .registry import describe, get, make, names, register

# Importing a task module registers it.
from . import perceptual_decision_making  # noqa: F401  (registers)

__all__ = ["Batch", "Task", "describe", "get", "make", "masked_mse", "ms_to_steps", "names", "register"]
