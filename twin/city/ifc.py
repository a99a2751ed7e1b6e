"""IFC loader: an IFC2X3 or IFC4 building (IfcOpenShell 0.9) → :class:`twin.city.building.Building`.

What is read
------------
- storeys (``IfcBuildingStorey``): GUID, name, elevation. ``elevation_m`` is the local-frame z of the storey's
  placement origin (the z the geometry uses); ``elevation_ifc_m`` is the ``Elevation`` attribute × the file's
  length-unit scale (NaN when absent).
- spaces (``IfcSpace``): footprint = union of the xy projection of the space's triangles, floor z = lowest vertex,
  height = vertical extent, area = footprint area (m²). A space without geometry gets footprint ``None``.
- doors (``IfcDoor``): centre (x, y of the geometry's bounding-box centre), z = the door's bottom (threshold),
  width = ``OverallWidth`` (or the extent along the host wall), height = ``OverallHeight`` (or the z extent), and
  the two sides it connects (a space GUID, ``"outside"`` or ``None`` when unknown). The sides come from
  ``IfcRelSpaceBoundary`` where the file has it and from probe points just beyond both faces of the host wall
  (door → ``IfcRelFillsElement`` → opening → ``IfcRelVoidsElement`` → wall, whose placement x-axis is the wall
  direction) tested against the space footprints. A side with no space is ``"outside"`` when the door or its
  wall is external (``EXTERNAL`` boundary, ``Pset_*Common.IsExternal``) or the probe lies outside the convex
  hull of the storey's walls and spaces; otherwise it is ``None``.
- stairs: every ``IfcStair`` and every ``IfcStairFlight`` that is part of no ``IfcStair`` (geometry: the
  element's own plus that of its parts, railings excluded). The walking line runs through the area-weighted
  centres of the treads (up-facing horizontal faces grouped by height), extended half a going and one riser
  beyond the first and last tread; ends within one riser of a storey elevation are snapped to it (steps land
  on floors). ``run_m`` is its horizontal length, ``rise_m`` the height between its ends,
  ``length_m`` = √(run² + rise²) (the slope length; exact for straight and helical flights).
  ``from_storey`` is the containing storey, ``to_storey`` the storey above it whose elevation is nearest to
  the top of the walking line.
- meshes of walls, slabs, doors, windows, stairs, roofs, spaces and other building elements
  (:data:`twin.city.building.FAMILIES`), with GUID, IFC class and storey per element.
- walkable area per storey: the union of the storey's space footprints, of the footprints of stairs that start
  on it, and of the door passages (the opening through the wall, width × wall thickness + 5 cm each side, for
  doors with a space on at least one side), so that rooms joined by a door form one connected area; a storey
  without spaces gets its slab footprints minus its wall footprints.

Placement into the city frame
-----------------------------
- IFC4 ``IfcMapConversion`` with ``IfcProjectedCRS`` (or IFC2X3 ``ePSet_MapConversion`` + ``ePSet_ProjectedCRS``
  on the project or site): model coordinates → map coordinates (E, N, H) → :meth:`Frame.to_local`.
- otherwise :meth:`Frame.place` with the given ``placement`` (identity when ``None``). ``IfcSite``
  RefLatitude/RefLongitude is not a precise georeference; it is only recorded in ``crs_info``.
- An explicit ``placement`` overrides the file's georeference (logged).

Geometry comes from one pass of ``ifcopenshell.geom.iterator`` (world coordinates, metres, all cores) over
:data:`GEOMETRY_CLASSES`; elements whose geometry fails are logged, listed in ``Building.warnings`` and kept in
the tables without geometry.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

from twin.city.building import (
    DOOR_COLUMNS,
    ELEMENT_COLUMNS,
    FAMILIES,
    OUTSIDE,
    SPACE_COLUMNS,
    STAIR_COLUMNS,
    STOREY_COLUMNS,
    Building,
    Mesh,
)
from twin.city.frame import Frame, Placement, crs_name
from twin.city.layer import layer_id_from_path
from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

GEOMETRY_CLASSES: tuple[str, ...] = (
    "IfcSpace",
    "IfcWall",
    "IfcCurtainWall",
    "IfcSlab",
    "IfcDoor",
    "IfcWindow",
    "IfcStair",
    "IfcStairFlight",
    "IfcRamp",
    "IfcRampFlight",
    "IfcRoof",
    "IfcColumn",
    "IfcBeam",
    "IfcMember",
    "IfcPlate",
    "IfcRailing",
    "IfcCovering",
    "IfcFooting",
    "IfcBuildingElementProxy",
)
"""IFC classes (with their subtypes) whose geometry is read; furniture, openings and annotations are not."""

_MAX_LISTED = 20  # GUIDs listed per warning
_PROBE_BEYOND_WALL_M = 0.3  # door side probes: distance beyond the wall face
_DEFAULT_HALF_WALL_M = 0.25  # half wall thickness when the host wall has no geometry near the door


def geometry_classes(f: Any) -> list[str]:
    """The entries of :data:`GEOMETRY_CLASSES` that exist in the schema of the open file ``f``."""
    import ifcopenshell.ifcopenshell_wrapper as wrapper

    schema = wrapper.schema_by_name(f.schema)
    out = []
    for cls in GEOMETRY_CLASSES:
        try:
            schema.declaration_by_name(cls)
        except RuntimeError:
            continue
        out.append(cls)
    return out


# -- opening the file --------------------------------------------------------------------------------------------
def geometry_settings() -> Any:
    """The ``ifcopenshell.geom.settings`` the loader uses: world coordinates (metres), welded vertices."""
    import ifcopenshell.geom

    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("weld-vertices", True)
    return settings


def open_ifc(path: str | os.PathLike[str]) -> Any:
    """Open an IFC STEP file with IfcOpenShell; raise :class:`InputError` if it is missing, not IFC or truncated."""
    import ifcopenshell

    p = Path(path)
    if not p.exists():
        raise InputError(p, "does not exist; expected an IFC file (ISO-10303-21 STEP, .ifc)")
    if not p.is_file():
        raise InputError(p, "is not a file; expected an IFC file (ISO-10303-21 STEP, .ifc)")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(64)
            fh.seek(max(0, size - 4096))
            tail = fh.read()
    except OSError as exc:
        raise InputError(p, f"cannot be read ({exc})") from None
    if not head.lstrip().startswith(b"ISO-10303-21"):
        raise InputError(
            p, "is not an IFC STEP file: it does not start with 'ISO-10303-21;' (IFC-SPF header expected)"
        )
    if b"END-ISO-10303-21" not in tail:
        raise InputError(
            p, "is truncated or incomplete: it does not end with 'END-ISO-10303-21;' (the STEP file trailer)"
        )
    try:
        f = ifcopenshell.open(str(p))
    except Exception as exc:  # IfcOpenShell raises its own Error type and RuntimeError for parse failures
        raise InputError(p, f"cannot be parsed as IFC ({exc})") from None
    return f


# -- georeference ------------------------------------------------------------------------------------------------
@dataclass
class _MapConversion:
    source: str  # "IfcMapConversion" or "ePSet_MapConversion"
    eastings: float
    northings: float
    height: float
    x_abscissa: float
    x_ordinate: float
    scale: float
    crs_name: str | None
    map_unit_m: float  # metres per map unit

    def to_map(self, xyz_m: FloatArray, unit_scale: float) -> FloatArray:
        """Model coordinates (n, 3) metres → (n, 3) map coordinates (E, N in map units, H in metres)."""
        p = xyz_m / unit_scale  # project length units, as the IFC map conversion expects
        theta = math.atan2(self.x_ordinate, self.x_abscissa)
        c, s = math.cos(theta), math.sin(theta)
        out = np.empty_like(p)
        out[:, 0] = self.eastings + self.scale * (c * p[:, 0] - s * p[:, 1])
        out[:, 1] = self.northings + self.scale * (s * p[:, 0] + c * p[:, 1])
        out[:, 2] = (self.height + self.scale * p[:, 2]) * self.map_unit_m
        return out


def _number_or(value: Any, default: float) -> float:
    if value is None:
        return default
    v = getattr(value, "wrappedValue", value)
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _find_map_conversion(f: Any, unit_scale: float) -> _MapConversion | None:
    import ifcopenshell.util.element
    import ifcopenshell.util.unit

    if f.schema == "IFC2X3":
        holders = f.by_type("IfcProject") + f.by_type("IfcSite")
        for holder in holders:
            conv = ifcopenshell.util.element.get_pset(holder, "ePSet_MapConversion")
            crs = ifcopenshell.util.element.get_pset(holder, "ePSet_ProjectedCRS")
            if conv:
                scale = _number_or(conv.get("Scale"), 1.0) or 1.0
                return _MapConversion(
                    "ePSet_MapConversion",
                    _number_or(conv.get("Eastings"), 0.0),
                    _number_or(conv.get("Northings"), 0.0),
                    _number_or(conv.get("OrthogonalHeight"), 0.0),
                    _number_or(conv.get("XAxisAbscissa"), 1.0),
                    _number_or(conv.get("XAxisOrdinate"), 0.0),
                    scale,
                    (crs or {}).get("Name"),
                    unit_scale / scale,
                )
        return None
    try:
        ops = f.by_type("IfcMapConversion")
    except RuntimeError:
        return None
    if not ops:
        return None
    ops = sorted(ops, key=lambda o: getattr(o.SourceCRS, "ContextType", None) != "Model")
    op = ops[0]
    scale = _number_or(op.Scale, 1.0) or 1.0
    target = op.TargetCRS
    map_unit_m = unit_scale / scale
    if target is not None and target.is_a("IfcProjectedCRS") and target.MapUnit is not None:
        map_unit_m = ifcopenshell.util.unit.get_named_unit_scale(target.MapUnit)
    xa, xo = _number_or(op.XAxisAbscissa, 1.0), _number_or(op.XAxisOrdinate, 0.0)
    if xa == 0.0 and xo == 0.0:
        xa = 1.0
    return _MapConversion(
        "IfcMapConversion",
        _number_or(op.Eastings, 0.0),
        _number_or(op.Northings, 0.0),
        _number_or(op.OrthogonalHeight, 0.0),
        xa,
        xo,
        scale,
        None if target is None else target.Name,
        map_unit_m,
    )


def _compound_angle(value: Any) -> float | None:
    """IfcCompoundPlaneAngleMeasure (deg, min, sec[, millionths]) → decimal degrees."""
    if not value:
        return None
    parts = [float(v) for v in value] + [0.0] * (4 - len(value))
    sign = -1.0 if any(v < 0 for v in parts) else 1.0
    d, m, s, us = (abs(v) for v in parts[:4])
    return sign * (d + m / 60.0 + s / 3600.0 + us / 3.6e9)


class _Placer:
    """Model coordinates (metres, IfcOpenShell world coordinates) → the city's local frame."""

    def __init__(
        self,
        path: Path,
        f: Any,
        unit_scale: float,
        frame: Frame,
        placement: Placement | None,
    ):
        self.frame = frame
        self.placement = placement
        self.unit_scale = unit_scale
        self.conversion: _MapConversion | None = None
        self.crs: pyproj.CRS | None = None
        self.info: dict[str, Any] = {"georeferenced": False, "method": "none", "crs": None}
        self.warnings: list[str] = []
        site = f.by_type("IfcSite")
        if site:
            lat, lon = _compound_angle(site[0].RefLatitude), _compound_angle(site[0].RefLongitude)
            if lat is not None and lon is not None:
                self.info["site_lat_lon"] = [lat, lon]
                self.info["site_elevation_m"] = _number_or(site[0].RefElevation, 0.0) * unit_scale
        conv = _find_map_conversion(f, unit_scale)
        if conv is not None:
            self.info["map_conversion"] = {
                "source": conv.source,
                "eastings": conv.eastings,
                "northings": conv.northings,
                "orthogonal_height": conv.height,
                "x_axis_abscissa": conv.x_abscissa,
                "x_axis_ordinate": conv.x_ordinate,
                "scale": conv.scale,
                "crs_name": conv.crs_name,
            }
            if conv.crs_name:
                try:
                    self.crs = pyproj.CRS.from_user_input(conv.crs_name)
                except pyproj.exceptions.CRSError:
                    self.warnings.append(
                        f"{conv.source} names CRS {conv.crs_name!r}, which pyproj does not know; "
                        "the model is treated as not georeferenced"
                    )
            else:
                self.warnings.append(f"{conv.source} has no projected CRS name; treated as not georeferenced")
            if self.crs is not None and not self.crs.is_projected:
                self.warnings.append(f"CRS {conv.crs_name!r} is not projected; treated as not georeferenced")
                self.crs = None
        if self.crs is not None and placement is None:
            self.conversion = conv
            self.info.update(georeferenced=True, method=conv.source, crs=crs_name(self.crs))
            crs_unit = self.crs.axis_info[0].unit_conversion_factor if self.crs.axis_info else 1.0
            self._crs_unit_m = float(crs_unit or 1.0)
        elif placement is not None:
            if self.crs is not None:
                log.info("%s: explicit placement overrides the file's %s", path.name, conv.source)
            self.info.update(
                method="placement",
                placement={
                    "x": placement.x,
                    "y": placement.y,
                    "z": placement.z,
                    "rotation_deg": placement.rotation_deg,
                    "scale": getattr(placement, "scale", 1.0),
                },
            )

    def points(self, xyz: FloatArray) -> FloatArray:
        """(n, 3) model metres → (n, 3) local metres."""
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        if self.conversion is None:
            return self.frame.place(pts, self.placement)
        m = self.conversion.to_map(pts, self.unit_scale)
        m[:, :2] *= self.conversion.map_unit_m / self._crs_unit_m
        return self.frame.to_local(m, self.crs)

    def geometry(self, geom: BaseGeometry | None) -> BaseGeometry | None:
        """A 2-D shapely geometry in model metres → local metres (z of the model taken as 0)."""
        if geom is None:
            return None

        def fn(xy: FloatArray) -> FloatArray:
            return self.points(np.column_stack([xy, np.zeros(len(xy))]))[:, :2]

        return shapely.transform(geom, fn)


