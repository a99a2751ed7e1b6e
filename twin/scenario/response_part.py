"""Emergency response in a coupled run: stations and units (:mod:`twin.sim.response`) dispatched through the traffic
model as priority vehicles.

Events it acts on: ``fire``, ``pipe_burst``, ``gas_leak`` (with ``response.dispatch: auto``: the units of
``response.units_per_incident``) and ``dispatch`` (the units it asks for, from its station or the nearest).
Events it publishes: ``unit_dispatched`` [unit, station, incident, expected_s] and ``unit_arrived`` [unit, station,
incident, response_time_s]. A request no available unit can serve is published as ``dispatch_failed`` [reason].

Units drive as emergency vehicles (priority 1: others yield, red lights passed carefully; see
:mod:`twin.sim.traffic_core`) over the fastest route in the current traffic. A unit's response time is its
turnout time plus the time from its departure to its arrival in the traffic run.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.bus import Event, EventBus
from twin.sim.response import STATION_SNAP_M, UNIT_TYPES, UNIT_VCLASS, EdgeLocator, Station, Unit, coverage

log = logging.getLogger(__name__)

INCIDENT_TYPES = ("fire", "pipe_burst", "gas_leak")


def incident_point(scenario: Scenario, city: Any, index: int) -> tuple[float, float]:
    """Where the units of event ``index`` drive to (x, y metres, local frame): a building's entrance (the mean of
    its doors to the outside, else its centre), a pipe's midpoint or node, or the event's position."""
    e = scenario.events[index]
    if getattr(e, "incident", None):
        ids = [ev.id for ev in scenario.events]
        return incident_point(scenario, city, ids.index(e.incident))
    pos = getattr(e, "position", None)
    if pos is not None:
        return float(pos[0]), float(pos[1])
    building = getattr(e, "building", None)
    if building is not None:
        b = city.buildings[building]
        doors = b.exits()
        if len(doors):
            return float(doors["x_m"].mean()), float(doors["y_m"].mean())
        lo, hi = b.bounds()
        return float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2)
    network = getattr(e, "network", None)
    if network is not None:
        net = city.pipes[network]
        nodes = net.nodes
        if getattr(e, "link", None) is not None:
            row = net.links[net.links["name"].astype(str) == str(e.link)]
            if row.empty:
                raise InputError(
                    scenario.source, f"events[{index}].link: no pipe {e.link!r} in network {network!r}"
                )
            a, b = int(row["start_index"].iloc[0]), int(row["end_index"].iloc[0])
            return (
                float((nodes["x_m"].iloc[a] + nodes["x_m"].iloc[b]) / 2),
                float((nodes["y_m"].iloc[a] + nodes["y_m"].iloc[b]) / 2),
            )
        row = nodes[nodes["name"].astype(str) == str(e.node)]
        if row.empty:
            raise InputError(
                scenario.source, f"events[{index}].node: no node {e.node!r} in network {network!r}"
            )
        return float(row["x_m"].iloc[0]), float(row["y_m"].iloc[0])
    raise InputError(scenario.source, f"events[{index}]: needs a building, a position, a pipe or an incident")


class ResponsePart:
    """Stations and units on the bus (see the module docstring); needs the traffic part its units drive in."""

    name = "response"

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus, traffic: Any) -> None:
        from twin.sim.demand import VehicleType

        spec = scenario.response
        self.scenario = scenario
        self.city = city
        self.bus = bus
        self.traffic = traffic
        self.spec = spec
        network = traffic.network
        self.locator = EdgeLocator(network)
        xy = np.array([[st.position[0], st.position[1]] for st in spec.stations], dtype=np.float64)
        edges, dist = self.locator.nearest(xy)
        self.stations: list[Station] = []
        self.units: list[Unit] = []
        for i, st in enumerate(spec.stations):
            if not dist[i] <= STATION_SNAP_M:
                raise InputError(
                    scenario.source,
                    f"response.stations[{i}].position: station {st.id!r} at ({xy[i, 0]:.1f}, {xy[i, 1]:.1f}) is "
                    f"{dist[i]:.0f} m from the nearest road a unit may use (at most {STATION_SNAP_M:.0f} m)",
                )
            station = Station(st.id, (xy[i, 0], xy[i, 1]), int(edges[i]), float(dist[i]), st.turnout_s)
            for utype, count in st.units.items():
                for k in range(count):
                    station.units.append(Unit(f"{st.id}/{utype}-{k + 1}", utype, st.id, int(edges[i])))
            self.stations.append(station)
            self.units += station.units
        self.turnout = {st.id: st.turnout_s for st in spec.stations}
        self.vtypes = {
            t: VehicleType.of_class(UNIT_VCLASS, id=f"unit-{t}", **p) for t, p in UNIT_TYPES.items()
        }
        # incident sites, checked now: a site off the road network is an error before the run
        self.sites: dict[int, tuple[int, tuple[float, float]]] = {}
        for i, e in enumerate(scenario.events):
            if self._dispatches(e):
                self.site(i)

        self.time_s = 0.0
        self.step_s = traffic.step_s
        self.running = True
        self.failed: list[dict[str, Any]] = []
        for t in (*INCIDENT_TYPES, "dispatch"):
            bus.subscribe(t, self._incident)

    # -- dispatch ----------------------------------------------------------------------------------------------
    def _dispatches(self, e: Any) -> bool:
        return (e.type in INCIDENT_TYPES and self.spec.dispatch == "auto") or e.type == "dispatch"

    def site(self, i: int) -> tuple[int, tuple[float, float]]:
        """(edge row, (x, y)) where units of event ``i`` drive to; off the road network is an error naming it."""
        if i not in self.sites:
            p = incident_point(self.scenario, self.city, i)
            edge, d = self.locator.nearest(np.array([p]))
            if not d[0] <= STATION_SNAP_M:
                raise InputError(
                    self.scenario.source,
                    f"events[{i}]: the incident at ({p[0]:.1f}, {p[1]:.1f}) is {d[0]:.0f} m from the nearest road "
                    f"(at most {STATION_SNAP_M:.0f} m); units could not reach it",
                )
            self.sites[i] = (int(edge[0]), p)
        return self.sites[i]

    def _incident(self, event: Event) -> None:
        i = int(event.details.get("index", -1))
        if i < 0 or event.source != "scenario" or not self._dispatches(self.scenario.events[i]):
            return
        self.site(i)
        e = self.scenario.events[i]
        if e.type == "dispatch":
            wanted = {e.unit_type: e.units}
            only = e.station
            incident = e.incident or e.id or f"events[{i}]"
        else:
            wanted = self.spec.units_per_incident.get(e.type, {})
            only = None
            incident = e.id or f"events[{i}]"
        target, _ = self.sites[i]
        for utype, n in wanted.items():
            for _ in range(n):
                self._send(event.t_s, utype, target, incident, only)

    def _send(self, t: float, utype: str, target: int, incident: str, only: str | None) -> None:
        from twin.sim.demand import Demand, VehicleTypes

        model = self.traffic.model
        now = max(t, model.time_s)
        best: tuple[float, Unit, np.ndarray] | None = None
        for u in self.units:
            if u.state != "available" or u.type != utype or (only is not None and u.station != only):
                continue
            route, expected = model.route_now(
                u.edge, target, nearest=True
            )  # closed target: as near as it can
            if len(route) and (best is None or expected < best[0]):
                best = (expected, u, route)
        if best is None:
            reason = f"no available {utype} unit" + (f" at station {only}" if only else "") + " can reach it"
            self.failed.append({"t_s": now, "incident": incident, "unit_type": utype, "reason": reason})
            self.bus.publish(
                now,
                "dispatch_failed",
                "response",
                {"incident": incident, "unit_type": utype, "reason": reason},
            )
            return
        expected, unit, route = best
        depart = now + self.turnout[unit.station]
        more = Demand(
            ids=(unit.id,),
            depart_s=np.array([depart]),
            type=np.zeros(1, dtype=np.int32),
            vtypes=VehicleTypes.from_types([self.vtypes[utype]]),
            route_offsets=np.array([0, len(route)], dtype=np.int64),
            route_edges=np.asarray(route, dtype=np.int32),
            depart_lane=np.full(1, -1, dtype=np.int32),
            depart_pos=np.zeros(1),
            depart_speed=np.zeros(1),
            priority=np.ones(1, dtype=np.int8),
            speed_factor=np.ones(1),
            source="response",
        )
        unit.vehicle = int(model.insert_vehicles(more)[0])
        unit.state, unit.incident, unit.dispatched_s, unit.expected_s = "en_route", incident, now, expected
        self.bus.publish(
            now,
            "unit_dispatched",
            "response",
            {
                "unit": unit.id,
                "station": unit.station,
                "incident": incident,
                "expected_s": round(expected, 1),
            },
        )

    # -- the timeline's view --------------------------------------------------------------------------------
    def step(self) -> None:
        """Notice the units that arrived during the traffic model's last step."""
        self.time_s = round(self.time_s + self.step_s, 9)
        core = self.traffic.model.core
        arrival = core.arrival_time
        for u in self.units:
            if u.state == "en_route" and u.vehicle >= 0 and np.isfinite(arrival[u.vehicle]):
                u.state, u.arrived_s = "on_scene", float(arrival[u.vehicle])
                u.route_length_m = float(core.distance[u.vehicle])
                self.bus.publish(
                    u.arrived_s,
                    "unit_arrived",
                    "response",
                    {
                        "unit": u.id,
                        "station": u.station,
                        "incident": u.incident,
                        "response_time_s": round(u.response_time_s, 2),
                    },
                )

    # -- results ----------------------------------------------------------------------------------------------
    def unit_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "unit": [u.id for u in self.units],
                "type": [u.type for u in self.units],
                "station": [u.station for u in self.units],
                "state": [u.state for u in self.units],
                "incident": [u.incident for u in self.units],
                "dispatched_s": [u.dispatched_s for u in self.units],
                "arrived_s": [u.arrived_s for u in self.units],
                "response_time_s": [u.response_time_s for u in self.units],
                "expected_s": [u.expected_s for u in self.units],
                "route_length_m": [u.route_length_m for u in self.units],
            }
        )

    def coverage(self) -> tuple[dict[str, Any], np.ndarray]:
        """Per station and overall: share of road length within the target response time in the traffic at the
        end of the run; and (ne,) travel time (s) from the nearest station to each edge."""
        model = self.traffic.model
        router = model.current_router()
        length = np.asarray(self.traffic.network.edge_length, dtype=np.float64)
        target = self.spec.target_response_s
        out: dict[str, Any] = {}
        for st in self.stations:
            _, share = coverage(
                router.graph, np.array([st.edge]), length, model.edge_time, target - st.turnout_s
            )
            out[st.id] = round(share, 4)
        t, share = coverage(
            router.graph, np.array([st.edge for st in self.stations]), length, model.edge_time, target
        )
        out["all"] = round(share, 4)
        return out, t

    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        table = self.unit_table()
        sent = table[np.isfinite(table["dispatched_s"])]
        came = sent[np.isfinite(sent["arrived_s"])]
        target = self.spec.target_response_s
        cover, t = self.coverage()
        summary["response"] = {
            "stations": len(self.stations),
            "units": len(self.units),
            "dispatches": int(len(sent)),
            "arrived": int(len(came)),
            "failed_dispatches": len(self.failed),
            "mean_response_time_s": float(came["response_time_s"].mean()) if len(came) else None,
            "max_response_time_s": float(came["response_time_s"].max()) if len(came) else None,
            "target_response_s": target,
            "share_within_target": float((came["response_time_s"] <= target).sum() / len(sent))
            if len(sent)
            else None,
            "coverage_share": cover,
            "by_unit": {
                r.unit: {
                    "incident": r.incident,
                    "response_time_s": None
                    if not np.isfinite(r.response_time_s)
                    else round(float(r.response_time_s), 2),
                }
                for r in sent.itertuples()
            },
        }
        outputs["tables"]["response_units"] = table
        outputs["tables"]["response_coverage"] = pd.DataFrame(
            {"edge": list(self.traffic.network.edge_ids), "travel_time_s": t}
        )
