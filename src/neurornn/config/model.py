"""``RNNConfig``: the frozen, validated description of a network."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ._base import ConfigMethods
from .._validation import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_known_keys,
    check_nonnegative,
    check_positive,
    suggest_keywords,
)

__all__ = ["RNNConfig", "ACTIVATIONS", "FORMS", "W_REC_INITS", "W_IN_INITS", "LOOPS", "allow_loop"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus", "rectified_tanh", "identity")
FORMS = ("current", "rate")
W_REC_INITS = ("gaussian", "gamma", "orthogonal", "kaiming")
W_IN_INITS = ("gaussian", "identity", "kaiming")
LOOPS = ("auto", "reference", "fused")
_LOOP_NAMES = list(LOOPS)  # and the backends registered later (neurornn.models.backends)
DISTANCE_METRICS = ("euclidean", "cityblock", "chebyshev", "sqeuclidean")


def allow_loop(name: str, allowed: bool = True) -> None:
    """Let ``RNNConfig.loop`` name a time-loop backend (called by ``neurornn.models.register_backend``)."""
    if allowed and name not in _LOOP_NAMES:
        _LOOP_NAMES.append(name)
    elif not allowed and name in _LOOP_NAMES and name not in LOOPS:
        _LOOP_NAMES.remove(name)


def _pairs(name: str, value: Any) -> tuple:
    """Normalise a mapping or a sequence of pairs into a tuple of 2-tuples."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (Mapping, list, tuple)):
        raise TypeError(f"{name} must be a mapping or a list of pairs, got {value!r}")
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for item in items:
        if isinstance(item, (str, bytes)) or not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError(f"{name} must be pairs, got {item!r}")
        out.append((item[0], item[1]))
    return tuple(out)


def _coordinates(rows: Any) -> tuple:
    """User coordinates as a tuple of float tuples, or a ValueError naming them."""
    try:
        return tuple(tuple(float(c) for c in row) for row in rows)
    except (TypeError, ValueError):
        raise TypeError(f"coordinates must be rows of numbers (one (x, y, z) per unit), got {rows!r}") from None