# -- the geometry pass -------------------------------------------------------------------------------------------
@dataclass
class _Shape:
    verts: FloatArray  # (n, 3) float64 model metres
    faces: np.ndarray  # (m, 3) int32


def _iterate(path: Path, f: Any) -> dict[int, _Shape]:
    """One pass of IfcOpenShell's geometry iterator: product step id → triangulated shape (model metres)."""
    import ifcopenshell.geom

    shapes: dict[int, _Shape] = {}
    try:
        it = ifcopenshell.geom.iterator(
            geometry_settings(), f, os.cpu_count() or 1, include=geometry_classes(f)
        )
        if not it.initialize():
            return shapes
        while True:
            shape = it.get()
            g = shape.geometry
            verts = np.frombuffer(g.verts_buffer, dtype=np.float64).reshape(-1, 3)
            faces = np.frombuffer(g.faces_buffer, dtype=np.int32).reshape(-1, 3)
            shapes[shape.id] = _Shape(verts, faces)
            if not it.next():
                break
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"IfcOpenShell's geometry iterator failed on the file ({exc})") from None
    return shapes


def _tri_geometry(shape: _Shape) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-triangle (m, 3, 3) corners, (m,) areas (m²) and (m,) z of the unit normals."""
    tri = shape.verts[shape.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    double_area = np.linalg.norm(n, axis=1)
    nz = np.divide(n[:, 2], double_area, out=np.zeros(len(n)), where=double_area > 0)
    return tri, 0.5 * double_area, nz


def _footprint(tris: Sequence[FloatArray]) -> BaseGeometry | None:
    """Union of the xy projections of triangles ((k, 3, 3) arrays, metres); ``None`` when nothing projects.

    The projection of a closed solid is that of its up-facing triangles (and equally of its down-facing ones),
    so only one side is unioned (half the work): the side with the larger projected area, which also covers
    open surfaces and shells with flipped faces.
    """
    if not tris:
        return None
    tri = np.concatenate(tris)[:, :, :2]
    a = tri[:, 1] - tri[:, 0]
    b = tri[:, 2] - tri[:, 0]
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    up, down = cross > 1e-10, cross < -1e-10
    keep = up if cross[up].sum() >= -cross[down].sum() else down
    tri = tri[keep]
    if len(tri) == 0:
        return None
    rings = np.concatenate([tri, tri[:, :1]], axis=1)
    polys = shapely.polygons(rings)
    geom = _union(polys)
    if geom is None:
        return None
    if geom.is_empty:
        return None
    return _clean(geom)


def _union(geoms: Sequence[BaseGeometry] | np.ndarray) -> BaseGeometry | None:
    """Union on a 1 µm grid (robust against the float noise of triangle edges); ``None`` if GEOS gives up."""
    try:
        return shapely.union_all(geoms, grid_size=1e-6)
    except shapely.errors.GEOSException:
        try:
            return shapely.union_all(shapely.make_valid(np.asarray(geoms, dtype=object)))
        except shapely.errors.GEOSException as exc:
            log.warning("cannot union %d polygons (%s); footprint left out", len(geoms), exc)
            return None


def _difference(a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    try:
        return _clean(a.difference(b, grid_size=1e-6))
    except shapely.errors.GEOSException as exc:
        log.warning("cannot subtract wall footprints from slab footprints (%s); slabs kept whole", exc)
        return a


def _clean(geom: BaseGeometry) -> BaseGeometry:
    """Drop slivers and pinholes below 1 cm² left by the triangle union."""
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and g.area > 1e-4]
    cleaned = []
    for p in parts:
        holes = [h for h in p.interiors if Polygon(h).area > 1e-4]
        cleaned.append(Polygon(p.exterior, holes))
    if not cleaned:
        return Polygon()
    return cleaned[0] if len(cleaned) == 1 else shapely.MultiPolygon(cleaned)


# -- relations ---------------------------------------------------------------------------------------------------
class _Relations:
    """Storey and aggregate lookups over the IFC relationships, memoised by step id."""

    def __init__(self, f: Any, storey_ids: set[int]):
        self.storey_ids = storey_ids
        self.container: dict[int, Any] = {}
        for rel in f.by_type("IfcRelContainedInSpatialStructure"):
            for e in rel.RelatedElements or ():
                self.container[e.id()] = rel.RelatingStructure
        self.parent: dict[int, Any] = {}
        for rel in f.by_type("IfcRelAggregates"):
            for e in rel.RelatedObjects or ():
                self.parent[e.id()] = rel.RelatingObject
        self.host: dict[int, Any] = {}  # door/window → the wall its opening voids
        self.host_of_opening: dict[int, Any] = {}
        for rel in f.by_type("IfcRelVoidsElement"):
            self.host_of_opening[rel.RelatedOpeningElement.id()] = rel.RelatingBuildingElement
        for rel in f.by_type("IfcRelFillsElement"):
            wall = self.host_of_opening.get(rel.RelatingOpeningElement.id())
            if wall is not None:
                self.host[rel.RelatedBuildingElement.id()] = wall
        self._storey: dict[int, int | None] = {}

    def storey(self, e: Any) -> int | None:
        """Step id of the storey that contains ``e`` (through containment, aggregation or a host wall)."""
        eid = e.id()
        if eid in self._storey:
            return self._storey[eid]
        self._storey[eid] = None  # guards against cyclic relations
        found: int | None = None
        if eid in self.storey_ids:
            found = eid
        else:
            for up in (self.container.get(eid), self.parent.get(eid), self.host.get(eid)):
                if up is not None:
                    found = self.storey(up)
                    if found is not None:
                        break
        self._storey[eid] = found
        return found

    def ancestors(self, e: Any) -> Iterable[Any]:
        seen = {e.id()}
        up = self.parent.get(e.id())
        while up is not None and up.id() not in seen:
            yield up
            seen.add(up.id())
            up = self.parent.get(up.id())

    def descendants(self, e: Any) -> list[Any]:
        out = []
        stack = [e]
        seen = {e.id()}
        while stack:
            cur = stack.pop()
            for rel in getattr(cur, "IsDecomposedBy", ()) or ():
                for child in rel.RelatedObjects or ():
                    if child.id() not in seen:
                        seen.add(child.id())
                        out.append(child)
                        stack.append(child)
        return out


def _family(e: Any, rel: _Relations) -> str:
    if e.is_a("IfcSpace"):
        return "spaces"
    ups = list(rel.ancestors(e))
    if e.is_a("IfcStair") or e.is_a("IfcStairFlight") or any(u.is_a("IfcStair") for u in ups):
        return "stairs"
    if e.is_a("IfcRoof") or any(u.is_a("IfcRoof") for u in ups):
        return "roofs"
    if e.is_a("IfcWall") or e.is_a("IfcCurtainWall") or any(u.is_a("IfcCurtainWall") for u in ups):
        return "walls"
    if e.is_a("IfcDoor"):
        return "doors"
    if e.is_a("IfcWindow"):
        return "windows"
    if e.is_a("IfcSlab"):
        return "roofs" if getattr(e, "PredefinedType", None) == "ROOF" else "slabs"
    return "other"


def _is_external(e: Any | None) -> bool | None:
    """``IsExternal`` from the element's common property set (``Pset_DoorCommon``, ``Pset_WallCommon``…)."""
    if e is None:
        return None
    import ifcopenshell.util.element

    for name, props in ifcopenshell.util.element.get_psets(e).items():
        if name.startswith("Pset_") and name.endswith("Common") and "IsExternal" in props:
            value = props["IsExternal"]
            return None if value is None else bool(value)
    return None


