"""Fire and smoke in a coupled run: a :class:`~twin.sim.smoke.SmokeModel` per building that has a ``fire`` event.

Events it acts on: ``fire`` (a t² fire starts in the space the event names; see :func:`twin.sim.smoke.locate_space`),
``close_door`` (a building door closes: it passes no smoke any more).
Events it publishes, per building space (details name ``building``, ``space`` (the crowd's area id: the space's
name, or its GUID when it has none), ``guid`` and ``name``):

* ``space_untenable`` when a space crosses the tenability limits (:class:`twin.sim.smoke.Tenability`);
* ``space_smoke`` when the walking-speed factor in a space (from its visibility,
  :func:`twin.sim.smoke.smoke_speed_factor`) changes by a :data:`SPEED_FACTOR_STEP` band.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.bus import Event, EventBus

log = logging.getLogger(__name__)

SMOKE_STEP_S = 1.0
"""The smoke model's step on the timeline, seconds (it sub-steps inside for stability)."""
SPEED_FACTOR_STEP = 0.1
"""Speed factors are published in bands of this width (each change of band is one event)."""
STATE_EVERY_S = 10.0
"""Interval of the smoke state table (``smoke_state.parquet``), seconds."""


def fire_sites(scenario: Scenario, city: Any) -> dict[int, tuple[str, str]]:
    """``{event index: (building id, space GUID)}`` of the scenario's fires; a fire in a building or space that
    does not exist is an error naming the event field."""
    return {i: fire_site(scenario, city, i) for i, e in enumerate(scenario.events) if e.type == "fire"}


def fire_site(scenario: Scenario, city: Any, i: int) -> tuple[str, str]:
    """(building id, space GUID) of the fire ``scenario.events[i]``; a fire in a building or space that does not
    exist is an error naming the event field."""
    from twin.sim.smoke import locate_space

    e = scenario.events[i]
    if e.building is None:
        raise InputError(
            scenario.source, f"events[{i}]: fires are modelled in buildings; give building (and space)"
        )
    building = (city.buildings or {}).get(e.building)
    if building is None:
        raise InputError(
            scenario.source,
            f"events[{i}].building: no building {e.building!r} in city.buildings ({sorted(city.buildings or {})})",
        )
    pos = None if e.position is None else [float(v) for v in e.position]
    try:
        guid = locate_space(building, space=e.space, storey=e.storey, position=pos, source=scenario.source)
    except InputError as exc:
        field = "space" if e.space is not None else ("position" if pos is not None else "storey")
        raise InputError(scenario.source, f"events[{i}].{field}: {exc.message}") from None
    return (e.building, guid)


