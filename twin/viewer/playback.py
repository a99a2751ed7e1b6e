"""Playback of a results folder in a :class:`~twin.viewer.scene.CityScene`: frames by time, in-place point
updates, the KPI overlay and (in a window) a time slider, play/pause, speed and layer toggles.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from twin.viewer.frames import AGENT_STATES, ResultsData, check_results_dir, load_results
from twin.viewer.scene import AGENT_COLORS, CityScene

log = logging.getLogger(__name__)


def gas_zones(data: ResultsData, city: Any) -> list[tuple[float, float | None, Any]]:
    """The hazard zones of the scenario's ``gas_leak`` events as ``(start_s, end_s or None, polygon)``.

    The results keep only each zone's area, so the zone is computed again from the event with the same plume
    model and parameters as the run (:mod:`twin.scenario.gas_part`): it is deterministic.
    """
    leaks = [(i, e) for i, e in enumerate(data.scenario.events) if e.type == "gas_leak"]
    if not leaks:
        return []
    from twin.scenario.response_part import incident_point
    from twin.sim.gas import GaussianPlume

    out = []
    for i, e in leaks:
        x, y = incident_point(data.scenario, city, i)
        plume = GaussianPlume.from_event(e, x, y, source=data.scenario.source)
        zone = plume.hazard_zone(ppm=e.threshold_ppm, molar_mass_g_mol=e.molar_mass_g_mol)
        end = None if e.duration_s is None else e.at_s + e.duration_s
        out.append((float(e.at_s), end, zone))
    return out


class Playback:
    """Replays ``data`` in ``scene``: :meth:`set_time` moves every layer to a time.

    Agents are coloured by state (:data:`~twin.viewer.frames.AGENT_STATES`), vehicles by speed; smoke colours
    the space floors, closed and flooded roads turn red, the flood's maximum depth shows from the burst on, gas
    zones while they last.
    """

    def __init__(self, scene: CityScene, data: ResultsData, *, point_size: float = 4.0):
        self.scene = scene
        self.data = data
        self.time_s = -1.0
        self.playing = False
        self.speed = 10.0  # simulated seconds per wall second
        if data.crowd is not None:
            scene.add_points(
                "agents",
                data.crowd.max_count,
                cmap=list(AGENT_COLORS),
                clim=(-0.5, len(AGENT_COLORS) - 0.5),
                point_size=point_size,
                legend=[(f"person {s}", c) for s, c in zip(AGENT_STATES, AGENT_COLORS, strict=False)],
            )
        if data.traffic is not None:
            scene.add_points(
                "vehicles",
                data.traffic.max_count,
                cmap="plasma",
                clim=(0.0, 15.0),
                point_size=point_size,
                scalar_bar="vehicle speed (m/s)",
            )
        self.flood_from_s: float | None = None
        if data.flood is not None:
            scene.add_flood(data.flood)
            self.flood_from_s = data.first_event_s("pipe_burst") or 0.0
        self._gas = gas_zones(data, scene.city)
        self._gas_shown: tuple[int, ...] | None = None
        self._pressure()
        scene.add_legend()
        self.set_time(0.0)

    def _pressure(self) -> None:
        """With ``pipe_attribute="pressure"``: colour water networks by the lowest pressure the run saw at their
        nodes (``water_nodes_<id>.parquet``), where it was recorded."""
        if self.scene.pipe_attribute != "pressure":
            return
        for net_id, net in self.scene.city.pipes.items():
            path = self.data.directory / f"water_nodes_{net_id}.parquet"
            if not path.exists():
                continue
            import pandas as pd

            nodes = pd.read_parquet(path)
            if "min_pressure_m" not in nodes.columns or "node" not in nodes.columns:
                continue
            by_name = dict(zip(nodes["node"].astype(str), nodes["min_pressure_m"].astype(float), strict=True))
            p = np.array([by_name.get(str(n), np.nan) for n in net.nodes["name"]])
            a = net.links["start_index"].to_numpy(dtype=np.int64)
            b = net.links["end_index"].to_numpy(dtype=np.int64)
            self.scene.set_pipe_values(
                net_id, np.nanmean(np.stack([p[a], p[b]]), axis=0), attribute="pressure"
            )

    @property
    def start_s(self) -> float:
        return self.data.start_s

    @property
    def end_s(self) -> float:
        return self.data.end_s

    def set_time(self, t_s: float) -> None:
        """Show the state at ``t_s`` seconds (the last record at or before it, per layer); no actor is rebuilt."""
        t = float(np.clip(t_s, self.start_s, self.end_s))
        self.time_s = t
        data, scene = self.data, self.scene
        if data.crowd is not None:
            xyz, val = data.crowd.at(t)
            scene.points["agents"].update(xyz, val)
        if data.traffic is not None:
            xyz, val = data.traffic.at(t)
            scene.points["vehicles"].update(xyz, val)
        if data.smoke is not None:
            scene.set_smoke(data.smoke_at(t))
        scene.set_closed_roads(data.closed_roads_at(t))
        if "flood" in scene.layers and self.flood_from_s is not None:
            on = t >= self.flood_from_s and scene.layers["flood"].visible
            for a in scene.layers["flood"].actors:
                a.SetVisibility(on)
        if self._gas:
            active = tuple(
                k for k, (a, b, _z) in enumerate(self._gas) if a <= t + 1e-9 and (b is None or t < b)
            )
            if active != self._gas_shown:
                scene.add_gas_zones([self._gas[k][2] for k in active])
                self._gas_shown = active
        scene.set_kpi_text(data.kpi_text(t))

    def frame_times(self, *, fps: float, speed: float) -> np.ndarray:
        """Times (s) of the frames of a movie at ``fps`` frames per second showing ``speed`` simulated seconds per
        second, from start to end."""
        step = speed / fps
        n = int(np.floor((self.end_s - self.start_s) / step + 1e-9)) + 1
        return self.start_s + step * np.arange(n)

    # -- interactive window --------------------------------------------------------------------------------------
    def show(self) -> None:
        """Open the window: time slider, play/pause, speed slider and one toggle per layer (blocks until closed)."""
        plotter = self.scene.plotter

        def on_time(value: float) -> None:
            self.set_time(value)

        slider = plotter.add_slider_widget(
            on_time,
            (self.start_s, max(self.end_s, self.start_s + 1.0)),
            value=self.time_s,
            title="time (s)",
            pointa=(0.25, 0.08),
            pointb=(0.75, 0.08),
            fmt="%.0f",
            interaction_event="always",
        )
        plotter.add_slider_widget(
            lambda v: setattr(self, "speed", float(v)),
            (1.0, 120.0),
            value=self.speed,
            title="speed (x)",
            pointa=(0.8, 0.08),
            pointb=(0.97, 0.08),
            fmt="%.0f",
        )
        plotter.add_checkbox_button_widget(
            lambda on: setattr(self, "playing", bool(on)), value=False, position=(10, 10), size=36
        )
        plotter.add_text("play", position=(52, 18), font_size=9, color="black")
        for k, name in enumerate(self.scene.layers):
            plotter.add_checkbox_button_widget(
                lambda on, n=name: self.scene.set_visible(n, on),
                value=self.scene.layers[name].visible,
                position=(10, 60 + 34 * k),
                size=26,
                color_on="#4a90d9",
            )
            plotter.add_text(name, position=(42, 64 + 34 * k), font_size=8, color="black")
        last = [time.perf_counter()]

        def tick(_step: int) -> None:
            now = time.perf_counter()
            dt, last[0] = now - last[0], now
            if self.playing:
                t = self.time_s + self.speed * dt
                if t >= self.end_s:
                    t, self.playing = self.end_s, False
                self.set_time(t)
                slider.GetRepresentation().SetValue(t)
                plotter.render()

        plotter.add_timer_event(max_steps=10**9, duration=100, callback=tick)
        plotter.show(title=f"twin view: {self.data.summary.get('scenario', self.data.directory.name)}")


def open_results(
    directory: str | os.PathLike[str],
    *,
    window_size: tuple[int, int] = (1280, 720),
    off_screen: bool = True,
    terrain_opacity: float = 0.6,
    point_size: float = 4.0,
    pipe_attribute: str = "diameter",
) -> Playback:
    """Build the city of a results folder (its resolved scenario) and a :class:`Playback` of its tables."""
    from twin.scenario.schema import build_city, load_scenario
    from twin.viewer.gl import check_gl

    d = check_results_dir(directory)
    check_gl()
    t0 = time.perf_counter()
    scenario = load_scenario(d / "scenario.yaml")
    city = build_city(scenario)
    data = load_results(d, terrain=city.terrain, scenario=scenario)
    t1 = time.perf_counter()
    scene = CityScene(
        city,
        window_size=window_size,
        off_screen=off_screen,
        terrain_opacity=terrain_opacity,
        pipe_attribute=pipe_attribute,
    )
    playback = Playback(scene, data, point_size=point_size)
    log.info("results loaded in %.1f s, scene built in %.1f s", t1 - t0, time.perf_counter() - t1)
    return playback
