"""Gas release: a steady Gaussian plume from a continuous point source, its hazard zone, and the buildings in it.

Concentration (kg/m³) at downwind distance ``x``, crosswind offset ``y`` and height ``z`` (ground reflection by
an image source):

    C = Q / (2π u σy σz) · exp(−y² / 2σy²) · [exp(−(z − H)² / 2σz²) + exp(−(z + H)² / 2σz²)]

so on the ground under the plume axis ``C = Q / (π u σy σz) · exp(−H² / 2σz²)``.

- ``σy(x)``, ``σz(x)``: Briggs (1973) formulas for Pasquill-Gifford stability classes A (very unstable) to F
  (moderately stable), open-country ("rural") or urban, as tabulated e.g. in Griffiths (1994), *Atmos. Environ.*
  28, 2861. The fits are for 100 m – 10 km; closer and farther distances are extrapolations.
- ``u``: the wind at the release height from the 10 m wind with the power law ``u = u10 (H / 10)^p`` (exponents
  of Irwin 1979 as used by US EPA models: rural A–F 0.07, 0.07, 0.10, 0.15, 0.35, 0.55; urban 0.15, 0.15, 0.20,
  0.25, 0.30, 0.30); releases below 10 m use ``u10``. Winds below 1 m/s are rejected: a plume model does not hold
  in calm air.
- Wind direction is meteorological: the direction the wind blows FROM, degrees clockwise from north (270 = a
  westerly, blowing towards +x east).
- Assumptions: flat terrain, steady state (the release has lasted longer than the travel time), no plume rise
  (give the effective release height if the gas is hot or buoyant), no dense-gas slumping, no deposition or
  decay, nothing upwind (the model has no along-wind diffusion).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from scipy.optimize import brentq
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

CLASSES = "ABCDEF"
R_GAS = 8.314462618
"""Molar gas constant, J/(mol K)."""
MIN_WIND_MPS = 1.0

# Briggs (1973): sigma = a x (1 + b x)^c for sigma_y and sigma_z, per class; x in metres
_BRIGGS: dict[str, dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = {
    "rural": {
        "A": ((0.22, 1e-4, -0.5), (0.20, 0.0, 1.0)),
        "B": ((0.16, 1e-4, -0.5), (0.12, 0.0, 1.0)),
        "C": ((0.11, 1e-4, -0.5), (0.08, 2e-4, -0.5)),
        "D": ((0.08, 1e-4, -0.5), (0.06, 1.5e-3, -0.5)),
        "E": ((0.06, 1e-4, -0.5), (0.03, 3e-4, -1.0)),
        "F": ((0.04, 1e-4, -0.5), (0.016, 3e-4, -1.0)),
    },
    "urban": {
        "A": ((0.32, 4e-4, -0.5), (0.24, 1e-3, 0.5)),
        "B": ((0.32, 4e-4, -0.5), (0.24, 1e-3, 0.5)),
        "C": ((0.22, 4e-4, -0.5), (0.20, 0.0, 1.0)),
        "D": ((0.16, 4e-4, -0.5), (0.14, 3e-4, -0.5)),
        "E": ((0.11, 4e-4, -0.5), (0.08, 1.5e-3, -0.5)),
        "F": ((0.11, 4e-4, -0.5), (0.08, 1.5e-3, -0.5)),
    },
}
_POWER_LAW = {
    "rural": dict(zip(CLASSES, (0.07, 0.07, 0.10, 0.15, 0.35, 0.55), strict=True)),
    "urban": dict(zip(CLASSES, (0.15, 0.15, 0.20, 0.25, 0.30, 0.30), strict=True)),
}


def briggs_sigmas(
    x_m: FloatArray, stability: str, *, terrain: str = "rural"
) -> tuple[FloatArray, FloatArray]:
    """Briggs (1973) dispersion parameters ``σy``, ``σz`` (m) at downwind distances ``x_m`` (m, > 0).

    ``x_m`` : (n,) float64. Returns two (n,) float64 arrays in metres.
    """
    (ay, by, cy), (az, bz, cz) = _BRIGGS[terrain][stability]
    x = np.asarray(x_m, dtype=np.float64)
    return ay * x * (1.0 + by * x) ** cy, az * x * (1.0 + bz * x) ** cz


def ppm_to_kg_m3(
    ppm: float, molar_mass_g_mol: float, *, temperature_k: float = 298.15, pressure_pa: float = 101325.0
) -> float:
    """A volume fraction in ppm as a mass concentration in kg/m³ (ideal gas; default 25 °C, 1 atm)."""
    if not (ppm > 0 and molar_mass_g_mol > 0 and temperature_k > 0 and pressure_pa > 0):
        raise InputError(
            None,
            f"ppm ({ppm}), molar mass ({molar_mass_g_mol} g/mol), T and p must be > 0",
            element="threshold",
        )
    return ppm * 1e-6 * (molar_mass_g_mol * 1e-3) * pressure_pa / (R_GAS * temperature_k)


class GaussianPlume:
    """Steady Gaussian plume of a continuous point release at local ``(x, y)`` (see the module docstring).

    Parameters
    ----------
    x, y : release point, local metres. ``rate_kg_s`` : release rate, kg/s (> 0).
    height_m : release (effective) height above ground, m (≥ 0).
    wind_speed_mps : wind at 10 m, m/s (≥ 1). ``wind_from_deg`` : direction the wind blows from, degrees
    clockwise from north. ``stability`` : Pasquill-Gifford class ``"A"`` … ``"F"``.
    terrain : ``"rural"`` (open country) or ``"urban"`` Briggs coefficients and wind profile.
    source : scenario field or file the release came from, for error messages.
    """

    def __init__(
        self,
        x: float,
        y: float,
        *,
        rate_kg_s: float,
        wind_speed_mps: float,
        wind_from_deg: float,
        stability: str,
        height_m: float = 0.0,
        terrain: str = "rural",
        source: str | None = None,
    ):
        def bad(what: str, element: str) -> InputError:
            return InputError(source, what, element=element)

        if not (math.isfinite(x) and math.isfinite(y)):
            raise bad(f"release point ({x}, {y}) must be finite", "position")
        if not (math.isfinite(rate_kg_s) and rate_kg_s > 0):
            raise bad(f"rate_kg_s must be > 0, got {rate_kg_s!r}", "rate_kg_s")
        if not (math.isfinite(height_m) and height_m >= 0):
            raise bad(f"height_m must be >= 0, got {height_m!r}", "height_m")
        if not (math.isfinite(wind_speed_mps) and wind_speed_mps >= MIN_WIND_MPS):
            raise bad(
                f"wind_speed_mps must be >= {MIN_WIND_MPS} m/s (a Gaussian plume does not hold in calm air), "
                f"got {wind_speed_mps!r}",
                "wind_speed_mps",
            )
        if not math.isfinite(wind_from_deg):
            raise bad(f"wind_from_deg must be finite, got {wind_from_deg!r}", "wind_from_deg")
        cls = str(stability).strip().upper()
        if len(cls) != 1 or cls not in CLASSES:
            raise bad(f"stability must be a Pasquill-Gifford class A-F, got {stability!r}", "stability")
        if terrain not in _BRIGGS:
            raise bad(f"terrain must be 'rural' or 'urban', got {terrain!r}", "terrain")
        self.x0 = float(x)
        self.y0 = float(y)
        self.rate_kg_s = float(rate_kg_s)
        self.height_m = float(height_m)
        self.wind_speed_mps = float(wind_speed_mps)
        self.wind_from_deg = float(wind_from_deg)
        self.stability = cls
        self.terrain = terrain
        self.source = source
        rad = math.radians(self.wind_from_deg)
        # the wind blows towards from + 180°: unit vector (east, north)
        self.downwind = np.array([-math.sin(rad), -math.cos(rad)])
        self.crosswind = np.array(
            [-self.downwind[1], self.downwind[0]]
        )  # 90° counter-clockwise (left of wind)

    @property
    def wind_at_release_mps(self) -> float:
        """Wind speed at the release height by the power law, m/s (u10 below 10 m)."""
        p = _POWER_LAW[self.terrain][self.stability]
        return self.wind_speed_mps * (max(self.height_m, 10.0) / 10.0) ** p

    def to_plume(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Local points → (downwind distance, crosswind offset to the left of the wind), metres, same shape."""
        dx = np.asarray(x, dtype=np.float64) - self.x0
        dy = np.asarray(y, dtype=np.float64) - self.y0
        return dx * self.downwind[0] + dy * self.downwind[1], dx * self.crosswind[0] + dy * self.crosswind[1]

    def to_local(self, xd: FloatArray, yc: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Plume coordinates (downwind, crosswind-left) → local x, y metres."""
        xd = np.asarray(xd, dtype=np.float64)
        yc = np.asarray(yc, dtype=np.float64)
        return (
            self.x0 + xd * self.downwind[0] + yc * self.crosswind[0],
            self.y0 + xd * self.downwind[1] + yc * self.crosswind[1],
        )

    def centreline(self, xd: FloatArray, z: float | FloatArray = 0.0) -> FloatArray:
        """Concentration on the plume axis (crosswind offset 0) at downwind distances ``xd`` (m) and height ``z``
        (m), kg/m³; 0 for ``xd <= 0``. Broadcasts ``xd`` with ``z``."""
        xd = np.asarray(xd, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        down = xd > 0
        xs = np.where(down, xd, 1.0)
        sy, sz = briggs_sigmas(xs, self.stability, terrain=self.terrain)
        h = self.height_m
        vert = np.exp(-0.5 * ((z - h) / sz) ** 2) + np.exp(-0.5 * ((z + h) / sz) ** 2)
        c = self.rate_kg_s / (2.0 * math.pi * self.wind_at_release_mps * sy * sz) * vert
        return np.where(down, c, 0.0)

    @classmethod
    def from_event(cls, event: Any, x: float, y: float, *, source: str | None = None) -> GaussianPlume:
        """The plume of a scenario ``gas_leak`` event released at (x, y) (local metres)."""
        return cls(
            x,
            y,
            rate_kg_s=event.rate_kg_s,
            wind_speed_mps=event.wind_speed_mps,
            wind_from_deg=event.wind_from_deg,
            stability=event.stability,
            height_m=event.height_m,
            terrain=event.terrain,
            source=source,
        )

    def concentration(self, x: FloatArray, y: FloatArray, z: float | FloatArray = 0.0) -> FloatArray:
        """Concentration at local points, kg/m³. ``x``, ``y`` (local metres) and ``z`` (m above ground) are
        broadcast together; the result has their broadcast shape. 0 upwind of the source."""
        xd, yc = self.to_plume(x, y)
        xs = np.where(xd > 0, xd, 1.0)
        sy, _ = briggs_sigmas(xs, self.stability, terrain=self.terrain)
        return self.centreline(xd, z) * np.exp(-0.5 * (yc / sy) ** 2)

    def hazard_zone(
        self,
        threshold_kg_m3: float | None = None,
        *,
        ppm: float | None = None,
        molar_mass_g_mol: float | None = None,
        grid_m: float = 10.0,
        z_m: float = 0.0,
        max_distance_m: float = 100_000.0,
    ) -> BaseGeometry:
        """Where the concentration at height ``z_m`` (default: the ground) reaches the threshold: a shapely
        Polygon (MultiPolygon if it has separate parts, empty if nowhere) in local metres.

        The threshold is ``threshold_kg_m3`` or ``ppm`` with ``molar_mass_g_mol`` (converted at 25 °C, 1 atm).
        At a downwind distance ``x`` the boundary is exactly ``|y| = σy sqrt(2 ln(C_axis(x) / threshold))``; it is
        sampled every ``grid_m`` metres along the wind, with the ends where the axis concentration crosses the
        threshold found by root finding (relative 1e-9), out to ``max_distance_m``.
        """
        thr = self._threshold(threshold_kg_m3, ppm, molar_mass_g_mol)
        if not (math.isfinite(grid_m) and grid_m > 0):
            raise InputError(self.source, f"grid_m must be > 0, got {grid_m!r}", element="grid_m")
        if not (math.isfinite(z_m) and z_m >= 0):
            raise InputError(self.source, f"z_m must be >= 0, got {z_m!r}", element="z_m")
        parts = [
            self._zone_part(a, b, thr, grid_m, z_m) for a, b in self._above_ranges(thr, z_m, max_distance_m)
        ]
        parts = [p for p in parts if not p.is_empty]
        if not parts:
            return Polygon()
        zone = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        log.info("gas zone above %.3g kg/m³: %.0f m², %d part(s)", thr, zone.area, len(parts))
        return zone

    def _threshold(self, threshold_kg_m3: float | None, ppm: float | None, molar_mass: float | None) -> float:
        if (threshold_kg_m3 is None) == (ppm is None):
            raise InputError(
                self.source,
                "give exactly one of threshold_kg_m3 or ppm (with molar_mass_g_mol)",
                element="threshold",
            )
        if ppm is not None:
            if molar_mass is None:
                raise InputError(
                    self.source, "a threshold in ppm needs molar_mass_g_mol", element="threshold"
                )
            return ppm_to_kg_m3(ppm, molar_mass)
        if not (math.isfinite(threshold_kg_m3) and threshold_kg_m3 > 0):  # type: ignore[arg-type]
            raise InputError(
                self.source, f"threshold must be > 0 kg/m³, got {threshold_kg_m3!r}", element="threshold"
            )
        return float(threshold_kg_m3)  # type: ignore[arg-type]

    def _above_ranges(self, thr: float, z: float, max_distance: float) -> list[tuple[float, float]]:
        """Downwind intervals [a, b] (m) where the axis concentration is at least ``thr``."""
        xs = np.geomspace(1e-3, max_distance, 4000)
        above = self.centreline(xs, z) >= thr
        if not above.any():
            return []
        if above[-1]:
            log.warning("gas zone reaches max_distance_m = %g m; it is cut there", max_distance)

        def g(lx: float) -> float:  # log-ratio of the axis concentration to the threshold at x = exp(lx)
            c = float(self.centreline(np.array([math.exp(lx)]), z)[0])
            return math.log(c / thr) if c > 0 else -1e300

        def cross(k: int) -> float:  # the crossing between samples k and k + 1
            return math.exp(brentq(g, math.log(xs[k]), math.log(xs[k + 1]), rtol=1e-12))

        edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
        first = np.flatnonzero(edges == 1)
        last = np.flatnonzero(edges == -1) - 1
        return [
            (0.0 if s == 0 else cross(s - 1), float(xs[-1]) if e == len(xs) - 1 else cross(e))
            for s, e in zip(first, last, strict=True)
        ]

    def _zone_part(self, a: float, b: float, thr: float, grid_m: float, z: float) -> BaseGeometry:
        n = max(int(math.ceil((b - a) / grid_m)), 2)
        xd = np.linspace(a, b, n + 1)
        c = self.centreline(np.maximum(xd, 1e-9), z)
        sy, _ = briggs_sigmas(np.maximum(xd, 1e-9), self.stability, terrain=self.terrain)
        ratio = np.where(c > 0, c / thr, 0.0)
        half = np.where(ratio > 1.0, sy * np.sqrt(2.0 * np.log(np.maximum(ratio, 1.0))), 0.0)
        half[0] = half[-1] = (
            0.0  # the ends are where the axis concentration equals the threshold (or the source)
        )
        ring_d = np.concatenate([xd, xd[::-1]])
        ring_c = np.concatenate([half, -half[::-1]])
        px, py = self.to_local(ring_d, ring_c)
        poly = Polygon(np.column_stack([px, py]))
        return poly if poly.is_valid else shapely.make_valid(poly)

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the release and weather."""
        return {
            "x": self.x0,
            "y": self.y0,
            "rate_kg_s": self.rate_kg_s,
            "height_m": self.height_m,
            "wind_speed_mps": self.wind_speed_mps,
            "wind_from_deg": self.wind_from_deg,
            "wind_at_release_mps": self.wind_at_release_mps,
            "stability": self.stability,
            "terrain": self.terrain,
        }


def buildings_inside(
    zone: BaseGeometry, footprints: Sequence[BaseGeometry | None], *, predicate: str = "intersects"
) -> IntArray:
    """Indices (k,) int64, ascending, of the footprints the zone reaches: ``"intersects"`` (any part inside,
    the default: a building touched by the zone is evacuated) or ``"contains"`` (wholly inside the zone).
    ``None`` or empty footprints are skipped."""
    if predicate not in ("intersects", "contains"):
        raise ValueError(f"predicate must be 'intersects' or 'contains', got {predicate!r}")
    geoms = np.array([g if g is not None else shapely.Point() for g in footprints], dtype=object)
    if zone.is_empty or len(geoms) == 0:
        return np.empty(0, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    hits = tree.query(zone, predicate=predicate)
    return np.unique(np.asarray(hits, dtype=np.int64))
