"""Population: scenario crowd groups → agent arrays (speeds, radii, pre-movement times, start positions).

Distributions
-------------
A per-agent quantity is given as

- a number (every agent gets it);
- a distribution mapping ``{dist: normal|uniform|constant|lognormal, mean, sd, min, max, value}``:

  * ``normal``: mean, sd; optional ``min``/``max`` truncate it. Truncation *resamples* the draws that fall
    outside (the conditional distribution on [min, max]); nothing is clipped onto the bounds. When less than 5 % of
    the mass lies inside, the same truncated distribution is drawn by inverse CDF instead of resampling.
  * ``uniform``: min, max.
  * ``constant``: ``value`` (or ``mean``).
  * ``lognormal``: ``mean`` and ``sd`` of the quantity itself (not of its logarithm); optional ``min``/``max``
    truncate it as for ``normal``.
- a profile name (:data:`PROFILES`), e.g. ``"rimea:under30"``.

Field bounds (``lower`` of :func:`sample`) act as an extra truncation: a normal speed without ``min`` is drawn
from the normal conditioned on speed > 0.

RiMEA population (RiMEA 3.0, table 1, after Weidmann 1993)
----------------------------------------------------------
Walking speeds on the flat per age group: under 30 years 0.58–1.61 m/s, 30–50 years 1.41–1.54 m/s, over 50
years 0.68–1.41 m/s, mobility impaired 0.46–0.76 m/s. RiMEA gives ranges, not distributions, and test 7 only asks
that every drawn speed lies in its group's range, so each group is **uniform** within its range
(:data:`RIMEA_PROFILES`). ``"rimea:adults"`` is a mixture of the three age groups (not the impaired) with equal
shares — a convention for a working population (mean 1.205 m/s); give explicit groups for another mix.

Stair speeds
------------
Handbook ranges: up 0.55–0.80 m/s, down 0.60–1.01 m/s (VALIDATION.md). Unless a group sets ``stair_up_mps`` /
``stair_down_mps``, an agent's stair speeds scale with its flat speed: ``stair = mid × v / 1.34`` (``mid`` the
middle of the handbook range, 1.34 m/s Weidmann's mean flat speed), clipped to the handbook range, and never faster
than the agent's own flat speed (so a mobility-impaired walker at 0.46 m/s climbs at 0.46 m/s, not 0.55).

Placement
---------
:func:`place_agents` throws darts (uniform candidates, rejected when they overlap an agent already placed or lie
closer than their radius to the region's boundary) using a uniform neighbour grid, all vectorised; above a packing
fraction of :data:`DART_MAX_FRACTION`, or when darts stall, it falls back to a deterministic hexagonal lattice with
as wide a spacing as fits, jittered within the free space. Capacity (:func:`capacity`) is 0.9 of hexagonal packing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from scipy import special
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from twin.errors import InputError
from twin.typing import BoolArray, FloatArray

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RADIUS_M",
    "DEFAULT_SPEED",
    "PROFILES",
    "RIMEA_PROFILES",
    "RIMEA_SPEED_RANGES",
    "STAIR_DOWN_RANGE",
    "STAIR_UP_RANGE",
    "build_population",
    "capacity",
    "place_agents",
    "sample",
    "spec_bounds",
    "stair_speeds",
]

# --- distributions ---------------------------------------------------------------------------------------------

RIMEA_SPEED_RANGES: dict[str, tuple[float, float]] = {
    "under30": (0.58, 1.61),
    "30-50": (1.41, 1.54),
    "over50": (0.68, 1.41),
    "impaired": (0.46, 0.76),
}
"""RiMEA 3.0 table 1 (after Weidmann): walking speed on the flat per population group, (min, max) m/s."""

RIMEA_PROFILES: dict[str, dict[str, Any]] = {
    **{f"rimea:{k}": {"dist": "uniform", "min": lo, "max": hi} for k, (lo, hi) in RIMEA_SPEED_RANGES.items()},
    "rimea:adults": {
        "dist": "mixture",
        "components": [
            {"weight": 1.0, "spec": "rimea:under30"},
            {"weight": 1.0, "spec": "rimea:30-50"},
            {"weight": 1.0, "spec": "rimea:over50"},
        ],
    },
}
"""Named speed profiles (m/s): each RiMEA group uniform in its range; ``rimea:adults`` an equal-share mixture."""

PROFILES: dict[str, dict[str, Any]] = dict(RIMEA_PROFILES)
"""Every profile name a scenario may use for ``speed_mps``."""

WEIDMANN_MEAN_SPEED = 1.34
"""Weidmann's (1993) mean free walking speed on the flat, m/s."""

