"""DistanceField against exact Euclidean distance, against scipy's Dijkstra on the same stencil graph, and edge cases.

Tolerances: in open space the stencil distance between cell centres lies in [1, 1 + e] times the Euclidean
distance with e = DistanceField.MAX_RELATIVE_ERROR[stencil] (32: 1.31 %, 16: 2.75 %, 8: 8.24 %); against scipy
on the identical graph the distances agree to 1e-9 m.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse import csgraph

from twin.spatial import DistanceField, get_num_threads, set_num_threads

# ----------------------------------------------------------------------------------------------------------------
# Slow, obvious reference: the stencil graph built in numpy and solved by scipy.


def stencil_moves(stencil: int) -> list[tuple[int, int]]:
    base = {8: [(1, 0), (1, 1)], 16: [(1, 0), (1, 1), (2, 1)], 32: [(1, 0), (1, 1), (2, 1), (3, 1), (3, 2)]}
    moves = set()
    for a, b in base[stencil]:
        for sx in (1, -1):
            for sy in (1, -1):
                moves.add((sx * a, sy * b))
                moves.add((sx * b, sy * a))
    return sorted(moves)


def swept_cells(dx: int, dy: int) -> list[tuple[int, int]]:
    """Cells whose closed square meets the segment between the centres of (0, 0) and (dx, dy) (Liang-Barsky in
    exact fractions: the segment t*(dx, dy), t in [0, 1], clipped against the square [i-1/2, i+1/2] x ...)."""
    out = []
    for j in range(min(0, dy) - 1, max(0, dy) + 2):
        for i in range(min(0, dx) - 1, max(0, dx) + 2):
            if (i, j) in ((0, 0), (dx, dy)):
                continue
            lo, hi = Fraction(0), Fraction(1)
            for d, c in ((dx, i), (dy, j)):
                a, b = Fraction(2 * c - 1, 2), Fraction(2 * c + 1, 2)
                if d == 0:
                    if not (a <= 0 <= b):
                        lo, hi = Fraction(1), Fraction(0)
                    continue
                t0, t1 = sorted((a / d, b / d))
                lo, hi = max(lo, t0), min(hi, t1)
            if lo <= hi:
                out.append((i, j))
    return out


def stencil_graph(walkable: np.ndarray, h: float, stencil: int, connectors=(), cost=None) -> sparse.csr_array:
    """CSR graph over all cells (level, iy, ix) flattened, plus connector edges both ways. With ``cost``
    (per-cell factors shaped like ``walkable``) a move a -> b weighs its length times (cost[a] + cost[b]) / 2."""
    L, ny, nx = walkable.shape
    n = walkable.size
    idx = np.arange(n).reshape(walkable.shape)
    pad = 4
    wp = np.zeros((L, ny + 2 * pad, nx + 2 * pad), bool)
    wp[:, pad : pad + ny, pad : pad + nx] = walkable

    def shifted(dx, dy):
        return wp[:, pad + dy : pad + dy + ny, pad + dx : pad + dx + nx]

    rows, cols, vals = [], [], []
    for dx, dy in stencil_moves(stencil):
        ok = walkable & shifted(dx, dy)
        for i, j in swept_cells(dx, dy):
            ok = ok & shifted(i, j)
        lv, iy, ix = np.nonzero(ok)
        rows.append(idx[lv, iy, ix])
        cols.append(idx[lv, iy + dy, ix + dx])
        length = np.full(len(lv), h * math.sqrt(dx * dx + dy * dy))
        if cost is not None:
            length = length * (0.5 * (cost[lv, iy, ix] + cost[lv, iy + dy, ix + dx]))
        vals.append(length)
    for la, ya, xa, lb, yb, xb, cost in connectors:
        a, b = idx[int(la), int(ya), int(xa)], idx[int(lb), int(yb), int(xb)]
        rows += [np.array([a]), np.array([b])]
        cols += [np.array([b]), np.array([a])]
        vals += [np.array([cost]), np.array([cost])]
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) == len(r)  # no duplicates to be summed
    return sparse.csr_array((v, (r, c)), shape=(n, n))


def scipy_field(walkable, h, stencil, targets, initial=None, connectors=(), cost=None):
    """Distances by scipy: a super-source linked to each target with weight offset + initial cost."""
    g = stencil_graph(walkable, h, stencil, connectors, cost).tocoo()
    n = walkable.size
    flat = np.ravel_multi_index(tuple(np.asarray(targets).T), walkable.shape)
    initial = np.zeros(len(flat)) if initial is None else np.asarray(initial, float)
    offset = 1.0  # scipy may drop explicit zero weights, so shift the super-source edges
    r = np.concatenate([g.row, np.full(len(flat), n)])
    c = np.concatenate([g.col, flat])
    v = np.concatenate([g.data, initial + offset])
    big = sparse.csr_array((v, (r, c)), shape=(n + 1, n + 1))
    d = csgraph.dijkstra(big, directed=True, indices=n)[:n] - offset
    return d.reshape(walkable.shape)


def random_walkable(rng, shape, p_block=0.25):
    """Random obstacles: scattered blocked cells plus a few wall bars."""
    w = rng.random(shape) > p_block
    L, ny, nx = shape
    for lv in range(L):
        for _ in range(4):
            y, x = rng.integers(0, ny), rng.integers(0, nx)
            if rng.random() < 0.5:
                w[lv, y, x : x + nx // 2] = False
            else:
                w[lv, y : y + ny // 2, x] = False
    return w


@pytest.fixture
def threads():
    before = get_num_threads()
    yield
    set_num_threads(before)


# ----------------------------------------------------------------------------------------------------------------
# Accuracy


@pytest.mark.parametrize("stencil", [8, 16, 32])
def test_open_field_against_euclidean(stencil):
    """200x200 open field, point target at a cell centre: d / euclid in [1, 1 + e], and e is attained."""
    w = np.ones((200, 200), bool)
    h = 0.4
    f = DistanceField(w, cell_size=h, origins=[10.0, -5.0], stencil=stencil)
    for ty, tx in [(100, 100), (0, 0), (37, 181)]:
        d = f.compute([[0, ty, tx]])[0]
        iy, ix = np.mgrid[0:200, 0:200]
        exact = h * np.hypot(iy - ty, ix - tx)
        assert d[ty, tx] == 0.0
        far = exact > 0
        ratio = d[far] / exact[far]
        bound = DistanceField.MAX_RELATIVE_ERROR[stencil]
        assert ratio.min() >= 1 - 1e-12
        assert ratio.max() <= 1 + bound + 1e-12
        assert ratio.max() >= 1 + 0.95 * bound  # the bound is tight, so it is the right one to state
    if stencil == 32:
        assert bound < 0.02  # the default stencil meets the 2 % requirement everywhere in open space


def test_default_stencil_is_32_and_within_two_percent():
    w = np.ones((1, 200, 200), np.uint8)
    f = DistanceField(w, cell_size=1.0, origins=[[0.0, 0.0]])
    assert f.stencil == 32
    d = f.compute([[0, 3, 150]])[0]
    iy, ix = np.mgrid[0:200, 0:200]
    exact = np.hypot(iy - 3, ix - 150)
    np.testing.assert_array_less(np.abs(d - exact), 0.02 * exact + 1e-12)


def test_compute_from_points_off_centre():
    """A point target between centres: d(q) - |q - p| in [-(1 - ...), bound*|q-p| + 2|p - c|]."""
    h = 0.5
    f = DistanceField(np.ones((120, 100), bool), cell_size=h, origins=[2.0, 3.0])
    p = np.array([[2.0 + 37.3 * h, 3.0 + 61.8 * h]])
    d = f.compute_from_points(p)[0]
    cy, cx = 61, 37
    c = np.array([2.0 + (cx + 0.5) * h, 3.0 + (cy + 0.5) * h])
    pc = np.hypot(*(p[0] - c))
    assert d[cy, cx] == pytest.approx(pc, abs=1e-15)
    iy, ix = np.mgrid[0:120, 0:100]
    qx, qy = 2.0 + (ix + 0.5) * h, 3.0 + (iy + 0.5) * h
    exact = np.hypot(qx - p[0, 0], qy - p[0, 1])
    bound = DistanceField.MAX_RELATIVE_ERROR[32]
    assert np.all(d >= exact - 1e-12)  # seeding with |p - c| never underestimates
    assert np.all(d <= exact * (1 + bound) + (2 + bound) * pc + 1e-12)


@pytest.mark.parametrize("stencil", [8, 16, 32])
def test_matches_scipy_on_same_stencil(stencil):
    """Random obstacles on two levels, stairs, several targets with initial costs: identical to scipy."""
    rng = np.random.default_rng(stencil)
    shape = (2, 45, 60)
    w = random_walkable(rng, shape)
    h = 0.3
    cells = np.argwhere(w)
    lv0, lv1 = cells[cells[:, 0] == 0], cells[cells[:, 0] == 1]
    conns = []
    for _ in range(3):
        a, b = lv0[rng.integers(len(lv0))], lv1[rng.integers(len(lv1))]
        conns.append([*a, *b, float(rng.uniform(1, 6))])
    conns = np.array(conns, float)
    targets = lv0[rng.choice(len(lv0), 4, replace=False)]
    initial = rng.uniform(0, 3, 4)
    f = DistanceField(w, cell_size=h, origins=[[0, 0], [0, 0]], connectors=conns, stencil=stencil)
    d = f.compute(targets, initial)
    ref = scipy_field(w, h, stencil, targets, initial, conns)
    assert np.array_equal(np.isinf(d), np.isinf(ref))
    fin = np.isfinite(ref)
    assert fin.sum() > 0.5 * w.sum()  # the comparison covers most of the raster
    np.testing.assert_allclose(d[fin], ref[fin], rtol=0, atol=1e-9)
    assert np.all(np.isinf(d[~w]))


# ----------------------------------------------------------------------------------------------------------------
# Per-cell cost factors (congestion-aware routing)


@pytest.mark.parametrize("stencil", [8, 16, 32])
def test_cost_factor_matches_scipy_on_same_stencil(stencil):
    """Random obstacles, stairs, initial costs and a random cost factor in [1, 10] (some cells > 1 only): the
    same distances as scipy's Dijkstra with each move weighted by the mean factor of its two cells."""
    rng = np.random.default_rng(100 + stencil)
    shape = (2, 40, 55)
    w = random_walkable(rng, shape, 0.2)
    h = 0.2
    cells = np.argwhere(w)
    lv0, lv1 = cells[cells[:, 0] == 0], cells[cells[:, 0] == 1]
    conns = np.array(
        [
            [*lv0[rng.integers(len(lv0))], *lv1[rng.integers(len(lv1))], float(rng.uniform(1, 6))]
            for _ in range(3)
        ]
    )
    cost = np.where(rng.random(shape) < 0.4, rng.uniform(1.0, 10.0, shape), 1.0)
    targets = lv0[rng.choice(len(lv0), 3, replace=False)]
    initial = rng.uniform(0, 2, 3)
    f = DistanceField(w, cell_size=h, origins=[[0, 0], [0, 0]], connectors=conns, stencil=stencil)
    d = f.compute(targets, initial, cost=cost)
    ref = scipy_field(w, h, stencil, targets, initial, conns, cost)
    assert np.array_equal(np.isinf(d), np.isinf(ref))
    fin = np.isfinite(ref)
    assert fin.sum() > 0.5 * w.sum()
    np.testing.assert_allclose(d[fin], ref[fin], rtol=0, atol=1e-9)
    plain = f.compute(targets, initial)
    assert np.all(d[fin] >= plain[fin] - 1e-12)
    assert np.mean(d[fin] > plain[fin] + 1e-6) > 0.5  # the factors do change most distances


