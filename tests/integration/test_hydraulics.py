"""Pipe bursts on the EPANET example networks Net1 and Net3 (twin.sim.hydraulics) against WNTR's own results.

References: with no event the run is WNTR's WNTRSimulator on the unchanged network (must be identical); the leak
outflow is WNTR's orifice law Q = Cd A sqrt(2 g p) with g = 9.81 m/s² (VALIDATION.md, pipe bursts).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import wntr
from scipy.stats import spearmanr

from twin.city.dem import load_dem
from twin.city.epanet import load_epanet
from twin.city.frame import Frame
from twin.errors import InputError
from twin.sim.flood import FloodModel
from twin.sim.hydraulics import BurstSimulation


@pytest.fixture(scope="module")
def net1(data_dir):
    return data_dir / "water" / "Net1.inp"


@pytest.fixture(scope="module")
def net3(data_dir):
    return data_dir / "water" / "Net3.inp"


def _plain_wntr(path, *, duration=3600, step=300, required=20.0, minimum=0.0):
    wn = wntr.network.WaterNetworkModel(str(path))
    wn.options.hydraulic.demand_model = "PDD"
    wn.options.hydraulic.required_pressure = required
    wn.options.hydraulic.minimum_pressure = minimum
    wn.options.time.duration = duration
    wn.options.time.hydraulic_timestep = step
    wn.options.time.report_timestep = step
    return wntr.sim.WNTRSimulator(wn).run_sim()


@pytest.fixture(scope="module")
def big_burst(net3):
    """Net3, full-bore rupture of the 0.76 m main 123 from t = 900 s to 2400 s."""
    sim = BurstSimulation(net3, duration_s=3600, hydraulic_timestep_s=300)
    sim.add_burst(link="123", start_s=900, end_s=2400)
    return sim.run()


def test_no_event_equals_plain_wntr(net1, net3) -> None:
    for path, required in ((net1, 20.0), (net3, 14.0)):
        res = BurstSimulation(path, required_pressure_m=required).run()
        plain = _plain_wntr(path, required=required)
        pd.testing.assert_frame_equal(res.pressure_m, plain.node["pressure"])
        pd.testing.assert_frame_equal(res.demand_m3s, plain.node["demand"])
        pd.testing.assert_frame_equal(res.raw.node["head"], plain.node["head"])
        pd.testing.assert_frame_equal(res.raw.link["flowrate"], plain.link["flowrate"])
        assert res.leak_outflow_m3s.sum() == 0.0
        assert not res.bursts
        np.testing.assert_array_equal(res.pressure_drop_m().to_numpy(), 0.0)


def test_baseline_of_a_burst_run_is_plain_wntr(net3, big_burst) -> None:
    plain = _plain_wntr(net3)
    pd.testing.assert_frame_equal(big_burst.baseline_pressure_m, plain.node["pressure"])
    pd.testing.assert_frame_equal(big_burst.baseline_demand_m3s, plain.node["demand"])
    # before the leak opens the split pipe changes nothing but solver round-off (WNTR's tolerance)
    before = big_burst.pressure_m.loc[:600, plain.node["pressure"].columns]
    np.testing.assert_allclose(before.to_numpy(), plain.node["pressure"].loc[:600].to_numpy(), atol=1e-4)


def test_leak_outflow_is_the_orifice_law(big_burst) -> None:
    b = big_burst.bursts[0]
    assert b.area_m2 == pytest.approx(math.pi * 0.762**2 / 4)
    p = big_burst.pressure_m[b.name].to_numpy()
    q = big_burst.leak_m3s[b.name].to_numpy()
    t = big_burst.times_s
    on = (t >= 900) & (t < 2400)
    assert (q[~on] == 0).all()
    assert (q[on] > 0.5).all()
    np.testing.assert_allclose(q[on], b.discharge_coeff * b.area_m2 * np.sqrt(2 * 9.81 * p[on]), rtol=1e-9)
    assert big_burst.leak_volume_m3() == pytest.approx(q[on].sum() * 300.0)
    rate = big_burst.outflow_fn()
    assert rate(899.0) == 0.0
    assert rate(900.0) == q[t == 900][0]
    assert rate(1150.0) == q[t == 900][0]
    assert rate(2399.0) == q[t == 2100][0]
    assert rate(2400.0) == 0.0
    assert rate(1e6) == 0.0


@pytest.mark.parametrize("link", ["117", "275"])
def test_burst_lowers_pressure_near_it_more_than_far(net3, link: str) -> None:
    sim = BurstSimulation(net3)
    sim.add_burst(link=link, area_m2=0.02, start_s=900, end_s=2400)
    res = sim.run()
    table = res.node_table()
    junctions = table[table["type"] == "junction"].sort_values("distance_to_burst")
    near = junctions.head(10)["max_pressure_drop_m"].mean()
    far = junctions.tail(30)["max_pressure_drop_m"].mean()
    assert near > 3.0 * far
    assert near > 5.0
    assert spearmanr(junctions["distance_to_burst"], junctions["max_pressure_drop_m"])[0] < -0.5
    # the leak junction itself (not in the table of original nodes) drops at least as much as its neighbours
    leak = res.bursts[0].name
    assert res.pressure_m[leak].min() <= junctions.head(2)["min_pressure_m"].max()


def test_large_burst_leaves_customers_below_service(big_burst) -> None:
    below = big_burst.customers_below_service()
    base = big_burst.customers_below_service(baseline=True)
    t = big_burst.times_s
    on = (t >= 900) & (t < 2400)
    assert below[on].min() > 10
    assert (below[~on] == base[~on]).all()
    short = big_burst.demand_not_served_m3s()
    assert short[on].min() > 0.01
    assert short[~on].max() < 1e-6
    # reference: count customers below service directly from WNTR's pressure table
    p = big_burst.pressure_m[big_burst.customers]
    np.testing.assert_array_equal(below, (p < 20.0).sum(axis=1).to_numpy())
    table = big_burst.node_table()
    assert table.loc[table["customer"], "time_below_service_s"].max() >= 1500.0
    assert table["demand_not_served_m3"].sum() == pytest.approx(
        (short - big_burst.demand_not_served_m3s(baseline=True))[:-1].sum() * 300.0, rel=1e-6
    )
    s = big_burst.summary()
    assert s["peak_customers_below_service"] == below.max()
    assert s["bursts"] == ["123_burst"]


def test_burst_outflow_floods_the_dem(data_dir, big_burst) -> None:
    terrain = load_dem(data_dir / "terrain" / "whitebox_DEM.tif", frame=Frame())
    flood = FloodModel.from_terrain(terrain, manning_n=0.035)
    x, y = terrain.cell_centres(np.array([94]), np.array([118]))[0]
    flood.add_source(x, y, big_burst.outflow_fn())
    flood.advance(3600.0)
    # the surface takes in exactly what WNTR says left the pipe (steps end on the hydraulic report times)
    assert flood.volume_in_m3 == pytest.approx(big_burst.leak_volume_m3(), rel=1e-12)
    assert abs(flood.volume_error()) < 1e-12
    assert float(flood.max_depth.max()) > 0.1  # 90 m cells spread a 4,000 m³ leak thin


def test_node_leak_and_timing_snapped_to_steps(net1) -> None:
    sim = BurstSimulation(net1, duration_s=1800, hydraulic_timestep_s=300)
    sim.add_burst(node="22", area_m2=0.01, discharge_coeff=0.6, start_s=650, end_s=1000)
    res = sim.run()
    b = res.bursts[0]
    assert (b.name, b.start_s, b.end_s) == ("22", 900.0, 1200.0)
    q = res.leak_m3s["22"]
    assert q.loc[600] == 0.0
    assert q.loc[900] > 0.0
    assert q.loc[1200] == 0.0
    p = res.pressure_m["22"].loc[900]
    assert q.loc[900] == pytest.approx(0.6 * 0.01 * math.sqrt(2 * 9.81 * p), rel=1e-9)
    # the leak is not counted as customer demand (22 keeps enough pressure for its full demand)
    assert p > 20.0
    assert res.demand_m3s["22"].loc[900] == pytest.approx(res.expected_demand_m3s["22"].loc[900], rel=1e-9)


def test_burst_location_on_the_pipe_layer(net1) -> None:
    layer = load_epanet(net1, frame=Frame())
    sim = BurstSimulation(layer)
    sim.add_burst(link="12", area_m2=0.005, position=0.25)
    res = sim.run()
    b = res.bursts[0]
    links = layer.links.set_index("name")
    nodes = layer.nodes.set_index("name")
    a = nodes.loc[links.loc["12", "start"], ["x_m", "y_m"]].to_numpy(dtype=float)
    e = nodes.loc[links.loc["12", "end"], ["x_m", "y_m"]].to_numpy(dtype=float)
    np.testing.assert_allclose([b.x, b.y], a + 0.25 * (e - a))  # the layer is in file coordinates here
    assert res.coordinates.loc[b.name].tolist() == [b.x, b.y]


@pytest.mark.parametrize(
    ("kwargs", "element"),
    [
        ({"link": "no-such-pipe"}, "link 'no-such-pipe'"),
        ({"node": "no-such-node", "area_m2": 0.01}, "node 'no-such-node'"),
        ({"node": "22"}, "node '22'"),  # a node leak needs an area
        ({"link": "12", "area_m2": -1.0}, "link '12'"),
        ({"link": "12", "discharge_coeff": 1.5}, "link '12'"),
        ({"link": "12", "start_s": 1e6}, "link '12'"),
        ({"link": "12", "start_s": 600, "end_s": 300}, "link '12'"),
        ({"link": "12", "position": 1.0}, "link '12'"),
        ({}, "burst"),
        ({"link": "12", "node": "22"}, "burst"),
    ],
)
def test_bad_burst_names_file_and_element(net1, kwargs: dict, element: str) -> None:
    sim = BurstSimulation(net1)
    with pytest.raises(InputError) as info:
        sim.add_burst(**kwargs)
    assert info.value.source == str(net1)
    assert info.value.element == element
    assert "Net1.inp" in str(info.value)


def test_bursts_only_on_pipes_and_junctions(net1) -> None:
    sim = BurstSimulation(net1)
    sim.add_burst(link="9", area_m2=0.01)  # link 9 is Net1's pump
    with pytest.raises(InputError, match="pump") as info:
        sim.run()
    assert info.value.element == "link '9'"
    sim = BurstSimulation(net1)
    sim.add_burst(node="2", area_m2=0.01)  # node 2 is the tank
    with pytest.raises(InputError, match="tank"):
        sim.run()
    sim = BurstSimulation(net1)
    sim.add_burst(link="12")
    with pytest.raises(InputError, match="already"):
        sim.add_burst(link="12")


def test_bad_network_and_options(tmp_path, net1) -> None:
    with pytest.raises(InputError, match="does not exist"):
        BurstSimulation(tmp_path / "missing.inp")
    bad = tmp_path / "bad.inp"
    bad.write_text("[JUNCTIONS]\nJ1 10 abc\n[END]\n")
    with pytest.raises(InputError) as info:
        BurstSimulation(bad)
    assert info.value.source == str(bad)
    with pytest.raises(InputError, match="hydraulic_timestep_s"):
        BurstSimulation(net1, hydraulic_timestep_s=0)
    with pytest.raises(InputError, match="required_pressure_m"):
        BurstSimulation(net1, required_pressure_m=5.0, minimum_pressure_m=10.0)


def test_isolating_valves_stop_the_leak_and_close_the_pipe(net1) -> None:
    sim = BurstSimulation(net1, duration_s=3600, hydraulic_timestep_s=300)
    sim.add_burst(link="12", area_m2=0.02, start_s=600, isolate_s=1500)
    res = sim.run()
    t = res.times_s
    leak = res.leak_outflow_m3s
    assert leak[(t >= 600) & (t < 1500)].min() > 0.05  # flowing while the valves are open
    assert np.all(leak[t >= 1500] == 0.0)  # nothing after the crew closed them
    flows = res.raw.link["flowrate"]
    halves = [c for c in flows.columns if c == "12" or c.startswith("12_B")]
    assert len(halves) == 2
    assert np.abs(flows.loc[flows.index >= 1500, halves].to_numpy()).max() < 1e-6
    assert np.abs(flows.loc[(flows.index >= 600) & (flows.index < 1500), halves].to_numpy()).max() > 1e-3


def test_isolating_before_the_burst_is_an_error(net1) -> None:
    sim = BurstSimulation(net1, duration_s=3600)
    with pytest.raises(InputError, match="isolate_s = 300 must be after start_s = 600"):
        sim.add_burst(link="12", area_m2=0.02, start_s=600, isolate_s=300)
