"""``Terrain``: a heightfield (DEM) in the city's local frame, with bilinear ``height_at`` and a render mesh.

The grid is stored as loaded: ``heights`` (ny, nx) float64 metres (local z, NaN where the source has no data) and
an affine ``transform`` from pixel coordinates to local metres,

    x = a * col + b * row + c
    y = d * col + e * row + f          (transform = (a, b, c, d, e, f), rasterio/GDAL order)

where ``(col, row)`` are pixel-corner coordinates: cell ``[i, j]`` covers ``j <= col <= j + 1``,
``i <= row <= i + 1`` and its value belongs to its centre ``(col, row) = (j + 0.5, i + 0.5)``. A north-up raster
has ``b = d = 0`` and ``e < 0``; a placement rotation keeps the grid exact by giving ``b, d != 0``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from twin.city.layer import read_arrays, write_arrays
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

# Fractional grid positions closer than this (in cells) to a whole cell-centre line are snapped onto it, so that
# ``height_at`` at a cell centre returns the cell's value exactly despite rounding in the inverse transform.
_SNAP = 1e-9


class Terrain:
    """A heightfield layer.

    Parameters
    ----------
    heights : (ny, nx) float64, metres in the local frame (z up); NaN marks cells without data.
    transform : (6,) float64 affine ``(a, b, c, d, e, f)`` from pixel-corner (col, row) to local (x, y) metres.
    id : layer id.
    source : the file it was loaded from.
    crs : name of the CRS of the local frame the grid lives in (``None`` if the city has none).
    source_crs : name of the CRS the file declared (or was declared for it), ``None`` if it had none.
    resampled : True if the grid was reprojected from ``source_crs`` into the city CRS (bilinear).
    """

    kind: ClassVar[str] = "terrain"

    def __init__(
        self,
        heights: FloatArray,
        transform: FloatArray | tuple[float, ...],
        *,
        id: str,
        source: str,
        crs: str | None = None,
        source_crs: str | None = None,
        resampled: bool = False,
    ):
        h = np.ascontiguousarray(heights, dtype=np.float64)
        if h.ndim != 2 or h.shape[0] < 1 or h.shape[1] < 1:
            raise ValueError(f"heights must be (ny, nx) float64 with ny, nx >= 1, got {h.shape}")
        t = np.asarray(transform, dtype=np.float64).reshape(-1)
        if t.shape != (6,) or not np.isfinite(t).all():
            raise ValueError(f"transform must be 6 finite floats (a, b, c, d, e, f), got {t.tolist()}")
        det = t[0] * t[4] - t[1] * t[3]
        if det == 0.0:
            raise ValueError(f"transform {t.tolist()} is singular (zero cell area)")
        self.heights = h
        self.transform = t
        self.id = id
        self.source = source
        self.crs = crs
        self.source_crs = source_crs
        self.resampled = bool(resampled)
        self._axis_aligned = t[1] == 0.0 and t[3] == 0.0
        self._det = det

    # -- geometry ------------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx): rows and columns of the grid."""
        return self.heights.shape  # type: ignore[return-value]

    @property
    def cell_size(self) -> tuple[float, float]:
        """(size along columns, size along rows) of one cell in metres."""
        a, b, _, d, e, _ = self.transform
        return (math.hypot(a, d), math.hypot(b, e))

    def _to_world(self, col: FloatArray, row: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, b, c, d, e, f = self.transform
        return a * col + b * row + c, d * col + e * row + f

    def _to_pixel(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, b, c, d, e, f = self.transform
        dx = x - c
        dy = y - f
        if self._axis_aligned:
            return dx / a, dy / e
        return (e * dx - b * dy) / self._det, (a * dy - d * dx) / self._det

    def cell_centres(self, rows: IntArray, cols: IntArray) -> FloatArray:
        """Local (x, y) of the centres of cells ``[rows[k], cols[k]]``.

        ``rows``, ``cols`` : (n,) integer indices. Returns (n, 2) float64 metres.
        """
        r = np.asarray(rows, dtype=np.float64).reshape(-1)
        c = np.asarray(cols, dtype=np.float64).reshape(-1)
        x, y = self._to_world(c + 0.5, r + 0.5)
        return np.column_stack([x, y])

    def height_at(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Ground height at local points by bilinear interpolation between cell centres.

        ``x``, ``y`` : (n,) float64 local metres. Returns (n,) float64 metres (local z).

        Conventions: a point outside the raster's extent gives NaN. Between the border of the raster and the
        outermost cell centres (within half a cell of the edge) the position is clamped onto the nearest
        row/column of centres, so values there come from the edge cells. A result is NaN when any cell with a
        non-zero bilinear weight is nodata; at a cell centre only that cell is needed, so it returns the cell's
        value exactly (positions within 1e-9 cell of a centre line are snapped onto it).
        """
        xs = np.asarray(x, dtype=np.float64).reshape(-1)
        ys = np.asarray(y, dtype=np.float64).reshape(-1)
        if xs.shape != ys.shape:
            raise ValueError(f"x and y must have the same shape (n,), got {xs.shape} and {ys.shape}")
        ny, nx = self.heights.shape
        u, v = self._to_pixel(xs, ys)
        out = np.full(xs.shape, np.nan)
        inside = (u >= 0.0) & (u <= nx) & (v >= 0.0) & (v <= ny)  # NaN inputs compare False: stay NaN
        if not inside.any():
            return out
        fc = np.clip(u[inside] - 0.5, 0.0, nx - 1.0)
        fr = np.clip(v[inside] - 0.5, 0.0, ny - 1.0)
        for f in (fc, fr):
            near = np.rint(f)
            snap = np.abs(f - near) < _SNAP
            f[snap] = near[snap]
        j0 = np.minimum(np.floor(fc).astype(np.int64), max(nx - 2, 0))
        i0 = np.minimum(np.floor(fr).astype(np.int64), max(ny - 2, 0))
        s = fc - j0  # weight of column j0 + 1, in [0, 1]
        t = fr - i0  # weight of row i0 + 1
        j1 = np.minimum(j0 + 1, nx - 1)
        i1 = np.minimum(i0 + 1, ny - 1)
        h = self.heights
        total = np.zeros(len(fc))
        bad = np.zeros(len(fc), dtype=bool)
        for ii, jj, w in (
            (i0, j0, (1.0 - t) * (1.0 - s)),
            (i0, j1, (1.0 - t) * s),
            (i1, j0, t * (1.0 - s)),
            (i1, j1, t * s),
        ):
            val = h[ii, jj]
            used = w > 0.0
            missing = used & np.isnan(val)
            bad |= missing
            total += np.where(used & ~missing, w * np.where(np.isnan(val), 0.0, val), 0.0)
        total[bad] = np.nan
        out[inside] = total
        return out

    # -- rendering -----------------------------------------------------------------------------------------------
    def stride_for(self, max_triangles: int) -> int:
        """Smallest sampling stride (in cells) whose mesh has at most ``max_triangles`` triangles."""
        if max_triangles < 2:
            raise ValueError(f"max_triangles must be >= 2, got {max_triangles}")
        ny, nx = self.heights.shape
        step = 1
        while 2 * math.ceil(max(ny - 1, 0) / step) * math.ceil(max(nx - 1, 0) / step) > max_triangles:
            step += 1
        return step

    def mesh(self, max_triangles: int = 200_000) -> tuple[FloatArray, IntArray]:
        """Triangle mesh of the surface through cell centres, decimated by regular subsampling.

        Rows and columns are taken every ``stride`` cells (the last row and column always included) with the
        smallest stride that keeps at most ``max_triangles`` triangles; triangles touching a nodata sample are
        dropped. Faces wind counter-clockwise seen from above (normals point up).

        Returns ``vertices`` (n, 3) float64 local metres and ``faces`` (m, 3) int64 indices into ``vertices``.
        """
        ny, nx = self.heights.shape
        step = self.stride_for(int(max_triangles))
        rows = np.unique(np.append(np.arange(0, ny, step), ny - 1))
        cols = np.unique(np.append(np.arange(0, nx, step), nx - 1))
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        z = self.heights[rr, cc]
        x, y = self._to_world(cc + 0.5, rr + 0.5)
        nr, nc = len(rows), len(cols)
        if nr < 2 or nc < 2:
            return np.empty((0, 3)), np.empty((0, 3), dtype=np.int64)
        idx = np.arange(nr * nc, dtype=np.int64).reshape(nr, nc)
        v00, v01 = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
        v10, v11 = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        if self._det < 0:  # rows run opposite to y (north-up): this order is counter-clockwise from above
            tris = np.concatenate([np.column_stack([v00, v10, v11]), np.column_stack([v00, v11, v01])])
        else:
            tris = np.concatenate([np.column_stack([v00, v11, v10]), np.column_stack([v00, v01, v11])])
        zf = z.ravel()
        tris = tris[~np.isnan(zf[tris]).any(axis=1)]
        used = np.unique(tris)
        remap = np.full(nr * nc, -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        vertices = np.column_stack([x.ravel()[used], y.ravel()[used], zf[used]])
        return vertices, remap[tris]

    # -- layer contract ------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) float64 ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of the raster's extent, local metres."""
        ny, nx = self.heights.shape
        x, y = self._to_world(np.array([0.0, nx, 0.0, nx]), np.array([0.0, 0.0, ny, ny]))
        return np.array(
            [
                [x.min(), y.min(), float(np.nanmin(self.heights))],
                [x.max(), y.max(), float(np.nanmax(self.heights))],
            ]
        )

    def summary(self) -> dict[str, Any]:
        """Grid size, cell size, CRS, height range and share of nodata cells."""
        ny, nx = self.heights.shape
        nodata = int(np.isnan(self.heights).sum())
        return {
            "rows": ny,
            "cols": nx,
            "cell_size_m": [round(v, 6) for v in self.cell_size],
            "crs": self.crs,
            "source_crs": self.source_crs,
            "resampled": self.resampled,
            "min_height_m": float(np.nanmin(self.heights)),
            "max_height_m": float(np.nanmax(self.heights)),
            "nodata_share": nodata / (nx * ny),
        }

    def save(self, directory: Path) -> dict[str, Any]:
        """Write ``terrain.npz`` (heights, transform) into ``directory``; return the manifest entry."""
        write_arrays({"heights": self.heights, "transform": self.transform}, Path(directory) / "terrain.npz")
        return {
            "file": "terrain.npz",
            "crs": self.crs,
            "source_crs": self.source_crs,
            "resampled": self.resampled,
        }

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> Terrain:
        """Read a terrain written by :meth:`save`."""
        path = Path(directory) / entry.get("file", "terrain.npz")
        if not path.exists():
            raise InputError(path, "is missing from the bundle (terrain layer)")
        arrays = read_arrays(path)
        if "heights" not in arrays or "transform" not in arrays:
            raise InputError(path, "must hold the arrays 'heights' and 'transform'")
        return cls(
            arrays["heights"],
            arrays["transform"],
            id=str(entry["id"]),
            source=str(entry.get("source", "")),
            crs=entry.get("crs"),
            source_crs=entry.get("source_crs"),
            resampled=bool(entry.get("resampled", False)),
        )

    def __repr__(self) -> str:
        ny, nx = self.heights.shape
        return f"Terrain(id={self.id!r}, {ny}x{nx} cells of {self.cell_size[0]:.3g} m, crs={self.crs!r})"
