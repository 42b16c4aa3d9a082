"""Models: the configuration, the step equations and the constrained RNN."""

from ..config import RNNConfig
from .dynamics import ACTIVATION_FUNCTIONS, Dynamics, StepNoise, reference_loop
from .weights import WEIGHT_NAMES, Trajectory, Weights
from .fused import fused_loop
from .backends import Backend, backend_names, register_backend, unregister_backend
from .rnn import RNN
from .ensemble import RNNEnsemble

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "Backend",
    "backend_names",
    "register_backend",
    "unregister_backend",
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
