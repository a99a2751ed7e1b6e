"""TriangleBVH against open3d's RaycastingScene (Embree) on the same ~1M-triangle city mesh, in one process.

Run from the repository root: ``python -m bench.bench_mesh`` (``--quick`` for a smaller run). For each query
(random rays, downward rays from a grid, line-of-sight segments, closest points) and for 1 and 2 threads it
prints twin's and open3d's throughput and their ratio; timings are the best of a few interleaved runs.
Requirements: twin's ray casts at least 0.5x Embree's throughput, line of sight (any hit over open segments)
at least 0.7x Embree's ``test_occlusions``, closest points at least 1x open3d's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from twin import _core
from twin.spatial import TriangleBVH

# unit box, outward winding: bottom, top, then the four sides
_BOX_CORNERS = np.array(
    [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]],
    dtype=float,
)
_BOX_FACES = np.array(
    [
        [0, 2, 1],
        [0, 3, 2],
        [4, 5, 6],
        [4, 6, 7],
        [0, 1, 5],
        [0, 5, 4],
        [1, 2, 6],
        [1, 6, 5],
        [2, 3, 7],
        [2, 7, 6],
        [3, 0, 4],
        [3, 4, 7],
    ]
)


REQUIRED = {"random rays": 0.5, "downward grid rays": 0.5, "line of sight": 0.7, "closest points": 1.0}


def terrain_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rolling hills, metres."""
    return 20.0 * np.sin(x / 170.0) * np.cos(y / 230.0) + 8.0 * np.sin((x + y) / 60.0)