DEFAULT_SPEED: dict[str, Any] = {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.46, "max": 1.61}
"""Default desired speed (Weidmann's mean and spread, truncated to the RiMEA range of all groups), m/s."""

DEFAULT_RADIUS_M = 0.2
"""Default body radius, metres."""

STAIR_UP_RANGE = (0.55, 0.80)
"""Walking speed up stairs along the slope, m/s (handbooks; VALIDATION.md)."""
STAIR_DOWN_RANGE = (0.60, 1.01)
"""Walking speed down stairs along the slope, m/s (Fruin; VALIDATION.md)."""

_DIST_KEYS = {
    "normal": ({"mean", "sd"}, {"min", "max"}),
    "lognormal": ({"mean", "sd"}, {"min", "max"}),
    "uniform": ({"min", "max"}, set()),
    "constant": (set(), {"value", "mean"}),
}
_MIN_RESAMPLE_MASS = 0.05  # below this in-bounds probability, truncated draws use the inverse CDF


def _as_mapping(spec: Any) -> dict[str, Any]:
    """A distribution given as a mapping or as a model/object with attributes → plain dict without ``None``."""
    if isinstance(spec, Mapping):
        d = dict(spec)
    elif hasattr(spec, "model_dump"):
        d = spec.model_dump()
    else:
        raise ValueError(f"a distribution must be a number, a mapping or a profile name, got {spec!r}")
    return {k: v for k, v in d.items() if v is not None}


def _resolve_profile(spec: str) -> dict[str, Any]:
    try:
        return PROFILES[spec]
    except KeyError:
        raise ValueError(f"unknown profile {spec!r}; expected one of {', '.join(sorted(PROFILES))}") from None


def spec_bounds(spec: Any) -> tuple[float, float]:
    """(lowest, highest) value a spec can produce (``±inf`` where unbounded), before field bounds."""
    if isinstance(spec, bool):
        raise ValueError(f"a distribution must be a number, got {spec!r}")
    if isinstance(spec, int | float):
        return float(spec), float(spec)
    if isinstance(spec, str):
        return spec_bounds(_resolve_profile(spec))
    d = _as_mapping(spec)
    kind = d.get("dist")
    if kind == "mixture":
        bounds = [spec_bounds(c["spec"]) for c in d["components"]]
        return min(b[0] for b in bounds), max(b[1] for b in bounds)
    if kind == "constant":
        v = float(d.get("value", d.get("mean")))
        return v, v
    if kind == "uniform":
        return float(d["min"]), float(d["max"])
    if kind == "lognormal":
        return float(d.get("min", 0.0)), float(d.get("max", math.inf))
    if kind == "normal":
        return float(d.get("min", -math.inf)), float(d.get("max", math.inf))
    raise ValueError(f"unknown distribution {kind!r}; expected normal, uniform, constant or lognormal")


def _truncated(
    draw: Callable[[int], FloatArray],
    cdf: Callable[[float], float],
    ppf: Callable[[FloatArray], FloatArray],
    lo: float,
    hi: float,
    n: int,
    rng: np.random.Generator,
) -> FloatArray:
    """n draws of a distribution conditioned on [lo, hi]: resampling, or inverse CDF when the mass is small."""
    c_lo, c_hi = cdf(lo), cdf(hi)
    mass = c_hi - c_lo
    if not mass > 0:
        raise ValueError(f"the distribution has no probability between {lo:g} and {hi:g}")
    if mass < _MIN_RESAMPLE_MASS:
        return np.clip(ppf(rng.uniform(c_lo, c_hi, n)), lo, hi)
    out = draw(n)
    bad = (out < lo) | (out > hi)
    for _ in range(200):
        k = int(bad.sum())
        if k == 0:
            return out
        out[bad] = draw(k)
        bad = (out < lo) | (out > hi)
    # Practically unreachable with mass >= 5 %; draw the stragglers exactly by inverse CDF.
    k = int(bad.sum())
    out[bad] = np.clip(ppf(rng.uniform(c_lo, c_hi, k)), lo, hi)
    return out


