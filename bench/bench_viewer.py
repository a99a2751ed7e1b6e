"""Viewer playback speed: frames per second at 1280x720 with 10k and 100k agents (synthetic trajectories, updated
in place), and the time to write the movie of the headline demo (``--demo DIR``: a coupled results folder)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def playback_fps(n_agents: int, *, frames: int = 30, size: tuple[int, int] = (1280, 720)) -> float:
    """Frames per second of update + render + read-back of ``n_agents`` points walking in a 500 m square."""
    import pyvista as pv

    from twin.city import City
    from twin.viewer.scene import CityScene

    city = City()
    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    plotter.ren_win.SetMultiSamples(0)
    scene = CityScene(city, plotter=plotter)
    cloud = scene.add_points("agents", n_agents, cmap="viridis", clim=(0.0, 3.0), point_size=4)
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.uniform(0, 500, (n_agents, 2)), np.zeros(n_agents)]).astype(np.float32)
    step = rng.normal(0, 0.6, (n_agents, 3)).astype(np.float32)
    step[:, 2] = 0
    state = rng.integers(0, 4, n_agents).astype(np.float32)
    cloud.update(xyz, state)
    plotter.camera.position = (250, -400, 500)
    plotter.camera.focal_point = (250, 250, 0)
    scene.image()
    t0 = time.perf_counter()
    for _ in range(frames):
        xyz += step
        cloud.update(xyz, state)
        scene.image()
    fps = frames / (time.perf_counter() - t0)
    scene.close()
    return fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", help="coupled demo results folder for the movie timing (default: make one)")
    args = parser.parse_args()
    from twin.viewer.gl import check_gl

    print(f"backend {check_gl()}")
    ok = True
    for n in (10_000, 100_000):
        fps = playback_fps(n)
        print(f"playback {n:>7,} agents at 1280x720: {fps:6.1f} fps (target >= 5)")
        ok &= n != 100_000 or fps >= 5.0
    demo = Path(args.demo) if args.demo else None
    if demo is None:
        from twin.demo import build_demo_city, coupled_demo_scenario
        from twin.scenario.runner import run_scenario

        demo = Path(tempfile.mkdtemp(prefix="twin-bench-viewer-"))
        run_scenario(coupled_demo_scenario(demo, build_demo_city(demo)), demo, progress=False)
    from twin.viewer.render import render_movie

    t0 = time.perf_counter()
    out = render_movie(demo, demo / "demo.mp4", fps=10, speed=10)
    movie_s = time.perf_counter() - t0
    print(f"movie of the headline demo ({out}): {movie_s:.1f} s (target < 120 s)")
    ok &= movie_s < 120.0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
