"""``RNNEnsemble``: the name an :class:`~neurornn.models.RNN` of several networks had before it
was one class. ``RNNEnsemble(members)`` is ``RNN(configs)`` or ``RNN.stack(networks)``."""

from __future__ import annotations

from typing import Sequence

from ._checks import SHARED_FIELDS
from ..config.model import RNNConfig
from .rnn import RNN

__all__ = ["RNNEnsemble", "SHARED_FIELDS"]


class RNNEnsemble(RNN):
    """E networks of the same shapes as one :class:`RNN` (a thin alias kept for existing code).

    Parameters
    ----------
    members : sequence of RNNConfig or of single-network RNN
        Configs (each network initialised from its own seed as ``RNN(config)`` would
        be) or existing networks (their current weights are copied). All must share
        :data:`SHARED_FIELDS` and Dale's law on/off.
    """

    def __init__(self, members: Sequence[RNNConfig] | Sequence[RNN]) -> None:
        if isinstance(members, (RNN, RNNConfig)) or not isinstance(members, Sequence):
            raise TypeError(f"members must be a sequence of RNNConfig or RNN, got {type(members).__name__}")
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one network, got an empty sequence")
        if all(isinstance(m, RNNConfig) for m in members):
            super().__init__(members)
        elif all(isinstance(m, RNN) for m in members):
            super().__init__([m.config for m in members])
            self.to(device=members[0].alpha.device, dtype=members[0].alpha.dtype)
            for e, net in enumerate(members):
                self.load_member(e, net)
        else:
            raise TypeError(f"members must be all RNNConfig or all RNN, got {[type(m).__name__ for m in members]}")