def sample(
    spec: Any,
    n: int,
    rng: np.random.Generator,
    *,
    lower: float = -math.inf,
    upper: float = math.inf,
) -> FloatArray:
    """Draw ``n`` values of ``spec`` (a number, a distribution mapping/model or a profile name).

    ``lower``/``upper`` are the field's own bounds (e.g. 0 for speeds): they truncate unbounded distributions
    (normal, lognormal) by resampling as ``min``/``max`` do. Returns (n,) float64 in the spec's unit.
    Raises ValueError for a spec that is not understood (the scenario schema reports those with field paths).
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if isinstance(spec, bool):
        raise ValueError(f"a distribution must be a number, got {spec!r}")
    if isinstance(spec, int | float):
        return np.full(n, float(spec))
    if isinstance(spec, str):
        return sample(_resolve_profile(spec), n, rng, lower=lower, upper=upper)
    d = _as_mapping(spec)
    kind = d.get("dist")
    if kind == "mixture":
        comps = d["components"]
        w = np.array([float(c["weight"]) for c in comps])
        which = rng.choice(len(comps), size=n, p=w / w.sum())
        out = np.empty(n)
        for j, c in enumerate(comps):
            mask = which == j
            out[mask] = sample(c["spec"], int(mask.sum()), rng, lower=lower, upper=upper)
        return out
    if kind not in _DIST_KEYS:
        raise ValueError(f"unknown distribution {kind!r}; expected one of {', '.join(_DIST_KEYS)}")
    required, _optional = _DIST_KEYS[kind]
    missing = sorted(required - set(d))
    if missing:
        raise ValueError(f"distribution {kind!r} needs {', '.join(missing)}")
    if kind == "constant":
        return np.full(n, float(d.get("value", d.get("mean"))))
    if kind == "uniform":
        a, b = float(d["min"]), float(d["max"])
        if a > b:
            raise ValueError(f"min {a:g} is greater than max {b:g}")
        return rng.uniform(a, b, n) if a < b else np.full(n, a)
    lo = max(float(d.get("min", -math.inf)), lower)
    hi = min(float(d.get("max", math.inf)), upper)
    if lo > hi:
        raise ValueError(f"min {lo:g} is greater than max {hi:g}")
    mean, sd = float(d["mean"]), float(d["sd"])
    if sd < 0:
        raise ValueError(f"sd must be >= 0, got {sd:g}")
    if kind == "normal":
        if sd == 0:
            if not lo <= mean <= hi:
                raise ValueError(f"constant {mean:g} (sd 0) lies outside [{lo:g}, {hi:g}]")
            return np.full(n, mean)
        return _truncated(
            lambda k: rng.normal(mean, sd, k),
            lambda x: float(special.ndtr((x - mean) / sd)),
            lambda u: mean + sd * special.ndtri(u),
            lo,
            hi,
            n,
            rng,
        )
    # lognormal with the given mean and sd of the quantity itself
    if mean <= 0:
        raise ValueError(f"a lognormal mean must be > 0, got {mean:g}")
    s2 = math.log1p((sd / mean) ** 2)
    mu, s = math.log(mean) - s2 / 2.0, math.sqrt(s2)
    if s == 0:
        return np.full(n, mean)
    lo = max(lo, 0.0)

    def cdf(x: float) -> float:
        return 0.0 if x <= 0 else float(special.ndtr((math.log(x) - mu) / s))

    return _truncated(
        lambda k: rng.lognormal(mu, s, k),
        cdf,
        lambda u: np.exp(mu + s * special.ndtri(u)),
        lo,
        hi,
        n,
        rng,
    )


def stair_speeds(flat_speed: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Default stair speeds (up, down) of agents with desired flat speeds ``flat_speed`` (n,) m/s.

    ``stair = mid(range) × v / 1.34``, clipped to the handbook range (:data:`STAIR_UP_RANGE`,
    :data:`STAIR_DOWN_RANGE`) and then to at most ``v``. Returns two (n,) float64 arrays, m/s along the slope.
    """
    v = np.asarray(flat_speed, dtype=np.float64)
    ratio = v / WEIDMANN_MEAN_SPEED
    out = []
    for lo, hi in (STAIR_UP_RANGE, STAIR_DOWN_RANGE):
        s = np.clip(0.5 * (lo + hi) * ratio, lo, hi)
        out.append(np.minimum(s, v))
    return out[0], out[1]


# --- placement ---------------------------------------------------------------------------------------------------

GAP_M = 0.01
"""Clearance between placed bodies, metres: centres i, j are at least r_i + r_j + GAP_M apart."""

PACKING_FRACTION = 0.9
"""Capacity = this fraction of hexagonal packing of discs of diameter 2 r + GAP_M."""

DART_MAX_FRACTION = 0.35
"""Above this area fraction covered by bodies, placement goes straight to the lattice (dart throwing jams near
0.547, the random-sequential-adsorption limit, and slows down well before)."""

_DART_ROUNDS = 60


