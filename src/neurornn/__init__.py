"""neurornn: build, train and dissect recurrent neural network models of brain circuits."""

from . import tasks
from .models import RNN, RNNConfig, RNNEnsemble, Trajectory, Weights
from .runs import Run, load_run
from .training import TrainConfig, ensemble_configs, train, train_ensemble

from ._version import __version__

__all__ = ["RNN", "RNNConfig", "RNNEnsemble", "Run", "TrainConfig", "Trajectory", "Weights", "ensemble_configs", "load_run", "tasks", "train", "train_ensemble", "__version__"]
