"""traffic_net.compile_network on small real networks (grid10, Bologna Acosta, West Oakland OSM) and synthetic
junctions, checked against sumolib's independent reading of the same SUMO files and against scipy routing."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from twin.city import City
from twin.city.frame import Frame
from twin.city.osm import load_osm_roads
from twin.city.roads import RoadNetwork
from twin.city.sumo import load_sumo_net
from twin.errors import InputError
from twin.sim.traffic_net import TrafficNetwork, compile_network, derive_foes, main_road

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
GRID_NET = DATA / "traffic" / "grid10.net.xml"
BOLOGNA_NET = DATA / "roads" / "bologna_acosta_buslanes.net.xml"
OAKLAND = DATA / "roads" / "West-Oakland.osm.bz2"


@pytest.fixture(scope="module")
def sumo():
    """path → (RoadNetwork, TrafficNetwork, sumolib Net read with internal lanes)."""
    import sumolib

    cache: dict[Path, tuple[RoadNetwork, TrafficNetwork, object]] = {}

    def get(path: Path):
        if path not in cache:
            roads = load_sumo_net(path, frame=Frame())
            ref = sumolib.net.readNet(str(path), withInternal=True, withPrograms=True, withConnections=True)
            cache[path] = (roads, compile_network(roads), ref)
        return cache[path]

    return get


@pytest.fixture(scope="module")
def oakland() -> tuple[RoadNetwork, TrafficNetwork]:
    roads = load_osm_roads(OAKLAND, frame=Frame())
    return roads, compile_network(roads)


def _normal_connections(ref) -> list:
    return [
        c
        for e in ref.getEdges(withInternal=False)
        for cs in e.getOutgoing().values()
        for c in cs
        if c.getTo().getFunction() == ""
    ]


def _link_of(net: TrafficNetwork, c) -> int:
    key = (net.lane_row[c.getFromLane().getID()], net.lane_row[c.getToLane().getID()])
    return _link_index(net)[key]


def _link_index(net: TrafficNetwork) -> dict[tuple[int, int], int]:
    return {
        (int(a), int(b)): k for k, (a, b) in enumerate(zip(net.link_from_lane, net.link_to_lane, strict=True))
    }


# -- SUMO networks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [GRID_NET, BOLOGNA_NET], ids=lambda p: p.name)
def test_counts_and_lanes_equal_sumolib(path, sumo):
    _, net, ref = sumo(path)
    edges = ref.getEdges(withInternal=False)
    lanes = [lane for e in edges for lane in e.getLanes()]
    conns = _normal_connections(ref)
    assert net.n_edges == len(edges)
    assert net.n_lanes == len(lanes)
    assert net.n_links == len(conns)
    assert list(net.edge_ids) == [e.getID() for e in edges]
    assert list(net.lane_ids) == [lane.getID() for lane in lanes]
    np.testing.assert_array_equal(net.lane_length, [lane.getLength() for lane in lanes])
    np.testing.assert_array_equal(net.lane_speed, [lane.getSpeed() for lane in lanes])
    np.testing.assert_array_equal(net.lane_index, [lane.getIndex() for lane in lanes])
    np.testing.assert_array_equal(net.lane_allow_passenger, [lane.allows("passenger") for lane in lanes])
    np.testing.assert_array_equal(np.diff(net.edge_lane_offsets), [e.getLaneNumber() for e in edges])
    np.testing.assert_array_equal(net.edge_length, [e.getLength() for e in edges])
    # lane shapes as sumolib has them, up to the translation from net to local frame (same projected CRS)
    shift = net.lane_shape_xy[0] - np.array(lanes[0].getShape()[0][:2])
    for k in range(0, net.n_lanes, 7):
        shape = net.lane_shape_xy[net.lane_shape_offsets[k] : net.lane_shape_offsets[k + 1]]
        np.testing.assert_allclose(shape - shift, np.array(lanes[k].getShape())[:, :2], atol=1e-6)
    # every SUMO connection is a link, with its direction and signal
    index = _link_index(net)
    for c in conns:
        k = index[(net.lane_row[c.getFromLane().getID()], net.lane_row[c.getToLane().getID()])]
        assert chr(net.link_dir[k]) == c.getDirection()
        assert net.junction_ids[net.link_junction[k]] == c.getFrom().getToNode().getID()
        if c.getTLSID():
            assert net.tls_ids[net.link_tls[k]] == c.getTLSID()
            assert net.link_tls_index[k] == c.getTLLinkIndex()
        else:
            assert net.link_tls[k] == -1
            assert net.link_tls_index[k] == -1
        assert net.link_major[k] == (c.getState() in "MO")


@pytest.mark.parametrize("path", [GRID_NET, BOLOGNA_NET], ids=lambda p: p.name)
def test_link_lengths_and_speeds_are_sumo_internal_lanes(path, sumo):
    _, net, ref = sumo(path)
    split_dirs = []
    for c in _normal_connections(ref):
        k = _link_of(net, c)
        via = ref.getLane(c.getViaLaneID())
        length, speed = via.getLength(), via.getSpeed()
        # a left turn may run through a second internal lane (after the internal junction where it waits)
        nxt = [x for x in via.getOutgoing() if x.getViaLaneID()]
        if nxt:
            second = ref.getLane(nxt[0].getViaLaneID())
            length += second.getLength()
            speed = min(speed, second.getSpeed())
            split_dirs.append(c.getDirection())
        assert net.link_length[k] == pytest.approx(length, abs=1e-9)
        assert net.link_speed[k] == pytest.approx(speed, abs=1e-9)
    if path == GRID_NET:  # left turns wait at an internal junction: 4 per inner crossing, 1 per border T
        assert split_dirs == ["l"] * (64 * 4 + 32)
        assert net.link_length.min() > 1.0


@pytest.mark.parametrize("path", [GRID_NET, BOLOGNA_NET], ids=lambda p: p.name)
def test_foes_are_sumo_request_bits(path, sumo):
    """Link a yields to link b exactly when SUMO's <request response> of a has b's bit (sumolib ``forbids``)."""
    _, net, ref = sumo(path)
    by_node: dict[str, list] = {}
    for c in _normal_connections(ref):
        by_node.setdefault(c.getFrom().getToNode().getID(), []).append(c)
    pairs = 0
    for node_id, conns in by_node.items():
        node = ref.getNode(node_id)
        for ca in conns:
            a = _link_of(net, ca)
            ours = set(net.link_foes[net.link_foe_offsets[a] : net.link_foe_offsets[a + 1]].tolist())
            theirs = {_link_of(net, cb) for cb in conns if cb is not ca and node.forbids(cb, ca)}
            assert ours == theirs, (node_id, ca)
            pairs += len(theirs)
    assert pairs == len(net.link_foes) > 0
    # links only yield to links of their own junction
    owner = np.repeat(np.arange(net.n_links), np.diff(net.link_foe_offsets))
    np.testing.assert_array_equal(net.link_junction[owner], net.link_junction[net.link_foes])


@pytest.mark.parametrize("path", [GRID_NET, BOLOGNA_NET], ids=lambda p: p.name)
def test_signal_programmes_are_the_ones_sumo_runs(path, sumo):
    _, net, ref = sumo(path)
    tls = {t.getID(): t for t in ref.getTrafficLights()}
    assert set(net.tls_ids) == set(tls)
    for i, tid in enumerate(net.tls_ids):
        programs = tls[tid].getPrograms()
        prog = programs[list(programs)[-1]]
        phases = prog.getPhases()
        p0, p1 = net.tls_phase_offsets[i], net.tls_phase_offsets[i + 1]
        assert p1 - p0 == len(phases)
        assert net.tls_offset[i] == float(prog.getOffset())
        assert net.tls_actuated[i] == (prog.getType() == "actuated")
        for k, ph in enumerate(phases):
            j = p0 + k
            state = (
                net.phase_state[net.phase_state_offsets[j] : net.phase_state_offsets[j + 1]]
                .tobytes()
                .decode()
            )
            assert state == ph.state
            assert net.phase_duration[j] == float(ph.duration)
            assert net.phase_min[j] == (float(ph.minDur) if ph.minDur >= 0 else float(ph.duration))
            assert net.phase_max[j] == (float(ph.maxDur) if ph.maxDur >= 0 else float(ph.duration))


def test_csr_arrays_agree_with_a_numpy_reference(sumo):
    _, net, _ = sumo(GRID_NET)
    for lane in range(net.n_lanes):
        got = net.lane_links[net.lane_link_offsets[lane] : net.lane_link_offsets[lane + 1]]
        np.testing.assert_array_equal(got, np.flatnonzero(net.link_from_lane == lane))
    for e in range(net.n_edges):
        lanes = np.arange(net.edge_lane_offsets[e], net.edge_lane_offsets[e + 1])
        np.testing.assert_array_equal(net.lane_edge[lanes], e)
        np.testing.assert_array_equal(net.lane_index[lanes], np.arange(len(lanes)))
    assert net.lane_shape_offsets[-1] == len(net.lane_shape_xy)
    assert net.phase_state_offsets[-1] == len(net.phase_state)
    assert net.tls_phase_offsets[-1] == len(net.phase_duration)
    # dtypes of the contract
    want = {
        "lane_edge": np.int32, "lane_index": np.int32, "lane_length": np.float64, "lane_speed": np.float64,
        "lane_allow_passenger": np.uint8, "lane_shape_offsets": np.int64, "lane_shape_xy": np.float64,
        "edge_lane_offsets": np.int64, "edge_length": np.float64, "link_from_lane": np.int32,
        "link_to_lane": np.int32, "link_length": np.float64, "link_speed": np.float64, "link_dir": np.uint8,
        "link_junction": np.int32, "link_tls": np.int32, "link_tls_index": np.int32, "link_major": np.uint8,
        "link_foe_offsets": np.int64, "link_foes": np.int32, "lane_link_offsets": np.int64, "lane_links": np.int32,
        "tls_offset": np.float64, "tls_phase_offsets": np.int64, "phase_duration": np.float64,
        "phase_min": np.float64, "phase_max": np.float64, "phase_state_offsets": np.int64, "phase_state": np.uint8,
        "tls_actuated": np.uint8,
    }  # fmt: skip
    arrays = net.arrays()
    assert set(arrays) == set(want)
    for name, dtype in want.items():
        assert arrays[name].dtype == dtype, name
        assert arrays[name].flags.c_contiguous, name
        assert not arrays[name].flags.writeable, name
    assert net.lane_shape_xy.shape[1] == 2


def test_edge_graph_matches_scipy_dijkstra(sumo):
    """Path lengths of the edge graph's A* equal scipy's Dijkstra on the same turn arcs, and route_time agrees."""
    _, net, _ = sumo(BOLOGNA_NET)
    g = net.edge_graph()
    src, dst, cost = net.turn_costs()
    t = net.edge_travel_time()
    # the graph's arcs are exactly the allowed turns, weighted by link time + time of the edge entered
    ok = net.lane_allow_passenger.astype(bool)
    pairs = {
        (int(a), int(b))
        for a, b, la, lb in zip(
            net.link_from_edge, net.link_to_edge, net.link_from_lane, net.link_to_lane, strict=True
        )
        if ok[la] and ok[lb]
    }
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == pairs
    np.testing.assert_allclose(np.asarray(g.weight), cost + t[dst])
    m = sp.csr_matrix((cost + t[dst], (src, dst)), shape=(net.n_edges, net.n_edges))
    ref = dijkstra(m, directed=True)
    rng = np.random.default_rng(3)
    reach = 0
    for a, b in rng.integers(0, net.n_edges, size=(300, 2)):
        path = g.shortest_path(int(a), int(b), heuristic_scale=g.max_heuristic_scale)
        if math.isinf(ref[a, b]):
            assert len(path.nodes) == 0
            continue
        reach += 1
        assert path.length == pytest.approx(ref[a, b], rel=1e-12, abs=1e-9)
        assert net.route_time(path.nodes) == pytest.approx(ref[a, b] + t[a], rel=1e-12)
    assert reach > 100
    # turn cost: link time, + 1.5 s on minor links (duarouter's --weights.minor-penalty)
    k = int(np.flatnonzero(net.link_state == ord("m"))[0])
    a, b = int(net.link_from_edge[k]), int(net.link_to_edge[k])
    same = [
        j for j in range(net.n_links) if net.link_from_edge[j] == a and net.link_to_edge[j] == b
    ]  # all lanes of that turn
    expect = min(
        net.link_length[j] / net.link_speed[j] + (1.5 if chr(net.link_state[j]) in "m=sw" else 0)
        for j in same
    )
    assert net.route_time([a, b]) == pytest.approx(t[a] + expect + t[b])
    # a vehicle class that may not use an edge finds no arc into it
    bus_only = np.flatnonzero(net.edge_allows("bus") & ~net.edge_allows("passenger"))
    assert len(bus_only)
    assert not np.isin(np.asarray(g.dst), bus_only).any()
    assert np.isin(np.asarray(net.edge_graph(vclass="bus").dst), bus_only).any()


def test_bundle_is_enough_to_compile(tmp_path):
    """A City bundle (no source file) compiles to the same arrays as the SUMO file."""
    city = City()
    city.add_file(GRID_NET)
    direct = compile_network(city.roads)
    back = City.load(city.save(tmp_path / "bundle"))
    again = compile_network(back.roads)
    for name, arr in direct.arrays().items():
        np.testing.assert_array_equal(again.arrays()[name], arr, err_msg=name)
    assert again.edge_ids == direct.edge_ids
    assert again.tls_ids == direct.tls_ids


# -- OSM network: derived right of way ---------------------------------------------------------------------------------
def test_osm_links_geometry_and_signals(oakland):
    roads, net = oakland
    assert net.n_links == len(roads.connections) > 0
    ends = net.lane_shape_xy[net.lane_shape_offsets[1:] - 1]
    starts = net.lane_shape_xy[net.lane_shape_offsets[:-1]]
    gap = np.hypot(*(starts[net.link_to_lane] - ends[net.link_from_lane]).T)
    np.testing.assert_allclose(net.link_length, np.maximum(gap, 0.1))
    # speeds: never above either lane; turns limited by sqrt(5.5 m/s² * r)
    lim = np.minimum(net.lane_speed[net.link_from_lane], net.lane_speed[net.link_to_lane])
    assert (net.link_speed <= lim + 1e-12).all()
    left = net.link_dir == ord("l")
    assert (net.link_speed[left] <= math.sqrt(5.5 * 15.6) + 1e-9).all()
    straight = net.link_dir == ord("s")
    np.testing.assert_array_equal(net.link_speed[straight], lim[straight])
    # every signalled junction has a programme covering all its links
    assert net.n_tls == roads.traffic_lights["id"].nunique() == 4
    for t in range(net.n_tls):
        idx = net.link_tls_index[net.link_tls == t]
        width = np.diff(net.phase_state_offsets[net.tls_phase_offsets[t] : net.tls_phase_offsets[t + 1] + 1])
        assert (width == idx.max() + 1).all()


def test_osm_right_of_way_is_consistent(oakland):
    roads, net = oakland
    yields = {
        (a, int(b))
        for a in range(net.n_links)
        for b in net.link_foes[net.link_foe_offsets[a] : net.link_foe_offsets[a + 1]]
    }
    assert yields
    for a, b in yields:
        assert a != b
        assert (b, a) not in yields  # never both ways: no deadlock by construction
        assert net.link_junction[a] == net.link_junction[b]
        assert net.link_from_lane[a] != net.link_from_lane[b]
    major = {a for a in range(net.n_links) if net.link_foe_offsets[a] == net.link_foe_offsets[a + 1]}
    np.testing.assert_array_equal(net.link_major, [a in major for a in range(net.n_links)])
    # dead ends (one road) have no conflicts; at a priority junction the main road never yields to a side road
    jtype = roads.junctions["type"].to_numpy()
    dead = np.isin(net.link_junction, np.flatnonzero(jtype == "dead_end"))
    assert dead.any()
    assert (net.link_major[dead] == 1).all()
    prio = roads.edges["priority"].to_numpy()
    for a, b in yields:
        if jtype[net.link_junction[a]] == "priority":
            assert prio[net.link_from_edge[a]] <= prio[net.link_from_edge[b]] or chr(net.link_dir[a]) == "t"


def _cross(priorities=(5, 5, 5, 5), lanes=1, u_turns=False):
    """A four-arm crossing (arms E, N, W, S at bearings 0, 90, 180, 270 degrees) as derive_foes arguments.

    Every approach connects to the other three arms (right, straight, left) and optionally back (U-turn).
    """
    arms = [0.0, 90.0, 180.0, 270.0]
    links = []
    for i in range(4):
        for j, d in ((i + 3, "l"), (i + 2, "s"), (i + 1, "r"), (i, "t")):
            j %= 4
            if d == "t" and not u_turns:
                continue
            links.append((i, j, d))
    args = {
        "theta_in": [math.radians(arms[i]) for i, _, _ in links],
        "theta_out": [math.radians(arms[j]) for _, j, _ in links],
        "from_edge": [i for i, _, _ in links],
        "from_lane": [0] * len(links),
        "to_edge": [10 + j for _, j, _ in links],
        "to_lane": [0] * len(links),
        "n_in": [lanes] * len(links),
        "n_out": [lanes] * len(links),
        "direction": [d for _, _, d in links],
        "priority": [priorities[i] for i, _, _ in links],
    }
    return links, args


def _yields(links, result):
    return {(links[a], links[b]) for a, r in enumerate(result) for b in r}


def test_derive_foes_right_before_left_crossing():
    links, args = _cross()
    got = _yields(links, derive_foes(**args, use_priority=False))
    # the straight from the south (arm 3) yields to the straight from the east (its right), not the west (its left)
    assert ((3, 1, "s"), (0, 2, "s")) in got
    assert ((2, 0, "s"), (3, 1, "s")) in got
    assert ((3, 1, "s"), (2, 0, "s")) not in got
    # left turns yield to the oncoming straight and right turn; right turns conflict only where they merge
    assert ((3, 2, "l"), (1, 3, "s")) in got
    assert ((3, 2, "l"), (1, 2, "r")) in got  # both enter the west arm
    right = (3, 0, "r")
    partners = {b for a, b in got if a == right} | {a for a, b in got if b == right}
    assert partners == {(2, 0, "s"), (1, 0, "l")}  # only the streams merging into the east arm
    # opposite straights never conflict
    assert ((3, 1, "s"), (1, 3, "s")) not in got
    assert ((1, 3, "s"), (3, 1, "s")) not in got
    # each conflicting pair is decided one way only
    assert not {(b, a) for a, b in got} & got


def test_derive_foes_priority_road_and_u_turns():
    links, args = _cross(priorities=(9, 3, 9, 3), u_turns=True)  # main road east-west
    got = _yields(links, derive_foes(**args, use_priority=True))
    # the side road's straight yields to both main straights
    assert ((3, 1, "s"), (0, 2, "s")) in got
    assert ((3, 1, "s"), (2, 0, "s")) in got
    # a main-road left turn yields to the oncoming main straight but not to side-road traffic
    assert ((0, 3, "l"), (2, 0, "s")) in got
    assert ((1, 3, "s"), (0, 3, "l")) in got
    # U-turns conflict with every link from another approach and always yield
    u = (2, 2, "t")
    assert {b for a, b in got if a == u and b[2] != "t"} == {x for x in links if x[0] != 2 and x[2] != "t"}
    assert not any(b == u for a, b in got if a[2] != "t")
    assert ((1, 1, "t"), u) in got  # of two U-turns the one from the side road yields
    assert main_road([0, 1, 2, 3], [9, 3, 9, 3], [0.0, math.pi / 2, math.pi, 3 * math.pi / 2]) == {
        0: 1,
        1: 0,
        2: 1,
        3: 0,
    }
    # a single top road takes its most opposite approach into the main road, whatever its priority
    assert main_road([0, 1, 2], [9, 3, 4], [0.0, math.pi / 2, math.pi * 1.05]) == {0: 1, 1: 0, 2: 1}


# -- bad input -------------------------------------------------------------------------------------------------------
def _copy(roads: RoadNetwork) -> RoadNetwork:
    other = copy.copy(roads)
    for name in ("junctions", "edges", "lanes", "connections", "traffic_lights"):
        setattr(other, name, getattr(roads, name).copy(deep=True))
    return other


def test_signal_programme_shorter_than_its_links(sumo):
    roads, _, _ = sumo(GRID_NET)
    bad = _copy(roads)
    tl = bad.traffic_lights
    row = int(np.flatnonzero(tl["id"] == "B1")[-1])
    tl.at[row, "phases"] = [p._replace(state=p.state[:-3]) for p in tl.at[row, "phases"]]
    with pytest.raises(InputError, match="13 characters but the light controls 16 links") as info:
        compile_network(bad)
    assert info.value.source == str(GRID_NET)
    assert info.value.element == "tlLogic B1"


def test_signal_programme_with_bad_state_or_uneven_phases(sumo):
    roads, _, _ = sumo(GRID_NET)
    bad = _copy(roads)
    tl = bad.traffic_lights
    row = int(np.flatnonzero(tl["id"] == "C3")[-1])
    phases = list(tl.at[row, "phases"])
    phases[1] = phases[1]._replace(state="X" + phases[1].state[1:])
    tl.at[row, "phases"] = phases
    with pytest.raises(InputError, match="'X' is not a SUMO signal state") as info:
        compile_network(bad)
    assert info.value.element == "tlLogic C3"
    phases[1] = phases[1]._replace(state=phases[0].state + "r")
    tl.at[row, "phases"] = phases
    with pytest.raises(InputError, match="different lengths"):
        compile_network(bad)


def test_connection_to_a_missing_lane(sumo):
    roads, _, _ = sumo(BOLOGNA_NET)
    bad = _copy(roads)
    bad.connections.loc[5, "to_lane"] = 7
    with pytest.raises(InputError, match="names to_lane 7 but edge") as info:
        compile_network(bad)
    assert info.value.element == "connection 5"
