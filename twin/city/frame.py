"""The city's local frame: x east, y north, z up, metres, relative to a georeferenced origin.

A :class:`Frame` holds the projected CRS of the city (pyproj) and the origin of the local coordinates in that CRS.
Loaders call :meth:`Frame.to_local` for sources that carry a CRS and :meth:`Frame.place` with a
:class:`Placement` for sources that carry none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"


def parse_crs(value: Any, *, source: str | None = None, field: str = "crs") -> pyproj.CRS:
    """Return the pyproj CRS for ``value`` (``"EPSG:3067"``, a WKT or PROJ string, an int EPSG code, a CRS).

    Raises :class:`InputError` naming ``source`` and ``field`` when the CRS is unknown.
    """
    if isinstance(value, pyproj.CRS):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(source, f"{field} must be a CRS string such as 'EPSG:3067', got {value!r}")
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(
            source, f"{field} {value!r} is not a known coordinate reference system ({exc})"
        ) from None


def crs_name(crs: pyproj.CRS | None) -> str | None:
    """A short, re-parseable name for ``crs``: ``"EPSG:xxxx"`` when it has an EPSG code, otherwise WKT."""
    if crs is None:
        return None
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def utm_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The WGS 84 / UTM zone CRS that contains the point (lon, lat) in degrees."""
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not infos:
        raise InputError(None, f"no UTM zone found for lon={lon}, lat={lat}")
    return pyproj.CRS.from_epsg(infos[0].code)


def _number(mapping: Mapping[str, Any], key: str, source: str | None, default: float = 0.0) -> float:
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(source, f"placement.{key} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Placement:
    """Where a source without georeference goes: translation (in the city's CRS units, metres) and rotation.

    ``x, y, z`` are coordinates in the city's projected CRS (or in the local frame when the city has no CRS);
    ``rotation_deg`` turns the source counter-clockwise about its own origin before it is moved; ``scale``
    multiplies horizontal source coordinates first (for drawings in arbitrary units, e.g. EPANET maps).
    """

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    rotation_deg: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, source: str | None = None) -> Placement:
        """Build from ``{x, y, z, rotation_deg, scale}``; any key may be omitted; non-numbers raise :class:`InputError`."""
        keys = ("x", "y", "z", "rotation_deg", "scale")
        if not isinstance(mapping, Mapping):
            raise InputError(source, f"placement must be a mapping of {', '.join(keys)}, got {mapping!r}")
        unknown = set(mapping) - set(keys)
        if unknown:
            raise InputError(
                source, f"placement has unknown keys {sorted(unknown)}; expected {', '.join(keys)}"
            )
        values = [_number(mapping, k, source) for k in keys[:4]]
        scale = _number(mapping, "scale", source, default=1.0)
        if scale <= 0:
            raise InputError(source, f"placement.scale must be > 0, got {scale}")
        return cls(*values, scale=scale)

    def apply(self, xyz: FloatArray) -> FloatArray:
        """Scale (horizontally), rotate about z, then translate.

        ``xyz`` : (n, 3) float64, metres. Returns a new (n, 3) array.
        """
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        a = math.radians(self.rotation_deg)
        c, s = self.scale * math.cos(a), self.scale * math.sin(a)
        out = np.empty_like(xyz)
        out[:, 0] = c * xyz[:, 0] - s * xyz[:, 1] + self.x
        out[:, 1] = s * xyz[:, 0] + c * xyz[:, 1] + self.y
        out[:, 2] = xyz[:, 2] + self.z
        return out


