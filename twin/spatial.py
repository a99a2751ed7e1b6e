"""The Python face of the C++ spatial core (``twin._core``): thin, typed wrappers with documented array shapes.

All positions are float64 metres in the city's local frame. Batched queries take (n, d) arrays and return arrays;
misses are ``inf`` (distances) and ``-1`` (indices). Variable-length answers are CSR (``offsets``, ``indices``).
"""

from __future__ import annotations

import numpy as np

from twin import _core

__all__ = ["get_num_threads", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Threads used by batched queries. Results never depend on it."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(_core.get_num_threads())


_ = np  # numpy is used by the wrappers below


# --- walls and neighbours: SegmentIndex2D, NeighborGrid -------------------------------------------------------

import math  # noqa: E402
from typing import NamedTuple  # noqa: E402

from twin.typing import FloatArray, IntArray  # noqa: E402

__all__ += ["KNearest", "NearestWalls", "NeighborGrid", "Neighbors", "SegmentIndex2D"]


class NearestWalls(NamedTuple):
    """Nearest wall of each query point (``SegmentIndex2D.nearest``); k query points."""

    distance: FloatArray
    """(k,) float64, metres; ``inf`` when no wall is within ``max_distance`` (or none on the point's level)."""
    normal: FloatArray
    """(k, 2) float64 unit vector from the closest wall point towards the query point; for a point exactly on a
    wall, the wall's left-hand normal (-dy, dx)/|d|; (0, 0) for a miss or exactly on a zero-length wall."""
    segment: IntArray
    """(k,) int64 row of the nearest segment (ties: the lowest row); -1 for a miss."""
    point: FloatArray
    """(k, 2) float64 closest point on that wall, metres; NaN for a miss."""


class Neighbors(NamedTuple):
    """Variable-length answers in CSR form: the hits of query q are ``indices[offsets[q]:offsets[q + 1]]``."""

    offsets: IntArray
    """(k + 1,) int64, non-decreasing, ``offsets[0] == 0`` and ``offsets[-1] == nnz``."""
    indices: IntArray
    """(nnz,) int64 rows of the indexed points (or segments)."""
    distances: FloatArray
    """(nnz,) float64 distances in metres, aligned with ``indices``."""

    def row(self, q: int) -> tuple[IntArray, FloatArray]:
        """Indices and distances of query ``q``."""
        a, b = int(self.offsets[q]), int(self.offsets[q + 1])
        return self.indices[a:b], self.distances[a:b]

    def counts(self) -> IntArray:
        """(k,) int64 number of hits per query."""
        return np.diff(self.offsets)


class KNearest(NamedTuple):
    """The k nearest indexed points of each query, sorted by (distance, index)."""

    indices: IntArray
    """(k, kn) int64 point rows; -1 where fewer than kn points exist."""
    distances: FloatArray
    """(k, kn) float64 metres; ``inf`` where fewer than kn points exist."""


def _float_rows(a: object, name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a float64 array: {exc}") from None


def _levels(levels: object, name: str) -> np.ndarray | None:
    """Storey ids as (n,) int32; integer input only, checked against the int32 range (no silent wrap-around)."""
    if levels is None:
        return None
    arr = np.asarray(levels)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        if not (arr.size == 0 and arr.dtype == np.float64):  # np.asarray([]) is float64
            raise ValueError(f"{name} must be an integer array (int32 storey ids), got dtype {arr.dtype}")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{name} must fit in int32, got values in [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _radius(radius: float, name: str = "radius") -> float:
    r = float(radius)
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {radius!r}")
    return r


class SegmentIndex2D:
    """Walls as 2-D segments, optionally per storey, for nearest-wall and within-radius queries.

    One bounding-volume hierarchy per level (and one over all segments), so a query costs O(log n).

    Parameters
    ----------
    segments : (n, 4) float64, metres
        Rows ``[x0, y0, x1, y1]``; zero-length rows are points.
    levels : (n,) int32, optional
        Storey of each segment. Without it every segment is on level 0.
    """

    def __init__(self, segments: FloatArray, *, levels: object = None) -> None:
        self._index = _core.SegmentIndex2D(
            _float_rows(segments, "segments"), levels=_levels(levels, "levels")
        )

    def __len__(self) -> int:
        return int(self._index.size)

    def __repr__(self) -> str:
        return f"SegmentIndex2D({len(self)} segments, levels {self.levels.tolist()})"

    @property
    def levels(self) -> np.ndarray:
        """(m,) int32 distinct levels, ascending."""
        return self._index.levels

    def nearest(
        self, points: FloatArray, *, levels: object = None, max_distance: float = math.inf
    ) -> NearestWalls:
        """Nearest wall of each point.

        Parameters
        ----------
        points : (k, 2) float64, metres
        levels : (k,) int32, optional
            Level of each point; only walls on that level count (a level without walls gives misses).
            Without it, walls on every level count.
        max_distance : float, metres
            Walls farther than this are ignored (``inf`` by default).
        """
        md = float(max_distance)
        if not md >= 0:
            raise ValueError(f"max_distance must be >= 0 (inf allowed), got {max_distance!r}")
        d, n, s, p = self._index.nearest(
            _float_rows(points, "points"), levels=_levels(levels, "levels"), max_distance=md
        )
        return NearestWalls(d, n, s, p)

    def within(self, points: FloatArray, radius: float, *, levels: object = None) -> Neighbors:
        """All walls within ``radius`` metres (distance <= radius) of each point, each row sorted by segment.

        points : (k, 2) float64, metres; levels : (k,) int32, optional (as in ``nearest``).
        """
        off, idx, dist = self._index.within(
            _float_rows(points, "points"), _radius(radius), levels=_levels(levels, "levels")
        )
        return Neighbors(off, idx, dist)


class NeighborGrid:
    """Uniform grid for neighbour search among agents, rebuilt every step in O(n).

    Pick ``cell_size`` close to the usual query radius. The grid spans the points' bounding box; when that would
    need more than min(4 n + 1024, 2^26) cells (huge spread, tiny cells) it switches to spatial hashing, so
    memory stays O(n) whatever the spread (``hashed`` tells which). All answers are exact and independent of the
    thread count.

    Parameters
    ----------
    cell_size : float, metres (> 0)
    dim : 2 or 3
    """

    def __init__(self, cell_size: float, *, dim: int = 2) -> None:
        self._grid = _core.NeighborGrid(float(cell_size), dim=int(dim))

    @property
    def dim(self) -> int:
        return int(self._grid.dim)

    @property
    def cell_size(self) -> float:
        return float(self._grid.cell_size)

    @property
    def hashed(self) -> bool:
        """True if the last rebuild used spatial hashing instead of a dense grid."""
        return bool(self._grid.hashed)

    def __len__(self) -> int:
        return int(self._grid.size)

    def __repr__(self) -> str:
        mode = "hashed" if self.hashed else "dense"
        return f"NeighborGrid({len(self)} points, dim={self.dim}, cell_size={self.cell_size:g}, {mode})"

    def rebuild(self, points: FloatArray) -> None:
        """Index ``points`` : (n, dim) float64, metres (finite). Row i is point i in every answer."""
        self._grid.rebuild(_float_rows(points, "points"))

    def query_radius(
        self, queries: FloatArray, radius: float, *, exclude_self: bool = False, sort: bool = True
    ) -> Neighbors:
        """All points within ``radius`` metres (distance <= radius) of each query.

        queries : (k, dim) float64, metres. ``exclude_self``: queries are the indexed points (k == n) and point i
        is left out of row i. ``sort``: rows sorted by (distance, index); otherwise in a fixed scan order.
        """
        off, idx, dist = self._grid.query_radius(
            _float_rows(queries, "queries"), _radius(radius), exclude_self=bool(exclude_self), sort=bool(sort)
        )
        return Neighbors(off, idx, dist)

    def query_knn(self, queries: FloatArray, k_neighbors: int, *, exclude_self: bool = False) -> KNearest:
        """The ``k_neighbors`` nearest points of each query, sorted by (distance, index).

        queries : (k, dim) float64, metres. Returns (k, k_neighbors) arrays padded with -1 / inf.
        """
        idx, dist = self._grid.query_knn(
            _float_rows(queries, "queries"), int(k_neighbors), exclude_self=bool(exclude_self)
        )
        return KNearest(idx, dist)

    def pairs_within(self, radius: float) -> IntArray:
        """All unordered pairs (i, j), i < j, of indexed points within ``radius`` metres: (p, 2) int64, sorted."""
        return self._grid.pairs_within(_radius(radius))
