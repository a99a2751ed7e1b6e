"""Pipe bursts and surface flooding in a coupled run.

At build time every scripted ``pipe_burst`` of a network runs through WNTR (:class:`twin.sim.hydraulics.BurstSimulation`,
pressure-dependent demand) over the whole run, with and without the bursts: pressure loss, customers below service
pressure and each leak's outflow. When the city has terrain, the outflow floods the surface
(:class:`twin.sim.flood.FloodModel`, a source at the burst) on the timeline; every :data:`CLOSURE_CHECK_S` the
roads are checked and the changes published:

* ``road_flooded`` / ``road_dry`` with ``for: vehicles`` when an edge's deepest point passes
  :data:`twin.sim.flood.VEHICLE_DEPTH_M` (0.3 m), and with ``for: people`` at :data:`~twin.sim.flood.PEOPLE_DEPTH_M`
  (0.5 m); ``details.edges`` are the road edge ids.

Assumptions: the outflow reaches the surface at the burst's plan position at once (no soil path); water on roads
is what the terrain holds (no drains); the hydraulics do not feel the flood.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.bus import Event, EventBus

log = logging.getLogger(__name__)

FLOOD_STEP_S = 10.0
"""The flood model's step on the timeline, seconds (it sub-steps inside for stability)."""
CLOSURE_CHECK_S = 30.0
"""Interval of the road depth checks, seconds."""


def burst_runs(
    scenario: Scenario, city: Any, indices: list[int] | None = None
) -> dict[str, tuple[Any, list[tuple[int, str, tuple[float, float]]]]]:
    """WNTR runs of the scenario's bursts (or of the bursts ``indices``), by network: ``{network: (BurstResult,
    [(event index, burst name, (x, y) local metres)])}``. A burst on a pipe or node that does not exist is an error
    naming the event field."""
    from twin.sim.hydraulics import BurstSimulation

    by_net: dict[str, list[int]] = {}
    for i, e in enumerate(scenario.events):
        if e.type == "pipe_burst" and (indices is None or i in indices):
            by_net.setdefault(e.network, []).append(i)
    out = {}
    for net_id, idx in by_net.items():
        layer = city.pipes[net_id]
        if layer.kind_of_network != "water":
            raise InputError(
                scenario.source,
                f"events[{idx[0]}].network: {net_id!r} is a {layer.kind_of_network} network; bursts are modelled "
                "in EPANET water networks",
            )
        links = set(layer.links["name"].astype(str))
        nodes = set(layer.nodes["name"].astype(str))
        sim = BurstSimulation(layer, duration_s=scenario.duration_s)
        sites = []
        for i in idx:
            e = scenario.events[i]
            if e.link is not None and str(e.link) not in links:
                raise InputError(
                    scenario.source,
                    f"events[{i}].link: no pipe {e.link!r} in network {net_id!r} ({layer.source})",
                )
            if e.node is not None and str(e.node) not in nodes:
                raise InputError(
                    scenario.source,
                    f"events[{i}].node: no node {e.node!r} in network {net_id!r} ({layer.source})",
                )
            end = None if e.duration_s is None else e.at_s + e.duration_s
            sim.add_burst(
                link=e.link,
                node=e.node,
                area_m2=e.area_m2,
                discharge_coeff=e.discharge_coeff,
                start_s=e.at_s,
                end_s=end,
            )
            sites.append((i, _site(layer, e)))
        result = sim.run()
        out[net_id] = (result, [(i, b.name, xy) for (i, xy), b in zip(sites, result.bursts, strict=True)])
    return out


def _site(layer: Any, e: Any) -> tuple[float, float]:
    """Local (x, y) of a burst: the middle of its pipe, or its node."""
    n = layer.nodes
    if e.link is not None:
        row = layer.links[layer.links["name"].astype(str) == str(e.link)].iloc[0]
        a, b = int(row["start_index"]), int(row["end_index"])
        return float((n["x_m"].iloc[a] + n["x_m"].iloc[b]) / 2), float(
            (n["y_m"].iloc[a] + n["y_m"].iloc[b]) / 2
        )
    row = n[n["name"].astype(str) == str(e.node)].iloc[0]
    return float(row["x_m"]), float(row["y_m"])