def test_cost_of_one_is_bit_identical_and_a_constant_factor_scales():
    rng = np.random.default_rng(7)
    w = random_walkable(rng, (1, 60, 70), 0.15)
    f = DistanceField(w, cell_size=0.2, origins=[[3.0, -1.0]])
    targets = np.argwhere(w)[:2]
    plain = f.compute(targets)
    assert f.compute(targets, cost=np.ones(w.shape)).tobytes() == plain.tobytes()
    assert (
        f.compute(targets, cost=np.ones(w.shape[1:])).tobytes() == plain.tobytes()
    )  # (ny, nx) for one level
    fin = np.isfinite(plain)
    np.testing.assert_allclose(
        f.compute(targets, cost=np.full(w.shape, 2.5))[fin], 2.5 * plain[fin], rtol=1e-12
    )
    pts = np.array([[3.0 + 35.3 * 0.2, -1.0 + 30.6 * 0.2]])
    if w[0, 30, 35]:
        p_plain = f.compute_from_points(pts)
        p_cost = f.compute_from_points(pts, cost=np.full(w.shape, 2.0))
        seed = p_plain[0, 30, 35]  # the seed (point to cell centre) is not scaled
        fin = np.isfinite(p_plain)
        np.testing.assert_allclose(p_cost[fin], 2.0 * (p_plain[fin] - seed) + seed, rtol=1e-12, atol=1e-12)


