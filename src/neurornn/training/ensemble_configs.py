"""The configs of an ensemble: a base model and training config, and what varies between networks."""

from __future__ import annotations

import itertools
import re
from typing import Any, Mapping, Sequence

from ..config import RNNConfig, TrainConfig
from ..runs import load_yaml

__all__ = ["ensemble_configs", "parse_vary"]


def ensemble_configs(
    model_config: RNNConfig,
    train_config: TrainConfig | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
    n: int | None = None,
    grid: bool = False,
) -> tuple[list[RNNConfig], list[TrainConfig]]:
    """Configs of an ensemble: a base model and training config and what varies.

    Parameters
    ----------
    model_config : RNNConfig
    train_config : TrainConfig, optional
    vary : mapping "model.FIELD" / "train.FIELD" / "train.regularizers.I.KEY" -> list
        One value per network (all lists of the same length), e.g.
        ``{"model.seed": range(8), "train.learning_rate": [1e-3] * 4 + [3e-3] * 4}``.
    n : int, optional
        Number of networks; needed when ``vary`` is empty (then only the model
        seeds differ: ``model_config.seed + i``).
    grid : bool
        Every combination of the varied values (a grid) instead of pairing them
        up; ``n`` then repeats the grid with model seeds ``seed + i``.

    Returns
    -------
    (model configs, train configs), one per network.
    """
    if not isinstance(model_config, RNNConfig):
        raise TypeError(f"model_config must be an RNNConfig, got {type(model_config).__name__}")
    train_config = TrainConfig() if train_config is None else train_config
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(train_config).__name__}")
    vary = dict(vary or {})
    if grid and vary:
        keys = list(vary)
        combos = list(itertools.product(*[list(vary[k]) for k in keys]))
        vary = {k: [c[i] for c in combos] for i, k in enumerate(keys)}
        if n is not None:
            if "model.seed" in vary:
                raise ValueError("grid with n repeats the grid over model seeds; do not vary model.seed too")
            vary = {k: v * n for k, v in vary.items()}
            vary["model.seed"] = [model_config.seed + i for i in range(n) for _ in combos]
            n = None
    lengths = {}
    for key, values in vary.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | range):
            raise TypeError(f"vary[{key!r}] must be a list of values (one per network), got {values!r}")
        vary[key] = list(values)
        lengths[key] = len(vary[key])
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int, got {n!r}")
    sizes = set(lengths.values()) | ({n} if n is not None else set())
    if len(sizes) > 1:
        raise ValueError(f"every varied setting needs one value per network; got lengths {lengths}"
                         + (f" and n={n}" if n is not None else ""))
    if not sizes:
        raise ValueError("give n (the number of networks) or vary (the settings that differ)")
    count = sizes.pop()
    if count < 1:
        raise ValueError("an ensemble needs at least one network, got empty lists in vary")
    if not vary:
        vary = {"model.seed": [model_config.seed + i for i in range(count)]}
    models, trains = [], []
    for i in range(count):
        m_changes: dict[str, Any] = {}
        t_changes: dict[str, Any] = {}
        regs = [dict(s) for s in train_config.regularizers]
        for key, values in vary.items():
            section, _, field = key.partition(".")
            if section == "model":
                m_changes[field] = values[i]
            elif section == "train" and field.startswith("regularizers."):
                _, idx, name = (field.split(".", 2) + ["", ""])[:3]
                if not idx.isdigit() or int(idx) >= len(regs) or not name:
                    raise ValueError(
                        f"vary key {key!r}: expected train.regularizers.I.KEY with I < {len(regs)} "
                        "(the index of a regulariser in the train config)"
                    )
                regs[int(idx)][name] = values[i]
                t_changes["regularizers"] = regs
            elif section == "train":
                t_changes[field] = values[i]
            else:
                raise ValueError(f"vary keys must start with 'model.' or 'train.', got {key!r}")
        models.append(model_config.replace(**m_changes))
        trains.append(train_config.replace(**t_changes))
    return models, trains


_RANGE = re.compile(r"^range\(\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*(-?\d+)\s*)?\)$")


def parse_vary(items: Sequence[str]) -> dict[str, list]:
    """Parse ``section.key=VALUES`` items (the CLI's ``--vary``) into ``{key: list}``.

    ``VALUES`` is a YAML list (``[1e-3, 3e-3]``) or ``range(N)`` / ``range(A, B)`` /
    ``range(A, B, STEP)``. Sections: ``model``, ``train`` (including
    ``train.regularizers.I.KEY``).
    """
    out: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--vary expects section.key=[values] or section.key=range(N), got {item!r}")
        key, text = (part.strip() for part in item.split("=", 1))
        if not key.startswith(("model.", "train.")):
            raise ValueError(f"--vary key must start with 'model.' or 'train.', got {key!r}")
        match = _RANGE.match(text)
        if match:
            args = [int(g) for g in match.groups() if g is not None]
            values = list(range(*args))
        else:
            try:
                values = load_yaml(text)
            except Exception as err:  # yaml.YAMLError
                raise ValueError(f"--vary {key}: cannot parse {text!r}: {err}") from None
            if not isinstance(values, list):
                raise ValueError(f"--vary {key}: expected a list like [1, 2] or range(N), got {text!r}")
        if not values:
            raise ValueError(f"--vary {key}: no values in {text!r}")
        out[key] = values
    return out
