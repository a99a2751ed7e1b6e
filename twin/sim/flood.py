"""Surface flooding over a DEM: a 2-D local inertial shallow-water model (Bates, Horritt & Fewtrell 2010).

The model
---------
Water depth ``h`` lives at cell centres, unit-width discharges ``q`` (m²/s) on the faces between cells. Each step

    q⁺ = (q̄ − g h_f Δt ∂η/∂x) / (1 + g Δt n² |q| / h_f^(7/3))          (Bates et al. 2010, eq. 11)

with water surface ``η = z + h``, flow depth ``h_f = max(η_L, η_R) − max(z_L, z_R)`` on the face and Manning's
``n`` (semi-implicit friction), then ``h += Δt (Σ q_in − Σ q_out) / Δx``. ``q̄ = θ q + (1 − θ)/2 (q_prev + q_next)``
mixes in the neighbouring faces along the flow direction (de Almeida et al. 2012, WRR 48 W05528; ``θ = 1`` is the
original scheme): without it deep, slowly damped water (a filled basin) grows a checkerboard oscillation.

The time step is adaptive, ``Δt = α / (sqrt(g h_max) sqrt(1/Δx² + 1/Δy²))`` with ``α = 0.7``, never longer than
``max_dt_s``. Bates et al. write ``α Δx / sqrt(g h_max)`` (their eq. 12); that form is the 1-D Courant number, and
in 2-D the scheme's linear stability limit is the 2-D number above ≤ 1 (``α`` ≈ 0.71 in their form). At their
``α = 0.7`` a filled bowl oscillated without end in our verification test, so ``α`` here applies to the 2-D
Courant number (a grid of one row or column is 1-D and uses its one spacing).

Stated assumptions
------------------
- Wet/dry: a face carries flow only where ``h_f > depth_threshold_m`` (default 1 mm); shallower films stay put.
- No negative depths: before depths are updated, the outflow of every cell in a step is scaled down so that it
  never exceeds the water the cell holds (inflows in the same step are not counted). Every face moves one and the
  same volume out of one cell and into its neighbour, so volume is conserved up to floating-point rounding.
- Boundary: ``"closed"`` (walls at the grid edges) or ``"open"`` (free overfall: water at an edge cell leaves at
  the critical discharge ``q = sqrt(g) h^(3/2)`` per unit width; nothing flows in). Cells whose height is NaN
  (nodata) are walls.
- Sources add their volume ``rate(t_mid) · Δt`` to their cell at the start of a step (``t_mid`` the middle of the
  step); ``volume_in_m3`` counts exactly what was added. A step is also short enough for the depth a source
  brings into its cell, and ends on a source's rate breakpoints (so a piecewise-constant hydrograph enters exactly).
- No rainfall, infiltration, drainage into sewers or buildings: the surface keeps every litre until it leaves at
  an open edge. Ground is bare terrain (buildings are not in the DEM unless the DEM has them).
- Only a window around the wet cells is computed (the bounding box of the water plus a dry margin, grown as the
  water spreads; faces outside it are dry), so the cost follows the flooded area's bounding box, not the whole
  DEM. A flow that runs down a long diagonal valley makes that box large (see ``bench/bench_hazards_flood.py``).

Grid and coordinates
--------------------
``z`` is (ny, nx). A plain array is placed with the affine ``transform = (a, b, c, d, e, f)`` (GDAL order) from
pixel-corner ``(col, row)`` to local ``x = a col + b row + c``, ``y = d col + e row + f``; without one, cell
``[i, j]`` covers ``x ∈ [j Δx, (j+1) Δx]``, ``y ∈ [i Δy, (i+1) Δy]`` (row 0 at y = 0). :meth:`FloodModel.from_terrain`
takes a :class:`~twin.city.terrain.Terrain`'s own transform (rows usually run south from the north edge).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from twin.errors import InputError
from twin.typing import BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

    from twin.city.terrain import Terrain

log = logging.getLogger(__name__)

G = 9.81
"""Gravity, m/s²."""
VEHICLE_DEPTH_M = 0.3
"""Water deeper than this closes a road to ordinary vehicles (see VALIDATION.md)."""
PEOPLE_DEPTH_M = 0.5
"""Water deeper than this stops pedestrians."""
_MARGIN = 8  # cells added on a side when the computed window has to grow


class Grid(NamedTuple):
    """Placement of a (ny, nx) grid: ``transform`` (6,) affine pixel-corner → local metres, ``shape`` (ny, nx)."""

    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    @property
    def cell_size(self) -> tuple[float, float]:
        """(Δx along columns, Δy along rows) in metres."""
        a, b, _, d, e, _ = self.transform
        return math.hypot(a, d), math.hypot(b, e)

    def cells_of(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray, BoolArray]:
        """Cell ``(row, col)`` holding each point, and whether it is inside the grid.

        ``x``, ``y`` : (n,) float64 local metres. Returns ``rows``, ``cols`` (n,) int64 (clipped into the grid)
        and ``inside`` (n,) bool. A point on a shared cell edge belongs to the cell of larger index.
        """
        a, b, c, d, e, f = self.transform
        xs = np.asarray(x, dtype=np.float64).reshape(-1) - c
        ys = np.asarray(y, dtype=np.float64).reshape(-1) - f
        det = a * e - b * d
        col = (e * xs - b * ys) / det
        row = (a * ys - d * xs) / det
        ny, nx = self.shape
        inside = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
        ci = np.clip(np.floor(np.nan_to_num(col, nan=-1.0)), 0, nx - 1).astype(np.int64)
        ri = np.clip(np.floor(np.nan_to_num(row, nan=-1.0)), 0, ny - 1).astype(np.int64)
        return ri, ci, inside

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """(ny, nx) float64 local x and y of every cell centre."""
        ny, nx = self.shape
        a, b, c, d, e, f = self.transform
        col, row = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
        return a * col + b * row + c, d * col + e * row + f


def _check_grid(transform: Sequence[float], shape: tuple[int, int], source: str | None) -> Grid:
    t = tuple(float(v) for v in np.asarray(transform, dtype=np.float64).reshape(-1))
    if len(t) != 6 or not all(math.isfinite(v) for v in t):
        raise InputError(
            source, f"transform must be 6 finite floats (a, b, c, d, e, f), got {t}", element="transform"
        )
    a, b, _, d, e, _ = t
    if a * e - b * d == 0.0:
        raise InputError(source, f"transform {t} is singular (zero cell area)", element="transform")
    if abs(a * b + d * e) > 1e-9 * math.hypot(a, d) * math.hypot(b, e):
        raise InputError(
            source, f"transform {t} is sheared: grid axes must be orthogonal", element="transform"
        )
    return Grid(t, shape)  # type: ignore[arg-type]


Rate = Callable[[float], float]


class FloodModel:
    """Local inertial 2-D flood model on a DEM grid (see the module docstring for scheme and assumptions).

    Parameters
    ----------
    z : (ny, nx) float64 ground height, metres; NaN cells are walls (nodata).
    cell_m : cell size in metres, one number (square cells) or ``(Δx, Δy)``; ignored when ``transform`` is given
        (the sizes come from it).
    manning_n : Manning's n, s/m^(1/3): a number or a (ny, nx) array (a face uses the mean of its two cells).
    boundary : ``"closed"`` or ``"open"`` (free overfall at the grid edges).
    transform : optional (6,) affine pixel-corner → local metres (orthogonal axes); default see module doc.
    depth_threshold_m : wet/dry threshold on the face flow depth, m.
    alpha : coefficient of the 2-D Courant condition (0 < alpha ≤ 1).
    theta : de Almeida et al. (2012) weighting, 0.5 ≤ theta ≤ 1 (1 = Bates et al. 2010 as published).
    max_dt_s : longest internal step, s.
    initial_depth : optional (ny, nx) float64 starting depth, m (≥ 0; 0 on nodata cells).
    source : name of where the DEM came from, for error messages.

    State: ``depth`` and ``max_depth`` (ny, nx) m; ``qx`` (ny, nx−1) and ``qy`` (ny−1, nx) face discharges per
    unit width, m²/s, positive towards increasing column / row; ``t_s`` model time, s; ``steps`` internal steps
    so far; ``volume_in_m3`` (sources and initial water), ``volume_out_m3`` (through open edges) and
    ``volume_stored_m3``, m³.
    """

    def __init__(
        self,
        z: FloatArray,
        cell_m: float | tuple[float, float] = 1.0,
        *,
        manning_n: float | FloatArray = 0.03,
        boundary: str = "closed",
        transform: Sequence[float] | None = None,
        depth_threshold_m: float = 1e-3,
        alpha: float = 0.7,
        theta: float = 0.8,
        max_dt_s: float = 10.0,
        initial_depth: FloatArray | None = None,
        source: str | None = None,
    ):
        zz = np.array(z, dtype=np.float64)
        if zz.ndim != 2 or min(zz.shape) < 1:
            raise InputError(
                source, f"ground heights must be a (ny, nx) array, got shape {zz.shape}", element="z"
            )
        ny, nx = zz.shape
        if transform is None:
            dx, dy = (float(cell_m), float(cell_m)) if np.ndim(cell_m) == 0 else map(float, cell_m)  # type: ignore[arg-type]
            if not (math.isfinite(dx) and math.isfinite(dy) and dx > 0 and dy > 0):
                raise InputError(source, f"cell_m must be > 0, got {cell_m!r}", element="cell_m")
            transform = (dx, 0.0, 0.0, 0.0, dy, 0.0)
        self.grid = _check_grid(transform, (ny, nx), source)
        self.dx, self.dy = self.grid.cell_size
        if boundary not in ("closed", "open"):
            raise InputError(
                source, f"boundary must be 'closed' or 'open', got {boundary!r}", element="boundary"
            )
        for name, value, ok in (
            ("depth_threshold_m", depth_threshold_m, depth_threshold_m > 0),
            ("alpha", alpha, 0 < alpha <= 1),
            ("theta", theta, 0.5 <= theta <= 1),
            ("max_dt_s", max_dt_s, max_dt_s > 0),
        ):
            if not (math.isfinite(value) and ok):
                raise InputError(source, f"{name} = {value!r} is out of range", element=name)
        n = np.broadcast_to(np.asarray(manning_n, dtype=np.float64), (ny, nx))
        if not (np.isfinite(n).all() and (n >= 0).all()):
            raise InputError(source, "manning_n must be finite and >= 0 everywhere", element="manning_n")
        if not (np.isfinite(zz) | np.isnan(zz)).all():
            raise InputError(source, "ground heights must be finite (NaN marks nodata)", element="z")
        self.source = source
        self.boundary = boundary
        self.threshold = float(depth_threshold_m)
        self.alpha = float(alpha)
        self.theta = float(theta)
        # 2-D Courant number c Δt sqrt(1/Δx² + 1/Δy²): only directions that have faces count (a single row is 1-D)
        inv2 = (1.0 / self.dx**2 if nx > 1 else 0.0) + (1.0 / self.dy**2 if ny > 1 else 0.0)
        self._inv_spacing = math.sqrt(inv2) if inv2 > 0 else 1.0 / min(self.dx, self.dy)
        self.max_dt_s = float(max_dt_s)
        self.active: BoolArray = ~np.isnan(zz)
        if not self.active.any():
            raise InputError(source, "every ground height is nodata", element="z")
        # nodata cells become very high walls; faces touching them are closed explicitly as well
        self.z = np.where(self.active, zz, np.nanmax(zz) + 1e6)
        self._open_x = self.active[:, :-1] & self.active[:, 1:]
        self._open_y = self.active[:-1, :] & self.active[1:, :]
        self._zmax_x = np.maximum(self.z[:, :-1], self.z[:, 1:])
        self._zmax_y = np.maximum(self.z[:-1, :], self.z[1:, :])
        self._n2_x = (0.5 * (n[:, :-1] + n[:, 1:])) ** 2
        self._n2_y = (0.5 * (n[:-1, :] + n[1:, :])) ** 2
        self.h = np.zeros((ny, nx))
        self.qx = np.zeros((ny, nx - 1))  # m²/s, positive towards increasing column
        self.qy = np.zeros((ny - 1, nx))  # m²/s, positive towards increasing row
        self._max = np.zeros((ny, nx))
        self._win: list[int] | None = None  # [i0, i1, j0, j1) computed window
        self.t_s = 0.0
        self.steps = 0
        self.volume_in_m3 = 0.0
        self.volume_out_m3 = 0.0
        self._sources: list[tuple[int, int, Rate]] = []
        self._breaks = np.empty(0)  # times where a source rate jumps: steps end on them
        if initial_depth is not None:
            h0 = np.asarray(initial_depth, dtype=np.float64)
            if h0.shape != (ny, nx) or not np.isfinite(h0).all() or (h0 < 0).any():
                raise InputError(
                    source,
                    f"initial_depth must be ({ny}, {nx}) finite and >= 0, got {h0.shape}",
                    element="initial_depth",
                )
            if (h0[~self.active] > 0).any():
                raise InputError(source, "initial_depth has water on nodata cells", element="initial_depth")
            self.h[:] = h0
            self._max[:] = h0
            self.volume_in_m3 = float(h0.sum()) * self.cell_area_m2
            wet = np.argwhere(h0 > 0)
            if len(wet):
                self._grow(
                    int(wet[:, 0].min()),
                    int(wet[:, 0].max()) + 1,
                    int(wet[:, 1].min()),
                    int(wet[:, 1].max()) + 1,
                )

    @classmethod
    def from_terrain(cls, terrain: Terrain, **options: Any) -> FloodModel:
        """A flood model on a :class:`~twin.city.terrain.Terrain` layer's heightfield, in its transform."""
        options.setdefault("source", terrain.source)
        return cls(terrain.heights, transform=tuple(terrain.transform), **options)

    # -- state ---------------------------------------------------------------------------------------------------
    @property
    def cell_area_m2(self) -> float:
        return self.dx * self.dy

    @property
    def depth(self) -> FloatArray:
        """(ny, nx) float64 water depth, m (read-only view)."""
        v = self.h.view()
        v.flags.writeable = False
        return v

    @property
    def max_depth(self) -> FloatArray:
        """(ny, nx) float64 largest depth each cell has had so far, m (read-only view)."""
        v = self._max.view()
        v.flags.writeable = False
        return v

    @property
    def volume_stored_m3(self) -> float:
        """Water on the grid now, m³."""
        return float(self.h.sum()) * self.cell_area_m2

    def volume_error(self) -> float:
        """``(in − out − stored) / in`` (0 if nothing came in): the relative volume balance error."""
        if self.volume_in_m3 == 0.0:
            return 0.0
        return (self.volume_in_m3 - self.volume_out_m3 - self.volume_stored_m3) / self.volume_in_m3

    def depth_at(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Depth of the cell holding each point, m. ``x``, ``y`` : (n,) float64 local metres → (n,) float64;
        NaN outside the grid."""
        r, c, inside = self.grid.cells_of(x, y)
        return np.where(inside, self.h[r, c], np.nan)

    def velocity(self) -> tuple[FloatArray, FloatArray]:
        """(ny, nx) float64 cell-centre velocity components along columns and rows, m/s (face discharges averaged
        to the centre and divided by the depth; 0 where the depth is below the wet/dry threshold)."""
        ny, nx = self.h.shape
        qc = np.zeros((ny, nx))
        qr = np.zeros((ny, nx))
        qc[:, :-1] += 0.5 * self.qx
        qc[:, 1:] += 0.5 * self.qx
        qr[:-1, :] += 0.5 * self.qy
        qr[1:, :] += 0.5 * self.qy
        wet = self.h > self.threshold
        hs = np.where(wet, self.h, 1.0)
        return np.where(wet, qc / hs, 0.0), np.where(wet, qr / hs, 0.0)

    # -- sources -------------------------------------------------------------------------------------------------
    def add_source(
        self, x: float, y: float, rate: float | Rate, *, breakpoints_s: Sequence[float] | None = None
    ) -> int:
        """Add a point inflow at local ``(x, y)`` metres; ``rate`` is m³/s, a number or a function of the model
        time in seconds (e.g. :meth:`twin.sim.hydraulics.BurstResult.outflow_fn`). Returns the source index.

        ``breakpoints_s`` : times (s) where the rate jumps; internal steps end on them, so a piecewise-constant
        rate enters exactly. A function may carry them itself as an attribute ``breakpoints_s``."""
        r, c, inside = self.grid.cells_of(np.array([x]), np.array([y]))
        where = f"source at ({x}, {y})"
        if not inside[0]:
            raise InputError(self.source, f"{where} is outside the flood grid", element="add_source")
        if not self.active[r[0], c[0]]:
            raise InputError(self.source, f"{where} falls on a nodata cell", element="add_source")
        if callable(rate):
            fn = rate
        else:
            value = float(rate)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(
                    self.source, f"{where}: rate must be >= 0 m³/s, got {rate!r}", element="add_source"
                )

            def fn(_t: float, _v: float = value) -> float:
                return _v

        breaks = breakpoints_s if breakpoints_s is not None else getattr(rate, "breakpoints_s", None)
        if breaks is not None:
            b = np.asarray(breaks, dtype=np.float64).reshape(-1)
            if not np.isfinite(b).all():
                raise InputError(self.source, f"{where}: breakpoints_s must be finite", element="add_source")
            self._breaks = np.unique(np.concatenate([self._breaks, b]))
        self._sources.append((int(r[0]), int(c[0]), fn))
        self._grow(int(r[0]), int(r[0]) + 1, int(c[0]), int(c[0]) + 1)
        return len(self._sources) - 1

    # -- stepping ------------------------------------------------------------------------------------------------
    def _grow(self, i0: int, i1: int, j0: int, j1: int) -> None:
        """Make the computed window cover rows [i0, i1) and columns [j0, j1) plus a margin of dry cells."""
        ny, nx = self.h.shape
        m = _MARGIN
        if self._win is None:
            self._win = [max(i0 - m, 0), min(i1 + m, ny), max(j0 - m, 0), min(j1 + m, nx)]
            return
        w = self._win
        w[0] = min(w[0], max(i0 - m, 0))
        w[1] = max(w[1], min(i1 + m, ny))
        w[2] = min(w[2], max(j0 - m, 0))
        w[3] = max(w[3], min(j1 + m, nx))

    def _check_window(self) -> None:
        """Grow the window where water reached its outer ring (water moves at most one cell per step, so a dry
        ring guarantees no flow crosses the window's edge)."""
        if self._win is None:
            return
        i0, i1, j0, j1 = self._win
        ny, nx = self.h.shape
        h = self.h
        if i0 > 0 and h[i0, j0:j1].any():
            self._grow(i0, i1, j0, j1)
        if i1 < ny and h[i1 - 1, j0:j1].any():
            self._grow(i0, i1, j0, j1)
        if j0 > 0 and h[i0:i1, j0].any():
            self._grow(i0, i1, j0, j1)
        if j1 < nx and h[i0:i1, j1 - 1].any():
            self._grow(i0, i1, j0, j1)

    def stable_dt(self) -> float:
        """The next internal step, s: ``alpha / (sqrt(g h_max) · sqrt(1/Δx² + 1/Δy²))`` capped at ``max_dt_s``."""
        if self._win is None:
            return self.max_dt_s
        i0, i1, j0, j1 = self._win
        hmax = float(self.h[i0:i1, j0:j1].max())
        if hmax <= self.threshold:
            return self.max_dt_s
        return min(self.max_dt_s, self.alpha / (math.sqrt(G * hmax) * self._inv_spacing))

    def _next_dt(self, longest: float) -> float:
        """The stable step, also for the depth the sources will have added by its end (a strong source into a dry
        cell would otherwise get a step sized for dry ground)."""
        dt = min(self.stable_dt(), longest)
        if not self._sources:
            return dt
        hmax = (
            float(self.h[self._win[0] : self._win[1], self._win[2] : self._win[3]].max())
            if self._win
            else 0.0
        )
        for _ in range(4):
            h_src = 0.0
            for r, c, fn in self._sources:
                q = float(fn(self.t_s + 0.5 * dt))
                if math.isfinite(q) and q > 0:
                    h_src = max(h_src, self.h[r, c] + q * dt / self.cell_area_m2)
            if h_src <= max(hmax, self.threshold):
                break
            limit = self.alpha / (math.sqrt(G * h_src) * self._inv_spacing)
            if limit >= dt:
                break
            dt = limit
        return dt

    def advance(self, dt_s: float) -> int:
        """Advance the model by ``dt_s`` seconds in adaptive internal steps; returns the number of steps taken."""
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise InputError(self.source, f"advance() needs a finite dt_s >= 0, got {dt_s!r}", element="dt_s")
        end = self.t_s + dt_s
        taken = 0
        while self.t_s < end:
            stop = end
            k = int(np.searchsorted(self._breaks, self.t_s, side="right"))
            if k < len(self._breaks) and self._breaks[k] < end:
                stop = float(self._breaks[k])
            dt = self._next_dt(stop - self.t_s)
            if stop - (self.t_s + dt) < 1e-9 * max(
                1.0, abs(stop)
            ):  # avoid a sliver of a step before the stop
                dt = stop - self.t_s
            self._step(dt)
            self.t_s = stop if dt == stop - self.t_s else self.t_s + dt
            taken += 1
        self.steps += taken
        return taken

    def _step(self, dt: float) -> None:
        area = self.cell_area_m2
        tm = self.t_s + 0.5 * dt
        for r, c, fn in self._sources:
            q = float(fn(tm))
            if not (math.isfinite(q) and q >= 0):
                raise InputError(self.source, f"source rate at t = {tm:g} s is {q!r}; it must be >= 0 m³/s")
            if q > 0:
                vol = q * dt
                self.h[r, c] += vol / area
                self.volume_in_m3 += vol
        if self._win is None:
            return
        self._check_window()
        i0, i1, j0, j1 = self._win
        h = self.h[i0:i1, j0:j1]
        z = self.z[i0:i1, j0:j1]
        eta = z + h
        thr = self.threshold
        dx, dy = self.dx, self.dy
        gdt = G * dt

        qx = self.qx[i0:i1, j0 : j1 - 1]
        qy = self.qy[i0 : i1 - 1, j0:j1]
        qx[:] = self._inertial(
            qx, eta[:, :-1], eta[:, 1:], self._zmax_x[i0:i1, j0 : j1 - 1], self._open_x[i0:i1, j0 : j1 - 1],
            self._n2_x[i0:i1, j0 : j1 - 1], dx, gdt, thr, self.theta, 1,
        )  # fmt: skip
        qy[:] = self._inertial(
            qy, eta[:-1, :], eta[1:, :], self._zmax_y[i0 : i1 - 1, j0:j1], self._open_y[i0 : i1 - 1, j0:j1],
            self._n2_y[i0 : i1 - 1, j0:j1], dy, gdt, thr, self.theta, 0,
        )  # fmt: skip

        # outgoing volume of every cell in this step (depth units: volume / cell area)
        ax, ay = dt / dx, dt / dy
        out = np.zeros_like(h)
        for q, a, fwd, back in (
            (qx, ax, (slice(None), slice(None, -1)), (slice(None), slice(1, None))),
            (qy, ay, (slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ):
            part = np.maximum(q, 0.0)
            part *= a
            out[fwd] += part
            np.minimum(q, 0.0, out=part)
            part *= a
            out[back] -= part
        edges = self._edge_outflow(h, i0, i1, j0, j1, ax, ay) if self.boundary == "open" else []
        for sl, qb, a in edges:
            out[sl] += qb * a
        # limit: a cell cannot send out more than it holds
        over = out > h
        if over.any():
            f = np.ones_like(h)
            np.divide(h, out, out=f, where=over)
            qx *= np.where(qx > 0, f[:, :-1], f[:, 1:])
            qy *= np.where(qy > 0, f[:-1, :], f[1:, :])
            edges = [(sl, qb * f[sl], a) for sl, qb, a in edges]
        # move the water: the same depth increment leaves one cell and enters its neighbour
        mx = qx * ax
        my = qy * ay
        h[:, :-1] -= mx
        h[:, 1:] += mx
        h[:-1, :] -= my
        h[1:, :] += my
        lost = 0.0
        for sl, qb, a in edges:
            d = qb * a
            h[sl] -= d
            lost += float(d.sum())
        self.volume_out_m3 += lost * area
        np.maximum(h, 0.0, out=h)  # rounding only: the limiter keeps every depth >= 0
        np.maximum(self._max[i0:i1, j0:j1], h, out=self._max[i0:i1, j0:j1])

    @staticmethod
    def _inertial(
        q: FloatArray,
        eta_a: FloatArray,
        eta_b: FloatArray,
        zmax: FloatArray,
        open_: BoolArray,
        n2: FloatArray,
        spacing: float,
        gdt: float,
        thr: float,
        theta: float,
        axis: int,
    ) -> FloatArray:
        """Bates et al. (2010) eq. 11 on the faces between cells a and b (flow a → b positive), with de Almeida et
        al. (2012) weighting ``theta`` of the faces before and after along ``axis`` (the flow direction)."""
        hf = np.maximum(eta_a, eta_b)
        hf -= zmax
        wet = hf > thr
        wet &= open_
        np.maximum(hf, thr, out=hf)  # any positive depth will do on dry faces: they are zeroed at the end
        qm = q.copy()
        if theta < 1.0 and q.shape[axis] > 1:
            # de Almeida et al. (2012): q̄ = θ q + (1 − θ)/2 (q_prev + q_next), written as a diffusion of q along
            # the flow axis; a face at the end of a row or column stands in for its missing neighbour itself
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            d = q[tuple(lo)] - q[tuple(hi)]
            d *= 0.5 * (1.0 - theta)
            qm[tuple(hi)] += d
            qm[tuple(lo)] -= d
        num = eta_b - eta_a
        num *= -gdt / spacing
        num *= hf
        num += qm
        den = np.power(hf, 7.0 / 3.0)
        np.divide(np.abs(q), den, out=den)
        den *= n2
        den *= gdt
        den += 1.0
        num /= den
        num *= wet
        return num

    def _edge_outflow(
        self, h: FloatArray, i0: int, i1: int, j0: int, j1: int, ax: float, ay: float
    ) -> list[tuple[tuple[Any, Any], FloatArray, float]]:
        """Free-overfall outflow ``sqrt(g) h^1.5`` (m²/s) through the grid edges the window touches:
        a list of (window slice of the edge cells, discharge per unit width, dt / spacing)."""
        ny, nx = self.h.shape
        act = self.active[i0:i1, j0:j1]
        thr = self.threshold
        found = []
        for on_edge, sl, a in (
            (j0 == 0, (slice(None), 0), ax),
            (j1 == nx, (slice(None), -1), ax),
            (i0 == 0, (0, slice(None)), ay),
            (i1 == ny, (-1, slice(None)), ay),
        ):
            if on_edge:
                hb = h[sl]
                q = np.where((hb > thr) & act[sl], math.sqrt(G) * hb * np.sqrt(hb), 0.0)
                found.append((sl, q, a))
        return found


# -- roads ----------------------------------------------------------------------------------------------------------
def max_depth_along(
    polylines: Sequence[FloatArray], depth: FloatArray, grid: Grid, *, step_m: float | None = None
) -> FloatArray:
    """Largest water depth along each polyline.

    ``polylines`` : sequence of (k_i, 2) float64 local metres (k_i ≥ 1). ``depth`` : (ny, nx) float64 m on
    ``grid``. Each line is sampled every ``step_m`` (default: half the smaller cell size) including its vertices;
    a sample takes the depth of the cell it falls in, 0 outside the grid. Returns (n,) float64 metres.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.shape != tuple(grid.shape):
        raise ValueError(f"depth must be {tuple(grid.shape)} like the grid, got {d.shape}")
    step = 0.5 * min(grid.cell_size) if step_m is None else float(step_m)
    if not step > 0:
        raise ValueError(f"step_m must be > 0, got {step_m!r}")
    n = len(polylines)
    out = np.zeros(n)
    if n == 0:
        return out
    starts, ends, owner = [], [], []
    single = []
    for k, line in enumerate(polylines):
        p = np.asarray(line, dtype=np.float64).reshape(-1, 2)
        if len(p) == 0:
            raise ValueError(f"polyline {k} has no points")
        if len(p) == 1:
            single.append((k, p[0]))
            continue
        starts.append(p[:-1])
        ends.append(p[1:])
        owner.append(np.full(len(p) - 1, k, dtype=np.int64))
    pts = [np.array([p for _, p in single]).reshape(-1, 2)]
    own = [np.array([k for k, _ in single], dtype=np.int64)]
    if starts:
        a = np.concatenate(starts)
        b = np.concatenate(ends)
        seg_owner = np.concatenate(owner)
        length = np.hypot(*(b - a).T)
        m = np.maximum(np.ceil(length / step).astype(np.int64), 1)  # pieces per segment; samples = m + 1
        rep = np.repeat(np.arange(len(a)), m + 1)
        first = np.concatenate([[0], np.cumsum(m + 1)[:-1]])
        s = (np.arange(len(rep)) - first[rep]) / m[rep]
        pts.append(a[rep] + s[:, None] * (b - a)[rep])
        own.append(seg_owner[rep])
    xy = np.concatenate(pts)
    who = np.concatenate(own)
    r, c, inside = grid.cells_of(xy[:, 0], xy[:, 1])
    vals = np.where(inside, d[r, c], 0.0)
    np.maximum.at(out, who, vals)
    return out


def flooded_edges(
    polylines: Sequence[FloatArray], depth: FloatArray, grid: Grid, *, threshold_m: float = VEHICLE_DEPTH_M
) -> IntArray:
    """Indices (k,) int64 of the polylines whose largest depth along the line exceeds ``threshold_m``."""
    return np.flatnonzero(max_depth_along(polylines, depth, grid) > threshold_m).astype(np.int64)


def road_closures(
    edges: pd.DataFrame,
    depth: FloatArray,
    grid: Grid,
    *,
    vehicles_m: float = VEHICLE_DEPTH_M,
    people_m: float = PEOPLE_DEPTH_M,
) -> dict[str, list[str]]:
    """Road edges to close: ``{"vehicles": [edge ids deeper than vehicles_m], "people": [… than people_m]}``.

    ``edges`` : the roads layer's edge table (``id`` and ``shape`` (n, 2) local metres). ``depth`` on ``grid`` as
    in :func:`max_depth_along` (pass a model's ``max_depth`` for closures over the whole run so far).
    """
    dmax = max_depth_along(list(edges["shape"]), depth, grid)
    ids = edges["id"].astype(str).to_numpy()
    return {"vehicles": ids[dmax > vehicles_m].tolist(), "people": ids[dmax > people_m].tolist()}