def test_costly_band_sends_the_route_around_it():
    """A 20 x 60 open room, target at the west end of the middle row; a slow band (factor 10) across the middle
    of the room with a gap near the north wall: from the east end the route detours through the gap once that is
    quicker, and the field equals scipy's."""
    w = np.ones((1, 20, 60), bool)
    cost = np.ones(w.shape)
    cost[0, :16, 28:32] = 10.0
    f = DistanceField(w, cell_size=1.0, origins=[[0.0, 0.0]])
    d = f.compute([[0, 10, 0]], cost=cost)
    np.testing.assert_allclose(d[0], scipy_field(w, 1.0, 32, [[0, 10, 0]], cost=cost)[0], rtol=0, atol=1e-9)
    # straight through the band costs 59 + 9 * 4 = 95 metres; around through the gap (rows 16-19) about 62
    assert d[0, 10, 59] < 70.0
    assert d[0, 10, 59] > f.compute([[0, 10, 0]])[0, 10, 59]


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (np.full((1, 4, 4), np.nan), r"cost\[0, 0, 0\] must be a finite factor > 0, got nan"),
        (
            np.where(np.eye(4, dtype=bool), np.inf, 1.0)[None],
            r"cost\[0, 0, 0\] must be a finite factor > 0, got inf",
        ),
        (
            np.pad(np.zeros((1, 1, 1)), ((0, 0), (2, 1), (1, 2)), constant_values=1.0),
            r"cost\[0, 2, 1\] must be",
        ),
        (np.full((1, 4, 4), -1.0), "must be a finite factor > 0, got -1"),
        (np.ones((1, 4, 5)), r"cost must be \(1, 4, 4\) float64, got \(1, 4, 5\)"),
        (np.ones((2, 4, 4)), r"cost must be \(1, 4, 4\) float64, got \(2, 4, 4\)"),
        (np.ones(16), r"cost must be \(1, 4, 4\) float64, got \(16,\)"),
        (np.full((1, 4, 4), "a"), "cost must be a float64 array, got <U1"),
    ],
)
def test_bad_cost_is_named(cost, message):
    f = DistanceField(np.ones((4, 4), bool), cell_size=1.0, origins=[0.0, 0.0])
    with pytest.raises(ValueError, match=message):
        f.compute([[0, 0, 0]], cost=cost)
    with pytest.raises(ValueError, match=message):
        f.compute_from_points([[0.5, 0.5]], cost=cost)


