"""Navigation core against scipy.sparse.csgraph on the same inputs; prints times and ratios.

1. DistanceField.compute on a 1000 x 1000 raster with obstacles vs scipy's Dijkstra on the identical stencil
   graph (the graph build is timed separately; results are checked to agree to 1e-9 m).
2. Graph on a 100k-node random geometric graph: many_to_many and full dijkstra vs scipy's Dijkstra.
3. DistanceField.sample / sample_direction for 100k agents (the per-step call).

Run from the repository root: ``python -m bench.bench_nav``.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from twin.spatial import DistanceField, Graph, get_num_threads


def _timed(fn, *args, repeat=1, **kwargs):
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _moves(stencil: int) -> list[tuple[int, int]]:
    base = {8: [(1, 0), (1, 1)], 16: [(1, 0), (1, 1), (2, 1)], 32: [(1, 0), (1, 1), (2, 1), (3, 1), (3, 2)]}
    out = set()
    for a, b in base[stencil]:
        for sx in (1, -1):
            for sy in (1, -1):
                out |= {(sx * a, sy * b), (sx * b, sy * a)}
    return sorted(out)


def _swept(dx: int, dy: int) -> list[tuple[int, int]]:
    """Cells whose closed square meets the centre-to-centre segment (exact Liang-Barsky clipping)."""
    cells = []
    for j in range(min(0, dy) - 1, max(0, dy) + 2):
        for i in range(min(0, dx) - 1, max(0, dx) + 2):
            if (i, j) in ((0, 0), (dx, dy)):
                continue
            lo, hi = Fraction(0), Fraction(1)
            for d, c in ((dx, i), (dy, j)):
                a, b = Fraction(2 * c - 1, 2), Fraction(2 * c + 1, 2)
                if d == 0:
                    lo, hi = (lo, hi) if a <= 0 <= b else (Fraction(1), Fraction(0))
                    continue
                t0, t1 = sorted((a / d, b / d))
                lo, hi = max(lo, t0), min(hi, t1)
            if lo <= hi:
                cells.append((i, j))
    return cells


def stencil_graph(walkable: np.ndarray, h: float, stencil: int) -> sparse.csr_array:
    """The DistanceField's stencil graph (one level) as a scipy CSR matrix, built row by row in CSR order."""
    ny, nx = walkable.shape
    n = walkable.size
    pad = 4
    wp = np.zeros((ny + 2 * pad, nx + 2 * pad), bool)
    wp[pad:-pad, pad:-pad] = walkable
    moves = _moves(stencil)
    ok = np.empty((n, len(moves)), bool)
    for k, (dx, dy) in enumerate(moves):
        m = walkable & wp[pad + dy : pad + dy + ny, pad + dx : pad + dx + nx]
        for i, j in _swept(dx, dy):
            m &= wp[pad + j : pad + j + ny, pad + i : pad + i + nx]
        ok[:, k] = m.ravel()
    offsets = np.array([dy * nx + dx for dx, dy in moves], np.int32)
    lengths = np.array([h * math.hypot(dx, dy) for dx, dy in moves])
    rows, ks = np.nonzero(ok)  # row-major: sorted by row, as CSR wants
    indices = rows.astype(np.int32) + offsets[ks]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(ok.sum(axis=1), out=indptr[1:])
    return sparse.csr_array((lengths[ks], indices, indptr), shape=(n, n))


def obstacle_raster(rng, n=1000) -> np.ndarray:
    """A floor plate with walls (with doors) and scattered pillars."""
    w = np.ones((n, n), bool)
    for k in range(50, n, 100):
        w[k, :] = False
        w[:, k] = False
    for k in range(50, n, 100):  # doors in every wall segment
        for m in range(0, n, 100):
            w[k, m + 10 : m + 14] = True
            w[m + 30 : m + 34, k] = True
    ys, xs = rng.integers(0, n - 4, (2, 3000))
    for y, x in zip(ys, xs, strict=True):
        w[y : y + 3, x : x + 3] = False
    w[0:5, 0:5] = True
    return w


