"""Gas leaks in a coupled run: a steady Gaussian plume (:class:`twin.sim.gas.GaussianPlume`) from the leak's
start, its hazard zone (ground-level concentration above the event's ``threshold_ppm``), and the evacuation of
the buildings in it.

On a ``gas_leak`` event it publishes ``hazard_zone`` [kind gas, zone WKT, area_m2, buildings] and, when buildings
are inside, an ``alarm`` for them (people there start their pre-movement); when the leak stops (``duration_s``),
``hazard_zone_cleared``. Buildings are the city's IFC buildings (their outline: the union of their storeys'
walkable areas, else their bounding box) and the city model's footprints.
"""

from __future__ import annotations

import logging
from typing import Any

import shapely
from shapely.geometry import box

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.bus import Event, EventBus

log = logging.getLogger(__name__)


def building_outlines(city: Any) -> dict[str, Any]:
    """``{building id: shapely polygon}`` of the city's IFC buildings (local metres)."""
    out = {}
    for bid, b in (city.buildings or {}).items():
        shapes = [g for g in b.walkable.values() if g is not None and not g.is_empty]
        if shapes:
            out[bid] = shapely.union_all(shapes).convex_hull
        else:
            lo, hi = b.bounds()
            out[bid] = box(lo[0], lo[1], hi[0], hi[1])
    return out


class GasPart:
    """Gas plumes on the bus (see the module docstring). Not a timeline component: it acts on events only."""

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus) -> None:
        self.scenario = scenario
        self.city = city
        self.bus = bus
        self.outlines = building_outlines(city)
        self.zones: list[dict[str, Any]] = []
        for i, e in enumerate(scenario.events):
            if e.type == "gas_leak":
                self._origin(i)  # errors before the run
        bus.subscribe("gas_leak", self._leak)

    def _origin(self, i: int) -> tuple[float, float]:
        e = self.scenario.events[i]
        if e.position is not None:
            return float(e.position[0]), float(e.position[1])
        from twin.scenario.response_part import incident_point

        layer = (self.city.pipes or {}).get(e.network)
        if layer is None:
            raise InputError(self.scenario.source, f"events[{i}].network: no pipe network {e.network!r}")
        return incident_point(self.scenario, self.city, i)

    def _leak(self, event: Event) -> None:
        from twin.sim.gas import GaussianPlume, buildings_inside

        i = int(event.details["index"])
        e = self.scenario.events[i]
        x, y = self._origin(i)
        plume = GaussianPlume.from_event(e, x, y, source=self.scenario.source)
        zone = plume.hazard_zone(ppm=e.threshold_ppm, molar_mass_g_mol=e.molar_mass_g_mol)
        ids = list(self.outlines)
        inside = [ids[k] for k in buildings_inside(zone, [self.outlines[b] for b in ids])] if ids else []
        record = {
            "event": f"events[{i}]",
            "kind": "gas",
            "start_s": event.t_s,
            "end_s": None if e.duration_s is None else event.t_s + e.duration_s,
            "area_m2": round(float(zone.area), 1),
            "buildings": inside,
            "zone_wkt": zone.wkt if not zone.is_empty else None,
        }
        self.zones.append(record)
        self.bus.publish(
            event.t_s, "hazard_zone", "gas", {k: v for k, v in record.items() if k != "zone_wkt"}
        )
        if inside:
            self.bus.publish(event.t_s, "alarm", "gas", {"buildings": inside, "message": "gas leak"})
        if e.duration_s is not None:
            self.bus.publish(
                event.t_s + e.duration_s, "hazard_zone_cleared", "gas", {"event": f"events[{i}]"}
            )
        log.info("t=%.0f s: gas zone of %.0f m² over %s", event.t_s, zone.area, inside or "no building")

    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        if not self.zones:
            return  # a live run's standby part: no leak happened
        summary["gas"] = {
            "leaks": len(self.zones),
            "zones": [{k: v for k, v in z.items() if k != "zone_wkt"} for z in self.zones],
        }