def test_swept_cells_reference_matches_hand_rules():
    """The reference's corner-cutting rule on the classic moves (so both sides agree on the definition)."""
    assert sorted(swept_cells(1, 1)) == [(0, 1), (1, 0)]
    assert sorted(swept_cells(2, 1)) == [(1, 0), (1, 1)]
    assert sorted(swept_cells(3, 1)) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert sorted(swept_cells(3, 2)) == [(1, 0), (1, 1), (2, 1), (2, 2)]
    assert swept_cells(1, 0) == []


# ----------------------------------------------------------------------------------------------------------------
# Obstacles, corner cutting, levels


def test_no_diagonal_corner_cutting():
    w = np.zeros((3, 3), bool)
    w[0, 0] = w[1, 1] = True  # touching only at a corner
    f = DistanceField(w, cell_size=1.0, origins=[0, 0])
    d = f.compute([[0, 0, 0]])[0]
    assert d[0, 0] == 0
    assert np.isinf(d[1, 1])
    w[0, 1] = True  # one corner cell open is not enough for the diagonal, but allows the axial detour
    d = DistanceField(w, cell_size=1.0, origins=[0, 0]).compute([[0, 0, 0]])[0]
    assert d[1, 1] == 2.0
    w[1, 0] = True
    d = DistanceField(w, cell_size=1.0, origins=[0, 0]).compute([[0, 0, 0]])[0]
    assert d[1, 1] == pytest.approx(math.sqrt(2))


def test_knight_move_needs_swept_cells():
    """(0,0) -> (1,2) [iy, ix] by a knight move needs cells (0,1) and (1,1) walkable."""
    w = np.zeros((2, 3), bool)
    w[0, 0] = w[1, 2] = True
    w[0, 1] = True  # (1,1) blocked: the knight move is not allowed, nor the diagonal (0,1)->(1,2)
    f = DistanceField(w, cell_size=2.0, origins=[0, 0], stencil=16)
    assert np.isinf(f.compute([[0, 0, 0]])[0, 1, 2])
    w[1, 1] = True
    f = DistanceField(w, cell_size=2.0, origins=[0, 0], stencil=16)
    assert f.compute([[0, 0, 0]])[0, 1, 2] == pytest.approx(2.0 * math.sqrt(5))
    f8 = DistanceField(w, cell_size=2.0, origins=[0, 0], stencil=8)  # diagonals cut corners of (0,2), (1,0)
    assert f8.compute([[0, 0, 0]])[0, 1, 2] == pytest.approx(2.0 * 3)


def test_walled_off_region_stays_inf():
    w = np.ones((40, 40), bool)
    w[10, 10:21] = w[20, 10:21] = False
    w[10:21, 10] = w[10:21, 20] = False  # closed box, its inside is walkable but unreachable
    f = DistanceField(w, cell_size=0.5, origins=[0, 0])
    d = f.compute([[0, 0, 0]])[0]
    assert np.all(np.isinf(d[11:20, 11:20]))
    assert np.all(np.isinf(d[~w]))
    outside = w.copy()
    outside[11:20, 11:20] = False
    assert np.all(np.isfinite(d[outside]))
    # And from inside the box, the outside is unreachable.
    d_in = f.compute([[0, 15, 15]])[0]
    assert np.all(np.isinf(d_in[outside]))
    assert np.all(np.isfinite(d_in[11:20, 11:20]))


