"""``run_scenario``: load a scenario, build its city, run its parts on one timeline, write the results folder.

The parts live in their own modules (:mod:`twin.scenario.crowd_part`, :mod:`twin.scenario.traffic_part`); the
crowd-space helpers below are shared with the crowd part.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.city.layer import write_arrays
from twin.errors import InputError
from twin.scenario.results import events_table, write_results
from twin.scenario.schema import Scenario, build_city, load_scenario

log = logging.getLogger(__name__)

SUPPORTED_EVENTS = {
    "alarm",
    "close_road",
    "open_road",
    "fire",
    "close_door",
    "dispatch",
    "pipe_burst",
    "gas_leak",
}


def _crowd_space(scenario: Scenario, city: Any) -> tuple[Any, dict[str, tuple[Any, int]]]:
    """The crowd space of the scenario and the placement regions (name → (polygon, level)) of its groups."""
    from twin.sim.crowd_space import CrowdSpace

    crowd = scenario.crowd
    areas = scenario.city.areas if scenario.city else []
    buildings = sorted({g.in_.building for g in crowd.groups if g.in_.building})
    if areas and buildings:
        raise InputError(
            scenario.source,
            "crowd.groups: a crowd walks either in city.areas or in one building so far, not both",
        )
    if len(buildings) > 1:
        raise InputError(
            scenario.source, f"crowd.groups: a crowd walks in one building so far, got {buildings}"
        )
    if buildings:
        building = city.buildings[buildings[0]]
        space = CrowdSpace.from_building(building, cell_size=crowd.cell_size_m)
        storeys = space.areas[space.areas["kind"] == "storey"]
        regions = {f"{building.id}/{row.id}": (row.polygon, int(row.level)) for row in storeys.itertuples()}
        return space, regions
    if not areas:
        raise InputError(
            scenario.source, "crowd: needs walkable geometry: city.areas or a building in city.buildings"
        )
    space = CrowdSpace.from_areas(
        [
            {"id": a.id, "walkable": a.walkable, "z": a.z, "exits": [e.model_dump() for e in a.exits]}
            for a in areas
        ],
        cell_size=crowd.cell_size_m,
        source=scenario.source,
        stairs=[st.model_dump() for st in scenario.city.stairs],
        stairs_path="city.stairs",
    )
    named = space.areas[space.areas["kind"] == "area"]
    regions = {row.id: (row.polygon, int(row.level)) for row in named.itertuples()}
    return space, regions


def _named_placement_areas(scenario: Scenario) -> list[str]:
    """The crowd-space areas groups name explicitly (an area, or a building's listed storeys): every part of
    them must reach an exit."""
    names: set[str] = set()
    for g in scenario.crowd.groups:
        if g.in_.area:
            names.add(g.in_.area)
        elif g.in_.building and g.in_.storeys:
            names.update(g.in_.storeys)
    return sorted(names)


def _without_dead_ends(
    scenario: Scenario, space: Any, regions: dict[str, tuple[Any, int]], unreachable: np.ndarray
) -> tuple[dict[str, tuple[Any, int]], list[dict[str, Any]]]:
    """Drop the storeys no exit can be reached from out of the regions of building-wide groups.

    A group ``in: {building: b}`` fills the building's occupiable space: walkable parts with no way out (a
    roof without access, a room without a door) hold nobody, and each is reported (a warning and a row of
    the returned list: ``{area, level, unreachable_m2, area_m2}``) so a modelling gap is not silent. Storeys a
    group names explicitly were checked strictly before (an error if any part has no way out).
    """
    if not any(g.in_.building and not g.in_.storeys for g in scenario.crowd.groups):
        return regions, []
    h2 = space.cell_size**2
    dead: list[dict[str, Any]] = []
    kept = dict(regions)
    storeys = space.areas[space.areas["kind"] == "storey"]
    for row in storeys.itertuples():
        cells = space.area_cells(row.id)
        bad = int((cells & unreachable).sum())
        if not bad:
            continue
        total = int(cells.sum())
        dead.append(
            {
                "area": str(row.id),
                "level": space.level_names[int(row.level)],
                "unreachable_m2": round(bad * h2, 2),
                "area_m2": round(total * h2, 2),
            }
        )
        log.warning(
            "%.1f m² of storey %r (of %.1f m²) cannot reach any exit; building-wide groups place nobody there",
            bad * h2,
            row.id,
            total * h2,
        )
        if bad == total:
            kept = {k: v for k, v in kept.items() if not k.endswith(f"/{row.id}")}
    return kept, dead


def _reachable_test(space: Any, unreachable: np.ndarray) -> Any:
    """``(points (k, 2), level) → (k,) bool``: walkable cells from which an exit can be reached."""

    def test(points: np.ndarray, level: int) -> np.ndarray:
        pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
        cells = space.locate(pts, np.full(len(pts), int(level), dtype=np.int32))
        inside = cells[:, 0] >= 0
        ok = np.zeros(len(pts), dtype=bool)
        c = cells[inside]
        ok[inside] = (space.walkable[c[:, 0], c[:, 1], c[:, 2]] > 0) & ~unreachable[c[:, 0], c[:, 1], c[:, 2]]
        return ok

    return test


def run_scenario(
    scenario: Scenario | str | os.PathLike[str], out_dir: str | os.PathLike[str], *, progress: bool = True
) -> dict[str, Any]:
    """Run ``scenario`` (a file or a loaded :class:`Scenario`) and write its results folder; returns the summary.

    Every section the scenario has becomes a part on one timeline (:class:`twin.sim.timeline.CoupledModel`):
    the crowd, traffic, hazards and the emergency response, each stepping at its own rate and coupled only
    through the event bus (:mod:`twin.sim.bus`), which also carries the scenario's events.
    """
    from twin.scenario.crowd_part import CrowdPart, check_crowd_events
    from twin.scenario.fire_part import FirePart
    from twin.scenario.gas_part import GasPart
    from twin.scenario.response_part import ResponsePart
    from twin.scenario.traffic_part import TrafficPart
    from twin.scenario.water_part import WaterPart
    from twin.sim.bus import EventBus
    from twin.sim.timeline import CoupledModel

    t_wall = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    unsupported = sorted({e.type for e in scenario.events} - SUPPORTED_EVENTS)
    if unsupported:
        raise InputError(
            scenario.source, f"events: {', '.join(unsupported)} events are not simulated in this version yet"
        )
    hazards = {"fire", "pipe_burst", "gas_leak"}
    if (
        scenario.crowd is None
        and scenario.traffic is None
        and not any(e.type in hazards for e in scenario.events)
    ):
        raise InputError(
            scenario.source,
            "nothing to simulate: the scenario has no crowd or traffic section and no fire, pipe_burst or gas_leak "
            "event",
        )
    check_crowd_events(scenario)
    city = build_city(scenario)
    bus = EventBus()
    for i, e in enumerate(scenario.events):
        details = e.model_dump(mode="json", exclude_none=True, exclude={"at_s", "type"})
        bus.publish(e.at_s, e.type, "scenario", {"index": i, **details})
    parts: list[Any] = []
    t_build = time.perf_counter()
    if scenario.crowd is not None:
        parts.append(CrowdPart(scenario, city, bus))
    if scenario.traffic is not None:
        parts.append(TrafficPart(scenario, city, bus))
        if scenario.response is not None:
            parts.append(ResponsePart(scenario, city, bus, parts[-1]))
    listeners: list[Any] = []  # parts that act on events only (no steps of their own)
    if any(e.type == "fire" for e in scenario.events):
        parts.append(FirePart(scenario, city, bus))
    if any(e.type == "pipe_burst" for e in scenario.events):
        parts.append(WaterPart(scenario, city, bus))
    if any(e.type == "gas_leak" for e in scenario.events):
        listeners.append(GasPart(scenario, city, bus))
    build_s = time.perf_counter() - t_build
    model = CoupledModel(parts, bus, duration_s=scenario.duration_s, seed=scenario.seed)
    model.run(progress=progress)
    summary: dict[str, Any] = {}
    outputs: dict[str, Any] = {"tables": {}, "kpis": [], "events": [bus.log], "arrays": {}}
    for part in (*parts, *listeners):
        part.finish(summary, outputs)
    summary["timing"] = {
        "build_s": round(build_s, 3),
        "model_wall_s": {k: round(v, 3) for k, v in model.wall_s.items()},
        "model_steps": dict(model.steps_of),
    }
    kpis = [k.to_frame() if hasattr(k, "to_frame") else k for k in outputs["kpis"]]
    out = Path(out_dir)
    for stem, arrays in outputs["arrays"].items():
        write_arrays(arrays, out / f"{stem}.npz")
    return write_results(
        out_dir,
        scenario_resolved=scenario.model_dump_resolved(),
        summary=summary,
        wall_time_s=time.perf_counter() - t_wall,
        simulated_s=model.simulated_s,
        trajectories=outputs.get("trajectories"),
        kpis=pd.concat(kpis, ignore_index=True) if kpis else None,
        events=_merged_events(outputs["events"]),
        density=outputs.get("density"),
        tables=outputs["tables"],
        report=scenario.outputs.report,
        traffic_report=outputs.get("traffic_report"),
    )


def _merged_events(logs: list[Any]) -> pd.DataFrame:
    frames = [log.to_frame() if hasattr(log, "to_frame") else log for log in logs]
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return events_table([])
    return pd.concat(frames, ignore_index=True).sort_values("t_s", kind="stable").reset_index(drop=True)


def default_out_dir(scenario_path: str | os.PathLike[str]) -> Path:
    return Path("results") / Path(scenario_path).stem
