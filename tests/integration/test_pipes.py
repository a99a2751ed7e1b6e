"""Pipe networks from real EPANET and SWMM files, checked against WNTR, swmmio and the SWMM engine (pyswmm)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.city import City
from twin.city.dem import load_dem
from twin.city.epanet import load_epanet
from twin.city.frame import Frame, Placement
from twin.city.pipes import PipeNetwork, read_inp_sections
from twin.city.swmm import load_swmm
from twin.errors import InputError

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
WATER = ["Net1", "Net3", "ky10", "Balerma", "BWSN_Network_2"]
SEWER = ["EPA_Example1", "EPA_Example7_DualDrainage", "EPA_Example8_CombinedSewer"]
FOOT = 0.3048
BIG = DATA / "terrain" / "bigtujunga.tif"


def _wntr(path: Path):
    import wntr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return wntr.network.WaterNetworkModel(str(path))


@pytest.fixture(scope="module", params=WATER)
def water(request):
    path = DATA / "water" / f"{request.param}.inp"
    return path, load_epanet(path, frame=Frame()), _wntr(path)


# -- EPANET against WNTR ------------------------------------------------------------------------------------------
def test_water_counts_equal_wntr(water):
    _, net, wn = water
    nodes = net.nodes["type"].value_counts().to_dict()
    links = net.links["type"].value_counts().to_dict()
    assert nodes.get("junction", 0) == wn.num_junctions
    assert nodes.get("reservoir", 0) == wn.num_reservoirs
    assert nodes.get("tank", 0) == wn.num_tanks
    assert links.get("pipe", 0) == wn.num_pipes
    assert links.get("pump", 0) == wn.num_pumps
    assert links.get("valve", 0) == wn.num_valves
    assert len(net.nodes) == wn.num_nodes
    assert len(net.links) == wn.num_links
    s = net.summary()
    assert s["network"] == "water"
    assert s["node_types"] == {k: v for k, v in nodes.items()}


def test_water_values_equal_wntr(water):
    _, net, wn = water
    pipes = net.links[net.links["type"] == "pipe"].set_index("name")
    names = wn.pipe_name_list
    np.testing.assert_array_equal(pipes.loc[names, "length_m"], [wn.get_link(n).length for n in names])
    np.testing.assert_array_equal(pipes.loc[names, "diameter_m"], [wn.get_link(n).diameter for n in names])
    np.testing.assert_array_equal(pipes.loc[names, "roughness"], [wn.get_link(n).roughness for n in names])
    assert list(pipes.loc[names, "start"]) == [wn.get_link(n).start_node_name for n in names]
    assert list(pipes.loc[names, "end"]) == [wn.get_link(n).end_node_name for n in names]
    valves = net.links[net.links["type"] == "valve"].set_index("name")
    for n in wn.valve_name_list:
        assert valves.loc[n, "diameter_m"] == wn.get_link(n).diameter
    nodes = net.nodes.set_index("name")
    for n in wn.junction_name_list[:500] + wn.tank_name_list:
        node = wn.get_node(n)
        assert nodes.loc[n, "elevation_m"] == node.elevation
        assert (nodes.loc[n, "x_m"], nodes.loc[n, "y_m"]) == tuple(node.coordinates)
    for n in wn.reservoir_name_list:
        assert nodes.loc[n, "elevation_m"] == wn.get_node(n).base_head
    # no placement, no CRS: z is the file elevation, and the rows referenced by the links are the named nodes
    np.testing.assert_array_equal(net.nodes["z_m"], net.nodes["elevation_m"])
    assert net.nodes["depth_m"].isna().all()
    assert (net.nodes["name"].to_numpy()[net.links["start_index"]] == net.links["start"].to_numpy()).all()
    assert (net.nodes["name"].to_numpy()[net.links["end_index"]] == net.links["end"].to_numpy()).all()
    # vertices as in WNTR
    for link in net.links.itertuples():
        assert link.vertices == [tuple(v) for v in wn.get_link(link.name).vertices]
    d = [wn.get_link(n).diameter for n in wn.pipe_name_list + wn.valve_name_list]
    assert net.summary()["diameter_range_m"] == [min(d), max(d)]


def test_epanet_us_units_become_metres():
    # Net1 is in GPM, so feet and inches in the file: pipe 10 is 10530 ft long and 18 in wide, junction 10 at 710 ft
    net = load_epanet(NET1, frame=Frame())
    assert net.units == "US"
    pipe = net.links.set_index("name").loc["10"]
    assert pipe["length_m"] == pytest.approx(10530 * FOOT, rel=1e-12)
    assert pipe["diameter_m"] == pytest.approx(18 * 0.0254, rel=1e-12)
    assert pipe["roughness"] == 100.0
    assert net.nodes.set_index("name").loc["10", "elevation_m"] == pytest.approx(710 * FOOT, rel=1e-12)
    assert net.nodes.set_index("name").loc["9", "elevation_m"] == pytest.approx(800 * FOOT, rel=1e-12)  # head


def test_water_graph_edges(water):
    _, net, wn = water
    src, dst, length = net.as_graph()
    assert src.dtype == np.int64
    assert dst.dtype == np.int64
    assert length.dtype == np.float64
    assert np.isfinite(length).all()
    assert (length >= 0).all()
    names = net.nodes["name"].to_numpy()
    graph = wn.to_graph()
    ours = sorted(zip(names[src], names[dst], net.links["name"], strict=True))
    theirs = sorted((u, v, k) for u, v, k in graph.edges(keys=True))
    assert ours == theirs
    # links without a file length (pumps, valves) measure their drawn polyline
    other = (net.links["type"] != "pipe").to_numpy()
    xy = net.nodes[["x_m", "y_m"]].to_numpy()
    for k in np.flatnonzero(other):
        pts = np.vstack([xy[src[k]], *net.links["vertices"][k], xy[dst[k]]])
        assert length[k] == pytest.approx(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


def test_water_in_a_declared_crs():
    # ky10 coordinates look like Kentucky state-plane feet; declare that and put the city in UTM 16N
    path = DATA / "water" / "ky10.inp"
    frame = Frame("EPSG:32616", origin=(600000.0, 4200000.0, 50.0))
    net = load_epanet(path, frame=frame, crs=pyproj.CRS.from_epsg(3089))
    wn = _wntr(path)
    names = wn.node_name_list
    xy = np.array([wn.get_node(n).coordinates for n in names])
    ex, ny = pyproj.Transformer.from_crs(3089, 32616, always_xy=True).transform(xy[:, 0], xy[:, 1])
    nodes = net.nodes.set_index("name").loc[names]
    np.testing.assert_allclose(nodes["x_m"], ex - 600000.0, atol=1e-6)
    np.testing.assert_allclose(nodes["y_m"], ny - 4200000.0, atol=1e-6)
    np.testing.assert_allclose(nodes["z_m"], nodes["elevation_m"] - 50.0)
    assert net.crs == "EPSG:32616"
    assert net.source_crs == "EPSG:3089"
    # vertices go through the same transform
    link = next(n for n in wn.pipe_name_list if wn.get_link(n).vertices)
    v = np.array(wn.get_link(link).vertices)
    vx, vy = pyproj.Transformer.from_crs(3089, 32616, always_xy=True).transform(v[:, 0], v[:, 1])
    got = np.array(net.links.set_index("name").loc[link, "vertices"])
    np.testing.assert_allclose(got, np.column_stack([vx - 600000.0, vy - 4200000.0]), atol=1e-6)


def test_water_placement_rotates_scales_and_lifts():
    path = DATA / "water" / "Net3.inp"
    plain = load_epanet(path, frame=Frame())
    pl = Placement(x=1000.0, y=-500.0, z=20.0, rotation_deg=90.0, scale=2.0)
    net = load_epanet(path, frame=Frame(), placement=pl)
    x, y = plain.nodes["x_m"].to_numpy(), plain.nodes["y_m"].to_numpy()
    np.testing.assert_allclose(net.nodes["x_m"], -2.0 * y + 1000.0, atol=1e-9)
    np.testing.assert_allclose(net.nodes["y_m"], 2.0 * x - 500.0, atol=1e-9)
    np.testing.assert_allclose(net.nodes["z_m"], plain.nodes["elevation_m"] + 20.0)
    assert net.z_offset_m == 20.0
    # file lengths of pipes do not change with the drawing's scale
    np.testing.assert_array_equal(
        net.links["length_m"][net.links["type"] == "pipe"],
        plain.links["length_m"][plain.links["type"] == "pipe"],
    )


# -- SWMM against swmmio and the SWMM engine -----------------------------------------------------------------------
@pytest.fixture(scope="module", params=SEWER)
def sewer(request, tmp_path_factory):
    import swmmio
    from pyswmm import Links, Nodes, Simulation

    path = DATA / "sewer" / f"{request.param}.inp"
    out = tmp_path_factory.mktemp("swmm")
    with warnings.catch_warnings():  # swmmio warns about missing sections and pandas deprecations
        warnings.simplefilter("ignore")
        model = swmmio.Model(str(path))
        reference = {
            "nodes": len(model.nodes()),
            "links": len(model.links()),
            "conduits": model.inp.conduits,
            "xsections": model.inp.xsections,
            "coordinates": model.inp.coordinates,
            "vertices": model.inp.vertices,
        }
    engine: dict = {"nodes": {}, "links": {}}
    with Simulation(str(path), reportfile=str(out / "r.rpt"), outputfile=str(out / "r.out")) as sim:
        for n in Nodes(sim):
            kind = (
                "junction"
                if n.is_junction()
                else "outfall"
                if n.is_outfall()
                else "storage"
                if n.is_storage()
                else "divider"
            )
            engine["nodes"][n.nodeid] = (kind, n.invert_elevation, n.full_depth)
        for lk in Links(sim):
            kind = next(
                k for k in ("conduit", "pump", "orifice", "weir", "outlet") if getattr(lk, f"is_{k}")()
            )
            engine["links"][lk.linkid] = (kind, lk.inlet_node, lk.outlet_node)
    return path, load_swmm(path, frame=Frame()), reference, engine


def test_sewer_counts_equal_swmmio_and_engine(sewer):
    _, net, reference, engine = sewer
    assert len(net.nodes) == reference["nodes"] == len(engine["nodes"])
    assert len(net.links) == reference["links"] == len(engine["links"])
    assert dict(zip(net.nodes["name"], net.nodes["type"], strict=True)) == {
        k: v[0] for k, v in engine["nodes"].items()
    }
    assert {r.name: (r.type, r.start, r.end) for r in net.links.itertuples()} == engine["links"]
    s = net.summary()
    assert s["network"] == "sewer"
    assert s["units"] == "US"


def test_sewer_values_in_metres(sewer):
    _, net, reference, engine = sewer
    nodes = net.nodes.set_index("name")
    for name, (_, invert, full_depth) in engine["nodes"].items():
        assert nodes.loc[name, "elevation_m"] == pytest.approx(invert * FOOT, abs=1e-9)
        if nodes.loc[name, "depth_m"] > 0:  # a depth given in the file (the engine derives the others)
            assert nodes.loc[name, "depth_m"] == pytest.approx(full_depth * FOOT, abs=1e-9)
    conduits = reference["conduits"]
    links = net.links.set_index("name")
    for name, row in conduits.iterrows():
        assert links.loc[name, "length_m"] == pytest.approx(row["Length"] * FOOT, rel=1e-12)
        assert links.loc[name, "roughness"] == row["Roughness"]
    xs = reference["xsections"]
    for name, row in xs.iterrows():
        if row["Shape"] in ("IRREGULAR", "STREET"):
            assert math.isnan(links.loc[name, "diameter_m"])
        else:
            assert links.loc[name, "diameter_m"] == pytest.approx(float(row["Geom1"]) * FOOT, rel=1e-12)
        assert links.loc[name, "shape"] == row["Shape"]
    coords = reference["coordinates"]
    np.testing.assert_allclose(nodes.loc[coords.index, "x_m"], coords["X"])
    np.testing.assert_allclose(nodes.loc[coords.index, "y_m"], coords["Y"])
    # vertices in file order
    verts = reference["vertices"]
    for name in set(verts.index):
        want = verts.loc[[name], ["X", "Y"]].to_numpy()
        np.testing.assert_allclose(np.array(links.loc[name, "vertices"]), want)


def test_sewer_ids_keep_leading_zeros(tmp_path):
    # rename node 9 to 009 wherever it is used; ids are text, so "009" must survive (pandas readers make it 9)
    out, section = [], ""
    for line in (DATA / "sewer" / "EPA_Example1.inp").read_text().splitlines():
        if line.startswith("["):
            section = line.strip().upper()
        fields = line.split()
        at = {"[JUNCTIONS]": (0,), "[COORDINATES]": (0,), "[CONDUITS]": (1, 2), "[SUBCATCHMENTS]": (2,)}
        if not line.startswith(";") and any(
            i < len(fields) and fields[i] == "9" for i in at.get(section, ())
        ):
            fields = ["009" if (i in at[section] and f == "9") else f for i, f in enumerate(fields)]
            line = "  ".join(fields)
        out.append(line)
    path = tmp_path / "zeros.inp"
    path.write_text("\n".join(out) + "\n")
    net = load_swmm(path, frame=Frame())
    assert "009" in set(net.nodes["name"])
    assert "9" not in set(net.nodes["name"])
    assert net.links.set_index("name").loc["1", "start"] == "009"


# -- burying ------------------------------------------------------------------------------------------------------
def test_water_buried_below_dem_in_a_city():
    city = City()
    city.add_file(BIG)
    terrain = city.terrain
    (net,) = city.add_file(
        DATA / "water" / "Net3.inp", placement={"x": 389000.0, "y": 3795000.0, "scale": 200.0}
    )
    nodes = net.nodes
    assert np.isfinite(nodes["ground_m"]).all()  # the whole network lies on the DEM
    np.testing.assert_array_equal(
        nodes["ground_m"], terrain.height_at(nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy())
    )
    assert (nodes["z_m"] < nodes["ground_m"]).all()
    # z = ground - 1.2 m cover - half the largest diameter of the node's links
    dmax = np.zeros(len(nodes))
    for link in net.links.itertuples():
        d = 0.0 if math.isnan(link.diameter_m) else link.diameter_m
        dmax[link.start_index] = max(dmax[link.start_index], d)
        dmax[link.end_index] = max(dmax[link.end_index], d)
    np.testing.assert_allclose(nodes["z_m"], nodes["ground_m"] - 1.2 - dmax / 2, atol=1e-9)
    assert net.summary()["buried_nodes"] == len(nodes)
    # burying again with another cover starts from the file, not from the last result
    net.bury(terrain, cover_m=2.0)
    np.testing.assert_allclose(nodes["z_m"], nodes["ground_m"] - 2.0 - dmax / 2, atol=1e-9)


def test_nodes_off_the_dem_keep_their_elevation():
    frame = Frame("EPSG:32611", origin=(394000.0, 3798000.0, 0.0))
    terrain = load_dem(BIG, frame=frame)
    b = terrain.bounds()
    # the network straddles the east edge of the DEM
    pl = Placement(x=frame.origin[0] + b[1, 0] - 4000.0, y=frame.origin[1], scale=200.0)
    net = load_epanet(DATA / "water" / "Net3.inp", frame=frame, placement=pl)
    count = net.bury(terrain)
    inside = np.isfinite(net.nodes["ground_m"]).to_numpy()
    assert 0 < count == inside.sum() < len(net.nodes)
    assert (net.nodes["x_m"][~inside] > b[1, 0]).all()
    np.testing.assert_array_equal(net.nodes["z_m"][~inside], net.nodes["elevation_m"][~inside])
    assert (net.nodes["z_m"][inside] < net.nodes["ground_m"][inside]).all()


def test_sewer_buried_by_max_depth():
    frame = Frame("EPSG:32611", origin=(394000.0, 3798000.0, 0.0))
    terrain = load_dem(BIG, frame=frame)
    pl = Placement(x=frame.origin[0] - 2000.0, y=frame.origin[1] - 1000.0, scale=FOOT)
    net = load_swmm(DATA / "sewer" / "EPA_Example8_CombinedSewer.inp", frame=frame, placement=pl)
    assert net.bury(terrain, cover_m=1.0) == len(net.nodes)
    n = net.nodes
    depth = n["depth_m"].to_numpy()
    given = np.nan_to_num(depth) > 0
    np.testing.assert_allclose(n["z_m"][given], (n["ground_m"] - n["depth_m"])[given], atol=1e-9)
    # nodes without a depth: the crown of their largest link 1 m below ground
    h = np.zeros(len(n))
    for link in net.links.itertuples():
        d = 0.0 if math.isnan(link.diameter_m) else link.diameter_m
        h[link.start_index] = max(h[link.start_index], d)
        h[link.end_index] = max(h[link.end_index], d)
    np.testing.assert_allclose(n["z_m"][~given], (n["ground_m"] - 1.0 - h)[~given], atol=1e-9)
    assert (n["z_m"] < n["ground_m"]).all()


# -- bundle ---------------------------------------------------------------------------------------------------------
def test_bundle_round_trip(tmp_path):
    city = City("EPSG:32616")
    city.add_file(DATA / "water" / "ky10.inp", crs="EPSG:3089")
    city.add_file(DATA / "sewer" / "EPA_Example8_CombinedSewer.inp", placement={"scale": FOOT})
    city.save(tmp_path / "b")
    back = City.load(tmp_path / "b")
    for name, net in city.pipes.items():
        other = back.pipes[name]
        assert isinstance(other, PipeNetwork)
        assert other.kind_of_network == net.kind_of_network
        pd.testing.assert_frame_equal(other.nodes, net.nodes)
        pd.testing.assert_frame_equal(
            other.links.drop(columns="vertices"), net.links.drop(columns="vertices")
        )
        assert list(other.links["vertices"]) == list(net.links["vertices"])
        assert other.summary() == net.summary()
        np.testing.assert_array_equal(other.bounds(), net.bounds())
    assert back.pipes["ky10"].links["vertices"].map(len).sum() > 0


# -- malformed input ----------------------------------------------------------------------------------------------
def _edit(tmp_path: Path, source: Path, name: str, edit) -> tuple[Path, int]:
    """Write ``source`` with one line changed by ``edit(lines) -> index``; return the path and 1-based line."""
    lines = source.read_text().splitlines()
    index = edit(lines)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path, index + 1


def _line_of(lines: list[str], section: str, first_field: str) -> int:
    start = next(i for i, line in enumerate(lines) if line.strip().upper() == f"[{section}]")
    return next(i for i in range(start + 1, len(lines)) if lines[i].split()[:1] == [first_field])


NET1 = DATA / "water" / "Net1.inp"
EX1 = DATA / "sewer" / "EPA_Example1.inp"


@pytest.mark.parametrize("loader", [load_epanet, load_swmm])
def test_missing_file(tmp_path, loader):
    with pytest.raises(InputError, match="does not exist") as err:
        loader(tmp_path / "none.inp", frame=Frame())
    assert err.value.source == str(tmp_path / "none.inp")


def _set(section, first, text):
    def edit(lines):
        i = _line_of(lines, section, first)
        lines[i] = text if not callable(text) else text(lines[i])
        return i

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("PIPES", "11", " 11  11  12  5280"), r"pipe '11' has 4 fields, expected at least 6"),
        (_set("PIPES", "11", lambda s: s.replace("\t12 ", "\t99 ", 1)), r"pipe '11' refers to node '99'"),
        (_set("PIPES", "11", lambda s: s.replace("5280", "52x0", 1)), r"Length '52x0' is not a number"),
        (_set("PIPES", "11", lambda s: s.replace("5280", "-5", 1)), r"Length must be > 0"),
        (_set("JUNCTIONS", "12", " 12"), r"junction '12' has 1 fields"),
        (_set("COORDINATES", "22", " 77  1  2"), r"refers to node '77'"),
        (_set("PUMPS", "9", lambda s: s.replace("HEAD 1", "HEAD 99")), r"'99' is not defined"),
    ],
)
def test_broken_epanet_names_section_and_line(tmp_path, edit, message):
    path, line = _edit(tmp_path, NET1, "broken.inp", edit)
    with pytest.raises(InputError, match=message) as err:
        load_epanet(path, frame=Frame())
    assert err.value.source == str(path)
    assert err.value.element is not None
    assert err.value.element.endswith(f"line {line}")


def test_epanet_missing_coordinates(tmp_path):
    lines = NET1.read_text().splitlines()
    start = lines.index("[COORDINATES]")
    some = lines[: start + 2] + lines[start + 4 :]  # drop the coordinates of two nodes
    path = tmp_path / "some.inp"
    path.write_text("\n".join(some) + "\n")
    with pytest.raises(InputError, match=r"2 of 11 nodes have no coordinates: 10, 11") as err:
        load_epanet(path, frame=Frame())
    assert err.value.element == "[COORDINATES]"
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("["))
    path.write_text("\n".join(lines[: start + 1] + lines[end:]) + "\n")
    with pytest.raises(InputError, match="no node has coordinates"):
        load_epanet(path, frame=Frame())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("CONDUITS", "4", "4   19   20   200"), r"conduit '4' has 4 fields, expected at least 7"),
        (_set("CONDUITS", "4", lambda s: s.replace("\t20 ", "\t99 ", 1)), r"conduit '4' refers to node '99'"),
        (_set("CONDUITS", "4", lambda s: s.replace("0.01", "n/a", 1)), r"Roughness 'n/a' is not a number"),
        (_set("XSECTIONS", "4", "4   CIRCULAR   big"), r"Geom1 'big' is not a number"),
        (_set("XSECTIONS", "4", "44   CIRCULAR   1"), r"refers to link '44'"),
        (_set("OPTIONS", "FLOW_UNITS", "FLOW_UNITS  FURLONGS"), r"FLOW_UNITS 'FURLONGS' is not one of"),
    ],
)
def test_broken_swmm_names_section_and_line(tmp_path, edit, message):
    path, line = _edit(tmp_path, EX1, "broken.inp", edit)
    with pytest.raises(InputError, match=message) as err:
        load_swmm(path, frame=Frame())
    assert err.value.source == str(path)
    assert err.value.element.endswith(f"line {line}")


def test_si_swmm_units_are_not_converted(tmp_path):
    path, _ = _edit(tmp_path, EX1, "si.inp", _set("OPTIONS", "FLOW_UNITS", "FLOW_UNITS  CMS"))
    us = load_swmm(EX1, frame=Frame())
    si = load_swmm(path, frame=Frame())
    assert si.units == "SI"
    np.testing.assert_allclose(si.nodes["elevation_m"] * FOOT, us.nodes["elevation_m"])
    np.testing.assert_allclose(si.links["length_m"] * FOOT, us.links["length_m"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.lists(st.from_regex(r"[A-Za-z0-9_.~@-]{1,8}", fullmatch=True), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    ),
    comments=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_inp_reader_keeps_fields_and_line_numbers(tmp_path, rows, comments):
    lines = ["[TITLE]", "[PIPES]", ";ID  Node1  Node2"]
    expected = []
    for row, comment in zip(rows, comments, strict=False):
        lines.append("")
        lines.append("  " + "\t".join(row) + ("   ;note; more" if comment else ""))
        expected.append((len(lines), row))
    path = tmp_path / "r.inp"
    path.write_text("\r\n".join(lines) + "\r\n")
    sections = read_inp_sections(path)
    assert sections["TITLE"] == []
    assert [(r.line, r.fields) for r in sections["PIPES"]] == expected


def test_text_that_is_not_inp(tmp_path):
    path = tmp_path / "x.inp"
    path.write_text("hello\n[JUNCTIONS]\n")
    with pytest.raises(InputError, match="before the first") as err:
        load_epanet(path, frame=Frame())
    assert err.value.element == "line 1"
