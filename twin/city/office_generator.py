"""Author a small multi-storey office building as IFC4 with ``ifcopenshell.api``.

The building is the sample model the project ships in ``models/office.ifc`` (regenerate it with
``python -m twin.city.office_generator models/office.ifc``). It is meant to exercise everything the IFC loader
and the evacuation models need: storeys with elevations, rooms and corridors as ``IfcSpace`` solids, walls
with openings filled by doors, floor slabs with stairwell voids, straight stair flights linking the storeys,
exits to the outside, and ``IfcRelSpaceBoundary2ndLevel`` relations that tell which spaces each door joins.

Plan (storey-local frame: x east along the long side, y north, z up, metres, origin at the south-west outer
corner of the footprint)::

    y=W +------------------------------------------------------------+
        | Room n.06  | Room n.07 | Room n.08 | Room n.09 | Room n.10   |
        |            +-----------+-----------+-----------+             |
        +------------+                                   +-------------+
   exit | Stair A n  |            Corridor n             |  Stair B n  | exit
        +------------+                                   +-------------+
        |            +-----------+-----------+-----------+             |
        | Room n.01  | Room n.02 | Room n.03 | Room n.04 | Room n.05   |
    y=0 +------------------------------------------------------------+
       x=0                         main entrance (ground)            x=L

* Storeys are numbered from 1 (the ground storey, elevation 0 m): ``"Room 2.04"`` is the fourth room from the
  west on the south side of the storey above the ground storey. ``Storey n`` has elevation ``(n - 1) * h``.
* On the ground storey the middle south room is the entrance lobby ``"Lobby 1"`` (room number ``1.03`` is not
  used there); it has the main entrance (1.8 m double door) in the south façade and a 1.8 m door to the
  corridor. Both stair cores have a 1.8 m exit door in the end façade on the ground storey.
* Each stair core holds one straight flight per storey link, stacked in the south lane of the core; the north
  lane is a passage from the corridor door (at the bottom landing) to the top landing at the façade end.
  ``IfcStair`` "Stair A 1-2" (``STRAIGHT_RUN_STAIR``) is contained in the lower storey, referenced in the
  upper one, and aggregates one ``IfcStairFlight`` that carries the stepped body solid and the riser data.
* Floor slabs of the storeys above ground have a void over the flight that arrives from below.
* Every door fills an ``IfcOpeningElement`` that voids its wall; every door has one
  ``IfcRelSpaceBoundary2ndLevel`` per space it joins (two for internal doors, ``INTERNAL``, pointing to each
  other through ``CorrespondingBoundary``; one for exits, ``EXTERNAL``), with the door as
  ``RelatedBuildingElement`` and the door leaf rectangle on the wall face as connection geometry (in the
  space's object coordinates, normal pointing away from the space).

The output is deterministic: GlobalIds are derived (UUID5) from stable keys, and the header time stamp is
fixed, so the same parameters always produce the same bytes.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.boundary
import ifcopenshell.api.context
import ifcopenshell.api.feature
import ifcopenshell.api.geometry
import ifcopenshell.api.georeference
import ifcopenshell.api.material
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.type
import ifcopenshell.api.unit
import ifcopenshell.guid
import numpy as np
from ifcopenshell.util.shape_builder import ShapeBuilder

from twin.errors import InputError

__all__ = ["TIME_STAMP", "generate_office", "main"]

log = logging.getLogger(__name__)

#: Fixed header time stamp, so that regenerating the model does not change the file.
TIME_STAMP = "2025-01-01T00:00:00"

_GUID_NAMESPACE = uuid.UUID("6f1f2f4e-5d0b-4c1e-9a57-0b7d1c2e3f40")
_SOURCE = "generate_office"

# Construction (metres).
_T_EXT = 0.30  # external walls
_T_CORE = 0.20  # corridor and stair-core walls
_T_PART = 0.15  # partitions between rooms
_SLAB = 0.20  # floor and roof slabs
_DOOR_H = 2.10  # door leaf height
_ROOM_DOOR_W = 1.00
_STAIR_DOOR_W = 1.20
_EXIT_DOOR_W = 1.80
_OPENING_EXTRA = 0.02  # an opening reaches this far beyond both wall faces, for robust booleans
_TOP_LANDING = 1.40  # landing at the façade end of a stair core (arrival from below)
_BOTTOM_LANDING = 1.50  # landing at the corridor end (start of the flight up, corridor door)
_MAX_RISER = 0.18
_BLONDEL = 0.63  # 2 * riser + going
_WAIST = 0.30  # vertical depth of the flight below its top tread nosing line at the upper end


@dataclass(frozen=True)
class _Rect:
    """Axis-aligned rectangle in the storey frame (metres)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def size(self) -> tuple[float, float]:
        return self.x1 - self.x0, self.y1 - self.y0

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2])

    def corners(self) -> list[tuple[float, float]]:
        return [(self.x0, self.y0), (self.x1, self.y0), (self.x1, self.y1), (self.x0, self.y1)]


@dataclass(frozen=True)
class _SpaceSpec:
    key: str
    name: str
    long_name: str
    reference: str
    rect: _Rect


@dataclass(frozen=True)
class _WallSpec:
    key: str
    name: str
    p0: tuple[float, float]
    p1: tuple[float, float]
    kind: str  # "external", "core" or "partition"

    @property
    def u(self) -> np.ndarray:
        d = np.subtract(self.p1, self.p0)
        return d / np.linalg.norm(d)

    @property
    def n(self) -> np.ndarray:
        """Unit normal to the left of the axis direction."""
        u = self.u
        return np.array([-u[1], u[0]])

    @property
    def length(self) -> float:
        return float(np.linalg.norm(np.subtract(self.p1, self.p0)))


