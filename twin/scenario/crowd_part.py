"""The crowd in a coupled run: builds the crowd space, the population and :class:`CrowdModel` from a scenario,
and reacts to bus events.

Events it acts on:

* ``alarm``: pre-movement clocks of the people it concerns start (everyone, or those in the named buildings or
  areas). A scenario without ``alarm`` or ``gas_leak`` events sounds the alarm for everyone at 0 s; with them,
  people wait for the first alarm that concerns them (a gas cloud over a building raises one for that building).
* ``space_untenable``: the space's cells cost :data:`UNTENABLE_COST_FACTOR` times their walking time in the
  navigation fields from then on (routes avoid smoke-logged rooms but still lead out of them).
* ``space_smoke``: people in a smoky space walk at ``speed × factor`` (``details.speed_factor``, from the
  visibility; :func:`twin.sim.smoke.smoke_speed_factor`).
* ``area_flooded``: like untenable, for the cells a flood makes impassable to people (deeper than 0.5 m).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from twin.errors import InputError
from twin.scenario.results import crowd_summary
from twin.scenario.schema import Scenario, check_against_city
from twin.sim.bus import Event, EventBus
from twin.sim.timeline import ModelComponent

log = logging.getLogger(__name__)

NOT_ALARMED_S = 1.0e9
"""Start time of people who have not heard an alarm yet (simulated seconds; far beyond any run)."""
UNTENABLE_COST_FACTOR = 20.0
SMOKE_UPDATE_S = 2.0
"""Simulated seconds between updates of walking speeds in smoke (people walk into and out of smoky spaces)."""
"""Walking-time multiplier of cells in untenable spaces (finite: people inside must still find the way out)."""


class CrowdPart(ModelComponent):
    """The crowd section of a scenario on the bus (see the module docstring)."""

    name = "crowd"

    def __init__(self, scenario: Scenario, city: Any, bus: EventBus) -> None:
        from twin.scenario.runner import (
            _crowd_space,
            _named_placement_areas,
            _reachable_test,
            _without_dead_ends,
        )
        from twin.sim.crowd import CrowdModel, exit_labels
        from twin.sim.population import build_population

        self.scenario = scenario
        space, regions = _crowd_space(scenario, city)
        check_against_city(scenario, city, exit_ids=set(space.exits["id"]) | set(exit_labels(space.exits)))
        check = space.validate(_named_placement_areas(scenario))
        regions, self.dead_ends = _without_dead_ends(scenario, space, regions, check.unreachable_cells)
        rng = np.random.default_rng(scenario.seed)
        population = build_population(
            scenario.crowd.groups,
            regions,
            rng,
            walkable_test=_reachable_test(space, check.unreachable_cells),
            source=scenario.source,
        )
        self.premovement = np.asarray(population["premovement"], dtype=np.float64)
        self.waits_for_alarm = any(e.type in ("alarm", "gas_leak") for e in scenario.events)
        start = np.full_like(self.premovement, NOT_ALARMED_S) if self.waits_for_alarm else self.premovement
        self.alarmed = np.full(len(start), not self.waits_for_alarm)
        self.space = space
        self.building = next((g.in_.building for g in scenario.crowd.groups if g.in_.building), None)
        self.model = CrowdModel(
            space,
            dict(population, premovement=start),
            model=scenario.crowd.model,
            dt_s=scenario.crowd.dt_s,
            seed=scenario.seed,
            record_every_s=scenario.outputs.trajectories_every_s,
            params=scenario.crowd.params,
            exit_choice_every_s=scenario.crowd.routing.exit_choice_every_s,
            stair_cost_factor=scenario.crowd.routing.stair_cost_factor,
            congestion_every_s=scenario.crowd.routing.congestion_every_s,
        )
        self.base_speed = self.model.speed.copy()
        self.hazard_cost = np.ones(space.walkable.shape, dtype=np.float64)
        self.speed_factor_of_space: dict[str, float] = {}
        self._next_speed_s = 0.0
        self._cells: dict[str, np.ndarray | None] = {}
        bus.subscribe("alarm", self._alarm)
        bus.subscribe("space_untenable", self._untenable)
        bus.subscribe("space_smoke", self._smoke)
        bus.subscribe("area_flooded", self._flooded)
        bus.subscribe("close_door", self._close_door)

    def step(self) -> None:
        """One crowd step; every :data:`SMOKE_UPDATE_S` the walking speeds follow people into and out of smoke."""
        super().step()
        if self.speed_factor_of_space and self.model.time_s + 1e-9 >= self._next_speed_s:
            self._apply_speeds()
            self._next_speed_s = self.model.time_s + SMOKE_UPDATE_S

    # -- events ----------------------------------------------------------------------------------------------
    def _alarm_scope(self, event: Event) -> np.ndarray:
        """(n,) bool: the people an alarm concerns (not yet alarmed)."""
        d = event.details
        buildings, areas = d.get("buildings"), d.get("areas")
        if not buildings and not areas:
            return ~self.alarmed
        scope = np.zeros(len(self.alarmed), dtype=bool)
        if buildings and self.building in buildings:
            scope[:] = True
        if areas:
            pos, lev = self.model.core.positions, self.model.core.levels
            cells = self.space.locate(pos, lev)
            for a in areas:
                try:
                    mask = self.space.area_cells(a)
                except KeyError:
                    continue
                ok = cells[:, 0] >= 0
                c = cells[ok]
                scope[np.flatnonzero(ok)[mask[c[:, 0], c[:, 1], c[:, 2]]]] = True
        return scope & ~self.alarmed

    def _alarm(self, event: Event) -> None:
        scope = self._alarm_scope(event)
        if not scope.any():
            return
        self.alarmed |= scope
        idx = np.flatnonzero(scope)
        start = max(event.t_s, self.model.time_s) + self.premovement[idx]
        self.model.core.set_start_time(self.model.ids[idx], start)
        log.info("t=%.1f s: alarm for %d people", event.t_s, idx.size)

    def _close_door(self, event: Event) -> None:
        """An exit closes (an area exit by id, or a building's door to the outside by name or GUID)."""
        d = event.details
        key = d.get("exit") or d.get("door")
        ex = self.space.exits
        hit = np.flatnonzero(
            (ex["id"].astype(str) == str(key)).to_numpy()
            | (ex["guid"].astype(str) == str(key)).to_numpy()
            | (ex["name"].astype(str) == str(key)).to_numpy()
        )
        for k in hit:
            n = self.model.close_exit(int(k))
            log.info("t=%.1f s: exit %s closed, %d people re-routed", event.t_s, key, n)

    def _space_cells(self, key: str) -> np.ndarray | None:
        """(L, ny, nx) bool cells of a crowd-space area by GUID (building spaces) or id; None if it has none."""
        if key not in self._cells:
            guids = self.space.areas["guid"].to_numpy() if "guid" in self.space.areas else np.array([])
            hit = np.flatnonzero(guids == key)
            try:
                self._cells[key] = self.space.area_cells(int(hit[0]) if hit.size else key)
            except KeyError:
                self._cells[key] = None
        return self._cells[key]

    @staticmethod
    def _key(event: Event) -> str:
        return str(event.details.get("guid") or event.details.get("space"))

    def _untenable(self, event: Event) -> None:
        cells = self._space_cells(self._key(event))
        if cells is None:
            return
        self.hazard_cost[cells] = np.maximum(self.hazard_cost[cells], UNTENABLE_COST_FACTOR)
        self.model.set_hazard_cost(self.hazard_cost)

    def _flooded(self, event: Event) -> None:
        cells = event.details.get("cells")
        if cells is None:
            return
        c = np.asarray(cells, dtype=np.int64).reshape(-1, 3)
        self.hazard_cost[c[:, 0], c[:, 1], c[:, 2]] = UNTENABLE_COST_FACTOR
        self.model.set_hazard_cost(self.hazard_cost)

    def _smoke(self, event: Event) -> None:
        sid = self._key(event)
        factor = float(event.details.get("speed_factor", 1.0))
        if not (math.isfinite(factor) and 0 < factor <= 1):
            raise ValueError(f"space_smoke event for {sid!r}: speed_factor must be in (0, 1], got {factor}")
        self.speed_factor_of_space[sid] = factor
        self._apply_speeds()

    def _apply_speeds(self) -> None:
        """Desired speed = base speed × the factor of the smokiest space each person stands in."""
        factor = np.ones(len(self.base_speed))
        pos, lev = self.model.core.positions, self.model.core.levels
        cells = self.space.locate(pos, lev)
        ok = cells[:, 0] >= 0
        for sid, f in self.speed_factor_of_space.items():
            mask = self._space_cells(sid)
            if mask is None or f >= 1.0:
                continue
            inside = np.zeros(len(factor), dtype=bool)
            c = cells[ok]
            inside[np.flatnonzero(ok)] = mask[c[:, 0], c[:, 1], c[:, 2]]
            factor[inside] = np.minimum(factor[inside], f)
        self.model.core.set_desired_speed(self.model.ids, self.base_speed * factor)

    # -- results ---------------------------------------------------------------------------------------------
    def finish(self, summary: dict[str, Any], outputs: dict[str, Any]) -> None:
        model, core = self.model, self.model.core
        crowd = crowd_summary(
            agents=model.n_agents,
            exit_index=core.exit_index,
            exit_time=core.exit_time,
            exit_ids=model.exit_ids,
            simulated_s=model.time_s,
            density_max_ppm2=model.kpis.max_density_ppm2 or 0.0,
        )
        if len(self.space.stairs):
            crowd["stairs"] = model.stair_usage()
        if self.dead_ends:
            crowd["unreachable_areas"] = self.dead_ends
        if self.waits_for_alarm:
            crowd["not_alarmed"] = int(np.count_nonzero(~self.alarmed))
        # input that was left out or read differently than drawn (twin run prints them)
        if self.space.warnings:
            crowd["warnings"] = list(self.space.warnings)
        summary["crowd"] = crowd
        outputs.update(trajectories=model.trajectories, density=model.density)
        outputs["kpis"].append(model.kpis)
        outputs["events"].append(model.events)


def check_crowd_events(scenario: Scenario) -> None:
    """Alarm scopes name areas the scenario has (buildings are checked against the city)."""
    areas = {a.id for a in (scenario.city.areas if scenario.city else [])}
    for i, e in enumerate(scenario.events):
        if e.type == "alarm" and e.areas:
            for j, a in enumerate(e.areas):
                if a not in areas:
                    raise InputError(
                        scenario.source,
                        f"events[{i}].areas[{j}]: no area {a!r} in city.areas ({sorted(areas)})",
                    )
