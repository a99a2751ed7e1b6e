"""Road traffic in a coupled run: compiles the network, loads the demand, builds :class:`TrafficModel` and reacts
to bus events.

Events it acts on: ``close_road`` / ``open_road`` (scenario edge ids; routes over a closed edge are replaced),
``road_flooded`` / ``road_dry`` with ``for: vehicles`` (edges a flood makes impassable to cars, deeper than
0.3 m, and open again). Closures are reference-counted by cause, so a street the flood reopens stays closed if
the scenario closed it too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.bus import Event, EventBus
from twin.sim.timeline import ModelComponent

log = logging.getLogger(__name__)


class TrafficPart(ModelComponent):
    """The traffic section of a scenario on the bus (see the module docstring)."""

    name = "traffic"

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus) -> None:
        from twin.sim.demand import load_demand
        from twin.sim.traffic import TrafficModel
        from twin.sim.traffic_net import compile_network, with_signal_control

        if city.roads is None:
            raise InputError(scenario.source, "traffic: needs city.roads (a road network to drive on)")
        self.scenario = scenario
        self.city = city
        self.network = with_signal_control(compile_network(city.roads), scenario.traffic.signals)
        demand = load_demand(
            scenario.traffic.demand, self.network, seed=scenario.seed, source=scenario.source
        )
        self.scenario_rows = scenario_edge_rows(scenario, self.network)
        self.model = TrafficModel(
            self.network,
            demand,
            dt_s=scenario.traffic.dt_s,
            seed=scenario.seed,
            record_every_s=max(scenario.outputs.trajectories_every_s, scenario.traffic.dt_s or 1.0),
            reroute_every_s=scenario.traffic.reroute_every_s,
        )
        self._causes: dict[int, set[str]] = defaultdict(set)
        bus.subscribe("close_road", self._road_event)
        bus.subscribe("open_road", self._road_event)
        bus.subscribe("road_flooded", self._flood_event)
        bus.subscribe("road_dry", self._flood_event)

    def _set(self, rows: list[int], cause: str, *, closed: bool) -> None:
        changed = []
        for r in rows:
            was = bool(self._causes[r])
            if closed:
                self._causes[r].add(cause)
            else:
                self._causes[r].discard(cause)
            if bool(self._causes[r]) != was:
                changed.append(r)
        if changed:
            self.model.close_edges(changed, closed=closed)

    def rows(self, i: int) -> list[int]:
        """Edge rows of road event ``i`` (errors name the event field)."""
        if i not in self.scenario_rows:
            self.scenario_rows[i] = edge_rows(self.scenario, self.network, i)
        return self.scenario_rows[i]

    def _road_event(self, event: Event) -> None:
        self._set(self.rows(int(event.details["index"])), "scenario", closed=event.type == "close_road")

    def _flood_event(self, event: Event) -> None:
        if event.details.get("for") != "vehicles":
            return
        rows = [
            self.network.edge_row[e] for e in event.details.get("edges", []) if e in self.network.edge_row
        ]
        self._set([int(r) for r in rows], "flood", closed=event.type == "road_flooded")

    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        from twin.scenario.report_traffic import TrafficReport, edge_shapes

        model = self.model
        model.flush()
        summary["traffic"] = model.summary()
        tables = {
            "traffic_fcd": model.fcd.to_arrow() if model.fcd is not None else None,
            "traffic_trips": model.trips(),
            "traffic_edges": model.edge_table(),
        }
        outputs["tables"].update({k: v for k, v in tables.items() if v is not None})
        ids, shapes, speed = edge_shapes(self.network, self.city.roads)
        outputs["traffic_report"] = TrafficReport(
            trips=outputs["tables"]["traffic_trips"],
            edges=outputs["tables"]["traffic_edges"],
            edge_ids=ids,
            shapes=shapes,
            free_speed=speed,
        )
        outputs["kpis"].append(model.kpi_table())
        outputs["events"].append(model.events)


def scenario_edge_rows(scenario: Scenario, network: Any) -> dict[int, list[int]]:
    """Edge rows of each ``close_road`` / ``open_road`` event by event index; unknown edges are errors naming the
    event field."""
    return {
        i: edge_rows(scenario, network, i)
        for i, e in enumerate(scenario.events)
        if e.type in ("close_road", "open_road")
    }


def edge_rows(scenario: Scenario, network: Any, i: int) -> list[int]:
    """Edge rows of road event ``scenario.events[i]``; an unknown edge is an error naming the event field."""
    e = scenario.events[i]
    rows = []
    for j, eid in enumerate(e.edge_ids):
        row = network.edge_row.get(str(eid))
        if row is None:
            field = f"events[{i}].edges[{j}]" if e.edges else f"events[{i}].edge"
            raise InputError(scenario.source, f"{field}: no edge {eid!r} in the road network")
        rows.append(int(row))
    return rows
