"""Load a digital elevation model (GeoTIFF or any single-band raster GDAL reads) as a :class:`Terrain`.

Georeference, in this order:

1. The file's CRS, when it is a real geographic or projected CRS (a ``LOCAL_CS`` with unknown units counts as
   none). If the city has no CRS yet it adopts one from the raster (the raster's own CRS when projected, the UTM
   zone of its centre when geographic). If the raster's CRS equals the city's, the grid is kept cell for cell
   and only shifted into the local frame. Otherwise it is reprojected into the city CRS with
   ``rasterio.warp.reproject`` (bilinear, nodata kept as NaN) onto a north-up grid of about the same resolution.
   Heights are not changed by the reprojection (no vertical datum shift).
2. The ``crs`` argument, for files without one (same handling as 1).
3. Neither: the pixel grid from the file's affine transform is taken as coordinates of the source, moved by
   ``placement`` (``Frame.place``; rotation and scale map the grid exactly) or, without placement, used as local
   coordinates as they are.

Nodata (the band's nodata value, an internal mask, or NaN) becomes NaN. A multi-band file uses band 1.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.crs
import rasterio.errors
import rasterio.warp
from rasterio.enums import Resampling

from twin.city.frame import Frame, Placement, crs_name, parse_crs
from twin.city.layer import layer_id_from_path
from twin.city.terrain import Terrain
from twin.errors import InputError

log = logging.getLogger(__name__)


def _usable_crs(raw: Any, path: Path) -> pyproj.CRS | None:
    """The raster's CRS as pyproj, or None when it has none or only a local/engineering one."""
    if raw is None:
        return None
    try:
        crs = pyproj.CRS.from_wkt(raw.to_wkt())
    except (pyproj.exceptions.CRSError, rasterio.errors.CRSError) as exc:
        log.warning("%s: its CRS cannot be interpreted (%s); treating it as having none", path, exc)
        return None
    if crs.is_geographic or crs.is_projected:
        return crs
    log.info("%s: its CRS %r is a local one without georeference; treating it as having none", path, crs.name)
    return None


def load_dem(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    crs: pyproj.CRS | str | int | None = None,
    id: str | None = None,
) -> Terrain:
    """Read band 1 of the raster at ``path`` into a :class:`Terrain` in ``frame``.

    ``crs`` declares the CRS of a file that carries none; ``placement`` places a file without any CRS.
    Raises :class:`InputError` naming the file when it does not exist, is not a readable raster, is truncated,
    or holds no valid height at all.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "does not exist")
    crs = None if crs is None else parse_crs(crs, source=str(p))
    if p.is_dir():
        raise InputError(p, "is a directory, not a raster file")
    try:
        with rasterio.open(p) as src:
            if src.count < 1:
                raise InputError(p, "has no raster band")
            if src.count > 1:
                log.info("%s has %d bands; using band 1 as heights", p, src.count)
            band = src.read(1, masked=True)
            src_transform = src.transform
            file_crs = _usable_crs(src.crs, p)
            nodata = src.nodata
    except rasterio.errors.RasterioError as exc:
        raise InputError(p, f"is not a readable raster (a GeoTIFF DEM was expected): {exc}") from None

    heights = np.ma.filled(band.astype(np.float64), np.nan)
    heights[~np.isfinite(heights)] = np.nan
    if np.isnan(heights).all():
        raise InputError(p, f"has no valid height: every cell is nodata (nodata value {nodata})")

    if file_crs is not None and crs is not None and not file_crs.equals(crs):
        log.warning("%s declares %s; the crs argument %s is ignored", p, crs_name(file_crs), crs_name(crs))
    raster_crs = file_crs if file_crs is not None else crs
    if raster_crs is not None and placement is not None:
        log.warning("%s is georeferenced (%s); the placement is ignored", p, crs_name(raster_crs))

    g = src_transform
    resampled = False
    if raster_crs is not None:
        ny, nx = heights.shape
        centre = np.array([[g.c + g.a * nx / 2 + g.b * ny / 2, g.f + g.d * nx / 2 + g.e * ny / 2]])
        frame.adopt_for(raster_crs, centre)
        if frame.crs is not None and not raster_crs.equals(frame.crs):
            heights, g = _reproject(heights, g, raster_crs, frame.crs)
            resampled = True
            log.info(
                "%s reprojected from %s to %s: %dx%d cells",
                p,
                crs_name(raster_crs),
                crs_name(frame.crs),
                *heights.shape,
            )
            if np.isnan(heights).all():
                raise InputError(p, f"has no valid height after reprojection to {crs_name(frame.crs)}")
        ox, oy, oz = frame.origin
        transform = np.array([g.a, g.b, g.c - ox, g.d, g.e, g.f - oy])
        heights = heights - oz
    else:
        # Three pixel corners through the placement give the local affine exactly (a placement is a similarity).
        corners = np.array([[g.c, g.f, 0.0], [g.c + g.a, g.f + g.d, 0.0], [g.c + g.b, g.f + g.e, 0.0]])
        local = frame.place(corners, placement)
        o, ex, ey = local
        transform = np.array([ex[0] - o[0], ey[0] - o[0], o[0], ex[1] - o[1], ey[1] - o[1], o[1]])
        heights = heights + local[0, 2]

    return Terrain(
        heights,
        transform,
        id=id or layer_id_from_path(p),
        source=str(p),
        crs=crs_name(frame.crs),
        source_crs=crs_name(raster_crs),
        resampled=resampled,
    )


def _reproject(
    heights: np.ndarray, transform: Any, src_crs: pyproj.CRS, dst_crs: pyproj.CRS
) -> tuple[np.ndarray, Any]:
    """Bilinear reprojection of ``heights`` (ny, nx) float64 with NaN nodata onto a north-up grid in ``dst_crs``."""
    ny, nx = heights.shape
    src = rasterio.crs.CRS.from_wkt(src_crs.to_wkt())
    dst = rasterio.crs.CRS.from_wkt(dst_crs.to_wkt())
    g = transform
    cols = np.array([0.0, nx, 0.0, nx])
    rows = np.array([0.0, 0.0, ny, ny])
    xs = g.a * cols + g.b * rows + g.c
    ys = g.d * cols + g.e * rows + g.f
    with warnings.catch_warnings():  # rasterio's own use of Affine `*` (PendingDeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        dst_transform, width, height = rasterio.warp.calculate_default_transform(
            src, dst, nx, ny, left=xs.min(), bottom=ys.min(), right=xs.max(), top=ys.max()
        )
    out = np.full((height, width), np.nan)
    rasterio.warp.reproject(
        source=heights,
        destination=out,
        src_transform=transform,
        src_crs=src,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=dst,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out, dst_transform