def _hex_density(d: float) -> float:
    """Sites per m² of a hexagonal lattice with spacing d metres."""
    return 2.0 / (math.sqrt(3.0) * d * d)


def _as_region(region: BaseGeometry) -> BaseGeometry:
    if not isinstance(region, Polygon | MultiPolygon):
        raise ValueError(f"region must be a shapely Polygon or MultiPolygon, got {type(region).__name__}")
    return region if region.is_valid else _polygonal(shapely.make_valid(region))


def capacity(region: BaseGeometry, radius: float, *, gap: float = GAP_M) -> int:
    """About how many bodies of ``radius`` metres fit into ``region`` without overlap.

    0.9 × the hexagonal packing of discs of diameter ``2 radius + gap`` over the area that centres can use (the
    region eroded by ``radius``, grown back by half a spacing so that small rooms are not underestimated).
    """
    region = _as_region(region)
    d = 2.0 * radius + gap
    inner = region.buffer(-radius)
    if inner.is_empty:
        return 0
    usable = min(inner.buffer(0.5 * d).area, region.area)
    return int(math.floor(PACKING_FRACTION * _hex_density(d) * usable))


def _uniform_in(
    geom: BaseGeometry, n: int, rng: np.random.Generator, prepared: BaseGeometry | None = None
) -> FloatArray:
    """n uniform points inside ``geom`` by batched rejection from its bounding box: (n, 2) float64."""
    x0, y0, x1, y1 = geom.bounds
    ratio = max(geom.area / max((x1 - x0) * (y1 - y0), 1e-300), 1e-4)
    chunks = []
    have = 0
    while have < n:
        m = int(min(max(64, 1.2 * (n - have) / ratio), 4_000_000))
        pts = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
        keep = pts[shapely.contains_xy(prepared or geom, pts[:, 0], pts[:, 1])]
        chunks.append(keep)
        have += len(keep)
    return np.concatenate(chunks)[:n]


class _Occupied:
    """Bodies already placed (centres (m, 2), radii (m,)) with a neighbour grid for conflict tests."""

    def __init__(self, reach: float, positions: FloatArray, radii: FloatArray):
        from twin.spatial import NeighborGrid  # the C++ core; imported here so the module imports without it

        self.reach = reach
        self.grid = NeighborGrid(reach)
        self.positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        self.radii = np.asarray(radii, dtype=np.float64).reshape(-1)
        self._built = False

    def add(self, positions: FloatArray, radii: FloatArray) -> None:
        self.positions = np.concatenate([self.positions, positions])
        self.radii = np.concatenate([self.radii, radii])
        self._built = False

    def conflicts(self, points: FloatArray, radii: FloatArray, gap: float) -> BoolArray:
        """(k,) True where a body at ``points`` with ``radii`` would overlap an occupied one."""
        k = len(points)
        if k == 0 or len(self.positions) == 0:
            return np.zeros(k, dtype=bool)
        if not self._built:
            self.grid.rebuild(self.positions)
            self._built = True
        nb = self.grid.query_radius(points, self.reach, sort=False)
        q = np.repeat(np.arange(k), np.diff(nb.offsets))
        bad = nb.distances < radii[q] + self.radii[nb.indices] + gap
        out = np.zeros(k, dtype=bool)
        out[q[bad]] = True
        return out


def _mutual_conflicts(points: FloatArray, radii: FloatArray, reach: float, gap: float) -> BoolArray:
    """(k,) True for each point that overlaps an earlier (lower-index) point of the same batch."""
    from twin.spatial import NeighborGrid

    if len(points) < 2:
        return np.zeros(len(points), dtype=bool)
    grid = NeighborGrid(reach)
    grid.rebuild(points)
    pairs = grid.pairs_within(reach)  # (p, 2), i < j
    out = np.zeros(len(points), dtype=bool)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        dist = np.hypot(*(points[i] - points[j]).T)
        out[j[dist < radii[i] + radii[j] + gap]] = True
    return out