def test_levels_linked_by_a_stair_hand_computed():
    """Level 1 distance = distance to the stair on level 0 + stair cost + distance from the stair on level 1."""
    h = 0.5
    w = np.ones((2, 10, 20), bool)
    stair = [0, 2, 12, 1, 2, 12, 7.5]
    f = DistanceField(w, cell_size=h, origins=[[0, 0], [0, 0]], connectors=[stair])
    d = f.compute([[0, 2, 2]])
    to_stair = 10 * h  # along the row on level 0
    assert d[0, 2, 12] == pytest.approx(to_stair)
    assert d[1, 2, 12] == pytest.approx(to_stair + 7.5)
    assert d[1, 2, 17] == pytest.approx(to_stair + 7.5 + 5 * h)
    # (dy, dx) = (3, 4) from the stair = (2, 3) + (1, 1) moves on the 32-stencil
    assert d[1, 5, 16] == pytest.approx(to_stair + 7.5 + h * (math.sqrt(13) + math.sqrt(2)))
    # In general: a single-level field seeded at the landing with its distance.
    one = DistanceField(w[1], cell_size=h, origins=[0, 0]).compute([[0, 2, 12]], [to_stair + 7.5])[0]
    np.testing.assert_allclose(d[1], np.minimum(one, np.inf), rtol=0, atol=1e-12)
    # Both directions: a target on level 1 reaches level 0 through the stair.
    back = f.compute([[1, 2, 17]])
    assert back[0, 2, 2] == pytest.approx(5 * h + 7.5 + 10 * h)


def test_two_stairs_take_the_cheaper():
    h = 1.0
    w = np.ones((2, 5, 30), bool)
    conns = np.array([[0, 0, 0, 1, 0, 0, 20.0], [0, 0, 29, 1, 0, 29, 2.0]])
    f = DistanceField(w, cell_size=h, origins=[[0, 0], [100, 0]], connectors=conns)
    d = f.compute([[0, 0, 0]])
    # cell (1, 0, 10): via stair A 20 + 10 = 30; via stair B 29 + 2 + 19 = 50
    assert d[1, 0, 10] == pytest.approx(30.0)
    assert d[1, 0, 25] == pytest.approx(min(20 + 25, 29 + 2 + 4))


def test_structured_connectors_equal_array_connectors():
    w = np.ones((2, 8, 8), bool)
    rows = np.array([[0, 1, 1, 1, 6, 6, 3.0]])
    dt = np.dtype(
        [(k, "i4") for k in ("level_a", "iy_a", "ix_a", "level_b", "iy_b", "ix_b")] + [("cost_m", "f8")]
    )
    structured = np.array([(0, 1, 1, 1, 6, 6, 3.0)], dtype=dt)
    dicts = [dict(level_a=0, iy_a=1, ix_a=1, level_b=1, iy_b=6, ix_b=6, cost_m=3.0)]
    fields = [
        DistanceField(w, cell_size=1.0, origins=np.zeros((2, 2)), connectors=c)
        for c in (rows, structured, dicts)
    ]
    ds = [f.compute([[0, 0, 0]]) for f in fields]
    assert np.array_equal(ds[0], ds[1])
    assert np.array_equal(ds[0], ds[2])
    np.testing.assert_array_equal(fields[1].connectors, rows)


def test_empty_targets_give_all_inf():
    f = DistanceField(np.ones((5, 6), bool), cell_size=1.0, origins=[0, 0])
    for t in (np.zeros((0, 3), np.int64), []):
        d = f.compute(t)
        assert d.shape == (1, 5, 6)
        assert np.all(np.isinf(d))


def test_inf_initial_disables_a_target():
    f = DistanceField(np.ones((5, 6), bool), cell_size=1.0, origins=[0, 0])
    d = f.compute([[0, 0, 0], [0, 4, 5]], [0.0, np.inf])
    np.testing.assert_array_equal(d, f.compute([[0, 0, 0]]))


# ----------------------------------------------------------------------------------------------------------------
# Cell convention and sampling


def test_cell_convention_on_borders():
    """Cell ix spans [x0 + ix*h, x0 + (ix+1)*h): a border point belongs to the upper cell, even with x0, h = 0.1."""
    x0, y0, h = 0.1, 0.1, 0.1
    f = DistanceField(np.ones((7, 9), bool), cell_size=h, origins=[x0, y0])
    ix = np.arange(9)
    iy = np.arange(9) % 7
    borders = np.column_stack([x0 + ix * h, y0 + iy * h])
    np.testing.assert_array_equal(f.locate(borders), np.column_stack([np.zeros(9), iy, ix]))
    below = borders.copy()
    below[:, 0] = np.nextafter(borders[:, 0], -np.inf)
    np.testing.assert_array_equal(f.locate(below[1:])[:, 1:], np.column_stack([iy[1:], ix[1:] - 1]))
    below = borders.copy()
    below[:, 1] = np.nextafter(borders[:, 1], -np.inf)
    inner = iy > 0
    np.testing.assert_array_equal(f.locate(below[inner])[:, 1:], np.column_stack([iy[inner] - 1, ix[inner]]))
    outside = np.array([[x0 + 9 * h, y0], [x0, y0 + 7 * h], [np.nextafter(x0, -1), y0], [np.nan, y0]])
    np.testing.assert_array_equal(f.locate(outside), -np.ones((4, 3)))
    last = np.array([[np.nextafter(x0 + 9 * h, 0), np.nextafter(y0 + 7 * h, 0)]])
    np.testing.assert_array_equal(f.locate(last), [[0, 6, 8]])
    # A border point used as a target seeds the upper cell, at distance h / sqrt(2) from its centre.
    d = f.compute_from_points(borders[3:4])[0]
    assert d[3, 3] == pytest.approx(h / math.sqrt(2), rel=1e-12)
    assert np.all(d[3, 3] < np.delete(d.ravel(), 3 * 9 + 3))


