"""Training: ``TrainConfig``, ``train``, losses, regularisers, weight history, checkpoints."""

from ..config import TrainConfig
from ..ops.losses import masked_cross_entropy, masked_mse, task_loss
from ..runs import WeightHistory, load_checkpoint, save_checkpoint
from .regularizers import build_regularizer, register_regularizer, regularizer_kinds, unregister_regularizer
from . import spatial  # noqa: F401  (registers the spatial regulariser kinds)
from .generators import make_generators
from .loop import STOP_REASONS, train_networks
from .trainer import evaluate, train
from .ensemble import EnsembleRun, train_ensemble
from .ensemble_configs import ensemble_configs
from .curriculum import CurriculumRun, Stage, train_curriculum

__all__ = [
    "CurriculumRun",
    "EnsembleRun",
    "Stage",
    "STOP_REASONS",
    "TrainConfig",
    "WeightHistory",
    "build_regularizer",
    "ensemble_configs",
    "evaluate",
    "load_checkpoint",
    "make_generators",
    "masked_cross_entropy",
    "masked_mse",
    "register_regularizer",
    "regularizer_kinds",
    "save_checkpoint",
    "task_loss",
    "train",
    "train_ensemble",
    "train_curriculum",
    "train_networks",
    "unregister_regularizer",
]
