"""Walkable polygons → cell rasters and wall segments for the crowd model (used by :mod:`twin.sim.crowd_space`).

Cell convention (as :class:`twin.spatial.DistanceField`): cell ``(iy, ix)`` spans ``[x0 + ix*h, x0 + (ix+1)*h) x
[y0 + iy*h, y0 + (iy+1)*h)``, its centre is ``(x0 + (ix+0.5)*h, y0 + (iy+0.5)*h)``.

The walkability rule (:func:`rasterize`)
----------------------------------------
1. *Half coverage.* A cell is walkable if at least half of it lies inside the polygon, measured on a regular
   4 x 4 grid of sample points inside the cell (at offsets (i + 1/2)/4 of h). For an axis-aligned passage whose
   width is a whole number n of cells (a 1 m door at h = 0.2 m) this gives at least n cells wherever the
   passage lies; a passage of any width w keeps at least ``ceil(w/h) - 1`` cells. With h a multiple of 5 cm
   and the raster aligned to multiples of h, no sample ever lies on a coordinate that is a multiple of 5 cm, so
   round-numbered polygons never put a sample on their border (no ties).
2. *Thin walls stay closed.* Half coverage alone would let a wall thinner than a cell vanish (both cells beside
   it are more than half walkable). So every pair of 4-neighbouring walkable cells at least one of which meets
   the polygon's border is tested: the straight segment between their representative points (the centre, or
   the inside sample nearest to it when the centre is outside) must lie in the polygon. Where it does not, a
   wall or obstacle separates them and the cell of the pair that is less inside (fewer inside samples, then the
   centre farther outside / closer to the border) is made non-walkable. No walkable 4-neighbour pair is then
   separated by a wall; the distance field's stencil moves need every swept cell walkable, so they cannot cross
   such a wall either.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from twin.typing import FloatArray

log = logging.getLogger(__name__)

SAMPLES_PER_AXIS = 4
"""Sample points per cell and axis for the coverage rule (4 x 4 = 16 per cell)."""

__all__ = [
    "SAMPLES_PER_AXIS",
    "aligned_grid",
    "boundary_segments",
    "cell_centres",
    "centre_mask",
    "rasterize",
]


def aligned_grid(
    bounds: tuple[float, float, float, float], cell_size: float, *, margin_cells: int = 1
) -> tuple[FloatArray, int, int]:
    """Origin (2,) float64 metres and (ny, nx) of a raster covering ``bounds`` (minx, miny, maxx, maxy).

    The origin is a multiple of ``cell_size`` and the raster has ``margin_cells`` empty cells on every side.
    """
    h = float(cell_size)
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    x0 = (math.floor(minx / h) - margin_cells) * h
    y0 = (math.floor(miny / h) - margin_cells) * h
    nx = int(math.ceil((maxx - x0) / h)) + margin_cells
    ny = int(math.ceil((maxy - y0) / h)) + margin_cells
    return np.array([x0, y0], dtype=np.float64), ny, nx


def cell_centres(origin: FloatArray, cell_size: float, iy: np.ndarray, ix: np.ndarray) -> FloatArray:
    """(k, 2) float64 metres: centres of cells (iy, ix) (k,) int."""
    h = float(cell_size)
    return np.column_stack([origin[0] + (ix + 0.5) * h, origin[1] + (iy + 0.5) * h])


def _window(
    geom: BaseGeometry, origin: FloatArray, h: float, ny: int, nx: int
) -> tuple[int, int, int, int] | None:
    """Index window (iy0, iy1, ix0, ix1), half-open, of the cells that can meet ``geom``; None if none."""
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    ix0 = max(int(math.floor((minx - origin[0]) / h)) - 1, 0)
    iy0 = max(int(math.floor((miny - origin[1]) / h)) - 1, 0)
    ix1 = min(int(math.ceil((maxx - origin[0]) / h)) + 1, nx)
    iy1 = min(int(math.ceil((maxy - origin[1]) / h)) + 1, ny)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    return iy0, iy1, ix0, ix1


def centre_mask(geom: BaseGeometry, origin: FloatArray, cell_size: float, ny: int, nx: int) -> np.ndarray:
    """(ny, nx) bool: cells whose centre lies in ``geom`` or on its border."""
    h = float(cell_size)
    out = np.zeros((ny, nx), dtype=bool)
    win = _window(geom, origin, h, ny, nx)
    if win is None:
        return out
    iy0, iy1, ix0, ix1 = win
    iy, ix = np.mgrid[iy0:iy1, ix0:ix1]
    c = cell_centres(origin, h, iy.ravel(), ix.ravel())
    shapely.prepare(geom)
    out[iy0:iy1, ix0:ix1] = shapely.intersects_xy(geom, c[:, 0], c[:, 1]).reshape(iy.shape)
    return out


def rasterize(
    geom: BaseGeometry, origin: FloatArray, cell_size: float, ny: int, nx: int
) -> tuple[np.ndarray, np.ndarray]:
    """Walkable cells of one level (see the module docstring for the rule).

    geom : the walkable (Multi)Polygon of the level, metres; holes are obstacles.
    origin : (2,) float64 metres, lower-left corner of cell (0, 0).
    Returns ``walkable`` (ny, nx) bool and ``coverage`` (ny, nx) float64 in [0, 1] (share of inside samples).
    """
    h = float(cell_size)
    k = SAMPLES_PER_AXIS
    walkable = np.zeros((ny, nx), dtype=bool)
    coverage = np.zeros((ny, nx), dtype=np.float64)
    win = _window(geom, origin, h, ny, nx)
    if win is None:
        return walkable, coverage
    iy0, iy1, ix0, ix1 = win
    wy, wx = iy1 - iy0, ix1 - ix0
    shapely.prepare(geom)
    off = (np.arange(k) + 0.5) / k * h
    # A cell whose square does not meet the outline lies wholly inside or outside: its centre decides for all its
    # samples. Only the cells on the outline are sampled (k x k points each; samples[row_of[y, x]] is (ky, kx)).
    touch = _cells_on_border(boundary_segments(geom), origin, h, iy0, ix0, wy, wx)
    count = np.zeros((wy, wx), dtype=np.int64)
    cy, cx = np.nonzero(~touch)
    centre_inside = shapely.contains_xy(
        geom, origin[0] + (ix0 + cx + 0.5) * h, origin[1] + (iy0 + cy + 0.5) * h
    )
    count[cy[centre_inside], cx[centre_inside]] = k * k
    by, bx = np.nonzero(touch)
    row_of = np.full((wy, wx), -1, dtype=np.int64)
    row_of[by, bx] = np.arange(len(by))
    px = origin[0] + (ix0 + bx)[:, None] * h + off[None, :]  # (m, kx)
    py = origin[1] + (iy0 + by)[:, None] * h + off[None, :]  # (m, ky)
    shape = (len(by), k, k)
    samples = shapely.contains_xy(
        geom, np.broadcast_to(px[:, None, :], shape), np.broadcast_to(py[:, :, None], shape)
    )  # (m, ky, kx)
    count[by, bx] = samples.sum(axis=(1, 2))
    cov = count / float(k * k)
    walk = count * 2 >= k * k
    coverage[iy0:iy1, ix0:ix1] = cov
    walkable[iy0:iy1, ix0:ix1] = walk

    # -- thin walls: test 4-neighbour pairs near the border -----------------------------------------------------
    if not walk.any():
        return walkable, coverage
    border = geom.boundary
    on_border = touch & walk

    centres = np.stack(
        np.meshgrid(origin[0] + (ix0 + np.arange(wx) + 0.5) * h, origin[1] + (iy0 + np.arange(wy) + 0.5) * h),
        axis=-1,
    )
    pairs = []
    for dy, dx in ((0, 1), (1, 0)):
        a = walk[: wy - dy, : wx - dx] & walk[dy:, dx:]
        a &= on_border[: wy - dy, : wx - dx] | on_border[dy:, dx:]
        py, px = np.nonzero(a)
        pairs.append(np.column_stack([py, px, py + dy, px + dx]))
    pairs_arr = np.concatenate(pairs) if pairs else np.zeros((0, 4), dtype=np.int64)
    if len(pairs_arr) == 0:
        return walkable, coverage
    cells = np.unique(np.concatenate([pairs_arr[:, :2], pairs_arr[:, 2:]]), axis=0)
    rep = centres[cells[:, 0], cells[:, 1]].copy()
    centre_in = shapely.contains_xy(geom, rep[:, 0], rep[:, 1])
    # representative point of a cell whose centre is outside: the inside sample nearest to the centre
    sample_d = (off - 0.5 * h) ** 2
    d2 = sample_d[:, None] + sample_d[None, :]  # (k, k) squared distance of sample (i, j) from the centre
    order = np.argsort(d2.ravel(), kind="stable")
    out_c = np.flatnonzero(~centre_in)
    if out_c.size:
        # (a walkable cell whose centre is outside is partly covered: it meets the outline, so it was sampled)
        ins = samples[row_of[cells[out_c, 0], cells[out_c, 1]]].reshape(out_c.size, k * k)
        first = order[np.argmax(ins[:, order], axis=1)]
        jy, jx = np.divmod(first, k)
        rep[out_c, 0] = origin[0] + (ix0 + cells[out_c, 1]) * h + off[jx]
        rep[out_c, 1] = origin[1] + (iy0 + cells[out_c, 0]) * h + off[jy]
    lookup = np.full(wy * wx, -1, dtype=np.int64)
    lookup[cells[:, 0] * wx + cells[:, 1]] = np.arange(len(cells))
    ia = lookup[pairs_arr[:, 0] * wx + pairs_arr[:, 1]]
    ib = lookup[pairs_arr[:, 2] * wx + pairs_arr[:, 3]]
    lines = shapely.linestrings(np.stack([rep[ia], rep[ib]], axis=1))
    separated = ~shapely.covered_by(lines, geom)
    if not separated.any():
        return walkable, coverage
    # score: inside samples first, then the signed distance of the centre to the border (inside positive)
    cen = centres[cells[:, 0], cells[:, 1]]
    dist = shapely.distance(border, shapely.points(cen))
    signed = np.where(centre_in, dist, -dist)
    score_count = count[cells[:, 0], cells[:, 1]]
    sa, sb = ia[separated], ib[separated]
    a_worse = (score_count[sa] < score_count[sb]) | (
        (score_count[sa] == score_count[sb]) & (signed[sa] <= signed[sb])
    )
    drop = np.where(a_worse, sa, sb)
    drop_cells = cells[np.unique(drop)]
    walkable[drop_cells[:, 0] + iy0, drop_cells[:, 1] + ix0] = False
    log.debug("rasterize: %d cells closed to keep thin walls closed", len(drop_cells))
    return walkable, coverage


def _cells_on_border(
    segments: FloatArray, origin: FloatArray, h: float, iy0: int, ix0: int, wy: int, wx: int
) -> np.ndarray:
    """(wy, wx) bool over the window from cell (iy0, ix0): the cells whose closed square meets one of the
    ``segments`` (w, 4) [x0, y0, x1, y1] metres.

    Each segment is cut into pieces no longer than a cell, so each piece can only meet the cells of its bounding
    box, at most 3 x 3 (4 x 4 taken, against rounding); those candidates are tested exactly (GEOS): a few per
    piece instead of every cell against the whole outline.
    """
    out = np.zeros((wy, wx), dtype=bool)
    if len(segments) == 0:
        return out
    seg = np.asarray(segments, dtype=np.float64)
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    parts = np.maximum(1, np.ceil(length / h).astype(np.int64))
    which = np.repeat(np.arange(len(seg)), parts)
    k = np.arange(len(which)) - np.repeat(np.cumsum(parts) - parts, parts)
    t0, t1 = k / parts[which], (k + 1) / parts[which]
    a, b = seg[which, :2], seg[which, 2:]
    p = a + (b - a) * t0[:, None]
    q = np.where((k + 1 == parts[which])[:, None], b, a + (b - a) * t1[:, None])  # (ends exactly)
    lo = np.floor((np.minimum(p, q) - origin) / h).astype(np.int64) - 1
    block = np.array([(dx, dy) for dy in range(4) for dx in range(4)])
    cand = lo[:, None, :] + block[None, :, :]  # (pieces, 16, 2) cell (x, y) indices
    cx, cy = cand[..., 0].ravel() - ix0, cand[..., 1].ravel() - iy0
    piece = np.repeat(np.arange(len(p)), len(block))
    ok = (cx >= 0) & (cx < wx) & (cy >= 0) & (cy < wy)
    cx, cy, piece = cx[ok], cy[ok], piece[ok]
    boxes = shapely.box(
        origin[0] + (cx + ix0) * h,
        origin[1] + (cy + iy0) * h,
        origin[0] + (cx + ix0 + 1) * h,
        origin[1] + (cy + iy0 + 1) * h,
    )
    lines = shapely.linestrings(np.stack([p, q], axis=1))
    hit = shapely.intersects(boxes, lines[piece])
    out[cy[hit], cx[hit]] = True
    return out


def boundary_segments(geom: BaseGeometry) -> FloatArray:
    """(w, 4) float64 rows [x0, y0, x1, y1], metres: the outline (outer rings and holes) of a (Multi)Polygon.

    Zero-length segments are dropped.
    """
    rows = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
            if len(xy) < 2:
                continue
            seg = np.column_stack([xy[:-1], xy[1:]])
            keep = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) > 1e-9
            rows.append(seg[keep])
    if not rows:
        return np.zeros((0, 4), dtype=np.float64)
    return np.ascontiguousarray(np.concatenate(rows), dtype=np.float64)


def centre_rule_space(
    levels: Sequence[BaseGeometry],
    exits: Sequence[tuple[int, BaseGeometry]],
    *,
    cell_size: float,
    pad: float = 0.4,
    storey_height: float = 3.0,
    inner_walls: Sequence[Sequence[float]] = (),
) -> dict[str, np.ndarray | float]:
    """The C++ crowd core's geometry inputs from one polygon per level, by the plain centre rule.

    A lighter alternative to :class:`twin.sim.crowd_space.CrowdSpace` for core-level tests and benchmarks that
    set up geometry directly: a cell is walkable if its centre lies in the level's polygon (no half-coverage or
    thin-wall rule); walls are the polygon rings minus the exit openings; ``exits`` are (level, polygon) pairs
    whose walkable cells become exit cells numbered in order; ``inner_walls`` are extra (level, x0, y0, x1, y1)
    segments (thin walls the raster does not know). All levels share one raster with a ``pad`` margin; level k
    lies at z = k × ``storey_height``. Returns the keyword arguments ``walkable, cell_size, origins, level_z,
    walls, wall_levels, exit_cells`` of ``twin.sim.crowd_core.CrowdSim``.
    """
    h = float(cell_size)
    b = np.array([p.bounds for p in levels])
    x0, y0 = b[:, 0].min() - pad, b[:, 1].min() - pad
    nx = int(np.ceil((b[:, 2].max() + pad - x0) / h))
    ny = int(np.ceil((b[:, 3].max() + pad - y0) / h))
    X, Y = np.meshgrid(x0 + (np.arange(nx) + 0.5) * h, y0 + (np.arange(ny) + 0.5) * h)
    n_levels = len(levels)
    walkable = np.zeros((n_levels, ny, nx), np.uint8)
    exit_cells = np.full((n_levels, ny, nx), -1, np.int32)
    walls: list[list[float]] = []
    wall_levels: list[int] = []
    for lv, poly in enumerate(levels):
        walkable[lv] = shapely.contains_xy(poly, X, Y)
        openings = [e for le, e in exits if le == lv]
        cut = shapely.union_all(openings).buffer(1e-9) if openings else None
        for ring in [poly.exterior, *poly.interiors]:
            lines = shapely.LineString(ring.coords)
            if cut is not None:
                lines = lines.difference(cut)
            for part in getattr(lines, "geoms", [lines]):
                c = np.asarray(part.coords)
                for u, v in zip(c[:-1], c[1:], strict=True):
                    if np.hypot(*(v - u)) > 1e-9:
                        walls.append([*u, *v])
                        wall_levels.append(lv)
    for lv, *seg in inner_walls:
        walls.append(list(seg))
        wall_levels.append(int(lv))
    for k, (lv, e) in enumerate(exits):
        exit_cells[lv][shapely.contains_xy(e, X, Y) & (walkable[lv] > 0)] = k
    return {
        "walkable": walkable,
        "cell_size": h,
        "origins": np.tile([x0, y0], (n_levels, 1)).astype(float),
        "level_z": np.arange(n_levels) * float(storey_height),
        "walls": np.array(walls, float).reshape(-1, 4),
        "wall_levels": np.array(wall_levels, np.int32),
        "exit_cells": exit_cells,
    }
