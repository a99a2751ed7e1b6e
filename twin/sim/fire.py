"""Design fires: the t² fire, whose heat release rate grows with the square of the time since ignition.

``Q(t) = alpha (t - t0)²`` for ``t ≥ t0`` (0 before), capped at ``max_hrr_kw`` when given (the fire then burns
steadily at the cap: a fuel- or ventilation-limited plateau; decay is not modelled). The growth classes and their
fire growth coefficients ``alpha`` are those of NFPA 72 (Annex B) and BS PD 7974-1, defined by the time
``t_g`` a fire takes to reach 1055 kW (1000 BTU/s): slow 600 s, medium 300 s, fast 150 s, ultra-fast 75 s.

The fire is a source of heat only; where it is and what its smoke does is :mod:`twin.sim.smoke`. A fraction
:data:`CONVECTIVE_FRACTION` (0.7) of the heat release leaves in the plume as convection (the rest radiates to the
surroundings; SFPE Handbook and NFPA 92 use 0.7 for design fires), and the smoke model drives its plume with the
convective part.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

GROWTH_ALPHA_KW_S2: dict[str, float] = {
    "slow": 0.00293,
    "medium": 0.01172,
    "fast": 0.0469,
    "ultra_fast": 0.1876,
}
"""Fire growth coefficient ``alpha`` per growth class, kW/s² (NFPA 72 Annex B; BS PD 7974-1)."""

REFERENCE_HRR_KW = 1055.0
"""The heat release rate (1000 BTU/s) whose time to reach defines a growth class's growth time ``t_g``, kW."""

CONVECTIVE_FRACTION = 0.7
"""Share of the heat release rate carried by the plume as convection (the rest is radiated), dimensionless."""

_SOURCE = "fire"


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(_SOURCE, f"{name} must be a number, got {value!r}", element=name) from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        expected = "a finite number ≥ 0" if allow_zero else "a finite number > 0"
        raise InputError(_SOURCE, f"{name} must be {expected}, got {value!r}", element=name)
    return v


@dataclass(frozen=True)
class TSquaredFire:
    """A t² design fire.

    Parameters
    ----------
    growth : growth class, one of :data:`GROWTH_ALPHA_KW_S2` (``"slow"``, ``"medium"``, ``"fast"``,
        ``"ultra_fast"``); ignored when ``alpha_kw_s2`` is given.
    alpha_kw_s2 : fire growth coefficient, kW/s², > 0; overrides ``growth``.
    max_hrr_kw : cap on the heat release rate, kW, > 0; the fire burns steadily at the cap once it reaches it.
        ``None``: unbounded growth.
    start_s : ignition time on the simulation clock, s, ≥ 0.
    convective_fraction : share of the heat release carried by the plume, in (0, 1].

    Raises :class:`~twin.errors.InputError` for an unknown growth class or a negative, zero or non-finite
    coefficient, cap or start time.
    """

    growth: str = "medium"
    alpha_kw_s2: float | None = None
    max_hrr_kw: float | None = None
    start_s: float = 0.0
    convective_fraction: float = CONVECTIVE_FRACTION
    alpha: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.alpha_kw_s2 is None:
            if self.growth not in GROWTH_ALPHA_KW_S2:
                raise InputError(
                    _SOURCE,
                    f"unknown growth class {self.growth!r}; expected one of {sorted(GROWTH_ALPHA_KW_S2)} "
                    "or an explicit alpha_kw_s2",
                    element="growth",
                )
            alpha = GROWTH_ALPHA_KW_S2[self.growth]
        else:
            alpha = _positive(self.alpha_kw_s2, "alpha_kw_s2")
        object.__setattr__(self, "alpha", alpha)
        if self.max_hrr_kw is not None:
            object.__setattr__(self, "max_hrr_kw", _positive(self.max_hrr_kw, "max_hrr_kw"))
        object.__setattr__(self, "start_s", _positive(self.start_s, "start_s", allow_zero=True))
        chi = _positive(self.convective_fraction, "convective_fraction")
        if chi > 1.0:
            raise InputError(
                _SOURCE, f"convective_fraction must be in (0, 1], got {chi}", element="convective_fraction"
            )
        object.__setattr__(self, "convective_fraction", chi)

    @classmethod
    def from_event(cls, event: Any) -> TSquaredFire:
        """The fire of a scenario ``FireEvent`` (its ``growth``, ``alpha_kw_s2``, ``max_hrr_kw`` and ``at_s``)."""
        return cls(
            growth=event.growth,
            alpha_kw_s2=event.alpha_kw_s2,
            max_hrr_kw=event.max_hrr_kw,
            start_s=event.at_s,
        )

    # -- derived times -----------------------------------------------------------------------------------------
    @property
    def growth_time_s(self) -> float:
        """``t_g``: time from ignition to :data:`REFERENCE_HRR_KW` (1055 kW) without a cap, s."""
        return math.sqrt(REFERENCE_HRR_KW / self.alpha)

    @property
    def time_to_cap_s(self) -> float:
        """Time from ignition until the cap is reached, s (``inf`` without a cap)."""
        return math.inf if self.max_hrr_kw is None else math.sqrt(self.max_hrr_kw / self.alpha)

    def time_to_hrr(self, hrr_kw: float) -> float:
        """Simulation time at which the heat release first reaches ``hrr_kw``, s (``inf`` if above the cap)."""
        q = _positive(hrr_kw, "hrr_kw", allow_zero=True)
        if self.max_hrr_kw is not None and q > self.max_hrr_kw:
            return math.inf
        return self.start_s + math.sqrt(q / self.alpha)

    # -- heat release ------------------------------------------------------------------------------------------
    def hrr(self, t_s: npt.ArrayLike) -> FloatArray:
        """Heat release rate at simulation times ``t_s``, kW.

        t_s : scalar or (n,) array of float, s on the simulation clock. Returns float64 of the same shape
        (a 0-d array for a scalar).
        """
        t = np.asarray(t_s, dtype=np.float64)
        tau = np.maximum(t - self.start_s, 0.0)
        q = self.alpha * tau * tau
        if self.max_hrr_kw is not None:
            q = np.minimum(q, self.max_hrr_kw)
        return q

    def convective_hrr(self, t_s: npt.ArrayLike) -> FloatArray:
        """Convective part of :meth:`hrr` (``convective_fraction × Q``), kW, same shape as ``t_s``."""
        return self.convective_fraction * self.hrr(t_s)

    def energy_kj(self, t_s: npt.ArrayLike) -> FloatArray:
        """Total heat released from ignition up to ``t_s`` (the integral of :meth:`hrr`), kJ, same shape."""
        t = np.asarray(t_s, dtype=np.float64)
        tau = np.maximum(t - self.start_s, 0.0)
        t_cap = self.time_to_cap_s
        grow = np.minimum(tau, t_cap)
        e = self.alpha * grow**3 / 3.0
        if self.max_hrr_kw is not None:
            e = e + self.max_hrr_kw * np.maximum(tau - t_cap, 0.0)
        return e
