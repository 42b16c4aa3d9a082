"""What both configurations do the same way: copies with changes, their field names, from a dict."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from .._validation import check_known_keys

__all__ = ["ConfigMethods"]


class ConfigMethods:
    """Mixed into the frozen config dataclasses; ``_what`` names the config in errors."""

    _what: ClassVar[str]  # e.g. "model config"
    _replace_what: ClassVar[str]  # e.g. "RNNConfig"

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        check_known_keys(self._replace_what, changes, self.field_names())
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from a dict, rejecting unknown keys with a suggestion."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls._what} must be a mapping, got {type(data).__name__}")
        check_known_keys(cls._what, data, cls.field_names())
        return cls(**dict(data))