def _placement_matrix(e: Any, unit_scale: float) -> FloatArray | None:
    """World 4×4 placement of ``e`` with the translation in metres, or ``None``."""
    import ifcopenshell.util.placement

    if getattr(e, "ObjectPlacement", None) is None:
        return None
    try:
        m = np.array(ifcopenshell.util.placement.get_local_placement(e.ObjectPlacement), dtype=np.float64)
    except Exception:  # malformed placements raise assorted errors inside IfcOpenShell
        log.debug("cannot evaluate the placement of %s", e, exc_info=True)
        return None
    m[:3, 3] *= unit_scale
    return m


def _length(value: Any, unit_scale: float) -> float | None:
    v = _number_or(value, math.nan)
    return None if not math.isfinite(v) or v <= 0 else v * unit_scale


# -- the loader --------------------------------------------------------------------------------------------------
@dataclass
class _Element:
    entity: Any
    guid: str
    ifc_class: str
    name: str | None
    storey: int | None
    family: str
    shape: _Shape | None = None
    zmin: float = math.nan
    zmax: float = math.nan


def load_ifc(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    id: str | None = None,
) -> Building:
    """Load an IFC file (IFC2X3 or IFC4) as a :class:`Building` in ``frame``.

    Parameters
    ----------
    path : the ``.ifc`` file (ISO-10303-21 STEP).
    frame : the city's local frame; a georeferenced model may set its CRS (see :meth:`Frame.to_local`).
    placement : where a model without georeference goes (and overrides the file's georeference if given).
    id : layer id; defaults to the file stem.

    Raises :class:`InputError` naming the file when it is missing, not IFC, truncated, or has no
    ``IfcBuildingStorey``. Elements whose geometry fails are logged and listed in ``Building.warnings``.
    """
    t_start = time.perf_counter()
    p = Path(path)
    f = open_ifc(p)
    t_opened = time.perf_counter()
    import ifcopenshell.util.unit

    storey_entities = f.by_type("IfcBuildingStorey")
    if not storey_entities:
        raise InputError(
            p,
            "has no IfcBuildingStorey; expected a building with at least one storey "
            "(spaces, doors and stairs are placed per storey)",
            element="IfcBuildingStorey",
        )
    unit_scale = float(ifcopenshell.util.unit.calculate_unit_scale(f))
    placer = _Placer(p, f, unit_scale, frame, placement)
    warnings = list(placer.warnings)

    t_iter = time.perf_counter()
    shapes = _iterate(p, f)
    t_iterated = time.perf_counter()

    rel = _Relations(f, {s.id() for s in storey_entities})
    elements: dict[int, _Element] = {}
    seen: set[int] = set()
    for cls in geometry_classes(f):
        for e in f.by_type(cls):
            if e.id() in seen:
                continue
            seen.add(e.id())
            shape = shapes.get(e.id())
            el = _Element(e, e.GlobalId, e.is_a(), e.Name, rel.storey(e), _family(e, rel), shape)
            if shape is not None and len(shape.verts):
                el.zmin = float(shape.verts[:, 2].min())
                el.zmax = float(shape.verts[:, 2].max())
            elements[e.id()] = el

    failed = [
        el.guid
        for el in elements.values()
        if el.shape is None and getattr(el.entity, "Representation", None) is not None
    ]
    if failed:
        msg = (
            f"{len(failed)} element(s) have a representation but no geometry could be made "
            f"(counted as without geometry): {failed[:_MAX_LISTED]}"
        )
        log.warning("%s: %s", p.name, msg)
        warnings.append(msg)

    storeys = _storeys(storey_entities, unit_scale, placer)
    _assign_storeys_by_height(elements, storeys)
    storey_guid = dict(zip(storeys["step_id"], storeys["guid"], strict=True))

    spaces_model = _spaces(elements)
    no_geom = [s["guid"] for s in spaces_model if s["footprint"] is None]
    if no_geom:
        msg = f"{len(no_geom)} space(s) without geometry (footprint None): {no_geom[:_MAX_LISTED]}"
        log.warning("%s: %s", p.name, msg)
        warnings.append(msg)
    doors_model = _doors(elements, spaces_model, rel, unit_scale)
    stairs_model, stair_warnings = _stairs(elements, rel, storeys)
    warnings += stair_warnings
    walkable_model = _walkable(elements, spaces_model, doors_model, stairs_model, storeys)

    building = Building(
        id=id or layer_id_from_path(p),
        source=str(p),
        schema=f.schema,
        crs_info=placer.info | {"length_unit_scale": unit_scale},
        storeys=storeys[STOREY_COLUMNS],
        spaces=_space_table(spaces_model, storey_guid, placer),
        doors=_door_table(doors_model, storey_guid, placer),
        stairs=_stair_table(stairs_model, storey_guid, placer),
        walkable={storey_guid[k]: placer.geometry(g) for k, g in walkable_model.items()},
        meshes=_meshes(elements, storey_guid, placer),
        warnings=warnings,
        without_geometry=failed,
    )
    building.timings = {
        "open_s": t_opened - t_start,
        "iterator_s": t_iterated - t_iter,
        "total_s": time.perf_counter() - t_start,
    }
    log.info(
        "%s: %s, %d storeys, %d spaces, %d doors, %d stairs, georeferenced=%s",
        p.name,
        f.schema,
        len(building.storeys),
        len(building.spaces),
        len(building.doors),
        len(building.stairs),
        placer.info["georeferenced"],
    )
    return building


