"""``run_scenario``: load a scenario, build its city and crowd space, run the models, write the results folder.

Crowd scenarios run now; traffic and hazard sections arrive with their models (a scenario that asks for them
gets a clear error rather than a silent partial run).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.results import crowd_summary, events_table, write_results
from twin.scenario.schema import Scenario, build_city, check_against_city, load_scenario

log = logging.getLogger(__name__)

SUPPORTED_EVENTS = {"alarm", "close_road", "open_road"}


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

    The crowd and the traffic sections run when the scenario has them (each on its own clock until the coupled
    timeline arrives); ``close_road``/``open_road`` events act on the traffic run, ``alarm`` on the crowd's
    pre-movement clocks.
    """
    t_wall = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    unsupported = sorted({e.type for e in scenario.events} - SUPPORTED_EVENTS)
    if unsupported:
        raise InputError(
            scenario.source, f"events: {', '.join(unsupported)} events are not simulated in this version yet"
        )
    if scenario.crowd is None and scenario.traffic is None:
        raise InputError(
            scenario.source, "nothing to simulate: the scenario has neither a crowd nor a traffic section"
        )
    city = build_city(scenario)
    summary: dict[str, Any] = {}
    outputs: dict[str, Any] = {"tables": {}, "kpis": []}
    simulated = 0.0
    if scenario.crowd is not None:
        simulated = max(simulated, _run_crowd(scenario, city, summary, outputs, progress=progress))
    if scenario.traffic is not None:
        simulated = max(simulated, _run_traffic(scenario, city, summary, outputs, progress=progress))
    kpis = [k.to_frame() if hasattr(k, "to_frame") else k for k in outputs["kpis"]]
    return write_results(
        out_dir,
        scenario_resolved=scenario.model_dump_resolved(),
        summary=summary,
        wall_time_s=time.perf_counter() - t_wall,
        simulated_s=simulated,
        trajectories=outputs.get("trajectories"),
        kpis=pd.concat(kpis, ignore_index=True) if kpis else None,
        events=_merged_events(outputs.get("events", [])),
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


def _run_crowd(
    scenario: Scenario, city: Any, summary: dict[str, Any], outputs: dict[str, Any], *, progress: bool
) -> float:
    """The crowd section: builds the space and population, runs :class:`CrowdModel`; returns simulated seconds."""
    from twin.sim.crowd import CrowdModel, exit_labels
    from twin.sim.population import build_population

    space, regions = _crowd_space(scenario, city)
    check_against_city(scenario, city, exit_ids=set(space.exits["id"]) | set(exit_labels(space.exits)))
    check = space.validate(_named_placement_areas(scenario))
    regions, dead_ends = _without_dead_ends(scenario, space, regions, check.unreachable_cells)
    rng = np.random.default_rng(scenario.seed)
    population = build_population(
        scenario.crowd.groups,
        regions,
        rng,
        walkable_test=_reachable_test(space, check.unreachable_cells),
        source=scenario.source,
    )
    alarms = [e.at_s for e in scenario.events if e.type == "alarm"]
    alarm_s = min(alarms) if alarms else 0.0
    population = dict(population, premovement=population["premovement"] + alarm_s)
    model = CrowdModel(
        space,
        population,
        model=scenario.crowd.model,
        dt_s=scenario.crowd.dt_s,
        seed=scenario.seed,
        record_every_s=scenario.outputs.trajectories_every_s,
        params=scenario.crowd.params,
        exit_choice_every_s=scenario.crowd.routing.exit_choice_every_s,
        stair_cost_factor=scenario.crowd.routing.stair_cost_factor,
        congestion_every_s=scenario.crowd.routing.congestion_every_s,
    )
    for t in alarms:
        model.events.add(t, "alarm", "scenario", {})
    model.run(scenario.duration_s, progress=progress)
    core = model.core
    crowd = crowd_summary(
        agents=model.n_agents,
        exit_index=core.exit_index,
        exit_time=core.exit_time,
        exit_ids=model.exit_ids,
        simulated_s=model.time_s,
        density_max_ppm2=model.kpis.max_density_ppm2 or 0.0,
    )
    if len(space.stairs):
        crowd["stairs"] = model.stair_usage()
    if dead_ends:
        crowd["unreachable_areas"] = dead_ends
    summary["crowd"] = crowd
    outputs.update(trajectories=model.trajectories, density=model.density)
    outputs["kpis"].append(model.kpis)
    outputs.setdefault("events", []).append(model.events)
    return model.time_s


def _run_traffic(
    scenario: Scenario, city: Any, summary: dict[str, Any], outputs: dict[str, Any], *, progress: bool
) -> float:
    """The traffic section: compiles the road network, loads the demand, runs :class:`TrafficModel` with the
    scenario's road closures; returns simulated seconds."""
    from twin.scenario.report_traffic import TrafficReport, edge_shapes
    from twin.sim.demand import load_demand
    from twin.sim.traffic import TrafficModel
    from twin.sim.traffic_net import compile_network, with_signal_control

    if city.roads is None:
        raise InputError(scenario.source, "traffic: needs city.roads (a road network to drive on)")
    network = with_signal_control(compile_network(city.roads), scenario.traffic.signals)
    demand = load_demand(scenario.traffic.demand, network, seed=scenario.seed, source=scenario.source)
    closures = _road_closures(scenario, network)
    model = TrafficModel(
        network,
        demand,
        dt_s=scenario.traffic.dt_s,
        seed=scenario.seed,
        record_every_s=max(scenario.outputs.trajectories_every_s, scenario.traffic.dt_s or 1.0),
        reroute_every_s=scenario.traffic.reroute_every_s,
        closures=closures,
    )
    model.run(scenario.duration_s, progress=progress)
    summary["traffic"] = model.summary()
    outputs["tables"].update(
        traffic_fcd=model.fcd.to_arrow() if model.fcd is not None else None,
        traffic_trips=model.trips(),
        traffic_edges=model.edge_table(),
    )
    outputs["tables"] = {k: v for k, v in outputs["tables"].items() if v is not None}
    ids, shapes, speed = edge_shapes(network, city.roads)
    outputs["traffic_report"] = TrafficReport(
        trips=outputs["tables"]["traffic_trips"],
        edges=outputs["tables"]["traffic_edges"],
        edge_ids=ids,
        shapes=shapes,
        free_speed=speed,
    )
    outputs["kpis"].append(model.kpi_table())
    outputs.setdefault("events", []).append(model.events)
    return model.time_s


def _road_closures(scenario: Scenario, network: Any) -> list[tuple[float, list[int], bool]]:
    """``(at_s, edge rows, closed)`` of the scenario's close_road / open_road events; unknown edges are errors
    naming the event."""
    out = []
    for i, e in enumerate(scenario.events):
        if e.type not in ("close_road", "open_road"):
            continue
        ids = list(e.edges or []) if getattr(e, "edges", None) else [e.edge]
        rows = []
        for j, eid in enumerate(ids):
            row = network.edge_row.get(str(eid))
            if row is None:
                field = f"events[{i}].edges[{j}]" if getattr(e, "edges", None) else f"events[{i}].edge"
                raise InputError(scenario.source, f"{field}: no edge {eid!r} in the road network")
            rows.append(int(row))
        out.append((float(e.at_s), rows, e.type == "close_road"))
    return out


def default_out_dir(scenario_path: str | os.PathLike[str]) -> Path:
    return Path("results") / Path(scenario_path).stem