def reference_sample(d, origins, h, points, levels):
    """Obvious per-point loop of the documented sampling rule."""
    L, ny, nx = d.shape
    out = np.full(len(points), np.inf)
    for k, ((x, y), lv) in enumerate(zip(points, levels, strict=True)):
        x0, y0 = origins[lv]
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        cx, cy = math.floor((x - x0) / h), math.floor((y - y0) / h)
        if not (0 <= cx < nx and 0 <= cy < ny):
            continue
        u, v = (x - x0) / h - 0.5, (y - y0) / h - 0.5
        i0, j0 = math.floor(u), math.floor(v)
        fx, fy = u - i0, v - j0
        vals = []
        for q in range(4):
            i, j = i0 + (q & 1), j0 + (q >> 1)
            vals.append(d[lv, j, i] if 0 <= i < nx and 0 <= j < ny else np.inf)
        if all(np.isfinite(vals)):
            out[k] = (1 - fy) * ((1 - fx) * vals[0] + fx * vals[1]) + fy * ((1 - fx) * vals[2] + fx * vals[3])
        elif np.isfinite(d[lv, cy, cx]):
            out[k] = d[lv, cy, cx]
        else:
            best = np.inf
            for q in range(4):
                d2 = (fx - (q & 1)) ** 2 + (fy - (q >> 1)) ** 2
                if np.isfinite(vals[q]) and d2 < best:
                    best, out[k] = d2, vals[q]
    return out


def test_sample_against_reference():
    rng = np.random.default_rng(7)
    w = random_walkable(rng, (2, 30, 40), 0.2)
    origins = np.array([[5.0, -3.0], [7.5, 1.0]])
    h = 0.7
    f = DistanceField(w, cell_size=h, origins=origins)
    start = np.argwhere(w[0])[0]
    d = f.compute([[0, *start]])
    k = 3000
    levels = rng.integers(0, 2, k)
    pts = origins[levels] + rng.uniform(-2 * h, np.array([42 * h, 32 * h]), (k, 2))
    pts[:5] = np.nan
    got = f.sample(d, pts, levels)
    ref = reference_sample(d, origins, h, pts, levels)
    assert np.array_equal(np.isinf(got), np.isinf(ref))
    fin = np.isfinite(ref)
    assert 0.3 * k < fin.sum() < k
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-13, atol=1e-12)
    # At cell centres the sample is the cell value.
    cells = np.argwhere(np.isfinite(d))[:50]
    centres = origins[cells[:, 0]] + (cells[:, [2, 1]] + 0.5) * h
    np.testing.assert_allclose(f.sample(d, centres, cells[:, 0]), d[tuple(cells.T)], rtol=1e-13)