# -- storeys -----------------------------------------------------------------------------------------------------
def _storeys(entities: list[Any], unit_scale: float, placer: _Placer) -> pd.DataFrame:
    rows = []
    for s in entities:
        ifc_elev = _number_or(s.Elevation, math.nan) * unit_scale
        m = _placement_matrix(s, unit_scale)
        origin = (
            m[:3, 3] if m is not None else np.array([0.0, 0.0, 0.0 if math.isnan(ifc_elev) else ifc_elev])
        )
        rows.append(
            {
                "step_id": s.id(),
                "guid": s.GlobalId,
                "name": s.Name,
                "model_z": float(origin[2]),
                "elevation_m": float(placer.points(origin.reshape(1, 3))[0, 2]),
                "elevation_ifc_m": ifc_elev,
            }
        )
    return pd.DataFrame(rows).sort_values("model_z", kind="stable").reset_index(drop=True)


def _assign_storeys_by_height(elements: dict[int, _Element], storeys: pd.DataFrame) -> None:
    """Elements outside every storey go to the highest storey at or below their lowest point."""
    zs = storeys["model_z"].to_numpy()
    ids = storeys["step_id"].to_numpy()
    for el in elements.values():
        if el.storey is None and math.isfinite(el.zmin):
            k = int(np.searchsorted(zs, el.zmin + 0.05, side="right")) - 1
            el.storey = int(ids[max(k, 0)])