class WaterPart:
    """Bursts (hydraulics, precomputed) and the surface flood on the timeline (see the module docstring)."""

    name = "flood"

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus) -> None:
        from twin.sim.flood import FloodModel

        self.scenario = scenario
        self.bus = bus
        self.runs = burst_runs(scenario, city)
        self.time_s = 0.0
        self.step_s = FLOOD_STEP_S
        self.flood = None
        self.edges = None
        if city.terrain is not None:
            self.flood = FloodModel.from_terrain(city.terrain)
            for result, sites in self.runs.values():
                for _, name, (x, y) in sites:
                    self.flood.add_source(x, y, result.outflow_fn(name))
            if city.roads is not None:
                self.edges = city.roads.edges[["id", "shape"]]
        else:
            log.warning(
                "%s: no city.terrain, the bursts' outflow does not flood the surface", scenario.source
            )
        self.running = self.flood is not None
        self.city = city
        self.done = {i for _, sites in self.runs.values() for i, _, _ in sites}
        self.extra_runs: list[tuple[str, Any, list[Any]]] = []
        bus.subscribe("pipe_burst", self._burst)
        self.closed: dict[str, set[str]] = {"vehicles": set(), "people": set()}
        self.closure_log: list[dict[str, Any]] = []
        self._next_check_s = CLOSURE_CHECK_S

    def check(self, i: int) -> None:
        """Errors for burst event ``i`` (unknown network, pipe or node), before it is injected into a live run."""
        e = self.scenario.events[i]
        layer = (self.city.pipes or {}).get(e.network)
        if layer is None or layer.kind_of_network != "water":
            raise InputError(self.scenario.source, f"events[{i}].network: no water network {e.network!r}")
        is_link = e.link is not None
        name, names = (e.link, layer.links["name"]) if is_link else (e.node, layer.nodes["name"])
        if str(name) not in set(names.astype(str)):
            raise InputError(
                self.scenario.source,
                f"events[{i}].{'link' if is_link else 'node'}: no {'pipe' if is_link else 'node'} {name!r} in "
                f"network {e.network!r}",
            )

    def _burst(self, event: Event) -> None:
        """A burst the run did not know at its start (a drill): its own WNTR run from now, a new flood source."""
        i = int(event.details.get("index", -1))
        if i < 0 or i in self.done:
            return
        self.done.add(i)
        for net_id, (result, sites) in burst_runs(self.scenario, self.city, [i]).items():
            self.extra_runs.append((net_id, result, sites))
            if self.flood is not None:
                for _, name, (x, y) in sites:
                    self.flood.add_source(x, y, result.outflow_fn(name))

    def step(self) -> None:
        self.flood.advance(self.step_s)
        self.time_s = round(self.time_s + self.step_s, 9)
        if self.edges is not None and self.time_s + 1e-9 >= self._next_check_s:
            self._check_roads()
            self._next_check_s += CLOSURE_CHECK_S

    def _check_roads(self) -> None:
        from twin.sim.flood import road_closures

        now = road_closures(self.edges, self.flood.depth, self.flood.grid)
        for who in ("vehicles", "people"):
            wet = set(now[who])
            opened, closed = sorted(self.closed[who] - wet), sorted(wet - self.closed[who])
            if closed:
                self.bus.publish(self.time_s, "road_flooded", "flood", {"for": who, "edges": closed})
                self.closure_log += [
                    {"t_s": self.time_s, "edge": e, "for": who, "flooded": True} for e in closed
                ]
            if opened:
                self.bus.publish(self.time_s, "road_dry", "flood", {"for": who, "edges": opened})
                self.closure_log += [
                    {"t_s": self.time_s, "edge": e, "for": who, "flooded": False} for e in opened
                ]
            self.closed[who] = wet

    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        water = {}
        runs = [(n, r, sites) for n, (r, sites) in self.runs.items()]
        runs += [(f"{n}#{k + 1}", r, sites) for k, (n, r, sites) in enumerate(self.extra_runs)]
        if not runs:
            return  # a live run's standby part: no burst happened
        for net_id, result, sites in runs:
            s = result.summary()
            s["events"] = [f"events[{i}]" for i, _, _ in sites]
            water[net_id] = s
            nodes = result.node_table()
            nodes.insert(0, "network", net_id)
            outputs["tables"][f"water_nodes_{net_id}"] = nodes
            outputs["tables"][f"water_leaks_{net_id}"] = pd.DataFrame(
                {
                    "t_s": result.times_s,
                    "leak_outflow_m3s": result.leak_outflow_m3s,
                    "customers_below_service": result.customers_below_service(),
                }
            )
        summary["water"] = water
        if self.flood is None:
            return
        f = self.flood
        h = f.max_depth
        cell = f.cell_area_m2
        summary["flood"] = {
            "max_depth_m": float(h.max(initial=0.0)),
            "flooded_area_m2": float(np.count_nonzero(h > 0.05) * cell),
            "volume_in_m3": float(f.volume_in_m3),
            "volume_stored_m3": float(f.volume_stored_m3),
            "volume_out_m3": float(f.volume_out_m3),
            "volume_error": float(f.volume_error()),
            "roads_closed_vehicles": sorted(
                {r["edge"] for r in self.closure_log if r["for"] == "vehicles" and r["flooded"]}
            ),
            "roads_closed_people": sorted(
                {r["edge"] for r in self.closure_log if r["for"] == "people" and r["flooded"]}
            ),
            "first_road_closure_s": min((r["t_s"] for r in self.closure_log if r["flooded"]), default=None),
        }
        a, b, c, d, e, g = f.grid.transform
        if b != 0 or d != 0 or a <= 0 or abs(a - abs(e)) > 1e-9 * a:
            log.warning("flood grid is rotated or has non-square cells; flood_max_depth.npz is not written")
        else:
            # row 0 along the southern edge, (x0, y0) the lower-left corner: the layout twin compare reads
            south_up = h[::-1] if e < 0 else h
            outputs["arrays"]["flood_max_depth"] = {
                "depth_m": np.ascontiguousarray(south_up, dtype=np.float64),
                "x0": np.float64(c),
                "y0": np.float64(g + e * h.shape[0] if e < 0 else g),
                "cell_m": np.float64(a),
            }
        if self.closure_log:
            outputs["tables"]["flood_road_closures"] = pd.DataFrame(self.closure_log)
