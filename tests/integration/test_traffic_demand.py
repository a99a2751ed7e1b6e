"""Traffic network and demand on real files: grid10 (SUMO routes made by duarouter from its trips), Bad Hersfeld as a
SUMO network and as OSM, Bologna's bus lanes; checked against independent readings (xml.etree, sumolib) and
against duarouter's own routes."""

from __future__ import annotations

import copy
import gzip
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.city.frame import Frame
from twin.city.osm import load_osm_roads
from twin.city.sumo import load_sumo_net
from twin.errors import InputError
from twin.sim.demand import (
    VCLASS_DEFAULTS,
    Demand,
    Router,
    VehicleType,
    od_matrix,
    random_trips,
    read_sumo_routes,
    read_sumo_trips,
)
from twin.sim.traffic_net import TrafficNetwork, compile_network

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
GRID_NET = DATA / "traffic" / "grid10.net.xml"
GRID_ROU = DATA / "traffic" / "grid10.rou.xml"
GRID_TRIPS = DATA / "traffic" / "grid10.trips.xml"
HERSFELD_NET = DATA / "roads" / "BadHersfeld_osm_edited.net.xml.gz"
HERSFELD_OSM = DATA / "roads" / "BadHersfeld_osm_bbox.osm.xml.gz"
BOLOGNA_NET = DATA / "roads" / "bologna_acosta_buslanes.net.xml"


@pytest.fixture(scope="module")
def grid() -> TrafficNetwork:
    return compile_network(load_sumo_net(GRID_NET, frame=Frame()))


@pytest.fixture(scope="module")
def grid_routes(grid) -> Demand:
    return read_sumo_routes(GRID_ROU, grid)


@pytest.fixture(scope="module")
def hersfeld():
    import sumolib

    roads = load_sumo_net(HERSFELD_NET, frame=Frame())
    ref = sumolib.net.readNet(str(HERSFELD_NET), withInternal=False, withPrograms=True, withConnections=True)
    return roads, compile_network(roads), ref


def _assert_connected(net: TrafficNetwork, demand: Demand, vclass: str = "passenger") -> None:
    ok = net.lane_allows(vclass)
    use = ok[net.link_from_lane] & ok[net.link_to_lane]
    pairs = set(zip(net.link_from_edge[use].tolist(), net.link_to_edge[use].tolist(), strict=True))
    for i in range(len(demand)):
        r = demand.route(i).tolist()
        assert all((a, b) in pairs for a, b in zip(r[:-1], r[1:], strict=True)), demand.ids[i]


# -- grid10: routes and trips -----------------------------------------------------------------------------------------
def test_grid10_routes_are_the_file(grid, grid_routes):
    d = grid_routes
    ref = ET.parse(GRID_ROU).getroot()
    vehicles = list(ref.iter("vehicle"))
    assert len(d) == len(vehicles) == 10_000
    departs = np.array([float(v.get("depart")) for v in vehicles])
    order = np.argsort(departs, kind="stable")
    assert list(d.ids) == [vehicles[k].get("id") for k in order]
    np.testing.assert_array_equal(d.depart_s, departs[order])
    assert (np.diff(d.depart_s) >= 0).all()
    for i, k in enumerate(order):
        assert d.route_ids(i, grid) == vehicles[k].find("route").get("edges").split()
    assert d.route_edges.dtype == np.int32
    assert (
        d.route_offsets[-1]
        == len(d.route_edges)
        == sum(len(v.find("route").get("edges").split()) for v in vehicles)
    )
    # no vType in the file: SUMO's default passenger car; departLane "first", departSpeed 0, departPos base
    assert d.vtypes.ids == ("DEFAULT_VEHTYPE",)
    t = d.vtypes[0]
    assert (t.length, t.min_gap, t.accel, t.decel, t.emergency_decel, t.tau) == (5.0, 2.5, 2.6, 4.5, 9.0, 1.0)
    assert t.max_speed == pytest.approx(55.56, abs=0.01)
    assert (t.speed_factor, t.speed_dev, t.delta) == (1.0, 0.1, 4.0)
    assert (d.type == 0).all()
    assert (d.depart_lane == 0).all()
    assert (d.depart_speed == 0).all()
    assert (d.depart_pos == 0).all()
    assert (d.priority == 0).all()
    # speed factors: normc(1, 0.1, 0.2, 2), reproducible from the seed
    assert d.speed_factor.mean() == pytest.approx(1.0, abs=0.005)
    assert d.speed_factor.std() == pytest.approx(0.1, abs=0.005)
    again = read_sumo_routes(GRID_ROU, grid, seed=0)
    np.testing.assert_array_equal(again.speed_factor, d.speed_factor)
    assert not np.array_equal(read_sumo_routes(GRID_ROU, grid, seed=1).speed_factor, d.speed_factor)
    args = d.arrays()
    assert set(args) == {
        "depart_s",
        "type",
        "route_offsets",
        "route_edges",
        "depart_lane",
        "depart_speed",
        "priority",
    }
    assert set(d.vtypes.arrays()) == {
        "length", "min_gap", "accel", "decel", "emergency_decel", "tau", "max_speed", "speed_factor", "delta"
    }  # fmt: skip