# -- spaces ------------------------------------------------------------------------------------------------------
def _spaces(elements: dict[int, _Element]) -> list[dict[str, Any]]:
    out = []
    for el in elements.values():
        if el.family != "spaces":
            continue
        footprint = None
        if el.shape is not None and len(el.shape.faces):
            tri, _, _ = _tri_geometry(el.shape)
            footprint = _footprint([tri])
        out.append(
            {
                "guid": el.guid,
                "name": el.name,
                "long_name": getattr(el.entity, "LongName", None),
                "storey": el.storey,
                "zmin": el.zmin,
                "zmax": el.zmax,
                "footprint": footprint,
            }
        )
    return out


def _space_table(spaces: list[dict[str, Any]], storey_guid: dict[int, str], placer: _Placer) -> pd.DataFrame:
    rows = []
    for s in spaces:
        fp = placer.geometry(s["footprint"])
        z = placer.points(np.array([[0.0, 0.0, s["zmin"]]]))[0, 2] if math.isfinite(s["zmin"]) else math.nan
        rows.append(
            {
                "guid": s["guid"],
                "name": s["name"],
                "long_name": s["long_name"],
                "storey": storey_guid.get(s["storey"]),
                "z_m": float(z),
                "height_m": s["zmax"] - s["zmin"],
                "area_m2": math.nan if fp is None else float(fp.area),
                "footprint": fp,
            }
        )
    return pd.DataFrame(rows, columns=SPACE_COLUMNS)