class _Fit:
    """Per-radius tests of whether a body centre may stand at a point (eroded region + walkable test)."""

    def __init__(self, region: BaseGeometry, radii: FloatArray, walkable_test: Callable | None):
        # Radii are rounded up to 5 mm classes; each class tests against the region eroded by its radius.
        self.cls_r = np.ceil(radii / 0.005 - 1e-9) * 0.005
        self.classes = np.unique(self.cls_r)
        self.eroded = {}
        for r in self.classes:
            g = region.buffer(-float(r))
            shapely.prepare(g)
            self.eroded[float(r)] = g
        self.walkable_test = walkable_test

    def ok(self, points: FloatArray, agent: np.ndarray) -> BoolArray:
        """(k,) True where agent ``agent[i]``'s body fits at ``points[i]`` (within the region and walkable)."""
        out = np.zeros(len(points), dtype=bool)
        cr = self.cls_r[agent]
        for r in np.unique(cr):
            m = cr == r
            out[m] = shapely.contains_xy(self.eroded[float(r)], points[m, 0], points[m, 1])
        if self.walkable_test is not None and out.any():
            idx = np.flatnonzero(out)
            out[idx] = np.asarray(self.walkable_test(points[idx]), dtype=bool).reshape(-1)
        return out


def _darts(
    region: BaseGeometry,
    radii: FloatArray,
    rng: np.random.Generator,
    fit: _Fit,
    occupied: _Occupied,
    gap: float,
) -> tuple[FloatArray, np.ndarray]:
    """Random sequential placement in vectorised rounds. Returns positions (n, 2) (NaN where not placed), placed."""
    n = len(radii)
    pos = np.full((n, 2), np.nan)
    placed = np.zeros(n, dtype=bool)
    sampler = region.buffer(-float(radii.min()))
    if sampler.is_empty:
        return pos, placed
    shapely.prepare(sampler)
    m = 1
    for _ in range(_DART_ROUNDS):
        pending = np.flatnonzero(~placed)
        if len(pending) == 0:
            break
        agent = np.repeat(pending, m)
        cand = _uniform_in(sampler, len(agent), rng, sampler)
        good = fit.ok(cand, agent)
        good[good] = ~occupied.conflicts(cand[good], radii[agent[good]], gap)
        # first good candidate of each pending agent
        gi = np.flatnonzero(good)
        first_of, first_idx = np.unique(agent[gi], return_index=True)
        chosen = gi[first_idx]
        pts, who = cand[chosen], first_of
        clash = _mutual_conflicts(pts, radii[who], occupied.reach, gap)
        pts, who = pts[~clash], who[~clash]
        pos[who] = pts
        placed[who] = True
        occupied.add(pts, radii[who])
        rate = len(who) / max(len(pending), 1)
        if rate < 0.5:
            m = min(2 * m, 32)
        if rate < 0.01 and m == 32:
            break  # jammed
    return pos, placed


def _lattice_sites(region: BaseGeometry, spacing: float, offset: tuple[float, float]) -> FloatArray:
    """Sites of a hexagonal lattice with ``spacing`` metres over the bounding box of ``region``: (k, 2)."""
    x0, y0, x1, y1 = region.bounds
    dy = spacing * math.sqrt(3.0) / 2.0
    ys = np.arange(y0 + offset[1], y1 + 1e-9, dy)
    xs = np.arange(x0 + offset[0], x1 + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + np.where(np.arange(len(ys)) % 2 == 1, 0.5 * spacing, 0.0)[:, None]
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts[shapely.contains_xy(region, pts[:, 0], pts[:, 1])]


def _lattice(
    region: BaseGeometry,
    radii: FloatArray,
    rng: np.random.Generator,
    fit: _Fit,
    occupied: _Occupied,
    gap: float,
) -> tuple[FloatArray | None, int]:
    """Place all bodies on a jittered hexagonal lattice; (positions, n) or (None, most sites found)."""
    n = len(radii)
    r_max = float(radii.max())
    d = 2.0 * r_max + gap
    inner = region.buffer(-r_max)
    if inner.is_empty:
        return None, 0
    shapely.prepare(inner)
    # the widest spacing that gives about 5 % more sites than agents, then narrower until they fit
    spacing = max(d, math.sqrt(inner.buffer(0.5 * d).area / (1.05 * n) / (math.sqrt(3.0) / 2.0)))
    best = 0
    agent_max = np.full(1, int(np.argmax(radii)))
    while True:
        for attempt in range(4 if spacing <= d * (1 + 1e-9) else 1):
            off = (rng.uniform(0, spacing), rng.uniform(0, spacing * math.sqrt(3.0) / 2.0))
            sites = _lattice_sites(inner, spacing, off)
            if len(sites):
                ok = fit.ok(sites, np.repeat(agent_max, len(sites)))
                sites = sites[ok]
                sites = sites[~occupied.conflicts(sites, np.full(len(sites), r_max), gap)]
            best = max(best, len(sites))
            if len(sites) >= n:
                pick = sites[rng.choice(len(sites), size=n, replace=False)]
                return _jitter(pick, radii, rng, fit, occupied, (spacing - d) / 2.0, gap), n
            log.debug(
                "lattice spacing %.3f m attempt %d: %d sites for %d agents", spacing, attempt, len(sites), n
            )
        if spacing <= d * (1 + 1e-9):
            return None, best
        spacing = max(d, spacing * 0.97)


def _jitter(
    sites: FloatArray,
    radii: FloatArray,
    rng: np.random.Generator,
    fit: _Fit,
    occupied: _Occupied,
    amplitude: float,
    gap: float,
) -> FloatArray:
    """Move each lattice site by up to ``amplitude`` metres (uniform in a disc) where the body still fits.

    Lattice sites are at least ``2 r_max + gap + 2 amplitude`` apart, so moves within ``amplitude`` keep every pair
    apart; a move that leaves the region (or the walkable test) or hits an occupied body is undone.
    """
    if amplitude <= 0:
        return sites
    n = len(sites)
    rho = amplitude * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * math.pi, n)
    moved = sites + np.column_stack([rho * np.cos(phi), rho * np.sin(phi)])
    ok = fit.ok(moved, np.arange(n))
    ok[ok] = ~occupied.conflicts(moved[ok], radii[ok], gap)
    return np.where(ok[:, None], moved, sites)


