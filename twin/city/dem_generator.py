"""A generated terrain (DEM GeoTIFF) for demos and tests that must not depend on downloaded elevation data.

The surface is smooth and deterministic: a base height, a regional slope, a few broad hills drawn from the seed,
and optional *hollows* — Gaussian depressions (an underpass, a low street) where surface water collects. It is a
stand-in for real elevation only in the sense that it is not measured; it is a real GeoTIFF with a CRS and
transform that the terrain loader reads like any other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twin.city.layer import atomic_path


def generate_dem(
    path: str | os.PathLike[str],
    *,
    bounds: Sequence[float],
    crs: str,
    cell_m: float = 5.0,
    base_m: float = 20.0,
    slope: tuple[float, float] = (0.004, -0.002),
    hills: int = 4,
    hill_height_m: float = 6.0,
    hollows: Sequence[tuple[float, float, float, float]] = (),
    seed: int = 0,
) -> Path:
    """Write a DEM GeoTIFF covering ``bounds`` (xmin, ymin, xmax, ymax in ``crs``, metres) and return its path.

    cell_m : cell size, metres. base_m : height at the centre, metres. slope : (dz/dx, dz/dy) regional gradient.
    hills : number of broad hills (height up to ``hill_height_m``, radius 150-400 m) placed from ``seed``.
    hollows : (x, y, depth_m, radius_m) Gaussian depressions, in ``crs`` coordinates.
    """
    import rasterio
    from affine import Affine

    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    h = float(cell_m)
    if not (xmax > xmin and ymax > ymin and h > 0):
        raise ValueError(
            f"bounds must be (xmin, ymin, xmax, ymax) with max > min and cell_m > 0, got {bounds}, {h}"
        )
    nx = int(np.ceil((xmax - xmin) / h))
    ny = int(np.ceil((ymax - ymin) / h))
    x = xmin + (np.arange(nx) + 0.5) * h
    y = ymax - (np.arange(ny) + 0.5) * h  # north-up rows
    X, Y = np.meshgrid(x, y)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    z = base_m + slope[0] * (X - cx) + slope[1] * (Y - cy)
    rng = np.random.default_rng(seed)
    for _ in range(int(hills)):
        hx, hy = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        r = rng.uniform(150.0, 400.0)
        z += rng.uniform(0.3, 1.0) * hill_height_m * np.exp(-((X - hx) ** 2 + (Y - hy) ** 2) / (2 * r * r))
    for hx, hy, depth, r in hollows:
        z -= float(depth) * np.exp(-((X - hx) ** 2 + (Y - hy) ** 2) / (2 * float(r) ** 2))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=nx,
            height=ny,
            count=1,
            dtype="float32",
            crs=crs,
            transform=Affine(h, 0.0, xmin, 0.0, -h, ymax),
            nodata=-9999.0,
        ) as ds:
            ds.write(z.astype(np.float32), 1)
    return out