# -- doors -------------------------------------------------------------------------------------------------------
def _doors(
    elements: dict[int, _Element], spaces: list[dict[str, Any]], rel: _Relations, unit_scale: float
) -> list[dict[str, Any]]:
    walls_by_storey: dict[int | None, list[_Element]] = defaultdict(list)
    for el in elements.values():
        if el.family == "walls" and el.shape is not None:
            walls_by_storey[el.storey].append(el)
    hulls: dict[int | None, BaseGeometry] = {}
    space_by_guid = {s["guid"]: s for s in spaces}
    out = []
    for el in elements.values():
        if not el.entity.is_a("IfcDoor"):
            continue
        e = el.entity
        wall = rel.host.get(e.id())
        door_m = _placement_matrix(e, unit_scale)
        if el.shape is not None and len(el.shape.verts):
            lo, hi = el.shape.verts.min(axis=0), el.shape.verts.max(axis=0)
            centre = 0.5 * (lo + hi)
            bottom = float(lo[2])
        elif door_m is not None:
            lo = hi = None
            centre = door_m[:3, 3].copy()
            bottom = float(centre[2])
        else:
            log.warning("door %s has neither geometry nor placement; position unknown", el.guid)
            lo = hi = None
            centre = np.full(3, math.nan)
            bottom = math.nan
        # wall direction: the host wall's placement x-axis, else the door's own (IFC puts door widths along x)
        wall_el = elements.get(wall.id()) if wall is not None else None
        axis_m = _placement_matrix(wall, unit_scale) if wall is not None else None
        if axis_m is None:
            axis_m = door_m
        d = np.array([1.0, 0.0]) if axis_m is None else axis_m[:2, 0].copy()
        if np.linalg.norm(d) < 1e-9:
            d = np.array([1.0, 0.0])
        d /= np.linalg.norm(d)
        n = np.array([-d[1], d[0]])
        width = _length(getattr(e, "OverallWidth", None), unit_scale)
        height = _length(getattr(e, "OverallHeight", None), unit_scale)
        if el.shape is not None and len(el.shape.verts):
            rel_xy = el.shape.verts[:, :2] - centre[:2]
            if width is None:
                along = rel_xy @ d
                width = float(along.max() - along.min())
            if height is None:
                height = float(hi[2] - lo[2])
        half = _half_wall_thickness(wall_el, el, centre, d, n, width or 1.0)
        # sides from space boundaries
        bound_spaces: list[str] = []
        external_boundary = False
        for b in getattr(e, "ProvidesBoundaries", ()) or ():
            sp = b.RelatingSpace
            if sp is not None and sp.is_a("IfcSpace") and sp.GlobalId not in bound_spaces:
                bound_spaces.append(sp.GlobalId)
            if b.InternalOrExternalBoundary == "EXTERNAL":
                external_boundary = True
        # sides from probes across the wall
        probes = [centre[:2] + sgn * (half + _PROBE_BEYOND_WALL_M) * n for sgn in (1.0, -1.0)]
        probe_z = bottom + 0.3
        found = [_space_at(pt, probe_z, spaces) for pt in probes]
        log.debug("door %s: boundaries %s, probes %s", el.guid, bound_spaces, found)
        sides = _resolve_sides(bound_spaces, found)
        if OUTSIDE not in sides and None in sides:
            external = external_boundary or _is_external(e) or _is_external(wall)
            for k in (0, 1):
                if sides[k] is None:
                    if external:
                        sides[k] = OUTSIDE
                    elif math.isfinite(probe_z):
                        hull = hulls.get(el.storey)
                        if hull is None:
                            hull = _storey_hull(walls_by_storey.get(el.storey, []), spaces, el.storey)
                            hulls[el.storey] = hull
                        if not hull.is_empty and not hull.contains(Point(probes[k])):
                            sides[k] = OUTSIDE
        if sides[0] is None and sides[1] is not None:
            sides = [sides[1], None]
        for s in sides:
            if s not in (None, OUTSIDE) and s not in space_by_guid:
                log.debug("door %s bounds space %s, which is not in the file's spaces", el.guid, s)
        out.append(
            {
                "guid": el.guid,
                "name": el.name,
                "storey": el.storey,
                "centre": np.array([centre[0], centre[1], bottom]),
                "width": math.nan if width is None else width,
                "height": math.nan if height is None else height,
                "side_a": sides[0],
                "side_b": sides[1],
                "passage": _passage(centre, d, n, width, half),
            }
        )
    return out


def _passage(
    centre: FloatArray, d: FloatArray, n: FloatArray, width: float | None, half: float
) -> BaseGeometry | None:
    """The door's opening through its wall as a rectangle (model metres), reaching 5 cm into the rooms."""
    if width is None or not np.isfinite(centre[:2]).all():
        return None
    a, b = 0.5 * width * d, (half + 0.05) * n
    c = centre[:2]
    return Polygon([c - a - b, c + a - b, c + a + b, c - a + b])


def _half_wall_thickness(
    wall: _Element | None, door: _Element, centre: FloatArray, d: FloatArray, n: FloatArray, width: float
) -> float:
    """Half the thickness of the host wall around the door (metres), from the wall's (and door's) vertices."""
    half = 0.0
    for el in (wall, door):
        if el is None or el.shape is None or not len(el.shape.verts):
            continue
        rel_xy = el.shape.verts[:, :2] - centre[:2]
        near = np.abs(rel_xy @ d) <= 0.5 * width + 0.3
        if el is wall:
            near &= (el.shape.verts[:, 2] >= door.zmin - 0.05) & (el.shape.verts[:, 2] <= door.zmax + 0.05)
        if near.any():
            half = max(half, float(np.abs(rel_xy[near] @ n).max()))
    return half if half > 0 else _DEFAULT_HALF_WALL_M


def _space_at(xy: FloatArray, z: float, spaces: list[dict[str, Any]]) -> str | None:
    if not math.isfinite(z) or not np.isfinite(xy).all():
        return None
    for s in spaces:
        fp = s["footprint"]
        if fp is None or not (s["zmin"] - 0.3 <= z <= s["zmax"]):
            continue
        if shapely.contains_xy(fp, xy[0], xy[1]):
            return s["guid"]
    return None


