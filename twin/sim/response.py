"""Emergency response over the road network: stations, units, nearest-unit dispatch by travel time in the
current traffic, response times and coverage.

Definitions (as in fire-service statistics, e.g. NFPA 1710):

* a unit's *response time* is the time from its dispatch to its arrival at the incident (travel time; turnout
  time is a station parameter, 0 by default);
* a unit is *available* at its station until dispatched; once on scene it stays there for the run;
* the *nearest* unit is the available unit of the requested type whose station has the shortest expected travel
  time to the incident by the current edge travel times (measured speeds where traffic was seen, free flow
  elsewhere), with closed roads impassable;
* *coverage* of a station for a threshold ``T`` is the set of road edges reachable from it within ``T`` by those
  travel times; the share is by road length.

Incidents and stations are tied to the road network at the nearest edge a unit may drive on (lane geometry);
a station farther than :data:`STATION_SNAP_M` from every such edge is an error, not a silent guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.spatial import SegmentIndex2D
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

STATION_SNAP_M = 250.0
"""A station or incident must lie within this distance (m) of a drivable edge."""
UNIT_VCLASS = "emergency"
UNIT_TYPES: dict[str, dict[str, float]] = {
    "engine": {"length": 8.0, "max_speed": 90 / 3.6, "accel": 1.5, "decel": 4.0},
    "ladder": {"length": 10.0, "max_speed": 80 / 3.6, "accel": 1.2, "decel": 4.0},
    "ambulance": {"length": 6.5, "max_speed": 110 / 3.6, "accel": 2.4, "decel": 4.5},
    "police": {"length": 4.8, "max_speed": 140 / 3.6, "accel": 3.0, "decel": 5.0},
}
"""Vehicle parameters of unit types (metres, m/s, m/s²); other SUMO emergency-class defaults apply."""


def main_component(network: Any, *, vclass: str = "passenger") -> np.ndarray:
    """(ne,) bool: the edges of the largest strongly connected part of the routing graph (from each of them every
    other can be reached and back), so that a unit placed on one can reach any incident on another."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = network.edge_graph(vclass=vclass)
    n = network.n_edges
    m = coo_matrix((np.ones(len(g.src)), (np.asarray(g.src), np.asarray(g.dst))), shape=(n, n))
    _, label = connected_components(m, directed=True, connection="strong")
    allowed = np.asarray(network.edge_allows(vclass), dtype=bool)
    counts = np.bincount(label[allowed], minlength=label.max() + 1) if allowed.any() else np.zeros(1)
    return allowed & (label == int(np.argmax(counts)))


class EdgeLocator:
    """Nearest edge (by lane geometry) of points in the local frame, among the edges of the network's main
    strongly connected part that ``vclass`` may use (units are routed as cars; they also use bus lanes)."""

    def __init__(self, network: Any, *, vclass: str = "passenger") -> None:
        main = main_component(network, vclass=vclass)
        allowed = np.asarray(network.lane_allows(vclass), dtype=bool) & main[np.asarray(network.lane_edge)]
        offsets = np.asarray(network.lane_shape_offsets, dtype=np.int64)
        xy = np.asarray(network.lane_shape_xy, dtype=np.float64)
        segs, lanes = [], []
        for lane in np.flatnonzero(allowed):
            p = xy[offsets[lane] : offsets[lane + 1]]
            if len(p) >= 2:
                segs.append(np.hstack([p[:-1], p[1:]]))
                lanes.append(np.full(len(p) - 1, lane))
        if not segs:
            raise ValueError(f"the road network has no lane that {vclass!r} vehicles may use")
        self.segment_lane = np.concatenate(lanes).astype(np.int64)
        self.lane_edge = np.asarray(network.lane_edge, dtype=np.int64)
        self.index = SegmentIndex2D(np.vstack(segs))

    def nearest(self, points: FloatArray) -> tuple[IntArray, FloatArray]:
        """(k,) int64 edge rows and (k,) float64 distances (m) of the nearest drivable edge of points (k, 2)."""
        hit = self.index.nearest(np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2))
        edges = np.where(hit.segment >= 0, self.lane_edge[self.segment_lane[np.maximum(hit.segment, 0)]], -1)
        return edges.astype(np.int64), hit.distance


@dataclass
class Unit:
    """One emergency unit (a vehicle when dispatched)."""

    id: str
    type: str
    station: str
    edge: int  # the station's edge row
    state: str = "available"  # available | en_route | on_scene
    vehicle: int = -1  # row in the traffic model once dispatched
    incident: str | None = None
    dispatched_s: float = float("nan")
    arrived_s: float = float("nan")
    expected_s: float = float("nan")  # expected travel time at dispatch
    route_length_m: float = float("nan")

    @property
    def response_time_s(self) -> float:
        return self.arrived_s - self.dispatched_s


@dataclass
class Station:
    id: str
    xy: tuple[float, float]
    edge: int
    snap_m: float
    turnout_s: float = 0.0
    units: list[Unit] = field(default_factory=list)


def pick_unit(units: list[Unit], unit_type: str, travel_time: dict[int, float]) -> tuple[Unit | None, float]:
    """The available unit of ``unit_type`` with the smallest travel time (``travel_time``: station edge → s; ties
    by unit order). Returns (unit, time) or (None, inf)."""
    best, best_t = None, np.inf
    for u in units:
        if u.state != "available" or u.type != unit_type:
            continue
        t = travel_time.get(u.edge, np.inf)
        if t < best_t:
            best, best_t = u, t
    return best, best_t


def coverage(
    graph: Any, sources: IntArray, edge_length: FloatArray, first_edge_time: FloatArray, threshold_s: float
) -> tuple[FloatArray, float]:
    """Travel time (s) from the nearest of ``sources`` (edge rows) to the end of every edge, by the routing
    ``graph`` (node = edge, arc weight = turn + time of the edge entered), and the share of road length reached
    within ``threshold_s``. ``first_edge_time``: (ne,) s to drive each source edge itself."""
    src = np.asarray(sources, dtype=np.int64)
    if src.size == 0:
        return np.full(len(edge_length), np.inf), 0.0
    d = graph.dijkstra(src, limit=float(threshold_s) * 4).distances
    t = np.min(d + first_edge_time[src][:, None], axis=0)
    reached = t <= threshold_s
    total = float(np.sum(edge_length))
    return t, float(np.sum(edge_length[reached]) / total) if total > 0 else 0.0
