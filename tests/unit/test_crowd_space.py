"""CrowdSpace on hand-made polygons: rasters, exits, walls, distance fields (against exact geometry and a scipy
Dijkstra reference with directed stairs), validation errors and exit choice (against a per-agent Python loop).

Tolerances: distance fields use DistanceField's 32-stencil, within 1.31 % of the Euclidean distance between cell
centres in open space; fields are measured to exit-cell centres, which lie up to one cell inside the exit polygon,
so comparisons with exact geometry allow 2 % plus one or two cells.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from shapely import affinity
from shapely.geometry import LineString, Point, box

from twin.errors import InputError
from twin.sim.crowd_space import EXIT_SETBACK_M, CrowdSpace
from twin.sim.rasterize import _cells_on_border, aligned_grid, boundary_segments, rasterize
from twin.spatial import DistanceField, get_num_threads, set_num_threads

H = 0.2
HALL = "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0))"
DOOR = "POLYGON ((20 9.5, 21 9.5, 21 10.5, 20 10.5, 20 9.5))"


def hall_areas(**extra):
    return [{"id": "hall", "walkable": HALL, "z": 0.0, "exits": [{"id": "door", "polygon": DOOR}], **extra}]


@pytest.fixture
def threads_restored():
    before = get_num_threads()
    yield
    set_num_threads(before)


@pytest.fixture(scope="module")
def hall() -> CrowdSpace:
    return CrowdSpace.from_areas(hall_areas(), cell_size=H)


def cell_boxes(space: CrowdSpace, level: int = 0):
    _, ny, nx = space.shape
    iy, ix = np.mgrid[0:ny, 0:nx]
    x0, y0 = space.origins[level]
    h = space.cell_size
    return shapely.box(x0 + ix * h, y0 + iy * h, x0 + (ix + 1) * h, y0 + (iy + 1) * h)


def centres(space: CrowdSpace, level: int = 0) -> np.ndarray:
    _, ny, nx = space.shape
    iy, ix = np.mgrid[0:ny, 0:nx]
    return space.cell_centres(level, iy.ravel(), ix.ravel()).reshape(ny, nx, 2)


# ---------------------------------------------------------------------------------------------------------------
# Raster, exits, walls


def test_hall_arrays_follow_the_core_conventions(hall):
    L, ny, nx = hall.shape
    assert L == 1
    assert hall.walkable.dtype == np.uint8
    assert hall.exit_cells.dtype == np.int32
    assert hall.origins.shape == (1, 2)
    assert hall.level_z.tolist() == [0.0]
    assert hall.level_names == ["hall"]
    assert hall.walls.shape[1] == 4
    assert hall.wall_levels.shape == (len(hall.walls),)
    assert hall.wall_levels.dtype == np.int32
    assert (hall.wall_levels == 0).all()
    assert hall.stairs.shape == (0, 8)
    assert hall.exits["id"].tolist() == ["door"]
    assert hall.exits["path"].tolist() == ["city.areas[0].exits[0]"]
    assert hall.exits["width_m"].iloc[0] == pytest.approx(1.0)
    assert hall.areas["id"].tolist() == ["hall"]
    assert hall.areas["level"].tolist() == [0]
    # the raster covers the geometry with a margin: the border cells are empty
    w = hall.walkable[0]
    assert not (w[0].any())
    assert not (w[-1].any())
    assert not (w[:, 0].any())
    assert not (w[:, -1].any())
    x0, y0 = hall.origins[0]
    assert x0 + nx * H >= 21.0
    assert y0 + ny * H >= 20.0
    assert x0 < 0
    assert y0 < 0


def test_walkable_lies_within_one_cell_ring_of_the_polygon(hall):
    poly = shapely.union(shapely.from_wkt(HALL), shapely.from_wkt(DOOR))
    boxes = cell_boxes(hall)
    w = hall.walkable[0] > 0
    inside = shapely.covered_by(boxes, poly)
    outside = ~shapely.intersects(boxes, poly) | shapely.touches(boxes, poly)
    assert w[inside].all(), "a cell wholly inside the walkable area is not walkable"
    assert not w[outside].any(), "a cell wholly outside the walkable area is walkable"
    area = w.sum() * H * H
    assert abs(area - poly.area) <= poly.length * H


def test_door_keeps_its_width_in_cells(hall):
    c = centres(hall)
    w = hall.walkable[0] > 0
    cols = np.flatnonzero((c[0, :, 0] > 20.0) & (c[0, :, 0] < 21.0))
    assert len(cols) == 5
    for j in cols:
        assert w[:, j].sum() * H >= 1.0 - 1e-9


@settings(max_examples=25, deadline=None)
@given(
    dx=st.floats(0, 1, allow_nan=False),
    dy=st.floats(0, 1, allow_nan=False),
    width=st.sampled_from([0.8, 1.0, 1.2, 1.8]),
)
def test_door_width_in_cells_holds_wherever_the_door_lies(dx, dy, width):
    """An axis-aligned door w wide keeps at least round-down(w / h) cells (1 m door: 5 cells) at any offset."""
    door = f"POLYGON ((4 {2 + dy}, 5 {2 + dy}, 5 {2 + dy + width}, 4 {2 + dy + width}, 4 {2 + dy}))"
    room = f"POLYGON ((0 0, 4 0, 4 {6 + dy}, 0 {6 + dy}, 0 0))"
    areas = [
        {
            "id": "r",
            "walkable": affinity.translate(shapely.from_wkt(room), dx, 0),
            "exits": [{"id": "d", "polygon": affinity.translate(shapely.from_wkt(door), dx, 0)}],
        }
    ]
    s = CrowdSpace.from_areas(areas, cell_size=H)
    c = centres(s)
    cols = np.flatnonzero(
        (c[0, :, 0] - H / 2 >= 4 + dx) & (c[0, :, 0] + H / 2 <= 5 + dx)
    )  # cells inside in x
    assert len(cols) >= 4
    need = math.floor(width / H + 1e-9)
    for j in cols:
        assert (s.walkable[0][:, j] > 0).sum() >= need
        beyond = c[0, j, 0] - (4 + dx) - EXIT_SETBACK_M  # exit cells start EXIT_SETBACK_M beyond the room
        if beyond >= 1e-6:
            assert (s.exit_cells[0][:, j] == 0).sum() >= need - 1
        elif beyond <= -1e-6:
            assert (s.exit_cells[0][:, j] < 0).all()


@settings(max_examples=30, deadline=None)
@given(
    angle=st.floats(0, 90, allow_nan=False),
    dx=st.floats(0, 0.4, allow_nan=False),
    wall=st.sampled_from([0.02, 0.1, 0.25]),
    h=st.sampled_from([0.2, 0.25]),
)
def test_cells_on_the_outline_are_those_a_brute_force_test_finds(angle, dx, wall, h):
    """The rasteriser's thin-wall rule tests the cells that meet the outline. Found piece by piece, they include
    every cell whose square meets the outline (every cell tested against all of it), for rotated rooms, thin walls
    on cell edges and round holes; any extra cell only touches it within rounding (the pieces' ends are rounded),
    which only adds a pair to test."""
    room = affinity.rotate(box(0, 0, 9, 6), angle, origin=(0, 0))
    room = room.difference(affinity.translate(box(4.0, 1.0, 4.0 + wall, 5.0), dx, 0))
    room = room.difference(Point(2.0 + dx, 2.0).buffer(0.7))
    origin, ny, nx = aligned_grid(room.bounds, h)
    iy, ix = np.mgrid[0:ny, 0:nx]
    cells = shapely.box(
        origin[0] + ix * h, origin[1] + iy * h, origin[0] + (ix + 1) * h, origin[1] + (iy + 1) * h
    )
    brute = shapely.intersects(cells, room.boundary)
    fast = _cells_on_border(boundary_segments(room), origin, h, 0, 0, ny, nx)
    assert brute.any()
    assert not (brute & ~fast).any()  # none missed
    assert (shapely.distance(cells[fast & ~brute], room.boundary) < 1e-9).all()


@settings(max_examples=20, deadline=None)
@given(angle=st.floats(0, 90, allow_nan=False), dx=st.floats(0, 0.4, allow_nan=False))
def test_coverage_is_the_share_of_inside_samples_of_every_cell(angle, dx):
    """Only cells on the outline are sampled; every cell's coverage is still its share of the 4 x 4 samples
    inside the polygon (brute force over all cells)."""
    room = affinity.rotate(box(0, 0, 7, 5), angle, origin=(0, 0)).difference(Point(2 + dx, 1.5).buffer(0.6))
    h, k = 0.2, 4
    origin, ny, nx = aligned_grid(room.bounds, h)
    off = (np.arange(k) + 0.5) / k * h
    # (the samples' coordinates rounded as rasterize makes them, (origin + i h) + offset: the outline of a box
    # rotated by 45 degrees runs through samples, where one rounding more decides inside or outside)
    xs = (origin[0] + np.arange(nx)[:, None] * h + off[None, :]).ravel()
    ys = (origin[1] + np.arange(ny)[:, None] * h + off[None, :]).ravel()
    gx, gy = np.meshgrid(xs, ys)
    brute = shapely.contains_xy(room, gx, gy).reshape(ny, k, nx, k).sum(axis=(1, 3)) / (k * k)
    np.testing.assert_array_equal(rasterize(room, origin, h, ny, nx)[1], brute)


def test_exit_cells_lie_inside_the_exit_polygon(hall):
    door = shapely.from_wkt(DOOR)
    c = centres(hall)
    ex = hall.exit_cells[0]
    assert set(np.unique(ex).tolist()) == {-1, 0}
    assert (hall.walkable[0][ex >= 0] > 0).all()
    cx, cy = c[..., 0][ex >= 0], c[..., 1][ex >= 0]
    assert shapely.intersects_xy(door, cx, cy).all()
    # and every walkable cell whose centre is strictly inside the door region, EXIT_SETBACK_M or more beyond the
    # hall, is an exit cell; the cells of the door region nearer the hall are walkable but no exit
    strictly = shapely.contains_xy(door, c[..., 0], c[..., 1]) & (hall.walkable[0] > 0)
    beyond = c[..., 0] - 20.0 >= EXIT_SETBACK_M - 1e-9
    assert (ex[strictly & beyond] == 0).all()
    assert (ex[strictly & ~beyond] < 0).all()
    assert (strictly & beyond).sum() >= 10
    assert (strictly & ~beyond).sum() >= 10
    assert hall.exits["n_cells"].iloc[0] == (ex == 0).sum()
    assert hall.warnings == []


def test_a_shallow_exit_keeps_its_deepest_cells_and_says_so():
    """An exit region less than EXIT_SETBACK_M deep beyond the walkable area: its farthest cells are the exit."""
    shallow = "POLYGON ((20 9.5, 20.4 9.5, 20.4 10.5, 20 10.5, 20 9.5))"
    s = CrowdSpace.from_areas(
        [{"id": "hall", "walkable": HALL, "exits": [{"id": "door", "polygon": shallow}]}]
    )
    c = centres(s)
    ex = s.exit_cells[0]
    assert (ex >= 0).sum() >= 4
    assert np.allclose(c[..., 0][ex >= 0], 20.3)  # the deeper of the two cell columns in the 0.4 m region
    assert len(s.warnings) == 1
    assert "reaches only" in s.warnings[0]
    assert "city.areas[0].exits[0]" in s.warnings[0]


def test_walls_are_the_outline_of_walkable_and_exits(hall):
    poly = shapely.union(shapely.from_wkt(HALL), shapely.from_wkt(DOOR))
    lengths = np.hypot(hall.walls[:, 2] - hall.walls[:, 0], hall.walls[:, 3] - hall.walls[:, 1])
    assert lengths.sum() == pytest.approx(poly.length)
    assert (lengths > 0).all()
    segs = shapely.linestrings(hall.walls.reshape(-1, 2, 2))
    assert shapely.covered_by(segs, poly.boundary).all()
    # the opening between the hall and the door region is not a wall
    opening = LineString([(20, 9.6), (20, 10.4)])
    assert not shapely.intersects(segs, opening).any()


def test_holes_are_obstacles_and_walls():
    hall_with_pillar = "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0), (8 2, 12 2, 12 18, 8 18, 8 2))"
    s = CrowdSpace.from_areas(
        [{"id": "h", "walkable": hall_with_pillar, "exits": [{"id": "d", "polygon": DOOR}]}], cell_size=H
    )
    c = centres(s)
    in_hole = shapely.contains_xy(box(8, 2, 12, 18), c[..., 0], c[..., 1])
    assert not (s.walkable[0][in_hole] > 0).any()
    hole_ring = box(8, 2, 12, 18).exterior
    segs = shapely.linestrings(s.walls.reshape(-1, 2, 2))
    assert np.hypot(*(s.walls[:, 2:] - s.walls[:, :2]).T)[shapely.covered_by(segs, hole_ring)].sum() == (
        pytest.approx(hole_ring.length)
    )
    # behind the obstacle the route goes round two corners of the hole: (2, 10) -> (8, 18) -> (12, 18) -> door
    f = s.distance_fields()[0]
    p = np.array([[2.1, 10.1]])
    d = s.sample_distance(f, p, [0])[0]
    ref = (
        np.hypot(*(np.array([8.0, 18.0]) - p[0]))
        + 4.0
        + shapely.distance(Point(12, 18), shapely.from_wkt(DOOR))
    )
    assert ref <= d <= ref * 1.02 + 2 * H
    assert d > 1.3 * shapely.distance(Point(p[0]), shapely.from_wkt(DOOR))


# ---------------------------------------------------------------------------------------------------------------
# Distance fields


def test_field_is_zero_at_the_door_and_euclidean_in_the_open_hall(hall):
    fields = hall.distance_fields()
    assert len(fields) == 2  # the door, then all exits
    np.testing.assert_array_equal(fields[0], fields[1])
    f = fields[0]
    assert f.shape == hall.shape
    assert f.dtype == np.float64
    assert (f[hall.exit_cells == 0] == 0).all()
    assert hall.sample_distance(f, [[20.8, 10.0]], [0])[0] == 0.0
    assert np.isinf(f[hall.walkable == 0]).all()
    # against the exact distance from each hall cell centre to the door opening (x = 20, 9.5 <= y <= 10.5), whose
    # straight line stays in the hall, plus the walk of EXIT_SETBACK_M through the door region to where the exit
    # cells start. The field ends at exit-cell centres, up to ~0.15 m beyond that.
    c = centres(hall)
    w = (hall.walkable[0] > 0) & shapely.contains_xy(shapely.from_wkt(HALL), c[..., 0], c[..., 1])
    pts = c[w]
    ref = shapely.distance(LineString([(20, 9.5), (20, 10.5)]), shapely.points(pts)) + EXIT_SETBACK_M
    got = f[0][w]
    assert (got >= ref - 0.05).all()  # (exit cells of the row centred on the jamb line: 2 cm of raster slack)
    assert (got <= (ref + 0.15) * (1 + DistanceField.MAX_RELATIVE_ERROR[32]) + H).all()
    assert np.mean(got - ref) < 0.25
    # the far corners against the Euclidean distance to the door polygon plus the set-back, within 2 %
    door = shapely.from_wkt(DOOR)
    for corner in ([0.1, 0.1], [0.1, 19.9]):
        d = hall.sample_distance(f, [corner], [0])[0]
        assert d == pytest.approx(shapely.distance(Point(corner), door) + EXIT_SETBACK_M, rel=0.02)


def test_l_shaped_corridor_distance_goes_round_the_corner():
    """RiMEA 6 geometry: 2 m wide, a 12 m arm then a 10 m arm turning left; the exit closes the second arm."""
    corridor = "POLYGON ((0 0, 12 0, 12 12, 10 12, 10 2, 0 2, 0 0))"
    exit_ = "POLYGON ((10 12, 12 12, 12 13, 10 13, 10 12))"
    s = CrowdSpace.from_areas([{"id": "L", "walkable": corridor, "exits": [{"id": "end", "polygon": exit_}]}])
    f = s.distance_fields()[-1]
    inner = np.array([10.0, 2.0])
    ex = shapely.from_wkt(exit_)
    for p in ([0.5, 1.0], [3.0, 0.3], [6.0, 1.7]):
        d = s.sample_distance(f, [p], [0])[0]
        ref = np.hypot(*(inner - p)) + shapely.distance(Point(inner), ex) + EXIT_SETBACK_M
        assert ref * (1 - 1e-3) <= d <= ref * 1.02 + 2 * H, (p, d, ref)
        straight = shapely.distance(Point(p), ex)
        assert d > straight + 2.0  # walls are not cut
    assert np.isfinite(f[s.walkable > 0]).all()


def test_levels_by_elevation_and_overlapping_areas_unioned():
    a = {"id": "a", "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))", "z": 0.0}
    b = {"id": "b", "walkable": "POLYGON ((5 0, 15 0, 15 10, 5 10, 5 0))", "z": 0.0}
    a["exits"] = [{"id": "e", "polygon": "POLYGON ((-1 4, 0 4, 0 5, -1 5, -1 4))"}]
    up = {
        "id": "up",
        "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",
        "z": 3.5,
        "exits": [{"id": "e_up", "polygon": "POLYGON ((10 4, 11 4, 11 5, 10 5, 10 4))"}],
    }
    s = CrowdSpace.from_areas([up, a, b], cell_size=0.25)
    assert s.n_levels == 2
    assert s.level_z.tolist() == [0.0, 3.5]
    assert s.level_names == ["a+b", "up"]
    assert s.exits.set_index("id")["level"].to_dict() == {"e_up": 1, "e": 0}
    assert s.areas.set_index("id")["level"].to_dict() == {"up": 1, "a": 0, "b": 0}
    ground = (s.walkable[0] > 0) & (s.exit_cells[0] < 0)
    assert ground.sum() * 0.25**2 == pytest.approx(150.0, abs=50 * 0.25)
    assert ndimage.label(s.walkable[0] > 0)[1] == 1
    f = s.distance_fields()
    assert np.isfinite(f[-1][s.walkable > 0]).all()
    assert np.isinf(f[0][0]).all()  # f[0] is e_up (the first exit listed), f[1] is e
    assert np.isinf(f[1][1]).all()


def directed_reference(
    space: CrowdSpace, exits: list[int], down: np.ndarray, up: np.ndarray, factor: np.ndarray | None = None
) -> np.ndarray:
    """Slow, obvious reference: Dijkstra (scipy) on the 8-neighbour graph with directed stair edges.

    Axial moves cost h, diagonal moves h*sqrt(2) and need all four cells of their 2x2 block walkable; with a
    per-cell ``factor`` a move costs that times the mean factor of its two cells. A walker at the head goes down
    the stair at cost ``down``, a walker at the foot goes up at cost ``up``. Distances to the exits are shortest
    paths in the reversed graph from the exit cells.
    """
    L, ny, nx = space.shape
    w = space.walkable > 0
    idx = np.arange(w.size).reshape(w.shape)
    src, dst, wt = [], [], []
    h = space.cell_size
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for k in range(L):
            for iy in range(ny):
                for ix in range(nx):
                    jy, jx = iy + dy, ix + dx
                    if not (0 <= jy < ny and 0 <= jx < nx and w[k, iy, ix] and w[k, jy, jx]):
                        continue
                    if dy and dx and not (w[k, iy, jx] and w[k, jy, ix]):
                        continue
                    c = h * math.hypot(dy, dx)
                    if factor is not None:
                        c *= 0.5 * (factor[k, iy, ix] + factor[k, jy, jx])
                    src += [idx[k, iy, ix], idx[k, jy, jx]]
                    dst += [idx[k, jy, jx], idx[k, iy, ix]]
                    wt += [c, c]
    t = space.stairs_table
    for j, r in t.iterrows():
        foot, head = idx[r.from_level, r.foot_iy, r.foot_ix], idx[r.to_level, r.head_iy, r.head_ix]
        src += [head, foot]
        dst += [foot, head]
        wt += [down[j], up[j]]
    g = sparse.csr_array((wt, (dst, src)), shape=(w.size, w.size))  # reversed: from exits outwards
    targets = np.flatnonzero(np.isin(space.exit_cells, exits).ravel())
    d = csgraph.dijkstra(g, directed=True, indices=targets, min_only=True)
    return d.reshape(w.shape)


def two_storey_areas():
    room = "POLYGON ((0 0, 10 0, 10 4, 0 4, 0 0))"
    return [
        {
            "id": "ground",
            "walkable": room,
            "z": 0.0,
            "exits": [{"id": "west", "polygon": "POLYGON ((-1 1, 0 1, 0 3, -1 3, -1 1))"}],
        },
        {
            "id": "first",
            "walkable": room,
            "z": 3.0,
            "exits": [{"id": "east", "polygon": "POLYGON ((10 1, 11 1, 11 3, 10 3, 10 1))"}],
        },
    ], [
        {
            "id": "s_east",
            "from_area": "ground",
            "to_area": "first",
            "foot": (9.0, 2.0),
            "head": (9.0, 2.2),
            "length_m": 2.0,
            "width_m": 1.0,
        },
        {
            "id": "s_west",
            "from_area": "ground",
            "to_area": "first",
            "foot": (1.0, 2.0),
            "head": (1.2, 2.0),
            "length_m": 2.0,
            "width_m": 1.2,
        },
    ]


def test_stairs_are_directed_by_iteration_and_match_a_directed_dijkstra():
    areas, stairs = two_storey_areas()
    s = CrowdSpace.from_areas(areas, cell_size=0.5, stairs=stairs)
    assert s.stairs.shape == (2, 8)
    np.testing.assert_allclose(s.stairs[:, [0, 3, 6, 7]], [[0, 1, 2.0, 1.0], [0, 1, 2.0, 1.2]])
    assert s.stairs_table["id"].tolist() == ["s_east", "s_west"]
    down, up = s.stair_costs()
    np.testing.assert_allclose(down, 2.0 * 1.34 / 0.79)
    np.testing.assert_allclose(up, 2.0 * 1.34 / 0.68)
    fields = s.distance_fields(stencil=8)
    for rows, f in zip(s.default_exit_sets(), fields, strict=True):
        ref = directed_reference(s, rows, down, up)
        np.testing.assert_allclose(f, ref, rtol=0, atol=1e-9)
    # in the all-exits field people on the ground near the east end climb s_east, those upstairs near the west
    # end walk down s_west: the two stairs are used in opposite directions with their own speeds
    f = fields[-1]
    t = s.stairs_table
    foot = f[0, t.foot_iy, t.foot_ix]
    head = f[1, t.head_iy, t.head_ix]
    assert foot[0] == pytest.approx(head[0] + up[0])
    assert head[1] == pytest.approx(foot[1] + down[1])
    # the default 32-stencil fields agree with the reference to its error bound
    for rows, f32 in zip(s.default_exit_sets(), s.distance_fields(), strict=True):
        ref = directed_reference(s, rows, down, up)
        fin = np.isfinite(ref)
        assert (np.isfinite(f32) == fin).all()
        assert (f32[fin] <= ref[fin] + 1e-9).all()


def test_upper_level_is_reached_only_through_the_stair():
    areas, stairs = two_storey_areas()
    areas[1]["exits"] = []
    s = CrowdSpace.from_areas(areas, cell_size=0.5, stairs=stairs[:1])
    f = s.distance_fields()[-1]
    assert np.isfinite(f[1][s.walkable[1] > 0]).all()
    no_stairs = dataclasses.replace(s, stairs=np.zeros((0, 8)), stairs_table=s.stairs_table.iloc[:0])
    assert np.isinf(no_stairs.distance_fields()[-1][1]).all()
    with pytest.raises(InputError, match=r"city\.areas\[1\].*'first'"):
        no_stairs.validate()


# ---------------------------------------------------------------------------------------------------------------
# Errors


def test_exit_not_touching_its_area_names_the_field_path():
    areas = hall_areas()
    areas[0]["exits"].append({"id": "far", "polygon": "POLYGON ((30 0, 31 0, 31 1, 30 1, 30 0))"})
    with pytest.raises(InputError, match=r"city\.areas\[0\]\.exits\[1\].*'far'.*outside") as exc:
        CrowdSpace.from_areas(areas, source="demo.yaml")
    assert exc.value.source == "demo.yaml"
    assert str(exc.value).startswith("demo.yaml: ")
    areas[0]["exits"][1]["polygon"] = "POLYGON ((20 20, 21 20, 21 21, 20 21, 20 20))"
    with pytest.raises(InputError, match=r"exits\[1\].*only at a point"):
        CrowdSpace.from_areas(areas)


def test_enclosed_area_without_exit_is_an_error():
    """A vault walled in by 10 cm inside the hall: the thin wall must stay closed in the raster."""
    hall_with_box = "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0), (8 8, 12 8, 12 12, 8 12, 8 8))"
    areas = [
        {"id": "hall", "walkable": hall_with_box, "exits": [{"id": "door", "polygon": DOOR}]},
        {"id": "vault", "walkable": "POLYGON ((8.1 8.1, 11.9 8.1, 11.9 11.9, 8.1 11.9, 8.1 8.1))"},
    ]
    with pytest.raises(InputError, match=r"city\.areas\[1\]: .*'vault'.*cannot reach any exit") as exc:
        CrowdSpace.from_areas(areas, source="s.yaml")
    assert exc.value.source == "s.yaml"
    # a separate island at the same z is caught the same way
    areas[1]["walkable"] = "POLYGON ((30 0, 35 0, 35 5, 30 5, 30 0))"
    with pytest.raises(InputError, match="'vault'"):
        CrowdSpace.from_areas(areas)


def test_validate_reports_components():
    areas, stairs = two_storey_areas()
    s = CrowdSpace.from_areas(areas, cell_size=0.5, stairs=stairs)
    check = s.validate()
    assert len(check.components) == 1
    assert check.components["reachable"].all()
    assert check.components["levels"].iloc[0] == [0, 1]
    assert check.n_unreachable == 0
    assert sorted(check.components["areas"].iloc[0]) == ["first", "ground"]


@pytest.mark.parametrize(
    ("patch", "pattern"),
    [
        ({"walkable": "POLYGON ((0 0, 1 1"}, r"areas\[0\]\.walkable is not valid WKT"),
        ({"walkable": "LINESTRING (0 0, 1 1)"}, r"areas\[0\]\.walkable must be a Polygon"),
        ({"walkable": "POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))"}, r"areas\[0\]\.walkable is not a valid polygon"),
        ({"walkable": 42}, r"areas\[0\]\.walkable must be a WKT string"),
        ({"z": "high"}, r"areas\[0\]\.z must be a number"),
        ({"id": ""}, r"areas\[0\]\.id must be a non-empty string"),
        ({"exits": [{"id": "d", "polygon": DOOR, "width_m": -1}]}, r"exits\[0\]\.width_m must be > 0"),
        ({"exits": []}, r"defines no exit"),
        (
            {"exits": [{"id": "d", "polygon": "POLYGON ((20 9.5, 20.05 9.5, 20.05 9.55, 20 9.55, 20 9.5))"}]},
            r"exits\[0\]: exit 'd' covers no walkable cell",
        ),
    ],
)
def test_bad_areas_raise_input_errors_naming_the_field(patch, pattern):
    areas = hall_areas()
    areas[0].update(patch)
    with pytest.raises(InputError, match=pattern):
        CrowdSpace.from_areas(areas, source="bad.yaml")


def test_duplicate_ids_are_errors():
    areas = hall_areas() + hall_areas()
    with pytest.raises(InputError, match=r"city\.areas\[1\]\.id 'hall' repeats"):
        CrowdSpace.from_areas(areas)
    areas[1]["id"] = "hall2"
    with pytest.raises(InputError, match=r"city\.areas\[1\]\.exits\[0\]\.id 'door' repeats"):
        CrowdSpace.from_areas(areas)


def test_bad_stairs_are_errors():
    areas, stairs = two_storey_areas()
    stairs[0]["head"] = (30.0, 30.0)
    with pytest.raises(InputError, match=r"head of stair 's_east'.*not within 1.0 m") as exc:
        CrowdSpace.from_areas(areas, stairs=stairs)
    assert exc.value.element == "stairs[0]"
    areas, stairs = two_storey_areas()
    stairs[1]["from_area"], stairs[1]["to_area"] = "first", "ground"
    with pytest.raises(InputError, match=r"stairs\[1\]: from_area 'first' must be on a lower level"):
        CrowdSpace.from_areas(areas, stairs=stairs)


# ---------------------------------------------------------------------------------------------------------------
# Thin walls and narrow passages in the raster


@settings(max_examples=30, deadline=None)
@given(
    thickness=st.sampled_from([0.02, 0.06, 0.1, 0.15, 0.25]),
    angle=st.floats(0, 90, allow_nan=False),
    dx=st.floats(0, 1, allow_nan=False),
    dy=st.floats(0, 1, allow_nan=False),
    door=st.booleans(),
)
def test_thin_walls_stay_closed_and_doors_stay_open(thickness, angle, dx, dy, door):
    parts = [box(0, 0, 5, 5), box(5 + thickness, 0, 10, 5)]
    if door:
        parts.append(box(4.95, 2.0, 5.05 + thickness, 3.0))
    geom = affinity.translate(affinity.rotate(shapely.union_all(parts), angle, origin=(0, 0)), dx, dy)
    origin, ny, nx = aligned_grid(geom.bounds, H)
    walk, cov = rasterize(geom, origin, H, ny, nx)
    assert ndimage.label(walk)[1] == (1 if door else 2)
    assert ((cov >= 0) & (cov <= 1)).all()


# ---------------------------------------------------------------------------------------------------------------
# Exit choice


@pytest.fixture(scope="module")
def two_door_room() -> tuple[CrowdSpace, list[np.ndarray]]:
    room = "POLYGON ((0 0, 30 0, 30 10, 0 10, 0 0))"
    exits = [
        {"id": "west", "polygon": "POLYGON ((-1 4.5, 0 4.5, 0 5.5, -1 5.5, -1 4.5))"},
        {"id": "east", "polygon": "POLYGON ((30 4, 31 4, 31 6, 30 6, 30 4))"},
    ]
    s = CrowdSpace.from_areas([{"id": "room", "walkable": room, "exits": exits}], cell_size=0.25)
    return s, s.distance_fields()


def slow_choice(dist, speeds, queues, widths, current, allowed, flow=1.3, gain=0.1, gain_s=2.0):
    out = []
    for i in range(len(speeds)):
        t = [
            dist[i, e] / speeds[i] + queues[e] / (flow * widths[e]) if allowed[i, e] else math.inf
            for e in range(len(widths))
        ]
        b = min(range(len(t)), key=lambda e: (t[e], e))
        if not math.isfinite(t[b]):
            b = -1
        c = current[i]
        if c >= 0 and math.isfinite(t[c]):
            if not (b >= 0 and t[b] <= (1 - gain) * t[c] and t[b] <= t[c] - gain_s):
                b = c
        out.append(b)
    return np.array(out)


def test_choose_exits_matches_a_per_agent_reference(two_door_room):
    s, fields = two_door_room
    rng = np.random.default_rng(7)
    n = 400
    pos = np.column_stack([rng.uniform(0.3, 29.7, n), rng.uniform(0.3, 9.7, n)])
    lev = np.zeros(n, dtype=np.int32)
    speeds = rng.uniform(0.5, 1.6, n)
    queues = np.array([40, 5])
    current = rng.integers(-1, 2, n)
    allowed = rng.random((n, 2)) < 0.8
    got = s.choose_exits(pos, lev, speeds, fields[:2], queue_counts=queues, current=current, allowed=allowed)
    dist = np.column_stack([s.sample_distance(f, pos, lev) for f in fields[:2]])
    widths = s.exits["width_m"].to_numpy()
    np.testing.assert_allclose(widths, [1.0, 2.0])
    ref = slow_choice(dist, speeds, queues, widths, current, allowed)
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == np.int32
    assert (got[~allowed.any(axis=1)] == -1).all()
    assert (got[(got >= 0)] >= 0).all()
    assert allowed[got >= 0, got[got >= 0]].all()


def test_choose_exits_prefers_the_nearer_exit_until_its_queue_grows(two_door_room):
    s, fields = two_door_room
    pos = np.array([[5.0, 5.0], [14.0, 5.0], [25.0, 5.0]])
    lev = np.zeros(3, dtype=np.int32)
    v = np.full(3, 1.34)
    assert s.choose_exits(pos, lev, v, fields[:2]).tolist() == [0, 0, 1]
    # 10 people queue at the 1 m west door: ~7.7 s of waiting sends the middle agent east
    q = np.array([10, 0])
    assert s.choose_exits(pos, lev, v, fields[:2], queue_counts=q).tolist() == [0, 1, 1]
    # hysteresis: an agent heading west keeps west unless east is >= 10 % and >= 2 s quicker
    assert s.choose_exits(
        pos, lev, v, fields[:2], queue_counts=np.array([2, 0]), current=[0, 0, 0]
    ).tolist() == [
        0,
        0,
        1,
    ]
    # assigned exits are respected even when the other is much quicker
    allowed = np.array([[False, True], [False, True], [True, False]])
    assert s.choose_exits(pos, lev, v, fields[:2], allowed=allowed).tolist() == [1, 1, 0]
    counts = s.count_near_exits(
        fields[:2], np.array([[0.5, 5.0], [1.5, 5.2], [29.0, 5.0], [15, 5]]), np.zeros(4, int)
    )
    assert counts.tolist() == [2, 1]


def test_sample_distance_checks_shapes(hall):
    f = hall.distance_fields()[0]
    with pytest.raises(ValueError, match="levels must be"):
        hall.sample_distance(f, np.zeros((3, 2)), np.zeros(2, dtype=np.int32))
    with pytest.raises(ValueError, match="field must be"):
        hall.sample_distance(f[0], np.zeros((3, 2)), np.zeros(3, dtype=np.int32))
    assert np.isinf(hall.sample_distance(f, [[-50.0, 0.0]], [0]))[0]


def test_combine_keeps_levels_apart_and_renumbers_exits(hall):
    areas, stairs = two_storey_areas()
    two = CrowdSpace.from_areas(areas, cell_size=H, stairs=stairs)
    c = CrowdSpace.combine([two, hall])
    assert c.n_levels == 3
    assert c.level_z.tolist() == [0.0, 0.0, 3.0]
    assert c.level_names == ["ground", "hall", "first"]
    assert c.exits["id"].tolist() == ["west", "east", "door"]
    assert c.exits["level"].tolist() == [0, 2, 1]
    assert c.stairs[:, 0].tolist() == [0, 0]
    assert c.stairs[:, 3].tolist() == [2, 2]
    assert set(np.unique(c.exit_cells[1]).tolist()) == {-1, 2}
    f = c.distance_fields([["door"]])[0]
    g = hall.distance_fields()[0]
    np.testing.assert_array_equal(f[1][: g.shape[1], : g.shape[2]], g[0])
    both = c.distance_fields([["west", "east"]])[0]
    ref = two.distance_fields()[-1]
    np.testing.assert_allclose(both[0][: ref.shape[1], : ref.shape[2]], ref[0])
    np.testing.assert_allclose(both[2][: ref.shape[1], : ref.shape[2]], ref[1])


def test_fields_follow_cells_closed_after_construction():
    """Closing cells in place (as a hazard would) changes the next fields: the cached engine is not stale."""
    s = CrowdSpace.from_areas(hall_areas(), cell_size=H)
    before = s.distance_fields()[0]
    c = centres(s)
    band = (c[..., 0] > 19.0) & (c[..., 0] < 19.6)  # a wall across the hall in front of the door
    s.walkable[0][band] = 0
    after = s.distance_fields()[0]
    assert np.isfinite(before[0][c[..., 0] < 19.0][s.walkable[0][c[..., 0] < 19.0] > 0]).all()
    assert np.isinf(after[0][c[..., 0] < 19.0]).all()
    with pytest.raises(InputError, match="'hall'.*cannot reach any exit"):
        s.validate()


def test_clearance_leads_people_through_the_middle_of_a_door_not_at_its_jamb():
    space = CrowdSpace.from_areas(
        [
            {
                "id": "room",
                "walkable": "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0))",
                "z": 0.0,
                "exits": [{"id": "door", "polygon": "POLYGON ((20 9.5, 21 9.5, 21 10.5, 20 10.5, 20 9.5))"}],
            }
        ]
    )
    plain = space.distance_fields()[0]
    clear = space.distance_fields(clearance_m=0.25)[0]
    np.testing.assert_array_equal(np.isfinite(plain), np.isfinite(clear))  # reachability never changes
    pts = np.array([[19.9, 9.5], [19.9, 9.9]])  # beside the lower jamb, and in the door's clear middle
    lv = np.zeros(2, dtype=np.int32)
    d_plain = space.sample_distance(plain, pts, lv)
    d_clear = space.sample_distance(clear, pts, lv)
    assert d_plain[0] == pytest.approx(
        d_plain[1]
    )  # plain field: straight at the jamb is as good as the middle
    assert d_clear[0] > d_clear[1] + 0.1  # with clearance the jamb side is farther: people move to the middle
    assert np.all(
        clear[np.isfinite(clear)] >= plain[np.isfinite(plain)] - 1e-9
    )  # never shorter than the plain


def test_cost_factor_fields_match_a_directed_dijkstra_with_weights(caplog):
    """Per-cell cost factors (congestion): each per-exit and the all-exits field of the two-storey space with
    stairs equals the weighted directed reference; a factor of 1 everywhere gives the plain fields exactly."""
    areas, stairs = two_storey_areas()
    s = CrowdSpace.from_areas(areas, cell_size=0.5, stairs=stairs)
    down, up = s.stair_costs()
    # a crowd on the ground floor's east half (factor up to 6) and a random sprinkle of slow cells everywhere
    c = centres(s)
    factor = np.ones(s.shape)
    factor[0] += 5.0 * np.exp(-((c[..., 0] - 7.0) ** 2 + (c[..., 1] - 2.0) ** 2) / 4.0)
    rng = np.random.default_rng(3)
    factor += np.where(rng.random(s.shape) < 0.2, rng.uniform(0.0, 3.0, s.shape), 0.0)
    fields = s.distance_fields(stencil=8, cost=factor)
    assert "did not settle" not in caplog.text  # the stairs' directions were resolved
    plain = s.distance_fields(stencil=8)
    for rows, f, p in zip(s.default_exit_sets(), fields, plain, strict=True):
        ref = directed_reference(s, rows, down, up, factor)
        np.testing.assert_allclose(f, ref, rtol=0, atol=1e-9)
        fin = np.isfinite(p)
        assert (np.isfinite(f) == fin).all()
        assert (f[fin] >= p[fin] - 1e-9).all()
        assert (f[fin] > p[fin] + 1e-6).mean() > 0.5
    ones = s.distance_fields(cost=np.ones(s.shape), clearance_m=0.25)
    for a, b in zip(ones, s.distance_fields(clearance_m=0.25), strict=True):
        assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError, match=r"cost must be \(2, \d+, \d+\) float64, got \(1, 3, 3\)"):
        s.distance_fields(cost=np.ones((1, 3, 3)))
    bad = np.ones(s.shape)
    bad[1, 2, 3] = 0.0
    with pytest.raises(ValueError, match=r"cost\[1, 2, 3\] must be a finite factor > 0"):
        s.distance_fields(cost=bad)


def test_congested_door_side_sends_the_clearance_route_round_it():
    """A 20 m x 20 m room with a 4 m door (y 8-12) in its east wall; people crowd the door's southern half
    (factor 5 within 3 m of it, y < 10): with clearance the route from the south-west corner no longer heads for
    the nearest door edge but for the free northern half, and every field value grows (factor >= 1)."""
    space = CrowdSpace.from_areas(
        [
            {
                "id": "room",
                "walkable": "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0))",
                "exits": [{"id": "door", "polygon": "POLYGON ((20 8, 21 8, 21 12, 20 12, 20 8))"}],
            }
        ]
    )
    c = centres(space)
    factor = np.ones(space.shape)
    factor[0][(c[..., 0] > 17.0) & (c[..., 1] < 10.0)] = 5.0
    plain = space.distance_fields(clearance_m=0.25)[0]
    quick = space.distance_fields(clearance_m=0.25, cost=factor)[0]
    fin = np.isfinite(plain)
    assert (np.isfinite(quick) == fin).all()
    assert (quick[fin] >= plain[fin] - 1e-9).all()
    engine = DistanceField(space.walkable, cell_size=space.cell_size, origins=space.origins)
    lv = np.zeros(1, dtype=np.int64)
    d_plain = engine.sample_direction(plain, [[14.0, 2.0]], lv)[0]
    d_quick = engine.sample_direction(quick, [[14.0, 2.0]], lv)[0]
    # towards the southern door edge (20, 8) the direction is (6, 6)/|.|; the congested field turns north of it
    assert math.degrees(math.atan2(d_plain[1], d_plain[0])) == pytest.approx(45.0, abs=10.0)
    assert math.degrees(math.atan2(d_quick[1], d_quick[0])) > 55.0


def test_fields_are_the_same_with_threads_and_caches(threads_restored):
    """Fields with clearance and a cost factor: the same bits computed once on a fresh space with one thread, again
    (cached clearance and reachability, the plain pass skipped where it adds nothing) and with two threads; a side
    room behind a 0.4 m gap (no clear route) is reached all the same."""
    areas = [
        {
            "id": "rooms",
            "walkable": "POLYGON ((0 0, 10 0, 10 2.8, 10.6 2.8, 10.6 0, 14 0, 14 6, 10.6 6, 10.6 3.2, 10 3.2, "
            "10 6, 0 6, 0 0))",
            "exits": [
                {"id": "west", "polygon": "POLYGON ((-1 2, 0 2, 0 4, -1 4, -1 2))"},
                {"id": "south", "polygon": "POLYGON ((4 -1, 6 -1, 6 0, 4 0, 4 -1))"},
            ],
        }
    ]
    space = CrowdSpace.from_areas(areas, cell_size=H)
    factor = 1.0 + 3.0 * np.random.default_rng(8).random(space.shape)
    results = []
    for n_threads, fresh in ((1, True), (1, False), (2, False), (2, True)):
        set_num_threads(n_threads)
        if fresh:
            space = CrowdSpace.from_areas(areas, cell_size=H)
        results.append(space.distance_fields(clearance_m=0.25, cost=factor))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert a.tobytes() == b.tobytes()
    side = space.walkable_at(np.array([[12.0, 3.0]]), 0)
    assert side[0]
    d = space.sample_distance(results[0][-1], np.array([[12.0, 3.0]]), np.zeros(1, dtype=np.int32))
    assert np.isfinite(d[0])  # reached through the gap