def test_sample_bilinear_is_exact_for_linear_fields():
    f = DistanceField(np.ones((10, 12), bool), cell_size=2.0, origins=[1.0, 1.0])
    iy, ix = np.mgrid[0:10, 0:12]
    lin = (3.0 + 0.25 * (1 + 2 * (ix + 0.5)) - 0.5 * (1 + 2 * (iy + 0.5)) + 20)[None]
    pts = np.random.default_rng(1).uniform([2.0, 2.0], [24.0, 20.0], (200, 2))
    np.testing.assert_allclose(f.sample(lin, pts), 23.0 + 0.25 * pts[:, 0] - 0.5 * pts[:, 1], rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# Directions


def _maze():
    w = np.ones((60, 80), bool)
    w[15, 0:60] = False
    w[30, 20:80] = False
    w[45, 0:60] = False
    w[30:60, 40] = False
    w[35:40, 40] = True  # a door in the last wall
    w[5:10, 30:35] = False  # a pillar
    return w


def test_gradient_is_unit_and_respects_walls():
    """Directions are unit (or 0); a step shorter than h from anywhere in a cell stays on walkable cells."""
    w = _maze()
    h = 0.5
    f = DistanceField(w, cell_size=h, origins=[0, 0])
    d = f.compute([[0, 58, 78]])
    g = f.gradient(d)
    norm = np.hypot(g[..., 0], g[..., 1])
    fin = np.isfinite(d)
    assert np.all((np.abs(norm - 1) < 1e-12) | (norm == 0))
    assert np.all(norm[~fin] == 0)
    assert norm[0, 58, 78] == 0  # the target
    assert np.argwhere(fin & (norm == 0)).tolist() == [[0, 58, 78]]  # only the target has none
    rng = np.random.default_rng(3)
    cells = np.argwhere(fin[0])
    starts = (np.repeat(cells[:, [1, 0]], 6, axis=0) + rng.random((6 * len(cells), 2))) * h
    dirs = np.repeat(g[0][cells[:, 0], cells[:, 1]], 6, axis=0)
    for frac in (0.3, 0.6, 0.99):
        loc = f.locate(starts + frac * h * dirs)
        assert np.all(loc[:, 0] == 0)
        assert np.all(w[loc[:, 1], loc[:, 2]])


@pytest.mark.parametrize("stencil", [8, 16, 32])
def test_gradient_points_at_the_target_in_open_space(stencil):
    """Beyond 5 cells the direction is within the stated angle (half the widest stencil gap) of the target."""
    f = DistanceField(np.ones((101, 101), bool), cell_size=1.0, origins=[0, 0], stencil=stencil)
    d = f.compute([[0, 50, 50]])
    g = f.gradient(d)[0]
    iy, ix = np.mgrid[0:101, 0:101]
    r = np.hypot(iy - 50, ix - 50)
    sel = r > 5
    to_target = np.stack([50 - ix, 50 - iy], -1)[sel] / r[sel][:, None]
    angle = np.degrees(np.arccos(np.clip(np.sum(g[sel] * to_target, axis=1), -1, 1)))
    assert angle.max() <= DistanceField.MAX_DIRECTION_ERROR_DEG[stencil] + 1e-9
    assert np.median(angle) < 0.5 * DistanceField.MAX_DIRECTION_ERROR_DEG[stencil]


def test_following_sample_direction_reaches_the_target_through_the_maze():
    """Agents stepping along sample_direction never enter a wall, all arrive, and walk at most 2 % + h more
    than the field distance (no zig-zag)."""
    w = _maze()
    h = 0.5
    f = DistanceField(w, cell_size=h, origins=[0, 0])
    d = f.compute([[0, 58, 78]])
    rng = np.random.default_rng(11)
    cells = np.argwhere(np.isfinite(d[0]))
    pick = cells[rng.choice(len(cells), 300, replace=False)]
    pts = (pick[:, [1, 0]] + rng.random((300, 2))) * h
    d0 = f.sample(d, pts)
    walked = np.zeros(300)
    step = 0.4 * h
    active = np.ones(300, bool)
    for _ in range(1500):
        active &= f.sample(d, pts) > h  # arrived: within one cell of the target
        pts = pts + step * f.sample_direction(d, pts) * active[:, None]
        walked += step * active
        loc = f.locate(pts)
        assert np.all(w[loc[:, 1], loc[:, 2]])  # never inside a wall
    assert not active.any()
    assert np.all(walked <= 1.02 * d0 + h)


def test_sample_direction_equals_cell_gradient_and_escapes_walls():
    w = _maze()
    f = DistanceField(w, cell_size=1.0, origins=[0, 0])
    d = f.compute([[0, 0, 0]])
    g = f.gradient(d)
    rng = np.random.default_rng(5)
    pts = rng.uniform([0, 0], [80, 60], (4000, 2))
    loc = f.locate(pts)
    got = f.sample_direction(d, pts)
    fin = np.isfinite(d[0, loc[:, 1], loc[:, 2]])
    np.testing.assert_array_equal(got[fin], g[0, loc[fin, 1], loc[fin, 2]])
    # Points inside a wall head to the nearest finite cell centre among the four around them.
    wall = ~fin & np.isfinite(f.sample(d, pts))
    assert wall.sum() > 10
    for p, g_p in zip(pts[wall], got[wall], strict=True):
        i0, j0 = np.floor(p - 0.5).astype(int)
        cand = [(i, j) for j in (j0, j0 + 1) for i in (i0, i0 + 1) if 0 <= i < 80 and 0 <= j < 60]
        cand = [c for c in cand if np.isfinite(d[0, c[1], c[0]])]
        best = min(cand, key=lambda c: np.hypot(c[0] + 0.5 - p[0], c[1] + 0.5 - p[1]))
        expect = np.array(best) + 0.5 - p
        np.testing.assert_allclose(g_p, expect / np.hypot(*expect), rtol=1e-12)
    # Outside the raster: no direction.
    np.testing.assert_array_equal(f.sample_direction(d, [[-1.0, 5.0], [80.0, 5.0]]), np.zeros((2, 2)))


# ----------------------------------------------------------------------------------------------------------------
# Errors and threads


def test_target_on_non_walkable_cell_is_named():
    w = np.ones((6, 6), bool)
    w[3, 3] = False
    f = DistanceField(w, cell_size=1.0, origins=[0, 0])
    with pytest.raises(ValueError, match=r"targets\[1\] = \(0, 3, 3\) is not a walkable cell"):
        f.compute([[0, 0, 0], [0, 3, 3]])
    with pytest.raises(
        ValueError, match=r"targets\[0\] = \(0, 6, 0\) is outside the raster of shape \(1, 6, 6\)"
    ):
        f.compute([[0, 6, 0]])
    with pytest.raises(
        ValueError, match=r"points\[1\] = \(3\.5, 3\.5\) on level 0 lies in the non-walkable cell"
    ):
        f.compute_from_points([[0.5, 0.5], [3.5, 3.5]])
    with pytest.raises(ValueError, match=r"points\[0\] .* is outside the raster"):
        f.compute_from_points([[-0.5, 0.5]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(walkable=np.ones((4, 4))), "walkable must be a bool or uint8 array, got float64"),
        (dict(walkable=np.ones(4, bool)), r"walkable must be \(levels, ny, nx\) or \(ny, nx\)"),
        (dict(origins=np.zeros((2, 2))), r"origins must be \(1, 2\) float64"),
        (dict(origins=[np.nan, 0.0]), "origins must be finite"),
        (dict(cell_size=0.0), "cell_size must be a finite number > 0"),
        (dict(stencil=12), "stencil must be 8, 16 or 32"),
        (dict(connectors=np.zeros((1, 6))), r"connectors must be \(n, 7\) float64, got \(1, 6\)"),
        (dict(connectors=[[0, 0, 0.5, 0, 1, 1, 1.0]]), r"connectors\[0, 2\] must be an integer"),
        (dict(connectors=[[0, 0, 0, 0, 3, 3, 1.0]]), r"connectors\[0\]: cell b \(0, 3, 3\) is not walkable"),
        (dict(connectors=[[0, 0, 0, 1, 1, 1, 1.0]]), r"connectors\[0\]: cell b \(1, 1, 1\) is outside"),
        (dict(connectors=[[0, 0, 0, 0, 1, 1, -1.0]]), r"connectors\[0\]: cost must be finite and >= 0"),
    ],
)
def test_construction_errors_name_the_argument(kwargs, message):
    w = np.ones((4, 4), bool)
    w[3, 3] = False
    args = dict(walkable=w, cell_size=1.0, origins=[0.0, 0.0]) | kwargs
    walkable = args.pop("walkable")
    with pytest.raises(ValueError, match=message):
        DistanceField(walkable, **args)