def place_agents(
    region: BaseGeometry,
    radii: FloatArray,
    rng: np.random.Generator,
    *,
    walkable_test: Callable[[FloatArray], BoolArray] | None = None,
    avoid: tuple[FloatArray, FloatArray] | None = None,
    gap: float = GAP_M,
    name: str = "the region",
    what: str | None = None,
    field: str | None = None,
    source: str | None = None,
) -> FloatArray:
    """Non-overlapping start positions for bodies of ``radii`` inside ``region``.

    Parameters
    ----------
    region : shapely Polygon or MultiPolygon, metres; holes are obstacles. Every body lies inside it: its centre is
        at least its radius from the boundary (walls and holes).
    radii : (n,) float64, metres (> 0).
    rng : numpy Generator; the same seed gives the same positions.
    walkable_test : optional callable ``(k, 2) float64 → (k,) bool``; centres where it is False are not used (e.g.
        the crowd space's raster of walkable cells).
    avoid : optional ``(positions (m, 2), radii (m,))`` of bodies already there (other groups) to keep clear of.
    gap : clearance in metres: each pair satisfies ``|p_i - p_j| >= r_i + r_j + gap``.
    name, what, field, source : used in the error when the bodies do not fit: the region (``"area 'hall'"``),
        the bodies (default ``"n agents"``), the field (``"crowd.groups[1].count"``) and the scenario file.

    Returns
    -------
    (n, 2) float64 positions, metres; row i belongs to ``radii[i]``.

    Raises
    ------
    InputError
        When the bodies do not fit (more than :func:`capacity` minus the places already taken, or no lattice found
        room for all of them).
    """
    region = _as_region(region)
    radii = np.asarray(radii, dtype=np.float64).reshape(-1)
    n = len(radii)
    if n == 0:
        return np.zeros((0, 2))
    if not (np.isfinite(radii).all() and (radii > 0).all()):
        raise ValueError("radii must be finite and > 0")
    r_max = float(radii.max())
    reach = 2.0 * r_max + gap
    av_pos, av_r = (np.zeros((0, 2)), np.zeros(0)) if avoid is None else avoid
    av_pos = np.asarray(av_pos, dtype=np.float64).reshape(-1, 2)
    av_r = np.asarray(av_r, dtype=np.float64).reshape(-1)
    if len(av_r):
        reach = max(reach, r_max + float(av_r.max()) + gap)
    where = f"{field}: " if field else ""

    def too_many(cap: int, taken: int) -> InputError:
        extra = f"; {taken} places already taken by other groups" if taken else ""
        return InputError(
            source,
            f"{where}{what or f'{n} agents'} do not fit in {name} ({region.area:.0f} m², at most "
            f"~{max(cap - taken, 0)} at this radius ({r_max:g} m){extra})",
        )

    cap = capacity(region, r_max, gap=gap)
    taken = 0
    if len(av_r):
        taken = int(shapely.contains_xy(region, av_pos[:, 0], av_pos[:, 1]).sum())
    if n > cap - taken:
        raise too_many(cap, taken)

    fit = _Fit(region, radii, walkable_test)
    occupied = _Occupied(reach, av_pos, av_r)
    fraction = float(np.sum(np.pi * (radii + gap / 2) ** 2)) / max(region.area, 1e-300)
    if fraction <= DART_MAX_FRACTION:
        pos, placed = _darts(region, radii, rng, fit, occupied, gap)
        if placed.all():
            return pos
        log.info("dart throwing placed %d of %d agents in %s; using a lattice", placed.sum(), n, name)
        occupied = _Occupied(reach, av_pos, av_r)
    pos, best = _lattice(region, radii, rng, fit, occupied, gap)
    if pos is None:
        raise too_many(best + taken, taken)
    return pos