def _resolve_sides(bound: list[str], found: list[str | None]) -> list[str | None]:
    """Combine the spaces of the door's boundaries with the spaces found by the two probes.

    Probes say which side is which. Where the boundaries name at most two spaces they are trusted for identity
    (a probe that disagrees is replaced); where they name more (some exporters attach the door to every space
    sharing its wall) the probes decide and the boundaries only confirm.
    """
    a, b = found
    if a is not None and a == b:
        b = None
    if not bound:
        return [a, b]
    if len(bound) > 2:
        return [a, b]
    sides = [x if x in bound else None for x in (a, b)]
    remaining = [x for x in bound if x not in sides]
    for k in (0, 1):
        if sides[k] is None and remaining:
            sides[k] = remaining.pop(0)
    return sides


def _storey_hull(walls: list[_Element], spaces: list[dict[str, Any]], storey: int | None) -> BaseGeometry:
    pts = [w.shape.verts[:, :2] for w in walls]
    pts += [np.asarray(s["footprint"].exterior.coords)[:, :2] for s in spaces if _single(s, storey)]
    if not pts:
        return Polygon()
    return MultiPoint(np.concatenate(pts)).convex_hull


def _single(space: dict[str, Any], storey: int | None) -> bool:
    return space["storey"] == storey and isinstance(space["footprint"], Polygon)


def _door_table(doors: list[dict[str, Any]], storey_guid: dict[int, str], placer: _Placer) -> pd.DataFrame:
    if not doors:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DOOR_COLUMNS})
    xyz = placer.points(np.array([d["centre"] for d in doors]))
    rows = []
    for d, (x, y, z) in zip(doors, xyz, strict=True):
        rows.append(
            {
                "guid": d["guid"],
                "name": d["name"],
                "storey": storey_guid.get(d["storey"]),
                "x_m": float(x),
                "y_m": float(y),
                "z_m": float(z),
                "width_m": float(d["width"]),
                "height_m": float(d["height"]),
                "side_a": d["side_a"],
                "side_b": d["side_b"],
            }
        )
    return pd.DataFrame(rows, columns=DOOR_COLUMNS)


# -- stairs ------------------------------------------------------------------------------------------------------
def _stairs(
    elements: dict[int, _Element], rel: _Relations, storeys: pd.DataFrame
) -> tuple[list[dict[str, Any]], list[str]]:
    warnings: list[str] = []
    out = []
    zs = storeys["model_z"].to_numpy()
    ids = storeys["step_id"].to_numpy()
    for el in elements.values():
        e = el.entity
        if not (e.is_a("IfcStair") or e.is_a("IfcStairFlight")):
            continue
        if e.is_a("IfcStairFlight") and any(u.is_a("IfcStair") for u in rel.ancestors(e)):
            continue  # counted with its stair
        parts = [el] + [
            elements[c.id()]
            for c in rel.descendants(e)
            if c.id() in elements and not c.is_a("IfcRailing") and not c.is_a("IfcStair")
        ]
        tris = []
        for part in parts:
            if part.shape is not None and len(part.shape.faces):
                tris.append(_tri_geometry(part.shape))
        row: dict[str, Any] = {"guid": el.guid, "name": el.name, "ifc_class": el.ifc_class}
        if not tris:
            warnings.append(
                f"stair {el.guid} ({el.name}) has no geometry; its storeys and lengths are unknown"
            )
            log.warning("stair %s has no geometry", el.guid)
            row.update(from_storey=el.storey, to_storey=None, footprint=None, line=None)
            out.append(row)
            continue
        tri = np.concatenate([t[0] for t in tris])
        area = np.concatenate([t[1] for t in tris])
        nz = np.concatenate([t[2] for t in tris])
        footprint = _footprint([tri])
        line, riser = _walking_line(tri, area, nz, footprint)
        # storeys: containing storey (or the one at the bottom), then the one above nearest to the top
        from_id = el.storey
        bottom_z, top_z = float(line[0, 2]), float(line[-1, 2])
        if from_id is None:
            from_id = int(ids[int(np.argmin(np.abs(zs - bottom_z)))])
        from_z = float(zs[ids == from_id][0])
        above = [(abs(z - top_z), int(i)) for z, i in zip(zs, ids, strict=True) if z > from_z + 0.1]
        to_id = min(above)[1] if above else None
        if to_id is None:
            warnings.append(f"stair {el.guid} ({el.name}) reaches no storey above its own")
        # the first and last steps land on the floors: snap the ends to storey elevations within one riser
        if abs(bottom_z - from_z) <= riser:
            line[0, 2] = from_z
        if to_id is not None:
            to_z = float(zs[ids == to_id][0])
            if abs(top_z - to_z) <= riser:
                line[-1, 2] = to_z
        row.update(from_storey=from_id, to_storey=to_id, footprint=footprint, line=line)
        out.append(row)
    return out, warnings


