"""Reading the metadata of a safetensors file's header (what :meth:`RNN.save` writes there)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["safetensors_metadata", "model_format"]


def safetensors_metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file's header."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def model_format(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < 1 << 24:
                return None
            return (json.loads(f.read(size)).get("__metadata__") or {}).get("format")
    except (OSError, ValueError):
        return None
