"""A vehicle whose destination edge closes does not wait for it forever (SUMO-like): it is sent to the reachable open
edge nearest to its destination and arrives there (``destination_closed``); an emergency unit stops at the last open
edge before the incident and counts as arrived. Checked on grid10 against a scipy reference of "nearest reachable"."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from twin.city.frame import Frame
from twin.city.sumo import load_sumo_net
from twin.sim.demand import Demand, VehicleType, VehicleTypes, random_trips
from twin.sim.traffic import TrafficModel
from twin.sim.traffic_core import ARRIVED
from twin.sim.traffic_net import compile_network

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


@pytest.fixture(scope="module")
def network():
    return compile_network(load_sumo_net(DATA / "traffic" / "grid10.net.xml", frame=Frame()))


def reference_nearest(network, from_edge: int, to_edge: int, closed: set[int]) -> set[int]:
    """Edges reachable from ``from_edge`` over open edges (breadth-first search on the turn graph) whose end junction
    is nearest (straight line) to either end junction of ``to_edge``: all ties."""
    g = network.edge_graph()
    keep = ~np.isin(np.asarray(g.dst), list(closed))
    adj = csr_matrix(
        (np.ones(int(keep.sum())), (np.asarray(g.src)[keep], np.asarray(g.dst)[keep])),
        shape=(network.n_edges, network.n_edges),
    )
    reach = breadth_first_order(adj, from_edge, directed=True, return_predecessors=False)
    xy = network.junction_xy
    ends = xy[network.edge_to_junction[reach]]
    a, b = xy[network.edge_from_junction[to_edge]], xy[network.edge_to_junction[to_edge]]
    d = np.minimum(np.linalg.norm(ends - a, axis=1), np.linalg.norm(ends - b, axis=1))
    return {int(e) for e in reach[np.isclose(d, d.min(), atol=1e-6)]}


def test_trips_whose_destination_closes_arrive_at_the_nearest_reachable_edge(network) -> None:
    demand = random_trips(network, 200, (0.0, 200.0), 3, min_distance_m=600.0)
    last = np.array([demand.route(i)[-1] for i in range(len(demand))])
    first = np.array([demand.route(i)[0] for i in range(len(demand))])
    # the most common destination among trips that do not start there
    values, counts = np.unique(last[first != last], return_counts=True)
    dest = int(values[np.argmax(counts)])
    lost = np.flatnonzero((last == dest) & (first != dest))
    assert len(lost) >= 2
    # closed at 100 s: some of those trips are running then, some have not departed
    model = TrafficModel(network, demand, seed=3, record_fcd=False, closures=[(100.0, [dest], True)])
    model.run(2400, progress=False)
    s = model.summary()
    assert s["collisions"] == 0
    already_there = [
        i for i in lost if model.route_of(i)[-1] == dest
    ]  # on it (or entering it) at the closure
    assert s["destination_closed"] == len(lost) - len(already_there) > 0
    assert np.all(model.core.state[lost] == ARRIVED)
    for i in sorted(set(lost.tolist()) - set(already_there)):
        route = model.route_of(i)
        assert dest not in route.tolist()
        # no open edge reachable from where it arrived is nearer to the closed destination
        assert int(route[-1]) in reference_nearest(network, int(route[-1]), dest, {dest})
    ev = model.events.to_frame()
    assert (ev["type"] == "destination_closed").sum() == s["destination_closed"]


def test_nearest_reachable_matches_a_breadth_first_reference(network) -> None:
    demand = random_trips(network, 1, (0.0, 1.0), 0)
    model = TrafficModel(network, demand, seed=0, record_fcd=False)
    rng = np.random.default_rng(0)
    for _ in range(20):
        src, dst = (int(x) for x in rng.integers(0, network.n_edges, 2))
        closed = {dst, int(rng.integers(0, network.n_edges))} - {src}
        model.close_edges(sorted(model.closed), closed=False)
        model.close_edges(sorted(closed))
        route = model.nearest_reachable(src, dst)
        assert route[0] == src
        assert not (set(route[1:].tolist()) & closed)
        assert int(route[-1]) in reference_nearest(network, src, dst, closed)
        # consecutive edges are joined by a turn
        g = network.edge_graph()
        arcs = set(zip(np.asarray(g.src).tolist(), np.asarray(g.dst).tolist(), strict=True))
        assert all((int(a), int(b)) in arcs for a, b in zip(route[:-1], route[1:], strict=False))


def test_an_emergency_unit_stops_before_its_closed_incident_edge_and_counts_as_arrived(network) -> None:
    demand = random_trips(network, 1, (0.0, 1.0), 1, min_distance_m=1500.0)
    model = TrafficModel(network, demand, seed=1, record_fcd=False)
    route = np.asarray(demand.route(0), dtype=np.int64)
    incident = int(route[-1])
    unit = Demand(
        ids=("engine-1",),
        depart_s=np.array([0.0]),
        type=np.zeros(1, dtype=np.int32),
        vtypes=VehicleTypes.from_types([VehicleType.of_class("emergency", id="engine")]),
        route_offsets=np.array([0, len(route)], dtype=np.int64),
        route_edges=route.astype(np.int32),
        depart_lane=np.full(1, -1, dtype=np.int32),
        depart_pos=np.zeros(1),
        depart_speed=np.zeros(1),
        priority=np.ones(1, dtype=np.int8),
        speed_factor=np.ones(1),
        source="test",
    )
    row = int(model.insert_vehicles(unit)[0])
    model.step()
    model.step()
    # the flood closes the incident's street while the unit is on its way
    assert model.core.route_index[row] < len(route) - 2
    model.close_edges([incident])
    model.run(1200, progress=False)
    assert model.core.state[row] == ARRIVED
    final = model.route_of(row)
    assert incident not in final.tolist()
    # the nearest open edge to the incident street on its way is the one just before it
    assert int(final[-1]) in reference_nearest(network, int(final[-1]), incident, {incident})
    assert model.summary()["destination_closed"] == 2  # the unit and the ordinary trip to the same edge
    assert model.summary()["collisions"] == 0
