"""The experiments' config base: frozen dataclasses read from and written to dicts."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .._validation import check_known_keys

__all__ = ["ExperimentConfig"]


class ExperimentConfig:
    """Base of the experiments' frozen config dataclasses: dict round trip and resolution."""

    _label = "experiment config"  # names the config in errors

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from a dict, rejecting unknown keys with a suggestion."""
        check_known_keys(cls._label, data, [f.name for f in dataclasses.fields(cls)])
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def resolve(cls, config: Any):
        """``None``: the defaults; a dict: :meth:`from_dict`; an instance: itself."""
        if config is None:
            return cls()
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        if not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
        return config