def test_grid10_trips_routed_like_duarouter(grid, grid_routes):
    t0 = time.perf_counter()
    trips = read_sumo_trips(GRID_TRIPS, grid)
    seconds = time.perf_counter() - t0
    assert len(trips) == 10_000
    assert trips.ids == grid_routes.ids
    np.testing.assert_array_equal(trips.depart_s, grid_routes.depart_s)
    _assert_connected(grid, trips)
    ref = ET.parse(GRID_TRIPS).getroot()
    ends = {t.get("id"): (t.get("from"), t.get("to")) for t in ref.iter("trip")}
    router = Router(grid)
    ours = np.array([router.time(trips.route(i)) for i in range(len(trips))])
    theirs = np.array([router.time(grid_routes.route(i)) for i in range(len(trips))])
    for i in range(0, len(trips), 97):
        assert (trips.route_ids(i, grid)[0], trips.route_ids(i, grid)[-1]) == ends[trips.ids[i]]
    assert np.isfinite(theirs).all()
    assert (ours <= theirs + 1e-9).all()  # A* is optimal for the free-flow times it minimises
    equal = float(np.mean(np.abs(ours - theirs) < 1e-6))
    same = float(np.mean([np.array_equal(trips.route(i), grid_routes.route(i)) for i in range(len(trips))]))
    print(  # noqa: T201 - shown with -s
        f"grid10: {len(trips)} trips routed in {seconds:.2f} s; free-flow time equal to duarouter's for "
        f"{100 * equal:.2f} %, identical routes {100 * same:.1f} %, largest gain {np.max(theirs - ours):.2f} s"
    )
    assert equal >= 0.99
    assert seconds < 10.0


