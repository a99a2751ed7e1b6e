"""Congestion for quickest-path routing: local crowd density and the cost factor it puts on walking.

A dynamic floor field in the sense of Kretz (2009) and of Hughes' continuum model: instead of the shortest way
to an exit people take the quickest, where walking through a dense crowd is slow. The crowd model
(:class:`twin.sim.crowd.CrowdModel`) re-computes its navigation fields every ``congestion_every_s`` with the
per-cell factor of :func:`congestion_factor` (:meth:`twin.sim.crowd_space.CrowdSpace.distance_fields`' ``cost``),
so a crowd squeezing round the inside of a corner or into one side of a door spreads over the free width.

Density is counted on the crowd space's raster (people per cell / cell area), smoothed with a Gaussian of
``smoothing_m`` (standard deviation, metres) by normalised convolution over the walkable cells of each level, so
a crowd along a wall is not thinned by the wall's missing area. The factor is the ratio of Weidmann's (1993)
walking speed at a free density to that at the local density,
``v(ρ) = v0 (1 − exp(−γ (1/ρ − 1/ρmax)))`` with v0 = 1.34 m/s, γ = 1.913 P/m², ρmax = 5.4 P/m²:
1 below ``free_density`` (0.5 P/m², where people walk freely), continuous above it, capped at ``max_factor``
(the speed tends to 0 at ρmax).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from twin.sim.crowd_space import CrowdSpace
from twin.typing import FloatArray

log = logging.getLogger(__name__)

WEIDMANN_V0_MPS = 1.34
WEIDMANN_GAMMA = 1.913
WEIDMANN_RHO_MAX = 5.4
FREE_DENSITY_PPM2 = 0.5
"""Below this density (P/m²) people walk at their free speed: factor 1."""
MAX_FACTOR = 10.0
"""Cap of the cost factor (Weidmann's speed tends to 0 at 5.4 P/m²; 10 is reached at about 4.2 P/m²)."""
SMOOTHING_M = 1.0
"""Standard deviation of the Gaussian that smooths the counts (metres; about 2.4 m across at half height: a route
sees a jam a few body lengths before it walks into it, and a crowd turning a corner spreads over the free width)."""


def weidmann_speed(density: FloatArray) -> FloatArray:
    """Weidmann's (1993) walking speed (m/s) at ``density`` (any shape, P/m², > 0); 0 at and above 5.4 P/m²."""
    rho = np.asarray(density, dtype=np.float64)
    with np.errstate(divide="ignore"):
        inv = np.where(rho > 0, 1.0 / np.maximum(rho, 1e-300), np.inf)
    v = WEIDMANN_V0_MPS * (1.0 - np.exp(-WEIDMANN_GAMMA * (inv - 1.0 / WEIDMANN_RHO_MAX)))
    return np.maximum(v, 0.0)


def density_raster(
    space: CrowdSpace,
    positions: FloatArray,
    levels: np.ndarray,
    *,
    weights: FloatArray | None = None,
    smoothing_m: float = SMOOTHING_M,
) -> FloatArray:
    """Local crowd density (L, ny, nx) float64, persons/m², on the space's raster.

    positions : (n, 2) float64 metres; levels : (n,) int — the people counted (e.g. those walking); points
        outside the raster are left out. Each person counts in the cell containing it; the counts per m² are
        smoothed by a Gaussian of standard deviation ``smoothing_m`` metres (0: none), normalised by the smoothed
        walkable mask so that walls do not dilute a crowd along them. 0 on non-walkable cells.
    weights : (n,) float64, optional: each person counts with its weight (e.g. its speed, for the local sum of
        speeds per m²; divided by the plain density that is the local mean speed).
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
    w = np.ones(len(pos)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (len(pos),):
        raise ValueError(f"weights must be ({len(pos)},) float64, got {np.shape(weights)}")
    return _smoothed(space, _cells(space, pos, levels), [w], smoothing_m)[0]


def _cells(space: CrowdSpace, positions: FloatArray, levels: np.ndarray) -> np.ndarray:
    """(n, 3) int64 cells of the points, rows of -1 outside the raster."""
    if len(positions) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    return space.locate(positions, np.asarray(levels))


def _smoothed(
    space: CrowdSpace, cells: np.ndarray, weights: list[np.ndarray], smoothing_m: float
) -> list[FloatArray]:
    """Per weight vector: the weighted counts per m² in ``cells`` smoothed as :func:`density_raster` says."""
    if not (math.isfinite(smoothing_m) and smoothing_m >= 0):
        raise ValueError(f"smoothing_m must be a finite number >= 0 metres, got {smoothing_m!r}")
    h = space.cell_size
    walk = space.walkable > 0
    inside = cells[:, 0] >= 0
    at = (cells[inside, 0], cells[inside, 1], cells[inside, 2])
    sigma = smoothing_m / h
    den = {}  # the smoothed walkable mask of each level with people on it
    if smoothing_m > 0:
        for k in np.unique(cells[inside, 0]).tolist():
            den[k] = ndimage.gaussian_filter(walk[k].astype(np.float64), sigma, mode="constant")
    out = []
    for w in weights:
        rho = np.zeros(space.shape, dtype=np.float64)
        np.add.at(rho, at, w[inside] / (h * h))
        for k, d in den.items():
            rho[k] = ndimage.gaussian_filter(rho[k], sigma, mode="constant") / np.maximum(d, 1e-12)
        rho[~walk] = 0.0
        out.append(rho)
    return out


def congestion_factor(
    density: FloatArray,
    *,
    speed_ratio: FloatArray | None = None,
    free_density: float = FREE_DENSITY_PPM2,
    max_factor: float = MAX_FACTOR,
) -> FloatArray:
    """Cost factor (same shape as ``density``) float64 in [1, ``max_factor``]: v(free_density) / v(ρ) by
    Weidmann's speed, 1 where ρ <= ``free_density`` P/m² (so continuous), ``max_factor`` where v(ρ) is 0.

    speed_ratio : optional, same shape: the people's observed speed over their desired speed there (local means).
        The factor is then at most 1 / speed_ratio: a dense crowd that walks freely (a group leaving together,
        spreading out ahead) costs what it costs, so only crowds that are actually held up (a jam at a corner or
        a door) divert the routes, and people do not weave round the group they walk in.
    """
    if not (math.isfinite(free_density) and free_density > 0):
        raise ValueError(f"free_density must be a finite density > 0 P/m2, got {free_density!r}")
    if not (math.isfinite(max_factor) and max_factor >= 1):
        raise ValueError(f"max_factor must be a finite number >= 1, got {max_factor!r}")
    rho = np.asarray(density, dtype=np.float64)
    v_free = float(weidmann_speed(np.array(free_density)))
    v = weidmann_speed(np.maximum(rho, free_density))
    with np.errstate(divide="ignore"):
        f = np.where(v > 0, v_free / np.maximum(v, 1e-300), np.inf)
    if speed_ratio is not None:
        r = np.asarray(speed_ratio, dtype=np.float64)
        if r.shape != rho.shape:
            raise ValueError(f"speed_ratio must be {rho.shape} like density, got {r.shape}")
        with np.errstate(divide="ignore"):
            f = np.minimum(f, np.where(r > 0, 1.0 / np.maximum(r, 1e-300), np.inf))
    return np.clip(f, 1.0, max_factor)


def crowd_cost_factor(
    space: CrowdSpace,
    positions: FloatArray,
    levels: np.ndarray,
    *,
    velocities: FloatArray,
    desired_speeds: FloatArray,
    smoothing_m: float = SMOOTHING_M,
    free_density: float = FREE_DENSITY_PPM2,
    max_factor: float = MAX_FACTOR,
) -> FloatArray:
    """The cost factor (L, ny, nx) float64 in [1, ``max_factor``] of a crowd on ``space``'s raster.

    positions : (n, 2) float64 metres, levels : (n,) int, velocities : (n, 2) float64 m/s and desired_speeds :
    (n,) float64 m/s of the people counted (e.g. those walking). The factor is :func:`congestion_factor` of their
    :func:`density_raster` with the local ratio of observed to desired speed (both means smoothed alike).
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
    vel = np.asarray(velocities, dtype=np.float64).reshape(-1, 2)
    if len(vel) != len(pos):
        raise ValueError(f"velocities must be ({len(pos)}, 2) float64, got {np.shape(velocities)}")
    want = np.asarray(desired_speeds, dtype=np.float64).reshape(-1)
    if want.shape != (len(pos),):
        raise ValueError(f"desired_speeds must be ({len(pos)},) float64, got {np.shape(desired_speeds)}")
    speed = np.hypot(vel[:, 0], vel[:, 1])
    cells = _cells(space, pos, levels)
    density, desired, observed = _smoothed(space, cells, [np.ones(len(pos)), want, speed], smoothing_m)
    ratio = np.ones_like(density)
    np.divide(observed, desired, out=ratio, where=desired > 0)
    return congestion_factor(density, speed_ratio=ratio, free_density=free_density, max_factor=max_factor)
