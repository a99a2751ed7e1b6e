"""Drill mode: run a scenario live (:class:`~twin.scenario.coupled_run.CoupledRun`) in the viewer and let an
operator act on the city by picking: start a fire in a space, close a door, close or open a road, burst a pipe,
start a gas leak, dispatch units from a station.

Every action becomes a scenario event injected through the run's event bus — the same path scripted events take —
and is logged; :meth:`Drill.save` writes the scenario with the injected events (which replays the drill exactly)
and the action log beside it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from twin.errors import InputError

log = logging.getLogger(__name__)

ACTIONS = ("fire", "close_door", "close_road", "open_road", "pipe_burst", "gas_leak", "dispatch")
"""What an operator can do by picking a point."""
KEYS = {
    "f": "fire",
    "d": "close_door",
    "r": "close_road",
    "o": "open_road",
    "b": "pipe_burst",
    "g": "gas_leak",
    "s": "dispatch",
}
"""Keyboard keys of the interactive window choosing the action the next pick performs."""

PICK_RADIUS_M = {
    "close_door": 5.0,
    "close_road": 25.0,
    "open_road": 25.0,
    "pipe_burst": 40.0,
    "dispatch": 150.0,
}
"""How far from the picked point (metres) a door, road, pipe or station may be."""


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (m) from point ``p`` (2,) to segments ``a``-``b`` ((n, 2) each)."""
    ab = b - a
    denom = np.einsum("ij,ij->i", ab, ab)
    t = np.where(denom > 0, np.einsum("ij,ij->i", p - a, ab) / np.where(denom > 0, denom, 1.0), 0.0)
    q = a + np.clip(t, 0.0, 1.0)[:, None] * ab
    return np.hypot(*(p - q).T)


def _polyline_distances(p: np.ndarray, shapes: list[np.ndarray]) -> np.ndarray:
    """Distance (m) from ``p`` (2,) to each polyline of ``shapes`` ((n_i, 2) each)."""
    out = np.full(len(shapes), np.inf)
    owners, a_parts, b_parts = [], [], []
    for i, s in enumerate(shapes):
        s = np.asarray(s, dtype=np.float64).reshape(-1, 2)
        if len(s) >= 2:
            a_parts.append(s[:-1])
            b_parts.append(s[1:])
            owners.append(np.full(len(s) - 1, i))
    if owners:
        d = _segment_distance(p, np.vstack(a_parts), np.vstack(b_parts))
        np.minimum.at(out, np.concatenate(owners), d)
    return out


