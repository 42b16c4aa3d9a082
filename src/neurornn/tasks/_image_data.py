"""Image data sets for the sequential-image task: sklearn's 8x8 digits and MNIST files.

MNIST is never downloaded: the user gives a local ``mnist.npz`` (keys ``x_train``,
``y_train``, ``x_test``, ``y_test``, as Keras saves it) or a folder with the four
IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

__all__ = ["load_digits_split", "load_mnist", "MNIST_IDX_FILES"]

MNIST_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_EXPECTED = (
    "a mnist.npz file with arrays x_train (n, 28, 28), y_train (n,), x_test, y_test, or a folder with the "
    "IDX files " + ", ".join(MNIST_IDX_FILES.values()) + " (optionally .gz)"
)


def load_digits_split(split: str, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits scaled to [0, 1]: images (n, 8, 8) float32, labels (n,) int64.

    A seeded permutation puts ``validation_fraction`` of the 1797 images in the
    validation split, the rest in the training split.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = int(round(validation_fraction * len(labels)))
    idx = order[:n_val] if split == "validation" else order[n_val:]
    return images[idx], labels[idx]


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4:
        raise ValueError(f"MNIST file {str(path)!r} is not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"MNIST file {str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"MNIST file {str(path)!r} holds {data.size} values, its header says {dims}")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"MNIST folder {str(folder)!r} has no {stem}[.gz]; expected {_EXPECTED}")


def load_mnist(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (n, 28, 28) scaled to [0, 1] and labels (n,) from a local file.

    ``split="train"`` reads ``x_train``/``y_train``, ``"validation"`` the test set
    (as the seed validated on it).
    """
    if path is None:
        raise ValueError(f"source='mnist' needs path=..., {_EXPECTED}")
    path = Path(path)
    xk, yk = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
    if path.is_dir():
        x = _read_idx(_find_idx(path, MNIST_IDX_FILES[xk]))
        y = _read_idx(_find_idx(path, MNIST_IDX_FILES[yk]))
    elif path.is_file():
        with open(path, "rb") as f:
            head = f.read(4)
        if head != b"PK\x03\x04":  # a .npz is a zip archive
            kind = "a .npy array" if head == b"\x93NUM" else "not a zip archive" + (
                ", it looks like text" if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "")
            raise ValueError(f"cannot read {str(path)!r} as a .npz file: it is {kind}; expected {_EXPECTED}")
        try:
            npz = np.load(path, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not named arrays")
        except (OSError, EOFError, ValueError) as err:  # np.load's errors for files that are not .npz
            raise ValueError(f"cannot read {str(path)!r} as a .npz file ({err}); expected {_EXPECTED}") from err
        with npz:
            missing = [k for k in (xk, yk) if k not in npz.files]
            if missing:
                raise ValueError(f"MNIST file {str(path)!r} lacks {missing} (has {npz.files}); expected {_EXPECTED}")
            try:
                x, y = npz[xk], npz[yk]
            except ValueError as err:  # object arrays need pickle: refused
                raise ValueError(f"cannot read {str(path)!r} without pickle ({err}); expected {_EXPECTED}") from err
    else:
        raise FileNotFoundError(f"MNIST path {str(path)!r} does not exist; expected {_EXPECTED}")
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"MNIST data in {str(path)!r} has images {x.shape} and labels {y.shape}; expected images "
            "(n, height, width) and labels (n,) of the same n > 0"
        )
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"MNIST labels in {str(path)!r} must be digits 0-9, got range [{y.min()}, {y.max()}]")
    x = x.astype(np.float32)
    if x.max() > 1.0:
        x = x / 255.0
    return x, y.astype(np.int64)