# --- groups → arrays ---------------------------------------------------------------------------------------------


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Field ``key`` of a schema model or a plain mapping (``in`` is ``in_`` on models)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    value = getattr(obj, "in_" if key == "in" else key, default)
    return default if value is None else value


Region = tuple[BaseGeometry, int]


def _group_regions(
    gi: int, group: Any, regions: Mapping[str, Region], source: str | None
) -> list[tuple[str, str, BaseGeometry, int]]:
    """The (key, label, polygon, level) regions a group is placed in (see :func:`build_population`)."""
    where = _get(group, "in")
    field = f"crowd.groups[{gi}].in"
    area = _get(where, "area")
    building = _get(where, "building")
    polygon = _get(where, "polygon")
    if area is not None:
        if area not in regions:
            raise InputError(source, f"{field}.area: no walkable area {area!r}; have {sorted(regions)}")
        poly, level = regions[area]
        return [(area, f"area {area!r}", poly, int(level))]
    if building is not None:
        storeys = _get(where, "storeys")
        prefix = f"{building}/"
        if storeys:
            out = []
            for j, s in enumerate(storeys):
                key = prefix + s
                if key not in regions:
                    have = sorted(k[len(prefix) :] for k in regions if k.startswith(prefix))
                    raise InputError(
                        source,
                        f"{field}.storeys[{j}]: building {building!r} has no storey {s!r}; have {have}",
                    )
                poly, level = regions[key]
                out.append((key, f"storey {s!r} of building {building!r}", poly, int(level)))
            return out
        keys = [k for k in regions if k.startswith(prefix)]
        if not keys:
            raise InputError(source, f"{field}.building: no walkable storeys of building {building!r}")
        return [
            (k, f"storey {k[len(prefix) :]!r} of building {building!r}", *_unpack(regions[k])) for k in keys
        ]
    if polygon is not None:
        geom = shapely.from_wkt(polygon) if isinstance(polygon, str) else polygon
        level = int(_get(where, "level", 0) or 0)
        same = [p for p, lv in regions.values() if int(lv) == level]
        if same:
            geom = geom.intersection(shapely.union_all(same))
        geom = _polygonal(geom)
        if geom.is_empty:
            raise InputError(source, f"{field}.polygon: does not overlap any walkable area on level {level}")
        return [(f"<polygon of group {gi}>", f"the polygon of crowd.groups[{gi}].in", geom, level)]
    raise InputError(source, f"{field}: needs one of area, building or polygon")


def _unpack(r: Region) -> tuple[BaseGeometry, int]:
    return r[0], int(r[1])


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal parts of an intersection result (drops touching lines and points)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]
    return MultiPolygon(parts) if parts else Polygon()


