"""The viewer in a browser: a trame app serving the same :class:`~twin.viewer.scene.CityScene` (rendered on the
server, off-screen, and streamed as images) with a time slider, play/pause, speed and layer toggles; for drills
also the action to perform, a step button and clicks on the picture as picks.

``serve_results(DIR)`` backs ``twin view --web DIR``, ``serve_drill(SCENARIO)`` backs ``twin drill --web``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

TICK_S = 0.25
"""Wall seconds between animation steps while playing."""


def _layer_toggles(server: Any, scene: Any, view_update: Any) -> list[str]:
    """One boolean state variable ``layer_<name>`` per scene layer, wired to :meth:`CityScene.set_visible`."""
    names = []
    for name in scene.layers:
        key = f"layer_{name}"
        server.state[key] = scene.layers[name].visible

        def on_change(_n: str = name, _k: str = key, **kwargs: Any) -> None:
            scene.set_visible(_n, bool(kwargs[_k]))
            view_update()

        server.state.change(key)(on_change)
        names.append(name)
    return names


def build_results_app(playback: Any, *, server_name: str = "twin-view") -> Any:
    """A trame server showing ``playback`` (a :class:`~twin.viewer.playback.Playback`); not started."""
    from trame.app import get_server
    from trame.ui.vuetify3 import SinglePageLayout
    from trame.widgets import html
    from trame.widgets import vtk as vtk_widgets
    from trame.widgets import vuetify3 as v3

    server = get_server(server_name, client_type="vue3")
    state, ctrl = server.state, server.controller
    scene = playback.scene
    state.time_s = float(playback.time_s)
    state.playing = False
    state.speed = 10.0
    state.kpi = playback.data.kpi_text(playback.time_s)

    def view_update() -> None:
        scene.render()
        ctrl.view_update()

    @state.change("time_s")
    def on_time(time_s: float, **_: Any) -> None:
        playback.set_time(float(time_s))
        state.kpi = playback.data.kpi_text(playback.time_s)
        view_update()

    names = _layer_toggles(server, scene, view_update)

    async def animate() -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if state.playing:
                t = float(state.time_s) + float(state.speed) * TICK_S
                if t >= playback.end_s:
                    t, state.playing = playback.end_s, False
                with state:
                    state.time_s = t

    ctrl.on_server_ready.add(lambda **_: asyncio.ensure_future(animate()))

    with SinglePageLayout(server) as layout:
        layout.title.set_text(f"twin view: {playback.data.summary.get('scenario', '')}")
        with layout.toolbar:
            v3.VBtn(
                "{{ playing ? 'pause' : 'play' }}",
                id="play",
                click="playing = !playing",
                variant="outlined",
                density="compact",
            )
            v3.VSlider(
                v_model=("time_s",),
                min=playback.start_s,
                max=max(playback.end_s, playback.start_s + 1.0),
                step=1,
                label="t (s)",
                hide_details=True,
                density="compact",
                thumb_label=True,
                id="time",
                style="max-width: 420px",
            )
            v3.VSlider(
                v_model=("speed",),
                min=1,
                max=120,
                step=1,
                label="speed",
                hide_details=True,
                density="compact",
                style="max-width: 180px",
            )
        with layout.content:
            with v3.VContainer(fluid=True, classes="pa-0 fill-height d-flex flex-row"):
                with html.Div(style="width: 170px; padding: 6px", classes="flex-shrink-0"):
                    html.Pre("{{ kpi }}", style="font-size: 12px")
                    for name in names:
                        v3.VCheckbox(
                            v_model=(f"layer_{name}",),
                            label=name,
                            id=f"toggle-{name}",
                            density="compact",
                            hide_details=True,
                        )
                with html.Div(style="flex: 1; height: 100%", classes="fill-height"):
                    view = vtk_widgets.VtkRemoteView(scene.plotter.ren_win, ref="view", interactive_ratio=1)
                    ctrl.view_update = view.update
    return server


def build_drill_app(drill: Any, *, server_name: str = "twin-drill", step_s: float = 5.0) -> Any:
    """A trame server for a :class:`~twin.viewer.drill.Drill`: action picker, run/pause, and a click on the picture
    performs the action at the surface point under it."""
    from trame.app import get_server
    from trame.ui.vuetify3 import SinglePageLayout
    from trame.widgets import html
    from trame.widgets import vtk as vtk_widgets
    from trame.widgets import vuetify3 as v3

    from twin.viewer.drill import ACTIONS

    server = get_server(server_name, client_type="vue3")
    state, ctrl = server.state, server.controller
    scene = drill.scene
    state.action = drill.mode
    state.playing = False
    state.log = ""

    def refresh() -> None:
        drill.update_scene()
        state.log = "\n".join(drill.scene.kpi_actor.GetText(2).splitlines()) if scene.kpi_actor else ""
        scene.render()
        ctrl.view_update()

    @state.change("action")
    def on_action(action: str, **_: Any) -> None:
        drill.mode = action
        refresh()

    def on_click(event: dict[str, Any]) -> None:
        pos = (event or {}).get("position") or {}
        if "x" in pos and "y" in pos:
            drill.pick_screen(float(pos["x"]), float(pos["y"]))
            refresh()

    def step() -> None:
        drill.advance(step_s)
        refresh()

    _layer_toggles(server, scene, lambda: (scene.render(), ctrl.view_update()))

    async def animate() -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if state.playing and drill.run.running:
                with state:
                    step()

    ctrl.on_server_ready.add(lambda **_: asyncio.ensure_future(animate()))

    with SinglePageLayout(server) as layout:
        layout.title.set_text(f"twin drill: {drill.run.scenario.name}")
        with layout.toolbar:
            v3.VSelect(
                v_model=("action",),
                items=("actions", list(ACTIONS)),
                label="click does",
                density="compact",
                hide_details=True,
                id="action",
                style="max-width: 220px",
            )
            v3.VBtn(
                "{{ playing ? 'pause' : 'run' }}", id="play", click="playing = !playing", variant="outlined"
            )
            v3.VBtn(f"+{step_s:g} s", id="step", click=step, variant="outlined")
        with layout.content:
            with v3.VContainer(fluid=True, classes="pa-0 fill-height d-flex flex-row"):
                with html.Div(style="width: 230px; padding: 6px", classes="flex-shrink-0"):
                    html.Pre("{{ log }}", style="font-size: 12px; white-space: pre-wrap")
                with html.Div(style="flex: 1; height: 100%", classes="fill-height"):
                    view = vtk_widgets.VtkRemoteView(
                        scene.plotter.ren_win,
                        ref="view",
                        interactive_ratio=1,
                        interactor_events=("events", ["LeftButtonPress"]),
                        LeftButtonPress=(on_click, "[utils.vtk.event($event)]"),
                    )
                    ctrl.view_update = view.update
    refresh()
    return server


def serve_results(
    directory: str | os.PathLike[str],
    *,
    port: int = 8080,
    host: str = "localhost",
    open_browser: bool = False,
) -> None:
    """``twin view --web``: serve the results folder's playback on ``http://host:port`` until interrupted."""
    from twin.viewer.playback import open_results

    playback = open_results(directory)
    server = build_results_app(playback)
    log.info("serving %s on http://%s:%d", directory, host, port)
    server.start(port=port, host=host, open_browser=open_browser, show_connection_info=True)


def serve_drill(
    scenario: Any,
    *,
    port: int = 8080,
    host: str = "localhost",
    out_dir: str | os.PathLike[str] | None = None,
    open_browser: bool = False,
) -> None:
    """``twin drill --web``: run ``scenario`` live and serve it; when the server stops the drill's results and
    replay scenario are written to ``out_dir`` (default ``results/drill-<name>``)."""
    from pathlib import Path

    from twin.viewer.drill import Drill

    drill = Drill(scenario)
    server = build_drill_app(drill)
    try:
        server.start(port=port, host=host, open_browser=open_browser, show_connection_info=True)
    finally:
        out = Path(out_dir) if out_dir else Path("results") / f"drill-{drill.run.scenario.name}"
        drill.finish(out)
        log.info("drill results in %s", out)