class Targets:
    """Finds what a picked point means in a city: the space, door, road edge, pipe link or station near it."""

    def __init__(self, city: Any, scenario: Any):
        self.city = city
        self.scenario = scenario

    def space_at(self, point: np.ndarray) -> tuple[str, str]:
        """(building id, space name) of the space whose footprint holds (x, y) on the storey at or below z."""
        x, y, z = (float(v) for v in point[:3])
        best: tuple[float, str, str] | None = None
        for bid, b in self.city.buildings.items():
            sp = b.spaces
            for name, guid, zf, fp in zip(sp["name"], sp["guid"], sp["z_m"], sp["footprint"], strict=True):
                if fp is None or not shapely.contains_xy(fp, x, y):
                    continue
                dz = z - float(zf)
                score = dz if dz >= -0.5 else 1e6 - dz  # the floor at or just below the point first
                if best is None or score < best[0]:
                    best = (score, bid, str(name or guid))
        if best is None:
            raise InputError(None, f"no space of a building at ({x:.1f}, {y:.1f}, {z:.1f}) m")
        return best[1], best[2]

    def door_at(self, point: np.ndarray) -> tuple[str, str]:
        """(building id, door GUID) of the door nearest the point (within :data:`PICK_RADIUS_M`)."""
        best: tuple[float, str, str] | None = None
        for bid, b in self.city.buildings.items():
            d = b.doors
            if not len(d):
                continue
            xyz = d[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64)
            dist = np.linalg.norm(xyz - np.asarray(point[:3], dtype=np.float64), axis=1)
            k = int(np.argmin(dist))
            if best is None or dist[k] < best[0]:
                best = (float(dist[k]), bid, str(d["guid"].iloc[k]))
        if best is None or best[0] > PICK_RADIUS_M["close_door"]:
            raise InputError(None, f"no door within {PICK_RADIUS_M['close_door']} m of the picked point")
        return best[1], best[2]

    def road_at(self, point: np.ndarray, *, action: str = "close_road") -> str:
        """Id of the road edge (not a junction-internal one) nearest (x, y)."""
        roads = self.city.roads
        if roads is None or not len(roads.edges):
            raise InputError(None, "the city has no roads")
        ids = roads.edges["id"].astype(str).to_numpy()
        shapes = list(roads.edges["shape"])
        dist = _polyline_distances(np.asarray(point[:2], dtype=np.float64), shapes)
        dist[np.char.startswith(ids.astype(str), ":")] = np.inf
        k = int(np.argmin(dist))
        if not np.isfinite(dist[k]) or dist[k] > PICK_RADIUS_M[action]:
            raise InputError(None, f"no road within {PICK_RADIUS_M[action]} m of the picked point")
        return str(ids[k])

    def pipe_at(self, point: np.ndarray) -> tuple[str, str]:
        """(network id, link name) of the water pipe nearest (x, y)."""
        from twin.viewer.geometry import pipe_polylines

        best: tuple[float, str, str] | None = None
        for net_id, net in self.city.pipes.items():
            if net.kind_of_network != "water" or not len(net.links):
                continue
            pts, lines = pipe_polylines(net)
            dist = _polyline_distances(
                np.asarray(point[:2], dtype=np.float64), [pts[line, :2] for line in lines]
            )
            k = int(np.argmin(dist))
            if best is None or dist[k] < best[0]:
                best = (float(dist[k]), net_id, str(net.links["name"].iloc[k]))
        if best is None or best[0] > PICK_RADIUS_M["pipe_burst"]:
            raise InputError(
                None, f"no water pipe within {PICK_RADIUS_M['pipe_burst']} m of the picked point"
            )
        return best[1], best[2]

    def station_at(self, point: np.ndarray) -> str:
        """Id of the response station nearest (x, y)."""
        response = self.scenario.response
        if response is None:
            raise InputError(None, "the scenario has no response section (stations)")
        xy = np.array([st.position[:2] for st in response.stations], dtype=np.float64)
        dist = np.hypot(*(xy - np.asarray(point[:2], dtype=np.float64)).T)
        k = int(np.argmin(dist))
        if dist[k] > PICK_RADIUS_M["dispatch"]:
            raise InputError(None, f"no station within {PICK_RADIUS_M['dispatch']} m of the picked point")
        return str(response.stations[k].id)


