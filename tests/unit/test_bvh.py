"""TriangleBVH against slow numpy references: brute-force Möller–Trumbore over all triangles for rays and
occlusion, brute-force point/triangle distances (plane projection or nearest edge) for closest points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twin.spatial import ClosestPoints, RayHits, TriangleBVH, get_num_threads, set_num_threads

# ------------------------------------------------------------------------------------------------------------
# References


def ref_cast(vertices, triangles, origins, directions, tmin=0.0, tmax=np.inf):
    """All ray/triangle parameters by Möller–Trumbore, (k, m), inf where a ray misses a triangle."""
    v0 = vertices[triangles[:, 0]]
    e1 = vertices[triangles[:, 1]] - v0
    e2 = vertices[triangles[:, 2]] - v0
    d = directions[:, None, :]
    p = np.cross(d, e2[None])
    det = np.einsum("kmi,mi->km", p, e1)
    degenerate = np.all(np.cross(e1, e2) == 0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = 1.0 / det
        s = origins[:, None, :] - v0[None]
        u = np.einsum("kmi,kmi->km", s, p) * inv
        q = np.cross(s, e1[None])
        v = np.einsum("kmi,kmi->km", d, q) * inv
        t = np.einsum("mi,kmi->km", e2, q) * inv
        hit = (det != 0) & ~degenerate[None] & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= tmin) & (t <= tmax)
    return np.where(hit, t, np.inf)


def ref_first_hit(vertices, triangles, origins, directions, tmin=0.0, tmax=np.inf):
    """(t, triangle, second-best t) per ray; triangle is the lowest row among equal t."""
    if len(triangles) == 0:
        k = len(origins)
        return np.full(k, np.inf), np.full(k, -1), np.full(k, np.inf)
    t_all = ref_cast(vertices, triangles, origins, directions, tmin, tmax)
    tri = np.argmin(t_all, axis=1)
    t = t_all[np.arange(len(origins)), tri]
    tri = np.where(np.isfinite(t), tri, -1)
    second = np.sort(t_all, axis=1)[:, 1] if t_all.shape[1] > 1 else np.full(len(t), np.inf)
    return t, tri, second


def ref_normals(vertices, triangles, tri, directions):
    v0 = vertices[triangles[tri, 0]]
    n = np.cross(vertices[triangles[tri, 1]] - v0, vertices[triangles[tri, 2]] - v0)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    flip = np.einsum("ki,ki->k", n, directions) > 0
    n[flip] *= -1
    return n


def _closest_on_segments(p, a, b):
    """p (k, 1, 3), a/b (1, m, 3) -> closest points (k, m, 3)."""
    ab = b - a
    s = np.einsum("kmi,kmi->km", p - a, np.broadcast_to(ab, (p.shape[0],) + ab.shape[1:]))
    s = np.clip(s / np.einsum("kmi,kmi->km", ab, ab), 0.0, 1.0)
    return a + s[..., None] * ab


def ref_point_triangle_distances(vertices, triangles, points):
    """Distance from every point to every (non-degenerate) triangle, (k, m): the plane projection if it falls
    inside the triangle, else the nearest point of the three edges."""
    a = vertices[triangles[:, 0]][None]
    b = vertices[triangles[:, 1]][None]
    c = vertices[triangles[:, 2]][None]
    p = points[:, None, :]
    n = np.cross(b - a, c - a)
    nn = np.einsum("kmi,kmi->km", n, n)
    q = p - (np.einsum("kmi,kmi->km", p - a, n) / nn)[..., None] * n
    inside = (
        (np.einsum("kmi,kmi->km", np.cross(b - a, q - a), n) >= 0)
        & (np.einsum("kmi,kmi->km", np.cross(c - b, q - b), n) >= 0)
        & (np.einsum("kmi,kmi->km", np.cross(a - c, q - c), n) >= 0)
    )
    best = np.where(inside, np.linalg.norm(p - q, axis=2), np.inf)
    for s0, s1 in ((a, b), (b, c), (c, a)):
        e = _closest_on_segments(p, s0, s1)
        best = np.minimum(best, np.linalg.norm(p - e, axis=2))
    return best


# ------------------------------------------------------------------------------------------------------------
# Meshes


def random_soup(rng, m=300, size=0.15):
    centres = rng.uniform(0, 1, (m, 1, 3))
    vertices = (centres + rng.normal(0, size, (m, 3, 3))).reshape(-1, 3)
    triangles = np.arange(3 * m).reshape(m, 3)
    return vertices, triangles


def grid_mesh(nx=12, ny=10, *, rng=None, integer=False):
    """A connected heightfield: (nx+1)(ny+1) vertices, 2 nx ny triangles sharing edges."""
    x, y = np.meshgrid(np.arange(nx + 1, dtype=float), np.arange(ny + 1, dtype=float), indexing="xy")
    if integer:
        z = (x + 2 * y) % 3
    else:
        z = np.sin(x / 3) + np.cos(y / 4) + (0 if rng is None else rng.normal(0, 0.1, x.shape))
    vertices = np.column_stack([x.ravel(), y.ravel(), z.ravel()])
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="xy")
    a = (j * (nx + 1) + i).ravel()
    b, c, d = a + 1, a + nx + 1, a + nx + 2
    triangles = np.concatenate([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    return vertices, triangles


def cube(half=1.0):
    """Closed cube [-half, half]^3, 12 triangles, outward winding."""
    v = np.array(
        [[x, y, z] for z in (-half, half) for y in (-half, half) for x in (-half, half)],
        dtype=float,
    )
    # vertex index = x + 2 y + 4 z with 0 for -half and 1 for +half
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    tris = []
    for q0, q1, q2, q3 in quads:
        tris += [(q0, q1, q2), (q0, q2, q3)]
    return v, np.array(tris)


def random_rays(rng, k, lo=-0.2, hi=1.2):
    origins = rng.uniform(lo, hi, (k, 3))
    directions = rng.normal(size=(k, 3))
    return origins, directions


def assert_hits_match(bvh, vertices, triangles, origins, directions, **kw):
    hits = bvh.cast_rays(origins, directions, **kw)
    t, tri, second = ref_first_hit(vertices, triangles, origins, directions, **kw)
    hit = np.isfinite(t)
    np.testing.assert_array_equal(np.isfinite(hits.t), hit)
    np.testing.assert_allclose(hits.t[hit], t[hit], rtol=1e-9, atol=0)
    # ids must agree unless two triangles are hit at (numerically) the same t
    with np.errstate(invalid="ignore"):  # inf - inf where no second triangle is hit
        clear = hit & (second - t > 1e-9 * np.abs(t) + 1e-12)
    np.testing.assert_array_equal(hits.triangle[clear], tri[clear])
    np.testing.assert_array_equal(hits.triangle[~hit], -1)
    n = ref_normals(vertices, triangles, hits.triangle[hit], directions[hit])
    np.testing.assert_allclose(hits.normal[hit], n, atol=1e-12)
    assert np.all(np.einsum("ki,ki->k", hits.normal[hit], directions[hit]) <= 0)
    np.testing.assert_allclose(
        hits.point[hit], origins[hit] + hits.t[hit, None] * directions[hit], rtol=1e-12, atol=1e-12
    )
    assert np.isnan(hits.normal[~hit]).all()
    assert np.isnan(hits.point[~hit]).all()
    return hits, hit


# ------------------------------------------------------------------------------------------------------------
# Rays against the reference


def test_random_soup_rays_match_reference():
    rng = np.random.default_rng(1)
    vertices, triangles = random_soup(rng)
    bvh = TriangleBVH(vertices, triangles)
    origins, directions = random_rays(rng, 600)
    hits, hit = assert_hits_match(bvh, vertices, triangles, origins, directions)
    assert isinstance(hits, RayHits)
    assert hits.t.dtype == np.float64
    assert hits.triangle.dtype == np.int64
    assert hits.normal.shape == (600, 3)
    assert hits.point.shape == (600, 3)
    assert 0.2 < hit.mean() < 0.95  # the test exercises both hits and misses


def test_grid_mesh_rays_match_reference_with_tmin_tmax():
    rng = np.random.default_rng(2)
    vertices, triangles = grid_mesh(rng=rng)
    bvh = TriangleBVH(vertices, triangles.astype(np.int32))
    origins = rng.uniform([-1, -1, -3], [13, 11, 4], (500, 3))
    directions = rng.normal(size=(500, 3))
    assert_hits_match(bvh, vertices, triangles, origins, directions)
    assert_hits_match(bvh, vertices, triangles, origins, directions, tmin=0.5, tmax=3.0)


def test_direction_length_scales_t():
    rng = np.random.default_rng(3)
    vertices, triangles = random_soup(rng)
    bvh = TriangleBVH(vertices, triangles)
    origins, directions = random_rays(rng, 300)
    base = bvh.cast_rays(origins, directions)
    quarter = bvh.cast_rays(origins, 4.0 * directions)  # a power of two: exactly t / 4
    np.testing.assert_array_equal(quarter.t, base.t / 4.0)
    np.testing.assert_array_equal(quarter.triangle, base.triangle)
    scaled = bvh.cast_rays(origins, 3e-3 * directions)
    np.testing.assert_allclose(scaled.t, base.t / 3e-3, rtol=1e-12)
    np.testing.assert_allclose(scaled.point, base.point, rtol=1e-12, atol=1e-12)


def test_extreme_direction_lengths_and_mesh_scales():
    rng = np.random.default_rng(11)
    vertices, triangles = random_soup(rng, m=150)
    origins, directions = random_rays(rng, 300)
    base = TriangleBVH(vertices, triangles).cast_rays(origins, directions)
    assert (base.triangle >= 0).sum() > 50
    for scale in (1e-60, 1e60):  # beyond float range: boxes are kept in a scaled frame
        bvh = TriangleBVH(vertices * scale, triangles)
        hits = bvh.cast_rays(origins * scale, directions * scale)
        np.testing.assert_array_equal(hits.triangle, base.triangle)
        np.testing.assert_allclose(hits.t, base.t, rtol=1e-9)
        ok = hits.triangle >= 0
        np.testing.assert_allclose(np.linalg.norm(hits.normal[ok], axis=1), 1.0, rtol=1e-12)
        cp = bvh.closest_points(origins * scale)
        ref = TriangleBVH(vertices, triangles).closest_points(origins)
        np.testing.assert_allclose(cp.distance, ref.distance * scale, rtol=1e-9)
    for scale in (1e-150, 1e150):  # tiny or huge direction vectors: t in units of the direction
        tiny = TriangleBVH(vertices, triangles).cast_rays(origins, directions * scale)
        np.testing.assert_array_equal(tiny.triangle, base.triangle)
        np.testing.assert_allclose(tiny.t, base.t / scale, rtol=1e-12)


def test_far_from_origin_coordinates():
    rng = np.random.default_rng(4)
    vertices, triangles = random_soup(rng)
    offset = np.array([5.0e5, 5.7e6, 120.0])  # projected-CRS-like magnitudes
    vertices = vertices * 30 + offset
    bvh = TriangleBVH(vertices, triangles)
    origins, directions = random_rays(rng, 400)
    origins = origins * 30 + offset
    assert_hits_match(bvh, vertices, triangles, origins, directions)


@settings(max_examples=60, deadline=None)
@given(
    verts=hnp.arrays(
        np.float64, (9, 3), elements=st.integers(-10, 10).map(float) | st.floats(-10, 10, width=16)
    ),
    rays=hnp.arrays(np.float64, (8, 6), elements=st.floats(-10, 10, allow_subnormal=False)),
)
def test_property_small_meshes_match_reference(verts, rays):
    triangles = np.arange(9).reshape(3, 3)
    origins, directions = rays[:, :3], rays[:, 3:]
    directions = np.where(np.all(directions == 0, axis=1, keepdims=True), 1.0, directions)
    bvh = TriangleBVH(verts, triangles)
    hits = bvh.cast_rays(origins, directions)
    t_all = ref_cast(verts, triangles, origins, directions)
    t_ref = t_all.min(axis=1)
    # rays far from every edge (relative to the scale) must agree; near-edge rays may go either way
    clear = _far_from_edges(verts, triangles, origins, directions)
    np.testing.assert_allclose(hits.t[clear], t_ref[clear], rtol=1e-7, atol=1e-9)
    # any reported hit is a true intersection with the reported triangle
    got = np.isfinite(hits.t)
    if got.any():
        own = t_all[np.flatnonzero(got), hits.triangle[got]]
        near_edge = ~clear[got]
        ok = np.isclose(own, hits.t[got], rtol=1e-7, atol=1e-9) | near_edge
        assert ok.all()


def _far_from_edges(vertices, triangles, origins, directions, rel=1e-6):
    """Rays whose barycentric coordinates are not within rel of 0 for any triangle they could graze."""
    v0 = vertices[triangles[:, 0]]
    e1 = vertices[triangles[:, 1]] - v0
    e2 = vertices[triangles[:, 2]] - v0
    d = directions[:, None, :]
    p = np.cross(d, e2[None])
    det = np.einsum("kmi,mi->km", p, e1)
    scale = np.linalg.norm(np.cross(e1, e2), axis=1)[None] * np.linalg.norm(directions, axis=1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = origins[:, None, :] - v0[None]
        u = np.einsum("kmi,kmi->km", s, p) / det
        q = np.cross(s, e1[None])
        v = np.einsum("kmi,kmi->km", d, q) / det
        t = np.einsum("mi,kmi->km", e2, q) / det
        grazing = np.abs(det) <= 1e-6 * scale
        near = (np.abs(u) < rel) | (np.abs(v) < rel) | (np.abs(1 - u - v) < rel) | (np.abs(t) < rel)
    return ~np.any(grazing | near, axis=1)


# ------------------------------------------------------------------------------------------------------------
# Watertightness and special rays


def test_closed_cube_rays_at_edges_and_vertices_always_hit():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    rng = np.random.default_rng(5)
    # targets: the 8 corners, points on the 12 edges, face centres
    corners = vertices
    edge_points = []
    for a in range(8):
        for b in range(a + 1, 8):
            if np.sum(vertices[a] != vertices[b]) == 1:
                for s in (0.25, 0.5, 1 / 3):
                    edge_points.append(vertices[a] + s * (vertices[b] - vertices[a]))
    targets = np.concatenate([corners, np.array(edge_points), np.eye(3), -np.eye(3)])
    origins = np.concatenate([np.zeros((1, 3)), rng.uniform(-0.9, 0.9, (40, 3))])
    o = np.repeat(origins, len(targets), axis=0)
    d = np.tile(targets, (len(origins), 1)) - o
    hits = bvh.cast_rays(o, d)
    assert (hits.triangle >= 0).all(), "a ray from inside slipped through the closed cube"
    np.testing.assert_allclose(hits.t, 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.abs(hits.point).max(axis=1), 1.0, rtol=1e-12)
    # from outside, through the edges and the corner between the three faces seen from there (rays that
    # enter the solid there; rays merely touching a silhouette edge may go either way)
    far = np.array([[3.0, 2.5, 2.0]])
    front = targets[(np.sum(targets == 1.0, axis=1) >= 2) & np.all(targets > -1.0, axis=1)]
    assert len(front) == 10
    hits2 = bvh.cast_rays(np.repeat(far, len(front), axis=0), front - far)
    assert (hits2.triangle >= 0).all()
    np.testing.assert_allclose(hits2.point, front, atol=1e-12)


def test_grid_rays_through_shared_vertices_and_edges_hit():
    vertices, triangles = grid_mesh(10, 8, integer=True)  # exact integer heights
    bvh = TriangleBVH(vertices, triangles)
    xs, ys = np.meshgrid(np.arange(0.0, 10.5, 0.5), np.arange(0.0, 8.5, 0.5))  # vertices and edge midpoints
    origins = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 10.0)])
    down = bvh.cast_rays(origins, np.tile([0.0, 0.0, -1.0], (len(origins), 1)))
    assert (down.triangle >= 0).all()
    slanted = bvh.cast_rays(origins, np.tile([0.3, -0.2, -1.0], (len(origins), 1)))
    inside = (slanted.point[:, 0] > 1e-9) & (slanted.point[:, 0] < 10) & (slanted.point[:, 1] > 0)
    # rays that end over the grid all hit (any miss must leave the grid's footprint)
    assert inside.sum() > 100
    target = origins + 10.0 * np.array([0.3, -0.2, -1.0])
    over = (target[:, 0] < 9.5) & (target[:, 1] > 0.5)
    assert (slanted.triangle[over] >= 0).all()


def test_ray_parallel_to_and_in_plane_of_face():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    o = np.array([[-3.0, 0.1, 0.5], [-3.0, 0.1, 1.5], [-3.0, 0.1, 0.99999]])
    d = np.tile([1.0, 0.0, 0.0], (3, 1))
    hits = bvh.cast_rays(o, d)
    np.testing.assert_allclose(hits.t[[0, 2]], 2.0)
    np.testing.assert_allclose(hits.normal[[0, 2]], [[-1, 0, 0], [-1, 0, 0]])
    assert hits.triangle[1] == -1
    assert np.isinf(hits.t[1])
    # a lone triangle: a ray lying in its plane does not hit it
    lone = TriangleBVH(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
    r = lone.cast_rays([[-1.0, 0.2, 0.0]], [[1.0, 0.0, 0.0]])
    assert r.triangle[0] == -1


def test_origin_on_face_and_tmin():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    o = np.array([[0.2, 0.3, 1.0], [0.2, 0.3, 1.0]])
    d = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    at_zero = bvh.cast_rays(o, d)
    np.testing.assert_array_equal(at_zero.t, [0.0, 0.0])  # the surface the ray starts on
    np.testing.assert_allclose(at_zero.normal, [[0, 0, -1], [0, 0, 1]])
    past = bvh.cast_rays(o, d, tmin=1e-9)
    assert past.triangle[0] == -1
    np.testing.assert_allclose(past.t[1], 2.0)
    np.testing.assert_allclose(past.point[1], [0.2, 0.3, -1.0])


def test_tmax_limits_hits():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    o = np.array([[0.0, 0.0, 3.0]])
    d = np.array([[0.0, 0.0, -1.0]])
    assert bvh.cast_rays(o, d, tmax=1.5).triangle[0] == -1
    np.testing.assert_allclose(bvh.cast_rays(o, d, tmax=2.0).t, [2.0])  # inclusive
    np.testing.assert_allclose(bvh.cast_rays(o, d, tmin=2.5).t, [4.0])  # the far face
    np.testing.assert_allclose(bvh.cast_rays(o, d, tmin=2.5).normal, [[0, 0, 1]])  # faces the ray


def test_equal_t_goes_to_lowest_triangle_id():
    vertices, triangles = grid_mesh(6, 5, integer=True)
    # duplicate every triangle, the copies first in reverse order: ids of the originals are higher
    dup = np.concatenate([triangles[::-1], triangles])
    bvh = TriangleBVH(vertices, dup)
    rng = np.random.default_rng(6)
    o = np.column_stack([rng.uniform(0.1, 5.9, 300), rng.uniform(0.1, 4.9, 300), np.full(300, 5.0)])
    hits = bvh.cast_rays(o, np.tile([0.05, 0.02, -1.0], (300, 1)))
    ok = hits.triangle >= 0
    assert ok.sum() > 250
    # the copy of original triangle j sits at row m - 1 - j, the original at m + j: the copy must win
    m = len(triangles)
    assert (hits.triangle[ok] < m).all()
    cp = bvh.closest_points(o - [0, 0, 3.0])
    assert (cp.triangle < m).all()


# ------------------------------------------------------------------------------------------------------------
# Occlusion


def test_occlusion_matches_reference():
    rng = np.random.default_rng(7)
    vertices, triangles = random_soup(rng, m=200)
    bvh = TriangleBVH(vertices, triangles)
    a = rng.uniform(-0.2, 1.2, (700, 3))
    b = rng.uniform(-0.2, 1.2, (700, 3))
    eps = 1e-6
    t_all = ref_cast(vertices, triangles, a, b - a)
    ref = np.any((t_all >= eps) & (t_all <= 1 - eps), axis=1)
    # leave out segments with a hit within 1e-9 of the eps limits
    near = np.any(
        (np.abs(t_all - eps) < 1e-9) | (np.abs(t_all - (1 - eps)) < 1e-9),
        axis=1,
    )
    got = bvh.occluded(a, b)
    assert got.dtype == np.bool_
    assert got.shape == (700,)
    np.testing.assert_array_equal(got[~near], ref[~near])
    assert 0.2 < ref.mean() < 0.95


def test_occlusion_endpoints_on_surfaces_are_excluded():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    a = np.array(
        [
            [0.2, 0.3, 1.0],  # on the top face, looking up: free
            [0.2, 0.3, 0.5],  # inside, looking out through the top: blocked
            [0.2, 0.3, 0.5],  # inside, to a point on the top face: the end point is excluded
            [-3.0, 0.0, 0.0],  # through the whole cube: blocked
            [2.0, 2.0, 2.0],  # outside to outside, missing the cube
            [0.5, 0.5, 0.5],  # zero length
        ]
    )
    b = np.array(
        [
            [0.2, 0.3, 4.0],
            [0.2, 0.3, 2.0],
            [0.2, 0.3, 1.0],
            [3.0, 0.0, 0.0],
            [3.0, 2.0, -2.0],
            [0.5, 0.5, 0.5],
        ]
    )
    np.testing.assert_array_equal(bvh.occluded(a, b), [False, True, False, True, False, False])
    # with eps = 0 the end point on the surface counts
    assert bvh.occluded(a[2:3], b[2:3], eps=0.0)[0]


def subdivided_cube(n=4, half=1.0):
    """Closed cube [-half, half]^3 whose faces are n x n grids of quads (2 triangles each), outward winding:
    6 * 2 * n^2 triangles sharing edges and vertices inside the faces as well as along the cube's edges."""
    g = np.linspace(-half, half, n + 1)
    u, v = np.meshgrid(g, g, indexing="xy")
    u, v = u.ravel(), v.ravel()
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")
    a = (j * (n + 1) + i).ravel()
    quads = np.column_stack([a, a + 1, a + n + 2, a + n + 1])
    vertices, triangles = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            p = np.empty((len(u), 3))
            p[:, axis] = sign * half
            p[:, (axis + 1) % 3] = u
            p[:, (axis + 2) % 3] = v
            q = (
                quads if sign > 0 else quads[:, ::-1]
            )  # (axis+1, axis+2, axis) is right-handed: +axis faces out
            base = sum(len(x) for x in vertices)
            vertices.append(p)
            triangles += [q[:, [0, 1, 2]] + base, q[:, [0, 2, 3]] + base]
    return np.concatenate(vertices), np.concatenate(triangles)


