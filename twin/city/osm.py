"""Load the road network of an OpenStreetMap file (XML, ``.osm.gz``/``.osm.bz2``, PBF) with pyosmium.

What is read, and the rules that turn it into a lane-level :class:`~twin.city.roads.RoadNetwork`:

Roads
    Ways whose ``highway`` is one of :data:`ROAD_CLASSES` — motorway, trunk, primary, secondary, tertiary (and
    their ``*_link``), unclassified, residential, living_street, service and road — and that are not
    ``area=yes``. Left out as not for general motor traffic: track, footway, path, cycleway, bridleway, steps,
    pedestrian, corridor, busway, bus_guideway, raceway, construction, proposed, platform and the like.
Edges
    Ways are split at their end nodes and at every node used more than once by road ways (an intersection).
    Each piece gives the edge ``<way>#<k>`` in the way's direction and ``-<way>#<k>`` against it (SUMO's
    naming), or only one of them on one-way roads (:func:`oneway_direction`: ``oneway=yes/true/1`` forward,
    ``-1/reverse`` backward; ``highway=motorway`` and ``junction=roundabout/circular`` imply one way;
    ``oneway=reversible/alternating`` is taken as two-way). Edge shapes are the way's geometry; lanes are offset
    to the right of it by their widths.
Lanes and speeds
    :func:`lane_counts` (``lanes``, ``lanes:forward``, ``lanes:backward``, ``lanes:both_ways``, else the class
    default) and :func:`direction_speeds` (``maxspeed[:forward|:backward]`` parsed by :func:`parse_maxspeed`,
    else a zone code in ``maxspeed:type``, ``source:maxspeed`` or ``zone:maxspeed``, else the class default).
    Vehicle classes per lane follow the class and the access tags (:func:`vehicle_classes`).
Traffic lights
    Nodes tagged ``highway=traffic_signals`` on road ways. A signal at an intersection node belongs to that
    junction. A signal on a way node between junctions is attached to the nearest junction along the way
    within :data:`SIGNAL_ATTACH_M` (only the junction ahead when ``traffic_signals:direction`` or the way's
    oneway gives the direction); a signal farther from any junction (a mid-block pedestrian light) becomes a
    junction itself. Every signalled junction gets a fixed-time programme (:func:`signal_programme`): approaches
    are split into two groups by their axis (within 45° of the main road's axis or not), and the cycle is
    group A green 31 s, yellow 3 s, group B green 31 s, yellow 3 s; left turns and turnarounds get permissive
    green ``g``, other movements ``G``. A junction whose approaches all share one axis keeps group B empty: its
    second half is all red (the crossing's time). Each signalled junction is its own traffic light (id = node
    id); nearby junctions of one intersection (dual carriageways) are not joined into one controller.
Connections
    At each junction every incoming edge connects to every outgoing edge, except the reverse of the same way
    piece (a U-turn), which is kept only when nothing else is possible (dead ends), and except those forbidden
    by ``type=restriction`` relations with a via node (``no_*`` forbid the from→to turn, ``only_*`` forbid all
    others from the from way; ``restriction`` or ``restriction:motorcar|motor_vehicle|vehicle``, skipped when
    ``except`` names motor cars; when the to way is not split at the via node, the restriction's name picks the
    left/right/straight/U-turn movement; via-way restrictions are counted and skipped). Directions come from the turn angle (:func:`turn_direction`); when no option is straight within
    10°, the straightest one under 45° is called straight. Lanes (:func:`lane_links`): right turns use the
    rightmost lane, left turns and turnarounds the leftmost, straight movements every lane; without a straight
    movement the lanes split between right (lower half) and left (upper half). The k-th serving lane from the
    turn's side goes to the k-th target lane from that side.
Junction types
    ``traffic_light`` with a signal; ``dead_end`` when only one way piece touches it; ``right_before_left`` when
    more than two pieces meet, all incoming edges have the same priority, none is in a roundabout, and all are at
    most 49 km/h (netconvert's default rule); ``priority`` otherwise. OSM carries no heights: ``z_m`` is 0.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyproj

from twin.city.frame import WGS84, Frame
from twin.city.layer import layer_id_from_path
from twin.city.roads import RoadNetwork, polyline_length
from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

KMH = 1.0 / 3.6
MPH = 1.609344 / 3.6
KNOT = 1.852 / 3.6

NO_LIMIT_KMH = 130.0
"""Speed used for ``maxspeed=none`` (no legal limit): the German advisory motorway speed, km/h."""
WALK_KMH = 7.0
"""Speed used for ``maxspeed=walk`` (walking pace, German ``Schrittgeschwindigkeit``), km/h."""
SIGNAL_ATTACH_M = 25.0
"""A signal this close (along its way, metres) to a junction controls that junction (netconvert's guess distance)."""
GREEN_S = 31.0
YELLOW_S = 3.0
RIGHT_BEFORE_LEFT_MAX_MPS = 49.0 * KMH
DEFAULT_LANE_WIDTH_M = 3.2


class RoadClass(NamedTuple):
    """Defaults of one ``highway`` class: ``priority`` (higher wins), ``lanes`` per direction, ``speed_kmh``,
    lane ``width_m``, and whether bicycles may use it."""

    priority: int
    lanes: int
    speed_kmh: float
    width_m: float
    bicycles: bool = True


ROAD_CLASSES: dict[str, RoadClass] = {
    "motorway": RoadClass(13, 2, 120.0, 3.5, bicycles=False),
    "motorway_link": RoadClass(12, 1, 80.0, 3.5, bicycles=False),
    "trunk": RoadClass(12, 2, 100.0, 3.5),
    "trunk_link": RoadClass(11, 1, 60.0, 3.5),
    "primary": RoadClass(11, 1, 70.0, 3.2),
    "primary_link": RoadClass(10, 1, 50.0, 3.2),
    "secondary": RoadClass(10, 1, 60.0, 3.2),
    "secondary_link": RoadClass(9, 1, 50.0, 3.2),
    "tertiary": RoadClass(9, 1, 50.0, 3.2),
    "tertiary_link": RoadClass(8, 1, 40.0, 3.2),
    "unclassified": RoadClass(6, 1, 50.0, 3.2),
    "residential": RoadClass(5, 1, 50.0, 3.2),
    "road": RoadClass(5, 1, 50.0, 3.2),
    "living_street": RoadClass(4, 1, WALK_KMH, 3.0),
    "service": RoadClass(3, 1, 20.0, 3.0),
}
"""``highway`` values loaded as roads for vehicles, with their defaults (twin's table; speeds are urban-leaning)."""

# Statutory defaults (km/h) behind zone codes such as "DE:urban" (OSM wiki "Default speed limits"; "none" means
# no limit). GB and US-style values are given in mph.
ZONE_SPEEDS_KMH: dict[str, dict[str, float | str]] = {
    "AT": {"urban": 50, "rural": 100, "trunk": 100, "motorway": 130, "living_street": "walk"},
    "BE": {"urban": 50, "rural": 90, "trunk": 120, "motorway": 120, "living_street": 20},
    "CH": {"urban": 50, "rural": 80, "trunk": 100, "motorway": 120, "living_street": 20},
    "CZ": {"urban": 50, "rural": 90, "trunk": 110, "motorway": 130, "living_street": 20},
    "DE": {"urban": 50, "rural": 100, "motorway": "none", "living_street": "walk", "bicycle_road": 30},
    "DK": {"urban": 50, "rural": 80, "motorway": 130, "living_street": 15},
    "ES": {"urban": 50, "rural": 90, "trunk": 100, "motorway": 120, "living_street": 20},
    "FI": {"urban": 50, "rural": 80, "motorway": 120, "living_street": 20},
    "FR": {"urban": 50, "rural": 80, "trunk": 110, "motorway": 130, "living_street": 20},
    "IT": {"urban": 50, "rural": 90, "trunk": 110, "motorway": 130},
    "NL": {"urban": 50, "rural": 80, "trunk": 100, "motorway": 100, "living_street": 15},
    "NO": {"urban": 50, "rural": 80, "motorway": 110},
    "PL": {"urban": 50, "rural": 90, "trunk": 120, "motorway": 140, "living_street": 20},
    "RU": {"urban": 60, "rural": 90, "motorway": 110, "living_street": 20},
    "SE": {"urban": 50, "rural": 70, "motorway": 110},
}
ZONE_SPEEDS_MPH: dict[str, dict[str, float]] = {
    "GB": {"urban": 30, "nsl_single": 60, "nsl_dual": 70, "rural": 60, "motorway": 70},
}

_SPEED_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(km/h|kmh|kph|mph|knots|kn)?\s*$", re.IGNORECASE)
_ZONE_RE = re.compile(r"^\s*([A-Za-z]{2})(?:-[A-Za-z0-9]+)?:([A-Za-z_:0-9]+)\s*$")
_ZONE_NUMBER_RE = re.compile(r"^(?:zone:?)?(\d+)$")


# -- tag interpretation (pure functions, unit-tested) ---------------------------------------------------------------
def zone_speed(code: str | None) -> float | None:
    """Speed in m/s meant by a zone code such as ``"DE:urban"``, ``"FR:rural"``, ``"DE:zone30"``, ``"DE:30"``
    (the ``zone:maxspeed`` form) or ``"GB:nsl_single"``; ``None`` when the code is unknown."""
    if not code:
        return None
    m = _ZONE_RE.match(code)
    if m is None:
        return None
    country, kind = m.group(1).upper(), m.group(2).lower()
    num = _ZONE_NUMBER_RE.match(kind)
    if num:
        value = float(num.group(1))
        return value * (MPH if country in ZONE_SPEEDS_MPH else KMH) if value > 0 else None
    if country in ZONE_SPEEDS_MPH and kind in ZONE_SPEEDS_MPH[country]:
        return ZONE_SPEEDS_MPH[country][kind] * MPH
    value = ZONE_SPEEDS_KMH.get(country, {}).get(kind)
    if value is None:
        return None
    if value == "none":
        return NO_LIMIT_KMH * KMH
    if value == "walk":
        return WALK_KMH * KMH
    return float(value) * KMH


def parse_maxspeed(value: str | None) -> float | None:
    """Speed limit in m/s from an OSM ``maxspeed`` value; ``None`` when it gives no usable number.

    ``"50"`` and ``"50 km/h"`` are km/h; ``"30 mph"``, ``"10 knots"`` convert; ``"none"`` → :data:`NO_LIMIT_KMH`;
    ``"walk"`` → :data:`WALK_KMH`; zone codes (``"DE:urban"``, ``"DE:zone:30"``) through :func:`zone_speed`;
    ``"signals"``, ``"variable"`` and garbage → ``None``. Of several values (``"50;30"``) the first usable one.
    """
    if value is None:
        return None
    for part in str(value).split(";"):
        part = part.strip()
        if not part:
            continue
        low = part.lower()
        if low == "none":
            return NO_LIMIT_KMH * KMH
        if low == "walk":
            return WALK_KMH * KMH
        m = _SPEED_RE.match(part)
        if m:
            number = float(m.group(1).replace(",", "."))
            if not 0.0 < number <= 400.0:
                continue
            unit = (m.group(2) or "km/h").lower()
            factor = MPH if unit == "mph" else KNOT if unit in ("knots", "kn") else KMH
            return number * factor
        speed = zone_speed(part)
        if speed is not None:
            return speed
    return None


_ONEWAY_FORWARD = {"yes", "true", "1"}
_ONEWAY_BACKWARD = {"-1", "reverse"}
_ONEWAY_NO = {"no", "false", "0", "reversible", "alternating"}


def oneway_direction(tags: Mapping[str, str]) -> int:
    """1 when traffic runs only along the way, -1 only against it, 0 both ways.

    ``oneway`` decides when it is one of yes/true/1, -1/reverse, no/false/0 (``reversible`` and ``alternating``
    count as two-way); otherwise ``highway=motorway`` and ``junction=roundabout|circular`` imply 1.
    """
    value = (tags.get("oneway") or "").strip().lower()
    if value in _ONEWAY_FORWARD:
        return 1
    if value in _ONEWAY_BACKWARD:
        return -1
    if value in _ONEWAY_NO:
        return 0
    if tags.get("highway") == "motorway" or tags.get("junction") in ("roundabout", "circular"):
        return 1
    return 0


def parse_lanes(value: str | None) -> int | None:
    """A positive lane count from ``"2"`` or ``"2;3"`` (the first); ``None`` for missing or unusable values."""
    if value is None:
        return None
    for part in str(value).split(";"):
        part = part.strip()
        if part.isdigit() and 0 < int(part) <= 16:
            return int(part)
    return None


def lane_counts(tags: Mapping[str, str]) -> tuple[int, int]:
    """(forward, backward) lane counts of a road way; 0 for a direction the way does not carry.

    One-way: ``lanes:forward`` (``lanes:backward`` against the way) or ``lanes`` or the class default.
    Two-way: ``lanes:forward`` and ``lanes:backward`` when given; otherwise ``lanes`` minus
    ``lanes:both_ways`` split between the directions (the forward side takes the odd lane), at least 1 each;
    otherwise the class default per direction.
    """
    cls = ROAD_CLASSES.get(tags.get("highway", ""), ROAD_CLASSES["road"])
    total = parse_lanes(tags.get("lanes"))
    fwd = parse_lanes(tags.get("lanes:forward"))
    bwd = parse_lanes(tags.get("lanes:backward"))
    direction = oneway_direction(tags)
    if direction == 1:
        return fwd or total or cls.lanes, 0
    if direction == -1:
        return 0, bwd or total or cls.lanes
    if fwd and bwd:
        return fwd, bwd
    if total:
        rest = total - (parse_lanes(tags.get("lanes:both_ways")) or 0)
        if fwd:
            return fwd, max(1, rest - fwd)
        if bwd:
            return max(1, rest - bwd), bwd
        return max(1, (rest + 1) // 2), max(1, rest // 2)
    return fwd or cls.lanes, bwd or cls.lanes


def direction_speeds(tags: Mapping[str, str]) -> tuple[float, float]:
    """(forward, backward) speed limits in m/s of a road way.

    ``maxspeed:forward``/``maxspeed:backward``, else ``maxspeed``, else a zone code in ``maxspeed:type``,
    ``source:maxspeed`` or ``zone:maxspeed``, else the default of the ``highway`` class.
    """
    cls = ROAD_CLASSES.get(tags.get("highway", ""), ROAD_CLASSES["road"])
    base = parse_maxspeed(tags.get("maxspeed"))
    if base is None:
        for key in ("maxspeed:type", "source:maxspeed", "zone:maxspeed"):
            base = zone_speed(tags.get(key))
            if base is not None:
                break
    if base is None:
        base = cls.speed_kmh * KMH
    fwd = parse_maxspeed(tags.get("maxspeed:forward"))
    bwd = parse_maxspeed(tags.get("maxspeed:backward"))
    return (base if fwd is None else fwd), (base if bwd is None else bwd)


_MOTORCARS = frozenset({"passenger", "private", "taxi", "hov", "evehicle", "vip"})
_ROAD_VEHICLES = frozenset(
    _MOTORCARS
    | {"bus", "coach", "delivery", "truck", "trailer", "motorcycle", "moped", "bicycle"}
    | {"emergency", "authority", "army", "custom1", "custom2"}
)
_ALWAYS = frozenset({"emergency", "authority"})
# access keys from general to specific, and the SUMO vehicle classes each one speaks for
_ACCESS_KEYS: tuple[tuple[str, frozenset[str]], ...] = (
    ("access", _ROAD_VEHICLES),
    ("vehicle", _ROAD_VEHICLES),
    ("motor_vehicle", _ROAD_VEHICLES - {"bicycle"}),
    ("motorcar", _MOTORCARS),
    ("motorcycle", frozenset({"motorcycle"})),
    ("moped", frozenset({"moped"})),
    ("goods", frozenset({"delivery"})),
    ("hgv", frozenset({"truck", "trailer"})),
    ("psv", frozenset({"bus", "coach", "taxi"})),
    ("bus", frozenset({"bus", "coach"})),
    ("taxi", frozenset({"taxi"})),
    ("bicycle", frozenset({"bicycle"})),
)
_ACCESS_NO = {"no"}
_ACCESS_YES = {
    "yes",
    "designated",
    "permissive",
    "official",
    "destination",
    "private",
    "delivery",
    "customers",
}


def vehicle_classes(tags: Mapping[str, str]) -> set[str]:
    """SUMO vehicle classes allowed on a road way.

    Start from all road vehicles (no bicycles or mopeds on motorways), then apply ``access``, ``vehicle``,
    ``motor_vehicle``, ``motorcar``, ``hgv``, ``psv``, ``bus``, ``bicycle``… from general to specific: ``no``
    removes the classes, ``yes``/``designated``/``destination``/``private``… allow them (the conditions of
    ``destination`` and ``private`` are not modelled). Emergency and authority vehicles are always allowed.
    """
    cls = ROAD_CLASSES.get(tags.get("highway", ""), ROAD_CLASSES["road"])
    allowed = set(_ROAD_VEHICLES)
    if not cls.bicycles:
        allowed -= {"bicycle", "moped"}
    for key, classes in _ACCESS_KEYS:
        value = (tags.get(key) or "").strip().lower()
        if value in _ACCESS_NO:
            allowed -= classes
        elif value in _ACCESS_YES:
            allowed |= classes
    return allowed | _ALWAYS


def turn_direction(angle_deg: float) -> str:
    """SUMO link direction for a turn angle in degrees (counter-clockwise positive, i.e. left):
    ``s`` |a| < 10, ``L``/``R`` up to 45, ``l``/``r`` up to 150, ``t`` beyond."""
    a = abs(angle_deg)
    if a < 10.0:
        return "s"
    if a > 150.0:
        return "t"
    if angle_deg > 0:
        return "L" if a <= 45.0 else "l"
    return "R" if a <= 45.0 else "r"


_RIGHT = frozenset("rR")
_LEFT = frozenset("lLt")


def lane_links(num_in: int, targets: list[tuple[str, int]]) -> list[tuple[int, int, int]]:
    """Lane-to-lane links of one incoming edge: ``(from_lane, target_number, to_lane)``.

    ``num_in`` lanes come in; ``targets`` lists ``(direction, num_lanes)`` of the outgoing edges it connects to.
    Right turns (``r``, ``R``) use lane 0, left turns and turnarounds (``l``, ``L``, ``t``) lane ``num_in - 1``,
    straight (``s``) every lane; without a straight target the lanes are split, the lower half to the right
    turns, the upper half to the left ones (all lanes when there are only turns to one side). With one straight
    target of fewer lanes than come in (a fork, or turn pockets), the lanes it does not need serve the turns only
    (as SUMO's netconvert divides lanes on edges): one at a time to the side whose targets have the most lanes not
    yet served (ties: left), from the outside in. The k-th serving lane counted from the turn's side goes to the
    k-th lane of the target from that side (clipped); the k-th straight lane from the right to the k-th target
    lane (clipped).
    """
    has_straight = any(d == "s" for d, _ in targets)
    has_right = any(d in _RIGHT for d, _ in targets)
    has_left = any(d in _LEFT for d, _ in targets)
    lanes = list(range(num_in))
    straight_lanes = lanes
    n_straight = [n for d, n in targets if d == "s"]
    if len(n_straight) == 1 and num_in > n_straight[0]:
        spare = num_in - n_straight[0]
        need_r = sum(n for d, n in targets if d in _RIGHT)
        need_l = sum(n for d, n in targets if d in ("l", "L"))
        sr = sl = 0
        while spare > 0 and (sr < need_r or sl < need_l):
            if sl < need_l and (need_l - sl >= need_r - sr or sr >= need_r):
                sl += 1
            else:
                sr += 1
            spare -= 1
        straight_lanes = lanes[sr : num_in - sl]
        right_lanes, left_lanes = lanes[:sr] or lanes[:1], lanes[num_in - sl :] or lanes[-1:]
    elif has_straight:
        right_lanes, left_lanes = lanes[:1], lanes[-1:]
    elif has_right and has_left:
        half = (num_in + 1) // 2 if num_in > 1 else 1
        right_lanes = lanes[:half]
        left_lanes = lanes[half:] or lanes[-1:]
    else:
        right_lanes = left_lanes = lanes
    links = []
    for t, (direction, num_out) in enumerate(targets):
        if direction == "s":
            links += [(i, t, min(k, num_out - 1)) for k, i in enumerate(straight_lanes)]
        elif direction in _RIGHT:
            links += [(i, t, min(k, num_out - 1)) for k, i in enumerate(right_lanes)]
        else:
            links += [(i, t, max(num_out - 1 - k, 0)) for k, i in enumerate(reversed(left_lanes))]
    links.sort(key=lambda x: (x[0], x[1], x[2]))
    return links


def signal_programme(
    approach_bearings_deg: list[float],
    link_approach: list[int],
    link_directions: list[str],
    main_approach: int,
) -> list[tuple[float, str, float, float]]:
    """The fixed-time programme of a signalled junction as ``(duration_s, state, min_dur_s, max_dur_s)`` phases.

    ``approach_bearings_deg`` : heading of each incoming edge at the junction (degrees); ``link_approach`` :
    for each link index, the incoming edge it comes from; ``link_directions`` : each link's direction;
    ``main_approach`` : the incoming edge whose axis defines group A (the highest-priority one). Approaches
    whose axis is within 45° of it form group A, the others group B. Phases: A green, A yellow, B green,
    B yellow (31, 3, 31, 3 s); left turns and turnarounds are ``g`` (permissive), the rest ``G``.
    """
    ref = approach_bearings_deg[main_approach] % 180.0 if approach_bearings_deg else 0.0
    in_a = []
    for b in approach_bearings_deg:
        diff = abs((b % 180.0) - ref)
        in_a.append(min(diff, 180.0 - diff) <= 45.0)

    def state(green_group: bool | None, yellow_group: bool | None) -> str:
        chars = []
        for app, d in zip(link_approach, link_directions, strict=True):
            group = in_a[app]
            if green_group is not None and group == green_group:
                chars.append("g" if d in _LEFT else "G")
            elif yellow_group is not None and group == yellow_group:
                chars.append("y")
            else:
                chars.append("r")
        return "".join(chars)

    phases = [
        (GREEN_S, state(True, None)),
        (YELLOW_S, state(None, True)),
        (GREEN_S, state(False, None)),
        (YELLOW_S, state(None, False)),
    ]
    return [(d, s, d, d) for d, s in phases]


# -- reading ---------------------------------------------------------------------------------------------------------
@dataclass
class OsmRoadData:
    """What the reader keeps of an OSM file (plain Python data, node locations in degrees).

    ``ways``: (way id, tags, node ids, (lon, lat) per node) of road ways, one entry per run of nodes present in
    the file; ``signals``: traffic signal node id → its ``traffic_signals:direction`` (or None);
    ``restrictions``: (relation id, restriction, from way, via node, to way).
    """

    ways: list[tuple[int, dict[str, str], list[int], list[tuple[float, float]]]] = field(default_factory=list)
    signals: dict[int, str | None] = field(default_factory=dict)
    restrictions: list[tuple[int, str, int, int, int]] = field(default_factory=list)
    skipped_restrictions: int = 0
    missing_nodes: int = 0
    highway_ways: int = 0


def _osmium_format(path: Path) -> str:
    """pyosmium format name from the file's first bytes (its name may not tell)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head[:2] == b"\x1f\x8b":
        return "osm.gz"
    if head[:3] == b"BZh":
        return "osm.bz2"
    if b"OSMHeader" in head or path.name.lower().endswith(".pbf"):
        return "pbf"
    return "osm"


def _restriction_kind(tags: Mapping[str, str]) -> str | None:
    for key in ("restriction", "restriction:motorcar", "restriction:motor_vehicle", "restriction:vehicle"):
        value = tags.get(key)
        if value and (value.startswith("no_") or value.startswith("only_")):
            excepted = {x.strip() for x in (tags.get("except") or "").split(";")}
            if excepted & {"motorcar", "motor_vehicle", "vehicle"}:
                return None
            return value
    return None


def read_osm_roads(path: Path) -> OsmRoadData:
    """Stream ``path`` once with pyosmium and keep road ways (with node locations), signals and restrictions."""
    import osmium
    import osmium.osm as oo
    from osmium.filter import KeyFilter

    data = OsmRoadData()
    try:
        source = osmium.io.File(str(path), _osmium_format(path))
        processor = (
            osmium.FileProcessor(source)
            .with_locations()
            .with_filter(KeyFilter("highway").enable_for(oo.NODE | oo.WAY))
            .with_filter(KeyFilter("type").enable_for(oo.RELATION))
        )
        for obj in processor:
            if obj.is_node():
                if obj.tags.get("highway") == "traffic_signals":
                    data.signals[obj.id] = obj.tags.get("traffic_signals:direction")
            elif obj.is_way():
                data.highway_ways += 1
                tags = {t.k: t.v for t in obj.tags}
                if tags.get("highway") not in ROAD_CLASSES or tags.get("area") == "yes":
                    continue
                # a node missing from the file (outside an extract) breaks the way into separate runs
                refs: list[int] = []
                lonlat: list[tuple[float, float]] = []
                for n in obj.nodes:
                    if not n.location.valid():
                        data.missing_nodes += 1
                        if len(refs) >= 2:
                            data.ways.append((obj.id, tags, refs, lonlat))
                        refs, lonlat = [], []
                        continue
                    if refs and refs[-1] == n.ref:
                        continue
                    refs.append(n.ref)
                    lonlat.append((n.location.lon, n.location.lat))
                if len(refs) >= 2:
                    data.ways.append((obj.id, tags, refs, lonlat))
            elif obj.is_relation() and obj.tags.get("type") == "restriction":
                kind = _restriction_kind(obj.tags)
                if kind is None:
                    continue
                members: dict[str, list[tuple[str, int]]] = defaultdict(list)
                for m in obj.members:
                    members[m.role].append((m.type, m.ref))
                frm, via, to = members.get("from", []), members.get("via", []), members.get("to", [])
                if (
                    len(frm) == 1 and len(to) == 1 and len(via) == 1
                    and frm[0][0] == "w" and to[0][0] == "w" and via[0][0] == "n"
                ):  # fmt: skip
                    data.restrictions.append((obj.id, kind, frm[0][1], via[0][1], to[0][1]))
                else:
                    data.skipped_restrictions += 1
    except RuntimeError as exc:
        raise InputError(path, f"cannot be read as OpenStreetMap XML or PBF ({exc})") from None
    return data


# -- building the network --------------------------------------------------------------------------------------------
def _heading(shape: FloatArray, *, at_end: bool, probe_m: float = 10.0) -> float:
    """Heading in degrees (counter-clockwise from east) of an (n, 2) polyline near its end (or start).

    The direction is taken over the last (first) ``probe_m`` metres, or the whole line if it is shorter, so that
    a short kink right at the junction does not decide it.
    """
    n = len(shape)
    if at_end:
        x0, y0 = float(shape[-1, 0]), float(shape[-1, 1])
        order = range(n - 2, -1, -1)
    else:
        x0, y0 = float(shape[0, 0]), float(shape[0, 1])
        order = range(1, n)
    px, py = x0, y0
    walked = 0.0
    x, y = x0, y0
    for k in order:
        x, y = float(shape[k, 0]), float(shape[k, 1])
        walked += math.hypot(x - px, y - py)
        px, py = x, y
        if walked >= probe_m:
            break
    dx, dy = (x0 - x, y0 - y) if at_end else (x - x0, y - y0)
    if dx == 0.0 and dy == 0.0:
        return 0.0
    return math.degrees(math.atan2(dy, dx))


def _vertex_normals(xy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(points, normals): the polyline without consecutive duplicates and its right-hand mitred vertex normals
    (unit length on straight runs, mitre factor capped at 2)."""
    xy = np.asarray(xy, dtype=np.float64)
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.any(np.diff(xy, axis=0) != 0.0, axis=1)
    pts = xy[keep]
    if len(pts) < 2:
        return xy.copy(), np.zeros_like(xy)
    d = np.diff(pts, axis=0)
    length = np.hypot(d[:, 0], d[:, 1])
    normal = np.column_stack([d[:, 1], -d[:, 0]]) / length[:, None]  # right-hand unit normals
    vn = np.empty_like(pts)
    vn[0], vn[-1] = normal[0], normal[-1]
    if len(pts) > 2:
        mid = normal[:-1] + normal[1:]
        ml = np.hypot(mid[:, 0], mid[:, 1])
        safe = ml > 1e-9
        ml_safe = np.where(safe, ml, 1.0)
        factor = np.minimum(2.0 / ml_safe, 2.0)
        vn[1:-1] = np.where(safe[:, None], mid / ml_safe[:, None] * factor[:, None], normal[:-1])
    return pts, vn


def offset_polyline(xy: FloatArray, right_m: float) -> FloatArray:
    """Shift an (n, 2) polyline sideways by ``right_m`` metres (negative: to the left), mitred at vertices.

    Consecutive duplicate points are dropped first; the mitre factor is capped at 2. Returns (m, 2) float64.
    """
    pts, vn = _vertex_normals(xy)
    return pts + right_m * vn


@dataclass
class _Edge:
    id: str
    way: int
    seg: int
    forward: bool
    nodes: list[int]
    tags: dict[str, str]
    shape: FloatArray
    length: float
    lanes: int
    speed: float
    oneway: bool
    allow: str
    disallow: str
    row: int = -1
    h_start: float = 0.0  # heading at the start, degrees counter-clockwise from east
    h_end: float = 0.0  # heading at the end


def _find_signal_targets(
    ways: list[tuple[int, dict[str, str], list[int], FloatArray]],
    split: set[int],
    signals: Mapping[int, str | None],
    where: Mapping[int, tuple[int, int]],
) -> dict[int, tuple[int | None, float]]:
    """For each signal node not at a junction: (junction node it belongs to, distance along the way)."""
    out: dict[int, tuple[int | None, float]] = {}
    for s, (wi, k) in where.items():
        if s in split:
            continue
        _, tags, refs, xy = ways[wi]
        seg = np.hypot(*np.diff(xy, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        sig_dir = (signals.get(s) or "").strip().lower()
        ow = oneway_direction(tags)
        allow_fwd = sig_dir in ("forward",) or (sig_dir not in ("backward",) and ow >= 0)
        allow_bwd = sig_dir in ("backward",) or (sig_dir not in ("forward",) and ow <= 0)
        best: tuple[int | None, float] = (None, math.inf)
        if allow_fwd:  # the junction ahead of traffic running along the way
            for j in range(k + 1, len(refs)):
                if refs[j] in split:
                    if cum[j] - cum[k] < best[1]:
                        best = (refs[j], float(cum[j] - cum[k]))
                    break
        if allow_bwd:
            for j in range(k - 1, -1, -1):
                if refs[j] in split:
                    if cum[k] - cum[j] < best[1]:
                        best = (refs[j], float(cum[k] - cum[j]))
                    break
        out[s] = best
    return out


def build_network(data: OsmRoadData, *, frame: Frame, path: Path, id: str | None = None) -> RoadNetwork:
    """Turn :class:`OsmRoadData` into a :class:`RoadNetwork` in ``frame`` (rules in the module docstring)."""
    if not data.ways:
        raise InputError(
            path,
            "has no ways tagged highway="
            + "|".join(ROAD_CLASSES)
            + " for vehicles with two or more nodes in the "
            f"file ({data.highway_ways} highway ways in all, {data.missing_nodes} node references missing)",
        )
    # project every node once
    node_row: dict[int, int] = {}
    lonlat: list[tuple[float, float]] = []
    for _, _, refs, ll in data.ways:
        for r, p in zip(refs, ll, strict=True):
            if r not in node_row:
                node_row[r] = len(lonlat)
                lonlat.append(p)
    local = frame.to_local(np.array(lonlat, dtype=np.float64), pyproj.CRS.from_user_input(WGS84))[:, :2]
    ways = [(wid, tags, refs, local[[node_row[r] for r in refs]]) for wid, tags, refs, _ in data.ways]

    # split nodes: way ends and nodes used more than once by road ways
    uses = Counter(r for _, _, refs, _ in ways for r in refs)
    split = {r for r, c in uses.items() if c >= 2}
    for _, _, refs, _ in ways:
        split.add(refs[0])
        split.add(refs[-1])

    # signals on road ways: attach to a near junction or become one
    where: dict[int, tuple[int, int]] = {}
    for wi, (_, _, refs, _) in enumerate(ways):
        for k, r in enumerate(refs):
            if r in data.signals and r not in where:
                where[r] = (wi, k)
    first = _find_signal_targets(ways, split, data.signals, where)
    promoted = {s for s, (j, d) in first.items() if j is None or d > SIGNAL_ATTACH_M}
    split |= promoted
    targets = _find_signal_targets(ways, split, data.signals, where)
    junction_signals: dict[int, list[int]] = defaultdict(list)
    for s in where:
        junction_signals[s if s in split else targets[s][0]].append(s)  # type: ignore[index]

    # directed edges
    edges: list[_Edge] = []
    from twin.city.sumo import permissions_strings

    next_seg: dict[int, int] = defaultdict(int)  # runs of one way (split by missing nodes) number on
    for wi, (wid, tags, refs, xy) in enumerate(ways):
        cuts = [k for k, r in enumerate(refs) if r in split]
        fwd_lanes, bwd_lanes = lane_counts(tags)
        fwd_speed, bwd_speed = direction_speeds(tags)
        allow, disallow = permissions_strings(vehicle_classes(tags))
        one = fwd_lanes == 0 or bwd_lanes == 0
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            seg = next_seg[wid]
            next_seg[wid] += 1
            shape = xy[a : b + 1]
            length = polyline_length(shape)
            nodes = refs[a : b + 1]
            if fwd_lanes:
                edges.append(
                    _Edge(f"{wid}#{seg}", wi, seg, True, nodes, tags, shape, length, fwd_lanes, fwd_speed, one,
                          allow, disallow)
                )  # fmt: skip
            if bwd_lanes:
                edges.append(
                    _Edge(f"-{wid}#{seg}", wi, seg, False, nodes[::-1], tags, shape[::-1].copy(), length, bwd_lanes,
                          bwd_speed, one, allow, disallow)
                )  # fmt: skip
    zero = [e.id for e in edges if e.length <= 0.0]
    if zero:
        log.warning(
            "%s: %d edges have zero length (coincident nodes), e.g. %s", path.name, len(zero), zero[:3]
        )
    for i, e in enumerate(edges):
        e.row = i
        e.h_start = _heading(e.shape, at_end=False)
        e.h_end = _heading(e.shape, at_end=True)

    # junctions in order of first use
    junction_ids: list[int] = []
    jrow: dict[int, int] = {}
    incoming: dict[int, list[_Edge]] = defaultdict(list)
    outgoing: dict[int, list[_Edge]] = defaultdict(list)
    pieces: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for e in edges:
        for n in (e.nodes[0], e.nodes[-1]):
            if n not in jrow:
                jrow[n] = len(junction_ids)
                junction_ids.append(n)
            pieces[n].add((e.way, e.seg))
        outgoing[e.nodes[0]].append(e)
        incoming[e.nodes[-1]].append(e)

    restrictions, skipped = _restrictions_by_junction(data.restrictions, jrow, incoming, outgoing, ways)
    skipped += data.skipped_restrictions

    conn_rows: list[list[Any]] = []
    tls_rows: list[dict[str, Any]] = []
    junction_type: dict[int, str] = {}
    for j in junction_ids:
        first_row = len(conn_rows)
        approaches = sorted(incoming[j], key=lambda e: e.h_end)
        for e in approaches:
            conn_rows += _connections_of(e, j, outgoing[j], restrictions.get(j, ()))
        signals = junction_signals.get(j)
        if signals:
            links = conn_rows[first_row:]
            bearings = [e.h_end for e in approaches]
            app_index = {e.id: k for k, e in enumerate(approaches)}
            for k, row in enumerate(links):
                row[9] = str(j)
                row[10] = k
            main = max(
                range(len(approaches)),
                key=lambda k: (_priority(approaches[k]), approaches[k].lanes, -k),
                default=0,
            )
            phases = signal_programme(bearings, [app_index[r[1]] for r in links], [r[8] for r in links], main)
            if not links:
                log.info("%s: signal at node %s controls no movement", path.name, j)
            tls_rows.append(
                {"id": str(j), "type": "static", "programme": "0", "offset_s": 0.0, "phases": phases,
                 "junctions": [str(j)], "source_nodes": [str(s) for s in sorted(signals)]}
            )  # fmt: skip
            junction_type[j] = "traffic_light"
        else:
            junction_type[j] = _junction_type(pieces[j], incoming[j])

    jxy = local[[node_row[j] for j in junction_ids]]
    junctions = pd.DataFrame(
        {
            "id": [str(j) for j in junction_ids],
            "x_m": jxy[:, 0],
            "y_m": jxy[:, 1],
            "z_m": np.zeros(len(junction_ids)),
            "type": [junction_type[j] for j in junction_ids],
            "tls": pd.Series([str(j) if j in junction_signals else None for j in junction_ids], dtype=object),
        }
    )
    edge_table = pd.DataFrame(
        {
            "id": [e.id for e in edges],
            "from_junction": [str(e.nodes[0]) for e in edges],
            "to_junction": [str(e.nodes[-1]) for e in edges],
            "from_index": [jrow[e.nodes[0]] for e in edges],
            "to_index": [jrow[e.nodes[-1]] for e in edges],
            "name": pd.Series([e.tags.get("name") for e in edges], dtype=object),
            "highway": [e.tags["highway"] for e in edges],
            "type": [f"highway.{e.tags['highway']}" for e in edges],
            "num_lanes": [e.lanes for e in edges],
            "speed_mps": [e.speed for e in edges],
            "length_m": [e.length for e in edges],
            "shape": pd.Series([e.shape for e in edges], dtype=object),
            "priority": [_priority(e) for e in edges],
            "oneway": [e.oneway for e in edges],
            "osm_way": [ways[e.way][0] for e in edges],
        }
    )
    lane_table = _lanes(edges)
    connections = pd.DataFrame(
        conn_rows,
        columns=[
            "junction", "from_edge", "to_edge", "from_edge_index", "to_edge_index",
            "from_lane", "to_lane", "via", "direction", "tls", "link_index",
        ],
    )  # fmt: skip
    traffic_lights = pd.DataFrame(
        tls_rows, columns=["id", "type", "programme", "offset_s", "phases", "junctions", "source_nodes"]
    )
    meta = {
        "road_ways": len({w[0] for w in ways}),
        "highway_ways": data.highway_ways,
        "signal_nodes": len(where),
        "signals_promoted_to_junctions": len(promoted),
        "restrictions_applied": len(data.restrictions) - (skipped - data.skipped_restrictions),
        "restrictions_skipped": skipped,
        "missing_node_locations": data.missing_nodes,
    }
    return RoadNetwork(
        id=id or layer_id_from_path(path),
        source=str(path),
        source_kind="osm",
        junctions=junctions,
        edges=edge_table,
        lanes=lane_table,
        connections=connections,
        traffic_lights=traffic_lights,
        meta=meta,
    )


def _priority(e: _Edge) -> int:
    return ROAD_CLASSES[e.tags["highway"]].priority


def _junction_type(pieces: set[tuple[int, int]], incoming: list[_Edge]) -> str:
    if len(pieces) <= 1:
        return "dead_end"
    if len(pieces) <= 2 or not incoming:
        return "priority"
    if len({_priority(e) for e in incoming}) == 1 and all(
        e.speed <= RIGHT_BEFORE_LEFT_MAX_MPS + 1e-9
        and e.tags.get("junction") not in ("roundabout", "circular")
        for e in incoming
    ):
        return "right_before_left"
    return "priority"


class _Restriction(NamedTuple):
    kind: str
    from_edges: frozenset[str]
    to_edges: frozenset[str]
    ambiguous: (
        bool  # the to way leaves the via node on both sides (or from way == to way): use the turn's kind
    )


# the movements a restriction's name speaks of, used when its ways alone do not say which turn is meant
_KIND_DIRECTIONS = {
    "left_turn": frozenset("lL"),
    "right_turn": frozenset("rR"),
    "straight_on": frozenset("sLR"),
    "u_turn": frozenset("t"),
}


def _restrictions_by_junction(
    restrictions: Iterable[tuple[int, str, int, int, int]],
    jrow: Mapping[int, int],
    incoming: Mapping[int, list[_Edge]],
    outgoing: Mapping[int, list[_Edge]],
    ways: list[tuple[int, dict[str, str], list[int], FloatArray]],
) -> tuple[dict[int, list[_Restriction]], int]:
    out: dict[int, list[_Restriction]] = defaultdict(list)
    skipped = 0
    for _rel, kind, frm, via, to in restrictions:
        if via not in jrow:
            skipped += 1
            continue
        ins = [e for e in incoming.get(via, []) if ways[e.way][0] == frm]
        outs = [e for e in outgoing.get(via, []) if ways[e.way][0] == to]
        if not ins or not outs:
            skipped += 1
            continue
        ambiguous = frm == to or len({(e.way, e.seg) for e in outs}) > 1
        out[via].append(
            _Restriction(kind, frozenset(e.id for e in ins), frozenset(e.id for e in outs), ambiguous)
        )
    return out, skipped


def _is_reverse(a: _Edge, b: _Edge) -> bool:
    return a.way == b.way and a.seg == b.seg and a.forward != b.forward


def _allowed(e: _Edge, o: _Edge, direction: str, restrictions: Iterable[_Restriction]) -> bool:
    """Whether the turn ``e`` → ``o`` (of ``direction``) survives the turn restrictions at their junction.

    A restriction names a from way and a to way. When the to way leaves the via node on both sides (a way not
    split at the via node, or from == to), the restriction's name picks the movement: ``*_left_turn`` the left
    turns, ``*_straight_on`` the near-straight ones, ``*_u_turn`` turnarounds; other names the non-reversing ones.
    """
    for r in restrictions:
        if e.id not in r.from_edges:
            continue
        hit = o.id in r.to_edges
        if hit and r.ambiguous:
            wanted = _KIND_DIRECTIONS.get(r.kind.split("_", 1)[1])
            hit = direction in wanted if wanted is not None else not _is_reverse(e, o)
        if r.kind.startswith("no_") and hit:
            return False
        if r.kind.startswith("only_") and not hit:
            return False
    return True


def _connections_of(
    e: _Edge, j: int, outs: list[_Edge], restrictions: Iterable[_Restriction]
) -> list[list[Any]]:
    """Connection rows (without signal link indices) from incoming edge ``e`` at junction ``j``."""
    options = []
    for o in outs:
        angle = (o.h_start - e.h_end + 180.0) % 360.0 - 180.0
        if angle == -180.0:
            angle = 180.0
        rev = _is_reverse(e, o)
        direction = "t" if rev else turn_direction(angle)
        if _allowed(e, o, direction, restrictions):
            options.append((o, angle, direction, rev))
    if any(not rev for *_, rev in options):
        options = [x for x in options if not x[3]]
    if options and not any(d == "s" for _, _, d, _ in options):
        k = min(range(len(options)), key=lambda i: abs(options[i][1]))
        if abs(options[k][1]) < 45.0 and not options[k][3]:
            options[k] = (options[k][0], options[k][1], "s", False)
    # right to left
    options.sort(key=lambda x: 180.0 if x[2] == "t" else x[1])
    rows = []
    for lane_in, t, lane_out in lane_links(e.lanes, [(d, o.lanes) for o, _, d, _ in options]):
        o, _, d, _ = options[t]
        rows.append([str(j), e.id, o.id, e.row, o.row, lane_in, lane_out, None, d, None, -1])
    return rows


def _lanes(edges: list[_Edge]) -> pd.DataFrame:
    records = []
    for e in edges:
        width = ROAD_CLASSES[e.tags["highway"]].width_m
        pts, vn = _vertex_normals(e.shape)
        for i in range(e.lanes):
            # two-way roads: this direction's lanes lie right of the way's centre line; one-way: centred on it
            right = (e.lanes - i - 0.5) * width if not e.oneway else ((e.lanes - 1) / 2.0 - i) * width
            records.append(
                {
                    "id": f"{e.id}_{i}",
                    "edge": e.id,
                    "edge_index": e.row,
                    "index": i,
                    "speed_mps": e.speed,
                    "length_m": e.length,
                    "width_m": width,
                    "allow": e.allow,
                    "disallow": e.disallow,
                    "shape": pts + right * vn,
                }
            )
    return pd.DataFrame(records)


def load_osm_roads(path: str | os.PathLike[str], *, frame: Frame, id: str | None = None) -> RoadNetwork:
    """Read the roads of an OSM file (``.osm``, ``.osm.gz``, ``.osm.bz2``, ``.osm.pbf``) into a RoadNetwork.

    The city frame adopts the UTM zone of the data if it has no CRS yet. Raises :class:`InputError` naming the
    file when it is missing, unreadable, truncated or holds no roads for vehicles.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "does not exist or is not a file")
    t0 = time.perf_counter()
    data = read_osm_roads(p)
    t1 = time.perf_counter()
    net = build_network(data, frame=frame, path=p, id=id)
    log.info(
        "%s: read %d road ways in %.2f s, built %d edges in %.2f s",
        p.name, len(data.ways), t1 - t0, len(net.edges), time.perf_counter() - t1,
    )  # fmt: skip
    return net