def bench_distance_field(rng) -> None:
    n, h = 1000, 0.25
    w = obstacle_raster(rng, n)
    targets = np.array([[0, 2, 2], [0, n - 3, n - 3]])
    targets = targets[w[targets[:, 1], targets[:, 2]]]
    print(f"DistanceField: {n}x{n} raster, {100 * (1 - w.mean()):.1f} % blocked, {len(targets)} targets")
    for stencil in (16, 32):
        f = DistanceField(w, cell_size=h, origins=[0.0, 0.0], stencil=stencil)
        t_twin, d = _timed(f.compute, targets, repeat=2)
        t_build, g = _timed(stencil_graph, w, h, stencil)
        flat = targets[:, 1] * n + targets[:, 2]
        t_scipy, ref = _timed(csgraph.dijkstra, g, directed=True, indices=flat, min_only=True)
        ref = ref.reshape(1, n, n)
        fin = np.isfinite(ref)
        same_inf = np.array_equal(fin, np.isfinite(d))
        err = float(np.max(np.abs(d[fin] - ref[fin]))) if fin.any() else 0.0
        print(
            f"  stencil {stencil:2d}: twin {t_twin:6.3f} s | scipy dijkstra {t_scipy:6.3f} s "
            f"(+ graph build {t_build:5.2f} s) | scipy/twin {t_scipy / t_twin:5.1f}x "
            f"| max |diff| {err:.1e} m, same unreachable cells: {same_inf}"
        )


def geometric_graph(rng, n=100_000, k=4):
    xy = rng.uniform(0, 20_000, (n, 2))
    _, nb = cKDTree(xy).query(xy, k + 1)
    src = np.repeat(np.arange(n), k)
    dst = nb[:, 1:].ravel()
    w = np.hypot(*(xy[src] - xy[dst]).T) * rng.uniform(1.0, 1.3, len(src))
    return xy, src, dst, w


def bench_graph(rng) -> None:
    xy, src, dst, w = geometric_graph(rng)
    n = len(xy)
    t_build, g = _timed(Graph, n, src, dst, w, coords=xy, directed=False)
    a = sparse.csr_array((w, (src, dst)), shape=(n, n))
    print(f"Graph: {n} nodes, {len(src)} undirected edges (kNN, k=4), build {t_build:.3f} s")
    s = rng.integers(0, n, 20)
    t = rng.integers(0, n, 20)
    t_m2m, m2m = _timed(g.many_to_many, s, t)
    t_full, (dist, _) = _timed(g.dijkstra, s)
    t_scipy, ref = _timed(csgraph.dijkstra, a, directed=False, indices=s)
    sub = ref[:, t]
    fin = np.isfinite(sub)
    err = float(np.max(np.abs(m2m[fin] - sub[fin]) / sub[fin].clip(1e-300)))
    both = np.isfinite(ref) & (ref > 0)
    full_err = float(np.max(np.abs(dist[both] - ref[both]) / ref[both]))
    assert np.array_equal(np.isfinite(dist), np.isfinite(ref))
    print(
        f"  many_to_many 20x20: twin {t_m2m:6.3f} s | scipy dijkstra (20 full trees) {t_scipy:6.3f} s "
        f"| ratio {t_scipy / t_m2m:5.1f}x | max rel diff {err:.1e}"
    )
    print(
        f"  dijkstra 20 full trees + predecessors: twin {t_full:6.3f} s | scipy {t_scipy:6.3f} s "
        f"| ratio {t_scipy / t_full:5.1f}x | max rel diff {full_err:.1e}"
    )
    pairs = rng.integers(0, n, (20, 2))
    t_astar, _ = _timed(lambda: [g.shortest_path(a_, b_) for a_, b_ in pairs])
    t_dij, _ = _timed(lambda: [g.shortest_path(a_, b_, astar=False) for a_, b_ in pairs])
    print(
        f"  20 point-to-point paths: A* {t_astar:6.3f} s | Dijkstra {t_dij:6.3f} s | ratio {t_dij / t_astar:5.1f}x"
    )


def bench_sampling(rng) -> None:
    w = obstacle_raster(rng, 1000)
    f = DistanceField(w, cell_size=0.25, origins=[0.0, 0.0])
    d = f.compute([[0, 2, 2]])
    pts = rng.uniform(0, 250, (100_000, 2))
    # Random order is cache-miss bound; agents of a crowd are spatially coherent, as when sorted by cell row.
    coherent = pts[np.lexsort((pts[:, 0], np.floor(pts[:, 1])))]
    for name, p in (("random order", pts), ("spatially sorted", coherent)):
        t_s, _ = _timed(f.sample, d, p, repeat=5)
        t_d, _ = _timed(f.sample_direction, d, p, repeat=5)
        print(
            f"Sampling 100k agents, {name} ({get_num_threads()} threads): sample {1e3 * t_s:.2f} ms, "
            f"sample_direction {1e3 * t_d:.2f} ms per call"
        )


def main() -> None:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    bench_distance_field(rng)
    bench_graph(rng)
    bench_sampling(rng)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
