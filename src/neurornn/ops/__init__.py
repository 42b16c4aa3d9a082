"""Pure tensor operations (losses, communicability): they import nothing of neurornn but its utilities."""

from .communicability import weighted_communicability
from .losses import LOSS_FUNCTIONS, LOSSES, masked_cross_entropy, masked_mse, task_loss

__all__ = ["LOSSES", "LOSS_FUNCTIONS", "masked_cross_entropy", "masked_mse", "task_loss", "weighted_communicability"]
