"""Compile a road layer (:class:`twin.city.roads.RoadNetwork`) into the flat arrays the traffic core runs on.

Conventions (TRAFFIC_DESIGN.md): metres, seconds, m/s, float64; ids in arrays are row indices; the lanes of an edge
are consecutive rows, index 0 the rightmost; a *link* is one lane-to-lane connection through a junction (one row
of ``roads.connections``).

What comes from where
    Lanes, edges, connections and signal programmes are the layer's tables. A link's length and speed are those
    of SUMO's internal lane(s) when the layer has them (``via_length_m``/``via_speed_mps``); otherwise the length
    is the distance from the end of the from-lane to the start of the to-lane (at least :data:`MIN_LINK_LENGTH_M`)
    and the speed the lower of the two lanes' speeds, for turns also at most ``sqrt(a_lat * r)`` with a nominal
    radius per direction (:data:`TURN_RADIUS_M`, taken from SUMO's internal lanes of a two-lane grid) and
    ``a_lat`` = SUMO's ``junctions.limit-turn-speed`` default (5.5 m/s²).

Right of way (``link_foes``: the links a link must yield to when it is minor or its light is ``g``)
    From SUMO's ``<request response=…>`` bits when the layer has them for every link of the junction. Otherwise
    derived (:func:`derive_foes`): the approaches and exits of a junction are placed on a circle by their bearing
    (incoming lanes counter-clockwise of their road's axis, outgoing lanes clockwise, as in right-hand traffic);
    two links conflict when their chords cross or they end on the same lane; links from one lane never do;
    a U-turn conflicts with every link from another approach. Of two conflicting links the U-turn yields, then
    (at ``priority`` junctions) the one not on the main road (:func:`main_road`: the straightest pair of
    highest-priority approaches), then a left turn yields to the oncoming stream, and otherwise the link whose
    conflicting stream comes from its right has to yield (right-before-left). ``link_major`` is 1 for links that yield to none (SUMO: state ``M`` or ``O``).

Signals
    Per traffic light the programme SUMO runs (the last listed for its id): offset, phases (duration, min, max)
    and state strings (ASCII ``G g y r s u o O``). A programme whose states are shorter than the highest link index
    it controls, whose phases differ in length or hold other characters raises :class:`twin.errors.InputError`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np

from twin.city.roads import RoadNetwork
from twin.errors import InputError
from twin.spatial import Graph
from twin.typing import BoolArray, FloatArray, Int32Array, IntArray

log = logging.getLogger(__name__)

MIN_LINK_LENGTH_M = 0.1
"""Shortest link: links between lanes that touch (OSM lanes run up to the junction node) get this length, metres."""
TURN_LATERAL_ACCEL = 5.5
"""Lateral acceleration limiting turn speeds (SUMO ``junctions.limit-turn-speed`` default), m/s²."""
TURN_RADIUS_M: dict[str, float] = {"r": 7.7, "R": 12.0, "l": 15.6, "L": 20.0, "t": 3.2}
"""Nominal radius of a turn by direction, metres, for links without SUMO internal lanes."""
SIGNAL_STATES = frozenset("GgyrsuoO")
"""SUMO signal state characters a programme may use."""
MINOR_STATES = frozenset("m=sw")
"""SUMO link states duarouter charges ``--weights.minor-penalty`` for."""
LEFT = frozenset("lL")


@dataclass(frozen=True, eq=False)
class TrafficNetwork:
    """The network arrays of the traffic core (names and dtypes as in TRAFFIC_DESIGN.md "Network arrays").

    Lanes (nl): ``lane_edge`` i32 edge row, ``lane_index`` i32 (0 = rightmost), ``lane_length`` f64 m,
    ``lane_speed`` f64 m/s, ``lane_allow_passenger`` u8, lane shapes as CSR ``lane_shape_offsets`` (nl+1,) i64 into
    ``lane_shape_xy`` (p, 2) f64 m; ``lane_allow``: per lane the space-separated SUMO classes allowed.
    Edges (ne): ``edge_lane_offsets`` (ne+1,) i64, ``edge_length`` f64 m, ``edge_speed`` f64 m/s (fastest lane),
    ``edge_from_junction``, ``edge_to_junction`` i32 junction rows, ``edge_priority`` i32.
    Junctions (nj): ``junction_xy`` (nj, 2) f64 m.
    Links (nk): ``link_from_lane``, ``link_to_lane`` i32, ``link_length`` f64 m, ``link_speed`` f64 m/s,
    ``link_dir`` u8 (ASCII ``s l r L R t``), ``link_junction`` i32, ``link_tls`` i32 (-1 none), ``link_tls_index``
    i32 (-1 none), ``link_major`` u8, ``link_state`` u8 (ASCII SUMO link state without a light: ``M m = s w O o``),
    foes as CSR ``link_foe_offsets`` (nk+1,) i64 / ``link_foes`` (f,) i32, and the outgoing links of each lane as
    CSR ``lane_link_offsets`` (nl+1,) i64 / ``lane_links`` (nk,) i32.
    Signals (nt programmes, np phases): ``tls_offset`` (nt,) f64 s, ``tls_phase_offsets`` (nt+1,) i64,
    ``phase_duration``, ``phase_min``, ``phase_max`` (np,) f64 s, ``phase_state_offsets`` (np+1,) i64,
    ``phase_state`` (ns,) u8 ASCII, ``tls_actuated`` (nt,) u8.
    Ids: ``edge_ids``, ``lane_ids``, ``junction_ids``, ``tls_ids`` (tuples of str, by row); ``source``: the file.
    """

    source: str
    edge_ids: tuple[str, ...]
    lane_ids: tuple[str, ...]
    junction_ids: tuple[str, ...]
    tls_ids: tuple[str, ...]
    lane_allow: tuple[str, ...]
    # lanes
    lane_edge: Int32Array
    lane_index: Int32Array
    lane_length: FloatArray
    lane_speed: FloatArray
    lane_allow_passenger: np.ndarray
    lane_shape_offsets: IntArray
    lane_shape_xy: FloatArray
    # edges
    edge_lane_offsets: IntArray
    edge_length: FloatArray
    edge_speed: FloatArray
    edge_from_junction: Int32Array
    edge_to_junction: Int32Array
    edge_priority: Int32Array
    junction_xy: FloatArray
    # links
    link_from_lane: Int32Array
    link_to_lane: Int32Array
    link_length: FloatArray
    link_speed: FloatArray
    link_dir: np.ndarray
    link_junction: Int32Array
    link_tls: Int32Array
    link_tls_index: Int32Array
    link_major: np.ndarray
    link_state: np.ndarray
    link_foe_offsets: IntArray
    link_foes: Int32Array
    lane_link_offsets: IntArray
    lane_links: Int32Array
    # signals
    tls_offset: FloatArray
    tls_phase_offsets: IntArray
    phase_duration: FloatArray
    phase_min: FloatArray
    phase_max: FloatArray
    phase_state_offsets: IntArray
    phase_state: np.ndarray
    tls_actuated: np.ndarray

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    # -- sizes and lookups -----------------------------------------------------------------------------------------
    @property
    def n_lanes(self) -> int:
        return len(self.lane_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    @property
    def n_links(self) -> int:
        return len(self.link_from_lane)

    @property
    def n_tls(self) -> int:
        return len(self.tls_ids)

    @cached_property
    def edge_row(self) -> dict[str, int]:
        """Edge id → row."""
        return {e: i for i, e in enumerate(self.edge_ids)}

    @cached_property
    def lane_row(self) -> dict[str, int]:
        """Lane id → row."""
        return {e: i for i, e in enumerate(self.lane_ids)}

    @cached_property
    def junction_row(self) -> dict[str, int]:
        """Junction id → row."""
        return {j: i for i, j in enumerate(self.junction_ids)}

    @cached_property
    def link_from_edge(self) -> Int32Array:
        """(nk,) int32 edge row each link leaves."""
        return self.lane_edge[self.link_from_lane]

    @cached_property
    def link_to_edge(self) -> Int32Array:
        """(nk,) int32 edge row each link enters."""
        return self.lane_edge[self.link_to_lane]

    def arrays(self) -> dict[str, np.ndarray]:
        """The network arrays by name (TRAFFIC_DESIGN.md), e.g. for ``TrafficSim(**net.arrays(), dt=…)``."""
        skip = {
            "edge_speed",
            "edge_from_junction",
            "edge_to_junction",
            "edge_priority",
            "junction_xy",
            "link_state",
        }
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray) and f.name not in skip
        }

    # -- permissions -------------------------------------------------------------------------------------------------
    def lane_allows(self, vclass: str = "passenger") -> BoolArray:
        """(nl,) bool: lanes the SUMO vehicle class may use."""
        if vclass == "passenger":
            return self.lane_allow_passenger.astype(bool)
        return np.array([vclass in a.split() for a in self.lane_allow], dtype=bool)

    def edge_allows(self, vclass: str = "passenger") -> BoolArray:
        """(ne,) bool: edges with at least one lane the class may use."""
        ok = self.lane_allows(vclass)
        return np.logical_or.reduceat(ok, self.edge_lane_offsets[:-1]) if len(ok) else np.zeros(0, bool)

    # -- routing ------------------------------------------------------------------------------------------------------
    def edge_travel_time(self, *, vclass: str = "passenger", max_speed: float = np.inf) -> FloatArray:
        """(ne,) float64 free-flow time of each edge, s: length / min(fastest lane the class may use, max_speed).

        ``inf`` for edges the class may not use.
        """
        ok = self.lane_allows(vclass)
        speed = np.where(ok, self.lane_speed, 0.0)
        fastest = np.maximum.reduceat(speed, self.edge_lane_offsets[:-1]) if len(speed) else np.zeros(0)
        fastest = np.minimum(fastest, float(max_speed))
        with np.errstate(divide="ignore"):
            return np.where(fastest > 0, self.edge_length / np.where(fastest > 0, fastest, 1.0), np.inf)

    def turn_costs(
        self, *, vclass: str = "passenger", max_speed: float = np.inf, minor_penalty_s: float = 1.5
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """The turns the class may make: ``(from_edge (k,) int64, to_edge (k,) int64, cost (k,) float64 s)``.

        One row per distinct edge pair, the cost of its cheapest link: the link's free-flow time (length /
        min(link speed, max_speed)) plus ``minor_penalty_s`` for links without priority (SUMO states ``m = s w``,
        as duarouter's ``--weights.minor-penalty``, default 1.5 s).
        """
        ok = self.lane_allows(vclass)
        use = ok[self.link_from_lane] & ok[self.link_to_lane]
        k = np.flatnonzero(use)
        speed = np.minimum(self.link_speed[k], float(max_speed))
        cost = self.link_length[k] / np.maximum(speed, 1e-6)
        minor = np.isin(self.link_state[k], np.frombuffer("".join(sorted(MINOR_STATES)).encode(), np.uint8))
        cost = cost + np.where(minor, float(minor_penalty_s), 0.0)
        src = self.link_from_edge[k].astype(np.int64)
        dst = self.link_to_edge[k].astype(np.int64)
        order = np.lexsort((cost, dst, src))
        src, dst, cost = src[order], dst[order], cost[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        return src[first], dst[first], cost[first]

    def edge_graph(
        self, *, vclass: str = "passenger", max_speed: float = np.inf, minor_penalty_s: float = 1.5
    ) -> Graph:
        """The routing graph over edges (node = edge row), one arc per allowed turn.

        Arc weight (s) = the turn's cost (:meth:`turn_costs`) + the free-flow time of the edge entered
        (:meth:`edge_travel_time`), so a path's length plus its first edge's time is the route's free-flow time
        (:meth:`route_time`). Node coordinates are the edges' end junctions (for A*).
        """
        src, dst, cost = self.turn_costs(vclass=vclass, max_speed=max_speed, minor_penalty_s=minor_penalty_s)
        t = self.edge_travel_time(vclass=vclass, max_speed=max_speed)
        weight = cost + t[dst]
        keep = np.isfinite(weight)
        coords = self.junction_xy[self.edge_to_junction]
        return Graph(self.n_edges, src[keep], dst[keep], weight[keep], coords=coords, directed=True)

    def route_time(
        self,
        edges: Any,
        *,
        vclass: str = "passenger",
        max_speed: float = np.inf,
        minor_penalty_s: float = 1.5,
    ) -> float:
        """Free-flow time (s) of a route of edge rows, by the weights of :meth:`edge_graph`; inf if not drivable."""
        edges = np.asarray(edges, dtype=np.int64)
        if len(edges) == 0:
            return math.inf
        t, turn = self._route_tables(vclass, float(max_speed), float(minor_penalty_s))
        total = float(t[edges].sum())
        for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            c = turn.get((a, b))
            if c is None:
                return math.inf
            total += c
        return total

    def _route_tables(
        self, vclass: str, max_speed: float, minor_penalty_s: float
    ) -> tuple[FloatArray, dict[tuple[int, int], float]]:
        cache = self.__dict__.setdefault("_route_cache", {})
        key = (vclass, max_speed, minor_penalty_s)
        if key not in cache:
            t = self.edge_travel_time(vclass=vclass, max_speed=max_speed)
            src, dst, cost = self.turn_costs(
                vclass=vclass, max_speed=max_speed, minor_penalty_s=minor_penalty_s
            )
            cache[key] = (
                t,
                dict(zip(zip(src.tolist(), dst.tolist(), strict=True), cost.tolist(), strict=True)),
            )
        return cache[key]

    def __repr__(self) -> str:
        return (
            f"TrafficNetwork({self.source!r}, {self.n_edges} edges, {self.n_lanes} lanes, {self.n_links} links, "
            f"{len(self.link_foes)} foe pairs, {self.n_tls} signal programmes)"
        )


# -- compilation --------------------------------------------------------------------------------------------------------
def compile_network(
    roads: RoadNetwork, *, source: str | None = None, turn_lateral_accel: float = TURN_LATERAL_ACCEL
) -> TrafficNetwork:
    """Compile ``roads`` into a :class:`TrafficNetwork` (rules in the module docstring).

    ``source`` names the input in errors (default ``roads.source``). Raises :class:`InputError` when lanes are not
    stored edge by edge, a connection names a lane its edge lacks, or a signal programme does not fit its links.
    """
    src = source or roads.source or roads.id
    J, E, L, C = roads.junctions, roads.edges, roads.lanes, roads.connections
    ne, nl = len(E), len(L)

    # lanes and edges
    num_lanes = E["num_lanes"].to_numpy(dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_lanes)]).astype(np.int64)
    lane_edge = L["edge_index"].to_numpy(dtype=np.int64)
    lane_index = L["index"].to_numpy(dtype=np.int64)
    expect_edge = np.repeat(np.arange(ne), num_lanes)
    if offsets[-1] != nl or not np.array_equal(lane_edge, expect_edge):
        raise InputError(
            src, "lanes must be stored edge by edge in edge order, num_lanes of each edge", element="lanes"
        )
    if not np.array_equal(lane_index, np.arange(nl) - offsets[lane_edge]):
        bad = int(np.flatnonzero(lane_index != np.arange(nl) - offsets[lane_edge])[0])
        raise InputError(
            src, "lane indices must run 0..num_lanes-1 within each edge", element=f"lane {L['id'][bad]}"
        )
    shapes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in L["shape"]]
    shape_offsets = np.concatenate([[0], np.cumsum([len(s) for s in shapes])]).astype(np.int64)
    shape_xy = np.concatenate(shapes) if shapes else np.zeros((0, 2))
    lane_speed = L["speed_mps"].to_numpy(dtype=np.float64)
    lane_length = L["length_m"].to_numpy(dtype=np.float64)
    lane_allow = tuple(str(a) for a in L["allow"])
    if not (np.isfinite(lane_speed).all() and (lane_speed > 0).all()):
        bad = int(np.flatnonzero(~(np.isfinite(lane_speed) & (lane_speed > 0)))[0])
        raise InputError(
            src, f"lane speed must be > 0 m/s, got {lane_speed[bad]}", element=f"lane {L['id'][bad]}"
        )
    edge_speed = (
        np.maximum.reduceat(lane_speed, offsets[:-1]) if nl else np.zeros(ne)
    )  # every edge has >= 1 lane (RoadNetwork)
    jrow = roads.junction_index()
    jxy = J[["x_m", "y_m"]].to_numpy(dtype=np.float64).reshape(-1, 2)

    # links
    nk = len(C)
    fe = C["from_edge_index"].to_numpy(dtype=np.int64)
    te = C["to_edge_index"].to_numpy(dtype=np.int64)
    fl = C["from_lane"].to_numpy(dtype=np.int64)
    tl = C["to_lane"].to_numpy(dtype=np.int64)
    for lane_col, edge_col, lanes_, edges_ in (
        ("from_lane", "from_edge", fl, fe),
        ("to_lane", "to_edge", tl, te),
    ):
        bad = np.flatnonzero((lanes_ < 0) | (lanes_ >= num_lanes[edges_])) if nk else []
        if len(bad):
            b = int(bad[0])
            raise InputError(
                src,
                f"connection {C['from_edge'][b]}_{C['from_lane'][b]} -> {C['to_edge'][b]}_{C['to_lane'][b]} names "
                f"{lane_col} {lanes_[b]} but edge {C[edge_col][b]} has {num_lanes[edges_[b]]} lanes",
                element=f"connection {b}",
            )
    from_lane = offsets[fe] + fl
    to_lane = offsets[te] + tl
    directions = [str(d)[:1] if d else "s" for d in C["direction"]]
    link_dir = (
        np.frombuffer("".join(directions).encode("ascii"), dtype=np.uint8).copy()
        if nk
        else np.zeros(0, np.uint8)
    )
    link_junction = np.array([jrow[j] for j in C["junction"]], dtype=np.int64)

    ends = shape_xy[shape_offsets[1:] - 1]
    starts = shape_xy[shape_offsets[:-1]]
    gap = np.hypot(*(starts[to_lane] - ends[from_lane]).T) if nk else np.zeros(0)
    via_len = C["via_length_m"].to_numpy(dtype=np.float64)
    via_speed = C["via_speed_mps"].to_numpy(dtype=np.float64)
    has_via = np.isfinite(via_len) & (via_len > 0)
    link_length = np.where(has_via, via_len, np.maximum(gap, MIN_LINK_LENGTH_M))
    base_speed = np.minimum(lane_speed[from_lane], lane_speed[to_lane])
    radius = np.array([TURN_RADIUS_M.get(d, np.inf) for d in directions], dtype=np.float64)
    turn_speed = np.sqrt(turn_lateral_accel * radius)
    derived_speed = np.minimum(base_speed, turn_speed)
    good_via_speed = np.isfinite(via_speed) & (via_speed > 0)
    link_speed = np.where(good_via_speed, via_speed, derived_speed)

    # signals
    tls_ids, tls_arrays, tls_row = _signals(roads, src)
    link_tls = np.full(nk, -1, dtype=np.int64)
    link_tls_index = np.full(nk, -1, dtype=np.int64)
    unknown: set[str] = set()
    for k, (t, idx) in enumerate(zip(C["tls"], C["link_index"], strict=True)):
        if t is None:
            continue
        if t in tls_row:
            if idx < 0:
                raise InputError(
                    src,
                    f"connection {C['from_edge'][k]} -> {C['to_edge'][k]} is controlled by light {t} but has no "
                    f"link index; expected an index >= 0 into its phase states",
                    element=f"connection {k}",
                )
            link_tls[k] = tls_row[t]
            link_tls_index[k] = int(idx)
        else:
            unknown.add(t)
    if unknown:
        log.info(
            "%s: %d traffic lights without a programme (e.g. rail signals) leave their links unsignalled: %s",
            src, len(unknown), sorted(unknown)[:5],
        )  # fmt: skip
    _check_programmes(src, tls_ids, tls_arrays, link_tls, link_tls_index, C)

    # right of way
    foes, state = _right_of_way(
        roads, from_lane, to_lane, link_junction, link_tls, offsets, shapes, num_lanes
    )
    foe_offsets = np.concatenate([[0], np.cumsum([len(f) for f in foes])]).astype(np.int64)
    link_foes = np.array([x for f in foes for x in f], dtype=np.int32)
    link_major = np.array(
        [len(f) == 0 if s is None else s in "MO" for f, s in zip(foes, state, strict=True)], np.uint8
    )
    link_state = np.array(
        [ord(s) if s else ord("M" if len(f) == 0 else "m") for f, s in zip(foes, state, strict=True)],
        dtype=np.uint8,
    )

    # outgoing links per lane
    order = np.argsort(from_lane, kind="stable")
    lane_link_offsets = np.concatenate([[0], np.cumsum(np.bincount(from_lane, minlength=nl))]).astype(
        np.int64
    )

    i32 = np.int32
    return TrafficNetwork(
        source=str(src),
        edge_ids=tuple(str(e) for e in E["id"]),
        lane_ids=tuple(str(x) for x in L["id"]),
        junction_ids=tuple(str(j) for j in J["id"]),
        tls_ids=tuple(tls_ids),
        lane_allow=lane_allow,
        lane_edge=lane_edge.astype(i32),
        lane_index=lane_index.astype(i32),
        lane_length=lane_length,
        lane_speed=lane_speed,
        lane_allow_passenger=np.array(["passenger" in a.split() for a in lane_allow], dtype=np.uint8),
        lane_shape_offsets=shape_offsets,
        lane_shape_xy=np.ascontiguousarray(shape_xy, dtype=np.float64),
        edge_lane_offsets=offsets,
        edge_length=E["length_m"].to_numpy(dtype=np.float64).copy(),
        edge_speed=edge_speed,
        edge_from_junction=E["from_index"].to_numpy(dtype=np.int64).astype(i32),
        edge_to_junction=E["to_index"].to_numpy(dtype=np.int64).astype(i32),
        edge_priority=E["priority"].to_numpy(dtype=np.int64).astype(i32),
        junction_xy=np.ascontiguousarray(jxy),
        link_from_lane=from_lane.astype(i32),
        link_to_lane=to_lane.astype(i32),
        link_length=link_length,
        link_speed=link_speed,
        link_dir=link_dir,
        link_junction=link_junction.astype(i32),
        link_tls=link_tls.astype(i32),
        link_tls_index=link_tls_index.astype(i32),
        link_major=link_major,
        link_state=link_state,
        link_foe_offsets=foe_offsets,
        link_foes=link_foes,
        lane_link_offsets=lane_link_offsets,
        lane_links=order.astype(i32),
        **tls_arrays,
    )


def _signals(roads: RoadNetwork, src: str) -> tuple[list[str], dict[str, np.ndarray], dict[str, int]]:
    """The programme SUMO runs per light (the last listed for an id) as CSR arrays."""
    tl = roads.traffic_lights
    runs = tl[tl["programme"].notna()].drop_duplicates("id", keep="last")
    ids: list[str] = []
    offset, actuated, phase_counts = [], [], []
    duration, pmin, pmax, states = [], [], [], []
    for row in runs.itertuples():
        ids.append(str(row.id))
        offset.append(float(row.offset_s))
        actuated.append(1 if str(row.type or "").lower() in ("actuated", "delay_based", "nema") else 0)
        phases = list(row.phases)
        if not phases:
            raise InputError(
                src, "signal programme has no phases", element=f"tlLogic {row.id} {row.programme}"
            )
        phase_counts.append(len(phases))
        for k, p in enumerate(phases):
            d, mn, mx = float(p[0]), float(p[2]), float(p[3])
            if not (math.isfinite(d) and d >= 0 and math.isfinite(mn) and mn >= 0 and mx >= mn):
                raise InputError(
                    src,
                    f"phase {k} must have duration >= 0 and 0 <= minDur <= maxDur, got {d}, {mn}, {mx}",
                    element=f"tlLogic {row.id} {row.programme}",
                )
            duration.append(d)
            pmin.append(mn)
            pmax.append(mx)
            states.append(str(p[1]))
        if sum(float(p[0]) for p in phases) <= 0:
            raise InputError(src, "signal cycle has zero length", element=f"tlLogic {row.id} {row.programme}")
    state_lengths = [len(s) for s in states]
    arrays = {
        "tls_offset": np.array(offset, dtype=np.float64),
        "tls_phase_offsets": np.concatenate([[0], np.cumsum(phase_counts)]).astype(np.int64),
        "phase_duration": np.array(duration, dtype=np.float64),
        "phase_min": np.array(pmin, dtype=np.float64),
        "phase_max": np.array(pmax, dtype=np.float64),
        "phase_state_offsets": np.concatenate([[0], np.cumsum(state_lengths)]).astype(np.int64),
        "phase_state": np.frombuffer("".join(states).encode("ascii", "replace"), dtype=np.uint8).copy(),
        "tls_actuated": np.array(actuated, dtype=np.uint8),
    }
    return ids, arrays, {t: i for i, t in enumerate(ids)}


def _check_programmes(
    src: str,
    tls_ids: list[str],
    arrays: dict[str, np.ndarray],
    link_tls: IntArray,
    link_tls_index: IntArray,
    connections: Any,
) -> None:
    """Every phase of a light has one state character (of ``G g y r s u o O``) per link index it controls."""
    po, so, st = arrays["tls_phase_offsets"], arrays["phase_state_offsets"], arrays["phase_state"]
    max_index = np.full(len(tls_ids), -1, dtype=np.int64)
    signalled = link_tls >= 0
    np.maximum.at(max_index, link_tls[signalled], link_tls_index[signalled])
    allowed = np.frombuffer("".join(sorted(SIGNAL_STATES)).encode(), dtype=np.uint8)
    for t, tid in enumerate(tls_ids):
        lengths = np.diff(so[po[t] : po[t + 1] + 1])
        n_links = int(np.count_nonzero(link_tls == t))
        where = f"tlLogic {tid}"
        if len(set(lengths.tolist())) > 1:
            raise InputError(
                src,
                f"phase states have different lengths {sorted(set(lengths.tolist()))}; expected one",
                element=where,
            )
        if len(lengths) and lengths[0] <= max_index[t]:
            raise InputError(
                src,
                f"phase states have {int(lengths[0])} characters but the light controls {n_links} links with link "
                f"indices up to {int(max_index[t])}; expected at least {int(max_index[t]) + 1} characters",
                element=where,
            )
        chars = st[so[po[t]] : so[po[t + 1]]]
        bad = chars[~np.isin(chars, allowed)]
        if len(bad):
            raise InputError(
                src,
                f"phase state character {chr(bad[0])!r} is not a SUMO signal state (G g y r s u o O)",
                element=where,
            )
        if len(lengths) and lengths[0] > max_index[t] + 1:
            log.debug(
                "%s: %s has %d state characters for link indices up to %d", src, tid, lengths[0], max_index[t]
            )


# -- right of way ---------------------------------------------------------------------------------------------------
def _right_of_way(
    roads: RoadNetwork,
    from_lane: IntArray,
    to_lane: IntArray,
    link_junction: IntArray,
    link_tls: IntArray,
    offsets: IntArray,
    shapes: list[FloatArray],
    num_lanes: IntArray,
) -> tuple[list[list[int]], list[str | None]]:
    """Per link the links it yields to, and its SUMO state (None where the source gives none)."""
    J, E, C = roads.junctions, roads.edges, roads.connections
    nk = len(C)
    foes: list[list[int]] = [[] for _ in range(nk)]
    states: list[str | None] = [s if s else None for s in C["state"]]
    request = C["request_index"].to_numpy(dtype=np.int64)
    by_junction: dict[int, list[int]] = defaultdict(list)
    for k, j in enumerate(link_junction.tolist()):
        by_junction[j].append(k)
    responses = J["response"].tolist()
    jtype = J["type"].tolist()
    fe = C["from_edge_index"].to_numpy(dtype=np.int64)
    te = C["to_edge_index"].to_numpy(dtype=np.int64)
    priority = E["priority"].to_numpy(dtype=np.int64)
    dirs = [str(d)[:1] if d else "s" for d in C["direction"]]
    derived = 0
    for j, links in by_junction.items():
        resp = responses[j]
        req = request[links]
        if len(resp) and (req >= 0).all() and len(set(req.tolist())) == len(links):
            at = {int(r): k for r, k in zip(req.tolist(), links, strict=True)}
            n = len(resp)
            for k in links:
                bits = resp[request[k]]
                foes[k] = sorted(at[b] for b in range(n) if bits[n - 1 - b] == "1" and b in at)
            continue
        derived += 1
        ins = sorted({int(fe[k]) for k in links})
        outs = sorted({int(te[k]) for k in links})
        theta_in = {e: _bearing(shapes[offsets[e] : offsets[e + 1]], E["shape"][e], at_end=True) for e in ins}
        theta_out = {
            e: _bearing(shapes[offsets[e] : offsets[e + 1]], E["shape"][e], at_end=False) for e in outs
        }
        fl = (from_lane[links] - offsets[fe[links]]).tolist()
        tl = (to_lane[links] - offsets[te[links]]).tolist()
        signalled = bool((link_tls[links] >= 0).any()) or jtype[j] == "traffic_light"
        rbl = jtype[j] in ("right_before_left", "left_before_right")
        main = main_road(ins, [int(priority[e]) for e in ins], [theta_in[e] for e in ins])
        result = derive_foes(
            theta_in=[theta_in[int(fe[k])] for k in links],
            theta_out=[theta_out[int(te[k])] for k in links],
            from_edge=[int(fe[k]) for k in links],
            from_lane=fl,
            to_edge=[int(te[k]) for k in links],
            to_lane=tl,
            n_in=[int(num_lanes[fe[k]]) for k in links],
            n_out=[int(num_lanes[te[k]]) for k in links],
            direction=[dirs[k] for k in links],
            priority=[main[int(fe[k])] for k in links],
            use_priority=not (signalled or rbl),
        )
        for a, yields_to in enumerate(result):
            foes[links[a]] = sorted(links[b] for b in yields_to)
        for a, k in enumerate(links):
            if states[k] is None:
                if signalled:
                    states[k] = "O" if not result[a] else "o"
                elif rbl:
                    states[k] = "=" if result[a] else "M"
                else:
                    states[k] = "M" if not result[a] else "m"
    if derived:
        log.debug("%s: right of way derived from geometry at %d junctions", roads.id, derived)
    return foes, states


def main_road(edges: list[int], priority: list[int], theta: list[float]) -> dict[int, int]:
    """Which incoming edges of a priority junction form its main road: edge → 1 (main) or 0.

    The main road is the pair of highest-priority incoming edges that is closest to straight (bearings closest
    to 180° apart); with a single highest-priority edge, it and the incoming edge most nearly opposite to it (within
    45°), whatever that edge's priority.
    """
    if not edges:
        return {}
    top = max(priority)
    cands = [k for k in range(len(edges)) if priority[k] == top]

    def opposition(a: int, b: int) -> float:
        return abs(abs(math.degrees((theta[a] - theta[b]) % (2 * math.pi))) - 180.0)

    if len(cands) >= 2:
        pair = min(((a, b) for a in cands for b in cands if a < b), key=lambda ab: (opposition(*ab), ab))
        chosen = set(pair)
    else:
        chosen = {cands[0]}
        others = [k for k in range(len(edges)) if k != cands[0] and opposition(cands[0], k) <= 45.0]
        if others:
            chosen.add(min(others, key=lambda k: (opposition(cands[0], k), -priority[k], k)))
    return {e: int(k in chosen) for k, e in enumerate(edges)}


def _bearing(lane_shapes: list[FloatArray], edge_shape: Any, *, at_end: bool, probe_m: float = 10.0) -> float:
    """Direction (radians) from the junction end of an edge towards its far end, measured ``probe_m`` along it."""
    shape = np.asarray(edge_shape, dtype=np.float64).reshape(-1, 2)
    if len(shape) < 2 or polyline_len(shape) <= 0:
        shape = lane_shapes[0]
    if at_end:
        shape = shape[::-1]
    seg = np.hypot(*np.diff(shape, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    d = min(probe_m, cum[-1] / 2.0) if cum[-1] > 0 else 0.0
    i = int(np.searchsorted(cum, d, side="right")) - 1
    i = min(max(i, 0), len(seg) - 1)
    frac = (d - cum[i]) / seg[i] if seg[i] > 0 else 0.0
    p = shape[i] + frac * (shape[i + 1] - shape[i])
    v = p - shape[0]
    if not np.any(v):
        v = shape[-1] - shape[0]
    return math.atan2(v[1], v[0]) % (2 * math.pi)


def polyline_len(xy: FloatArray) -> float:
    return float(np.hypot(*np.diff(xy, axis=0).T).sum()) if len(xy) > 1 else 0.0


LANE_SPREAD_RAD = 1e-3
"""Angular spacing of lanes around a road's axis on the junction circle (:func:`derive_foes`)."""


def derive_foes(
    *,
    theta_in: list[float],
    theta_out: list[float],
    from_edge: list[int],
    from_lane: list[int],
    to_edge: list[int],
    to_lane: list[int],
    n_in: list[int],
    n_out: list[int],
    direction: list[str],
    priority: list[int],
    use_priority: bool,
) -> list[list[int]]:
    """The links each link of one junction yields to (indices into the given lists), from geometry.

    Link ``a`` leaves lane ``from_lane[a]`` of ``n_in[a]`` of an edge arriving from bearing ``theta_in[a]``
    (radians, direction from the junction towards where the edge comes from) and enters lane ``to_lane[a]`` of
    ``n_out[a]`` of an edge leaving towards ``theta_out[a]``. Rules in the module docstring; ``use_priority``:
    edge priorities decide first (unsignalised ``priority`` junctions).
    """
    n = len(theta_in)
    two_pi = 2 * math.pi
    p_in = [(theta_in[a] + LANE_SPREAD_RAD * (n_in[a] - from_lane[a])) % two_pi for a in range(n)]
    p_out = [(theta_out[a] - LANE_SPREAD_RAD * (n_out[a] - to_lane[a])) % two_pi for a in range(n)]

    def inside(
        x: float, lo: float, hi: float
    ) -> bool:  # x strictly within the counter-clockwise arc lo -> hi
        return 0.0 < (x - lo) % two_pi < (hi - lo) % two_pi

    def conflict(a: int, b: int) -> bool:
        if from_edge[a] == from_edge[b] and from_lane[a] == from_lane[b]:
            return False
        if to_edge[a] == to_edge[b] and to_lane[a] == to_lane[b]:
            return True
        if direction[a] == "t" or direction[b] == "t":
            return from_edge[a] != from_edge[b]
        return inside(p_in[b], p_in[a], p_out[a]) != inside(p_out[b], p_in[a], p_out[a])

    def yields(a: int, b: int) -> bool:
        ua, ub = direction[a] == "t", direction[b] == "t"
        if ua != ub:
            return ua
        if use_priority and priority[a] != priority[b]:
            return priority[a] < priority[b]
        rel = math.degrees((theta_in[b] - theta_in[a]) % two_pi)
        la, lb = direction[a] in LEFT, direction[b] in LEFT
        if 135.0 <= rel <= 225.0 and la != lb:
            return la
        if 0.0 < rel < 180.0:  # b comes from a's right
            return True
        if rel == 0.0 or rel == 180.0:  # same or exactly opposite bearing: the later link yields
            return a > b
        return False

    out: list[list[int]] = [[] for _ in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            if not conflict(a, b):
                continue
            if yields(a, b):
                out[a].append(b)
            else:
                out[b].append(a)
    return out


# netconvert's defaults for actuated programmes it builds (--tls.min-dur, --tls.max-dur)
ACTUATED_MIN_DUR_S = 5.0
ACTUATED_MAX_DUR_S = 50.0


def with_signal_control(network: TrafficNetwork, mode: str) -> TrafficNetwork:
    """The network with its signals run as the scenario's ``traffic.signals`` asks.

    ``from_network``: as the source defines them (SUMO's programme types). ``fixed``: every programme fixed-time
    with its phase durations. ``actuated``: every programme gap-actuated; green phases (a ``G`` or ``g`` in the
    state) without their own minDur/maxDur range get netconvert's defaults for actuated lights (5 s, 50 s),
    yellow and red phases keep their durations.
    """
    if mode == "from_network":
        return network
    if mode not in ("fixed", "actuated"):
        raise ValueError(f"signal control must be 'from_network', 'fixed' or 'actuated', got {mode!r}")
    nt = len(network.tls_offset)
    if mode == "fixed":
        return replace(network, tls_actuated=_frozen(np.zeros(nt, dtype=np.uint8)))
    pmin = np.array(network.phase_min, dtype=np.float64)
    pmax = np.array(network.phase_max, dtype=np.float64)
    so, st = network.phase_state_offsets, network.phase_state
    green = np.array(
        [bool(np.isin(st[so[k] : so[k + 1]], (ord("G"), ord("g"))).any()) for k in range(len(pmin))],
        dtype=bool,
    )
    fixed_range = green & (pmax <= pmin)
    pmin[fixed_range] = np.minimum(ACTUATED_MIN_DUR_S, network.phase_duration[fixed_range])
    pmax[fixed_range] = np.maximum(ACTUATED_MAX_DUR_S, network.phase_duration[fixed_range])
    return replace(
        network,
        tls_actuated=_frozen(np.ones(nt, dtype=np.uint8)),
        phase_min=_frozen(pmin),
        phase_max=_frozen(pmax),
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
