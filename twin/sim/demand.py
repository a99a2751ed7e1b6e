"""Traffic demand: SUMO route and trip files, OD matrices and random trips → vehicle arrays (:class:`Demand`).

SUMO semantics followed (sumo.dlr.de, "Definition of Vehicles, Vehicle Types, and Routes"):

- ``<vType>`` attributes ``length minGap accel decel emergencyDecel tau maxSpeed speedFactor speedDev delta
  vClass``; what a type leaves out takes the default of its ``vClass`` (:data:`VCLASS_DEFAULTS`, SUMO's
  ``SUMOVTypeParameter`` values; ``passenger`` when no class is given, which is also SUMO's ``DEFAULT_VEHTYPE``).
  ``speedFactor`` may be a number or ``norm(mean, dev)``/``normc(mean, dev, min, max)``; ``emergencyDecel``
  defaults to ``max(decel, class value)``.
- ``<route id=… edges=…>`` shared by id, or a ``<route>`` inside the vehicle; ``<vehicle>``, ``<trip>``
  (``from``/``to``/``via`` edges, routed here) and ``<flow>`` (``begin``, ``end`` (default begin + 24 h) and one
  of ``number`` (equally spaced), ``period`` (also ``exp(rate)``: Poisson arrivals), ``vehsPerHour``,
  ``probability`` (one vehicle with that probability each whole second); ids ``<flow>.<k>``). Files may be gzipped.
- ``departLane``: an index, ``first`` (the default: the rightmost lane the class may use), ``best``/``free``/
  ``allowed``/``random`` (→ -1: the core picks); ``departSpeed``: a value in m/s (default 0) or ``max``/
  ``desired``/``speedLimit`` (→ -1: as fast as safe; ``random``/``avg``/``last`` are taken as -1 too);
  ``departPos``: metres of the front bumper from the lane start (negative: from its end), ``base`` (default) → 0.
- Vehicles are sorted by departure time (stable: file order among equal times); ``priority`` is 1 for vehicles of
  class ``emergency``. A per-vehicle ``speed_factor`` is drawn from the type's ``normc(speedFactor, speedDev,
  0.2, 2.0)`` (SUMO's default distribution) with the given seed, unless the vehicle sets ``speedFactor``.

Trips are routed with A* on :meth:`TrafficNetwork.edge_graph` (fastest by free-flow time: edge and junction link
times plus duarouter's 1.5 s ``--weights.minor-penalty`` on links without priority).

OD matrices (:func:`od_matrix`) are tables (pandas DataFrame, CSV or Parquet) with one row per relation:
``origin``, ``destination`` (zone ids), ``count`` (vehicles, ≥ 0; a fractional part becomes one more vehicle
with that probability), ``begin_s``, ``end_s`` (departure window; departures are uniform in ``[begin, end)``,
like od2trips). Zones are junction ids (vehicles leave on an edge out of the junction and arrive on an edge into
it) unless ``zones`` maps each zone id to a list of edge ids (vehicles leave and arrive on one of those edges,
drawn uniformly).

Bad input raises :class:`twin.errors.InputError` naming the file and the element (vehicle, flow, trip or row id)
and what was expected: unknown edges, routes whose consecutive edges are not connected for the vehicle's class,
edges the class may not use, vehicles longer than every lane of their first edge, unknown types, routes or classes,
malformed numbers.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.sim.traffic_net import TrafficNetwork
from twin.typing import FloatArray, Int32Array, IntArray

log = logging.getLogger(__name__)

KMH = 1.0 / 3.6


class ClassDefaults(NamedTuple):
    """SUMO's defaults of one vehicle class (``SUMOVTypeParameter``): metres, m/s, m/s²."""

    length: float
    min_gap: float
    accel: float
    decel: float
    emergency_decel: float
    max_speed: float
    speed_dev: float


_CAR = ClassDefaults(5.0, 2.5, 2.6, 4.5, 9.0, 200 * KMH, 0.1)
VCLASS_DEFAULTS: dict[str, ClassDefaults] = {
    "passenger": _CAR,
    "private": _CAR,
    "vip": _CAR,
    "hov": _CAR,
    "custom1": _CAR,
    "custom2": _CAR,
    "evehicle": _CAR,
    "taxi": _CAR._replace(speed_dev=0.05),
    "pedestrian": ClassDefaults(0.215, 0.25, 1.5, 2.0, 5.0, 37.58 * KMH, 0.1),
    "bicycle": ClassDefaults(1.6, 0.5, 1.2, 3.0, 7.0, 50 * KMH, 0.1),
    "moped": ClassDefaults(2.1, 2.5, 1.1, 7.0, 10.0, 60 * KMH, 0.1),
    "motorcycle": ClassDefaults(2.2, 2.5, 6.0, 10.0, 10.0, 200 * KMH, 0.1),
    "truck": ClassDefaults(7.1, 2.5, 1.3, 4.0, 7.0, 130 * KMH, 0.05),
    "trailer": ClassDefaults(16.5, 2.5, 1.1, 4.0, 7.0, 130 * KMH, 0.05),
    "bus": ClassDefaults(12.0, 2.5, 1.2, 4.0, 7.0, 100 * KMH, 0.0),
    "coach": ClassDefaults(14.0, 2.5, 2.0, 4.0, 7.0, 100 * KMH, 0.05),
    "tram": ClassDefaults(22.0, 2.5, 1.0, 3.0, 7.0, 80 * KMH, 0.0),
    "rail_urban": ClassDefaults(109.5, 5.0, 1.0, 3.0, 7.0, 100 * KMH, 0.0),
    "rail": ClassDefaults(135.0, 5.0, 0.25, 1.3, 5.0, 160 * KMH, 0.0),
    "rail_electric": ClassDefaults(200.0, 5.0, 0.5, 1.3, 5.0, 220 * KMH, 0.0),
    "rail_fast": ClassDefaults(200.0, 5.0, 0.5, 1.3, 5.0, 330 * KMH, 0.0),
    "delivery": ClassDefaults(6.5, 2.5, 2.6, 4.5, 9.0, 200 * KMH, 0.05),
    "emergency": ClassDefaults(6.5, 2.5, 2.6, 4.5, 9.0, 200 * KMH, 0.0),
    "ship": ClassDefaults(17.0, 2.5, 0.1, 0.15, 1.0, 8 / 1.94, 0.1),
}
"""Defaults per SUMO vehicle class; classes not listed (``army``, ``authority``, ``ignoring``…) take the car values
without speed deviation, as SUMO does."""
DEFAULT_TAU_S = 1.0
DEFAULT_DELTA = 4.0
DEFAULT_VTYPE = "DEFAULT_VEHTYPE"
SPEED_FACTOR_BOUNDS = (0.2, 2.0)
FLOW_DEFAULT_SPAN_S = 86400.0
"""A flow without ``end`` runs this long after its ``begin`` (SUMO: 24 hours)."""