class Drill:
    """A live run in a scene, driven by picks.

    Parameters
    ----------
    scenario : a :class:`~twin.scenario.schema.Scenario` or scenario file (run with ``live=True``: every hazard
        the city can host is ready to start).
    scene : a :class:`~twin.viewer.scene.CityScene` of the run's city to draw into; made off-screen when omitted.
    window_size : the scene's size when it is made here.
    burst_area_m2 : orifice area of a picked pipe burst.
    """

    def __init__(
        self,
        scenario: Any,
        *,
        scene: Any = None,
        window_size: tuple[int, int] = (1280, 720),
        off_screen: bool = True,
        burst_area_m2: float = 0.05,
        fire_growth: str = "fast",
    ):
        from twin.scenario.coupled_run import CoupledRun

        self.run = CoupledRun(scenario, live=True)
        self.targets = Targets(self.run.city, self.run.scenario)
        self.burst_area_m2 = float(burst_area_m2)
        self.fire_growth = fire_growth
        self.mode = "fire"
        self.actions: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self._count = 0
        if scene is None:
            from twin.viewer.gl import check_gl
            from twin.viewer.scene import CityScene

            check_gl()
            scene = CityScene(self.run.city, window_size=window_size, off_screen=off_screen)
        self.scene = scene
        self._add_points()
        scene.add_legend()
        self.update_scene()

    # -- scene ---------------------------------------------------------------------------------------------------
    def _add_points(self) -> None:
        from twin.viewer.frames import AGENT_STATES
        from twin.viewer.scene import AGENT_COLORS

        crowd = self.run.parts.get("crowd")
        if crowd is not None:
            self.scene.add_points(
                "agents",
                crowd.model.n_agents,
                cmap=list(AGENT_COLORS),
                clim=(-0.5, len(AGENT_COLORS) - 0.5),
                legend=[(f"person {s}", c) for s, c in zip(AGENT_STATES, AGENT_COLORS, strict=False)],
            )
        traffic = self.run.parts.get("traffic")
        if traffic is not None:
            self.scene.add_points(
                "vehicles",
                len(traffic.model.core.state) + 256,  # room for units inserted by dispatches
                cmap="plasma",
                clim=(0.0, 15.0),
                scalar_bar="vehicle speed (m/s)",
            )

    def update_scene(self) -> None:
        """Draw the run's current state: agents, vehicles, smoke, closed roads, KPI text (in place)."""
        from twin.viewer.geometry import ground_z

        run, scene = self.run, self.scene
        crowd = run.parts.get("crowd")
        if crowd is not None:
            c = crowd.model.core
            state = np.asarray(c.state)
            keep = state != 3
            pos = np.asarray(c.positions)[keep]
            xyz = np.column_stack([pos, np.asarray(c.z)[keep]]).astype(np.float32)
            scene.points["agents"].update(xyz, state[keep].astype(np.float32))
        traffic = run.parts.get("traffic")
        if traffic is not None:
            core = traffic.model.core
            running = np.flatnonzero(np.asarray(core.state) == 1)
            xy = np.asarray(core.positions())[running]
            z = ground_z(run.city.terrain, xy[:, 0], xy[:, 1]) + 1.0
            scene.points["vehicles"].update(
                np.column_stack([xy, z]).astype(np.float32),
                np.asarray(core.speed)[running].astype(np.float32),
            )
        smoke = run.parts.get("smoke")
        if smoke is not None and getattr(smoke, "models", None):
            import pandas as pd

            tables = [m.state_table().assign(building=bid) for bid, m in smoke.models.items()]
            scene.set_smoke(pd.concat(tables, ignore_index=True))
        scene.set_closed_roads(self.closed_roads())
        lines = [f"DRILL  t = {run.time_s:6.0f} s   action: {self.mode}"]
        if crowd is not None:
            c = crowd.model.core
            lines.append(
                f"evacuated {int(np.count_nonzero(np.asarray(c.state) == 3))} / {crowd.model.n_agents}"
            )
        lines.append(f"actions {len(self.actions)}")
        lines += self.messages[-2:]
        scene.set_kpi_text("\n".join(lines))

    def closed_roads(self) -> set[str]:
        """Edges closed by scenario or drill events up to now (close_road minus open_road)."""
        closed: set[str] = set()
        for e in self.run.scenario.events:
            if e.at_s > self.run.time_s + 1e-9 or e.type not in ("close_road", "open_road"):
                continue
            if e.type == "close_road":
                closed.update(e.edge_ids)
            else:
                closed.difference_update(e.edge_ids)
        return closed

    # -- actions -------------------------------------------------------------------------------------------------
    def event_for(self, action: str, point: Any, *, incident: str | None = None) -> dict[str, Any]:
        """The scenario event (a dict) that ``action`` at the picked ``point`` (x, y, z metres) means."""
        p = np.asarray(point, dtype=np.float64).reshape(-1)
        if p.shape[0] == 2:
            p = np.append(p, 0.0)
        if action not in ACTIONS:
            raise InputError(None, f"drill action must be one of {list(ACTIONS)}, got {action!r}")
        self._count += 1
        eid = f"drill-{self._count}"
        if action == "fire":
            building, space = self.targets.space_at(p)
            return {
                "type": "fire",
                "id": eid,
                "building": building,
                "space": space,
                "growth": self.fire_growth,
            }
        if action == "close_door":
            building, door = self.targets.door_at(p)
            return {"type": "close_door", "id": eid, "building": building, "door": door}
        if action in ("close_road", "open_road"):
            return {"type": action, "id": eid, "edge": self.targets.road_at(p, action=action)}
        if action == "pipe_burst":
            network, link = self.targets.pipe_at(p)
            return {
                "type": "pipe_burst",
                "id": eid,
                "network": network,
                "link": link,
                "area_m2": self.burst_area_m2,
            }
        if action == "gas_leak":
            return {"type": "gas_leak", "id": eid, "position": [float(p[0]), float(p[1])]}
        station = self.targets.station_at(p)
        target = incident or self.last_incident()
        if target is None:
            raise InputError(None, "dispatch: there is no incident to send units to yet (start one first)")
        return {"type": "dispatch", "id": eid, "station": station, "incident": target}

    def last_incident(self) -> str | None:
        """Id of the latest fire, pipe burst or gas leak event that has one."""
        for e in reversed(self.run.scenario.events):
            if e.type in ("fire", "pipe_burst", "gas_leak") and e.id:
                return e.id
        return None

    def act(self, action: str, point: Any, **kwargs: Any) -> Any:
        """Perform ``action`` at ``point``: build its event, inject it into the run now, log it; returns the
        validated event. A pick that means nothing (no space there…) raises :class:`InputError`."""
        event = self.event_for(action, point, **kwargs)
        injected = self.run.inject(event)
        entry = {
            "wall_time": time.time(),
            "t_s": float(injected.at_s),
            "action": action,
            "point": [float(v) for v in np.asarray(point, dtype=np.float64).reshape(-1)],
            "event": injected.model_dump(mode="json", exclude_none=True),
            "events_index": len(self.run.scenario.events) - 1,
        }
        self.actions.append(entry)
        self.messages.append(f"{action} at {injected.at_s:.0f} s: {self._describe(entry['event'])}")
        log.info("drill action %s", entry)
        return injected

    @staticmethod
    def _describe(event: dict[str, Any]) -> str:
        keys = ("space", "door", "edge", "link", "station", "position")
        return ", ".join(f"{k} {event[k]}" for k in keys if k in event)

    def on_pick(self, point: Any) -> Any:
        """Pick handler: perform the current :attr:`mode` at the picked world point. Errors become messages (the
        window stays open)."""
        try:
            return self.act(self.mode, point)
        except InputError as exc:
            self.messages.append(f"{self.mode}: {exc}")
            log.warning("drill pick: %s", exc)
            return None
        finally:
            self.update_scene()

    def pick_screen(self, x_px: float, y_px: float) -> Any:
        """Pick the surface at display position (x, y) pixels (origin lower left) and act on it like a click."""
        from vtkmodules.vtkRenderingCore import vtkCellPicker

        self.scene.render()
        picker = vtkCellPicker()
        picker.SetTolerance(0.0005)
        if not picker.Pick(float(x_px), float(y_px), 0.0, self.scene.plotter.renderer):
            self.messages.append("nothing under the pointer")
            return None
        return self.on_pick(np.array(picker.GetPickPosition()))

    def advance(self, dt_s: float) -> float:
        """Run ``dt_s`` simulated seconds further and redraw; returns the time reached."""
        t = self.run.advance(self.run.time_s + float(dt_s))
        self.update_scene()
        return t

    # -- saving --------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the replay scenario (YAML: the scenario with every injected event) to ``path`` and the action log
        to ``<path stem>.actions.json``; returns the scenario path."""
        import yaml

        from twin.city.layer import write_json

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(yaml.safe_dump(self.run.replay_scenario(), sort_keys=False), encoding="utf-8")
        os.replace(tmp, target)
        write_json({"scenario": str(target), "actions": self.actions}, target.with_suffix(".actions.json"))
        return target

    def finish(self, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
        """Run to the end, write the results folder and the replay scenario (``drill_scenario.yaml``) into it."""
        self.run.run(progress=False)
        summary = self.run.finish(out_dir)
        self.save(Path(out_dir) / "drill_scenario.yaml")
        return summary

    # -- window --------------------------------------------------------------------------------------------------
    def show(self, *, step_s: float = 2.0) -> None:
        """Open the drill window: keys choose the action (f fire, d door, r road, o open road, b burst, g gas, s
        dispatch), a right click performs it at the picked surface point, space pauses; blocks until closed."""
        plotter = self.scene.plotter
        state = {"playing": True}

        def set_mode(m: str) -> None:
            self.mode = m
            self.update_scene()
            plotter.render()

        for key, action in KEYS.items():
            plotter.add_key_event(key, lambda a=action: set_mode(a))
        plotter.add_key_event("space", lambda: state.update(playing=not state["playing"]))
        plotter.enable_surface_point_picking(
            callback=lambda p: self.on_pick(p), show_point=False, show_message=False, left_clicking=False
        )

        def tick(_step: int) -> None:
            if state["playing"] and self.run.running:
                self.advance(step_s)
                plotter.render()

        plotter.add_timer_event(max_steps=10**9, duration=200, callback=tick)
        plotter.show(title=f"twin drill: {self.run.scenario.name}")
