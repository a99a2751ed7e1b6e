"""The Python face of the C++ spatial core (``twin._core``): thin, typed wrappers with documented array shapes.

All positions are float64 metres in the city's local frame. Batched queries take (n, d) arrays and return arrays;
misses are ``inf`` (distances) and ``-1`` (indices). Variable-length answers are CSR (``offsets``, ``indices``).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from twin import _core
from twin.typing import BoolArray, FloatArray, IntArray

__all__ = ["ClosestPoints", "RayHits", "TriangleBVH", "get_num_threads", "set_num_threads"]

logger = logging.getLogger(__name__)


def set_num_threads(n: int) -> None:
    """Threads used by batched queries. Results never depend on it."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(_core.get_num_threads())


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