# -- vehicle types ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VehicleType:
    """One SUMO vehicle type (metres, seconds, m/s, m/s²)."""

    id: str = DEFAULT_VTYPE
    vclass: str = "passenger"
    length: float = _CAR.length
    min_gap: float = _CAR.min_gap
    accel: float = _CAR.accel
    decel: float = _CAR.decel
    emergency_decel: float = _CAR.emergency_decel
    tau: float = DEFAULT_TAU_S
    max_speed: float = _CAR.max_speed
    speed_factor: float = 1.0
    speed_dev: float = _CAR.speed_dev
    delta: float = DEFAULT_DELTA

    @classmethod
    def of_class(cls, vclass: str = "passenger", id: str | None = None, **overrides: float) -> VehicleType:
        """A type with SUMO's defaults for ``vclass`` and the given attributes (snake_case names) set."""
        d = VCLASS_DEFAULTS.get(vclass, _CAR._replace(speed_dev=0.0))
        decel = float(overrides.get("decel", d.decel))
        values: dict[str, Any] = {
            "id": id or (DEFAULT_VTYPE if vclass == "passenger" else vclass),
            "vclass": vclass,
            "length": d.length,
            "min_gap": d.min_gap,
            "accel": d.accel,
            "decel": decel,
            "emergency_decel": max(decel, d.emergency_decel),
            "max_speed": d.max_speed,
            "speed_dev": d.speed_dev,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class VehicleTypes:
    """A table of vehicle types: ``ids``, ``vclass`` (tuples of str) and (t,) float64 columns named as in
    :class:`VehicleType` (length, min_gap, accel, decel, emergency_decel, tau, max_speed, speed_factor, speed_dev,
    delta)."""

    ids: tuple[str, ...]
    vclass: tuple[str, ...]
    length: FloatArray
    min_gap: FloatArray
    accel: FloatArray
    decel: FloatArray
    emergency_decel: FloatArray
    tau: FloatArray
    max_speed: FloatArray
    speed_factor: FloatArray
    speed_dev: FloatArray
    delta: FloatArray

    @classmethod
    def from_types(cls, types: Sequence[VehicleType]) -> VehicleTypes:
        cols = [f.name for f in fields(VehicleType) if f.name not in ("id", "vclass")]
        return cls(
            ids=tuple(t.id for t in types),
            vclass=tuple(t.vclass for t in types),
            **{c: np.array([getattr(t, c) for t in types], dtype=np.float64) for c in cols},
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> VehicleType:
        return VehicleType(
            **{
                f.name: (self.ids if f.name == "id" else getattr(self, f.name))[i]
                for f in fields(VehicleType)
            }
        )

    def arrays(self) -> dict[str, FloatArray]:
        """Keyword arguments of ``TrafficSim.add_vehicle_types`` ((t,) float64 each)."""
        names = (
            "length",
            "min_gap",
            "accel",
            "decel",
            "emergency_decel",
            "tau",
            "max_speed",
            "speed_factor",
            "delta",
        )
        return {n: getattr(self, n) for n in names}


# -- demand ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Demand:
    """Vehicles to insert, sorted by departure time.

    ``ids`` : tuple of n str; ``depart_s`` (n,) float64 s; ``type`` (n,) int32 row of ``vtypes``; routes as CSR
    ``route_offsets`` (n+1,) int64 into ``route_edges`` (m,) int32 edge rows of the network; ``depart_lane`` (n,)
    int32 lane index on the first edge (-1: the core picks the best/free lane); ``depart_pos`` (n,) float64 m of the
    front bumper from the lane start (0: SUMO's ``base``); ``depart_speed`` (n,) float64 m/s (-1: as fast as
    safe, SUMO ``max``); ``priority`` (n,) int8 (1: emergency vehicle); ``speed_factor`` (n,) float64 (the
    vehicle's own multiplier of the lane speed); ``source``: where it came from.
    """

    ids: tuple[str, ...]
    depart_s: FloatArray
    type: Int32Array
    vtypes: VehicleTypes
    route_offsets: IntArray
    route_edges: Int32Array
    depart_lane: Int32Array
    depart_pos: FloatArray
    depart_speed: FloatArray
    priority: np.ndarray
    speed_factor: FloatArray
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def route(self, i: int) -> Int32Array:
        """(k,) int32 edge rows of vehicle ``i``'s route."""
        return self.route_edges[self.route_offsets[i] : self.route_offsets[i + 1]]

    def route_ids(self, i: int, network: TrafficNetwork) -> list[str]:
        """Edge ids of vehicle ``i``'s route."""
        return [network.edge_ids[e] for e in self.route(i)]

    def arrays(self) -> dict[str, np.ndarray]:
        """Keyword arguments of ``TrafficSim.add_vehicles``."""
        names = (
            "depart_s",
            "type",
            "route_offsets",
            "route_edges",
            "depart_lane",
            "depart_speed",
            "priority",
        )
        return {n: getattr(self, n) for n in names}


# -- routing -----------------------------------------------------------------------------------------------------------
class Router:
    """Fastest routes by free-flow time: A* over :meth:`TrafficNetwork.edge_graph` for one vehicle class.

    ``closed`` : edge rows no route may enter (e.g. closed roads). Routes are (k,) int64 edge rows, empty when the
    target cannot be reached.
    """

    def __init__(
        self,
        network: TrafficNetwork,
        *,
        vclass: str = "passenger",
        max_speed: float = np.inf,
        minor_penalty_s: float = 1.5,
        closed: Iterable[int] = (),
    ):
        self.network = network
        self.vclass = vclass
        self.max_speed = float(max_speed)
        self.minor_penalty_s = float(minor_penalty_s)
        graph = network.edge_graph(vclass=vclass, max_speed=max_speed, minor_penalty_s=minor_penalty_s)
        closed = np.asarray(list(closed), dtype=np.int64)
        if len(closed):
            w = np.array(graph.weight, dtype=np.float64)
            w[np.isin(np.asarray(graph.dst), closed)] = np.inf
            graph = graph.with_weights(w)
        self.graph = graph
        self.allowed = network.edge_allows(vclass)
        self._scale = graph.max_heuristic_scale if graph.n_edges else 0.0
        if not math.isfinite(self._scale):
            self._scale = 0.0

    def route(self, from_edge: int, to_edge: int, *, via: Sequence[int] = ()) -> IntArray:
        """Fastest route from ``from_edge`` to ``to_edge`` through ``via`` edges in order (edge rows)."""
        stops = [int(from_edge), *[int(v) for v in via], int(to_edge)]
        parts: list[np.ndarray] = [np.array([stops[0]], dtype=np.int64)]
        for a, b in zip(stops[:-1], stops[1:], strict=True):
            if a == b and len(parts) > 0:
                continue
            path = self.graph.shortest_path(a, b, astar=True, heuristic_scale=self._scale)
            if len(path.nodes) == 0 or not math.isfinite(path.length):
                return np.zeros(0, dtype=np.int64)
            parts.append(np.asarray(path.nodes, dtype=np.int64)[1:])
        return np.concatenate(parts)

    def time(self, edges: Any) -> float:
        """Free-flow time (s) of a route of edge rows (inf if not drivable)."""
        return self.network.route_time(
            edges, vclass=self.vclass, max_speed=self.max_speed, minor_penalty_s=self.minor_penalty_s
        )


# -- SUMO files --------------------------------------------------------------------------------------------------------
_DIST_RE = re.compile(r"^\s*(normc?|norm)\s*\(([^)]*)\)\s*$")


@dataclass
class _Entry:
    """One vehicle before routing and checks."""

    id: str
    element: str
    order: int
    depart: float
    vtype: str
    edges: list[str] | None = None
    trip: tuple[str, str, list[str]] | None = None
    route_key: Any = None
    depart_lane: str | None = None
    depart_pos: str | None = None
    depart_speed: str | None = None
    speed_factor: float | None = None


@dataclass
class _Parsed:
    types: dict[str, VehicleType] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)
    entries: list[_Entry] = field(default_factory=list)


def _num(value: str | None, path: Any, element: str, attr: str, *, default: float | None = None) -> float:
    if value is None:
        if default is None:
            raise InputError(path, f"attribute {attr} is missing", element=element)
        return default
    try:
        x = float(value)
    except ValueError:
        raise InputError(path, f"{attr}={value!r} is not a number", element=element) from None
    if not math.isfinite(x):
        raise InputError(path, f"{attr}={value!r} must be finite", element=element)
    return x


def _speed_factor(value: str, path: Any, element: str) -> tuple[float, float | None]:
    """``speedFactor`` → (mean, deviation or None if not given)."""
    m = _DIST_RE.match(value)
    if m:
        try:
            args = [float(x) for x in m.group(2).split(",")]
        except ValueError:
            raise InputError(
                path, f"speedFactor={value!r} is not norm(mean, dev) or normc(…)", element=element
            ) from None
        if len(args) < 2:
            raise InputError(path, f"speedFactor={value!r} needs a mean and a deviation", element=element)
        return args[0], args[1]
    return _num(value, path, element, "speedFactor"), None


_VTYPE_ATTRS = {
    "length": "length",
    "minGap": "min_gap",
    "accel": "accel",
    "decel": "decel",
    "emergencyDecel": "emergency_decel",
    "tau": "tau",
    "maxSpeed": "max_speed",
    "speedDev": "speed_dev",
    "delta": "delta",
}


def _vtype(el: ET.Element, path: Any) -> VehicleType:
    tid = el.get("id")
    if not tid:
        raise InputError(path, "<vType> without id", element="vType")
    element = f"vType {tid}"
    vclass = el.get("vClass", "passenger")
    from twin.city.sumo import _vehicle_classes

    if vclass not in _vehicle_classes() and vclass not in VCLASS_DEFAULTS:
        raise InputError(
            path,
            f"vClass {vclass!r} is not a SUMO vehicle class (e.g. passenger, bus, truck)",
            element=element,
        )
    overrides: dict[str, float] = {}
    for attr, name in _VTYPE_ATTRS.items():
        if el.get(attr) is not None:
            overrides[name] = _num(el.get(attr), path, element, attr)
    if el.get("speedFactor") is not None:
        mean, dev = _speed_factor(el.get("speedFactor", ""), path, element)
        overrides["speed_factor"] = mean
        if dev is not None and "speed_dev" not in overrides:
            overrides["speed_dev"] = dev
    for name in ("length", "accel", "decel", "max_speed", "speed_factor"):
        if name in overrides and overrides[name] <= 0:
            raise InputError(path, f"{name} must be > 0, got {overrides[name]}", element=element)
    for name in ("min_gap", "tau", "speed_dev", "emergency_decel"):
        if name in overrides and overrides[name] < 0:
            raise InputError(path, f"{name} must be >= 0, got {overrides[name]}", element=element)
    return VehicleType.of_class(vclass, id=tid, **overrides)


def _depart(value: str | None, path: Any, element: str) -> float:
    if value is None:
        raise InputError(path, "attribute depart is missing (a time in seconds)", element=element)
    try:
        t = float(value)
    except ValueError:
        raise InputError(
            path, f"depart={value!r} is not supported; expected a time in seconds", element=element
        ) from None
    if not math.isfinite(t) or t < 0:
        raise InputError(path, f"depart={value!r} must be a time >= 0 s", element=element)
    return t


def _parse_sumo(path: Path, rng: np.random.Generator) -> _Parsed:
    if not path.is_file():
        raise InputError(path, "does not exist or is not a file")
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            root = ET.parse(fh).getroot()
    except (ET.ParseError, OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"is not valid (gzip) XML ({exc})") from None
    if root.tag != "routes":
        raise InputError(path, f"is not a SUMO route file: expected a <routes> root, found <{root.tag}>")
    out = _Parsed()
    out.types[DEFAULT_VTYPE] = VehicleType()
    order = 0

    def route_of(el: ET.Element, element: str) -> list[str] | None:
        if el.get("route") is not None:
            rid = el.get("route", "")
            if rid not in out.routes:
                raise InputError(path, f"route {rid!r} is not defined (before this element)", element=element)
            return out.routes[rid]
        child = el.find("route")
        if child is not None:
            edges = (child.get("edges") or "").split()
            if not edges:
                raise InputError(path, "its <route> has no edges", element=element)
            return edges
        if el.find("routeDistribution") is not None:
            raise InputError(path, "route distributions are not supported; give one route", element=element)
        return None

    def common(el: ET.Element, entry: _Entry) -> None:
        entry.depart_lane = el.get("departLane")
        entry.depart_pos = el.get("departPos")
        entry.depart_speed = el.get("departSpeed")
        if el.get("speedFactor") is not None:
            entry.speed_factor = _num(el.get("speedFactor"), path, entry.element, "speedFactor")
            if entry.speed_factor <= 0:
                raise InputError(path, "speedFactor must be > 0", element=entry.element)

    for el in root:
        tag = el.tag
        if tag == "vType":
            t = _vtype(el, path)
            out.types[t.id] = t
        elif tag == "route":
            rid = el.get("id")
            edges = (el.get("edges") or "").split()
            if not rid or not edges:
                raise InputError(path, "a top-level <route> needs an id and edges", element=f"route {rid}")
            out.routes[rid] = edges
        elif tag in ("vehicle", "trip"):
            vid = el.get("id")
            element = f"{tag} {vid}"
            if not vid:
                raise InputError(path, f"<{tag}> without id", element=tag)
            entry = _Entry(
                vid, element, order, _depart(el.get("depart"), path, element), el.get("type", DEFAULT_VTYPE)
            )
            order += 1
            edges = route_of(el, element) if tag == "vehicle" else None
            if edges is not None:
                entry.edges = edges
                entry.route_key = ("route", el.get("route")) if el.get("route") else None
            elif el.get("from") and el.get("to"):
                entry.trip = (el.get("from", ""), el.get("to", ""), (el.get("via") or "").split())
                entry.route_key = ("trip", entry.trip[0], entry.trip[1], tuple(entry.trip[2]))
            else:
                raise InputError(
                    path,
                    "has no route: expected a route attribute, a <route> child or from/to edges "
                    "(fromJunction/fromTaz are not supported)",
                    element=element,
                )
            common(el, entry)
            out.entries.append(entry)
        elif tag == "flow":
            fid = el.get("id")
            element = f"flow {fid}"
            if not fid:
                raise InputError(path, "<flow> without id", element="flow")
            begin = _num(el.get("begin"), path, element, "begin", default=0.0)
            end = _num(el.get("end"), path, element, "end", default=begin + FLOW_DEFAULT_SPAN_S)
            if end < begin or begin < 0:
                raise InputError(
                    path, f"needs 0 <= begin <= end, got begin={begin}, end={end}", element=element
                )
            departs = _flow_departures(el, begin, end, path, element, rng)
            edges = route_of(el, element)
            trip = None
            if edges is None:
                if not (el.get("from") and el.get("to")):
                    raise InputError(
                        path,
                        "has no route: expected a route attribute, a <route> child or from/to edges",
                        element=element,
                    )
                trip = (el.get("from", ""), el.get("to", ""), (el.get("via") or "").split())
            for k, t in enumerate(departs):
                entry = _Entry(f"{fid}.{k}", element, order, float(t), el.get("type", DEFAULT_VTYPE))
                order += 1
                entry.edges, entry.trip = edges, trip
                entry.route_key = ("flow", fid)
                common(el, entry)
                out.entries.append(entry)
        elif tag in ("routeDistribution", "vTypeDistribution"):
            raise InputError(path, f"<{tag}> is not supported; give routes and types directly", element=tag)
        else:
            log.debug("%s: <%s> ignored", path.name, tag)
    return out


def _flow_departures(
    el: ET.Element, begin: float, end: float, path: Any, element: str, rng: np.random.Generator
) -> np.ndarray:
    given = [a for a in ("number", "period", "vehsPerHour", "probability") if el.get(a) is not None]
    if el.get("number") is not None and el.get("period") is not None and el.get("end") is None:
        given = ["number+period"]
    if len(given) != 1:
        raise InputError(
            path,
            f"needs exactly one of number, period, vehsPerHour, probability; got {given or 'none'}",
            element=element,
        )
    kind = given[0]
    if kind == "number+period":
        n = int(_num(el.get("number"), path, element, "number"))
        period = _num(el.get("period"), path, element, "period")
        return begin + period * np.arange(n)
    if kind == "number":
        n = _num(el.get("number"), path, element, "number")
        if n < 0 or n != int(n):
            raise InputError(
                path, f"number={el.get('number')!r} must be a whole number >= 0", element=element
            )
        return begin + (end - begin) / max(n, 1) * np.arange(int(n))
    if kind == "probability":
        p = _num(el.get("probability"), path, element, "probability")
        if not 0 <= p <= 1:
            raise InputError(path, f"probability={p} must be in [0, 1]", element=element)
        seconds = np.arange(math.ceil(begin), math.ceil(end), dtype=np.float64)
        return seconds[rng.random(len(seconds)) < p]
    if kind == "period" and (el.get("period") or "").strip().startswith("exp("):
        text = el.get("period", "").strip()
        rate = _num(text[4:-1] if text.endswith(")") else None, path, element, "period exp(rate)")
        if rate <= 0:
            raise InputError(path, f"period={text!r} needs a rate > 0", element=element)
        times, t = [], begin
        while True:
            t += rng.exponential(1.0 / rate)
            if t >= end:
                break
            times.append(t)
        return np.array(times, dtype=np.float64)
    if kind == "period":
        period = _num(el.get("period"), path, element, "period")
    else:
        vph = _num(el.get("vehsPerHour"), path, element, "vehsPerHour")
        if vph <= 0:
            raise InputError(path, f"vehsPerHour={vph} must be > 0", element=element)
        period = 3600.0 / vph
    if period <= 0:
        raise InputError(path, f"period={period} must be > 0 s", element=element)
    n = math.ceil((end - begin) / period - 1e-9)
    return begin + period * np.arange(max(n, 0))


def _assemble(
    entries: list[_Entry],
    types: Mapping[str, VehicleType],
    network: TrafficNetwork,
    source: Any,
    rng: np.random.Generator,
) -> Demand:
    """Check, route and pack entries (already in file order) into a :class:`Demand` sorted by departure."""
    type_ids = list(types)
    type_row = {t: i for i, t in enumerate(type_ids)}
    edge_row = network.edge_row
    routers: dict[tuple[str, float], Router] = {}
    checks: dict[str, _RouteCheck] = {}
    routed: dict[Any, np.ndarray] = {}
    n = len(entries)
    depart = np.empty(n)
    vtype = np.empty(n, dtype=np.int32)
    lanes = np.empty(n, dtype=np.int32)
    pos = np.empty(n)
    speed = np.empty(n)
    prio = np.zeros(n, dtype=np.int8)
    factor = np.empty(n)
    routes: list[np.ndarray] = []
    for i, e in enumerate(entries):
        if e.vtype not in type_row:
            raise InputError(source, f"type {e.vtype!r} is not a defined <vType>", element=_where(e))
        t = types[e.vtype]
        check = checks.get(t.vclass)
        if check is None:
            check = checks[t.vclass] = _RouteCheck(network, t.vclass)
        key = (e.route_key, t.vclass, t.max_speed) if e.route_key is not None else None
        route = routed.get(key) if key is not None else None
        if route is None:
            if e.edges is not None:
                route = _edge_rows(e.edges, edge_row, source, e)
                check.connected(route, source, e)
            else:
                assert e.trip is not None
                frm, to, via = e.trip
                stops = _edge_rows([frm, *via, to], edge_row, source, e)
                check.usable(stops, source, e)
                rk = (t.vclass, t.max_speed)
                if rk not in routers:
                    routers[rk] = Router(network, vclass=t.vclass, max_speed=t.max_speed)
                route = routers[rk].route(stops[0], stops[-1], via=stops[1:-1])
                if len(route) == 0:
                    raise InputError(
                        source,
                        f"no route from edge {frm!r} to {to!r}{' via ' + ' '.join(via) if via else ''} for vClass "
                        f"{t.vclass}",
                        element=_where(e),
                    )
            if key is not None:
                routed[key] = route
        check.fits(route[0], t, source, e)
        routes.append(route)
        depart[i] = e.depart
        vtype[i] = type_row[e.vtype]
        lanes[i] = check.depart_lane(e.depart_lane, route[0], source, e, rng)
        pos[i] = _depart_pos(e.depart_pos, network, route[0], source, e)
        speed[i] = _depart_speed(e.depart_speed, source, e)
        prio[i] = 1 if t.vclass == "emergency" else 0
        factor[i] = e.speed_factor if e.speed_factor is not None else _draw_speed_factor(t, rng)
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise InputError(
                source, f"vehicle id {e.id!r} is used twice; expected unique ids", element=e.element
            )
        seen.add(e.id)
    order = np.argsort(depart, kind="stable")
    counts = np.array([len(routes[k]) for k in order], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    edges = np.concatenate([routes[k] for k in order]).astype(np.int32) if n else np.zeros(0, np.int32)
    used = sorted(set(vtype.tolist())) if n else [type_row[DEFAULT_VTYPE]]
    remap = np.zeros(len(type_ids), dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    return Demand(
        ids=tuple(entries[k].id for k in order),
        depart_s=depart[order],
        type=remap[vtype[order]],
        vtypes=VehicleTypes.from_types([types[type_ids[k]] for k in used]),
        route_offsets=offsets,
        route_edges=edges,
        depart_lane=lanes[order],
        depart_pos=pos[order],
        depart_speed=speed[order],
        priority=prio[order],
        speed_factor=factor[order],
        source=os.fspath(source),
    )


def _where(e: _Entry) -> str:
    """The element an error names: ``vehicle v1``, or ``flow f (f.3)`` for one vehicle of a flow."""
    return e.element if e.element.split(" ", 1)[-1] == e.id else f"{e.element} ({e.id})"


def _edge_rows(ids: Sequence[str], edge_row: Mapping[str, int], source: Any, e: _Entry) -> np.ndarray:
    rows = np.empty(len(ids), dtype=np.int64)
    for k, x in enumerate(ids):
        r = edge_row.get(x)
        if r is None:
            raise InputError(source, f"edge {x!r} is not in the network", element=_where(e))
        rows[k] = r
    return rows


class _RouteCheck:
    """Route checks for one vehicle class: edges usable, consecutive edges connected, vehicle fits, lanes."""

    def __init__(self, network: TrafficNetwork, vclass: str):
        self.network = network
        self.vclass = vclass
        self.lane_ok = network.lane_allows(vclass)
        self.edge_ok = network.edge_allows(vclass)
        use = self.lane_ok[network.link_from_lane] & self.lane_ok[network.link_to_lane]
        self.pairs = set(
            zip(network.link_from_edge[use].tolist(), network.link_to_edge[use].tolist(), strict=True)
        )
        self.any_pairs = set(zip(network.link_from_edge.tolist(), network.link_to_edge.tolist(), strict=True))

    def usable(self, route: np.ndarray, source: Any, e: _Entry) -> None:
        bad = route[~self.edge_ok[route]]
        if len(bad):
            x = int(bad[0])
            lanes = range(self.network.edge_lane_offsets[x], self.network.edge_lane_offsets[x + 1])
            allowed = sorted({c for k in lanes for c in self.network.lane_allow[k].split()})
            raise InputError(
                source,
                f"edge {self.network.edge_ids[x]!r} does not allow vClass {self.vclass} (its lanes allow: "
                f"{' '.join(allowed) or 'nothing'})",
                element=_where(e),
            )

    def connected(self, route: np.ndarray, source: Any, e: _Entry) -> None:
        self.usable(route, source, e)
        for a, b in zip(route[:-1].tolist(), route[1:].tolist(), strict=True):
            if (a, b) not in self.pairs:
                why = (
                    f"the connections from {self.network.edge_ids[a]!r} to {self.network.edge_ids[b]!r} do not "
                    f"allow vClass {self.vclass}"
                    if (a, b) in self.any_pairs
                    else f"no connection leads from edge {self.network.edge_ids[a]!r} to {self.network.edge_ids[b]!r}"
                )
                raise InputError(
                    source, f"route is not connected: {why}; expected consecutive edges joined at a junction",
                    element=_where(e),
                )  # fmt: skip

    def fits(self, first: int, t: VehicleType, source: Any, e: _Entry) -> None:
        lo, hi = self.network.edge_lane_offsets[first], self.network.edge_lane_offsets[first + 1]
        ok = self.lane_ok[lo:hi]
        longest = float(self.network.lane_length[lo:hi][ok].max()) if ok.any() else 0.0
        if t.length > longest:
            raise InputError(
                source,
                f"vehicle of type {t.id!r} is {t.length:g} m long but the lanes of its first edge "
                f"{self.network.edge_ids[first]!r} are at most {longest:g} m long; expected it to fit on one lane",
                element=_where(e),
            )

    def depart_lane(
        self, value: str | None, first: int, source: Any, e: _Entry, rng: np.random.Generator
    ) -> int:
        lo, hi = int(self.network.edge_lane_offsets[first]), int(self.network.edge_lane_offsets[first + 1])
        ok = self.lane_ok[lo:hi]
        v = (value or "first").strip()
        if v == "first":
            return int(np.flatnonzero(ok)[0])
        if v in ("best", "free", "allowed", "random", "best_prob"):
            return -1
        try:
            k = int(v)
        except ValueError:
            raise InputError(
                source,
                f"departLane={value!r} is not a lane index or one of first, best, free, allowed, random",
                element=_where(e),
            ) from None
        if not 0 <= k < hi - lo or not ok[k]:
            raise InputError(
                source,
                f"departLane={k} is not a lane of edge {self.network.edge_ids[first]!r} that allows vClass "
                f"{self.vclass} (lanes 0..{hi - lo - 1})",
                element=_where(e),
            )
        return k


def _depart_pos(value: str | None, network: TrafficNetwork, first: int, source: Any, e: _Entry) -> float:
    v = (value or "base").strip()
    if v in ("base", "random", "free", "random_free", "last", "stop", "splitFront"):
        return 0.0
    try:
        x = float(v)
    except ValueError:
        raise InputError(
            source,
            f"departPos={value!r} is not a position in metres or 'base'",
            element=_where(e),
        ) from None
    length = float(network.edge_length[first])
    if x < 0:
        x += length
    if not 0 <= x <= length:
        raise InputError(
            source,
            f"departPos={value!r} is outside the first edge (0..{length:g} m)",
            element=_where(e),
        )
    return x


def _depart_speed(value: str | None, source: Any, e: _Entry) -> float:
    if value is None:
        return 0.0
    v = value.strip()
    if v in ("max", "desired", "speedLimit", "random", "avg", "last"):
        return -1.0
    try:
        x = float(v)
    except ValueError:
        raise InputError(
            source, f"departSpeed={value!r} is not a speed in m/s or 'max'", element=_where(e)
        ) from None
    if not math.isfinite(x) or x < 0:
        raise InputError(source, f"departSpeed={value!r} must be >= 0 m/s", element=_where(e))
    return x


def _draw_speed_factor(t: VehicleType, rng: np.random.Generator) -> float:
    """SUMO's ``normc(mean, dev, 0.2, 2.0)``: a normal draw redrawn until it falls within the bounds."""
    if t.speed_dev <= 0:
        return float(t.speed_factor)
    lo, hi = SPEED_FACTOR_BOUNDS
    for _ in range(100):
        x = rng.normal(t.speed_factor, t.speed_dev)
        if lo <= x <= hi:
            return float(x)
    return float(min(max(t.speed_factor, lo), hi))


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def read_sumo_routes(
    path: str | os.PathLike[str], network: TrafficNetwork, *, seed: int | np.random.Generator | None = 0
) -> Demand:
    """Vehicles of a SUMO route file (``.rou.xml``): vehicles with routes, flows, and trips (routed here).

    ``seed`` draws per-vehicle speed factors and flow departures given by ``probability`` or ``exp(rate)``.
    """
    p = Path(path)
    rng = _rng(seed)
    parsed = _parse_sumo(p, rng)
    demand = _assemble(parsed.entries, parsed.types, network, p, rng)
    log.info("%s: %d vehicles, %d types", p.name, len(demand), len(demand.vtypes))
    return demand


def read_sumo_trips(
    path: str | os.PathLike[str], network: TrafficNetwork, *, seed: int | np.random.Generator | None = 0
) -> Demand:
    """Trips of a SUMO trip file (``<trip from= to= [via=]>``, flows with from/to), routed with A* by free-flow
    time (:class:`Router`); vehicles with explicit routes in the same file are kept as they are."""
    return read_sumo_routes(path, network, seed=seed)


# -- generated demand ----------------------------------------------------------------------------------------------
def random_trips(
    network: TrafficNetwork,
    count: int,
    depart_s: tuple[float, float] | Sequence[float] | np.ndarray = (0.0, 3600.0),
    rng: int | np.random.Generator | None = 0,
    *,
    min_distance_m: float = 0.0,
    vtype: VehicleType | None = None,
    max_tries: int = 100,
    depart_profile: Sequence[float] | np.ndarray | None = None,
) -> Demand:
    """``count`` random trips (like SUMO's ``randomTrips.py --validate``), routed by free-flow time.

    Origin and destination edges are drawn uniformly from the edges the type's class may use; a pair is redrawn
    when the straight distance from the origin edge's start to the destination edge's end is below
    ``min_distance_m``, when origin equals destination, or when no route joins them. ``depart_s`` is a
    ``(begin, end)`` window (departures equally spaced, ``begin + k (end - begin) / count``) or ``count`` times.
    ``depart_profile`` ((m,) weights >= 0, not all 0; only with a window) makes the departure rate piecewise
    constant: the window is cut into m equal bins (24 weights over ``(0, 86400)``: one per hour of a day) and the
    departures are the quantiles ``k / count`` of that density, so bin j gets ``count w_j / sum(w)`` of them
    (± 1), equally spaced within it. Equal weights give the plain window's times.
    The same ``rng`` seed gives the same trips.
    """
    gen = _rng(rng)
    count = int(count)
    if count < 0:
        raise InputError(None, f"random trips: count must be >= 0, got {count}", element="random_trips.count")
    times = np.asarray(depart_s, dtype=np.float64)
    if times.shape == (2,) and count != 2:
        begin, end = float(times[0]), float(times[1])
        if not (math.isfinite(begin) and math.isfinite(end) and 0 <= begin <= end):
            raise InputError(None, f"random trips: depart_s must be [begin, end] with 0 <= begin <= end, got {times}",
                             element="random_trips.depart_s")  # fmt: skip
        times = (
            begin + (end - begin) / max(count, 1) * np.arange(count)
            if depart_profile is None
            else _profile_times(depart_profile, begin, end, count)
        )
    elif depart_profile is not None:
        raise InputError(
            None,
            "random trips: depart_profile needs depart_s as a [begin, end] window, not departure times",
            element="random_trips.depart_profile",
        )
    elif times.shape != (count,) or not np.isfinite(times).all() or (times < 0).any():
        raise InputError(
            None,
            f"random trips: depart_s must be [begin, end] or {count} times >= 0",
            element="random_trips.depart_s",
        )
    t = vtype or VehicleType()
    router = Router(network, vclass=t.vclass, max_speed=t.max_speed)
    check = _RouteCheck(network, t.vclass)
    lo, hi = network.edge_lane_offsets[:-1], network.edge_lane_offsets[1:]
    longest = np.array(
        [network.lane_length[a:b][check.lane_ok[a:b]].max(initial=0.0) for a, b in zip(lo, hi, strict=True)]
    )
    sources = np.flatnonzero(check.edge_ok & (longest >= t.length))
    sinks = np.flatnonzero(check.edge_ok)
    if count and (len(sources) == 0 or len(sinks) == 0):
        raise InputError(network.source, f"random trips: no edge allows vClass {t.vclass}", element="edges")
    start_xy = network.junction_xy[network.edge_from_junction]
    end_xy = network.junction_xy[network.edge_to_junction]
    routes, ids = [], []
    for k in range(count):
        for _ in range(max_tries):
            a = int(sources[gen.integers(len(sources))])
            b = int(sinks[gen.integers(len(sinks))])
            if a == b or float(np.hypot(*(end_xy[b] - start_xy[a]))) < min_distance_m:
                continue
            r = router.route(a, b)
            if len(r):
                break
        else:
            raise InputError(
                network.source,
                f"random trips: found no routable pair of edges at least {min_distance_m:g} m apart in {max_tries} "
                "tries; expected a connected network",
                element=f"trip {k}",
            )
        routes.append(r)
        ids.append(str(k))
    return _pack(network, ids, times, routes, t, gen, source=f"random_trips(count={count})")


def _profile_times(profile: Sequence[float] | np.ndarray, begin: float, end: float, count: int) -> FloatArray:
    """The quantiles ``k / count`` (k = 0 .. count-1) of the piecewise-constant density with weights ``profile`` on
    equal bins of ``[begin, end)``: (count,) float64 seconds, non-decreasing."""
    w = np.asarray(profile, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(
            None,
            f"random trips: depart_profile must be a list of weights >= 0, not all 0, got {np.asarray(profile)!r}",
            element="random_trips.depart_profile",
        )
    cum = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    cum[-1] = 1.0
    q = np.arange(count, dtype=np.float64) / max(count, 1)
    j = np.searchsorted(cum, q, side="right") - 1  # cum[j] <= q < cum[j + 1]: skips bins of weight 0
    width = (end - begin) / w.size
    return begin + width * (j + (q - cum[j]) / (cum[j + 1] - cum[j]))


def od_matrix(
    table: pd.DataFrame | str | os.PathLike[str],
    network: TrafficNetwork,
    *,
    zones: Mapping[str, Sequence[str]] | None = None,
    rng: int | np.random.Generator | None = 0,
    vtype: VehicleType | None = None,
    max_tries: int = 20,
) -> Demand:
    """Trips from an origin-destination table (format in the module docstring), routed by free-flow time.

    ``zones`` maps zone ids to edge ids; without it zones are junction ids. Vehicles are named
    ``<origin>_<destination>.<k>`` (k counting within the row) and sorted by departure.
    """
    source: Any = table if not isinstance(table, pd.DataFrame) else "OD table"
    df = _read_table(table)
    need = ["origin", "destination", "count", "begin_s", "end_s"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(source, f"OD table lacks columns {missing}; expected {need}")
    gen = _rng(rng)
    t = vtype or VehicleType()
    router = Router(network, vclass=t.vclass, max_speed=t.max_speed)
    check = _RouteCheck(network, t.vclass)
    zone_out, zone_in = _zones(network, zones, check, source)
    ids, times, routes = [], [], []
    for i, row in enumerate(df.itertuples(index=False)):
        element = f"row {i}"
        o, d = str(row.origin), str(row.destination)
        for z in (o, d):
            if z not in zone_out:
                kind = "zone" if zones is not None else "junction"
                raise InputError(source, f"{kind} {z!r} is not known", element=element)
        try:
            count, begin, end = float(row.count), float(row.begin_s), float(row.end_s)
        except (TypeError, ValueError):
            raise InputError(source, "count, begin_s and end_s must be numbers", element=element) from None
        if not (math.isfinite(count) and count >= 0):
            raise InputError(source, f"count must be a number >= 0, got {row.count!r}", element=element)
        if not (math.isfinite(begin) and math.isfinite(end) and 0 <= begin <= end):
            raise InputError(source, f"needs 0 <= begin_s <= end_s, got {begin}, {end}", element=element)
        n = int(math.floor(count)) + int(gen.random() < count - math.floor(count))
        origins, dests = zone_out[o], zone_in[d]
        if n and (len(origins) == 0 or len(dests) == 0):
            raise InputError(
                source, f"zone {o!r} has no edge to leave by or {d!r} none to arrive by", element=element
            )
        for k in range(n):
            for _ in range(max_tries):
                a = int(origins[gen.integers(len(origins))])
                b = int(dests[gen.integers(len(dests))])
                r = router.route(a, b)
                if len(r):
                    break
            else:
                raise InputError(
                    source, f"no route from zone {o!r} to zone {d!r} for vClass {t.vclass}", element=element
                )
            routes.append(r)
            times.append(begin + (end - begin) * gen.random() if end > begin else begin)
            ids.append(f"{o}_{d}.{k}")
    order = np.argsort(np.asarray(times), kind="stable")
    return _pack(
        network,
        [ids[k] for k in order],
        np.asarray(times, dtype=np.float64)[order],
        [routes[k] for k in order],
        t,
        gen,
        source=os.fspath(source),
    )


def _read_table(table: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    p = Path(table)
    if not p.is_file():
        raise InputError(p, "does not exist or is not a file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except Exception as exc:  # pandas/pyarrow raise many kinds
        raise InputError(
            p, f"cannot be read as a CSV or Parquet OD table ({type(exc).__name__}: {exc})"
        ) from None


def _zones(
    network: TrafficNetwork, zones: Mapping[str, Sequence[str]] | None, check: _RouteCheck, source: Any
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    ok = check.edge_ok
    if zones is None:
        out: dict[str, list[int]] = {j: [] for j in network.junction_ids}
        inn: dict[str, list[int]] = {j: [] for j in network.junction_ids}
        for e in np.flatnonzero(ok).tolist():
            out[network.junction_ids[network.edge_from_junction[e]]].append(e)
            inn[network.junction_ids[network.edge_to_junction[e]]].append(e)
        return ({k: np.array(v, dtype=np.int64) for k, v in out.items()},
                {k: np.array(v, dtype=np.int64) for k, v in inn.items()})  # fmt: skip
    rows: dict[str, np.ndarray] = {}
    for z, edges in zones.items():
        r = []
        for x in edges:
            if x not in network.edge_row:
                raise InputError(
                    source, f"zone {z!r} names edge {x!r} which is not in the network", element=f"zone {z}"
                )
            if ok[network.edge_row[x]]:
                r.append(network.edge_row[x])
        rows[str(z)] = np.array(r, dtype=np.int64)
    return rows, rows


def _pack(
    network: TrafficNetwork,
    ids: list[str],
    times: np.ndarray,
    routes: list[np.ndarray],
    t: VehicleType,
    gen: np.random.Generator,
    *,
    source: str,
) -> Demand:
    n = len(ids)
    check = _RouteCheck(network, t.vclass)
    first_lane = np.array(
        [int(np.flatnonzero(check.lane_ok[network.edge_lane_offsets[r[0]] : network.edge_lane_offsets[r[0] + 1]])[0])
         for r in routes], dtype=np.int32,
    )  # fmt: skip
    counts = np.array([len(r) for r in routes], dtype=np.int64)
    return Demand(
        ids=tuple(ids),
        depart_s=np.asarray(times, dtype=np.float64),
        type=np.zeros(n, dtype=np.int32),
        vtypes=VehicleTypes.from_types([t]),
        route_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        route_edges=(np.concatenate(routes) if routes else np.zeros(0)).astype(np.int32),
        depart_lane=first_lane.reshape(n),
        depart_pos=np.zeros(n),
        depart_speed=np.zeros(n),
        priority=np.full(n, 1 if t.vclass == "emergency" else 0, dtype=np.int8),
        speed_factor=np.array([_draw_speed_factor(t, gen) for _ in range(n)], dtype=np.float64),
        source=source,
    )


def load_demand(
    spec: Any, network: TrafficNetwork, *, seed: int = 0, source: str | os.PathLike[str] | None = None
) -> Demand:
    """The demand a scenario's ``traffic.demand`` asks for: exactly one of ``routes`` (a SUMO route file),
    ``trips`` (a SUMO trip file, routed here), ``od`` (an OD table, see :func:`od_matrix`) or ``random_trips``
    (``count``, ``depart_s`` window, ``min_distance_m``). All randomness derives from ``seed``."""
    routes = getattr(spec, "routes", None)
    trips = getattr(spec, "trips", None)
    od = getattr(spec, "od", None)
    rt = getattr(spec, "random_trips", None)
    if routes is not None:
        return read_sumo_routes(routes, network, seed=seed)
    if trips is not None:
        return read_sumo_trips(trips, network, seed=seed)
    if od is not None:
        return od_matrix(od, network, rng=seed)
    if rt is not None:
        return random_trips(
            network, rt.count, tuple(rt.depart_s), rng=seed, min_distance_m=float(rt.min_distance_m or 0.0)
        )
    raise InputError(source or "<scenario>", "traffic.demand: needs one of routes, trips, od or random_trips")