def _split(count: int, weights: Sequence[float]) -> list[int]:
    """Split ``count`` proportionally to ``weights`` (largest remainder; ties to the first)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    share = count * w / w.sum()
    base = np.floor(share).astype(int)
    rest = count - int(base.sum())
    order = np.argsort(-(share - base), kind="stable")
    base[order[:rest]] += 1
    return base.tolist()


def build_population(
    groups: Sequence[Any],
    regions: Mapping[str, Region],
    rng: np.random.Generator,
    *,
    walkable_test: Callable[[FloatArray, int], BoolArray] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Draw every agent of the scenario's crowd groups and place them without overlap.

    Parameters
    ----------
    groups : the scenario's ``crowd.groups`` (schema models or mappings with the same keys).
    regions : name → (shapely (Multi)Polygon, level). A group ``in: {area: hall}`` uses ``regions["hall"]``;
        ``in: {building: office, storeys: ["Storey 2"]}`` uses ``regions["office/Storey 2"]`` (building id, ``/``,
        storey name) and without ``storeys`` every ``"office/…"`` region; ``in: {polygon: WKT, level: k}`` uses the
        polygon cut to the regions on level k. A group spread over several regions is split in proportion to
        their areas.
    rng : numpy Generator (``default_rng(scenario.seed)``). Each group draws from its own child generator
        (``rng.spawn``), each quantity from its own grandchild, so changing one group's count or one quantity's
        distribution leaves the other groups' draws unchanged.
    walkable_test : optional ``(points (k, 2), level) → (k,) bool`` (e.g. the crowd space's raster lookup).
    source : the scenario file, for errors.

    Returns
    -------
    dict with, for n agents in group order:
      ``positions`` (n, 2) float64 m; ``levels`` (n,) int32; ``speed`` (n,) float64 m/s (desired, flat);
      ``radius`` (n,) float64 m; ``premovement`` (n,) float64 s (delay before moving, from the start of the run);
      ``stair_up``, ``stair_down`` (n,) float64 m/s along the slope; ``group`` (n,) int32 index into ``groups``;
      ``group_ids`` list[str]; ``allowed_exits`` list per group (exit ids, or None for "the quickest").
    """
    group_ids: list[str] = []
    allowed: list[list[str] | None] = []
    attrs: dict[str, list[np.ndarray]] = {
        k: [] for k in ("speed", "radius", "premovement", "stair_up", "stair_down", "group")
    }
    # (key, label, polygon, level) → [(group index, global agent indices)]; agents sharing a key are placed together
    jobs: dict[str, tuple[str, BaseGeometry, int, list[tuple[int, np.ndarray]]]] = {}
    children = rng.spawn(len(groups))
    place_rng = rng.spawn(1)[0]
    n_total = 0
    for gi, (group, grng) in enumerate(zip(groups, children, strict=True)):
        count = int(_get(group, "count"))
        g_speed, g_radius, g_pre, g_up, g_down = grng.spawn(5)
        speed = sample(_get(group, "speed_mps", DEFAULT_SPEED), count, g_speed, lower=1e-9)
        radius = sample(_get(group, "radius_m", DEFAULT_RADIUS_M), count, g_radius, lower=1e-9)
        pre = sample(_get(group, "premovement_s", 0.0), count, g_pre, lower=0.0)
        up_default, down_default = stair_speeds(speed)
        up_spec, down_spec = _get(group, "stair_up_mps"), _get(group, "stair_down_mps")
        up = up_default if up_spec is None else sample(up_spec, count, g_up, lower=1e-9)
        down = down_default if down_spec is None else sample(down_spec, count, g_down, lower=1e-9)
        for key, arr in (
            ("speed", speed),
            ("radius", radius),
            ("premovement", pre),
            ("stair_up", up),
            ("stair_down", down),
            ("group", np.full(count, gi, dtype=np.int32)),
        ):
            attrs[key].append(arr)

        where = _group_regions(gi, group, regions, source)
        start = n_total
        for (key, label, poly, level), k in zip(
            where, _split(count, [w[2].area for w in where]), strict=True
        ):
            if k:
                jobs.setdefault(key, (label, poly, level, []))[3].append((gi, np.arange(start, start + k)))
                start += k
        n_total += count
        exits = _get(group, "exits")
        allowed.append(None if exits is None else list(exits))
        group_ids.append(str(_get(group, "id", f"group{gi}")))
        log.info("group %s: %d agents in %s", group_ids[-1], count, ", ".join(w[1] for w in where))

    out: dict[str, Any] = {
        key: np.concatenate(chunks) if chunks else np.zeros(0) for key, chunks in attrs.items()
    }
    positions = np.full((n_total, 2), np.nan)
    levels = np.zeros(n_total, dtype=np.int32)
    placed_by_level: dict[int, tuple[list[FloatArray], list[FloatArray]]] = {}
    for label, poly, level, members in jobs.values():
        idx = np.concatenate([m[1] for m in members])
        radii = out["radius"][idx]
        prev_pos, prev_r = placed_by_level.setdefault(level, ([], []))
        avoid = (np.concatenate(prev_pos), np.concatenate(prev_r)) if prev_pos else None
        what = None
        if len(members) > 1:
            names = [f"{group_ids[g]!r} ({len(i)})" for g, i in members]
            what = f"{len(idx)} agents of groups {', '.join(names[:-1])} and {names[-1]}"
        test = None if walkable_test is None else (lambda p, _lv=level: walkable_test(p, _lv))
        positions[idx] = place_agents(
            poly,
            radii,
            place_rng,
            walkable_test=test,
            avoid=avoid,
            name=label,
            what=what,
            field=f"crowd.groups[{members[-1][0]}].count",
            source=source,
        )
        levels[idx] = level
        prev_pos.append(positions[idx])
        prev_r.append(radii)
    out["positions"] = positions
    out["levels"] = levels
    out["group"] = out["group"].astype(np.int32)
    out["allowed_exits"] = allowed
    out["group_ids"] = group_ids
    return out