def _walking_line(
    tri: FloatArray, area: FloatArray, nz: FloatArray, footprint: BaseGeometry | None
) -> tuple[FloatArray, float]:
    """Walking line (k, 3) model metres from the bottom to the top of the stair, and the mean riser (metres).

    The line runs through the tread centres and one riser (and half a going) beyond the first and last tread.

    Treads are the up-facing horizontal faces grouped by height (1 cm); levels much smaller than a typical tread
    (nosings, post tops) are dropped and the longest run of evenly spaced levels is kept.
    """
    up = (nz > 0.95) & (area > 1e-6)
    centres = tri[up].mean(axis=1)
    a = area[up]
    if len(a) >= 2:
        keys = np.round(centres[:, 2] / 0.01).astype(np.int64)
        levels, inv = np.unique(keys, return_inverse=True)
        lvl_area = np.bincount(inv, weights=a)
        lvl_xy = (
            np.column_stack(
                [np.bincount(inv, weights=a * centres[:, 0]), np.bincount(inv, weights=a * centres[:, 1])]
            )
            / lvl_area[:, None]
        )
        lvl_z = np.bincount(inv, weights=a * centres[:, 2]) / lvl_area
        keep = lvl_area >= 0.3 * np.percentile(lvl_area, 75)
        lvl_xy, lvl_z = lvl_xy[keep], lvl_z[keep]
        if len(lvl_z) >= 2:
            gaps = np.diff(lvl_z)
            riser = float(np.median(gaps))
            breaks = np.flatnonzero(gaps > 2.0 * riser)
            starts = np.concatenate([[0], breaks + 1])
            ends = np.concatenate([breaks + 1, [len(lvl_z)]])
            best = int(np.argmax(ends - starts))
            s, t = int(starts[best]), int(ends[best])
            xy, z = lvl_xy[s:t], lvl_z[s:t]
            if len(z) >= 2:
                riser = float((z[-1] - z[0]) / (len(z) - 1))
                first = xy[0] - 0.5 * (xy[1] - xy[0])
                last = xy[-1] + 0.5 * (xy[-1] - xy[-2])
                pts = np.vstack(
                    [
                        [*first, z[0] - riser],
                        np.column_stack([xy, z]),
                        [*last, z[-1] + riser],
                    ]
                )
                return pts, riser
    # no treads: the long axis of the footprint's minimum rectangle, bottom to top of the geometry
    zmin, zmax = float(tri[:, :, 2].min()), float(tri[:, :, 2].max())
    if footprint is None or footprint.is_empty:
        c = tri[:, :, :2].reshape(-1, 2).mean(axis=0)
        return np.array([[*c, zmin], [*c, zmax]]), 0.0
    rect = np.asarray(footprint.minimum_rotated_rectangle.exterior.coords)[:4]
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    if np.linalg.norm(e1) >= np.linalg.norm(e2):
        a0, a1 = 0.5 * (rect[0] + rect[3]), 0.5 * (rect[1] + rect[2])
    else:
        a0, a1 = 0.5 * (rect[0] + rect[1]), 0.5 * (rect[2] + rect[3])
    return np.array([[*a0, zmin], [*a1, zmax]]), 0.0


def _stair_table(stairs: list[dict[str, Any]], storey_guid: dict[int, str], placer: _Placer) -> pd.DataFrame:
    rows = []
    for s in stairs:
        line = s["line"]
        if line is None:
            run = length = rise = math.nan
            bottom = top = None
        else:
            loc = placer.points(line)
            run = float(np.linalg.norm(np.diff(loc[:, :2], axis=0), axis=1).sum())
            rise = float(loc[-1, 2] - loc[0, 2])
            length = math.hypot(run, rise)
            bottom = tuple(float(v) for v in loc[0])
            top = tuple(float(v) for v in loc[-1])
        rows.append(
            {
                "guid": s["guid"],
                "name": s["name"],
                "ifc_class": s["ifc_class"],
                "from_storey": storey_guid.get(s["from_storey"]),
                "to_storey": storey_guid.get(s["to_storey"]),
                "footprint": placer.geometry(s["footprint"]),
                "run_m": run,
                "length_m": length,
                "rise_m": rise,
                "bottom": bottom,
                "top": top,
            }
        )
    return pd.DataFrame(rows, columns=STAIR_COLUMNS)


# -- walkable area -----------------------------------------------------------------------------------------------
def _walkable(
    elements: dict[int, _Element],
    spaces: list[dict[str, Any]],
    doors: list[dict[str, Any]],
    stairs: list[dict[str, Any]],
    storeys: pd.DataFrame,
) -> dict[int, BaseGeometry]:
    """Walkable area per storey step id (model metres): spaces + door passages + stairs starting there."""
    out: dict[int, BaseGeometry] = {}
    space_ids = {s["guid"] for s in spaces if s["footprint"] is not None}
    for sid in storeys["step_id"]:
        parts = [s["footprint"] for s in spaces if s["storey"] == sid and s["footprint"] is not None]
        if parts:
            parts += [
                s["footprint"] for s in stairs if s["from_storey"] == sid and s["footprint"] is not None
            ]
            parts += [
                d["passage"]
                for d in doors
                if d["storey"] == sid
                and d["passage"] is not None
                and (d["side_a"] in space_ids or d["side_b"] in space_ids)
            ]
            merged = _union(parts)
            out[sid] = Polygon() if merged is None else _clean(merged)
            continue
        slabs = [
            _tri_geometry(el.shape)[0]
            for el in elements.values()
            if el.family == "slabs" and el.storey == sid and el.shape is not None
        ]
        walls = [
            _tri_geometry(el.shape)[0]
            for el in elements.values()
            if el.family == "walls" and el.storey == sid and el.shape is not None
        ]
        floor = _footprint(slabs)
        if floor is None:
            out[sid] = Polygon()
            continue
        blocked = _footprint(walls)
        out[sid] = floor if blocked is None else _difference(floor, blocked)
    return out


# -- meshes ------------------------------------------------------------------------------------------------------
def _meshes(elements: dict[int, _Element], storey_guid: dict[int, str], placer: _Placer) -> dict[str, Mesh]:
    by_family: dict[str, list[_Element]] = {fam: [] for fam in FAMILIES}
    for sid in sorted(elements):
        el = elements[sid]
        by_family[el.family].append(el)
    meshes = {}
    for fam, els in by_family.items():
        verts, faces, face_el = [], [], []
        offset = 0
        for row, el in enumerate(els):
            if el.shape is None or not len(el.shape.faces):
                continue
            verts.append(el.shape.verts)
            faces.append(el.shape.faces.astype(np.int64) + offset)
            face_el.append(np.full(len(el.shape.faces), row, dtype=np.int64))
            offset += len(el.shape.verts)
        table = pd.DataFrame(
            {
                "guid": [el.guid for el in els],
                "ifc_class": [el.ifc_class for el in els],
                "name": [el.name for el in els],
                "storey": [storey_guid.get(el.storey) for el in els],
            },
            columns=ELEMENT_COLUMNS,
        )
        if verts:
            v = placer.points(np.concatenate(verts))
            meshes[fam] = Mesh(v, np.concatenate(faces), np.concatenate(face_el), table)
        else:
            empty = Mesh.empty()
            meshes[fam] = Mesh(empty.vertices, empty.faces, empty.face_element, table)
    return meshes