@dataclass(frozen=True)
class RNNConfig(ConfigMethods):
    """Everything that defines a network's architecture and initialisation.

    Units and time
    --------------
    n_inputs, n_units, n_outputs : int
        Sizes of the input, of the recurrent population and of the readout.
    dt_ms, tau_ms : float
        Euler step and membrane time constant in ms; ``alpha = dt_ms / tau_ms``.
        ``dt_ms == tau_ms`` gives the discrete-time (Elman) RNN.
    tau_inh_ms : float or None
        Time constant of inhibitory units (Dale networks only); ``None``: ``tau_ms``.
    form : {"current", "rate"}
        The state variable of the Euler update (see :class:`neurornn.RNN`).
    activation : {"relu", "tanh", "sigmoid", "softplus", "rectified_tanh", "identity"}

    Noise (drawn from a seeded generator; on in training, off in evaluation)
    -----------------------------------------------------------------------
    sigma_rec : recurrent noise, scaled ``sqrt(2 alpha) sigma_rec`` on the state.
    sigma_in : added to the inputs.
    sigma_pre, sigma_post : added before / after the activation function.

    Connectivity
    ------------
    exc_fraction : float in [0, 1] or None
        Dale's law when set: this fraction of each area's units is excitatory
        (all outgoing recurrent weights >= 0), the rest inhibitory (<= 0).
    p_connect : float in [0, 1]
        Probability of each recurrent connection in the fixed sparse mask.
    autapses : bool
        Allow self-connections ``W[i, i]``.
    w_rec_init : {"gaussian", "gamma", "orthogonal", "kaiming"}
    w_rec_gain : float
        Gain ``g`` of the recurrent init: gaussian entries have std ``g / sqrt(N p)``.
    spectral_radius : float or None
        If set, the initial effective ``W_rec`` is rescaled to this spectral radius.
    w_in_init : {"gaussian", "identity", "kaiming"}
        ``identity`` drives unit k of the input areas by input k only (one-to-one
        stimulation); needs ``n_inputs`` equal to the number of input-area units.
    w_in_scale, w_out_scale : float
        Std of the gaussian input (times ``1/sqrt(n_inputs)``) and readout
        (times ``1/sqrt(n_units)``) weights.

    Trainable flags
    ---------------
    train_w_in, train_b_rec, train_w_rec, train_w_out, train_b_out : bool
    learn_x0 : bool
        Learn the initial state (otherwise it is zero).

    Areas
    -----
    areas : mapping name -> size, or pairs (name, size), or None
        Named, contiguous groups of units in the order given; sizes sum to n_units.
    area_projections : pairs (source, target) or None
        Which area projects onto which (``("A", "B")``: A -> B). ``None``: all pairs.
    input_areas, output_areas : names or None
        Areas that receive the input / are read out. ``None``: all areas.

    Space (neurons placed in space, see ``neurornn.models.space``)
    --------------------------------------------------------------
    grid_shape : (nx, ny, nz) or None
        Place the units on a regular grid (``nx * ny * nz == n_units``).
    coordinates : sequence of (x, y, z) or None
        User-given positions, one per unit.
    distance_metric : {"euclidean", "cityblock", "chebyshev", "sqeuclidean"}
    distance_power : float
        Distances are raised to this power.

    Other
    -----
    seed : int
        Seed of the initial weights and masks.
    loop : {"auto", "reference", "fused"}
        Time-loop implementation; all give the same result (``auto``: fastest
        that applies).
    """

    _what: ClassVar[str] = "model config"
    _replace_what: ClassVar[str] = "RNNConfig"

    n_inputs: int
    n_units: int
    n_outputs: int
    dt_ms: float = 20.0
    tau_ms: float = 100.0
    tau_inh_ms: float | None = None
    form: str = "current"
    activation: str = "relu"
    sigma_rec: float = 0.0
    sigma_in: float = 0.0
    sigma_pre: float = 0.0
    sigma_post: float = 0.0
    exc_fraction: float | None = None
    p_connect: float = 1.0
    autapses: bool = True
    w_rec_init: str = "gaussian"
    w_rec_gain: float = 1.0
    spectral_radius: float | None = None
    w_in_init: str = "gaussian"
    w_in_scale: float = 1.0
    w_out_scale: float = 1.0
    train_w_in: bool = True
    train_b_rec: bool = True
    train_w_rec: bool = True
    train_w_out: bool = True
    train_b_out: bool = True
    learn_x0: bool = False
    areas: tuple | None = None
    area_projections: tuple | None = None
    input_areas: tuple | None = None
    output_areas: tuple | None = None
    grid_shape: tuple | None = None
    coordinates: tuple | None = None
    distance_metric: str = "euclidean"
    distance_power: float = 1.0
    seed: int = 0
    loop: str = "auto"

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen)
        for name in ("n_inputs", "n_units", "n_outputs"):
            set_(name, check_int(name, getattr(self, name), minimum=1))
        set_("dt_ms", check_positive("dt_ms", self.dt_ms))
        set_("tau_ms", check_positive("tau_ms", self.tau_ms))
        if self.dt_ms > self.tau_ms:
            raise ValueError(
                f"dt_ms must be <= tau_ms (alpha = dt/tau <= 1), got dt_ms={self.dt_ms}, tau_ms={self.tau_ms}"
            )
        check_choice("form", self.form, FORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        for name in ("sigma_rec", "sigma_in", "sigma_pre", "sigma_post"):
            set_(name, check_nonnegative(name, getattr(self, name)))
        if self.exc_fraction is not None:
            set_("exc_fraction", check_fraction("exc_fraction", self.exc_fraction))
        set_("p_connect", check_fraction("p_connect", self.p_connect))
        check_choice("w_rec_init", self.w_rec_init, W_REC_INITS)
        set_("w_rec_gain", check_nonnegative("w_rec_gain", self.w_rec_gain))
        if self.spectral_radius is not None:
            set_("spectral_radius", check_positive("spectral_radius", self.spectral_radius))
        check_choice("w_in_init", self.w_in_init, W_IN_INITS)
        set_("w_in_scale", check_nonnegative("w_in_scale", self.w_in_scale))
        set_("w_out_scale", check_nonnegative("w_out_scale", self.w_out_scale))
        for name in ("autapses", "train_w_in", "train_b_rec", "train_w_rec", "train_w_out",
                     "train_b_out", "learn_x0"):
            set_(name, check_bool(name, getattr(self, name)))
        set_("seed", check_int("seed", self.seed))
        check_choice("loop", self.loop, _LOOP_NAMES)
        self._validate_areas(set_)
        self._validate_tau_inh(set_)
        self._validate_space(set_)

    def _validate_tau_inh(self, set_) -> None:
        if self.tau_inh_ms is None:
            return
        set_("tau_inh_ms", check_positive("tau_inh_ms", self.tau_inh_ms))
        if self.exc_fraction is None:
            raise ValueError(
                f"tau_inh_ms only applies with Dale's law (the time constant of inhibitory units), got "
                f"tau_inh_ms={self.tau_inh_ms} with exc_fraction=None; set exc_fraction or leave tau_inh_ms None"
            )
        sizes = [size for _, size in self.areas] if self.areas is not None else [self.n_units]
        n_inh = sum(size - int(round(self.exc_fraction * size)) for size in sizes)
        if n_inh == 0:
            raise ValueError(
                f"tau_inh_ms only applies to inhibitory units, but exc_fraction={self.exc_fraction} leaves none "
                f"of the {self.n_units} units inhibitory; lower exc_fraction or leave tau_inh_ms None"
            )
        if self.dt_ms > self.tau_inh_ms:
            raise ValueError(
                f"dt_ms must be <= tau_inh_ms, got dt_ms={self.dt_ms}, tau_inh_ms={self.tau_inh_ms}"
            )

    def _validate_areas(self, set_) -> None:
        if self.areas is None:
            for name in ("area_projections", "input_areas", "output_areas"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs areas to be set, got areas=None")
            return
        areas = _pairs("areas", self.areas)
        names = [a for a, _ in areas]
        for a in names:
            if not isinstance(a, str) or not a:
                raise TypeError(f"areas names must be non-empty strings, got {a!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"areas must have unique names, got {names}")
        areas = tuple((a, check_int(f"areas[{a!r}]", size, minimum=1)) for a, size in areas)
        total = sum(size for _, size in areas)
        if total != self.n_units:
            raise ValueError(f"areas sizes must sum to n_units={self.n_units}, got {total} ({dict(areas)})")
        set_("areas", areas)
        if self.area_projections is not None:
            projections = _pairs("area_projections", self.area_projections)
            for src, dst in projections:
                for a in (src, dst):
                    check_choice("area_projections area", a, names)
            set_("area_projections", projections)
        for name in ("input_areas", "output_areas"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (str, list, tuple)):
                    raise TypeError(f"{name} must be an area name or a list of area names, got {value!r}")
                value = (value,) if isinstance(value, str) else tuple(value)
                if not value:
                    raise ValueError(f"{name} must name at least one area of {names} (or be None: all), got []")
                for a in value:
                    check_choice(name, a, names)
                set_(name, value)

    def _validate_space(self, set_) -> None:
        check_choice("distance_metric", self.distance_metric, DISTANCE_METRICS)
        set_("distance_power", check_positive("distance_power", self.distance_power))
        if self.grid_shape is not None and self.coordinates is not None:
            raise ValueError("give grid_shape or coordinates, not both")
        if self.grid_shape is not None:
            if not isinstance(self.grid_shape, (list, tuple)):
                raise TypeError(f"grid_shape must be a sequence (nx, ny, nz), got {self.grid_shape!r}")
            shape = tuple(check_int("grid_shape entries", s, minimum=1) for s in self.grid_shape)
            if not shape:
                raise ValueError("grid_shape must hold at least one size, got ()")
            prod = 1
            for s in shape:
                prod *= s
            if prod != self.n_units:
                raise ValueError(f"grid_shape {shape} holds {prod} units, expected n_units={self.n_units}")
            set_("grid_shape", shape)
        if self.coordinates is not None:
            coords = _coordinates(self.coordinates)
            if len(coords) != self.n_units:
                raise ValueError(
                    f"coordinates must have one row per unit ({self.n_units}), got {len(coords)} rows"
                )
            dims = {len(row) for row in coords}
            if len(dims) != 1:
                raise ValueError(f"coordinates rows must all have the same length, got lengths {sorted(dims)}")
            if not all(math.isfinite(c) for row in coords for c in row):
                raise ValueError("coordinates must be finite numbers, got NaN or inf")
            set_("coordinates", coords)

    # ------------------------------------------------------------------ helpers
    @property
    def alpha(self) -> float:
        """``dt_ms / tau_ms`` of excitatory (or all) units."""
        return self.dt_ms / self.tau_ms

    @property
    def dale(self) -> bool:
        """True when Dale's law is on."""
        return self.exc_fraction is not None

    def area_slices(self) -> dict[str, slice]:
        """Unit index ranges of each area (one area ``"all"`` without areas)."""
        if self.areas is None:
            return {"all": slice(0, self.n_units)}
        out, start = {}, 0
        for name, size in self.areas:
            out[name] = slice(start, start + size)
            start += size
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-friendly dict (tuples become lists, areas a mapping)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "areas" and value is not None:
                value = {a: s for a, s in value}
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out



# ``RNNConfig(n_unit=3)``: "RNNConfig got an unexpected parameter 'n_unit' (did you mean 'n_units'?)".
RNNConfig.__init__ = suggest_keywords(RNNConfig.__init__)
