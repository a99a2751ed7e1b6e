"""``run_scenario``: load a scenario, build its city, run its parts on one timeline, write the results folder.

The parts live in their own modules (:mod:`twin.scenario.crowd_part`, :mod:`twin.scenario.traffic_part`); the
crowd-space helpers below are shared with the crowd part.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.results import events_table
from twin.scenario.schema import Scenario

log = logging.getLogger(__name__)


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

    Every section the scenario has becomes a part on one timeline (:class:`twin.scenario.coupled_run.CoupledRun`):
    the crowd, traffic, hazards and the emergency response, each stepping at its own rate and coupled only
    through the event bus (:mod:`twin.sim.bus`), which also carries the scenario's events.
    """
    from twin.scenario.coupled_run import CoupledRun

    run = CoupledRun(scenario)
    run.run(progress=progress)
    return run.finish(out_dir)


def _merged_events(logs: list[Any]) -> pd.DataFrame:
    frames = [log.to_frame() if hasattr(log, "to_frame") else log for log in logs]
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return events_table([])
    return pd.concat(frames, ignore_index=True).sort_values("t_s", kind="stable").reset_index(drop=True)


def default_out_dir(scenario_path: str | os.PathLike[str]) -> Path:
    return Path("results") / Path(scenario_path).stem