def city_mesh(rng, n_grid=60, n_buildings=120, size=100.0):
    """A heightfield grid with closed boxes standing on it (a small version of the benchmark's city)."""
    vertices, triangles = grid_mesh(n_grid, n_grid, rng=rng)
    vertices[:, :2] *= size / n_grid
    vertices[:, 2] *= 3.0
    box_v, box_t = cube(0.5)
    parts_v, parts_t = [vertices], [triangles]
    offset = len(vertices)
    for _ in range(n_buildings):
        centre = np.array([*rng.uniform(5, size - 5, 2), 0.0])
        scale = np.array([*rng.uniform(2, 8, 2), rng.uniform(5, 30)])
        parts_v.append(box_v * scale + centre + [0, 0, scale[2] / 2 - 4.0])
        parts_t.append(box_t + offset)
        offset += len(box_v)
    return np.concatenate(parts_v), np.concatenate(parts_t)


def test_occlusion_agrees_with_first_hit_casts_on_a_city():
    """occluded() and cast_rays() share the triangle test and the box bounds: over the same segment range
    they must agree exactly, including on segments grazing the ground and the walls."""
    rng = np.random.default_rng(12)
    vertices, triangles = city_mesh(rng)
    bvh = TriangleBVH(vertices, triangles)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    n = 6000
    a = rng.uniform(lo - 5, hi + 5, (n, 3))
    b = rng.uniform(lo - 5, hi + 5, (n, 3))
    # a third of the segments run nearly level just above the ground, where many boxes overlap each segment
    low = slice(0, n // 3)
    a[low, 2] = rng.uniform(3.2, 6.0, n // 3)
    b[low, 2] = a[low, 2] + rng.normal(0, 0.05, n // 3)
    # and some start on a wall and run along it or away from it
    wall = slice(n // 3, n // 3 + 500)
    a[wall] = vertices[triangles[rng.integers(0, len(triangles), 500), 0]]
    b[wall] = a[wall] + rng.normal(0, 20, (500, 3)) * rng.integers(0, 2, (500, 3))
    b[wall][np.all(b[wall] == a[wall], axis=1)] += 1.0
    eps = 1e-6
    got = bvh.occluded(a, b, eps=eps)
    d = b - a
    keep = np.any(d != 0, axis=1)
    first = bvh.cast_rays(a[keep], d[keep], tmin=eps, tmax=1 - eps)
    np.testing.assert_array_equal(got[keep], first.triangle >= 0)
    assert not got[~keep].any()
    assert 0.2 < got.mean() < 0.9
    assert 0.05 < got[low].mean() < 0.95
    # and a brute-force check of a sample
    idx = rng.choice(n, 300, replace=False)
    t_all = ref_cast(vertices, triangles, a[idx], d[idx])
    ref = np.any((t_all >= eps) & (t_all <= 1 - eps), axis=1)
    near = np.any((np.abs(t_all - eps) < 1e-9) | (np.abs(t_all - (1 - eps)) < 1e-9), axis=1)
    np.testing.assert_array_equal(got[idx][~near], ref[~near])


def test_occlusion_is_watertight_at_shared_edges_and_vertices():
    """Segments through an edge or a vertex shared by triangles of a closed surface never slip through."""
    vertices, triangles = subdivided_cube(4)
    bvh = TriangleBVH(vertices, triangles)
    rng = np.random.default_rng(13)
    # targets on the surface: every vertex, and points on the edges of every triangle
    tri = vertices[triangles]
    edge_pts = [
        tri[:, k] + s * (tri[:, (k + 1) % 3] - tri[:, k]) for k in range(3) for s in (0.5, 0.25, 1 / 3)
    ]
    targets = np.unique(np.concatenate([vertices, *edge_pts]), axis=0)
    # from inside to beyond the surface (the target sits at segment parameter 0.5 or 0.9)
    inside = rng.uniform(-0.9, 0.9, (12, 3))
    a = np.repeat(inside, len(targets), axis=0)
    t = np.tile(targets, (len(inside), 1))
    for s in (0.5, 0.9):
        assert bvh.occluded(a, a + (t - a) / s).all(), "a segment slipped out of the closed cube"
    # from outside through the surface into the interior: any segment from outside to a point strictly
    # inside must cross the closed surface, here exactly at an edge or a vertex
    outside = np.array([[3.0, 2.5, 2.0], [-2.6, 0.3, 0.1], [0.2, -0.4, -3.1]])
    for o in outside:
        end = o + 1.2 * (targets - o)  # 20% past the surface point
        enters = np.abs(end).max(axis=1) < 1.0 - 1e-6
        assert enters.sum() > 20
        assert bvh.occluded(np.repeat(o[None], enters.sum(), axis=0), end[enters]).all()
    # an open heightfield with integer heights: vertical and slanted segments through its vertices and edge
    # midpoints from above to below
    gv, gt = grid_mesh(10, 8, integer=True)
    grid = TriangleBVH(gv, gt)
    xs, ys = np.meshgrid(np.arange(1.0, 9.5, 0.5), np.arange(1.0, 7.5, 0.5))
    top = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 5.0)])
    for slope in ([0.0, 0.0], [0.05, -0.03]):
        bottom = top + np.array([*slope, -1.0]) * 8.0
        assert grid.occluded(top, bottom).all()


@pytest.mark.parametrize(
    ("scale", "offset"),
    [(1.0, (0.0, 0.0, 0.0)), (30.0, (5.0e5, 5.7e6, 120.0)), (1e-3, (0.0, 0.0, 0.0)), (1e5, (0.0, 0.0, 0.0))],
)
def test_occlusion_near_edges_vertices_and_range_ends_agrees_with_float64(scale, offset):
    """Shadow rays test triangles in float first and fall back to float64 only when rounding could matter;
    they must give exactly the float64 answers of cast_rays over the same range, for segments aimed at
    edges and vertices or a hair beside them, ending on or near a surface, from near and far."""
    rng = np.random.default_rng(15)
    vertices, triangles = grid_mesh(16, 12, rng=rng)
    vertices = vertices * scale + offset
    bvh = TriangleBVH(vertices, triangles)
    tri = vertices[triangles]
    k = 4000
    pick = rng.integers(0, len(triangles), k)
    corner = rng.integers(0, 3, k)
    p0 = tri[pick, corner]
    p1 = tri[pick, (corner + 1) % 3]
    p2 = tri[pick, (corner + 2) % 3]
    s_edge = rng.choice([0.0, 0.5, rng.uniform()], k)  # a vertex, a midpoint, anywhere on the edge
    on_edge = p0 + s_edge[:, None] * (p1 - p0)
    # displaced towards or away from the triangle's inside by a relative 0 or 1e-12 ... 1e-3
    delta = rng.choice([0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3], k) * rng.choice([-1.0, 1.0], k)
    target = on_edge + delta[:, None] * (p2 - on_edge)
    # origins above the grid, near or far (a far origin makes the float error bound large)
    dist = rng.choice([2.0, 40.0, 3000.0], k) * scale
    up = rng.normal(size=(k, 3))
    up[:, 2] = np.abs(up[:, 2]) + 0.3
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    a = target + dist[:, None] * up
    # the segment ends beyond the target, exactly on it, or just short of it (range ends at 1 - eps)
    eps = 1e-6
    stretch = rng.choice([2.0, 1.0, 1.0 / (1.0 - eps), 1.0 / (1.0 - 2 * eps), 1.0 - 1e-9], k)
    b = a + stretch[:, None] * (target - a)
    for e in (eps, 0.0):
        got = bvh.occluded(a, b, eps=e)
        ref = bvh.cast_rays(a, b - a, tmin=e, tmax=1.0 - e).triangle >= 0
        np.testing.assert_array_equal(got, ref)
        assert 0.3 < got.mean() < 0.95
    # and from below, through the grid upwards (the other winding)
    below = 2 * target - a
    got = bvh.occluded(below, a)
    ref = bvh.cast_rays(below, a - below, tmin=eps, tmax=1 - eps).triangle >= 0
    np.testing.assert_array_equal(got, ref)
    assert got.mean() > 0.3


def test_occlusion_in_a_deep_tree_matches_reference():
    """Triangles at geometrically growing spacing make an unbalanced tree; segments along it cross many
    nested boxes, so the shadow stack holds many pending nodes."""
    n = 1500
    x = 1.02 ** np.arange(n)
    size = 0.01 * x
    vertices = np.zeros((3 * n, 3))
    vertices[0::3, 0] = x
    vertices[1::3] = np.column_stack([x + size, size, np.zeros(n)])
    vertices[2::3] = np.column_stack([x, np.zeros(n), size])
    triangles = np.arange(3 * n).reshape(n, 3)
    bvh = TriangleBVH(vertices, triangles)
    assert bvh.stats["depth"] >= 12
    rng = np.random.default_rng(14)
    k = 400
    xa = np.exp(rng.uniform(0, np.log(x[-1]), k))
    xb = np.exp(rng.uniform(0, np.log(x[-1]), k))
    # segments roughly along the chain, through the triangles' corners region
    a = np.column_stack([xa, rng.uniform(0, 0.008, k) * xa, rng.uniform(0, 0.008, k) * xa])
    b = np.column_stack([xb, rng.uniform(0, 0.008, k) * xb, rng.uniform(0, 0.008, k) * xb])
    got = bvh.occluded(a, b)
    t_all = ref_cast(vertices, triangles, a, b - a)
    eps = 1e-6
    ref = np.any((t_all >= eps) & (t_all <= 1 - eps), axis=1)
    near = np.any((np.abs(t_all - eps) < 1e-9) | (np.abs(t_all - (1 - eps)) < 1e-9), axis=1)
    np.testing.assert_array_equal(got[~near], ref[~near])
    assert 0.2 < ref.mean() < 0.95


# ------------------------------------------------------------------------------------------------------------
# Closest points


@pytest.mark.parametrize("mesh", ["soup", "grid", "far"])
def test_closest_points_match_reference(mesh):
    rng = np.random.default_rng(8)
    if mesh == "grid":
        vertices, triangles = grid_mesh(rng=rng)
        points = rng.uniform([-2, -2, -3], [14, 12, 4], (400, 3))
    else:
        vertices, triangles = random_soup(rng, m=250)
        points = rng.uniform(-0.5, 1.5, (400, 3))
        if mesh == "far":
            offset = np.array([3.1e5, 6.2e6, 40.0])
            vertices, points = vertices * 50 + offset, points * 50 + offset
    bvh = TriangleBVH(vertices, triangles)
    res = bvh.closest_points(points)
    assert isinstance(res, ClosestPoints)
    dist = ref_point_triangle_distances(vertices, triangles, points)
    best = dist.min(axis=1)
    scale = np.abs(points).max()
    np.testing.assert_allclose(res.distance, best, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(
        np.linalg.norm(res.point - points, axis=1), res.distance, rtol=1e-9, atol=1e-12 * scale
    )
    # the reported triangle holds a closest point, and the point lies on it
    own = dist[np.arange(len(points)), res.triangle]
    np.testing.assert_allclose(own, best, rtol=1e-9, atol=1e-12 * scale)
    on_tri = ref_point_triangle_distances(vertices, triangles[res.triangle[:20]], res.point[:20])
    assert np.diag(on_tri).max() <= 1e-9 * max(1.0, scale)


@settings(max_examples=60, deadline=None)
@given(
    # integer vertices: areas are exact, so zero-area triangles are exactly the degenerate ones
    verts=hnp.arrays(np.float64, (12, 3), elements=st.integers(-6, 6).map(float)),
    points=hnp.arrays(np.float64, (6, 3), elements=st.floats(-8, 8, allow_subnormal=False)),
)
def test_property_closest_points(verts, points):
    triangles = np.arange(12).reshape(4, 3)
    keep = np.any(
        np.cross(
            verts[triangles[:, 1]] - verts[triangles[:, 0]], verts[triangles[:, 2]] - verts[triangles[:, 0]]
        )
        != 0,
        axis=1,
    )
    bvh = TriangleBVH(verts, triangles)
    res = bvh.closest_points(points)
    if not keep.any():
        assert (res.triangle == -1).all()
        assert np.isinf(res.distance).all()
        return
    dist = ref_point_triangle_distances(verts, triangles[keep], points)
    np.testing.assert_allclose(res.distance, dist.min(axis=1), rtol=1e-7, atol=1e-9)
    assert keep[res.triangle].all()  # never a zero-area triangle


# ------------------------------------------------------------------------------------------------------------
# Edge cases


def test_empty_mesh():
    for vertices in (np.zeros((0, 3)), np.array([[0.0, 0, 0], [1, 0, 0]])):
        bvh = TriangleBVH(vertices, np.zeros((0, 3), dtype=np.int64))
        assert bvh.n_triangles == 0
        assert bvh.n_vertices == len(vertices)
        np.testing.assert_array_equal(bvh.bounds, [[np.inf] * 3, [-np.inf] * 3])
        hits = bvh.cast_rays([[0.0, 0, 0], [1, 1, 1]], [[1.0, 0, 0], [0, 0, 1]])
        np.testing.assert_array_equal(hits.t, [np.inf, np.inf])
        np.testing.assert_array_equal(hits.triangle, [-1, -1])
        assert np.isnan(hits.normal).all()
        assert np.isnan(hits.point).all()
        np.testing.assert_array_equal(bvh.occluded([[0.0, 0, 0]], [[1.0, 1, 1]]), [False])
        cp = bvh.closest_points([[0.0, 0, 0]])
        assert cp.triangle[0] == -1
        assert np.isinf(cp.distance[0])
        assert np.isnan(cp.point).all()


def test_empty_queries():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    e = np.zeros((0, 3))
    hits = bvh.cast_rays(e, e)
    assert hits.t.shape == (0,)
    assert hits.triangle.shape == (0,)
    assert hits.triangle.dtype == np.int64
    assert hits.normal.shape == (0, 3)
    assert hits.point.shape == (0, 3)
    occ = bvh.occluded(e, e)
    assert occ.shape == (0,)
    assert occ.dtype == np.bool_
    cp = bvh.closest_points(e)
    assert cp.point.shape == (0, 3)
    assert cp.triangle.shape == (0,)
    assert cp.distance.shape == (0,)


def test_degenerate_triangles_never_hit_or_closest():
    vertices = np.array(
        [[0.0, 0, 0], [2, 0, 0], [0, 2, 0], [1, 1, 0], [0.5, 0.5, 0], [0, 0, 1], [2, 0, 1], [0, 2, 1]]
    )
    triangles = np.array(
        [
            [0, 1, 1],  # repeated vertex
            [0, 3, 4],  # collinear (on the diagonal y = x)
            [5, 6, 7],  # the real one, at z = 1
            [4, 4, 4],  # a point
        ]
    )
    bvh = TriangleBVH(vertices, triangles)
    assert bvh.n_triangles == 4
    o = np.array([[0.5, 0.5, -1.0], [0.7, 0.0, -1.0], [0.25, 0.25, 2.0]])
    d = np.tile([0.0, 0.0, 1.0], (3, 1))
    d[2] = [0, 0, -1]
    hits = bvh.cast_rays(o, d)
    np.testing.assert_array_equal(hits.triangle, [2, 2, 2])
    np.testing.assert_allclose(hits.t, [2.0, 2.0, 1.0])
    cp = bvh.closest_points([[0.5, 0.5, 0.0], [1.0, 0.0, -0.1]])
    np.testing.assert_array_equal(cp.triangle, [2, 2])
    np.testing.assert_allclose(cp.distance, [1.0, 1.1])
    # only degenerate triangles: an empty tree
    only = TriangleBVH(vertices, triangles[[0, 1, 3]])
    assert only.cast_rays(o, d).triangle.tolist() == [-1, -1, -1]
    assert only.closest_points([[0.0, 0, 0]]).triangle[0] == -1


def test_properties_and_int32_input():
    vertices, triangles = grid_mesh(5, 4, rng=np.random.default_rng(9))
    bvh = TriangleBVH(vertices, triangles.astype(np.int32))
    assert bvh.n_triangles == 40
    assert bvh.n_vertices == 30
    np.testing.assert_array_equal(bvh.bounds, [vertices.min(axis=0), vertices.max(axis=0)])
    other = TriangleBVH(vertices, triangles.astype(np.int64))
    o = np.column_stack([np.linspace(0.1, 4.9, 20), np.linspace(0.2, 3.8, 20), np.full(20, 9.0)])
    d = np.tile([0.0, 0.0, -1.0], (20, 1))
    np.testing.assert_array_equal(bvh.cast_rays(o, d).t, other.cast_rays(o, d).t)
    # non-contiguous and Fortran-ordered inputs are read correctly
    of = np.asfortranarray(o)
    np.testing.assert_array_equal(bvh.cast_rays(of, d[::1]).t, bvh.cast_rays(o, d).t)
    stats = bvh.stats
    assert stats["n_nodes"] >= 1
    assert stats["build_seconds"] >= 0


@pytest.mark.parametrize(
    ("vertices", "triangles", "match"),
    [
        (np.zeros((4, 2)), np.zeros((1, 3), dtype=int), r"vertices must be \(n, 3\) float64, got \(4, 2\)"),
        (np.zeros(12), np.zeros((1, 3), dtype=int), r"vertices must be \(n, 3\)"),
        (
            np.zeros((4, 3)),
            np.zeros((1, 2), dtype=int),
            r"triangles must be \(m, 3\) int32 or int64, got \(1, 2\)",
        ),
        (np.zeros((4, 3)), np.zeros((1, 3)), r"triangles must be \(m, 3\) int32 or int64, got dtype float64"),
        (np.zeros((4, 3)), np.array([[0, 1, 4]]), r"triangles\[0, 2\] = 4 is out of range for 4 vertices"),
        (np.zeros((4, 3)), np.array([[0, 1, 2], [0, -1, 2]]), r"triangles\[1, 1\] = -1 is out of range"),
        (np.array([[0, 0, 0], [1, np.nan, 0], [0, 1, 0]]), np.array([[0, 1, 2]]), r"vertices must be finite"),
        (
            np.array([["a", "b", "c"]]),
            np.zeros((0, 3), dtype=int),
            r"vertices must be \(n, 3\) float64, got dtype",
        ),
    ],
)
def test_construction_errors(vertices, triangles, match):
    with pytest.raises(ValueError, match=match):
        TriangleBVH(vertices, triangles)


def test_query_errors():
    vertices, triangles = cube()
    bvh = TriangleBVH(vertices, triangles)
    ok = np.zeros((2, 3))
    d = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"origins must be \(n, 3\) float64, got \(2, 2\)"):
        bvh.cast_rays(np.zeros((2, 2)), d)
    with pytest.raises(ValueError, match=r"directions must be \(n, 3\)"):
        bvh.cast_rays(ok, np.ones(6))
    with pytest.raises(ValueError, match="origins and directions must have the same number of rows"):
        bvh.cast_rays(ok, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"directions\[1\] is the zero vector"):
        bvh.cast_rays(ok, np.array([[1.0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="origins must be finite"):
        bvh.cast_rays(np.array([[0, 0, np.inf], [0, 0, 0]]), d)
    with pytest.raises(ValueError, match="directions must be finite"):
        bvh.cast_rays(ok, np.array([[np.nan, 0, 1], [0, 0, 1]]))
    with pytest.raises(ValueError, match="tmin must be finite and >= 0"):
        bvh.cast_rays(ok, d, tmin=-1.0)
    with pytest.raises(ValueError, match="tmax must be >= tmin"):
        bvh.cast_rays(ok, d, tmin=2.0, tmax=1.0)
    with pytest.raises(ValueError, match=r"b must be \(n, 3\)"):
        bvh.occluded(ok, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="a must be finite"):
        bvh.occluded(np.full((2, 3), np.nan), ok)
    with pytest.raises(ValueError, match=r"eps must be in \[0, 0.5\)"):
        bvh.occluded(ok, ok, eps=0.5)
    with pytest.raises(ValueError, match="points must be finite"):
        bvh.closest_points(np.array([[0.0, np.inf, 0]]))
    with pytest.raises(ValueError, match=r"points must be \(n, 3\) float64, got dtype"):
        bvh.closest_points(np.array([["x", "y", "z"]]))


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(10)
    # > 4096 triangles, so that the build itself runs as parallel tasks
    vertices, triangles = grid_mesh(60, 50, rng=rng)
    soup_v, soup_t = random_soup(rng, m=400, size=2.0)
    triangles = np.concatenate([triangles, soup_t + len(vertices)])
    vertices = np.concatenate([vertices, soup_v * 50])
    origins = rng.uniform([-2, -2, -3], [62, 52, 50], (6000, 3))
    directions = rng.normal(size=(6000, 3))
    before = get_num_threads()
    try:
        results = []
        for n in (1, 2):
            set_num_threads(n)
            bvh = TriangleBVH(vertices, triangles)
            results.append(
                (
                    bvh.cast_rays(origins, directions),
                    bvh.occluded(origins, origins + 20 * directions),
                    bvh.closest_points(origins),
                )
            )
    finally:
        set_num_threads(before)
    (h1, o1, c1), (h2, o2, c2) = results
    for x, y in zip((*h1, o1, *c1), (*h2, o2, *c2), strict=True):
        np.testing.assert_array_equal(x, y)
    assert (h1.triangle >= 0).mean() > 0.3
    assert o1.mean() > 0.1
