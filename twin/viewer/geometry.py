"""Plain numpy geometry for the scene (no VTK): road ribbons, pipe polylines, building parts per storey, space
floors, flood cells. Each returns vertices/faces or lines that :mod:`twin.viewer.scene` wraps in PyVista meshes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

BUILDING_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("walls", ("walls", "other")),
    ("slabs", ("slabs", "roofs")),
    ("doors", ("doors",)),
    ("stairs", ("stairs",)),
    ("windows", ("windows",)),
)
"""Render groups of a building storey and the mesh families (:data:`twin.city.building.FAMILIES`) in each."""


def ground_z(terrain: Any, x: FloatArray, y: FloatArray, default: float = 0.0) -> FloatArray:
    """Terrain height (m) at (x, y), ``default`` where there is no terrain or no data."""
    x = np.asarray(x, dtype=np.float64)
    if terrain is None:
        return np.full(x.shape, default)
    z = terrain.height_at(x, np.asarray(y, dtype=np.float64))
    return np.where(np.isfinite(z), z, default)


def ribbons(
    shapes: list[FloatArray], widths: FloatArray, *, terrain: Any = None, lift_m: float = 0.3
) -> tuple[FloatArray, IntArray, IntArray]:
    """Flat ribbons along polylines (roads), draped on the terrain.

    shapes : list of (n_i, 2) float64 centre lines, metres (n_i >= 2).
    widths : (len(shapes),) float64 full widths, metres.
    Returns ``vertices`` (v, 3) float64 metres, ``faces`` (f, 3) int64 triangles (counter-clockwise from above)
    and ``owner`` (f,) int64, the polyline each triangle belongs to.
    """
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    base = 0
    for i, shape in enumerate(shapes):
        p = np.asarray(shape, dtype=np.float64).reshape(-1, 2)
        keep = np.ones(len(p), dtype=bool)
        keep[1:] = np.hypot(*np.diff(p, axis=0).T) > 1e-6
        p = p[keep]
        if len(p) < 2:
            continue
        seg = np.diff(p, axis=0)
        seg /= np.hypot(seg[:, 0], seg[:, 1])[:, None]
        tangent = np.vstack([seg[:1], seg[:-1] + seg[1:], seg[-1:]])
        norm = np.hypot(tangent[:, 0], tangent[:, 1])
        tangent = np.where(
            norm[:, None] > 1e-9, tangent / np.maximum(norm, 1e-9)[:, None], np.vstack([seg, seg[-1:]])
        )
        left = np.column_stack([-tangent[:, 1], tangent[:, 0]]) * (0.5 * float(widths[i]))
        n = len(p)
        ring = np.vstack([p + left, p - left])  # 0..n-1 left side, n..2n-1 right side
        z = ground_z(terrain, ring[:, 0], ring[:, 1]) + lift_m
        verts.append(np.column_stack([ring, z]))
        k = np.arange(n - 1)
        lft, rgt = base + k, base + n + k
        faces.append(np.column_stack([rgt, rgt + 1, lft + 1]))
        faces.append(np.column_stack([rgt, lft + 1, lft]))
        owner.append(np.full(2 * (n - 1), i, dtype=np.int64))
        base += 2 * n
    if not verts:
        return np.empty((0, 3)), np.empty((0, 3), dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.vstack(verts), np.vstack(faces).astype(np.int64), np.concatenate(owner)


def pipe_polylines(network: Any) -> tuple[FloatArray, list[IntArray]]:
    """Points and one polyline per link of a :class:`~twin.city.pipes.PipeNetwork`.

    Returns ``points`` (p, 3) float64 metres (nodes first, then interior vertices with z interpolated between
    the link's end nodes along its length) and ``lines``: for link ``k``, the (m_k,) int64 point indices.
    """
    nodes = network.node_xyz() if hasattr(network, "node_xyz") else network.nodes[["x_m", "y_m", "z_m"]]
    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, 3)
    points = [nodes]
    n_points = len(nodes)
    lines: list[IntArray] = []
    links = network.links
    starts = links["start_index"].to_numpy(dtype=np.int64)
    ends = links["end_index"].to_numpy(dtype=np.int64)
    vertex_lists = links["vertices"] if "vertices" in links.columns else [None] * len(links)
    for a, b, inner in zip(starts, ends, vertex_lists, strict=True):
        if inner is None or len(inner) == 0:
            lines.append(np.array([a, b], dtype=np.int64))
            continue
        xy = np.vstack([nodes[a, :2], np.asarray(list(inner), dtype=np.float64).reshape(-1, 2), nodes[b, :2]])
        along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        frac = along / along[-1] if along[-1] > 0 else np.linspace(0, 1, len(xy))
        z = nodes[a, 2] + frac * (nodes[b, 2] - nodes[a, 2])
        mid = np.column_stack([xy[1:-1], z[1:-1]])
        idx = np.arange(n_points, n_points + len(mid), dtype=np.int64)
        points.append(mid)
        n_points += len(mid)
        lines.append(np.concatenate([[a], idx, [b]]).astype(np.int64))
    return np.vstack(points), lines


def element_storeys(building: Any, mesh: Any) -> IntArray:
    """Storey row (0 = lowest) of each element of ``mesh``: its storey GUID, else by the z of its lowest vertex.

    Returns (n_elements,) int64.
    """
    storeys = building.storeys
    index = {g: i for i, g in enumerate(storeys["guid"])}
    out = np.array([index.get(g, -1) for g in mesh.elements["storey"]], dtype=np.int64)
    missing = np.flatnonzero(out < 0)
    if len(missing) and len(mesh.faces):
        elev = storeys["elevation_m"].to_numpy(dtype=np.float64)
        zmin = np.full(mesh.n_elements, np.inf)
        face_z = mesh.vertices[mesh.faces][:, :, 2].min(axis=1)
        np.minimum.at(zmin, mesh.face_element, face_z)
        lvl = np.searchsorted(elev, zmin[missing] + 0.05, side="right") - 1
        out[missing] = np.clip(lvl, 0, max(len(elev) - 1, 0))
    out[out < 0] = 0
    return out


def storey_parts(building: Any) -> dict[tuple[int, str], tuple[FloatArray, IntArray]]:
    """The building's meshes split per (storey row, render group of :data:`BUILDING_PARTS`).

    Returns ``{(storey, group): (vertices (v, 3) float64 metres, faces (f, 3) int64)}``, empty parts left out.
    """
    out: dict[tuple[int, str], tuple[FloatArray, IntArray]] = {}
    for group, families in BUILDING_PARTS:
        per_storey: dict[int, list[tuple[FloatArray, IntArray]]] = {}
        for fam in families:
            mesh = building.meshes[fam]
            if not len(mesh.faces):
                continue
            face_storey = element_storeys(building, mesh)[mesh.face_element]
            for s in np.unique(face_storey):
                faces = mesh.faces[face_storey == s]
                used, inverse = np.unique(faces, return_inverse=True)
                per_storey.setdefault(int(s), []).append((mesh.vertices[used], inverse.reshape(-1, 3)))
        for s, parts in per_storey.items():
            verts, faces, base = [], [], 0
            for v, f in parts:
                verts.append(v)
                faces.append(f + base)
                base += len(v)
            out[(s, group)] = (np.vstack(verts), np.vstack(faces).astype(np.int64))
    return out


def space_floors(building: Any, *, lift_m: float = 0.05) -> tuple[FloatArray, IntArray, IntArray]:
    """Floor triangles of the building's spaces, for the smoke overlay.

    Returns ``vertices`` (v, 3) float64 metres (each space's floor at its ``z_m`` + ``lift_m``), ``faces`` (f, 3)
    int64 and ``space_row`` (f,) int64 row of ``building.spaces`` each triangle belongs to.
    """
    from twin.city.citymodel import triangulate_polygons

    spaces = building.spaces
    rows = [i for i, g in enumerate(spaces["footprint"]) if g is not None and not g.is_empty]
    if not rows:
        return np.empty((0, 3)), np.empty((0, 3), dtype=np.int64), np.empty(0, dtype=np.int64)
    tri, owner = triangulate_polygons(np.array([spaces["footprint"][i] for i in rows], dtype=object))
    z = spaces["z_m"].to_numpy(dtype=np.float64)[rows]
    z = np.where(np.isfinite(z), z, 0.0)
    verts = np.concatenate([tri.reshape(-1, 2), np.repeat(z[owner], 3)[:, None] + lift_m], axis=1)
    faces = np.arange(len(verts), dtype=np.int64).reshape(-1, 3)
    return verts, faces, np.asarray(rows, dtype=np.int64)[owner]


def flood_cells(
    flood: dict[str, Any], *, terrain: Any = None, min_depth_m: float = 0.02, lift_m: float = 0.1
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Quads of the flooded cells of ``flood_max_depth.npz`` (``depth_m`` (ny, nx) south-up, lower-left corner
    ``x0, y0``, square cells of ``cell_m``), at the water surface over the terrain.

    Returns ``vertices`` (4k, 3) float64 metres, ``faces`` (2k, 3) int64 and ``depth`` (2k,) float64 metres per
    triangle, for the k cells deeper than ``min_depth_m``.
    """
    depth = np.asarray(flood["depth_m"], dtype=np.float64)
    x0, y0, h = float(flood["x0"]), float(flood["y0"]), float(flood["cell_m"])
    rows, cols = np.nonzero(np.nan_to_num(depth) > min_depth_m)
    if not len(rows):
        return np.empty((0, 3)), np.empty((0, 3), dtype=np.int64), np.empty(0)
    d = depth[rows, cols]
    cx, cy = x0 + (cols + 0.5) * h, y0 + (rows + 0.5) * h
    z = ground_z(terrain, cx, cy) + d + lift_m
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * h
    xy = np.stack([cx, cy], axis=1)[:, None, :] + corners[None]
    verts = np.concatenate([xy, np.repeat(z[:, None, None], 4, axis=1)], axis=2).reshape(-1, 3)
    base = 4 * np.arange(len(rows), dtype=np.int64)[:, None]
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=0)
    return verts, faces, np.concatenate([d, d])
