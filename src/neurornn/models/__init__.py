"""Models: the configuration, the step equations and the constrained RNN."""

from ..config import RNNConfig
from .dynamics import ACTIVATION_FUNCTIONS, Dynamics, StepNoise, reference_loop
from .rnn import RNN, Trajectory, Weights, WEIGHT_NAMES
from .fused import fused_loop
from .ensemble import RNNEnsemble

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "Dynamics",
    "RNN",
    "RNNConfig",
    "RNNEnsemble",
    "StepNoise",
    "Trajectory",
    "WEIGHT_NAMES",
    "Weights",
    "fused_loop",
    "reference_loop",
]
