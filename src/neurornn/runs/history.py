"""Weight history: snapshots of a network's effective weights through training.

On disk (``RUN/history/``) every snapshot is one safetensors file
``step_NNNNNNN.safetensors`` holding the tensors of :class:`neurornn.Weights`
(``w_in``, ``w_rec``, ``b_rec``, ``w_out``, ``b_out``, ``x0``), and
``index.json`` lists them::

    {"format": "neurornn-weight-history", "version": 1,
     "snapshots": [{"step": 0, "file": "step_0000000.safetensors"}, ...]}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from .._files import find_root, forget, read_json, write_bytes, write_json
from .._folder import CorruptFileError, verified_bytes
from ..config import RNNConfig
from ..models import RNN, Weights
from ..models.rnn import WEIGHT_NAMES

__all__ = ["WeightHistory", "HISTORY_FORMAT"]

HISTORY_FORMAT = "neurornn-weight-history"
_INDEX = "index.json"


def _snapshot_file(step: int) -> str:
    return f"step_{step:07d}.safetensors"


class WeightHistory:
    """Effective-weight snapshots, in step order.

    ``history.steps`` lists the training step of each snapshot (0: before
    training); ``history[i]`` is the :class:`~neurornn.Weights` of snapshot ``i``
    (CPU tensors; negative indices count from the end); ``history.model_at(i)``
    builds a network with those weights. Snapshots written to a folder are read
    from disk on access, so long histories do not have to fit in memory.

    Parameters
    ----------
    config : RNNConfig
        The configuration of the network the snapshots belong to.
    directory : path, optional
        Folder to write snapshots to (and read them from).
    """

    def __init__(self, config: RNNConfig, directory: str | os.PathLike | None = None,
                 masks: dict[str, Tensor] | None = None) -> None:
        if not isinstance(config, RNNConfig):
            raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
        self.config = config
        self.masks = masks  # the network's connectivity masks, when given rather than drawn from the config
        self.directory = None if directory is None else Path(directory)
        self._steps: list[int] = []
        self._items: list[Weights | str] = []  # in-memory Weights or a file name
        self._written: set[str] = set()  # files this object wrote

    # ------------------------------------------------------------------ reading
    @property
    def steps(self) -> list[int]:
        """Training step of each snapshot."""
        return list(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Weights]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Weights:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"history index must be an int, got {i!r}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"history index {i} out of range for {n} snapshots")
        item = self._items[i]
        if isinstance(item, Weights):
            return item
        path = self.directory / item
        try:
            tensors = load_safetensors(verified_bytes(path, "the other snapshots of the history are still readable"))
            return Weights(**{name: tensors[name] for name in WEIGHT_NAMES})
        except (SafetensorError, KeyError) as err:
            raise CorruptFileError(f"weight snapshot {str(path)!r} is not readable ({err})") from None

    def index_of(self, step: int) -> int:
        """Index of the snapshot taken at training step ``step``."""
        if step not in self._steps:
            raise ValueError(f"no snapshot at step {step}; snapshot steps: {self._steps}")
        return self._steps.index(step)

    def model_at(self, i: int) -> RNN:
        """A network (eval mode, CPU) with the effective weights of snapshot ``i``."""
        model = RNN(self.config, weights=self[i].as_dict(), masks=self.masks)
        return model.eval()

    def stack(self, name: str) -> Tensor:
        """One weight through training: shape (snapshots, *shape of the weight)."""
        if name not in WEIGHT_NAMES:
            raise ValueError(f"name must be one of {list(WEIGHT_NAMES)}, got {name!r}")
        return torch.stack([getattr(w, name) for w in self])

    # ------------------------------------------------------------------ writing
    def append(self, step: int, weights: Weights) -> None:
        """Add a snapshot (detached CPU copy); written to ``directory`` when there is one."""
        if self._steps and step <= self._steps[-1]:
            raise ValueError(f"snapshot steps must increase, got {step} after {self._steps[-1]}")
        snap = Weights(*(w.detach().to("cpu", torch.float32).clone().contiguous() for w in weights))
        self._steps.append(int(step))
        if self.directory is None:
            self._items.append(snap)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fname = _snapshot_file(step)
        write_bytes(self.directory / fname, save_safetensors(snap.as_dict(), metadata={"step": str(step)}))
        self._written.add(fname)
        self._items.append(fname)
        self._write_index()

    def truncate(self, max_step: int) -> None:
        """Drop snapshots taken after ``max_step`` (used when resuming)."""
        keep = [i for i, s in enumerate(self._steps) if s <= max_step]
        dropped = [self._items[i] for i in range(len(self._steps)) if i not in keep and isinstance(self._items[i], str)]
        self._steps = [self._steps[i] for i in keep]
        self._items = [self._items[i] for i in keep]
        if self.directory is not None:
            self._write_index()  # the index first: it never lists a file that is gone
            self._delete(dropped)

    def _delete(self, names: list[str]) -> None:
        """Delete snapshot files: in a neurornn folder those its manifest lists, elsewhere those this
        object wrote; nothing else."""
        root = find_root(self.directory)
        if root is not None:
            forget(root, [self.directory / n for n in names])
            return
        for name in names:
            if name in self._written:
                (self.directory / name).unlink(missing_ok=True)
                self._written.discard(name)

    def save(self, directory: str | os.PathLike) -> None:
        """Write every snapshot and the index to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for step, w in zip(self._steps, self):
            write_bytes(directory / _snapshot_file(step),
                        save_safetensors(Weights(*(t.contiguous() for t in w)).as_dict(), metadata={"step": str(step)}))
        write_json(directory / _INDEX, self._index(directory))

    def _index(self, directory: Path | None = None) -> dict:
        return {
            "format": HISTORY_FORMAT,
            "version": 1,
            "snapshots": [{"step": s, "file": _snapshot_file(s)} for s in self._steps],
        }

    def _write_index(self) -> None:
        write_json(self.directory / _INDEX, self._index())

    @classmethod
    def load(cls, directory: str | os.PathLike, config: RNNConfig,
             masks: dict[str, Tensor] | None = None) -> "WeightHistory":
        """Read a history folder (snapshots are loaded lazily, each checked against the manifest).

        Every entry of ``index.json`` must name a snapshot file inside ``directory``
        (``step_NNNNNNN.safetensors`` of its step, steps increasing), or the load fails naming the entry.
        """
        directory = Path(directory)
        index_path = directory / _INDEX
        if not index_path.is_file() and find_root(directory) is None:
            raise FileNotFoundError(f"{str(directory)!r} has no weight history ({_INDEX} missing)")
        index = read_json(index_path, verified_bytes(index_path, "the weights of the run are still readable"))
        if not isinstance(index, dict) or index.get("format") != HISTORY_FORMAT \
                or not isinstance(index.get("snapshots"), list):
            raise CorruptFileError(f"{str(index_path)!r} is not a neurornn weight history index")
        hist = cls(config, directory, masks)
        for i, entry in enumerate(index["snapshots"]):
            step = entry.get("step") if isinstance(entry, dict) else None
            name = entry.get("file") if isinstance(entry, dict) else None
            if isinstance(step, bool) or not isinstance(step, int) or step < 0 or not isinstance(name, str) \
                    or name != _snapshot_file(step) or (hist._steps and step <= hist._steps[-1]):
                raise CorruptFileError(
                    f"{str(index_path)!r}: snapshots[{i}] = {entry!r} is not a snapshot entry (a step > "
                    f"{hist._steps[-1] if hist._steps else -1} and its file 'step_NNNNNNN.safetensors' in the "
                    "history folder)")
            if not (directory / name).is_file():
                raise FileNotFoundError(f"weight snapshot {name!r} listed in {str(index_path)!r} is missing")
            hist._steps.append(step)
            hist._items.append(name)
        return hist

    def __repr__(self) -> str:
        where = f", directory={str(self.directory)!r}" if self.directory else ""
        return f"WeightHistory({len(self)} snapshots, steps={self._steps[:3]}{'...' if len(self) > 3 else ''}{where})"