def test_random_trips_are_reproducible(grid):
    a = random_trips(grid, 500, (0.0, 1800.0), 42, min_distance_m=400.0)
    b = random_trips(grid, 500, (0.0, 1800.0), np.random.default_rng(42), min_distance_m=400.0)
    c = random_trips(grid, 500, (0.0, 1800.0), 43, min_distance_m=400.0)
    for name in ("depart_s", "route_offsets", "route_edges", "depart_lane", "speed_factor"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(a.route_edges, c.route_edges)
    assert len(a) == 500
    np.testing.assert_allclose(a.depart_s, np.arange(500) * 3.6)
    _assert_connected(grid, a)
    start = grid.junction_xy[grid.edge_from_junction]
    end = grid.junction_xy[grid.edge_to_junction]
    firsts = a.route_edges[a.route_offsets[:-1]]
    lasts = a.route_edges[a.route_offsets[1:] - 1]
    assert (np.hypot(*(end[lasts] - start[firsts]).T) >= 400.0).all()
    assert len(set(zip(firsts.tolist(), lasts.tolist(), strict=True))) > 450  # really random
    # routes are the fastest ones
    router = Router(grid)
    for i in range(0, 500, 50):
        best = router.route(int(firsts[i]), int(lasts[i]))
        assert router.time(a.route(i)) == pytest.approx(router.time(best))


def test_random_trips_follow_a_depart_profile(grid):
    # a day in 4 bins of 6 h: nothing at night, a morning peak 3x the afternoon's, an empty last quarter
    profile = [0.0, 3.0, 1.0, 0.0]
    a = random_trips(grid, 400, (0.0, 86400.0), 7, min_distance_m=400.0, depart_profile=profile)
    counts = np.histogram(a.depart_s, bins=[0, 21600, 43200, 64800, 86400])[0]
    np.testing.assert_array_equal(counts, [0, 300, 100, 0])
    assert (np.diff(a.depart_s) > 0).all()
    # within a bin the departures are equally spaced: 300 over 6 h, then 100 over 6 h
    np.testing.assert_allclose(a.depart_s[:300], 21600.0 + np.arange(300) * 72.0)
    np.testing.assert_allclose(a.depart_s[300:], 43200.0 + np.arange(100) * 216.0)
    # equal weights are the plain window
    b = random_trips(grid, 50, (0.0, 1800.0), 7, depart_profile=[2.0, 2.0, 2.0])
    np.testing.assert_allclose(b.depart_s, np.arange(50) * 36.0)
    for bad in ([], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(InputError, match="depart_profile"):
            random_trips(grid, 10, (0.0, 60.0), 0, depart_profile=bad)
    with pytest.raises(InputError, match="depart_profile needs depart_s as a"):
        random_trips(grid, 3, [1.0, 2.0, 3.0], 0, depart_profile=[1.0])


def test_flows_types_and_trips_follow_sumo(tmp_path, grid):
    path = tmp_path / "mixed.rou.xml"
    path.write_text(
        """<routes>
    <vType id="bus" vClass="bus" length="10"/>
    <vType id="amb" vClass="emergency" speedFactor="normc(1.2,0,0.2,2)"/>
    <vType id="slow" decel="10" maxSpeed="10" tau="1.5" minGap="3" speedFactor="0.8" speedDev="0"/>
    <route id="r0" edges="A0A1 A1A2 A2A3"/>
    <vehicle id="v0" depart="5" route="r0" type="bus" departLane="1" departSpeed="max" departPos="-10"/>
    <vehicle id="v1" depart="1" type="amb" departLane="best" departSpeed="3.5"><route edges="B0B1 B1B2"/></vehicle>
    <trip id="t0" depart="2" from="A0A1" to="C2C3" via="B2C2" type="slow"/>
    <flow id="fn" begin="0" end="100" number="4" route="r0"/>
    <flow id="fp" begin="10" end="40" period="10" route="r0"/>
    <flow id="fv" begin="0" end="60" vehsPerHour="120" from="A0A1" to="A2A3"/>
    <flow id="fq" begin="0" end="1000" probability="0.1" route="r0"/>
</routes>"""
    )
    d = read_sumo_routes(path, grid, seed=5)
    ids = list(d.ids)
    assert {x for x in ids if x.startswith("fn.")} == {"fn.0", "fn.1", "fn.2", "fn.3"}
    assert [t for x, t in zip(ids, d.depart_s, strict=True) if x.startswith("fn.")] == [0, 25, 50, 75]
    assert [t for x, t in zip(ids, d.depart_s, strict=True) if x.startswith("fp.")] == [10, 20, 30]
    assert [t for x, t in zip(ids, d.depart_s, strict=True) if x.startswith("fv.")] == [0, 30]
    n_prob = sum(x.startswith("fq.") for x in ids)
    assert 60 < n_prob < 140  # Bernoulli(0.1) per second over 1000 s
    assert (np.diff(d.depart_s) >= 0).all()
    assert ids.index("v1") < ids.index("t0") < ids.index("v0")
    types = {t: d.vtypes[k] for k, t in enumerate(d.vtypes.ids)}
    bus = types["bus"]
    expect = VCLASS_DEFAULTS["bus"]
    assert (bus.length, bus.accel, bus.decel, bus.emergency_decel, bus.max_speed) == (
        10.0, expect.accel, expect.decel, expect.emergency_decel, expect.max_speed
    )  # fmt: skip
    slow = types["slow"]
    assert (slow.decel, slow.emergency_decel, slow.max_speed, slow.tau, slow.min_gap) == (
        10.0,
        10.0,
        10.0,
        1.5,
        3.0,
    )
    v0, v1, t0 = ids.index("v0"), ids.index("v1"), ids.index("t0")
    assert d.vtypes.ids[d.type[v0]] == "bus"
    assert (d.depart_lane[v0], d.depart_speed[v0], d.depart_pos[v0]) == (1, -1.0, grid.edge_length[0] - 10.0)
    assert (d.depart_lane[v1], d.depart_speed[v1], d.priority[v1], d.speed_factor[v1]) == (-1, 3.5, 1, 1.2)
    assert d.speed_factor[t0] == 0.8
    assert d.priority.sum() == 1
    route = d.route_ids(t0, grid)
    assert route[0] == "A0A1"
    assert route[-1] == "C2C3"
    assert "B2C2" in route
    assert d.route_ids(ids.index("fv.1"), grid) == ["A0A1", "A1A2", "A2A3"]
    _assert_connected(grid, d)


def test_od_matrix_by_junction_and_by_zone(tmp_path, grid):
    table = pd.DataFrame(
        {"origin": ["A0", "J9", "C3"], "destination": ["J9", "A0", "C3"], "count": [10, 2.5, 3],
         "begin_s": [0.0, 100.0, 50.0], "end_s": [600.0, 200.0, 50.0]}
    )  # fmt: skip
    csv = tmp_path / "od.csv"
    table.to_csv(csv, index=False)
    pq = tmp_path / "od.parquet"
    table.to_parquet(pq)
    a = od_matrix(csv, grid, rng=3)
    b = od_matrix(pq, grid, rng=3)
    c = od_matrix(table, grid, rng=3)
    for name in ("depart_s", "route_edges", "route_offsets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(getattr(a, name), getattr(c, name))
    rows = [x.rsplit(".", 1)[0] for x in a.ids]
    assert rows.count("A0_J9") == 10
    assert rows.count("J9_A0") in (2, 3)
    assert rows.count("C3_C3") == 3
    assert (np.diff(a.depart_s) >= 0).all()
    _assert_connected(grid, a)
    jid = np.array(grid.junction_ids)
    for i, row in enumerate(rows):
        o, dst = row.split("_")
        r = a.route(i)
        assert jid[grid.edge_from_junction[r[0]]] == o
        assert jid[grid.edge_to_junction[r[-1]]] == dst
        lo, hi = {"A0_J9": (0, 600), "J9_A0": (100, 200), "C3_C3": (50, 50)}[row]
        assert lo <= a.depart_s[i] <= hi
    # zones as edge lists
    zones = {"west": ["A3A4", "A4A5"], "east": ["J5J6", "J6J7"]}
    z = od_matrix(pd.DataFrame({"origin": ["west"], "destination": ["east"], "count": [20], "begin_s": [0],
                                "end_s": [60]}), grid, zones=zones, rng=1)  # fmt: skip
    assert len(z) == 20
    assert {grid.edge_ids[z.route(i)[0]] for i in range(20)} <= set(zones["west"])
    assert {grid.edge_ids[z.route(i)[-1]] for i in range(20)} <= set(zones["east"])


# -- bad input --------------------------------------------------------------------------------------------------------
BAD_ROUTES = {
    "unknown_edge": ('<vehicle id="x1" depart="0"><route edges="A0A1 NOPE"/></vehicle>', "edge 'NOPE' is not in the network", "vehicle x1"),
    "not_connected": ('<vehicle id="x2" depart="0"><route edges="A0A1 C5C6"/></vehicle>', "no connection leads from edge 'A0A1' to 'C5C6'", "vehicle x2"),
    "too_long": ('<vType id="long" length="250"/><vehicle id="x3" depart="0" type="long"><route edges="A0A1"/></vehicle>', "250 m long but the lanes of its first edge 'A0A1' are at most", "vehicle x3"),
    "class_not_allowed": ('<vType id="ice" vClass="rail_fast"/><vehicle id="x4" depart="0" type="ice"><route edges="A0A1 A1A2"/></vehicle>', "does not allow vClass rail_fast", "vehicle x4"),
    "unknown_type": ('<vehicle id="x5" depart="0" type="ghost"><route edges="A0A1"/></vehicle>', "type 'ghost' is not a defined <vType>", "vehicle x5"),
    "unknown_route": ('<vehicle id="x6" depart="0" route="r9"/>', "route 'r9' is not defined", "vehicle x6"),
    "bad_depart": ('<vehicle id="x7" depart="triggered"><route edges="A0A1"/></vehicle>', "depart='triggered' is not supported", "vehicle x7"),
    "bad_lane": ('<vehicle id="x8" depart="0" departLane="2"><route edges="A0A1"/></vehicle>', "departLane=2 is not a lane of edge 'A0A1'", "vehicle x8"),
    "flow_without_rate": ('<flow id="f1" begin="0" end="10" route="r0"/>', "needs exactly one of number, period", "flow f1"),
    "bad_vclass": ('<vType id="hover" vClass="hovercraft"/>', "vClass 'hovercraft' is not a SUMO vehicle class", "vType hover"),
    "bad_number": ('<vType id="t" accel="fast"/>', "accel='fast' is not a number", "vType t"),
    "duplicate_id": ('<vehicle id="x9" depart="0" route="r0"/><vehicle id="x9" depart="1" route="r0"/>', "vehicle id 'x9' is used twice", "vehicle x9"),
    "trip_unknown_edge": ('<trip id="t1" depart="0" from="A0A1" to="Z9Z9"/>', "edge 'Z9Z9' is not in the network", "trip t1"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_ROUTES))
def test_bad_routes(tmp_path, grid, case):
    body, match, element = BAD_ROUTES[case]
    path = tmp_path / f"{case}.rou.xml"
    path.write_text(f'<routes><route id="r0" edges="A0A1"/>{body}</routes>')
    with pytest.raises(InputError, match=match) as info:
        read_sumo_routes(path, grid)
    assert info.value.source == str(path)
    assert info.value.element.startswith(element)


def test_bad_route_files(tmp_path, grid):
    with pytest.raises(InputError, match="does not exist"):
        read_sumo_routes(tmp_path / "nope.rou.xml", grid)
    p = tmp_path / "broken.rou.xml"
    p.write_text("<routes><vehicle id='a'")
    with pytest.raises(InputError, match="not valid"):
        read_sumo_routes(p, grid)
    gz = tmp_path / "ok.rou.xml.gz"
    gz.write_bytes(
        gzip.compress(b'<routes><vehicle id="a" depart="3"><route edges="A0A1 A1A2"/></vehicle></routes>')
    )
    d = read_sumo_routes(gz, grid)
    assert d.route_ids(0, grid) == ["A0A1", "A1A2"]
    p.write_text("<net/>")
    with pytest.raises(InputError, match="expected a <routes> root"):
        read_sumo_routes(p, grid)


def test_passenger_route_over_a_bus_lane_is_refused(tmp_path):
    net = compile_network(load_sumo_net(BOLOGNA_NET, frame=Frame()))
    bus_only = [
        net.edge_ids[e] for e in np.flatnonzero(net.edge_allows("bus") & ~net.edge_allows("passenger"))
    ]
    p = tmp_path / "bus.rou.xml"
    p.write_text(f'<routes><vehicle id="car" depart="0"><route edges="{bus_only[0]}"/></vehicle></routes>')
    with pytest.raises(InputError, match=f"edge '{bus_only[0]}' does not allow vClass passenger") as info:
        read_sumo_routes(p, net)
    assert info.value.element == "vehicle car"
    p.write_text(
        f'<routes><vType id="b" vClass="bus"/><vehicle id="bus" type="b" depart="0"><route edges="{bus_only[0]}"/>'
        "</vehicle></routes>"
    )
    assert len(read_sumo_routes(p, net)) == 1


def test_bad_od_tables(tmp_path, grid):
    def od(**cols):
        base = {"origin": ["A0"], "destination": ["J9"], "count": [1], "begin_s": [0.0], "end_s": [10.0]}
        base.update(cols)
        return pd.DataFrame(base)

    with pytest.raises(InputError, match="junction 'Q7' is not known") as info:
        od_matrix(od(origin=["Q7"]), grid)
    assert info.value.element == "row 0"
    with pytest.raises(InputError, match="count must be a number >= 0"):
        od_matrix(od(count=[-2]), grid)
    with pytest.raises(InputError, match="begin_s <= end_s"):
        od_matrix(od(begin_s=[20.0]), grid)
    with pytest.raises(InputError, match="lacks columns"):
        od_matrix(od().drop(columns=["end_s"]), grid)
    with pytest.raises(InputError, match="names edge 'nope'"):
        od_matrix(od(origin=["z"], destination=["z"]), grid, zones={"z": ["nope"]})
    bad = tmp_path / "od.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match="cannot be read"):
        od_matrix(bad, grid)


# -- Bad Hersfeld: a real town as SUMO network and as OSM --------------------------------------------------------------
def test_hersfeld_sumo_counts_links_and_foes(hersfeld):
    roads, net, ref = hersfeld
    edges = ref.getEdges(withInternal=False)
    conns = [c for e in edges for cs in e.getOutgoing().values() for c in cs]
    assert net.n_lanes == sum(e.getLaneNumber() for e in edges)
    assert net.n_links == len(conns)
    assert net.n_tls == len([t for t in ref.getTrafficLights() if t.getPrograms()])
    # link lengths = the SUMO internal lanes (read independently here with xml.etree)
    lengths, nxt = {}, {}
    with gzip.open(HERSFELD_NET) as fh:
        for _, el in ET.iterparse(fh):
            if el.tag == "lane" and el.get("id", "").startswith(":"):
                lengths[el.get("id")] = float(el.get("length"))
            elif el.tag == "connection" and el.get("from", "").startswith(":") and el.get("via"):
                nxt[f"{el.get('from')}_{el.get('fromLane')}"] = el.get("via")
            if el.tag in ("edge", "junction", "connection"):
                el.clear()
    lane_row = net.lane_row
    index = {
        (int(a), int(b)): k for k, (a, b) in enumerate(zip(net.link_from_lane, net.link_to_lane, strict=True))
    }
    checked = 0
    for c in conns:
        k = index[(lane_row[c.getFromLane().getID()], lane_row[c.getToLane().getID()])]
        via = c.getViaLaneID()
        total = lengths[via] + (lengths[nxt[via]] if via in nxt else 0.0)
        assert net.link_length[k] == pytest.approx(total, abs=1e-9)
        checked += 1
    assert checked == net.n_links
    # foes = SUMO's request bits (sumolib's forbids) at junctions without pedestrian areas
    nodes = [n for n in ref.getNodes() if all(not x.startswith(":") for x in n._incLanes) and n._foes]
    by_node: dict[str, list] = {}
    for c in conns:
        by_node.setdefault(c.getFrom().getToNode().getID(), []).append(c)
    compared = 0
    for node in nodes[::5]:
        cs = by_node.get(node.getID(), [])
        for ca in cs:
            a = index[(lane_row[ca.getFromLane().getID()], lane_row[ca.getToLane().getID()])]
            ours = set(net.link_foes[net.link_foe_offsets[a] : net.link_foe_offsets[a + 1]].tolist())
            theirs = {
                index[(lane_row[cb.getFromLane().getID()], lane_row[cb.getToLane().getID()])]
                for cb in cs
                if cb is not ca and node.forbids(cb, ca)
            }
            assert ours == theirs, (node.getID(), ca)
            compared += 1
    assert compared > 1000
    # junctions with pedestrian crossings: every vehicle link still found its request
    assert (roads.connections["request_index"] >= 0).all()


def test_hersfeld_derived_right_of_way_agrees_with_sumo(hersfeld):
    """Right of way derived from geometry (as for OSM) reproduces most of SUMO's at unsignalised junctions."""
    roads, net, _ = hersfeld
    plain = copy.copy(roads)
    plain.junctions = roads.junctions.assign(response=[[] for _ in range(len(roads.junctions))])
    plain.connections = roads.connections.assign(state=None)
    derived = compile_network(plain)
    jtype = roads.junctions["type"].to_numpy()

    def pairs(n: TrafficNetwork, kind: str) -> set[tuple[int, int]]:
        owner = np.repeat(np.arange(n.n_links), np.diff(n.link_foe_offsets))
        keep = jtype[n.link_junction[owner]] == kind
        return set(zip(owner[keep].tolist(), n.link_foes[keep].tolist(), strict=True))

    for kind, floor in (("right_before_left", 0.9), ("priority", 0.8)):
        sumo_pairs, ours = pairs(net, kind), pairs(derived, kind)
        share = len(sumo_pairs & ours) / len(sumo_pairs)
        print(f"Bad Hersfeld {kind}: {100 * share:.1f} % of SUMO's {len(sumo_pairs)} yield relations derived")  # noqa: T201
        assert share >= floor
        assert len(ours) <= 1.1 * len(sumo_pairs)


def test_hersfeld_osm_compiles_and_routes(tmp_path):
    roads = load_osm_roads(HERSFELD_OSM, frame=Frame())
    net = compile_network(roads)
    assert net.n_links == len(roads.connections)
    assert net.n_tls == roads.traffic_lights["id"].nunique()
    assert (net.link_length >= 0.1).all()
    assert (net.link_speed > 0).all()
    amb = VehicleType.of_class("emergency", id="amb")
    trips = random_trips(net, 300, (0.0, 900.0), 11, min_distance_m=800.0, vtype=amb)
    assert (trips.priority == 1).all()
    _assert_connected(net, trips, "emergency")
    router = Router(net, vclass="emergency")
    times = np.array([router.time(trips.route(i)) for i in range(len(trips))])
    assert np.isfinite(times).all()
    # free-flow time is at least the straight-line distance at the top speed
    xy0 = net.junction_xy[net.edge_from_junction[trips.route_edges[trips.route_offsets[:-1]]]]
    xy1 = net.junction_xy[net.edge_to_junction[trips.route_edges[trips.route_offsets[1:] - 1]]]
    assert (times >= np.hypot(*(xy1 - xy0).T) / net.lane_speed.max() - 1e-9).all()
    # the same trips as a SUMO trip file (an emergency type) are routed the same way
    lines = ['<routes><vType id="amb" vClass="emergency"/>']
    for i in range(len(trips)):
        r = trips.route_ids(i, net)
        lines.append(
            f'<trip id="{trips.ids[i]}" type="amb" depart="{trips.depart_s[i]}" from="{r[0]}" to="{r[-1]}"/>'
        )
    path = tmp_path / "hersfeld.trips.xml"
    path.write_text("\n".join([*lines, "</routes>"]))
    back = read_sumo_trips(path, net)
    assert back.ids == trips.ids
    assert (back.priority == 1).all()
    assert back.vtypes[0] == amb
    for i in range(len(trips)):
        assert router.time(back.route(i)) == pytest.approx(times[i])
