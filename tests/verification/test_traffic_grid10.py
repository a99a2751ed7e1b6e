"""Issue 4 verification: the shared 10 x 10 signalised grid with its 10,000 routed trips against SUMO's reference.

Reference (``../shared/data/PROVENANCE.md``, SUMO 1.28, all vehicles arrive, no teleports): mean travel time
(tripinfo ``duration``) 245.3 s and mean time loss (``timeLoss``) 116.1 s at 1 s steps; 239.9 s and 110.8 s at
0.5 s steps. Required: within 10 %, every vehicle arriving, no collision.
"""

from __future__ import annotations

import pytest

from twin.city.frame import Frame
from twin.city.sumo import load_sumo_net
from twin.sim.demand import read_sumo_routes
from twin.sim.traffic import TrafficModel
from twin.sim.traffic_net import compile_network

SUMO = {1.0: (245.3, 116.1), 0.5: (239.9, 110.8)}


@pytest.fixture(scope="module")
def grid10(data_dir):
    net = compile_network(load_sumo_net(data_dir / "traffic" / "grid10.net.xml", frame=Frame()))
    return net, read_sumo_routes(data_dir / "traffic" / "grid10.rou.xml", net)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_grid10_agrees_with_sumo(grid10, dt) -> None:
    net, demand = grid10
    model = TrafficModel(net, demand, dt_s=dt, seed=42, record_every_s=10.0, record_fcd=False)
    model.run(7200, progress=False)
    s = model.summary()
    assert s["arrived"] == s["vehicles"] == 10_000
    assert s["collisions"] == 0
    travel, loss = SUMO[dt]
    assert s["mean_travel_time_s"] == pytest.approx(travel, rel=0.10)
    assert s["mean_delay_s"] == pytest.approx(loss, rel=0.10)
    # time loss is part of the travel time; a trip's free-flow time is route length / speed limit (13.89 m/s)
    trips = model.trips()
    assert (trips["time_loss_s"] <= trips["duration_s"] + 1e-9).all()
    assert (trips["duration_s"] - trips["time_loss_s"] >= trips["route_length_m"] / 13.89 - dt - 1e-6).all()