class Frame:
    """The local metric frame of a city.

    Parameters
    ----------
    crs : projected CRS of the city, or ``None`` until a georeferenced source sets it.
    origin : (3,) float64, the local origin in ``crs`` coordinates (metres).
    """

    def __init__(self, crs: Any = None, origin: tuple[float, float, float] | FloatArray | None = None):
        self.crs: pyproj.CRS | None = None if crs is None else parse_crs(crs)
        if self.crs is not None and not self.crs.is_projected:
            raise InputError(None, f"the city CRS must be projected (metres), got {crs_name(self.crs)}")
        # Without an explicit origin, the first georeferenced or placed source fixes it (rounded to 1 km), so that
        # local coordinates stay small and float64 keeps sub-millimetre precision.
        self.origin_fixed = origin is not None
        self.origin = np.zeros(3) if origin is None else np.asarray(origin, dtype=np.float64).reshape(3)
        self._transformers: dict[str, pyproj.Transformer] = {}

    def _fix_origin(self, xy: FloatArray) -> None:
        """Fix the origin at the rounded centre of ``xy`` (n, 2) frame-CRS coordinates, if not fixed yet."""
        if self.origin_fixed or self.crs is None or len(xy) == 0:
            return
        cx, cy = (float(v) for v in np.nanmean(np.asarray(xy, dtype=np.float64).reshape(-1, 2), axis=0))
        if not (math.isfinite(cx) and math.isfinite(cy)):
            return
        self.origin = np.array([round(cx, -3), round(cy, -3), 0.0])
        self.origin_fixed = True
        log.info("city frame origin set to %s", self.origin.tolist())

    # -- adopting a CRS --------------------------------------------------------------------------------------------
    def adopt(self, crs: pyproj.CRS, origin_xy: tuple[float, float]) -> None:
        """Set the frame's CRS and origin if it has none yet (the first georeferenced source decides).

        The origin is rounded to whole kilometres so that local coordinates stay readable.
        """
        if self.crs is not None:
            return
        if not crs.is_projected:
            raise InputError(None, f"cannot adopt a non-projected CRS {crs_name(crs)} for the local frame")
        self.crs = crs
        if not self.origin_fixed:
            self.origin = np.array([round(origin_xy[0], -3), round(origin_xy[1], -3), 0.0])
            self.origin_fixed = True
        log.info("city frame adopts %s with origin %s", crs_name(crs), self.origin.tolist())

    def adopt_for(self, src_crs: pyproj.CRS, xy: FloatArray) -> None:
        """Adopt a frame suitable for points ``xy`` (n, 2) given in ``src_crs``, if the frame has no CRS yet.

        A projected source CRS is adopted as it is; a geographic one gives the UTM zone of the points' centre.
        """
        if len(xy) == 0:
            return
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.crs is not None:
            # the CRS was given (the scenario's city.crs): the first source still fixes the origin
            if not self.origin_fixed:
                if not src_crs.equals(self.crs):
                    t = self._transformer(src_crs, self.crs)
                    xy = np.column_stack(t.transform(xy[:, 0], xy[:, 1]))
                self._fix_origin(xy)
            return
        cx, cy = (float(v) for v in np.nanmean(xy, axis=0))
        if src_crs.is_projected:
            self.adopt(src_crs, (cx, cy))
        else:
            to_ll = pyproj.Transformer.from_crs(src_crs, WGS84, always_xy=True)
            lon, lat = to_ll.transform(cx, cy)
            utm = utm_crs_for(lon, lat)
            ex, ny = pyproj.Transformer.from_crs(WGS84, utm, always_xy=True).transform(lon, lat)
            self.adopt(utm, (ex, ny))

    # -- transforms ------------------------------------------------------------------------------------------------
    def _transformer(self, src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
        key = src.to_wkt() + "|" + dst.to_wkt()
        t = self._transformers.get(key)
        if t is None:
            t = pyproj.Transformer.from_crs(src, dst, always_xy=True)
            self._transformers[key] = t
        return t

    def to_local(self, xyz: FloatArray, src_crs: pyproj.CRS | None) -> FloatArray:
        """Transform points from ``src_crs`` into the local frame.

        ``xyz`` : (n, 3) or (n, 2) float64 in the source CRS (degrees for geographic CRSs, metres otherwise).
        Returns (n, 3) float64 metres in the local frame (z is kept, minus the origin height).
        If the frame has no CRS, it first adopts one from the source; with ``src_crs=None`` the points are taken
        as coordinates in the frame's CRS already.
        """
        pts = np.asarray(xyz, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise ValueError(f"xyz must be (n, 2) or (n, 3) float64, got {pts.shape}")
        if pts.shape[1] == 2:
            pts = np.column_stack([pts, np.zeros(len(pts))])
        out = pts.copy()
        if src_crs is not None:
            self.adopt_for(src_crs, pts[:, :2])
            if self.crs is not None and not src_crs.equals(self.crs):
                x, y = self._transformer(src_crs, self.crs).transform(pts[:, 0], pts[:, 1])
                out[:, 0], out[:, 1] = x, y
            self._fix_origin(out[:, :2])
        out -= self.origin
        return out

    def to_world(self, xyz: FloatArray) -> FloatArray:
        """Local (n, 3) metres → coordinates in the frame's CRS (n, 3)."""
        return np.asarray(xyz, dtype=np.float64).reshape(-1, 3) + self.origin

    def to_lonlat(self, xy: FloatArray) -> FloatArray:
        """Local (n, 2|3) metres → (n, 2) longitude/latitude degrees. Requires a CRS."""
        if self.crs is None:
            raise InputError(None, "the city has no CRS, so local coordinates have no longitude/latitude")
        w = np.asarray(xy, dtype=np.float64)[:, :2] + self.origin[:2]
        lon, lat = self._transformer(self.crs, pyproj.CRS.from_user_input(WGS84)).transform(w[:, 0], w[:, 1])
        return np.column_stack([lon, lat])

    def place(self, xyz: FloatArray, placement: Placement | None) -> FloatArray:
        """Apply ``placement`` (coordinates in the frame's CRS) to source points and return local (n, 3) metres."""
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        world = placement.apply(pts) if placement is not None else pts
        if placement is None:
            return world.copy()  # no placement: the source's coordinates are local coordinates
        self._fix_origin(np.array([[placement.x, placement.y]]))
        return world - self.origin

    # -- persistence -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"crs": crs_name(self.crs), "origin": self.origin.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Frame:
        return cls(d.get("crs"), d.get("origin"))

    def __repr__(self) -> str:
        return f"Frame(crs={crs_name(self.crs)!r}, origin={self.origin.tolist()})"
