"""A scenario's coupled run as an object: build it, advance it, inject events into it while it runs (drills), and
write its results folder. :func:`twin.scenario.runner.run_scenario` is ``CoupledRun(s).run()`` + ``finish``.

Parts (each in its own module): the crowd, traffic and the emergency response when the scenario has those
sections; smoke when it has fires; bursts and flooding when it has pipe bursts; gas plumes when it has gas
leaks. A *live* run (``live=True``, for drills) also builds every hazard part the city can host — smoke for its
buildings, flooding for its water networks over its terrain, gas — so that an operator can start any of them.

Injected events are validated like scenario events (:meth:`CoupledRun.inject` raises :class:`InputError` naming
the field) and appended to the scenario, so :meth:`CoupledRun.replay_scenario` is a scenario file that replays the
drill exactly: the same seed and the same events at the same times give the same results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from twin.city.layer import write_arrays
from twin.errors import InputError
from twin.scenario.schema import Scenario, build_city, load_scenario

log = logging.getLogger(__name__)

SUPPORTED_EVENTS = frozenset(
    {"alarm", "close_road", "open_road", "fire", "close_door", "dispatch", "pipe_burst", "gas_leak"}
)
HAZARD_EVENTS = frozenset({"fire", "pipe_burst", "gas_leak"})


class CoupledRun:
    """One run of a scenario on one timeline (see the module docstring).

    Parameters
    ----------
    scenario : a :class:`Scenario` or a scenario file.
    live : build every hazard part the city can host (drills), not only those the scenario's events need.
    """

    def __init__(self, scenario: Scenario | str | Path, *, live: bool = False) -> None:
        from twin.scenario.crowd_part import CrowdPart, check_crowd_events
        from twin.scenario.fire_part import FirePart
        from twin.scenario.gas_part import GasPart
        from twin.scenario.response_part import ResponsePart
        from twin.scenario.traffic_part import TrafficPart
        from twin.scenario.water_part import WaterPart
        from twin.sim.bus import EventBus
        from twin.sim.timeline import CoupledModel

        self.t_wall = time.perf_counter()
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.live = live
        unsupported = sorted({e.type for e in scenario.events} - SUPPORTED_EVENTS)
        if unsupported:
            raise InputError(
                scenario.source,
                f"events: {', '.join(unsupported)} events are not simulated in this version yet",
            )
        types = {e.type for e in scenario.events}
        if scenario.crowd is None and scenario.traffic is None and not (types & HAZARD_EVENTS) and not live:
            raise InputError(
                scenario.source,
                "nothing to simulate: the scenario has no crowd or traffic section and no fire, pipe_burst or "
                "gas_leak event",
            )
        check_crowd_events(scenario)
        t_build = time.perf_counter()
        self.city = city = build_city(scenario)
        self.bus = bus = EventBus()
        for i in range(len(scenario.events)):
            self._publish(i)
        self.parts: dict[str, Any] = {}
        if scenario.crowd is not None:
            self.parts["crowd"] = CrowdPart(scenario, city, bus)
        if scenario.traffic is not None:
            self.parts["traffic"] = TrafficPart(scenario, city, bus)
            if scenario.response is not None:
                self.parts["response"] = ResponsePart(scenario, city, bus, self.parts["traffic"])
        if "fire" in types or (live and city.buildings):
            self.parts["smoke"] = FirePart(scenario, city, bus)
        waters = [p for p in (city.pipes or {}).values() if p.kind_of_network == "water"]
        if "pipe_burst" in types or (live and waters):
            self.parts["flood"] = WaterPart(scenario, city, bus)
        self.listeners: dict[str, Any] = {}
        if "gas_leak" in types or live:
            self.listeners["gas"] = GasPart(scenario, city, bus)
        self.build_s = time.perf_counter() - t_build
        steppers = [p for p in self.parts.values() if hasattr(p, "step")]
        self.model = CoupledModel(steppers, bus, duration_s=scenario.duration_s, seed=scenario.seed)
        self.injected: list[int] = []

    def _publish(self, i: int) -> None:
        e = self.scenario.events[i]
        details = e.model_dump(mode="json", exclude_none=True, exclude={"at_s", "type"})
        self.bus.publish(e.at_s, e.type, "scenario", {"index": i, **details})

    # -- running ------------------------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        """Simulated time every part has reached (the laggard's clock), seconds."""
        return self.model.time_s

    @property
    def running(self) -> bool:
        return bool(self.model.running)

    def advance(self, until_s: float) -> float:
        """Step the timeline until every part has reached ``until_s`` (or finished, or the run's end); returns the
        time reached."""
        while self.model.running:
            nxt = self.model.laggard()
            if nxt is None or nxt.time_s >= until_s - 1e-9:
                break
            self.model.step()
        return self.time_s

    def run(self, *, progress: bool = True) -> None:
        """Run to the end (every part finished or ``duration_s`` reached)."""
        self.model.run(progress=progress)

    def inject(self, event: Mapping[str, Any]) -> Any:
        """Add an event during the run (a drill action): ``event`` as in a scenario's ``events`` list; ``at_s``
        defaults to now and may not lie in the past. Validated like a scenario (errors name ``events[i]`` fields);
        returns the validated event."""
        data = dict(event)
        now = self.time_s
        data.setdefault("at_s", now)
        if float(data["at_s"]) < now - 1e-9:
            raise InputError(
                self.scenario.source, f"events: at_s {data['at_s']} is in the past (now {now:.1f} s)"
            )
        resolved = self.scenario.model_dump_resolved()
        resolved.setdefault("events", []).append(data)
        checked = Scenario.from_dict(resolved, source=self.scenario.source, base_dir=self.scenario.base_dir)
        new = checked.events[-1]
        i = len(self.scenario.events)
        self.scenario.events.append(new)
        try:
            self._check_injected(i)
        except Exception:
            self.scenario.events.pop()
            raise
        self.injected.append(i)
        self._publish(i)
        log.info("drill: %s at %.1f s injected as events[%d]", new.type, new.at_s, i)
        return new

    def _check_injected(self, i: int) -> None:
        """Errors a part would raise when the event arrives, raised now instead."""
        e = self.scenario.events[i]
        if e.type not in SUPPORTED_EVENTS:
            raise InputError(self.scenario.source, f"events[{i}].type: {e.type} is not simulated")
        part = {
            "fire": "smoke",
            "pipe_burst": "flood",
            "close_road": "traffic",
            "open_road": "traffic",
            "dispatch": "response",
        }.get(e.type)
        if part is not None and part not in self.parts:
            raise InputError(
                self.scenario.source, f"events[{i}]: this run has no {part} model for a {e.type} event"
            )
        if e.type == "fire":
            self.parts["smoke"].site(i)
        elif e.type == "pipe_burst":
            self.parts["flood"].check(i)
        elif e.type in ("close_road", "open_road"):
            self.parts["traffic"].rows(i)
        if "response" in self.parts and self.parts["response"]._dispatches(e):
            self.parts["response"].site(i)

    def replay_scenario(self) -> dict[str, Any]:
        """The scenario with every injected event (resolved paths): saved as YAML, it replays this run exactly."""
        return self.scenario.model_dump_resolved()

    # -- results ------------------------------------------------------------------------------------------------
    def finish(self, out_dir: str | Path) -> dict[str, Any]:
        """Write the results folder; returns the summary."""
        from twin.scenario.results import write_results
        from twin.scenario.runner import _merged_events

        summary: dict[str, Any] = {}
        outputs: dict[str, Any] = {"tables": {}, "kpis": [], "events": [self.bus.log], "arrays": {}}
        for part in (*self.parts.values(), *self.listeners.values()):
            part.finish(summary, outputs)
        summary["timing"] = {
            "build_s": round(self.build_s, 3),
            "model_wall_s": {k: round(v, 3) for k, v in self.model.wall_s.items()},
            "model_steps": dict(self.model.steps_of),
        }
        if self.injected:
            summary["drill"] = {"actions": [f"events[{i}]" for i in self.injected]}
        kpis = [k.to_frame() if hasattr(k, "to_frame") else k for k in outputs["kpis"]]
        out = Path(out_dir)
        for stem, arrays in outputs["arrays"].items():
            write_arrays(arrays, out / f"{stem}.npz")
        return write_results(
            out_dir,
            scenario_resolved=self.scenario.model_dump_resolved(),
            summary=summary,
            wall_time_s=time.perf_counter() - self.t_wall,
            simulated_s=self.model.simulated_s,
            trajectories=outputs.get("trajectories"),
            kpis=pd.concat(kpis, ignore_index=True) if kpis else None,
            events=_merged_events(outputs["events"]),
            density=outputs.get("density"),
            tables=outputs["tables"],
            report=self.scenario.outputs.report,
            traffic_report=outputs.get("traffic_report"),
        )
