"""The Python face of the C++ spatial core (``twin._core``): thin, typed wrappers with documented array shapes.

All positions are float64 metres in the city's local frame. Batched queries take (n, d) arrays and return arrays;
misses are ``inf`` (distances) and ``-1`` (indices). Variable-length answers are CSR (``offsets``, ``indices``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from twin import _core
from twin.typing import BoolArray, FloatArray, IntArray

__all__ = [
    "ClosestPoints",
    "DistanceField",
    "Graph",
    "KNearest",
    "NearestWalls",
    "NeighborGrid",
    "Neighbors",
    "Path",
    "RayHits",
    "SegmentIndex2D",
    "ShortestPaths",
    "TriangleBVH",
    "get_num_threads",
    "set_num_threads",
]

logger = logging.getLogger(__name__)


def set_num_threads(n: int) -> None:
    """Threads used by batched queries. Results never depend on it."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(_core.get_num_threads())


# ---------------------------------------------------------------------------------------------------------------
# Navigation: DistanceField (walkable rasters of several storeys) and Graph (road, pipe, connectivity networks).

_CONNECTOR_FIELDS = ("level_a", "iy_a", "ix_a", "level_b", "iy_b", "ix_b", "cost_m")


def _connector_rows(connectors: Any) -> FloatArray | None:
    """Connectors as (c, 7) float64 rows from an array, a structured array or a sequence of mappings."""
    if connectors is None:
        return None
    names = getattr(getattr(connectors, "dtype", None), "names", None)
    if names is not None:
        cost = "cost_m" if "cost_m" in names else "cost"
        missing = [f for f in (*_CONNECTOR_FIELDS[:6], cost) if f not in names]
        if missing:
            raise ValueError(
                f"connectors structured array lacks fields {missing}; expected {_CONNECTOR_FIELDS}"
            )
        cols = [np.asarray(connectors[f], dtype=np.float64) for f in (*_CONNECTOR_FIELDS[:6], cost)]
        return np.stack(cols, axis=-1).reshape(-1, 7)
    if isinstance(connectors, list | tuple) and connectors and isinstance(connectors[0], Mapping):
        rows = []
        for i, c in enumerate(connectors):
            try:
                rows.append(
                    [float(c[f]) for f in _CONNECTOR_FIELDS[:6]] + [float(c.get("cost_m", c.get("cost")))]
                )
            except (KeyError, TypeError) as exc:
                raise ValueError(
                    f"connectors[{i}] must have keys {_CONNECTOR_FIELDS}, got {sorted(c)}"
                ) from exc
        return np.asarray(rows, dtype=np.float64)
    return np.asarray(connectors)


