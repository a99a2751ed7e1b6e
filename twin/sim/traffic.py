"""``TrafficModel``: a Mesa model whose step is one call into the C++ traffic core.

The model owns the compiled network (:class:`twin.sim.traffic_net.TrafficNetwork`), the demand
(:class:`twin.sim.demand.Demand`) loaded into the core, road closures and rerouting, and the recorders: floating
car data (every running vehicle every ``record_every_s``), per-edge speeds and flows per ``edge_interval_s``, KPIs
over time and, at the end, one trip row per vehicle (SUMO's tripinfo). Vehicles are arrays in C++; no per-vehicle
Python object exists.

Jam teleports (the core's ``time_to_teleport``, SUMO's 300 s) are counted in the summary (``teleports``) and logged
as ``teleport`` events (vehicle, the lane or junction path it stood on, the edge it went on from).

Rerouting: when an edge closes (:meth:`close_edges`), every vehicle whose remaining route uses it gets the fastest
route around it from its current edge (by current travel times); a vehicle with no way round keeps its route and
stops before the closure. A vehicle whose destination edge closes (SUMO-like) is sent instead to the reachable open
edge nearest to it (:meth:`nearest_reachable`) and arrives at that edge's end: counted in ``destination_closed``
and logged as a ``destination_closed`` event (an emergency unit stops there and counts as arrived: its crew walks
the rest). A vehicle already on its destination edge when it closes, or in the junction before it, drives on.

With ``reroute_every_s`` > 0, vehicles also reroute around congestion: every period the travel time of each edge is
estimated from the speeds measured on it (mean over the last period, free-flow time where nobody drove), and each
running vehicle, and each one departing before the next period, takes the fastest remaining route when it saves
more than ``reroute_threshold`` of the current one (SUMO's device.rerouting, with the same kind of smoothed edge
weights). Routes whose remaining part is within the threshold of its free-flow time are not searched again (no route
can save more than that when the route was the fastest at free flow).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from twin.scenario.results import EventLog
from twin.sim.demand import Demand, Router
from twin.sim.mesa_model import SimModel
from twin.sim.traffic_core import ARRIVED, RUNNING, TrafficSim
from twin.sim.traffic_net import TrafficNetwork

log = logging.getLogger(__name__)

DEFAULT_DT_S = 1.0


class FcdRecorder:
    """Floating car data: one row per running vehicle per recorded frame (``traffic_fcd.parquet``).

    Columns: ``t_s`` float64, ``vehicle_id`` (str), ``x_m``, ``y_m`` float64 (front bumper, local frame), ``edge``
    (str edge id; inside a junction ``:<junction id>``, as SUMO names internal edges), ``lane`` (str SUMO lane id
    ``<edge>_<index>``; inside a junction ``:<junction id>_<link row>``), ``speed_mps`` float64. String columns are
    dictionary-encoded. Frames are kept as numpy chunks; the table is assembled once at the end.
    """

    def __init__(self, vehicle_ids: Iterable[str], network: TrafficNetwork) -> None:
        net = network
        self.n_edges = net.n_edges
        self.n_lanes = len(net.lane_ids)
        self.link_junction = np.asarray(net.link_junction, dtype=np.int64)
        junctions = list(net.junction_ids)
        self.vehicle_ids = pa.array(list(vehicle_ids), pa.string())
        self.edge_ids = pa.array(list(net.edge_ids) + [f":{j}" for j in junctions], pa.string())
        self.lane_ids = pa.array(
            list(net.lane_ids) + [f":{junctions[j]}_{k}" for k, j in enumerate(self.link_junction.tolist())],
            pa.string(),
        )
        self.lane_edge = np.asarray(net.lane_edge, dtype=np.int64)
        self._chunks: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add_vehicle_ids(self, ids: Iterable[str]) -> None:
        """Vehicles inserted during the run (their rows follow the existing ones)."""
        self.vehicle_ids = pa.concat_arrays([self.vehicle_ids, pa.array(list(ids), pa.string())])

    def record(self, t_s: float, sim: TrafficSim) -> None:
        running = np.flatnonzero(sim.state == RUNNING)
        if running.size == 0:
            return
        xy = sim.positions()[running]
        lane = sim.lane[running].astype(np.int64)
        link = sim.link[running].astype(np.int64)
        inside = lane < 0
        edge = np.where(
            inside,
            self.n_edges + self.link_junction[np.where(inside, link, 0)],
            self.lane_edge[np.where(inside, 0, lane)],
        )
        lane_code = np.where(inside, self.n_lanes + link, lane)
        self._chunks.append(
            (
                float(t_s),
                running.astype(np.int32),
                xy,
                edge.astype(np.int32),
                lane_code.astype(np.int32),
                sim.speed[running],
            )
        )

    def __len__(self) -> int:
        return sum(len(c[1]) for c in self._chunks)

    def to_arrow(self) -> pa.Table:
        """The recorded frames as an Arrow table (columns above)."""
        n = len(self)
        cols = [np.concatenate([c[k] for c in self._chunks]) if n else np.zeros(0) for k in range(1, 6)]
        t = np.concatenate([np.full(len(c[1]), c[0]) for c in self._chunks]) if n else np.zeros(0)
        vid, xy, edge, lane, speed = cols
        xy = xy.reshape(-1, 2)

        def codes(a: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
            return pa.DictionaryArray.from_arrays(pa.array(a.astype(np.int32), pa.int32()), values)

        return pa.table(
            {
                "t_s": pa.array(t, pa.float64()),
                "vehicle_id": codes(vid, self.vehicle_ids),
                "x_m": pa.array(xy[:, 0], pa.float64()),
                "y_m": pa.array(xy[:, 1], pa.float64()),
                "edge": codes(edge, self.edge_ids),
                "lane": codes(lane, self.lane_ids),
                "speed_mps": pa.array(speed.astype(np.float64), pa.float64()),
            }
        )


class TrafficModel(SimModel):
    """Road traffic on a compiled network.

    Parameters
    ----------
    network : the compiled lane-level network.
    demand : the vehicles (departures, types, routes).
    dt_s : the core's step (default 1 s, SUMO's default).
    seed : all randomness (speed factors) derives from it.
    record_every_s : simulated seconds per Mesa step (one core call); FCD frames are recorded at this interval.
    edge_interval_s : aggregation interval of the per-edge speeds and flows, seconds.
    reroute_every_s : period of congestion rerouting (0: off); closures always reroute.
    reroute_threshold : a new route is taken when it saves more than this share of the current one's time (0, the
        default: any faster route, as SUMO's rerouting device; on the Bad Hersfeld day, 0.1 left 3.8 times as many
        jam teleports in the peaks).
    params : core parameters by name (see :func:`twin.sim.traffic_core.default_params`).
    record_fcd : keep floating car data (large for big runs).
    closures : ``(at_s, edge rows, closed)``: road closures (``closed`` True) and reopenings applied at the first
        Mesa step at or after ``at_s`` (scenario ``close_road`` / ``open_road`` events).
    """

    def __init__(
        self,
        network: TrafficNetwork,
        demand: Demand,
        *,
        dt_s: float | None = None,
        seed: int = 0,
        record_every_s: float = 1.0,
        edge_interval_s: float = 60.0,
        reroute_every_s: float = 0.0,
        reroute_threshold: float = 0.0,
        params: Mapping[str, float] | None = None,
        record_fcd: bool = True,
        closures: Iterable[tuple[float, Iterable[int], bool]] = (),
    ) -> None:
        dt = float(dt_s or DEFAULT_DT_S)
        steps = max(1, round(record_every_s / dt))
        super().__init__(seed=seed, step_s=steps * dt)
        self.network = network
        self.demand = demand
        self.core_steps = steps
        self.core = TrafficSim(network, dt=dt, seed=seed, params=params)
        first = self.core.add_vehicle_types(**demand.vtypes.arrays())
        arrays = demand.arrays()
        arrays["type"] = np.asarray(arrays["type"], dtype=np.int32) + first
        self.ids = self.core.add_vehicles(**arrays)
        self.n_vehicles = len(demand)
        self.route_offsets = np.asarray(demand.route_offsets, dtype=np.int64)
        self.route_edges = np.asarray(demand.route_edges, dtype=np.int32)
        self._depart_s = np.asarray(demand.depart_s, dtype=np.float64)
        self._routes: dict[int, np.ndarray] = {}  # rerouted vehicles' full routes
        self.closed: set[int] = set()
        self.reroute_every_s = float(reroute_every_s)
        self.reroute_threshold = float(reroute_threshold)
        self.reroutes = 0
        self.edge_interval_s = float(edge_interval_s)
        self._next_edge_s = self.edge_interval_s
        self._next_reroute_s = self.reroute_every_s if self.reroute_every_s > 0 else math.inf
        self._edge_rows: list[pd.DataFrame] = []
        self._kpi_rows: list[tuple[float, str, float]] = []
        self._edge_time = network.edge_travel_time()
        self._free_time = self._edge_time.copy()
        self.fcd = FcdRecorder(demand.ids, network) if record_fcd else None
        self._router_cache: dict[Any, Router] = {}
        self.events = EventLog()
        self._closures = sorted(
            ((float(t), [int(e) for e in edges], bool(c)) for t, edges, c in closures), key=lambda x: x[0]
        )
        self._teleports_logged = 0
        self.destination_closed = 0
        self._apply_closures()
        self._record()

    def _log_teleports(self) -> None:
        """One ``teleport`` event per new jam teleport of the core (vehicle, where it stood, where it went on)."""
        tl = self.core.teleport_log()
        net = self.network
        n_lanes = len(net.lane_ids)
        for k in range(self._teleports_logged, len(tl["time"])):
            seg = int(tl["from_segment"][k])
            if seg < n_lanes:
                where = {"lane": net.lane_ids[seg]}
            else:
                link = seg - n_lanes
                where = {
                    "junction": net.junction_ids[int(net.link_junction[link])],
                    "from_lane": net.lane_ids[int(net.link_from_lane[link])],
                    "to_lane": net.lane_ids[int(net.link_to_lane[link])],
                }
            to = int(tl["to_edge"][k])
            data = {
                "vehicle": self.demand.ids[int(tl["vehicle"][k])],
                **where,
                "to_edge": net.edge_ids[to] if to >= 0 else None,
            }
            self.events.add(float(tl["time"][k]), "teleport", "traffic", data)
            log.info("teleport of a vehicle stuck for time_to_teleport: %s", data)
        self._teleports_logged = len(tl["time"])

    # -- closures and rerouting -----------------------------------------------------------------------------------
    def close_edges(self, edges: Iterable[int], *, closed: bool = True) -> int:
        """Close (or reopen) edges (rows): no vehicle enters a closed edge; routes over it are replaced. Returns the
        number of vehicles rerouted."""
        rows = np.asarray(sorted({int(e) for e in edges}), dtype=np.int32)
        if rows.size == 0:
            return 0
        if rows.min() < 0 or rows.max() >= self.network.n_edges:
            raise ValueError(f"edge rows must be in [0, {self.network.n_edges}), got {rows.tolist()}")
        self.core.set_edge_closed(rows, closed)
        if closed:
            self.closed |= set(rows.tolist())
        else:
            self.closed -= set(rows.tolist())
        return self._reroute(lambda rest: bool(np.isin(rest, rows).any()) if closed else True, force=closed)

    def _router(self) -> Router:
        key = (tuple(sorted(self.closed)), self._edge_time.tobytes())
        r = self._router_cache.get(key)
        if r is None:
            r = Router(self.network, closed=self.closed)
            w = np.asarray(r.graph.weight, dtype=np.float64)
            dst = np.asarray(r.graph.dst, dtype=np.int64)
            finite = np.isfinite(w)
            w = np.where(finite, w - self._free_time[dst] + self._edge_time[dst], w)
            r.graph = r.graph.with_weights(w)
            self._router_cache = {key: r}
        return r

    def nearest_reachable(self, from_edge: int, to_edge: int, *, router: Router | None = None) -> np.ndarray:
        """(k,) int64 fastest route (edge rows, by current travel times, closed edges avoided) from ``from_edge`` to
        the reachable open edge whose end is nearest (straight line) to either end of ``to_edge``; ties: the one
        reached sooner. ``[from_edge]`` when no other edge is nearer; ``to_edge`` itself when it is open and
        reachable."""
        router = router or self._router()
        net = self.network
        sp = router.graph.dijkstra(int(from_edge))
        dist, pred = sp.distances[0], sp.predecessors[0]
        reach = np.isfinite(dist) & router.allowed
        if self.closed:
            reach[np.asarray(sorted(self.closed), dtype=np.int64)] = False
        reach[int(from_edge)] = True
        dist = np.where(np.isfinite(dist), dist, 0.0)
        end = net.junction_xy[net.edge_to_junction]
        a = net.junction_xy[net.edge_from_junction[int(to_edge)]]
        b = net.junction_xy[net.edge_to_junction[int(to_edge)]]
        gap = np.minimum(np.hypot(*(end - a).T), np.hypot(*(end - b).T))
        cand = np.flatnonzero(reach)
        best = int(cand[np.lexsort((cand, dist[cand], np.round(gap[cand], 6)))[0]])
        path = [best]
        while path[-1] != int(from_edge):
            path.append(int(pred[path[-1]]))
        return np.asarray(path[::-1], dtype=np.int64)

    def _route_cost(self, router: Router, edges: np.ndarray) -> float:
        """Current time of a route (its first edge counts fully)."""
        t = float(self._edge_time[edges].sum())
        turn = router.network.route_time(edges) - float(self._free_time[edges].sum())
        return t + turn

    def _reroute(self, affected: Any, *, force: bool) -> int:
        """Give running and pending vehicles whose remaining route ``affected(rest)`` a faster route (with ``force``:
        any route that avoids the closed edges). Returns how many changed."""
        state = self.core.state
        pending = state == 0
        if not force:  # congestion: of those not yet in, only the ones departing before the next rerouting
            pending &= self._depart_s <= self.time_s + self.reroute_every_s
        cand = np.flatnonzero((state == RUNNING) | pending)
        if cand.size == 0:
            return 0
        router = self._router()
        pos = self.core.route_index
        closed = np.asarray(sorted(self.closed), dtype=np.int32)
        changed_ids: list[int] = []
        routes: list[np.ndarray] = []
        in_junction = self.core.lane < 0  # crossing a junction: committed to the next edge of the route
        for i in cand.tolist():
            rest = self.route_of(i)[pos[i] :]
            if len(rest) < 2 or not affected(rest):
                continue
            if (
                not force
                and self._edge_time[rest].sum()
                <= (1.0 + self.reroute_threshold) * self._free_time[rest].sum()
            ):
                continue  # barely slower than free flow: no other route saves the threshold (routes are fastest)
            lost = force and int(rest[-1]) in self.closed  # its destination closed
            if in_junction[i] and state[i] == RUNNING:
                if len(rest) < 3:
                    continue
                if lost:
                    tail = self.nearest_reachable(int(rest[1]), int(rest[-1]), router=router)
                else:
                    tail = router.route(int(rest[1]), int(rest[-1]))
                new = np.concatenate([rest[:1], tail]) if len(tail) else tail
            elif lost:
                new = self.nearest_reachable(int(rest[0]), int(rest[-1]), router=router)
            else:
                new = router.route(int(rest[0]), int(rest[-1]))
            if len(new) == 0 or np.array_equal(new, rest):
                continue
            if lost:
                self.destination_closed += 1
                self.events.add(
                    self.time_s,
                    "destination_closed",
                    "traffic",
                    {
                        "vehicle": self.demand.ids[i],
                        "destination": self.network.edge_ids[int(rest[-1])],
                        "arrives_at": self.network.edge_ids[int(new[-1])],
                    },
                )
            elif not force:
                old_cost = self._route_cost(router, rest)
                if self._route_cost(router, new) > (1.0 - self.reroute_threshold) * old_cost:
                    continue
            elif closed.size and np.isin(new[1:], closed).any():
                continue
            changed_ids.append(i)
            routes.append(np.asarray(new, dtype=np.int32))
        if not changed_ids:
            return 0
        offsets = np.zeros(len(routes) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in routes])
        self.core.set_route(np.asarray(changed_ids, dtype=np.int64), offsets, np.concatenate(routes))
        self._store_routes(changed_ids, routes)
        self.reroutes += len(changed_ids)
        return len(changed_ids)

    def _store_routes(self, ids: list[int], routes: list[np.ndarray]) -> None:
        """Keep our copy of the routes in step with the core's: the travelled part, then the new rest."""
        pos = self.core.route_index
        for i, r in zip(ids, routes, strict=True):
            self._routes[i] = np.concatenate([self.route_of(i)[: pos[i]], r]).astype(np.int32)

    def route_of(self, i: int) -> np.ndarray:
        """(k,) int32 edge rows of vehicle ``i``'s current route (from its first edge)."""
        r = self._routes.get(i)
        if r is None:
            r = self.route_edges[self.route_offsets[i] : self.route_offsets[i + 1]]
        return r

    # -- stepping -------------------------------------------------------------------------------------------------
    def current_router(self) -> Router:
        """A router by the current travel-time estimates (measured speeds where traffic was seen, free flow
        elsewhere; closed edges impassable), as rerouting uses."""
        return self._router()

    @property
    def edge_time(self) -> np.ndarray:
        """(ne,) float64 current travel-time estimate of each edge, s (see :meth:`current_router`)."""
        return self._edge_time

    def route_now(self, from_edge: int, to_edge: int, *, nearest: bool = False) -> tuple[np.ndarray, float]:
        """Fastest route (edge rows) from ``from_edge`` to ``to_edge`` by the current travel times, and its expected
        time (s, the first edge included); (empty, inf) when the target cannot be reached. With ``nearest``, a
        closed or unreachable target is replaced by the reachable open edge nearest to it
        (:meth:`nearest_reachable`)."""
        router = self._router()
        edges = router.route(int(from_edge), int(to_edge))
        if nearest and (len(edges) == 0 or int(to_edge) in self.closed):
            edges = self.nearest_reachable(int(from_edge), int(to_edge), router=router)
        if len(edges) == 0:
            return edges, math.inf
        return edges, self._route_cost(router, edges)

    def insert_vehicles(self, more: Demand) -> np.ndarray:
        """Insert vehicles during the run (e.g. emergency units dispatched now); ``more`` is a demand over this
        network whose departures are not in the past. Returns their rows (vehicle indices, as in :meth:`trips`)."""
        if len(more) == 0:
            return np.zeros(0, dtype=np.int64)
        if float(np.min(more.depart_s)) < self.time_s - 1e-9:
            raise ValueError(
                f"vehicles inserted at {self.time_s} s cannot depart at {float(np.min(more.depart_s))} s"
            )
        first = self.core.add_vehicle_types(**more.vtypes.arrays())
        arrays = more.arrays()
        arrays["type"] = np.asarray(arrays["type"], dtype=np.int32) + first
        rows = np.asarray(self.core.add_vehicles(**arrays), dtype=np.int64)
        self.demand = self.demand.extended(more)
        self.n_vehicles = len(self.demand)
        self.route_offsets = np.asarray(self.demand.route_offsets, dtype=np.int64)
        self.route_edges = np.asarray(self.demand.route_edges, dtype=np.int32)
        self._depart_s = np.asarray(self.demand.depart_s, dtype=np.float64)
        if self.fcd is not None:
            self.fcd.add_vehicle_ids(more.ids)
        self.running = True
        return rows

    @property
    def remaining(self) -> int:
        """Vehicles not yet arrived (pending or running)."""
        return int(np.count_nonzero(self.core.state != ARRIVED))

    def _apply_closures(self) -> None:
        while self._closures and self._closures[0][0] <= self.time_s + 1e-9:
            t, edges, closed = self._closures.pop(0)
            n = self.close_edges(edges, closed=closed)
            self.events.add(
                self.time_s,
                "close_road" if closed else "open_road",
                "scenario",
                {"edges": [self.network.edge_ids[e] for e in edges], "rerouted": n, "scheduled_s": t},
            )

    def step(self) -> None:
        """One Mesa step: ``core_steps`` core steps in one C++ call, then closures, aggregation, rerouting and
        recording."""
        self.core.step(self.core_steps)
        self.advance_clock()
        if self.core.teleports > self._teleports_logged:
            self._log_teleports()
        self._apply_closures()
        if self.time_s + 1e-9 >= self._next_edge_s:
            self._edge_interval()
            self._next_edge_s += self.edge_interval_s
        if self.time_s + 1e-9 >= self._next_reroute_s:
            self._reroute(lambda rest: True, force=False)
            self._next_reroute_s += self.reroute_every_s
        self._record()
        if self.remaining == 0:
            self.running = False

    def _edge_interval(self) -> None:
        stats = self.core.edge_stats(reset=True)
        net = self.network
        samples = stats["samples"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_speed = np.where(samples > 0, stats["speed_sum"] / np.maximum(samples, 1), np.nan)
            density = samples * self.core.dt / (self.edge_interval_s * net.edge_length) * 1000.0
        used = np.flatnonzero((samples > 0) | (stats["entered"] > 0))
        self._edge_rows.append(
            pd.DataFrame(
                {
                    "t_s": np.full(used.size, self.time_s),
                    "edge": [net.edge_ids[e] for e in used],
                    "entered": stats["entered"][used],
                    "flow_vph": stats["entered"][used] * 3600.0 / self.edge_interval_s,
                    "mean_speed_mps": mean_speed[used],
                    "density_vpkm": density[used],
                }
            )
        )
        # smoothed travel-time estimate for rerouting: measured where driven, free flow elsewhere
        measured = np.where(samples > 0, net.edge_length / np.maximum(mean_speed, 0.5), self._free_time)
        measured = np.where(
            np.isfinite(self._free_time), np.maximum(measured, self._free_time), self._free_time
        )
        self._edge_time = 0.5 * self._edge_time + 0.5 * measured

    def _record(self) -> None:
        c = self.core
        counts = c.counts()
        t = self.time_s
        running = c.state == RUNNING
        self._kpi_rows += [
            (t, "vehicles_running", float(counts["running"])),
            (t, "vehicles_arrived", float(counts["arrived"])),
            (t, "vehicles_pending", float(counts["pending"])),
            (t, "mean_speed_mps", float(c.speed[running].mean()) if running.any() else math.nan),
        ]
        if self.fcd is not None:
            self.fcd.record(t, c)

    def run(self, duration_s: float, *, progress: bool = True) -> float:
        """Step until every vehicle has arrived or ``duration_s`` simulated seconds have passed; returns wall s."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        total = math.ceil(duration_s / self.step_s - 1e-9)
        bar = tqdm(
            total=self.n_vehicles, unit="veh", desc="arrived", disable=None if progress else True, leave=False
        )
        done = 0
        for _ in range(total):
            if not self.running:
                break
            self.step()
            arrived = self.n_vehicles - self.remaining
            bar.update(arrived - done)
            done = arrived
        bar.close()
        self.flush()
        return time.perf_counter() - t0

    def flush(self) -> None:
        """Close the last, partial aggregation interval of the per-edge table (at the end of a run)."""
        if self.time_s + 1e-9 < self._next_edge_s and self.time_s > self._next_edge_s - self.edge_interval_s:
            self._edge_interval()
            self._next_edge_s = self.time_s + self.edge_interval_s

    # -- results --------------------------------------------------------------------------------------------------
    def trips(self) -> pd.DataFrame:
        """One row per vehicle (SUMO tripinfo): ``vehicle_id``, ``vtype``, ``depart_s`` (desired), ``depart_actual_s``,
        ``depart_delay_s``, ``arrival_s``, ``duration_s`` (arrival - actual depart), ``route_length_m``,
        ``time_loss_s``, ``waiting_time_s``, ``lane_changes``, ``reroutes`` not tracked per vehicle, ``arrived``."""
        c = self.core
        d = self.demand
        arrived = c.state == ARRIVED
        dep = c.depart_time
        arr = c.arrival_time
        return pd.DataFrame(
            {
                "vehicle_id": list(d.ids),
                "vtype": [d.vtypes.ids[k] for k in np.asarray(d.type)],
                "depart_s": np.asarray(d.depart_s, dtype=np.float64),
                "depart_actual_s": dep,
                "depart_delay_s": dep - np.asarray(d.depart_s, dtype=np.float64),
                "arrival_s": arr,
                "duration_s": np.where(arrived, arr - dep, np.nan),
                "route_length_m": c.distance,
                "time_loss_s": c.time_loss,
                "waiting_time_s": c.waiting_time,
                "lane_changes": c.lane_changes,
                "arrived": arrived,
            }
        )

    def edge_table(self) -> pd.DataFrame:
        """Per edge and interval: ``t_s`` (interval end), ``edge``, ``entered``, ``flow_vph``, ``mean_speed_mps``,
        ``density_vpkm``."""
        if not self._edge_rows:
            return pd.DataFrame(
                columns=["t_s", "edge", "entered", "flow_vph", "mean_speed_mps", "density_vpkm"]
            )
        return pd.concat(self._edge_rows, ignore_index=True)

    def kpi_table(self) -> pd.DataFrame:
        """``t_s``, ``kpi``, ``value`` rows (vehicles running / arrived / pending, mean speed)."""
        return pd.DataFrame(self._kpi_rows, columns=["t_s", "kpi", "value"])

    def summary(self) -> dict[str, Any]:
        """The ``traffic`` section of ``summary.json`` (SUMO tripinfo definitions over arrived vehicles)."""
        trips = self.trips()
        done = trips[trips["arrived"]]
        sim_s = max(self.time_s, 1e-9)
        return {
            "vehicles": int(self.n_vehicles),
            "arrived": int(len(done)),
            "running": int(np.count_nonzero(self.core.state == RUNNING)),
            "mean_travel_time_s": float(done["duration_s"].mean()) if len(done) else None,
            "mean_delay_s": float(done["time_loss_s"].mean()) if len(done) else None,
            "mean_waiting_time_s": float(done["waiting_time_s"].mean()) if len(done) else None,
            "mean_depart_delay_s": float(done["depart_delay_s"].mean()) if len(done) else None,
            "throughput_vph": float(len(done) * 3600.0 / sim_s),
            "collisions": int(self.core.collisions),
            "teleports": int(self.core.teleports),
            "destination_closed": int(self.destination_closed),
            "reroutes": int(self.reroutes),
        }
