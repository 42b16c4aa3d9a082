"""Configurations: frozen, validated descriptions of a network (``RNNConfig``) and of its training
(``TrainConfig``), with no torch state; the regulariser kinds ``TrainConfig`` accepts."""

from .model import RNNConfig
from .regularizer_kinds import register_regularizer, regularizer_kinds
from .train import SMALL_NETWORK_UNITS, TrainConfig

__all__ = ["RNNConfig", "SMALL_NETWORK_UNITS", "TrainConfig", "register_regularizer", "regularizer_kinds"]
