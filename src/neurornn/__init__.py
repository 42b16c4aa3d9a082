"""neurornn: build, train and dissect recurrent neural network models of brain circuits."""

from . import tasks
from .models import RNN, RNNConfig, Trajectory, Weights

__version__ = "0.1.0"

__all__ = ["RNN", "RNNConfig", "Trajectory", "Weights", "tasks", "__version__"]
