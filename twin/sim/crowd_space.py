"""The space a crowd moves in: walkable rasters, walls, exits and stairs per level, navigation fields, exit choice.

A :class:`CrowdSpace` is built from plain scenario areas (:meth:`CrowdSpace.from_areas`) or from an IFC building
(:meth:`CrowdSpace.from_building`) and hands the C++ crowd core (``twin._core.CrowdSim``) everything it needs in
its own conventions: a raster shared by all levels, walkable cells, exit cells, walls as
segments, stairs as connector rows, and distance fields towards exits computed with
:class:`twin.spatial.DistanceField`.

Levels are indexed 0..L-1 bottom-up (by elevation). All coordinates are metres in the city's local frame.

How geometry becomes cells is documented in :mod:`twin.sim.rasterize` (half-coverage rule on 4 x 4 samples,
plus thin walls kept closed). The whole exit region is walkable. Walls are the outline of (walkable ∪ exits) of
each level, so agents walk from the walkable area into an exit region without meeting a wall; the exit region's
far edges are walls too, which is harmless since an agent is removed as soon as its centre enters an exit cell.

Exit cells (where the core removes an agent) are the walkable cells whose centre lies in the exit polygon
(border included) and at least :data:`EXIT_SETBACK_M` (0.5 m) beyond the walkable area short of the exits (the
area's polygons minus all exit polygons; for an IFC door, its centre line). People so pass through a door as
through a real opening, the next in line following the one ahead out instead of finding the doorway empty the
moment a centre crosses the door line: with removal at the door line the collision-free speed model put 2.65 P/s
through a 1 m door (laboratory: 1.5-2.0 P/s, Seyfried et al. 2009); removal one body length beyond it gives
laboratory flows with both models (as JuPedSim's exit polygons placed beyond a door). An exit region less deep
than that keeps its deepest cells (a note in :attr:`CrowdSpace.warnings`), and so does one the walkable area
surrounds (a 1 m square inside a room leaves one cell at its middle); draw a door's exit region about 1 m deep
beyond the door (as in ``scenarios/bottleneck.yaml``). ``twin run`` prints the notes and lists them in
``summary.json`` (``crowd.warnings``). Exit times are thus those of reaching the exit cells, about 0.4 s
after crossing the door line; flows are unaffected.

Stairs in distance fields
-------------------------
A stair is a connector between its foot cell (lower level) and head cell (upper level) whose cost is its slope
length in flat-walking metres: ``length_m * flat_speed / stair_speed``, with the *down* speed for people who
descend (walk from the head to the foot) and the *up* speed for people who ascend. The C++ connectors are
symmetric, so the direction is resolved by iteration: every stair starts at the cheaper (down) cost; after a
field is computed, each stair that a shortest route climbs gets the up cost and the field is recomputed, until
no stair changes. With positive costs a stair is used in at most one direction by a field (both directions
would need a zero cost), and a stair used by no route keeps the smaller cost, which no route wants either, so
the fixed point is exactly the field of the directed problem (it satisfies its Bellman equations, which have
one solution). Field values are therefore walking times × ``flat_speed``: metres at the flat walking speed.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from shapely import wkt as shapely_wkt
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from twin.errors import InputError
from twin.sim.rasterize import aligned_grid, boundary_segments, cell_centres, centre_mask, rasterize
from twin.spatial import DistanceField, SegmentIndex2D, get_num_threads
from twin.typing import FloatArray, Int32Array, IntArray

log = logging.getLogger(__name__)

__all__ = ["EXIT_SETBACK_M", "CrowdSpace", "SpaceCheck"]

FLAT_SPEED_MPS = 1.34
"""Default flat walking speed (Weidmann's free-flow speed), m/s."""
STAIR_SPEED_DOWN_MPS = 0.79
"""Default speed along the slope going down (mid-range of Fruin's 0.60-1.01 m/s), m/s."""
STAIR_SPEED_UP_MPS = 0.68
"""Default speed along the slope going up (mid-range of the handbooks' 0.55-0.80 m/s), m/s."""
EXIT_FLOW_PPS_PER_M = 1.3
"""Specific flow through an exit used to turn a queue into a waiting time, persons/(m·s)."""
EXIT_SETBACK_M = 0.5
"""Exit cells (where an agent is removed) start this far beyond the walkable area, metres: about one body length
beyond the door line (see the module docstring)."""
STAIR_SNAP_M = 1.0
"""A stair end may be moved to the nearest walkable cell centre within this distance, metres."""

_Z_TOL = 1e-6
_EXIT_COLUMNS = ["id", "name", "guid", "level", "polygon", "width_m", "n_cells", "source", "path"]
_STAIR_COLUMNS = [
    "id",
    "name",
    "from_level",
    "to_level",
    "foot_x",
    "foot_y",
    "head_x",
    "head_y",
    "foot_iy",
    "foot_ix",
    "head_iy",
    "head_ix",
    "length_m",
    "width_m",
    "source",
    "path",
]
_AREA_COLUMNS = ["id", "kind", "guid", "level", "polygon", "source", "path"]


# ---------------------------------------------------------------------------------------------------------------
# Input helpers


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for other objects (pydantic models), else ``default``."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _polygon(value: Any, source: str, path: str) -> BaseGeometry:
    """A valid, non-empty (Multi)Polygon from WKT text or a shapely geometry; InputError naming ``path``."""
    if isinstance(value, str):
        try:
            geom = shapely_wkt.loads(value)
        except (shapely.errors.ShapelyError, ValueError, TypeError) as exc:
            raise InputError(
                source, f"{path} is not valid WKT ({exc}); expected e.g. 'POLYGON ((0 0, ...))'"
            ) from None
    elif isinstance(value, BaseGeometry):
        geom = value
    else:
        raise InputError(
            source,
            f"{path} must be a WKT string or a shapely Polygon/MultiPolygon, got {type(value).__name__}",
        )
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(source, f"{path} must be a Polygon or MultiPolygon, got a {geom.geom_type}")
    if not geom.is_empty and not geom.is_valid:
        raise InputError(
            source, f"{path} is not a valid polygon ({shapely.is_valid_reason(geom)}); fix its rings"
        )
    if geom.is_empty or geom.area <= 0:
        raise InputError(source, f"{path} is empty (zero area); expected a polygon with an area")
    if not np.isfinite(np.asarray(geom.bounds)).all():
        raise InputError(source, f"{path} has non-finite coordinates")
    return geom


def _opening_width(exit_poly: BaseGeometry, walk: BaseGeometry) -> float:
    """Width of an exit: the length of the walkable outline it covers (the opening people cross), metres.

    An exit lying wholly inside the walkable area covers no outline; then the longer side of its minimum rotated
    rectangle is used.
    """
    opening = walk.boundary.intersection(exit_poly)
    length = float(opening.length) if not opening.is_empty else 0.0
    if length > 1e-9:
        return length
    rect = np.asarray(exit_poly.minimum_rotated_rectangle.exterior.coords)
    sides = np.hypot(*np.diff(rect[:3], axis=0).T)
    return float(sides.max())


# ---------------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SpaceCheck:
    """What :meth:`CrowdSpace.validate` found.

    components : one row per connected walkable region (4-neighbour cells, joined through stairs): ``component``
        (int), ``levels`` (list of level indices), ``n_cells``, ``area_m2``, ``reachable`` (bool: its cells have a
        finite distance to some exit), ``areas`` (ids of the named areas with cells in it).
    unreachable_cells : (L, ny, nx) bool, walkable cells from which no exit can be reached.
    """

    components: pd.DataFrame
    unreachable_cells: np.ndarray

    @property
    def n_unreachable(self) -> int:
        return int(self.unreachable_cells.sum())


@dataclass(eq=False)
class CrowdSpace:
    """Walkable rasters, walls, exits and stairs of several levels, in the crowd core's conventions.

    cell_size : cell edge h, metres. All levels share the raster shape (ny, nx).
    origins : (L, 2) float64 metres, lower-left corner of cell (0, 0) of each level.
    level_z : (L,) float64 metres, elevation of each level (ascending).
    level_names : L names (storey names, or the ids of the areas on the level joined by "+").
    walkable : (L, ny, nx) uint8, 1 where people may stand (exit regions included).
    exit_cells : (L, ny, nx) int32, -1 or the row of :attr:`exits` whose region covers the cell (from
        :data:`EXIT_SETBACK_M` beyond the walkable area on, see the module docstring).
    exits : DataFrame, one row per exit: ``id`` (scenario exit id or door GUID), ``name``, ``guid``, ``level``,
        ``polygon`` (shapely, metres), ``width_m``, ``n_cells`` (exit cells), ``source`` (scenario or IFC file) and
        ``path`` (the scenario field path, e.g. ``city.areas[0].exits[1]``; None for IFC doors).
    walls : (w, 4) float64 rows [x0, y0, x1, y1], metres: outline of (walkable ∪ exits) of each level.
    wall_levels : (w,) int32 level of each wall.
    stairs : (s, 8) float64 rows [level_a, xa, ya, level_b, xb, yb, length_m, width_m]: foot (xa, ya) on the
        lower level_a, head (xb, yb) on the upper level_b, each the given end point if its cell is walkable, else
        the centre of the nearest walkable cell within 1 m; length along the slope and width in metres.
    stairs_table : DataFrame, one row per stair (same order): ``id``, ``name``, ``from_level``, ``to_level``, foot and
        head positions and cells (``foot_iy, foot_ix, head_iy, head_ix``, the connector cells of the distance
        fields), ``length_m``, ``width_m``, ``source``, ``path``.
    areas : DataFrame of named walkable areas for population placement: ``id``, ``kind`` ("area", "storey" or
        "space"), ``guid``, ``level``, ``polygon`` (shapely, metres), ``source``, ``path``.
    source : where the space came from (scenario file or IFC path).
    warnings : notes on input that was left out (stairs without geometry, exits without position...), and for an
        IFC building the loader's notes on it (elements without geometry, a CRS that is not projected...).

    The arrays may be edited in place (e.g. closing cells a hazard makes impassable): fields and samples are
    computed from the current ``walkable`` each time (the cached DistanceField is keyed on its content).
    """

    cell_size: float
    origins: FloatArray
    level_z: FloatArray
    level_names: list[str]
    walkable: np.ndarray
    exit_cells: np.ndarray
    exits: pd.DataFrame
    walls: FloatArray
    wall_levels: Int32Array
    stairs: FloatArray
    stairs_table: pd.DataFrame
    areas: pd.DataFrame
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    _df_cache: dict[Any, DistanceField] = field(default_factory=dict, init=False, repr=False)
    _nav_cache: dict[Any, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.cell_size = float(self.cell_size)
        self.origins = np.ascontiguousarray(self.origins, dtype=np.float64).reshape(-1, 2)
        self.level_z = np.ascontiguousarray(self.level_z, dtype=np.float64).reshape(-1)
        self.walkable = np.ascontiguousarray(self.walkable, dtype=np.uint8)
        self.exit_cells = np.ascontiguousarray(self.exit_cells, dtype=np.int32)
        self.walls = np.ascontiguousarray(self.walls, dtype=np.float64).reshape(-1, 4)
        self.wall_levels = np.ascontiguousarray(self.wall_levels, dtype=np.int32).reshape(-1)
        self.stairs = np.ascontiguousarray(self.stairs, dtype=np.float64).reshape(-1, 8)
        n = self.n_levels
        if not (len(self.level_z) == len(self.level_names) == n and self.walkable.ndim == 3):
            raise ValueError(
                f"CrowdSpace: origins {self.origins.shape}, level_z {self.level_z.shape}, "
                f"{len(self.level_names)} names and walkable {self.walkable.shape} disagree on the level count"
            )
        if self.walkable.shape[0] != n or self.exit_cells.shape != self.walkable.shape:
            raise ValueError(
                f"CrowdSpace: walkable {self.walkable.shape} and exit_cells {self.exit_cells.shape} must be "
                f"({n}, ny, nx)"
            )

    # -- shape ------------------------------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return int(self.origins.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(L, ny, nx) of every raster and field."""
        return tuple(int(v) for v in self.walkable.shape)  # type: ignore[return-value]

    @property
    def n_exits(self) -> int:
        return len(self.exits)

    def level_of(self, name: str) -> int:
        """Index of the level named ``name`` (KeyError listing the names otherwise)."""
        try:
            return self.level_names.index(name)
        except ValueError:
            raise KeyError(f"no level named {name!r}; levels are {self.level_names}") from None

    def exit_index(self, exit_id: str | int) -> int:
        """Row of :attr:`exits` for an exit id (or name), or an int row passed through (checked)."""
        if isinstance(exit_id, int | np.integer):
            i = int(exit_id)
            if not 0 <= i < self.n_exits:
                raise KeyError(f"exit index {i} out of range 0..{self.n_exits - 1}")
            return i
        hit = np.flatnonzero(self.exits["id"].to_numpy() == exit_id)
        if hit.size == 0:
            hit = np.flatnonzero(self.exits["name"].to_numpy() == exit_id)
        if hit.size != 1:
            raise KeyError(
                f"no exit {exit_id!r}"
                if hit.size == 0
                else f"{hit.size} exits are named {exit_id!r}; use the id"
            ) from None
        return int(hit[0])

    def cell_centres(self, level: int, iy: np.ndarray, ix: np.ndarray) -> FloatArray:
        """(k, 2) float64 metres: centres of cells (iy, ix) (k,) int on ``level``."""
        return cell_centres(self.origins[level], self.cell_size, np.asarray(iy), np.asarray(ix))

    def locate(self, positions: FloatArray, levels: Int32Array) -> IntArray:
        """Cells (n, 3) int64 (level, iy, ix) of points (n, 2) float64 metres on levels (n,); rows of -1 outside."""
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        lev = np.ascontiguousarray(levels, dtype=np.int64).reshape(-1)
        return self._field_engine(()).locate(pos, lev)

    def walkable_at(self, positions: FloatArray, level: int) -> np.ndarray:
        """(n,) bool: whether each point (n, 2) float64 metres lies in a walkable cell of ``level``."""
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        cells = self.locate(pos, np.full(len(pos), int(level), dtype=np.int32))
        inside = cells[:, 0] >= 0
        out = np.zeros(len(pos), dtype=bool)
        out[inside] = self.walkable[cells[inside, 0], cells[inside, 1], cells[inside, 2]] > 0
        return out

    # -- construction: scenario areas ----------------------------------------------------------------------------
    @classmethod
    def from_areas(
        cls,
        areas: Sequence[Any],
        *,
        cell_size: float = 0.2,
        source: str = "scenario.yaml",
        path: str = "city.areas",
        stairs: Sequence[Any] | None = None,
        stairs_path: str = "stairs",
    ) -> CrowdSpace:
        """A space from plain 2-D areas (the scenario's ``city.areas``).

        areas : mappings (or objects) with ``id`` (str), ``walkable`` (WKT or shapely Polygon/MultiPolygon, metres;
            holes are obstacles), ``z`` (float metres, default 0) and ``exits`` (list of ``{id, polygon, width_m?}``;
            ``polygon`` WKT or shapely; ``width_m`` overrides the measured opening). Areas at the same z (within
            1 µm) share a level and overlapping areas on a level are unioned.
        cell_size : raster cell edge, metres (default 0.2 m, about an agent's body radius).
        source : the scenario file named in errors; ``path`` the field path of ``areas`` in it.
        stairs : optional stairs between areas at different z: mappings with ``id``, ``from_area`` and ``to_area``
            (area ids, the lower and the upper), ``foot`` and ``head`` ((x, y) metres), ``length_m`` (along the
            slope) and ``width_m``. Errors name ``stairs_path[i]``.

        Raises InputError naming the field path and ``source`` for: bad or missing fields, duplicate ids, an
        exit that does not touch its area or covers no cell, no exit at all, an area from which no exit can be
        reached (see :meth:`validate`).
        """
        h = _cell_size(cell_size, source)
        if isinstance(areas, str | bytes) or not isinstance(areas, Sequence) or len(areas) == 0:
            raise InputError(source, f"{path} must be a non-empty list of areas")
        parsed = []
        seen_area: dict[str, int] = {}
        seen_exit: dict[str, str] = {}
        for i, a in enumerate(areas):
            p = f"{path}[{i}]"
            aid = _get(a, "id")
            if not isinstance(aid, str) or not aid:
                raise InputError(source, f"{p}.id must be a non-empty string, got {aid!r}")
            if aid in seen_area:
                raise InputError(
                    source, f"{p}.id {aid!r} repeats {path}[{seen_area[aid]}].id; ids must be unique"
                )
            seen_area[aid] = i
            walk = _polygon(_get(a, "walkable"), source, f"{p}.walkable")
            try:
                z = float(_get(a, "z", 0.0) if _get(a, "z", None) is not None else 0.0)
            except (TypeError, ValueError):
                raise InputError(source, f"{p}.z must be a number (metres), got {_get(a, 'z')!r}") from None
            if not math.isfinite(z):
                raise InputError(source, f"{p}.z must be finite, got {z}")
            exits_in = _get(a, "exits", None) or []
            if isinstance(exits_in, str | bytes) or not isinstance(exits_in, Sequence):
                raise InputError(source, f"{p}.exits must be a list of {{id, polygon}}")
            exits = []
            for j, e in enumerate(exits_in):
                pe = f"{p}.exits[{j}]"
                eid = _get(e, "id")
                if not isinstance(eid, str) or not eid:
                    raise InputError(source, f"{pe}.id must be a non-empty string, got {eid!r}")
                if eid in seen_exit:
                    raise InputError(
                        source, f"{pe}.id {eid!r} repeats {seen_exit[eid]}.id; exit ids must be unique"
                    )
                seen_exit[eid] = pe
                poly = _polygon(_get(e, "polygon"), source, f"{pe}.polygon")
                overlap = poly.intersection(walk)
                opening = walk.boundary.intersection(poly)
                if overlap.area <= 1e-12 and opening.length <= 1e-9:
                    where = "touches it only at a point" if poly.intersects(walk) else "lies outside it"
                    raise InputError(
                        source,
                        f"{pe}: exit {eid!r} does not touch the walkable area of area {aid!r} ({where}); an exit "
                        "must share an edge with or overlap its area's walkable polygon",
                    )
                width = _get(e, "width_m", None)
                if width is None:
                    width = _opening_width(poly, walk)
                else:
                    try:
                        width = float(width)
                    except (TypeError, ValueError):
                        raise InputError(source, f"{pe}.width_m must be a number, got {width!r}") from None
                    if not (math.isfinite(width) and width > 0):
                        raise InputError(source, f"{pe}.width_m must be > 0, got {width}")
                exits.append(
                    {"id": eid, "polygon": poly, "width_m": float(width), "source": source, "path": pe}
                )
            parsed.append({"id": aid, "walkable": walk, "z": z, "exits": exits, "path": p})
        if not seen_exit:
            raise InputError(source, f"{path} defines no exit; at least one area needs an exits entry")

        # levels by z
        zs = sorted({a["z"] for a in parsed})
        level_z: list[float] = []
        for z in zs:
            if not level_z or z - level_z[-1] > _Z_TOL:
                level_z.append(z)
        level_of_area = {a["id"]: int(np.argmin(np.abs(np.asarray(level_z) - a["z"]))) for a in parsed}
        L = len(level_z)
        names = ["+".join(a["id"] for a in parsed if level_of_area[a["id"]] == k) for k in range(L)]
        geoms = []
        for k in range(L):
            parts = [a["walkable"] for a in parsed if level_of_area[a["id"]] == k]
            parts += [e["polygon"] for a in parsed if level_of_area[a["id"]] == k for e in a["exits"]]
            geoms.append(shapely.union_all(parts))
        exit_rows = [
            {**e, "name": e["id"], "guid": None, "level": level_of_area[a["id"]]}
            for a in parsed
            for e in a["exits"]
        ]
        area_rows = [
            {
                "id": a["id"],
                "kind": "area",
                "guid": None,
                "level": level_of_area[a["id"]],
                "polygon": a["walkable"],
                "source": source,
                "path": a["path"],
            }
            for a in parsed
        ]
        stair_specs = _parse_area_stairs(stairs, parsed, level_of_area, source, stairs_path)
        space = cls._build(
            geoms=geoms,
            level_z=np.asarray(level_z),
            level_names=names,
            cell_size=h,
            exit_rows=exit_rows,
            area_rows=area_rows,
            stair_specs=stair_specs,
            source=source,
        )
        space.validate()
        return space

    # -- construction: IFC building -----------------------------------------------------------------------------
    @classmethod
    def from_building(cls, building: Any, *, cell_size: float = 0.2, exit_depth_m: float = 1.0) -> CrowdSpace:
        """A space from an IFC building (:class:`twin.city.building.Building`).

        Levels: one per storey with walkable area (a storey whose walkable polygon is empty, such as a foundation
        level without spaces or slabs, is not a level); names and elevations from the storeys table.
        Walkable: ``building.walkable`` (spaces, door passages and stair footprints).
        Exits: every door with ``"outside"`` on one side, on a storey that is a level. Its region is a rectangle
        as wide as the door, from the door's centre line (the middle of the wall) outward through the rest of the
        door passage and ``exit_depth_m`` beyond it; its exit cells start :data:`EXIT_SETBACK_M` beyond the door's
        middle (an agent has left the building once its centre is that far through). The outward direction is
        away from the space on the inside side (or, when that space is unknown, away from the walkable area around
        the door). ``id`` = door GUID, ``name`` = door name.
        Stairs: foot = ``bottom`` (x, y) on ``from_storey``'s level, head = ``top`` on ``to_storey``'s level, each
        moved to the nearest walkable cell centre within 1 m; ``length_m`` = the stair's slope length; width =
        footprint area / run, capped by the short side of the footprint's minimum rotated rectangle.
        Stairs without geometry or without an upper storey are left out (logged, listed in ``warnings``).
        ``warnings`` starts with the IFC loader's notes on the building (``building.warnings``), each prefixed
        with the building's id.
        Areas: one row per storey level (id = storey name) and per space with a footprint (id = space name).

        Raises InputError naming the IFC file and the building when it has no exit to the outside, and the stair
        GUID when an end of a stair is not within 1 m of a walkable cell. Reachability of areas is not checked
        here (a model may hold spaces nobody can reach, such as a roof void); call :meth:`validate` with the areas
        people are placed in.
        """
        h = _cell_size(cell_size, building.source)
        depth = float(exit_depth_m)
        if not (math.isfinite(depth) and depth > 0):
            raise ValueError(f"exit_depth_m must be > 0, got {exit_depth_m!r}")
        src = str(building.source)
        # (the loader's notes on the building travel with the space: a run's summary lists them with its own)
        warnings: list[str] = [f"building {building.id!r}: {w}" for w in building.warnings]
        storeys = building.storeys
        level_guid: list[str] = []
        names: list[str] = []
        zs: list[float] = []
        walks: list[BaseGeometry] = []
        for _, st in storeys.iterrows():
            g = building.walkable.get(st["guid"])
            if g is None or g.is_empty or g.area <= 0:
                log.info(
                    "storey %s (%s) has no walkable area; it is not a crowd level", st["name"], st["guid"]
                )
                continue
            if not g.is_valid:
                g = _polygonal(shapely.make_valid(g))
                log.info("storey %s: walkable polygon was invalid and was repaired", st["name"])
            level_guid.append(st["guid"])
            names.append(str(st["name"]) if st["name"] is not None else st["guid"])
            zs.append(float(st["elevation_m"]))
            walks.append(g)
        if not level_guid:
            raise InputError(
                src, f"building {building.id!r} has no storey with walkable area", element=building.id
            )
        level_by_guid = {g: k for k, g in enumerate(level_guid)}
        footprint_by_space = dict(zip(building.spaces["guid"], building.spaces["footprint"], strict=True))

        exit_rows = []
        for _, d in building.exits().iterrows():
            k = level_by_guid.get(d["storey"])
            what = f"exit door {d['guid']} ({d['name']})"
            if k is None:
                msg = f"{what} is on storey {d['storey']}, which has no walkable area; left out"
                warnings.append(msg)
                log.warning(msg)
                continue
            if not (math.isfinite(d["x_m"]) and math.isfinite(d["y_m"])):
                msg = f"{what} has no position; left out"
                warnings.append(msg)
                log.warning(msg)
                continue
            width = float(d["width_m"])
            if not (math.isfinite(width) and width > 0):
                width = 0.9
                msg = f"{what} has no width; 0.9 m assumed"
                warnings.append(msg)
                log.warning(msg)
            inside = d["side_b"] if d["side_a"] == "outside" else d["side_a"]
            poly = _door_exit_region(
                np.array([d["x_m"], d["y_m"]], dtype=np.float64),
                width,
                walks[k],
                footprint_by_space.get(inside),
                depth,
            )
            exit_rows.append(
                {
                    "id": d["guid"],
                    "name": d["name"],
                    "guid": d["guid"],
                    "level": k,
                    "polygon": poly,
                    "width_m": width,
                    "source": src,
                    "path": None,
                }
            )
        if not exit_rows:
            raise InputError(
                src,
                f"building {building.id!r} has no door to the outside on a storey with walkable area, so nobody "
                "can leave it; expected at least one IfcDoor with 'outside' on one side",
                element=building.id,
            )

        stair_specs = []
        for _, s in building.stairs.iterrows():
            what = f"stair {s['guid']} ({s['name']})"
            ka, kb = level_by_guid.get(s["from_storey"]), level_by_guid.get(s["to_storey"])
            if s["bottom"] is None or s["top"] is None or s["to_storey"] is None:
                msg = f"{what} has no walking line or no storey above; left out"
                warnings.append(msg)
                log.warning(msg)
                continue
            if ka is None or kb is None:
                msg = f"{what} links a storey without walkable area; left out"
                warnings.append(msg)
                log.warning(msg)
                continue
            length = float(s["length_m"])
            if not (math.isfinite(length) and length > 0):
                msg = f"{what} has no length; left out"
                warnings.append(msg)
                log.warning(msg)
                continue
            stair_specs.append(
                {
                    "id": s["guid"],
                    "name": s["name"],
                    "from_level": ka,
                    "to_level": kb,
                    "foot": (float(s["bottom"][0]), float(s["bottom"][1])),
                    "head": (float(s["top"][0]), float(s["top"][1])),
                    "length_m": length,
                    "width_m": _stair_width(s["footprint"], float(s["run_m"])),
                    "source": src,
                    "path": None,
                }
            )

        area_rows = [
            {
                "id": names[k],
                "kind": "storey",
                "guid": level_guid[k],
                "level": k,
                "polygon": walks[k],
                "source": src,
                "path": None,
            }
            for k in range(len(level_guid))
        ]
        for _, sp in building.spaces.iterrows():
            k = level_by_guid.get(sp["storey"])
            fp = sp["footprint"]
            if k is None or fp is None or fp.is_empty:
                continue
            area_rows.append(
                {
                    "id": sp["name"] if sp["name"] is not None else sp["guid"],
                    "kind": "space",
                    "guid": sp["guid"],
                    "level": k,
                    "polygon": fp,
                    "source": src,
                    "path": None,
                }
            )
        geoms = [
            shapely.union_all([walks[k], *[e["polygon"] for e in exit_rows if e["level"] == k]])
            for k in range(len(walks))
        ]
        return cls._build(
            geoms=geoms,
            level_z=np.asarray(zs),
            level_names=names,
            cell_size=h,
            exit_rows=exit_rows,
            area_rows=area_rows,
            stair_specs=stair_specs,
            source=src,
            warnings=warnings,
        )

    @classmethod
    def _build(
        cls,
        *,
        geoms: list[BaseGeometry],
        level_z: FloatArray,
        level_names: list[str],
        cell_size: float,
        exit_rows: list[dict[str, Any]],
        area_rows: list[dict[str, Any]],
        stair_specs: list[dict[str, Any]],
        source: str,
        warnings: list[str] | None = None,
    ) -> CrowdSpace:
        """Rasterise the levels' (walkable ∪ exits) geometries, mark exit cells, snap stairs."""
        h = cell_size
        warnings = list(warnings or [])
        L = len(geoms)
        bounds = np.array([g.bounds for g in geoms])
        origin, ny, nx = aligned_grid(
            (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()), h
        )
        if ny * nx * L > 50_000_000:
            raise InputError(
                source,
                f"the walkable area spans {nx} x {ny} cells on {L} levels at {h} m; that raster is too large "
                "(> 5e7 cells); use a larger cell_size or a smaller area",
            )
        walkable = np.zeros((L, ny, nx), dtype=np.uint8)
        for k, g in enumerate(geoms):
            walkable[k] = rasterize(g, origin, h, ny, nx)[0]
        exit_cells = np.full((L, ny, nx), -1, dtype=np.int32)
        # the walkable area short of the exits: exit cells start EXIT_SETBACK_M beyond it (see the module doc)
        inner = [
            g.difference(shapely.union_all([e["polygon"] for e in exit_rows if e["level"] == k]))
            for k, g in enumerate(geoms)
        ]
        for i, e in enumerate(exit_rows):
            k = e["level"]
            m = centre_mask(e["polygon"], origin, h, ny, nx) & (walkable[k] > 0) & (exit_cells[k] < 0)
            if m.any() and not inner[k].is_empty and EXIT_SETBACK_M > 0:
                iy, ix = np.nonzero(m)
                c = cell_centres(origin, h, iy, ix)
                d = shapely.distance(inner[k], shapely.points(c[:, 0], c[:, 1]))
                deepest = float(d.max())
                if deepest < EXIT_SETBACK_M:
                    msg = (
                        f"{_where(e)}exit {e['id']!r} reaches only {deepest:.2f} m beyond the walkable area; agents "
                        f"leave at its far cells (an exit region at least {EXIT_SETBACK_M + h:g} m deep lets them "
                        "walk through the opening first, for realistic door flows)"
                    )
                    log.info(msg)
                    warnings.append(msg)
                setback = min(EXIT_SETBACK_M, deepest)
                keep = d >= setback - 1e-9
                m[iy[~keep], ix[~keep]] = False
                kept = int(keep.sum())
                if 4 * kept < keep.size:
                    # (an exit region the walkable area surrounds, e.g. a 1 m square in a room: one cell is left)
                    msg = (
                        f"{_where(e)}exit {e['id']!r}: only {kept} of its {keep.size} cells lie "
                        f"{setback:.2f} m beyond the walkable area, where agents leave (the "
                        "walkable area surrounds most of it); draw it beyond its opening, or larger"
                    )
                    log.info(msg)
                    warnings.append(msg)
            n = int(m.sum())
            if n == 0:
                raise InputError(
                    e["source"],
                    f"{_where(e)}exit {e['id']!r} covers no walkable cell centre at cell size {h} m (is it narrower than "
                    "a cell, or overlapped by an earlier exit?); make the exit region at least one cell deep and "
                    "wide",
                    element=e["guid"],
                )
            exit_cells[k][m] = i
            e["n_cells"] = n
        exits = pd.DataFrame(exit_rows, columns=_EXIT_COLUMNS)
        segs, seg_lev = [], []
        for k, g in enumerate(geoms):
            s = boundary_segments(g)
            segs.append(s)
            seg_lev.append(np.full(len(s), k, dtype=np.int32))
        origins = np.repeat(origin[None, :], L, axis=0)
        stair_rows = []
        stair_arr = np.zeros((len(stair_specs), 8), dtype=np.float64)
        for j, s in enumerate(stair_specs):
            ends = []
            for key, lev in (("foot", s["from_level"]), ("head", s["to_level"])):
                cell = _snap(walkable[lev], origin, h, s[key])
                if cell is None:
                    raise InputError(
                        s["source"],
                        f"the {key} of stair {s['id']!r} at ({s[key][0]:.3f}, {s[key][1]:.3f}) on level "
                        f"{level_names[lev]!r} is not within {STAIR_SNAP_M} m of a walkable cell; the stair must "
                        "land on walkable floor",
                        element=s["path"] or s["id"],
                    )
                ends.append(cell)
            (fy, fx), (hy, hx) = ends
            foot = _landing(s["foot"], origin, h, fy, fx)
            head = _landing(s["head"], origin, h, hy, hx)
            stair_arr[j] = [s["from_level"], *foot, s["to_level"], *head, s["length_m"], s["width_m"]]
            stair_rows.append(
                {
                    "id": s["id"],
                    "name": s["name"],
                    "from_level": s["from_level"],
                    "to_level": s["to_level"],
                    "foot_x": foot[0],
                    "foot_y": foot[1],
                    "head_x": head[0],
                    "head_y": head[1],
                    "foot_iy": fy,
                    "foot_ix": fx,
                    "head_iy": hy,
                    "head_ix": hx,
                    "length_m": s["length_m"],
                    "width_m": s["width_m"],
                    "source": s["source"],
                    "path": s["path"],
                }
            )
        space = cls(
            cell_size=h,
            origins=origins,
            level_z=level_z,
            level_names=list(level_names),
            walkable=walkable,
            exit_cells=exit_cells,
            exits=exits,
            walls=np.concatenate(segs) if segs else np.zeros((0, 4)),
            wall_levels=np.concatenate(seg_lev) if seg_lev else np.zeros(0, dtype=np.int32),
            stairs=stair_arr,
            stairs_table=pd.DataFrame(stair_rows, columns=_STAIR_COLUMNS),
            areas=pd.DataFrame(area_rows, columns=_AREA_COLUMNS),
            source=source,
            warnings=list(warnings or []),
        )
        log.info(
            "crowd space from %s: %d levels, %d x %d cells of %g m, %d walkable, %d exits, %d stairs, %d walls",
            source,
            L,
            nx,
            ny,
            h,
            int(walkable.sum()),
            len(exits),
            len(stair_rows),
            len(space.walls),
        )
        return space

    @classmethod
    def combine(cls, spaces: Sequence[CrowdSpace]) -> CrowdSpace:
        """One space holding the levels of several (e.g. scenario areas and buildings), sorted by elevation.

        Levels are never merged (two buildings with a ground floor at z = 0 keep two levels); each keeps its own
        origin and the rasters are padded to the largest (ny, nx). Exits, stairs, walls and areas are renumbered.
        All spaces must share the cell size.
        """
        if not spaces:
            raise ValueError("combine needs at least one CrowdSpace")
        if len(spaces) == 1:
            return spaces[0]
        h = spaces[0].cell_size
        if any(abs(s.cell_size - h) > 1e-12 for s in spaces):
            raise ValueError(f"combine: cell sizes differ: {[s.cell_size for s in spaces]}")
        ny = max(s.shape[1] for s in spaces)
        nx = max(s.shape[2] for s in spaces)
        levels = [(float(s.level_z[k]), i, k) for i, s in enumerate(spaces) for k in range(s.n_levels)]
        order = sorted(levels)
        new_index = {(i, k): n for n, (_, i, k) in enumerate(order)}
        L = len(order)
        walkable = np.zeros((L, ny, nx), dtype=np.uint8)
        exit_cells = np.full((L, ny, nx), -1, dtype=np.int32)
        origins = np.zeros((L, 2))
        exit_offset = np.cumsum([0] + [s.n_exits for s in spaces])
        for n, (_, i, k) in enumerate(order):
            s = spaces[i]
            _, sy, sx = s.shape
            walkable[n, :sy, :sx] = s.walkable[k]
            ec = s.exit_cells[k]
            exit_cells[n, :sy, :sx] = np.where(ec >= 0, ec + exit_offset[i], -1)
            origins[n] = s.origins[k]
        remap = [
            np.array([new_index[(i, k)] for k in range(s.n_levels)], dtype=np.int32)
            for i, s in enumerate(spaces)
        ]
        exits = pd.concat(
            [
                s.exits.assign(level=remap[i][s.exits["level"].to_numpy(dtype=np.int64)])
                for i, s in enumerate(spaces)
            ],
            ignore_index=True,
        )
        areas = pd.concat(
            [
                s.areas.assign(level=remap[i][s.areas["level"].to_numpy(dtype=np.int64)])
                for i, s in enumerate(spaces)
            ],
            ignore_index=True,
        )
        st_tables, st_arrays = [], []
        for i, s in enumerate(spaces):
            t = s.stairs_table.copy()
            a = s.stairs.copy()
            if len(t):
                t["from_level"] = remap[i][t["from_level"].to_numpy(dtype=np.int64)]
                t["to_level"] = remap[i][t["to_level"].to_numpy(dtype=np.int64)]
                a[:, 0] = remap[i][a[:, 0].astype(np.int64)]
                a[:, 3] = remap[i][a[:, 3].astype(np.int64)]
            st_tables.append(t)
            st_arrays.append(a)
        return cls(
            cell_size=h,
            origins=origins,
            level_z=np.array([z for z, _, _ in order]),
            level_names=[spaces[i].level_names[k] for _, i, k in order],
            walkable=walkable,
            exit_cells=exit_cells,
            exits=exits,
            walls=np.concatenate([s.walls for s in spaces]),
            wall_levels=np.concatenate([remap[i][s.wall_levels] for i, s in enumerate(spaces)]).astype(
                np.int32
            ),
            stairs=np.concatenate(st_arrays),
            stairs_table=pd.concat(st_tables, ignore_index=True),
            areas=areas,
            source="; ".join(s.source for s in spaces),
            warnings=[w for s in spaces for w in s.warnings],
        )

    # -- distance fields ----------------------------------------------------------------------------------------
    def _field_engine(
        self, costs: tuple[float, ...], stencil: int = 32, walkable: np.ndarray | None = None
    ) -> DistanceField:
        """A DistanceField over the walkable raster (or ``walkable``, e.g. the clearance raster) with the stairs as
        connectors of the given costs (cached)."""
        walkable = self.walkable if walkable is None else walkable
        key = (costs, stencil, zlib.crc32(walkable.tobytes()), self.origins.tobytes(), self.cell_size)
        df = self._df_cache.get(key)
        if df is None:
            if costs:
                t = self.stairs_table
                conn = np.column_stack(
                    [
                        t["from_level"].to_numpy(np.float64),
                        t["foot_iy"].to_numpy(np.float64),
                        t["foot_ix"].to_numpy(np.float64),
                        t["to_level"].to_numpy(np.float64),
                        t["head_iy"].to_numpy(np.float64),
                        t["head_ix"].to_numpy(np.float64),
                        np.asarray(costs, dtype=np.float64),
                    ]
                )
            else:
                conn = None
            df = DistanceField(
                walkable,
                cell_size=self.cell_size,
                origins=self.origins,
                connectors=conn,
                stencil=stencil,
            )
            if len(self._df_cache) > 16:
                self._df_cache.clear()
            self._df_cache[key] = df
        return df

    def default_exit_sets(self) -> list[list[int]]:
        """One set per exit (in the order of :attr:`exits`), then one with all exits."""
        return [[i] for i in range(self.n_exits)] + [list(range(self.n_exits))]

    def stair_costs(
        self,
        *,
        flat_speed: float = FLAT_SPEED_MPS,
        stair_speed_down: float = STAIR_SPEED_DOWN_MPS,
        stair_speed_up: float = STAIR_SPEED_UP_MPS,
    ) -> tuple[FloatArray, FloatArray]:
        """(down, up) (s,) float64: each stair's cost in flat-walking metres, descending and ascending."""
        for name, v in (
            ("flat_speed", flat_speed),
            ("stair_speed_down", stair_speed_down),
            ("stair_speed_up", stair_speed_up),
        ):
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise ValueError(f"{name} must be a finite speed > 0 m/s, got {v!r}")
        length = self.stairs[:, 6]
        return length * flat_speed / stair_speed_down, length * flat_speed / stair_speed_up

    def distance_fields(
        self,
        exit_sets: Sequence[Sequence[int | str]] | None = None,
        *,
        flat_speed: float = FLAT_SPEED_MPS,
        stair_speed_down: float = STAIR_SPEED_DOWN_MPS,
        stair_speed_up: float = STAIR_SPEED_UP_MPS,
        stencil: int = 32,
        clearance_m: float = 0.0,
        cost: FloatArray | None = None,
    ) -> list[FloatArray]:
        """Navigation fields: walking distance to the nearest exit of each set, in flat-walking metres.

        With ``clearance_m`` > 0 (crowd navigation: about a body radius) routes keep that far from walls: the
        field is computed over the cells whose centre is at least ``clearance_m`` from every non-walkable cell
        (exit and stair-end cells always count), then extended into the margin along walls by a second pass
        seeded with those distances. People near a wall are so led back into the clear part before a door
        instead of straight at the door jamb, and a door of width w is approached through its middle
        w − 2·clearance. Reachability is the same as without clearance.

        exit_sets : lists of exits (row indices of :attr:`exits` or exit ids); default :meth:`default_exit_sets`
            (one field per exit, then one for all exits).
        flat_speed, stair_speed_down, stair_speed_up : m/s; a stair costs ``length_m * flat_speed / speed`` with
            the speed of the direction a route takes it (see the module docstring).
        stencil : DistanceField stencil (32: within 1.31 % of the Euclidean distance in open space).
        cost : (L, ny, nx) float64, optional per-cell cost factor (finite, > 0; e.g. free speed / local speed in a
            crowd, for quickest instead of shortest routes): a step between two cells costs its length times
            the mean of their factors (see :meth:`twin.spatial.DistanceField.compute`), stairs keep their cost.
            The fields are then in free-flow walking metres (time × flat speed). None: plain distances.
        Returns a list of (L, ny, nx) float64 arrays, metres; 0 on exit cells of the set, ``inf`` on
        non-walkable cells and cells from which no exit of the set can be reached.
        """
        sets = self.default_exit_sets() if exit_sets is None else exit_sets
        down, up = self.stair_costs(
            flat_speed=flat_speed, stair_speed_down=stair_speed_down, stair_speed_up=stair_speed_up
        )
        if cost is not None:
            cost = np.ascontiguousarray(cost, dtype=np.float64)
            if cost.shape != self.shape:
                raise ValueError(f"cost must be {self.shape} float64, got {cost.shape}")
        clear = self._cached_clearance_mask(clearance_m) if clearance_m > 0 else None
        rows = [self._exit_rows(s) for s in sets]
        workers = min(get_num_threads(), len(rows))
        if workers <= 1:
            return [self._field_for(r, down, up, stencil, clear, cost) for r in rows]
        # Fields are independent and the engines release the GIL, so they are computed side by side; each result
        # is the same as computed alone, whatever the thread count. Build the shared engines first.
        self._field_engine(tuple(np.minimum(down, up).tolist()) if len(down) else (), stencil, clear)
        self._field_engine(tuple(np.minimum(down, up).tolist()) if len(down) else (), stencil)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda r: self._field_for(r, down, up, stencil, clear, cost), rows))

    def _nav_key(self, *parts: Any) -> tuple[Any, ...]:
        """A cache key for navigation data of the current raster, walls and stairs (all may be edited in place)."""
        arrays = (self.walkable, self.exit_cells, self.walls, self.wall_levels, self.stairs, self.origins)
        return (*parts, self.cell_size, *(zlib.crc32(np.ascontiguousarray(a).tobytes()) for a in arrays))

    def _cached_clearance_mask(self, clearance_m: float) -> np.ndarray:
        key = self._nav_key("clear", float(clearance_m))
        mask = self._nav_cache.get(key)
        if mask is None:
            mask = self._clearance_mask(clearance_m)
            if len(self._nav_cache) > 64:
                self._nav_cache.clear()
            self._nav_cache[key] = mask
        return mask

    def _clearance_mask(self, clearance_m: float) -> np.ndarray:
        """(L, ny, nx) uint8: walkable cells whose centre is at least ``clearance_m`` from every wall segment and
        from every non-walkable cell (centre distance minus half a cell), plus every exit cell and stair end cell.

        The walls are the exact boundary the bodies collide with; a raster alone misjudges a door jamb by up to
        half a cell, which is enough to route people straight into it."""
        h = self.cell_size
        clear = np.zeros_like(self.walkable)
        index = SegmentIndex2D(self.walls, levels=self.wall_levels) if len(self.walls) else None
        for level in range(self.n_levels):
            walk = self.walkable[level] > 0
            edt = ndimage.distance_transform_edt(walk)
            clear[level] = (edt * h - 0.5 * h >= clearance_m - 1e-9) & walk
            if index is not None:
                iy, ix = np.nonzero(clear[level])
                centres = self.cell_centres(level, iy, ix)
                near = index.nearest(
                    centres, levels=np.full(len(iy), level, dtype=np.int32), max_distance=clearance_m
                )
                tight = np.asarray(near.distance) < clearance_m - 1e-9
                clear[level, iy[tight], ix[tight]] = 0
        clear[self.exit_cells >= 0] = 1
        t = self.stairs_table
        if len(t):
            clear[t["from_level"].to_numpy(int), t["foot_iy"].to_numpy(int), t["foot_ix"].to_numpy(int)] = 1
            clear[t["to_level"].to_numpy(int), t["head_iy"].to_numpy(int), t["head_ix"].to_numpy(int)] = 1
        return clear

    def wall_cost(self, *, extra: float, range_m: float) -> FloatArray:
        """Walking-cost factor (L, ny, nx) float64 >= 1 that keeps routes off walls: ``1 + extra · (1 − d /
        range_m)`` for a walkable cell whose centre is d < ``range_m`` metres from the nearest wall segment, 1
        elsewhere (also on exit cells and non-walkable cells).

        For :meth:`distance_fields`' ``cost``: people keep a distance from walls and do not walk along them when
        they need not (Weidmann 1993's boundary layer; Fruin's edge effect), so routes approach a door along its
        axis rather than sliding along the wall beside it into the door jamb, and a crowd turning a corner does
        not press against the inner wall. The walls are the exact segments (door openings have none)."""
        if not (math.isfinite(extra) and extra >= 0):
            raise ValueError(f"extra must be a finite number >= 0, got {extra!r}")
        if not (math.isfinite(range_m) and range_m > 0):
            raise ValueError(f"range_m must be a finite distance > 0 metres, got {range_m!r}")
        cost = np.ones(self.shape, dtype=np.float64)
        if extra == 0 or len(self.walls) == 0:
            return cost
        index = SegmentIndex2D(self.walls, levels=self.wall_levels)
        for level in range(self.n_levels):
            iy, ix = np.nonzero((self.walkable[level] > 0) & (self.exit_cells[level] < 0))
            if len(iy) == 0:
                continue
            near = index.nearest(
                self.cell_centres(level, iy, ix),
                levels=np.full(len(iy), level, dtype=np.int32),
                max_distance=range_m,
            )
            d = np.minimum(np.asarray(near.distance, dtype=np.float64), range_m)  # (inf beyond range_m)
            cost[level, iy, ix] = 1.0 + extra * (1.0 - d / range_m)
        return cost

    def _exit_rows(self, exit_set: Sequence[int | str]) -> list[int]:
        if isinstance(exit_set, str | int | np.integer):
            raise TypeError(f"an exit set must be a list of exits, got {exit_set!r}")
        rows = sorted({self.exit_index(e) for e in exit_set})
        if not rows:
            raise ValueError("an exit set is empty")
        return rows

    def _field_for(
        self,
        rows: list[int],
        down: FloatArray,
        up: FloatArray,
        stencil: int,
        clear: np.ndarray | None = None,
        factor: FloatArray | None = None,
    ) -> FloatArray:
        mask = np.isin(self.exit_cells, np.asarray(rows, dtype=np.int32))
        targets = np.argwhere(mask).astype(np.int64)
        d, cost = self._settled_field(targets, down, up, stencil, clear, factor)
        if clear is None:
            return d
        # Extend into the margin along walls, seeded with the clear cells' distances (not the exit cells': a
        # margin cell must lead back into the clear part, not along the wall straight at the door jamb).
        seeds = np.isfinite(d) & ~mask
        out = None
        reach_key = self._nav_key("reach", tuple(rows), stencil)
        if seeds.any():
            engine = self._field_engine(tuple(cost.tolist()) if len(cost) else (), stencil)
            out = engine.compute(np.argwhere(seeds).astype(np.int64), d[seeds], cost=factor)
            out[mask] = 0.0
            reach = self._nav_cache.get(reach_key)
            if reach is not None and np.isfinite(out[reach]).all():
                return (
                    out  # every cell that can reach the exits has a clear route: the plain field adds nothing
                )
        # regions with no clear route at all (behind passages narrower than twice the clearance) keep the plain
        # field: reachability never changes (and does not depend on costs, so it is cached)
        plain, _ = self._settled_field(targets, down, up, stencil, None, factor)
        if len(self._nav_cache) > 64:
            self._nav_cache.clear()
        self._nav_cache[reach_key] = np.isfinite(plain)
        if out is None:
            return plain
        return np.where(np.isfinite(out), out, plain)

    def _settled_field(
        self,
        targets: np.ndarray,
        down: FloatArray,
        up: FloatArray,
        stencil: int,
        walkable: np.ndarray | None,
        factor: FloatArray | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """The field to ``targets`` with each stair costed in the direction routes take it; also the costs.
        ``factor``: the optional per-cell cost factor (:meth:`distance_fields`' ``cost``)."""
        s = len(self.stairs)
        cost = np.minimum(down, up)
        t = self.stairs_table
        foot = (
            t["from_level"].to_numpy(np.int64),
            t["foot_iy"].to_numpy(np.int64),
            t["foot_ix"].to_numpy(np.int64),
        )
        head = (
            t["to_level"].to_numpy(np.int64),
            t["head_iy"].to_numpy(np.int64),
            t["head_ix"].to_numpy(np.int64),
        )
        for _ in range(2 * s + 2):
            d = self._field_engine(tuple(cost.tolist()) if s else (), stencil, walkable).compute(
                targets, cost=factor
            )
            if s == 0:
                return d, cost
            df, dh = d[foot], d[head]
            both = np.isfinite(df) & np.isfinite(dh)
            dfz, dhz = np.where(both, df, 0.0), np.where(both, dh, 0.0)
            tol = 1e-9 * np.maximum(1.0, np.maximum(dfz, dhz))
            descend = both & (np.abs(dhz - (dfz + cost)) <= tol)  # people at the head walk down to the foot
            ascend = both & (np.abs(dfz - (dhz + cost)) <= tol)  # people at the foot walk up to the head
            new = np.where(ascend, up, np.where(descend, down, np.minimum(down, up)))
            if np.array_equal(new, cost):
                return d, cost
            cost = new
        log.warning("stair costs did not settle for exits %s; the last field is used", targets[:1].tolist())
        return d, cost

    # -- sampling and exit choice -------------------------------------------------------------------------------
    def sample_distance(self, field: FloatArray, positions: FloatArray, levels: Int32Array) -> FloatArray:
        """Distances (n,) float64 metres of ``field`` (L, ny, nx) at points (n, 2) float64 metres on levels (n,).

        Bilinear between cell centres where the four cells around the point are finite (see
        :meth:`twin.spatial.DistanceField.sample`); ``inf`` outside the raster or where unreachable.
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        lev = np.ascontiguousarray(levels, dtype=np.int64).reshape(-1)
        if len(lev) != len(pos):
            raise ValueError(f"levels must be ({len(pos)},), got {np.shape(levels)}")
        f = np.ascontiguousarray(field, dtype=np.float64)
        if f.shape != self.shape:
            raise ValueError(f"field must be {self.shape} float64, got {f.shape}")
        return self._field_engine(()).sample(f, pos, lev)

    def count_near_exits(
        self,
        fields: Sequence[FloatArray],
        positions: FloatArray,
        levels: Int32Array,
        *,
        within_m: float = 3.0,
    ) -> IntArray:
        """(E,) int64: for each per-exit field, the number of agents within ``within_m`` walking metres of it.

        ``fields`` are one distance field per exit (as the first E fields of :meth:`distance_fields`); the counts
        are the queues :meth:`choose_exits` turns into waiting times.
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        return np.array(
            [int(np.count_nonzero(self.sample_distance(f, pos, levels) <= within_m)) for f in fields],
            dtype=np.int64,
        )

    def choose_exits(
        self,
        positions: FloatArray,
        levels: Int32Array,
        speeds: FloatArray,
        fields: Sequence[FloatArray],
        *,
        queue_counts: IntArray | None = None,
        widths: FloatArray | None = None,
        current: Int32Array | None = None,
        allowed: np.ndarray | None = None,
        flow_pps_per_m: float = EXIT_FLOW_PPS_PER_M,
        min_gain: float = 0.10,
        min_gain_s: float = 2.0,
        distances: FloatArray | None = None,
    ) -> Int32Array:
        """Each agent's quickest exit: (n,) int32 index into ``fields`` (-1 if no allowed exit is reachable).

        positions : (n, 2) float64 metres; levels : (n,) int; speeds : (n,) float64 m/s (> 0), each agent's own.
        fields : E distance fields (L, ny, nx), one per candidate exit (e.g. the first E of
            :meth:`distance_fields`); exit e is the one of ``fields[e]``.
        queue_counts : (E,) agents queued near each exit (e.g. :meth:`count_near_exits`); default none.
        widths : (E,) metres, default ``exits.width_m`` (requires E == number of exits).
        current : (n,) int, each agent's current choice (-1 for none); switching away from it needs the new
            exit to be at least ``min_gain`` (relative) *and* ``min_gain_s`` seconds quicker (hysteresis), unless
            the current one is unreachable or not allowed.
        allowed : (n, E) or (E,) bool: the exits each agent may use (assigned escape routes); default all.
        distances : (n, E) float64 metres, precomputed ``sample_distance`` of each field (skips sampling).

        Expected time to leave by exit e = distance_e / speed + queue_e / (flow_pps_per_m × width_e).
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        n, E = len(pos), len(fields)
        v = np.asarray(speeds, dtype=np.float64).reshape(-1)
        if v.shape != (n,) or not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"speeds must be ({n},) finite and > 0 m/s")
        if E == 0:
            return np.full(n, -1, dtype=np.int32)
        if widths is None:
            if E != self.n_exits:
                raise ValueError(f"widths are needed: {E} fields but {self.n_exits} exits")
            widths = self.exits["width_m"].to_numpy(np.float64)
        w = np.asarray(widths, dtype=np.float64).reshape(-1)
        q = np.zeros(E) if queue_counts is None else np.asarray(queue_counts, dtype=np.float64).reshape(-1)
        if w.shape != (E,) or q.shape != (E,) or not np.all(w > 0):
            raise ValueError(f"widths (> 0) and queue_counts must be ({E},), got {w.shape} and {q.shape}")
        if distances is None:
            dist = np.column_stack([self.sample_distance(f, pos, levels) for f in fields])
        else:
            dist = np.asarray(distances, dtype=np.float64)
            if dist.shape != (n, E):
                raise ValueError(f"distances must be ({n}, {E}), got {dist.shape}")
        t = dist / v[:, None] + (q / (float(flow_pps_per_m) * w))[None, :]
        if allowed is not None:
            a = np.asarray(allowed, dtype=bool)
            if a.shape not in ((n, E), (E,)):
                raise ValueError(f"allowed must be ({n}, {E}) or ({E},) bool, got {a.shape}")
            t = np.where(np.broadcast_to(a, (n, E)), t, np.inf)
        best = np.argmin(t, axis=1).astype(np.int32)
        t_best = t[np.arange(n), best]
        best[~np.isfinite(t_best)] = -1
        if current is None:
            return best
        cur = np.asarray(current, dtype=np.int64).reshape(-1)
        if cur.shape != (n,):
            raise ValueError(f"current must be ({n},), got {cur.shape}")
        valid = (cur >= 0) & (cur < E)
        t_cur = np.full(n, np.inf)
        t_cur[valid] = t[np.flatnonzero(valid), cur[valid]]
        better = (t_best <= (1.0 - min_gain) * t_cur) & (t_best <= t_cur - min_gain_s)
        keep = np.isfinite(t_cur) & ~better
        return np.where(keep, cur, best).astype(np.int32)

    # -- checks ------------------------------------------------------------------------------------------------
    def components(self) -> tuple[np.ndarray, int]:
        """Connected walkable regions: labels (L, ny, nx) int64 (0 = not walkable, 1..n) and their count n.

        Cells are connected through their 4 neighbours (the distance field's stencil moves need every swept cell
        walkable, so diagonal-only contacts do not connect) and through stairs.
        """
        L = self.n_levels
        labels = np.zeros(self.shape, dtype=np.int64)
        offset = 0
        for k in range(L):
            lab, n = ndimage.label(self.walkable[k] > 0)
            labels[k] = np.where(lab > 0, lab + offset, 0)
            offset += n
        if len(self.stairs) and offset:
            parent = np.arange(offset + 1)

            def find(a: int) -> int:
                while parent[a] != a:
                    parent[a] = parent[parent[a]]
                    a = parent[a]
                return a

            t = self.stairs_table
            for la, fy, fx, lb, hy, hx in zip(
                t["from_level"],
                t["foot_iy"],
                t["foot_ix"],
                t["to_level"],
                t["head_iy"],
                t["head_ix"],
                strict=True,
            ):
                a, b = find(int(labels[la, fy, fx])), find(int(labels[lb, hy, hx]))
                if a != b:
                    parent[max(a, b)] = min(a, b)
            roots = np.array([find(i) for i in range(offset + 1)])
            uniq, dense = np.unique(roots, return_inverse=True)
            labels = dense[labels]
            offset = len(uniq) - 1
        return labels, offset

    def area_cells(self, area: int | str) -> np.ndarray:
        """(L, ny, nx) bool: walkable cells whose centre lies in the named area (row index or id)."""
        row = self._area_row(area)
        a = self.areas.iloc[row]
        k = int(a["level"])
        out = np.zeros(self.shape, dtype=bool)
        out[k] = centre_mask(a["polygon"], self.origins[k], self.cell_size, *self.shape[1:]) & (
            self.walkable[k] > 0
        )
        return out

    def _area_row(self, area: int | str) -> int:
        if isinstance(area, int | np.integer):
            return int(area)
        hit = np.flatnonzero(self.areas["id"].to_numpy() == area)
        if hit.size == 0:
            raise KeyError(f"no area {area!r}; areas are {self.areas['id'].tolist()}")
        return int(hit[0])

    def validate(
        self, areas: Iterable[int | str] | None = None, *, field: FloatArray | None = None
    ) -> SpaceCheck:
        """Check that people placed in ``areas`` (ids or rows of :attr:`areas`; default all) can leave.

        Every exit must cover at least one walkable cell, and every walkable cell of each area must reach an exit
        (a finite distance in the all-exits field, ``field`` if given). An area with unreachable cells raises
        InputError naming the area id (its scenario field path or IFC file), the level, the unreachable area in m²
        and where it is. Returns the connected regions found (:class:`SpaceCheck`) so a caller can report them.
        """
        for i, e in self.exits.iterrows():
            if not (self.exit_cells == i).any():
                raise InputError(
                    e["source"], f"{_where(e)}exit {e['id']!r} covers no walkable cell", element=e["guid"]
                )
        d = self.distance_fields([list(range(self.n_exits))])[0] if field is None else field
        reach = np.isfinite(d)
        walk = self.walkable > 0
        unreachable = walk & ~reach
        labels, n = self.components()
        rows = None if areas is None else [self._area_row(a) for a in areas]
        area_members: dict[int, list[str]] = {}
        errors = []
        for r in range(len(self.areas)) if rows is None else rows:
            a = self.areas.iloc[r]
            cells = self.area_cells(r)
            for c in np.unique(labels[cells]):
                area_members.setdefault(int(c), []).append(str(a["id"]))
            bad = cells & unreachable
            if bad.any():
                k, iy, ix = np.nonzero(bad)
                xy = self.cell_centres(int(k[0]), iy, ix)
                errors.append(
                    (
                        a,
                        f"{int(bad.sum()) * self.cell_size**2:.1f} m² of area {a['id']!r} ({a['kind']} on level "
                        f"{self.level_names[int(a['level'])]!r}, of {int(cells.sum()) * self.cell_size**2:.1f} m²) "
                        f"cannot reach any exit (around x {xy[:, 0].min():.1f}..{xy[:, 0].max():.1f}, "
                        f"y {xy[:, 1].min():.1f}..{xy[:, 1].max():.1f} m); connect it by a door, exit or stair",
                    )
                )
        comp_rows = []
        h2 = self.cell_size**2
        flat = labels.ravel()
        counts = np.bincount(flat, minlength=n + 1)
        reach_count = np.bincount(flat, weights=reach.ravel(), minlength=n + 1)
        # (component, level) pairs present, in order: one key per cell, counted (a unique over rows sorts them)
        n_levels = self.n_levels
        level_of_cell = np.broadcast_to(np.arange(n_levels)[:, None, None], labels.shape).ravel()
        inside = flat > 0
        key = flat[inside].astype(np.int64) * n_levels + level_of_cell[inside]
        present = np.flatnonzero(np.bincount(key, minlength=(n + 1) * n_levels))
        levels_of: dict[int, list[int]] = {}
        for c, k in zip(*np.divmod(present, n_levels), strict=True):
            levels_of.setdefault(int(c), []).append(int(k))
        for c in range(1, n + 1):
            lv = levels_of.get(c, [])
            comp_rows.append(
                {
                    "component": c,
                    "levels": lv,
                    "n_cells": int(counts[c]),
                    "area_m2": float(counts[c] * h2),
                    "reachable": bool(reach_count[c] > 0),
                    "areas": area_members.get(c, []),
                }
            )
        check = SpaceCheck(components=pd.DataFrame(comp_rows), unreachable_cells=unreachable)
        for row in check.components.itertuples():
            if not row.reachable:
                log.info(
                    "walkable region %d on levels %s (%.1f m², areas %s) has no exit",
                    row.component,
                    row.levels,
                    row.area_m2,
                    row.areas,
                )
        if errors:
            a, msg = errors[0]
            more = (
                f" ({len(errors) - 1} more areas too: {[str(e[0]['id']) for e in errors[1:]]})"
                if len(errors) > 1
                else ""
            )
            raise InputError(a["source"], _where(a) + msg + more, element=a["guid"])
        return check


# ---------------------------------------------------------------------------------------------------------------
# Construction helpers


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (a repaired polygon may come back as a collection with lines)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else Polygon()


def _where(row: Any) -> str:
    """``"city.areas[0].exits[1]: "`` for rows from a scenario, ``""`` otherwise."""
    p = row["path"] if "path" in row else None
    return f"{p}: " if isinstance(p, str) and p else ""


def _cell_size(cell_size: float, source: str) -> float:
    h = float(cell_size)
    if not (math.isfinite(h) and 0.01 <= h <= 5.0):
        raise ValueError(f"cell_size must be between 0.01 and 5 metres, got {cell_size!r}")
    return h


def _snap(walk: np.ndarray, origin: FloatArray, h: float, xy: tuple[float, float]) -> tuple[int, int] | None:
    """The walkable cell containing ``xy``, else the one whose centre is nearest within STAIR_SNAP_M; or None."""
    x, y = float(xy[0]), float(xy[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    ny, nx = walk.shape
    ix, iy = _index(x, origin[0], h), _index(y, origin[1], h)
    if 0 <= iy < ny and 0 <= ix < nx and walk[iy, ix]:
        return iy, ix
    r = int(math.ceil(STAIR_SNAP_M / h)) + 1
    y0, y1, x0, x1 = max(iy - r, 0), min(iy + r + 1, ny), max(ix - r, 0), min(ix + r + 1, nx)
    if y0 >= y1 or x0 >= x1:
        return None
    cy, cx = np.nonzero(walk[y0:y1, x0:x1])
    if cy.size == 0:
        return None
    c = cell_centres(origin, h, cy + y0, cx + x0)
    d = np.hypot(c[:, 0] - x, c[:, 1] - y)
    j = int(np.argmin(d))
    if d[j] > STAIR_SNAP_M:
        return None
    return int(cy[j] + y0), int(cx[j] + x0)


def _landing(xy: tuple[float, float], origin: FloatArray, h: float, iy: int, ix: int) -> FloatArray:
    """(2,) metres: the stair end ``xy`` itself if it lies in cell (iy, ix), else that cell's centre."""
    x, y = float(xy[0]), float(xy[1])
    if _index(x, origin[0], h) == ix and _index(y, origin[1], h) == iy:
        return np.array([x, y])
    return cell_centres(origin, h, np.array([iy]), np.array([ix]))[0]


def _index(v: float, v0: float, h: float) -> int:
    """Cell index of coordinate ``v`` with borders at the float64 values ``v0 + i*h`` (as DistanceField)."""
    i = math.floor((v - v0) / h)
    if v < v0 + i * h:
        i -= 1
    elif v >= v0 + (i + 1) * h:
        i += 1
    return i


def _stair_width(footprint: BaseGeometry | None, run_m: float) -> float:
    """Stair width, metres: footprint area / run, capped by the short side of its minimum rotated rectangle."""
    if footprint is None or footprint.is_empty:
        return 1.0
    rect = np.asarray(footprint.minimum_rotated_rectangle.exterior.coords)
    short = float(np.hypot(*np.diff(rect[:3], axis=0).T).min())
    if math.isfinite(run_m) and run_m > 0:
        return float(min(footprint.area / run_m, short)) if short > 0 else float(footprint.area / run_m)
    return short if short > 0 else 1.0


def _door_exit_region(
    centre: FloatArray, width: float, walk: BaseGeometry, inside: BaseGeometry | None, depth: float
) -> Polygon:
    """Exit rectangle of an outside door (see :meth:`CrowdSpace.from_building`), metres."""
    c = Point(centre)
    n = None
    if inside is not None and not inside.is_empty:
        p = np.asarray(nearest_points(inside.boundary, c)[0].coords[0])
        v = centre - p
        if inside.contains(c):
            v = -v
        if np.hypot(*v) > 1e-3:
            n = v / np.hypot(*v)
    if n is None:
        near = walk.intersection(c.buffer(1.0))
        v = centre - np.asarray(near.centroid.coords[0]) if not near.is_empty else np.zeros(2)
        n = v / np.hypot(*v) if np.hypot(*v) > 1e-6 else np.array([1.0, 0.0])
    # the side of the wall the walkable area is not on is outside: check and flip if the probes disagree
    probe = 0.5 * width
    out_in = shapely.contains_xy(walk, *(centre + (probe + 0.6) * n))
    in_in = shapely.contains_xy(walk, *(centre - (probe + 0.6) * n))
    if out_in and not in_in:
        n = -n
    t = np.array([-n[1], n[0]])
    # how far the door passage reaches outward from the centre line
    ray = LineString([centre, centre + 3.0 * n]).intersection(walk)
    reach = 0.0
    for part in getattr(ray, "geoms", [ray]):
        if part.is_empty or part.geom_type != "LineString":
            continue
        xy = np.asarray(part.coords)
        s = (xy - centre) @ n
        if s.min() <= 1e-6:
            reach = max(reach, float(s.max()))
    length = reach + depth
    a = 0.5 * width * t
    return Polygon([centre - a, centre + a, centre + a + length * n, centre - a + length * n])


def _parse_area_stairs(
    stairs: Sequence[Any] | None,
    areas: list[dict[str, Any]],
    level_of_area: dict[str, int],
    source: str,
    path: str,
) -> list[dict[str, Any]]:
    if not stairs:
        return []
    out = []
    for i, s in enumerate(stairs):
        p = f"{path}[{i}]"
        sid = _get(s, "id")
        if not isinstance(sid, str) or not sid:
            raise InputError(source, f"{p}.id must be a non-empty string, got {sid!r}")
        la, lb = _get(s, "from_area"), _get(s, "to_area")
        for key, aid in (("from_area", la), ("to_area", lb)):
            if aid not in level_of_area:
                raise InputError(
                    source, f"{p}.{key} {aid!r} is not an area id; areas are {sorted(level_of_area)}"
                )
        ka, kb = level_of_area[la], level_of_area[lb]
        if ka >= kb:
            raise InputError(
                source,
                f"{p}: from_area {la!r} must be on a lower level than to_area {lb!r} (the foot is below)",
            )
        ends = {}
        for key in ("foot", "head"):
            v = _get(s, key)
            try:
                xy = tuple(float(c) for c in v)
            except (TypeError, ValueError):
                raise InputError(source, f"{p}.{key} must be (x, y) metres, got {v!r}") from None
            if len(xy) != 2 or not all(math.isfinite(c) for c in xy):
                raise InputError(source, f"{p}.{key} must be two finite numbers (x, y) metres, got {v!r}")
            ends[key] = xy
        vals = {}
        for key in ("length_m", "width_m"):
            v = _get(s, key)
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InputError(source, f"{p}.{key} must be a number > 0, got {v!r}") from None
            if not (math.isfinite(f) and f > 0):
                raise InputError(source, f"{p}.{key} must be > 0, got {v!r}")
            vals[key] = f
        out.append(
            {
                "id": sid,
                "name": sid,
                "from_level": ka,
                "to_level": kb,
                **ends,
                **vals,
                "source": source,
                "path": p,
            }
        )
    return out