def test_query_errors_name_the_argument():
    f = DistanceField(np.ones((2, 4, 5), bool), cell_size=1.0, origins=np.zeros((2, 2)))
    d = f.compute([[0, 0, 0]])
    with pytest.raises(ValueError, match=r"targets must be \(n, 3\) int64, got \(2, 2\)"):
        f.compute([[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="targets must be an integer array, got float64"):
        f.compute([[0, 0.5, 0]])
    with pytest.raises(ValueError, match=r"initial must be \(1,\) float64, got \(2,\)"):
        f.compute([[0, 0, 0]], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"initial\[0\] must be finite or \+inf"):
        f.compute([[0, 0, 0]], [np.nan])
    with pytest.raises(ValueError, match=r"distances must be \(2, 4, 5\) float64, got \(4, 5\)"):
        f.sample(d[0], [[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"points must be \(n, 2\) float64, got \(1, 3\)"):
        f.sample(d, [[0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match=r"levels\[1\] = 2 is not a level in \[0, 2\)"):
        f.sample_direction(d, [[0.5, 0.5], [0.5, 0.5]], [0, 2])
    with pytest.raises(ValueError, match=r"levels must be \(2,\) int64, got \(1,\)"):
        f.sample(d, [[0.5, 0.5], [0.5, 0.5]], [0])
    with pytest.raises(ValueError, match="levels must be an integer array"):
        f.sample(d, [[0.5, 0.5]], [0.0])
    with pytest.raises(ValueError, match=r"distances must be \(2, 4, 5\)"):
        f.gradient(np.zeros((2, 5, 4)))


def test_two_dimensional_walkable_is_one_level():
    f = DistanceField(np.ones((4, 5), np.uint8), cell_size=1.0, origins=[1.0, 2.0])
    assert f.shape == (1, 4, 5)
    np.testing.assert_array_equal(f.origins, [[1.0, 2.0]])
    assert f.walkable.dtype == bool
    assert f.walkable.shape == (1, 4, 5)
    assert not f.walkable.flags.writeable


def test_results_do_not_depend_on_thread_count(threads):
    rng = np.random.default_rng(21)
    w = random_walkable(rng, (2, 120, 150), 0.2)
    conns = [[0, *np.argwhere(w[0])[500], 1, *np.argwhere(w[1])[800], 4.0]]
    pts = rng.uniform([0, 0], [150, 120], (5000, 2))
    lv = rng.integers(0, 2, 5000)
    out = []
    for n in (1, 2):
        set_num_threads(n)
        f = DistanceField(w, cell_size=1.0, origins=np.zeros((2, 2)), connectors=conns)
        d = f.compute(np.argwhere(w)[:3])
        cost = 1.0 + 4.0 * np.random.default_rng(5).random(w.shape)
        dc = f.compute(np.argwhere(w)[:3], cost=cost)
        out.append(
            (d, f.gradient(d), f.sample(d, pts, lv), f.sample_direction(d, pts, lv), dc, f.gradient(dc))
        )
    for a, b in zip(out[0], out[1], strict=True):
        assert a.tobytes() == b.tobytes()