@dataclass(frozen=True)
class _DoorSpec:
    key: str
    name: str
    wall: str  # wall key
    center: tuple[float, float]  # on the wall axis, storey frame
    width: float
    spaces: tuple[str, ...]  # one (exit) or two space keys
    operation: str

    @property
    def external(self) -> bool:
        return len(self.spaces) == 1


@dataclass(frozen=True)
class _StairSpec:
    core: str  # "A" or "B"
    direction: float  # +1 (ascending towards +x) or -1
    lane: _Rect  # plan rectangle of the flight


@dataclass(frozen=True)
class _Params:
    storeys: int
    storey_height: float
    length: float
    width: float
    corridor_width: float
    rooms_per_side: int
    name: str
    riser_count: int
    riser: float
    going: float

    @property
    def run(self) -> float:
        return (self.riser_count - 1) * self.going

    @property
    def core_length(self) -> float:
        return _TOP_LANDING + self.run + _BOTTOM_LANDING

    @property
    def clear_height(self) -> float:
        return self.storey_height - _SLAB


def _check_params(
    storeys: int,
    storey_height: float,
    length: float,
    width: float,
    corridor_width: float,
    rooms_per_side: int,
    name: str,
) -> _Params:
    def bad(field: str, message: str) -> InputError:
        return InputError(_SOURCE, message, element=field)

    if isinstance(storeys, bool) or not isinstance(storeys, int) or not 1 <= storeys <= 60:
        raise bad("storeys", f"storeys must be an integer from 1 to 60, got {storeys!r}")
    if (
        isinstance(rooms_per_side, bool)
        or not isinstance(rooms_per_side, int)
        or not 1 <= rooms_per_side <= 20
    ):
        raise bad("rooms_per_side", f"rooms_per_side must be an integer from 1 to 20, got {rooms_per_side!r}")
    for field, value, lo, hi in (
        ("storey_height", storey_height, 2.8, 6.0),
        ("length", length, 20.0, 200.0),
        ("width", width, 10.0, 40.0),
        ("corridor_width", corridor_width, 1.8, 4.0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad(field, f"{field} must be a finite number of metres, got {value!r}")
        if not lo <= value <= hi:
            raise bad(field, f"{field} must be between {lo} and {hi} m, got {value}")
    if not isinstance(name, str) or not name.strip():
        raise bad("name", f"name must be a non-empty string, got {name!r}")

    riser_count = math.ceil(storey_height / _MAX_RISER - 1e-9)
    riser = storey_height / riser_count
    going = _BLONDEL - 2 * riser
    params = _Params(
        storeys=storeys,
        storey_height=float(storey_height),
        length=float(length),
        width=float(width),
        corridor_width=float(corridor_width),
        rooms_per_side=rooms_per_side,
        name=name,
        riser_count=riser_count,
        riser=riser,
        going=going,
    )
    room_depth = (width - corridor_width) / 2 - _T_EXT - _T_CORE
    if room_depth < 3.0:
        raise bad(
            "width",
            f"width {width} m leaves {room_depth:.2f} m deep rooms beside a {corridor_width} m corridor; "
            "at least 3 m expected",
        )
    corridor_length = length - 2 * (_T_EXT + params.core_length + _T_CORE)
    module = corridor_length / rooms_per_side
    if module < 2.5:
        raise bad(
            "length",
            f"length {length} m leaves {module:.2f} m per room along the corridor for {rooms_per_side} rooms "
            f"per side beside two {params.core_length:.2f} m stair cores; at least 2.5 m expected",
        )
    return params


class _Plan:
    """The storey plan: spaces, walls, doors and stair lanes in the storey frame (metres)."""

    def __init__(self, p: _Params):
        self.p = p
        L, W, cw = p.length, p.width, p.corridor_width
        self.xi0, self.xi1 = _T_EXT, L - _T_EXT
        self.yi0, self.yi1 = _T_EXT, W - _T_EXT
        self.c0, self.c1 = W / 2 - cw / 2, W / 2 + cw / 2
        self.core_a = _Rect(self.xi0, self.c0, self.xi0 + p.core_length, self.c1)
        self.core_b = _Rect(self.xi1 - p.core_length, self.c0, self.xi1, self.c1)
        self.k0 = self.core_a.x1 + _T_CORE  # corridor west end
        self.k1 = self.core_b.x0 - _T_CORE  # corridor east end
        m = p.rooms_per_side
        self.partitions = [self.k0 + j * (self.k1 - self.k0) / m for j in range(1, m)]
        self.lobby_index = m // 2  # middle south room becomes the lobby on the ground storey
        lane_w = cw / 2
        # Flight lanes: south half of each core; A ascends westwards, B eastwards.
        a_bottom = self.core_a.x1 - _BOTTOM_LANDING
        b_bottom = self.core_b.x0 + _BOTTOM_LANDING
        self.stairs = [
            _StairSpec("A", -1.0, _Rect(a_bottom - p.run, self.c0, a_bottom, self.c0 + lane_w)),
            _StairSpec("B", +1.0, _Rect(b_bottom, self.c0, b_bottom + p.run, self.c0 + lane_w)),
        ]

    def room_rects(self) -> tuple[list[_Rect], list[_Rect]]:
        """South and north room rectangles, west to east."""
        edges = [self.xi0, *self.partitions, self.xi1]
        south, north = [], []
        for j in range(len(edges) - 1):
            x0 = edges[j] + (_T_PART / 2 if j > 0 else 0.0)
            x1 = edges[j + 1] - (_T_PART / 2 if j + 1 < len(edges) - 1 else 0.0)
            south.append(_Rect(x0, self.yi0, x1, self.c0 - _T_CORE))
            north.append(_Rect(x0, self.c1 + _T_CORE, x1, self.yi1))
        return south, north

    def storey(self, n: int) -> tuple[list[_SpaceSpec], list[_WallSpec], list[_DoorSpec]]:
        """Spaces, walls and doors of storey number ``n`` (1 = ground)."""
        p, ground = self.p, n == 1
        L, W = p.length, p.width
        spaces: list[_SpaceSpec] = []
        walls: list[_WallSpec] = []
        doors: list[_DoorSpec] = []

        corridor = _Rect(self.k0, self.c0, self.k1, self.c1)
        spaces.append(_SpaceSpec(f"corridor/{n}", f"Corridor {n}", "Corridor", f"{n}.C", corridor))
        for core, rect in (("A", self.core_a), ("B", self.core_b)):
            spaces.append(
                _SpaceSpec(
                    f"stair/{core}/{n}", f"Stair {core} {n}", f"Stair core {core}", f"{n}.S{core}", rect
                )
            )

        # External walls run counter-clockwise so that the left normal points inside.
        h = _T_EXT / 2
        walls += [
            _WallSpec(f"wall/{n}/ext/S", f"Wall {n} external S", (0.0, h), (L, h), "external"),
            _WallSpec(
                f"wall/{n}/ext/E", f"Wall {n} external E", (L - h, _T_EXT), (L - h, W - _T_EXT), "external"
            ),
            _WallSpec(f"wall/{n}/ext/N", f"Wall {n} external N", (L, W - h), (0.0, W - h), "external"),
            _WallSpec(f"wall/{n}/ext/W", f"Wall {n} external W", (h, W - _T_EXT), (h, _T_EXT), "external"),
        ]
        yc_s, yc_n = self.c0 - _T_CORE / 2, self.c1 + _T_CORE / 2
        xa, xb = self.core_a.x1 + _T_CORE / 2, self.core_b.x0 - _T_CORE / 2
        walls += [
            _WallSpec(
                f"wall/{n}/corridor/S", f"Wall {n} corridor S", (self.xi0, yc_s), (self.xi1, yc_s), "core"
            ),
            _WallSpec(
                f"wall/{n}/corridor/N", f"Wall {n} corridor N", (self.xi1, yc_n), (self.xi0, yc_n), "core"
            ),
            _WallSpec(f"wall/{n}/core/A", f"Wall {n} stair A", (xa, self.c0), (xa, self.c1), "core"),
            _WallSpec(f"wall/{n}/core/B", f"Wall {n} stair B", (xb, self.c1), (xb, self.c0), "core"),
        ]
        for j, x in enumerate(self.partitions, start=1):
            walls.append(
                _WallSpec(
                    f"wall/{n}/part/S{j}",
                    f"Wall {n} partition S{j}",
                    (x, self.yi0),
                    (x, self.c0 - _T_CORE),
                    "partition",
                )
            )
            walls.append(
                _WallSpec(
                    f"wall/{n}/part/N{j}",
                    f"Wall {n} partition N{j}",
                    (x, self.c1 + _T_CORE),
                    (x, self.yi1),
                    "partition",
                )
            )

        south, north = self.room_rects()
        m = p.rooms_per_side
        for side, rects, wall_y, offset in (("S", south, yc_s, 0), ("N", north, yc_n, m)):
            for j, rect in enumerate(rects):
                number = f"{n}.{offset + j + 1:02d}"
                lo, hi = max(rect.x0, self.k0), min(rect.x1, self.k1)
                centre = ((lo + hi) / 2, wall_y)
                if ground and side == "S" and j == self.lobby_index:
                    key = f"lobby/{n}"
                    spaces.append(_SpaceSpec(key, f"Lobby {n}", "Entrance lobby", f"{n}.L", rect))
                    doors.append(
                        _DoorSpec(
                            f"door/{n}/lobby",
                            f"Door {n} lobby",
                            f"wall/{n}/corridor/S",
                            centre,
                            _EXIT_DOOR_W,
                            (key, f"corridor/{n}"),
                            "DOUBLE_DOOR_SINGLE_SWING",
                        )
                    )
                    doors.append(
                        _DoorSpec(
                            f"door/{n}/entrance",
                            "Main entrance",
                            f"wall/{n}/ext/S",
                            ((rect.x0 + rect.x1) / 2, _T_EXT / 2),
                            _EXIT_DOOR_W,
                            (key,),
                            "DOUBLE_DOOR_SINGLE_SWING",
                        )
                    )
                    continue
                key = f"room/{number}"
                spaces.append(_SpaceSpec(key, f"Room {number}", "Office", number, rect))
                doors.append(
                    _DoorSpec(
                        f"door/{number}",
                        f"Door {number}",
                        f"wall/{n}/corridor/{side}",
                        centre,
                        _ROOM_DOOR_W,
                        (key, f"corridor/{n}"),
                        "SINGLE_SWING_LEFT",
                    )
                )

        for core, x in (("A", xa), ("B", xb)):
            doors.append(
                _DoorSpec(
                    f"door/{n}/stair/{core}",
                    f"Door {n} stair {core}",
                    f"wall/{n}/core/{core}",
                    (x, W / 2),
                    _STAIR_DOOR_W,
                    (f"stair/{core}/{n}", f"corridor/{n}"),
                    "SINGLE_SWING_LEFT",
                )
            )
        if ground:
            doors.append(
                _DoorSpec(
                    f"door/{n}/exit/A",
                    "Exit A",
                    f"wall/{n}/ext/W",
                    (h, W / 2),
                    _EXIT_DOOR_W,
                    (f"stair/A/{n}",),
                    "DOUBLE_DOOR_SINGLE_SWING",
                )
            )
            doors.append(
                _DoorSpec(
                    f"door/{n}/exit/B",
                    "Exit B",
                    f"wall/{n}/ext/E",
                    (L - h, W / 2),
                    _EXIT_DOOR_W,
                    (f"stair/B/{n}",),
                    "DOUBLE_DOOR_SINGLE_SWING",
                )
            )
        return spaces, walls, doors


def _matrix(origin: tuple[float, float, float], xdir: tuple[float, float] = (1.0, 0.0)) -> np.ndarray:
    """4x4 placement with z up and local x along ``xdir`` (horizontal)."""
    x = np.array([xdir[0], xdir[1], 0.0])
    x /= np.linalg.norm(x)
    z = np.array([0.0, 0.0, 1.0])
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, origin
    return m


def _clean(values: Any) -> Any:
    """Round coordinates to 0.1 mm so that floating noise never reaches the file."""
    return np.round(np.asarray(values, dtype=float), 4) + 0.0


class _Builder:
    """Writes the IFC entities for one office model."""

    def __init__(self, p: _Params):
        self.p = p
        self.plan = _Plan(p)
        self.f = ifcopenshell.api.project.create_file(version="IFC4")
        self.sb = ShapeBuilder(self.f)
        self.keys: dict[int, str] = {}

    # -- small helpers -------------------------------------------------------------------------------------
    def create(self, ifc_class: str, key: str, name: str | None = None, predefined_type: str | None = None):
        entity = ifcopenshell.api.root.create_entity(
            self.f, ifc_class=ifc_class, name=name, predefined_type=predefined_type
        )
        self.keys[entity.id()] = f"{ifc_class}/{key}"
        return entity

    def place(self, product, origin, xdir=(1.0, 0.0)) -> None:
        """Place ``product`` at an absolute origin (metres) with horizontal local x along ``xdir``."""
        ifcopenshell.api.geometry.edit_object_placement(
            self.f, product=product, matrix=_matrix(tuple(_clean(origin)), tuple(_clean(xdir))), is_si=True
        )

    def prism(self, points, depth: float, z0: float = 0.0, holes=()):
        curve = self.sb.polyline(_clean(points).tolist(), closed=True)
        inner = [self.sb.polyline(_clean(h).tolist(), closed=True) for h in holes]
        profile = self.sb.profile(curve, inner_curves=inner)
        return self.sb.extrude(
            profile, magnitude=float(_clean(depth)), position=(0.0, 0.0, float(_clean(z0)))
        )

    def body(self, product, items) -> None:
        rep = self.sb.get_representation(self.body_ctx, items if isinstance(items, list) else [items])
        ifcopenshell.api.geometry.assign_representation(self.f, product=product, representation=rep)

    def pset(self, product, name: str, properties: dict[str, Any]) -> None:
        pset = ifcopenshell.api.pset.add_pset(self.f, product=product, name=name)
        ifcopenshell.api.pset.edit_pset(self.f, pset=pset, properties=properties)

    # -- model ---------------------------------------------------------------------------------------------
    def build(self, georef: dict[str, Any] | None) -> ifcopenshell.file:
        p, f = self.p, self.f
        self.project = self.create("IfcProject", "project", name=p.name)
        length = ifcopenshell.api.unit.add_si_unit(f, unit_type="LENGTHUNIT")
        area = ifcopenshell.api.unit.add_si_unit(f, unit_type="AREAUNIT")
        volume = ifcopenshell.api.unit.add_si_unit(f, unit_type="VOLUMEUNIT")
        angle = ifcopenshell.api.unit.add_si_unit(f, unit_type="PLANEANGLEUNIT")
        ifcopenshell.api.unit.assign_unit(f, units=[length, area, volume, angle])
        self.length_unit = length

        ctx = ifcopenshell.api.context
        model = ctx.add_context(f, context_type="Model")
        self.body_ctx = ctx.add_context(f, "Model", "Body", "MODEL_VIEW", parent=model)
        self.axis_ctx = ctx.add_context(f, "Model", "Axis", "GRAPH_VIEW", parent=model)
        self.footprint_ctx = ctx.add_context(f, "Model", "FootPrint", "SKETCH_VIEW", parent=model)
        if georef is not None:
            self.georeference(georef)

        site = self.create("IfcSite", "site", name="Site")
        building = self.create("IfcBuilding", "building", name=p.name)
        ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=self.project)
        ifcopenshell.api.aggregate.assign_object(f, products=[building], relating_object=site)
        self.place(site, (0.0, 0.0, 0.0))
        self.place(building, (0.0, 0.0, 0.0))
        self.pset(building, "Pset_BuildingCommon", {"NumberOfStoreys": p.storeys})

        self.make_types()
        self.storeys = []
        for n in range(1, p.storeys + 1):
            storey = self.create("IfcBuildingStorey", f"storey/{n}", name=f"Storey {n}")
            storey.LongName = "Ground floor" if n == 1 else f"Floor {n}"
            storey.Elevation = float(_clean((n - 1) * p.storey_height))
            ifcopenshell.api.aggregate.assign_object(f, products=[storey], relating_object=building)
            self.place(storey, (0.0, 0.0, storey.Elevation))
            self.storeys.append(storey)

        for n, storey in enumerate(self.storeys, start=1):
            self.build_storey(n, storey)
        for n in range(1, p.storeys):
            for stair in self.plan.stairs:
                self.build_stair(n, stair)
        self.build_slab(p.storeys, self.storeys[-1], roof=True)
        self.sort_sets()
        self.fix_guids()
        return f

    def georeference(self, georef: dict[str, Any]) -> None:
        expected = {"crs", "eastings", "northings", "orthogonal_height", "rotation_deg"}
        if not isinstance(georef, dict) or set(georef) - expected or "crs" not in georef:
            raise InputError(
                _SOURCE,
                f"georef must be a dict with 'crs' and optionally {sorted(expected - {'crs'})}, got {georef!r}",
                element="georef",
            )
        values = {k: georef.get(k, 0.0) for k in sorted(expected - {"crs"})}
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError(
                    _SOURCE, f"georef[{k!r}] must be a finite number, got {v!r}", element="georef"
                )
        crs = georef["crs"]
        if not isinstance(crs, str) or not crs.strip():
            raise InputError(
                _SOURCE, f"georef['crs'] must be a CRS name like 'EPSG:3067', got {crs!r}", element="georef"
            )
        theta = math.radians(values["rotation_deg"])
        ifcopenshell.api.georeference.add_georeferencing(self.f, ifc_class="IfcMapConversion", name=crs)
        ifcopenshell.api.georeference.edit_georeferencing(
            self.f,
            projected_crs={"Name": crs, "MapUnit": self.length_unit},
            coordinate_operation={
                "Eastings": float(values["eastings"]),
                "Northings": float(values["northings"]),
                "OrthogonalHeight": float(values["orthogonal_height"]),
                "XAxisAbscissa": math.cos(theta),
                "XAxisOrdinate": math.sin(theta),
                "Scale": 1.0,
            },
        )

    def make_types(self) -> None:
        f, m = self.f, ifcopenshell.api.material
        concrete = m.add_material(f, name="Concrete", category="concrete")
        masonry = m.add_material(f, name="Masonry", category="block")
        gypsum = m.add_material(f, name="Gypsum board partition", category="gypsum")
        self.wall_types: dict[str, Any] = {}
        for kind, name, t, material, pdef, external in (
            ("external", "External wall 300", _T_EXT, concrete, "SOLIDWALL", True),
            ("core", "Core wall 200", _T_CORE, masonry, "SOLIDWALL", False),
            ("partition", "Partition 150", _T_PART, gypsum, "PARTITIONING", False),
        ):
            wall_type = self.create("IfcWallType", f"type/{kind}", name=name, predefined_type=pdef)
            layers = m.add_material_set(f, name=name, set_type="IfcMaterialLayerSet")
            layer = m.add_layer(f, layer_set=layers, material=material)
            m.edit_layer(f, layer=layer, attributes={"LayerThickness": t})
            m.assign_material(f, products=[wall_type], type="IfcMaterialLayerSet", material=layers)
            self.pset(
                wall_type, "Pset_WallCommon", {"IsExternal": external, "LoadBearing": kind != "partition"}
            )
            self.wall_types[kind] = (wall_type, t)
        self.slab_types: dict[str, Any] = {}
        for kind, name, pdef, external in (
            ("BASESLAB", "Ground slab 200", "BASESLAB", False),
            ("FLOOR", "Floor slab 200", "FLOOR", False),
            ("ROOF", "Roof slab 200", "ROOF", True),
        ):
            slab_type = self.create("IfcSlabType", f"type/{kind}", name=name, predefined_type=pdef)
            layers = m.add_material_set(f, name=name, set_type="IfcMaterialLayerSet")
            layer = m.add_layer(f, layer_set=layers, material=concrete)
            m.edit_layer(f, layer=layer, attributes={"LayerThickness": _SLAB})
            m.assign_material(f, products=[slab_type], type="IfcMaterialLayerSet", material=layers)
            self.pset(slab_type, "Pset_SlabCommon", {"IsExternal": external, "LoadBearing": True})
            self.slab_types[kind] = slab_type

    def build_storey(self, n: int, storey) -> None:
        f, p = self.f, self.p
        z = storey.Elevation
        spaces, walls, doors = self.plan.storey(n)
        space_by_key: dict[str, tuple[Any, _SpaceSpec]] = {}
        for spec in spaces:
            space = self.create("IfcSpace", spec.key, name=spec.name, predefined_type="SPACE")
            space.LongName = spec.long_name
            ifcopenshell.api.aggregate.assign_object(f, products=[space], relating_object=storey)
            self.place(space, (spec.rect.x0, spec.rect.y0, z))
            sx, sy = spec.rect.size
            local = [(0.0, 0.0), (sx, 0.0), (sx, sy), (0.0, sy)]
            self.body(space, self.prism(local, p.clear_height))
            outline = self.sb.polyline(_clean(local).tolist(), closed=True)
            footprint = ifcopenshell.api.geometry.add_footprint_representation(
                f, context=self.footprint_ctx, curves=[outline]
            )
            ifcopenshell.api.geometry.assign_representation(f, product=space, representation=footprint)
            self.pset(space, "Pset_SpaceCommon", {"Reference": spec.reference, "IsExternal": False})
            qto = ifcopenshell.api.pset.add_qto(f, product=space, name="Qto_SpaceBaseQuantities")
            ifcopenshell.api.pset.edit_qto(
                f,
                qto=qto,
                properties={
                    "Height": float(_clean(p.clear_height)),
                    "NetFloorArea": float(_clean(spec.rect.area)),
                    "NetVolume": float(_clean(spec.rect.area * p.clear_height)),
                },
            )
            space_by_key[spec.key] = (space, spec)

        wall_by_key: dict[str, tuple[Any, _WallSpec]] = {}
        by_kind: dict[str, list[Any]] = {}
        for spec in walls:
            wall = self.create("IfcWall", spec.key, name=spec.name)
            ifcopenshell.api.spatial.assign_container(f, products=[wall], relating_structure=storey)
            self.place(wall, (*spec.p0, z), tuple(spec.u))
            _, t = self.wall_types[spec.kind]
            length = float(_clean(spec.length))
            axis = ifcopenshell.api.geometry.add_axis_representation(
                f, context=self.axis_ctx, axis=[(0.0, 0.0), (length, 0.0)]
            )
            ifcopenshell.api.geometry.assign_representation(f, product=wall, representation=axis)
            rep = ifcopenshell.api.geometry.add_wall_representation(
                f, context=self.body_ctx, length=length, height=p.clear_height, offset=-t / 2, thickness=t
            )
            ifcopenshell.api.geometry.assign_representation(f, product=wall, representation=rep)
            wall_by_key[spec.key] = (wall, spec)
            by_kind.setdefault(spec.kind, []).append(wall)
        for kind, members in by_kind.items():
            wall_type, t = self.wall_types[kind]
            ifcopenshell.api.type.assign_type(f, related_objects=members, relating_type=wall_type)
            usage = members[0].HasAssociations[0].RelatingMaterial
            ifcopenshell.api.material.edit_layer_usage(
                f, usage=usage, attributes={"OffsetFromReferenceLine": -t / 2}
            )

        for spec in doors:
            self.build_door(spec, storey, wall_by_key[spec.wall], space_by_key)
        self.build_slab(n - 1, storey, roof=False)

    def build_door(self, spec: _DoorSpec, storey, wall_entry, space_by_key) -> None:
        f = self.f
        wall, wall_spec = wall_entry
        _, t = self.wall_types[wall_spec.kind]
        z = storey.Elevation
        u, nrm = wall_spec.u, wall_spec.n
        along = float(np.dot(np.subtract(spec.center, wall_spec.p0), u)) - spec.width / 2
        # Door frame: origin on the right wall face (−n side) at the leaf's start, x along the wall, y across it.
        corner = np.asarray(wall_spec.p0) + along * u - (t / 2) * nrm

        opening = self.create(
            "IfcOpeningElement", f"{spec.key}/opening", name=f"{spec.name} opening", predefined_type="OPENING"
        )
        ifcopenshell.api.feature.add_feature(f, feature=opening, element=wall)
        self.place(opening, (*corner, z), tuple(u))
        e = _OPENING_EXTRA
        box = [(0.0, -e), (spec.width, -e), (spec.width, t + e), (0.0, t + e)]
        self.body(opening, self.prism(box, _DOOR_H))

        door = self.create("IfcDoor", spec.key, name=spec.name, predefined_type="DOOR")
        door.OperationType = spec.operation
        door.OverallWidth = spec.width
        door.OverallHeight = _DOOR_H
        ifcopenshell.api.feature.add_filling(f, opening=opening, element=door)
        ifcopenshell.api.spatial.assign_container(f, products=[door], relating_structure=storey)
        self.place(door, (*corner, z), tuple(u))
        rep = ifcopenshell.api.geometry.add_door_representation(
            f,
            context=self.body_ctx,
            overall_height=_DOOR_H,
            overall_width=spec.width,
            operation_type=spec.operation,
            lining_properties={
                "LiningDepth": t,
                "LiningThickness": 0.05,
                "LiningOffset": 0.0,
                "CasingDepth": 0.0,
                "LiningToPanelOffsetY": (t - 0.035) / 2,
                "CasingThickness": 0.0,
                "ThresholdDepth": t,
                "ThresholdThickness": 0.02,
            },
        )
        ifcopenshell.api.geometry.assign_representation(f, product=door, representation=rep)
        exit_door = spec.external or "stair" in spec.key
        self.pset(
            door,
            "Pset_DoorCommon",
            {"Reference": spec.key.split("/", 1)[1], "IsExternal": spec.external, "FireExit": exit_door},
        )

        boundaries = []
        for space_key in spec.spaces:
            space, space_spec = space_by_key[space_key]
            side = 1.0 if float(np.dot(space_spec.rect.center - np.asarray(wall_spec.p0), nrm)) > 0 else -1.0
            a = np.asarray(wall_spec.p0) + along * u + side * (t / 2) * nrm
            b = a + spec.width * u
            normal = -side * nrm  # away from the space, into the wall
            xdir = np.cross([0.0, 0.0, 1.0], [normal[0], normal[1], 0.0])
            origin = a if float(np.dot(b - a, xdir[:2])) > 0 else b
            origin_local = origin - np.array([space_spec.rect.x0, space_spec.rect.y0])
            rel = self.create(
                "IfcRelSpaceBoundary2ndLevel", f"{spec.key}/boundary/{space_key}", name="2ndLevel"
            )
            rel.Description = "2a"
            rel.RelatingSpace = space
            rel.RelatedBuildingElement = door
            rel.PhysicalOrVirtualBoundary = "PHYSICAL"
            rel.InternalOrExternalBoundary = "EXTERNAL" if spec.external else "INTERNAL"
            ifcopenshell.api.boundary.assign_connection_geometry(
                f,
                rel_space_boundary=rel,
                outer_boundary=[(0.0, 0.0), (spec.width, 0.0), (spec.width, _DOOR_H), (0.0, _DOOR_H)],
                location=tuple(_clean([origin_local[0], origin_local[1], 0.0])),
                axis=tuple(_clean([normal[0], normal[1], 0.0])),
                ref_direction=tuple(_clean(xdir)),
            )
            boundaries.append(rel)
        if len(boundaries) == 2:
            boundaries[0].CorrespondingBoundary = boundaries[1]
            boundaries[1].CorrespondingBoundary = boundaries[0]

    def build_slab(self, index: int, storey, *, roof: bool) -> None:
        """Floor slab of the storey (index 0 = ground), or the roof slab on top of the top storey."""
        p, f = self.p, self.f
        n = index + 1
        if roof:
            kind, key, name = "ROOF", "slab/roof", "Roof slab"
            top = p.storeys * p.storey_height
        else:
            kind = "BASESLAB" if index == 0 else "FLOOR"
            key, name = f"slab/{n}", f"Slab {n}"
            top = index * p.storey_height
        slab = self.create("IfcSlab", key, name=name)
        ifcopenshell.api.spatial.assign_container(f, products=[slab], relating_structure=storey)
        self.place(slab, (0.0, 0.0, top - _SLAB))
        outline = [(0.0, 0.0), (p.length, 0.0), (p.length, p.width), (0.0, p.width)]
        holes = [] if (roof or index == 0) else [s.lane.corners() for s in self.plan.stairs]
        self.body(slab, self.prism(outline, _SLAB, holes=holes))
        ifcopenshell.api.type.assign_type(f, related_objects=[slab], relating_type=self.slab_types[kind])

    def build_stair(self, n: int, spec: _StairSpec) -> None:
        """Straight flight from storey ``n`` to ``n + 1`` in stair core ``spec.core``."""
        p, f = self.p, self.f
        lower, upper = self.storeys[n - 1], self.storeys[n]
        label = f"Stair {spec.core} {n}-{n + 1}"
        stair = self.create(
            "IfcStair", f"stair/{spec.core}/{n}-{n + 1}", name=label, predefined_type="STRAIGHT_RUN_STAIR"
        )
        ifcopenshell.api.spatial.assign_container(f, products=[stair], relating_structure=lower)
        ifcopenshell.api.spatial.reference_structure(f, products=[stair], relating_structure=upper)
        # Flight frame: origin at the foot of the first riser on the lane edge, x up the run, y across the lane.
        lane = spec.lane
        if spec.direction > 0:
            origin, xdir = (lane.x0, lane.y0), (1.0, 0.0)
        else:
            origin, xdir = (lane.x1, lane.y1), (-1.0, 0.0)
        self.place(stair, (*origin, lower.Elevation), xdir)

        flight = self.create(
            "IfcStairFlight",
            f"stair/{spec.core}/{n}-{n + 1}/flight",
            name=f"{label} flight",
            predefined_type="STRAIGHT",
        )
        ifcopenshell.api.aggregate.assign_object(f, products=[flight], relating_object=stair)
        self.place(flight, (*origin, lower.Elevation), xdir)
        r, g, k = p.riser, p.going, p.riser_count
        flight.NumberOfRisers = k
        flight.NumberOfTreads = k - 1
        flight.RiserHeight = float(_clean(r))
        flight.TreadLength = float(_clean(g))
        # Side profile (x along the run, v up): k - 1 treads; the k-th riser is the edge of the upper slab.
        pts = [(0.0, 0.0)]
        for i in range(k - 1):
            pts += [(i * g, (i + 1) * r), ((i + 1) * g, (i + 1) * r)]
        x_end = (k - 1) * g
        pts.append((x_end, (k - 1) * r - _WAIST))
        pts.append((x_end - ((k - 1) * r - _WAIST) * g / r, 0.0))
        curve = self.sb.polyline(_clean(pts).tolist(), closed=True)
        solid = self.sb.extrude(
            self.sb.profile(curve), magnitude=float(_clean(lane.size[1])), **self.sb.extrude_kwargs("Y")
        )
        self.body(flight, solid)
        steps = {
            "NumberOfRiser": k,
            "NumberOfTreads": k - 1,
            "RiserHeight": float(_clean(r)),
            "TreadLength": float(_clean(g)),
        }
        self.pset(
            flight, "Pset_StairFlightCommon", {**steps, "Headroom": float(_clean(p.storey_height - _WAIST))}
        )
        self.pset(stair, "Pset_StairCommon", {**steps, "FireExit": True, "IsExternal": False})

    def sort_sets(self) -> None:
        """Order the members of every EXPRESS ``SET`` of entities by entity id.

        ``ifcopenshell.api`` collects related objects (and units) in Python sets, whose iteration order varies
        between runs; the attributes involved are unordered SETs in the schema, so sorting them changes no
        meaning and makes the written file stable.
        """
        schema = ifcopenshell.ifcopenshell_wrapper.schema_by_name(self.f.schema)
        set_attrs: dict[str, list[int]] = {}
        for entity in self.f:
            cls = entity.is_a()
            if cls not in set_attrs:
                attrs = schema.declaration_by_name(cls).all_attributes()
                set_attrs[cls] = [
                    i
                    for i, attr in enumerate(attrs)
                    if isinstance(
                        t := attr.type_of_attribute(), ifcopenshell.ifcopenshell_wrapper.aggregation_type
                    )
                    and t.type_of_aggregation() == ifcopenshell.ifcopenshell_wrapper.aggregation_type.set_type
                ]
            for i in set_attrs[cls]:
                value = entity[i]
                if value and all(isinstance(v, ifcopenshell.entity_instance) for v in value):
                    entity[i] = tuple(sorted(value, key=lambda e: e.id()))

    def fix_guids(self) -> None:
        """Replace the random GlobalIds by UUID5 values derived from stable keys."""
        counters: Counter[str] = Counter()
        seen: set[str] = set()
        for entity in sorted(self.f.by_type("IfcRoot"), key=lambda e: e.id()):
            key = self.keys.get(entity.id())
            if key is None:
                cls = entity.is_a()
                counters[cls] += 1
                key = f"{cls}#{counters[cls]}"
            guid = ifcopenshell.guid.compress(uuid.uuid5(_GUID_NAMESPACE, f"{self.p.name}/{key}").hex)
            if guid in seen:  # pragma: no cover - keys are unique by construction
                raise RuntimeError(f"duplicate GlobalId key {key}")
            seen.add(guid)
            entity.GlobalId = guid


def generate_office(
    path: str | os.PathLike[str],
    *,
    storeys: int = 3,
    storey_height: float = 3.5,
    length: float = 40.0,
    width: float = 16.0,
    corridor_width: float = 2.4,
    rooms_per_side: int = 5,
    name: str = "twin office",
    georef: dict[str, Any] | None = None,
) -> Path:
    """Write the sample office building to ``path`` as IFC4 and return the path.

    Parameters
    ----------
    path : output ``.ifc`` file; parent folders are created; written atomically (temporary file, then rename).
    storeys : number of storeys, numbered from 1 (ground storey at elevation 0 m).
    storey_height : floor-to-floor height, metres (floor slabs are 0.2 m, so the clear height is 0.2 m less).
    length, width : outer footprint, metres, along local x (corridor axis) and y.
    corridor_width : clear corridor width, metres (the stair cores have the same clear width).
    rooms_per_side : rooms on each side of the corridor per storey (the middle south room of the ground storey is
        the entrance lobby instead).
    name : project and building name; also seeds the GlobalIds.
    georef : optional ``dict(crs="EPSG:3067", eastings=..., northings=..., orthogonal_height=..., rotation_deg=...)``
        adding ``IfcMapConversion`` and ``IfcProjectedCRS``: a local point (x, y, z) maps to
        ``E = eastings + x cos(a) - y sin(a)``, ``N = northings + x sin(a) + y cos(a)``,
        ``H = orthogonal_height + z`` with ``a = rotation_deg`` counter-clockwise from grid east.

    Raises
    ------
    twin.errors.InputError : a parameter is out of range or the footprint cannot hold the stair cores and rooms.
    """
    params = _check_params(storeys, storey_height, length, width, corridor_width, rooms_per_side, name)
    path = Path(path)
    f = _Builder(params).build(georef)
    header = f.header.file_name
    header.name = path.name
    header.time_stamp = TIME_STAMP
    header.author = ("twin",)
    header.organization = ("twin project",)
    header.originating_system = "twin.city.office_generator"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    f.write(str(tmp))
    os.replace(tmp, path)
    log.info(
        "wrote %s: %d storeys, %d spaces, %d doors, %d stairs, %d bytes",
        path,
        params.storeys,
        len(f.by_type("IfcSpace")),
        len(f.by_type("IfcDoor")),
        len(f.by_type("IfcStair")),
        path.stat().st_size,
    )
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m twin.city.office_generator OUT.ifc [--storeys N] [--crs EPSG:3067 ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m twin.city.office_generator", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", type=Path, help="output .ifc path (the committed model is models/office.ifc)")
    parser.add_argument("--storeys", type=int, default=3)
    parser.add_argument("--storey-height", type=float, default=3.5)
    parser.add_argument("--rooms-per-side", type=int, default=5)
    parser.add_argument("--crs", help="add georeferencing in this projected CRS, e.g. EPSG:3067")
    parser.add_argument("--eastings", type=float, default=0.0)
    parser.add_argument("--northings", type=float, default=0.0)
    parser.add_argument("--orthogonal-height", type=float, default=0.0)
    parser.add_argument("--rotation-deg", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    georef = None
    if args.crs:
        georef = dict(
            crs=args.crs,
            eastings=args.eastings,
            northings=args.northings,
            orthogonal_height=args.orthogonal_height,
            rotation_deg=args.rotation_deg,
        )
    try:
        generate_office(
            args.out,
            storeys=args.storeys,
            storey_height=args.storey_height,
            rooms_per_side=args.rooms_per_side,
            georef=georef,
        )
    except InputError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
