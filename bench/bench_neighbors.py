"""NeighborGrid against scipy's cKDTree on the same 1M uniformly random points, 2-D and 3-D.

The usage is rebuild-every-step (agents move), so each timing includes building the structure: our grid
rebuild, cKDTree's tree build. Both sides use the same worker count (``workers=`` for cKDTree,
``twin.spatial.set_num_threads`` for us) and return the neighbours of all 1M points:

* radius: ours ``query_radius(sort=True)`` (CSR, rows sorted by distance) vs ``query_ball_point(return_sorted=False)``
  (lists, unsorted — scipy's fastest mode, so the comparison favours scipy);
* 8 nearest: ours ``query_knn(k=8, exclude_self=True)`` vs ``query(k=9)`` (the point itself is its own first hit).

Run from the repository root: ``python -m bench.bench_neighbors``. Target: every ratio >= 3, rebuild >= 20M points/s.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import cKDTree

from twin import spatial
from twin.spatial import NeighborGrid

N = 1_000_000
TARGET_RATIO = 3.0
TARGET_REBUILD = 20e6
CASES = [
    # name, dim, side of the square/cube (m), radius (m): density 1 point per m^2 or m^3
    ("2-D 1000 m x 1000 m", 2, 1000.0, 2.0),
    ("3-D 100 m cube", 3, 100.0, 1.5),
]


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _row(label: str, ours: float, theirs: float) -> float:
    ratio = theirs / ours
    flag = "ok" if ratio >= TARGET_RATIO else f"BELOW {TARGET_RATIO:.0f}x"
    print(
        f"  {label:<34} twin {ours:7.3f} s   scipy {theirs:7.3f} s   ratio {ratio:5.1f}x  {flag}", flush=True
    )
    return ratio


def main() -> int:
    rng = np.random.default_rng(12345)
    threads_before = spatial.get_num_threads()
    ratios, rebuild_rates = [], []
    try:
        for name, dim, side, radius in CASES:
            points = rng.uniform(0.0, side, (N, dim))
            expected = (np.pi * radius**2) if dim == 2 else (4.0 / 3.0 * np.pi * radius**3)
            print(
                f"{name}: {N:,} points, radius {radius} m (about {expected:.1f} neighbours), k = 8",
                flush=True,
            )
            for workers in (1, 2):
                spatial.set_num_threads(workers)
                grid = NeighborGrid(radius, dim=dim)
                t_rebuild, _ = _best(lambda grid=grid, p=points: grid.rebuild(p), 5)
                rebuild_rates.append(N / t_rebuild)
                print(
                    f" workers={workers}: rebuild {t_rebuild * 1e3:.1f} ms = {N / t_rebuild / 1e6:.1f} M points/s"
                )

                def ours_radius(grid=grid, p=points, r=radius):
                    grid.rebuild(p)
                    return grid.query_radius(p, r)

                def theirs_radius(p=points, r=radius, w=workers):
                    return cKDTree(p).query_ball_point(p, r, workers=w, return_sorted=False)

                t_ours, res = _best(ours_radius, 2)
                t_theirs, lists = _best(theirs_radius, 1)
                counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=N)
                assert np.array_equal(np.diff(res.offsets), counts), "neighbour counts differ from cKDTree"
                del lists
                ratios.append(_row("radius (scipy unsorted, twin sorted)", t_ours, t_theirs))
                del res

                def ours_knn(grid=grid, p=points):
                    grid.rebuild(p)
                    return grid.query_knn(p, 8, exclude_self=True)

                def theirs_knn(p=points, w=workers):
                    return cKDTree(p).query(p, k=9, workers=w)

                t_ours, knn = _best(ours_knn, 2)
                t_theirs, (dist, _) = _best(theirs_knn, 1)
                assert np.allclose(knn.distances, dist[:, 1:], rtol=1e-12, atol=0), (
                    "distances differ from cKDTree"
                )
                ratios.append(_row("8 nearest (scipy k=9 with self)", t_ours, t_theirs))
    finally:
        spatial.set_num_threads(threads_before)
    ok = min(ratios) >= TARGET_RATIO and min(rebuild_rates) >= TARGET_REBUILD
    print(
        f"minimum ratio {min(ratios):.1f}x (target {TARGET_RATIO:.0f}x), slowest rebuild "
        f"{min(rebuild_rates) / 1e6:.1f} M points/s (target {TARGET_REBUILD / 1e6:.0f}M): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
