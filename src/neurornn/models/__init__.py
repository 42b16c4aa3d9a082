"""Models: the configuration, the step equations and the constrained RNN."""

from .config import RNNConfig
from .dynamics import ACTIVATION_FUNCTIONS, Dynamics, StepNoise, reference_loop
from .rnn import RNN, Trajectory, Weights, WEIGHT_NAMES

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "Dynamics",
    "RNN",
    "RNNConfig",
    "StepNoise",
    "Trajectory",
    "WEIGHT_NAMES",
    "Weights",
    "reference_loop",
]