class DistanceField:
    """Shortest walking distances to targets over walkable rasters of several levels linked by connectors.

    Method: Dijkstra on a ``stencil``-neighbour stencil (8: axial and diagonal moves; 16: plus knight moves
    (2, 1); 32: plus (3, 1) and (3, 2) moves). A move costs ``cell_size * |(dx, dy)|`` metres (scaled by the mean
    of the two cells' factors when :meth:`compute` gets a per-cell ``cost``) and is allowed only
    if the straight segment between the two cell centres touches walkable cells only (no corner cutting).
    In open space a distance between cell centres never underestimates the Euclidean distance and exceeds it by
    at most ``DistanceField.MAX_RELATIVE_ERROR[stencil]`` (8: 8.24 %, 16: 2.75 %, 32: 1.31 %; exact bounds).
    The default is 32, the only stencil within 2 % everywhere; 16 takes about half the time at 2.75 %.

    Cell convention: cell ``(iy, ix)`` of level ``l`` spans ``[x0 + ix*h, x0 + (ix+1)*h) x [y0 + iy*h,
    y0 + (iy+1)*h)`` with ``(x0, y0) = origins[l]``, ``h = cell_size`` (borders are these float64 values);
    its centre is ``(x0 + (ix+0.5)*h, y0 + (iy+0.5)*h)``. A point on a border belongs to the cell above/right.

    Parameters
    ----------
    walkable : (levels, ny, nx) or (ny, nx) bool or uint8; non-zero cells are walkable. 2-D means one level;
        results are still (1, ny, nx).
    cell_size : cell edge length h, metres.
    origins : (levels, 2) float64, metres: (x0, y0) of the lower-left corner of cell (0, 0) per level
        ((2,) is accepted for one level).
    connectors : links between cells (stairs), both directions: (c, 7) float64 rows
        ``(level_a, iy_a, ix_a, level_b, iy_b, ix_b, cost_m)``, or a structured array or list of dicts with
        those fields (``cost`` is accepted for ``cost_m``). Costs in metres (for time fields scale them by the
        speed ratio); both cells must be walkable.
    stencil : 8, 16 or 32 neighbours.
    """

    MAX_RELATIVE_ERROR = {
        8: float(np.hypot(1.0, np.sqrt(2.0) - 1.0) - 1.0),
        16: float(np.hypot(1.0, np.sqrt(5.0) - 2.0) - 1.0),
        32: float(np.hypot(1.0, np.sqrt(10.0) - 3.0) - 1.0),
    }

    MAX_DIRECTION_ERROR_DEG = {
        8: 22.5,
        16: float(np.degrees(np.arctan2(1.0, 2.0)) / 2),
        32: float(np.degrees(np.arctan2(1.0, 3.0)) / 2),
    }

    def __init__(
        self,
        walkable: BoolArray | np.ndarray,
        *,
        cell_size: float,
        origins: FloatArray,
        connectors: Any = None,
        stencil: int = 32,
    ) -> None:
        self._core = _core.DistanceField(
            walkable,
            cell_size=float(cell_size),
            origins=origins,
            connectors=_connector_rows(connectors),
            stencil=int(stencil),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(levels, ny, nx) of every distance array."""
        return tuple(self._core.shape)

    @property
    def cell_size(self) -> float:
        """Cell edge length, metres."""
        return float(self._core.cell_size)

    @property
    def stencil(self) -> int:
        return int(self._core.stencil)

    @property
    def origins(self) -> FloatArray:
        """(levels, 2) float64, metres (read-only)."""
        return self._core.origins

    @property
    def walkable(self) -> BoolArray:
        """(levels, ny, nx) bool (read-only)."""
        return self._core.walkable

    @property
    def connectors(self) -> FloatArray:
        """(c, 7) float64 rows (level_a, iy_a, ix_a, level_b, iy_b, ix_b, cost_m)."""
        return self._core.connectors

    def compute(
        self, targets: IntArray, initial: FloatArray | None = None, *, cost: FloatArray | None = None
    ) -> FloatArray:
        """Multi-source shortest distances.

        targets : (t, 3) int cells (level, iy, ix); each must be walkable (``ValueError`` names the first that
            is not). No targets gives all ``inf``.
        initial : (t,) float64 metres, optional starting cost per target (default 0; ``inf`` disables one).
        cost : (levels, ny, nx) float64 (or (ny, nx) for one level), optional per-cell cost factor, every value
            finite and > 0 (``ValueError`` names the first cell that is not; values on non-walkable cells are
            checked but unused). A stencil move from cell a to cell b then costs its length times
            ``(cost[a] + cost[b]) / 2``, so the result is in factor-weighted metres (e.g. free-flow seconds times
            the free speed when the factor is free speed / local speed: quickest rather than shortest routes).
            Connectors keep their own cost. None (default) is the plain metric, the same numbers as factor 1.
        Returns (levels, ny, nx) float64 metres, ``inf`` where non-walkable or unreachable.
        """
        return self._core.compute(targets, initial, cost=cost)

    def compute_from_points(
        self, points: FloatArray, levels: IntArray | None = None, *, cost: FloatArray | None = None
    ) -> FloatArray:
        """Distances from point targets: (t, 2) float64 metres on levels (t,) int (default all 0).

        Each point seeds the cell containing it with the distance from the point to that cell's centre, so the
        result approximates the distance to the point within ``MAX_RELATIVE_ERROR`` plus ``2 * h / sqrt(2)``.
        cost : optional per-cell cost factor as in :meth:`compute` (the seed itself is not scaled).
        Returns (levels, ny, nx) float64 metres.
        """
        return self._core.compute_from_points(points, levels, cost=cost)

    def locate(self, points: FloatArray, levels: IntArray | None = None) -> IntArray:
        """Cells (k, 3) int64 (level, iy, ix) containing points (k, 2) float64; rows of -1 outside."""
        return self._core.locate(points, levels)

    def gradient(self, distances: FloatArray) -> FloatArray:
        """Unit descent direction (levels, ny, nx, 2) float64 per cell; 0 where there is none.

        The upwind gradient (per axis toward the lower walkable neighbour) where every cell a short step in
        that direction can enter is walkable; elsewhere the allowed 8-neighbour move of steepest descent.
        Either way a straight step shorter than ``cell_size`` from any point of the cell stays on walkable
        cells. In open space it is within ``MAX_DIRECTION_ERROR_DEG[stencil]`` (32: 9.2, 16: 13.3, 8: 22.5
        degrees) of the true direction to the target. 0 at targets, non-walkable or unreachable cells, and
        connector landings whose best route is the connector.
        """
        return self._core.gradient(distances)

    def sample(self, distances: FloatArray, points: FloatArray, levels: IntArray | None = None) -> FloatArray:
        """Distances (k,) float64 at points (k, 2) float64 metres on levels (k,) int (default all 0).

        Bilinear between cell centres where all four surrounding cells are finite; otherwise the containing
        cell's value, or the nearest finite of the four; ``inf`` outside the raster or for non-finite points.
        O(1) per point, parallel over points.
        """
        return self._core.sample(distances, points, levels)

    def sample_direction(
        self, distances: FloatArray, points: FloatArray, levels: IntArray | None = None
    ) -> FloatArray:
        """Unit descent directions (k, 2) float64 at points (k, 2) on levels (k,) (default all 0).

        The direction of the containing cell (as :meth:`gradient`); for a point inside a non-walkable or
        unreachable cell, the unit vector to the centre of the nearest finite cell among the four around it,
        so agents pushed into a wall step back out; 0 if none or outside.
        """
        return self._core.sample_direction(distances, points, levels)


class ShortestPaths(NamedTuple):
    """Single-source shortest paths, one row per source."""

    distances: FloatArray
    """(s, n) float64, edge-weight units; inf where unreachable (or beyond ``limit``)."""
    predecessors: IntArray
    """(s, n) int64, the previous node on a shortest path; -1 for the source and unreachable nodes."""


class Path(NamedTuple):
    nodes: IntArray
    """(p,) int64 from source to target; empty if unreachable."""
    length: float
    """Sum of edge weights; inf if unreachable."""


class Graph:
    """Weighted graph in CSR form: Dijkstra, A* and many-to-many for road, pipe and connectivity networks.

    Parameters
    ----------
    n_nodes : number of nodes (ids 0 .. n_nodes-1).
    src, dst : (m,) int edge end nodes. Multi-edges and self-loops are allowed.
    weight : (m,) float64 >= 0 (lengths in metres or travel times); ``inf`` closes an edge. A negative or NaN
        weight raises ``ValueError`` naming the edge index.
    coords : (n_nodes, 2 | 3) float64 metres, optional, for the A* heuristic.
    directed : if False each edge is usable both ways.

    Immutable: :meth:`with_weights` returns a new graph (e.g. closing roads by setting their weight to inf).
    Searches settle nodes in (distance, node id) order and a node's predecessor is the lowest-id settled node
    offering its final distance, so results never depend on the thread count.
    """

    def __init__(
        self,
        n_nodes: int,
        src: IntArray,
        dst: IntArray,
        weight: FloatArray,
        *,
        coords: FloatArray | None = None,
        directed: bool = True,
    ) -> None:
        self._core = _core.Graph(int(n_nodes), src, dst, weight, coords=coords, directed=bool(directed))

    @classmethod
    def _wrap(cls, core: Any) -> Graph:
        g = cls.__new__(cls)
        g._core = core
        return g

    @property
    def n_nodes(self) -> int:
        return int(self._core.n_nodes)

    @property
    def n_edges(self) -> int:
        return int(self._core.n_edges)

    @property
    def directed(self) -> bool:
        return bool(self._core.directed)

    @property
    def src(self) -> IntArray:
        """(m,) int64 (read-only)."""
        return self._core.src

    @property
    def dst(self) -> IntArray:
        """(m,) int64 (read-only)."""
        return self._core.dst

    @property
    def weight(self) -> FloatArray:
        """(m,) float64 (read-only)."""
        return self._core.weight

    @property
    def coords(self) -> FloatArray | None:
        """(n_nodes, 2 | 3) float64 metres (read-only), or None."""
        return self._core.coords

    @property
    def max_heuristic_scale(self) -> float:
        """Largest admissible A* ``heuristic_scale``: min over edges of weight / straight-line length."""
        return float(self._core.max_heuristic_scale)

    def with_weights(self, weight: FloatArray) -> Graph:
        """A new graph with the same edges and weights (m,) float64 (``inf`` closes an edge)."""
        return Graph._wrap(self._core.with_weights(weight))

    def dijkstra(self, sources: IntArray | int, *, limit: float = np.inf) -> ShortestPaths:
        """Shortest paths from sources (s,) int: distances (s, n) float64 and predecessors (s, n) int64.

        Nodes farther than ``limit`` get ``inf`` and -1. Parallel over sources.
        """
        dist, pred = self._core.dijkstra(sources, limit=float(limit))
        return ShortestPaths(dist, pred)

    def shortest_path(
        self, source: int, target: int, *, astar: bool = True, heuristic_scale: float = 1.0
    ) -> Path:
        """Shortest path from source to target: nodes (p,) int64 and its length (empty and inf if unreachable).

        With ``astar`` and coords, the heuristic is ``heuristic_scale`` times the straight-line distance to the
        target. It is admissible only if every edge weight is at least ``heuristic_scale`` times its
        straight-line length: 1.0 (default) when weights are lengths in metres, ``1 / v_max`` when they are
        travel times at speeds up to ``v_max``. A larger scale raises ``ValueError`` (see
        :attr:`max_heuristic_scale`; 1e-9 relative slack is allowed for weights computed as lengths). Without
        coords this is plain Dijkstra.
        """
        nodes, length = self._core.shortest_path(
            source, target, astar=bool(astar), heuristic_scale=float(heuristic_scale)
        )
        return Path(nodes, float(length))

    def many_to_many(self, sources: IntArray, targets: IntArray) -> FloatArray:
        """Distances (s, t) float64 from sources (s,) int to targets (t,) int; inf where unreachable."""
        return self._core.many_to_many(sources, targets)


# --- TriangleBVH (core_cpp/src/bvh.cpp) --------------------------------------------------------------------


class RayHits(NamedTuple):
    """First hits of k rays (see :meth:`TriangleBVH.cast_rays`).

    t : (k,) float64
        Ray parameter of the hit, in units of the ray's direction vector (metres for unit directions);
        ``inf`` on a miss.
    triangle : (k,) int64
        Row of the hit triangle in the mesh's ``triangles``; ``-1`` on a miss.
    normal : (k, 3) float64
        Unit geometric normal of the hit triangle, oriented against the ray direction; ``NaN`` on a miss.
    point : (k, 3) float64, metres
        ``origin + t * direction``; ``NaN`` on a miss.
    """

    t: FloatArray
    triangle: IntArray
    normal: FloatArray
    point: FloatArray


class ClosestPoints(NamedTuple):
    """Closest mesh points to k query points (see :meth:`TriangleBVH.closest_points`).

    point : (k, 3) float64, metres
        Closest point on the mesh; ``NaN`` for an empty mesh.
    triangle : (k,) int64
        Row of the triangle it lies on (the lowest such row on ties); ``-1`` for an empty mesh.
    distance : (k,) float64, metres
        Euclidean distance from the query point; ``inf`` for an empty mesh.
    """

    point: FloatArray
    triangle: IntArray
    distance: FloatArray


class TriangleBVH:
    """Bounding volume hierarchy over a triangle mesh: batched ray casts, line of sight, closest points.

    Parameters
    ----------
    vertices : (n, 3) float64, metres
        Vertex positions in the local frame; must be finite.
    triangles : (m, 3) int32 or int64
        Vertex indices of each triangle, each in ``[0, n)``. Triangles of zero area (repeated or collinear
        vertices) are allowed: they keep their row number but are never hit and never closest. An empty
        mesh (m = 0) is allowed: every ray misses, nothing is occluded, closest points are ``NaN``/``-1``/``inf``.

    Raises ``ValueError`` naming the argument for a wrong shape or dtype, a non-finite vertex or an index out
    of range (with the offending row and column).

    Ray/triangle tests are watertight (Woop, Benthin & Wald 2013) in float64: a ray through an edge or vertex
    shared by triangles hits one of them, so rays cannot slip through a closed mesh. A ray lying in a
    triangle's plane does not hit that triangle. Ties (equal t or equal distance) go to the lowest triangle
    row, and no result depends on the number of threads (:func:`set_num_threads`).
    """

    def __init__(self, vertices: npt.ArrayLike, triangles: npt.ArrayLike) -> None:
        self._bvh = _core.TriangleBVH(vertices, triangles)
        stats = self._bvh.stats
        logger.debug(
            "TriangleBVH: %d triangles, %d nodes, depth %d, built in %.3f s",
            self._bvh.n_triangles,
            stats["n_nodes"],
            stats["depth"],
            stats["build_seconds"],
        )

    @property
    def n_triangles(self) -> int:
        """Number of triangles (rows of ``triangles``), degenerate ones included."""
        return int(self._bvh.n_triangles)

    @property
    def n_vertices(self) -> int:
        """Number of vertices (rows of ``vertices``)."""
        return int(self._bvh.n_vertices)

    @property
    def bounds(self) -> FloatArray:
        """(2, 3) float64, metres: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of the triangles' vertices;
        rows of ``+inf`` and ``-inf`` for an empty mesh."""
        return self._bvh.bounds

    @property
    def stats(self) -> dict[str, float]:
        """Build statistics: ``n_binary_nodes``, ``n_nodes`` (4-wide), ``n_leaves``, ``depth``, ``build_seconds``."""
        return dict(self._bvh.stats)

    def cast_rays(
        self,
        origins: npt.ArrayLike,
        directions: npt.ArrayLike,
        *,
        tmin: float = 0.0,
        tmax: float = np.inf,
    ) -> RayHits:
        """First hit of each ray ``origin + t * direction`` with ``tmin <= t <= tmax``.

        Parameters
        ----------
        origins : (k, 3) float64, metres
        directions : (k, 3) float64
            Need not be unit length: ``t`` is measured in units of each direction vector. A zero direction
            raises ``ValueError``.
        tmin, tmax : float
            Accepted range of ``t``, ``0 <= tmin <= tmax`` (``tmax`` may be ``inf``). Both ends are inclusive:
            a ray starting on a surface hits it at ``t = 0`` unless ``tmin`` is set above 0.

        Returns
        -------
        RayHits
            ``t`` (k,), ``triangle`` (k,) int64, ``normal`` (k, 3), ``point`` (k, 3); misses are ``inf``, ``-1``,
            ``NaN``, ``NaN``.
        """
        t, tri, normal, point = self._bvh.cast_rays(origins, directions, tmin=float(tmin), tmax=float(tmax))
        return RayHits(t, tri, normal, point)

    def occluded(self, a: npt.ArrayLike, b: npt.ArrayLike, *, eps: float = 1e-6) -> BoolArray:
        """Line of sight: whether some triangle crosses the open segment from ``a[i]`` to ``b[i]``.

        Parameters
        ----------
        a, b : (k, 3) float64, metres
            Segment end points. A zero-length segment is never occluded.
        eps : float
            End points are excluded: only hits at segment parameter ``s`` in ``[eps, 1 - eps]`` count
            (``s = 0`` at ``a``, ``1`` at ``b``), so a point lying on a wall or the ground sees past it.
            Must be in ``[0, 0.5)``.

        Returns
        -------
        (k,) bool
            ``True`` where the line of sight is blocked. Each segment stops at the first hit found.
        """
        return self._bvh.occluded(a, b, eps=float(eps))

    def closest_points(self, points: npt.ArrayLike) -> ClosestPoints:
        """Closest point on the mesh to each query point.

        Parameters
        ----------
        points : (k, 3) float64, metres

        Returns
        -------
        ClosestPoints
            ``point`` (k, 3), ``triangle`` (k,) int64, ``distance`` (k,) in metres.
        """
        point, tri, dist = self._bvh.closest_points(points)
        return ClosestPoints(point, tri, dist)


_ = np  # numpy is used by the wrappers below


# --- walls and neighbours: SegmentIndex2D, NeighborGrid -------------------------------------------------------


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