def make_city_mesh(n_grid: int = 700, n_buildings: int = 2000, *, size: float = 2000.0, seed: int = 7):
    """A deterministic city-like mesh: a displaced heightfield grid of 2 (n_grid - 1)^2 triangles plus
    n_buildings closed boxes (12 triangles each) standing on it. Returns (vertices (n, 3) float64 metres,
    triangles (m, 3) int64). The defaults give 1,001,202 triangles over 2 km x 2 km."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, size, n_grid), np.linspace(0, size, n_grid), indexing="xy")
    z = terrain_height(x, y) + rng.normal(0.0, 0.3, x.shape)
    vertices = np.column_stack([x.ravel(), y.ravel(), z.ravel()])
    i, j = np.meshgrid(np.arange(n_grid - 1), np.arange(n_grid - 1), indexing="xy")
    a = (j * n_grid + i).ravel()
    b, c, d = a + 1, a + n_grid, a + n_grid + 1
    triangles = [np.column_stack([a, b, d]), np.column_stack([a, d, c])]
    cx = rng.uniform(50, size - 50, n_buildings)
    cy = rng.uniform(50, size - 50, n_buildings)
    hx, hy = rng.uniform(5, 20, n_buildings), rng.uniform(5, 20, n_buildings)
    height = rng.uniform(6, 80, n_buildings)
    base = terrain_height(cx, cy) - 10.0
    box = np.empty((n_buildings, 8, 3))
    box[..., 0] = cx[:, None] + _BOX_CORNERS[:, 0] * hx[:, None]
    box[..., 1] = cy[:, None] + _BOX_CORNERS[:, 1] * hy[:, None]
    box[..., 2] = base[:, None] + _BOX_CORNERS[:, 2] * (height[:, None] + 10.0)
    faces = _BOX_FACES[None] + (len(vertices) + 8 * np.arange(n_buildings))[:, None, None]
    vertices = np.concatenate([vertices, box.reshape(-1, 3)])
    triangles = np.concatenate([*triangles, faces.reshape(-1, 3)]).astype(np.int64)
    return vertices, triangles


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _interleaved(twin_fn, peer_fn, repeats: int) -> tuple[float, float]:
    """Best times of twin and the peer, alternating runs so that machine load hits both alike."""
    tt, tp = np.inf, np.inf
    for _ in range(repeats):
        tt = min(tt, _best_time(twin_fn, 1))
        if peer_fn is not None:
            tp = min(tp, _best_time(peer_fn, 1))
    return tt, tp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller mesh and fewer queries")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per measurement (best kept)")
    args = parser.parse_args(argv)

    n_grid, n_buildings = (300, 400) if args.quick else (700, 2000)
    n_rays, n_side, n_points = (100_000, 300, 30_000) if args.quick else (500_000, 1000, 200_000)

    vertices, triangles = make_city_mesh(n_grid, n_buildings)
    print(f"mesh: {len(triangles):,} triangles, {len(vertices):,} vertices")

    try:
        import open3d as o3d
    except ImportError:  # the peer is an optional dependency (pip install twin[bench])
        o3d = None
        print("open3d is not installed: twin's numbers only")

    _core.set_num_threads(2)
    start = time.perf_counter()
    bvh = TriangleBVH(vertices, triangles)
    twin_build = time.perf_counter() - start
    stats = bvh.stats
    print(
        f"twin build (2 threads): {twin_build:.2f} s "
        f"({stats['n_nodes']:,} 4-wide nodes, {stats['n_leaves']:,} leaves, depth {stats['depth']})"
    )
    _core.set_num_threads(1)
    start = time.perf_counter()
    TriangleBVH(vertices, triangles)
    print(f"twin build (1 thread):  {time.perf_counter() - start:.2f} s")

    rng = np.random.default_rng(1)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    ext = hi - lo
    origins = rng.uniform(lo - 0.1 * ext, hi + 0.1 * ext, (n_rays, 3))
    directions = rng.normal(size=(n_rays, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n_side), np.linspace(lo[1], hi[1], n_side))
    down_o = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, hi[2] + 10.0)])
    down_d = np.tile([0.0, 0.0, -1.0], (len(down_o), 1))
    seg_b = rng.uniform(lo - 0.1 * ext, hi + 0.1 * ext, (n_rays, 3))
    points = rng.uniform(lo - 0.1 * ext, hi + 0.1 * ext, (n_points, 3))

    scene = None
    if o3d is not None:
        start = time.perf_counter()
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles.astype(np.uint32))
        )
        scene.cast_rays(o3d.core.Tensor(np.array([[0, 0, 0, 0, 0, 1]], dtype=np.float32)))  # builds the BVH
        print(f"open3d/Embree scene build: {time.perf_counter() - start:.2f} s")
        rays_rand = o3d.core.Tensor(np.hstack([origins, directions]).astype(np.float32))
        rays_down = o3d.core.Tensor(np.hstack([down_o, down_d]).astype(np.float32))
        rays_seg = o3d.core.Tensor(np.hstack([origins, seg_b - origins]).astype(np.float32))
        points32 = o3d.core.Tensor(points.astype(np.float32))

        # sanity: both engines see the same first hits (float32 vs float64 may differ on near-ties)
        ours = bvh.cast_rays(origins[:20000], directions[:20000]).triangle
        theirs = scene.cast_rays(rays_rand[:20000])["primitive_ids"].numpy().astype(np.int64)
        theirs[theirs == np.iinfo(np.uint32).max] = -1
        print(f"same first-hit triangle as Embree: {np.mean(ours == theirs):.2%} of 20,000 random rays")
        ours_los = bvh.occluded(origins[:20000], seg_b[:20000], eps=1e-6)
        theirs_los = scene.test_occlusions(rays_seg[:20000], tnear=1e-6, tfar=1 - 1e-6).numpy().astype(bool)
        print(
            f"same line-of-sight answer as Embree: {np.mean(ours_los == theirs_los):.2%} of 20,000 segments"
        )

    eps = 1e-6
    queries = {
        "random rays": (
            len(origins),
            lambda: bvh.cast_rays(origins, directions),
            (lambda nt: lambda: scene.cast_rays(rays_rand, nthreads=nt)) if scene else None,
        ),
        "downward grid rays": (
            len(down_o),
            lambda: bvh.cast_rays(down_o, down_d),
            (lambda nt: lambda: scene.cast_rays(rays_down, nthreads=nt)) if scene else None,
        ),
        "line of sight": (
            len(origins),
            lambda: bvh.occluded(origins, seg_b, eps=eps),
            (lambda nt: lambda: scene.test_occlusions(rays_seg, tnear=eps, tfar=1 - eps, nthreads=nt))
            if scene
            else None,
        ),
        "closest points": (
            len(points),
            lambda: bvh.closest_points(points),
            (lambda nt: lambda: scene.compute_closest_points(points32, nthreads=nt)) if scene else None,
        ),
    }
    results: dict[str, dict[int, tuple[float, float]]] = {}
    print(f"\n{'query':<20} {'threads':>7} {'twin /s':>12} {'Embree /s':>12} {'ratio':>7}")
    for name, (count, twin_fn, peer_factory) in queries.items():
        results[name] = {}
        for nt in (1, 2):
            _core.set_num_threads(nt)
            peer_fn = peer_factory(nt) if peer_factory else None
            tt, tp = _interleaved(twin_fn, peer_fn, args.repeats)
            twin_rate, peer_rate = count / tt, count / tp
            results[name][nt] = (twin_rate, peer_rate)
            ratio = f"{twin_rate / peer_rate:7.2f}" if peer_fn else "      -"
            peer = f"{peer_rate:12.3e}" if peer_fn else f"{'-':>12}"
            print(f"{name:<20} {nt:>7} {twin_rate:12.3e} {peer} {ratio}")
    if scene is None:
        print("open3d is not installed: no peer, no ratios (pip install open3d)")
        return 1
    ok = True
    for name, need in REQUIRED.items():
        worst = min(twin / peer for twin, peer in results[name].values())
        ok &= worst >= need
        print(
            f"required: {name} >= {need}x Embree at 1 and 2 threads: worst {worst:.2f}x {'ok' if worst >= need else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