class FirePart:
    """Smoke spread in the buildings with fires, on the bus (see the module docstring)."""

    name = "smoke"

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus) -> None:
        self.scenario = scenario
        self.city = city
        self.bus = bus
        self.models: dict[str, Any] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.sites = fire_sites(
            scenario, city
        )  # checked now; each building's model is built at its first fire
        self.time_s = 0.0
        self.step_s = SMOKE_STEP_S
        self.running = True
        self.duration_s = scenario.duration_s
        self._band: dict[tuple[str, str], float] = {}
        self._rows: list[pd.DataFrame] = []
        self._next_state_s = 0.0
        self.fires: list[dict[str, Any]] = []
        bus.subscribe("fire", self._fire)
        bus.subscribe("close_door", self._close_door)

    def _model(self, bid: str) -> Any:
        """The smoke model of building ``bid`` (built at its first fire)."""
        from twin.sim.smoke import SmokeModel

        if bid not in self.models:
            building = self.city.buildings[bid]
            model = SmokeModel.from_building(building)
            if self.time_s > 0:
                model.advance(self.time_s)  # clear air so far: only its clock moves
            self.models[bid] = model
            sp = building.spaces
            self.labels[bid] = {
                str(g): str(n) if n is not None else str(g)
                for g, n in zip(sp["guid"], sp["name"], strict=True)
            }
        return self.models[bid]

    def site(self, i: int) -> tuple[str, str]:
        """(building, space GUID) of fire event ``i`` (located at the first ask; errors name the event field)."""
        if i not in self.sites:
            self.sites[i] = fire_site(self.scenario, self.city, i)
        return self.sites[i]

    def _fire(self, event: Event) -> None:
        from twin.sim.fire import TSquaredFire

        i = event.details.get("index")
        if i is None:
            return
        bid, guid = self.site(int(i))
        self._model(bid)
        spec = self.scenario.events[int(i)]
        fire = TSquaredFire.from_event(spec)
        self.models[bid].add_fire(guid, fire)
        self.fires.append(
            {
                "building": bid,
                "space": self.labels[bid][guid],
                "guid": guid,
                "start_s": event.t_s,
                "growth": spec.growth,
                "alpha_kw_s2": fire.alpha,
                "max_hrr_kw": fire.max_hrr_kw,
            }
        )

    def _close_door(self, event: Event) -> None:
        """A building door closes (by GUID or name): it passes no smoke from now on. Doors the smoke model has no
        opening for (to the outside, without a space behind) change nothing in it."""
        bid, door = event.details.get("building"), event.details.get("door")
        if bid not in self.models or door is None:
            return
        doors = self.city.buildings[bid].doors
        guids = doors.loc[(doors["guid"] == door) | (doors["name"] == door), "guid"].astype(str).tolist()
        for guid in guids or [str(door)]:
            if self.models[bid].has_opening(guid):
                self.models[bid].close_door(guid)

    def step(self) -> None:
        from twin.sim.smoke import smoke_speed_factor

        t = round(self.time_s + self.step_s, 9)
        for bid, model in self.models.items():
            model.advance(self.step_s)
            for guid in model.newly_untenable():
                self._publish(t, "space_untenable", bid, guid, {"reason": "smoke"})
            factor = smoke_speed_factor(model.visibility_m)
            band = np.floor(factor / SPEED_FACTOR_STEP + 1e-9) * SPEED_FACTOR_STEP
            for k, guid in enumerate(model.space_ids):
                key = (bid, guid)
                if not math.isclose(self._band.get(key, 1.0), band[k]):
                    self._band[key] = float(band[k])
                    self._publish(
                        t,
                        "space_smoke",
                        bid,
                        guid,
                        {
                            "speed_factor": max(float(band[k]), SPEED_FACTOR_STEP),
                            "visibility_m": float(model.visibility_m[k]),
                        },
                    )
        self.time_s = t
        if t + 1e-9 >= self._next_state_s:
            self._record()
            self._next_state_s = t + STATE_EVERY_S

    def _publish(self, t: float, type_: str, bid: str, guid: str, extra: dict[str, Any]) -> None:
        name = self.labels[bid].get(guid, guid)
        self.bus.publish(
            t, type_, "smoke", {"building": bid, "space": name, "guid": guid, "name": name, **extra}
        )

    def _record(self) -> None:
        for bid, model in self.models.items():
            df = model.state_table()
            df.insert(0, "building", bid)
            df.insert(0, "t_s", self.time_s)
            self._rows.append(df)

    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        if not self.fires:
            return  # a live run's standby part: no fire started
        spaces: dict[str, Any] = {}
        for bid, model in self.models.items():
            since = model.untenable_since_s
            for k in np.flatnonzero(np.isfinite(since)):
                guid = model.space_ids[k]
                spaces[f"{bid}/{self.labels[bid].get(guid, guid)}"] = round(float(since[k]), 1)
        first = min(spaces.values()) if spaces else None
        summary["fire"] = {
            "fires": self.fires,
            "untenable_spaces": len(spaces),
            "first_untenable_s": first,
            "untenable_since_s": dict(sorted(spaces.items(), key=lambda kv: kv[1])),
        }
        if self._rows:
            table = pd.concat(self._rows, ignore_index=True)
            table["untenable_since_s"] = table["untenable_since_s"].astype(np.float64)
            outputs["tables"]["smoke_state"] = table
