"""Flood model cost per simulated second on real DEM crops; prints cells, steps and wall time per simulated second.

Cases (each a 2 km × 2 km crop of a real DEM, refined by bilinear interpolation to a city-scale cell size, with a
point source as from a large main burst, 0.5 m³/s for one hour, at the crop's lowest interior cell's
neighbourhood centre):

1. ``whitebox_DEM.tif`` (90 m DEM, moderate relief) refined to 10 m: 200 × 200 cells.
2. ``bigtujunga.tif`` (SRTM 30 m, mountains) refined to 5 m: 400 × 400 cells.
3. Worst case: the 5 m grid of case 2 wet everywhere (0.2 m of water on every cell, open edges), so the computed
   window is the whole grid: the cost of a full-grid step.

"ever wet" counts the cells the water reached: the computed window is their bounding box plus a margin, so a
stream down a diagonal valley (case 2) computes far more cells than it wets.

Volume balance error is printed for each; cpu is the process time (the wall time is longer on a busy machine). Run from the repository root: ``python -m bench.bench_hazards_flood``.
"""

from __future__ import annotations

import time

import numpy as np
import rasterio
from scipy import ndimage

from bench.common import data_dir
from twin.sim.flood import FloodModel


def _crop(name: str, size_m: float, cell_m: float) -> np.ndarray:
    with rasterio.open(data_dir() / "terrain" / name) as src:
        z = src.read(1).astype(np.float64)
        res = abs(src.transform.a)
    n = int(round(size_m / res))
    i0 = (z.shape[0] - n) // 2
    j0 = (z.shape[1] - n) // 2
    crop = z[i0 : i0 + n, j0 : j0 + n]
    return ndimage.zoom(crop, res / cell_m, order=1)


def _run(label: str, z: np.ndarray, cell_m: float, *, sim_s: float, wet: bool) -> None:
    ny, nx = z.shape
    if wet:
        m = FloodModel(z, cell_m, manning_n=0.035, boundary="open", initial_depth=np.full(z.shape, 0.2))
    else:
        m = FloodModel(z, cell_m, manning_n=0.035, boundary="closed")
        m.add_source(0.5 * nx * cell_m, 0.5 * ny * cell_m, 0.5)
    t0, c0 = time.perf_counter(), time.process_time()
    steps = m.advance(sim_s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    win = m._win or [0, 0, 0, 0]
    cells = (win[1] - win[0]) * (win[3] - win[2])
    print(
        f"{label:44s} {ny}x{nx} cells of {cell_m:g} m  sim {sim_s:6.0f} s  steps {steps:6d}  "
        f"window {cells:7d} cells ({int((m.max_depth > 0).sum()):6d} ever wet)  wall {wall:7.2f} s (cpu {cpu:6.2f} s)  wall/sim-s {wall / sim_s * 1e3:7.2f} ms  "
        f"per step {wall / steps * 1e3:6.2f} ms  volume error {m.volume_error():.1e}  "
        f"max depth {float(m.max_depth.max()):.2f} m"
    )


def main() -> None:
    z1 = _crop("whitebox_DEM.tif", 2000.0, 10.0)
    _run("whitebox 2 km crop @10 m, 0.5 m3/s burst, 1 h", z1, 10.0, sim_s=3600.0, wet=False)
    z2 = _crop("bigtujunga.tif", 2000.0, 5.0)
    _run("bigtujunga 2 km crop @5 m, 0.5 m3/s burst, 1 h", z2, 5.0, sim_s=3600.0, wet=False)
    _run("bigtujunga 2 km crop @5 m, all wet, 60 s", z2, 5.0, sim_s=60.0, wet=True)


if __name__ == "__main__":
    main()
