"""``twin compare`` on the shipped what-if pairs (``scenarios/whatif/``), run for real, plus synthetic results
folders for the flood difference and bad input."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.city.layer import write_arrays
from twin.cli import main
from twin.errors import InputError
from twin.scenario.compare import (
    HEADLINE_KPIS,
    compare_results,
    density_grids,
    edge_mean_speed,
    flood_grids,
    kpi_direction,
    read_results,
    scenario_diff,
)
from twin.scenario.results import DensityMap
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

WHATIF = Path(__file__).resolve().parents[2] / "scenarios" / "whatif"
ROOM_AGENTS = 120  # the shipped pair has 300 people; fewer keep the test short


def _run(path: Path, out: Path, data_dir: Path | None = None, agents: int | None = None) -> Path:
    data = yaml.safe_load(path.read_text())
    if agents is not None:
        data["crowd"]["groups"][0]["count"] = agents
    if data_dir is not None:  # the shipped files point at ../../../shared/data; honour TWIN_DATA
        if "roads" in data["city"]:
            data["city"]["roads"]["sumo_net"] = str(data_dir / "traffic" / "grid10.net.xml")
        if "terrain" in data["city"]:
            data["city"]["terrain"]["dem"] = str(data_dir / "terrain" / "bigtujunga.tif")
            data["city"]["pipes"][0]["epanet"] = str(data_dir / "water" / "Net1.inp")
    run_scenario(Scenario.from_dict(data, source=path, base_dir=path.parent), out, progress=False)
    return out


@pytest.fixture(scope="module")
def rooms(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rooms")
    return (
        _run(WHATIF / "room_one_exit.yaml", root / "one", agents=ROOM_AGENTS),
        _run(WHATIF / "room_two_exits.yaml", root / "two", agents=ROOM_AGENTS),
    )


@pytest.fixture(scope="module")
def grids(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("grid10")
    return (
        _run(WHATIF / "grid10_open.yaml", root / "open", data_dir),
        _run(WHATIF / "grid10_closed_road.yaml", root / "closed", data_dir),
    )


@pytest.fixture(scope="module")
def room_cmp(rooms, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("room_cmp")
    return compare_results(*rooms, out), out


@pytest.fixture(scope="module")
def grid_cmp(grids, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("grid_cmp")
    return compare_results(*grids, out), out


def _scalars(d: dict, prefix: str = "") -> dict:
    """Reference flattening, written out: every scalar under the model sections (and simulated_s)."""
    out = {}
    for k, v in d.items():
        if not prefix and k in (
            "scenario",
            "seed",
            "twin_version",
            "git_revision",
            "provenance",
            "wall_time_s",
        ):
            continue
        if isinstance(v, dict):
            out.update(_scalars(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def _check_deltas(result: dict, base_dir: Path, variant_dir: Path) -> None:
    sb = _scalars(json.loads((base_dir / "summary.json").read_text()))
    sv = _scalars(json.loads((variant_dir / "summary.json").read_text()))
    rows = {r["kpi"]: r for r in result["kpis"]}
    assert set(rows) == set(sb) | set(sv)
    for k, r in rows.items():
        b, v = sb.get(k), sv.get(k)
        assert r["base"] == b, k
        assert r["variant"] == v, k
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (b, v))
        if numbers:
            assert r["delta"] == v - b, k
            assert r["relative_delta"] == (None if b == 0 else pytest.approx((v - b) / abs(b))), k
        else:
            assert r["delta"] is None, k
            assert r["relative_delta"] is None, k
        assert r["only_in"] == (None if (k in sb) == (k in sv) else ("base" if k in sb else "variant"))
    # headline KPIs lead the table, in their order
    order = [r["kpi"] for r in result["kpis"]]
    head = [k for k in HEADLINE_KPIS if k in rows]
    assert order[: len(head)] == head


def _check_report(result: dict, out: Path) -> None:
    assert json.loads((out / "comparison.json").read_text()) == result  # round trip
    text = (out / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    files = [f["file"] for f in result["figures"]]
    assert sorted(srcs) == sorted(files)
    for f in files:
        assert (out / f).is_file(), f
        assert (out / f).stat().st_size > 10_000, f
    assert "<script" not in text
    assert "http" not in text


def test_extra_exit_shortens_evacuation(rooms, room_cmp):
    result, out = room_cmp
    _check_deltas(result, *rooms)
    rows = {r["kpi"]: r for r in result["kpis"]}
    ev = rows["crowd.evacuation_time_s"]
    assert ev["delta"] < 0
    assert ev["verdict"] == "better"
    assert ev["better"] == "lower"
    assert rows["crowd.t90_s"]["delta"] < 0
    assert rows["crowd.evacuated"]["base"] == rows["crowd.evacuated"]["variant"] == ROOM_AGENTS
    assert rows["crowd.exits.west.count"]["only_in"] == "variant"
    assert (
        rows["crowd.exits.west.count"]["variant"] + rows["crowd.exits.east.count"]["variant"] == ROOM_AGENTS
    )
    diff = {d["path"]: d for d in result["scenario_diff"]}
    assert set(diff) == {"name", "city.areas[0].exits[1]"}
    assert diff["city.areas[0].exits[1]"]["variant"]["id"] == "west"
    assert diff["city.areas[0].exits[1]"]["only_in"] == "variant"
    assert result["base"]["scenario"] == "room-one-exit"
    assert result["variant"]["scenario"] == "room-two-exits"
    assert result["base"]["seed"] == result["variant"]["seed"] == 1
    assert (
        result["base"]["git_revision"] == json.loads((rooms[0] / "summary.json").read_text())["git_revision"]
    )
    files = {f["file"] for f in result["figures"]}
    assert {"figures/evacuation.png", "figures/exit_usage.png", "figures/density_diff_00_room.png"} <= files
    _check_report(result, out)


def test_density_difference_on_the_union_of_aligned_grids(rooms, room_cmp):
    """The variant's room is 1 m wider (its west door): both grids go on their union, compared cell by cell with a
    lookup by cell centre."""
    a = DensityMap.load(rooms[0] / "density_maps.npz")
    b = DensityMap.load(rooms[1] / "density_maps.npz")
    assert not np.allclose(a.origin, b.origin)  # the case that needs the union
    xe, ye, ga, gb = density_grids(a, 0, b, 0)

    def lookup(dm, x, y):
        i, j = math.floor((y - dm.origin[1]) / dm.cell_m), math.floor((x - dm.origin[0]) / dm.cell_m)
        return dm.max_density_ppm2[0, i, j] if 0 <= i < dm.ny and 0 <= j < dm.nx else 0.0

    for i in range(len(ye) - 1):
        for j in range(len(xe) - 1):
            x, y = (xe[j] + xe[j + 1]) / 2, (ye[i] + ye[i + 1]) / 2
            assert ga[i, j] == lookup(a, x, y)
            assert gb[i, j] == lookup(b, x, y)
    assert ga.sum() == a.max_density_ppm2[0].sum()
    assert gb.sum() == b.max_density_ppm2[0].sum()
    level = room_cmp[0]["density"]["levels"][0]
    assert level["max_increase_ppm2"] == max((gb - ga).max(), 0.0)
    assert level["max_decrease_ppm2"] == max((ga - gb).max(), 0.0)
    # a grid shifted by half a cell does not line up
    c = DensityMap(level_names=["room"], bounds=[0.5, 0, 10.5, 10], cell_m=1.0)
    assert density_grids(a, 0, c, 0) is None


def test_closed_road_slows_traffic(grids, grid_cmp):
    result, out = grid_cmp
    _check_deltas(result, *grids)
    rows = {r["kpi"]: r for r in result["kpis"]}
    tt = rows["traffic.mean_travel_time_s"]
    assert tt["delta"] > 0
    assert tt["verdict"] == "worse"
    assert rows["traffic.mean_delay_s"]["delta"] > 0
    (d,) = [d for d in result["scenario_diff"] if d["path"] != "name"]
    assert d["path"] == "events[0]"
    assert d["only_in"] == "variant"
    assert d["variant"]["type"] == "close_road"
    assert d["variant"]["edges"] == ["E4F4", "F4E4"]
    assert (out / "figures" / "edge_speed_diff.png").stat().st_size > 10_000
    assert (out / "figures" / "travel_times.png").is_file()
    edges = result["traffic"]["edges"]
    # the closed road carried traffic in the base run and none in the variant
    assert {"E4F4", "F4E4"} <= set(edges["used_in_base_only"])
    assert "E4F4" not in edges["used_in_variant_only"]
    # per-edge speeds against a plain pandas reference
    eb = pd.read_parquet(grids[0] / "traffic_edges.parquet")
    ev = pd.read_parquet(grids[1] / "traffic_edges.parquet")
    ref_b = eb[np.isfinite(eb["mean_speed_mps"])].groupby("edge", observed=True)["mean_speed_mps"].mean()
    ref_v = ev[np.isfinite(ev["mean_speed_mps"])].groupby("edge", observed=True)["mean_speed_mps"].mean()
    for r in edges["slowed_most"] + edges["faster_most"]:
        assert r["base_mps"] == pytest.approx(ref_b[r["edge"]], rel=1e-12)
        assert r["variant_mps"] == pytest.approx(ref_v[r["edge"]], rel=1e-12)
        assert r["delta_mps"] == pytest.approx(ref_v[r["edge"]] - ref_b[r["edge"]], rel=1e-12)
    both = ref_b.index.intersection(ref_v.index)
    assert edges["compared"] == len(both)
    assert edges["mean_delta_mps"] == pytest.approx((ref_v[both] - ref_b[both]).mean(), rel=1e-9)
    assert edges["slowed_most"][0]["delta_mps"] == pytest.approx((ref_v[both] - ref_b[both]).min())
    s = edge_mean_speed(eb)
    assert s.index.is_unique
    assert len(s) == len(ref_b)
    tb = pd.read_parquet(grids[0] / "traffic_trips.parquet")
    done = tb.loc[tb["arrived"], "duration_s"]
    q = result["traffic"]["travel_time_s"]["base"]
    assert q["arrived"] == len(done)
    assert q["p90"] == pytest.approx(np.percentile(done, 90))
    _check_report(result, out)


def test_a_moved_road_network_skips_the_map_only(grids, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(grids[0], moved)
    scenario = yaml.safe_load((moved / "scenario.yaml").read_text())
    scenario["city"]["roads"]["sumo_net"] = str(tmp_path / "gone.net.xml")
    (moved / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    result = compare_results(moved, grids[1], tmp_path / "cmp")
    assert any("cannot load the road network" in n and "gone.net.xml" in n for n in result["notes"])
    assert [f["file"] for f in result["figures"]] == ["figures/travel_times.png"]
    assert result["traffic"]["edges"]["compared"] > 300  # the numbers need no geometry
    assert "Not compared" in (tmp_path / "cmp" / "report.html").read_text()


def test_a_folder_against_itself_has_zero_deltas(rooms, tmp_path):
    result = compare_results(rooms[0], rooms[0], tmp_path / "cmp")
    assert result["scenario_diff"] == []
    numeric = [r for r in result["kpis"] if r["delta"] is not None]
    assert len(numeric) > 5
    assert all(r["delta"] == 0 for r in numeric)
    assert all(r["verdict"] in ("same", None) for r in result["kpis"])
    assert all(r["only_in"] is None for r in result["kpis"])
    level = result["density"]["levels"][0]
    assert level["max_increase_ppm2"] == level["max_decrease_ppm2"] == 0.0
    _check_report(result, tmp_path / "cmp")


def test_different_kinds_compare_what_both_have(rooms, grids, tmp_path):
    result = compare_results(rooms[0], grids[0], tmp_path / "cmp")
    assert result["only_in"]["base"]["sections"] == ["crowd"]
    assert result["only_in"]["variant"]["sections"] == ["traffic"]
    assert "density_maps.npz" in result["only_in"]["base"]["files"]
    assert "traffic_trips.parquet" in result["only_in"]["variant"]["files"]
    rows = {r["kpi"]: r for r in result["kpis"]}
    assert rows["crowd.evacuation_time_s"]["only_in"] == "base"
    assert rows["traffic.arrived"]["only_in"] == "variant"
    assert rows["crowd.evacuation_time_s"]["delta"] is None
    assert rows["simulated_s"]["only_in"] is None
    assert rows["simulated_s"]["delta"] is not None
    assert result["figures"] == []  # nothing both runs have to overlay
    assert any(d["path"] == "crowd" and d["only_in"] == "base" for d in result["scenario_diff"])
    _check_report(result, tmp_path / "cmp")


def _synthetic(folder: Path, depth: np.ndarray, *, x0=100.0, y0=200.0, cell=2.0, name="flood") -> Path:
    folder.mkdir(parents=True)
    summary = {
        "scenario": name,
        "seed": 3,
        "simulated_s": 600.0,
        "flood": {"max_depth_m": float(depth.max())},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "scenario.yaml").write_text(yaml.safe_dump({"name": name, "seed": 3, "duration_s": 600.0}))
    write_arrays(
        {"depth_m": depth, "x0": np.float64(x0), "y0": np.float64(y0), "cell_m": np.float64(cell)},
        folder / "flood_max_depth.npz",
    )
    return folder


def test_flood_depth_difference(tmp_path):
    rng = np.random.default_rng(5)
    base = np.where(rng.random((30, 40)) < 0.3, rng.random((30, 40)) * 0.8, 0.0)
    variant = base.copy()
    variant[5:10, 5:15] += 0.25  # deeper and newly flooded here
    variant[20:25, 30:40] = 0.0  # dry here
    a = _synthetic(tmp_path / "a", base, name="burst")
    b = _synthetic(tmp_path / "b", variant, name="burst-valves")
    result = compare_results(a, b, tmp_path / "cmp")
    f = result["flood"]
    d = variant - base
    assert f["aligned_grids"] is True
    assert f["max_deeper_m"] == pytest.approx(d.max())
    assert f["max_shallower_m"] == pytest.approx(-d.min())
    wet_a, wet_b = base > 0.01, variant > 0.01
    assert f["newly_flooded_m2"] == (wet_b & ~wet_a).sum() * 4.0
    assert f["no_longer_flooded_m2"] == (wet_a & ~wet_b).sum() * 4.0
    assert f["base"]["flooded_area_m2"] == wet_a.sum() * 4.0
    assert f["variant"]["max_depth_m"] == variant.max()
    rows = {r["kpi"]: r for r in result["kpis"]}
    assert rows["flood.max_depth_m"]["delta"] == variant.max() - base.max()
    assert kpi_direction("flood.max_depth_m") == "lower"
    assert {fg["file"] for fg in result["figures"]} == {"figures/flood_depth_diff.png"}
    _check_report(result, tmp_path / "cmp")

    # a variant grid 5 cells further west and narrower: compared on the union, cell by cell by position
    shifted = variant[:, :30]
    c = _synthetic(tmp_path / "c", shifted, x0=90.0)
    xe, ye, ga, gc = flood_grids(read_results(a).flood, read_results(c).flood)
    assert xe[0] == 90.0
    assert xe[-1] == 180.0
    assert ye[0] == 200.0
    assert ye[-1] == 260.0
    for i in range(len(ye) - 1):
        for j in range(len(xe) - 1):
            x = (xe[j] + xe[j + 1]) / 2
            ja, jc = math.floor((x - 100.0) / 2.0), math.floor((x - 90.0) / 2.0)
            assert ga[i, j] == (base[i, ja] if 0 <= ja < 40 else 0.0)
            assert gc[i, j] == (shifted[i, jc] if 0 <= jc < 30 else 0.0)
    result = compare_results(a, c, tmp_path / "cmp2")
    assert result["flood"]["max_shallower_m"] == pytest.approx(max((ga - gc).max(), 0.0))
    # grids whose cells do not line up are drawn side by side, without a difference
    e = _synthetic(tmp_path / "e", variant, x0=101.0)
    result = compare_results(a, e, tmp_path / "cmp3")
    assert result["flood"]["aligned_grids"] is False
    assert "max_deeper_m" not in result["flood"]
    assert (tmp_path / "cmp3" / "figures" / "flood_depth_diff.png").stat().st_size > 10_000


def test_bad_folders_name_the_folder(rooms, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match=re.escape(str(missing))):
        compare_results(missing, rooms[0], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "kpis.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=re.escape(str(empty)) + ".*no summary.json"):
        compare_results(rooms[0], empty, tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(rooms[0], broken)
    (broken / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match=re.escape(str(broken / "summary.json"))):
        compare_results(rooms[0], broken, tmp_path / "out")
    (broken / "summary.json").write_text("{}")
    (broken / "kpis.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=re.escape(str(broken / "kpis.parquet"))):
        compare_results(broken, rooms[0], tmp_path / "out")
    (broken / "kpis.parquet").unlink()
    write_arrays(
        {
            "level_names": np.array(["a"]),
            "x_edges": np.arange(3.0),
            "y_edges": np.arange(3.0),
            "cell_m": np.float64(1.0),
            "agent_seconds": np.zeros((1, 5, 5)),
        },
        broken / "density_maps.npz",
    )
    with pytest.raises(InputError, match=re.escape(str(broken / "density_maps.npz"))):
        compare_results(broken, rooms[0], tmp_path / "out")
    bad_flood = _synthetic(tmp_path / "f", np.ones((3, 3)))
    write_arrays({"depth_m": np.ones(3)}, bad_flood / "flood_max_depth.npz")
    with pytest.raises(InputError, match="flood_max_depth.npz.*missing arrays"):
        compare_results(bad_flood, bad_flood, tmp_path / "out")
    with pytest.raises(InputError, match="one of the compared results folders"):
        compare_results(rooms[0], rooms[1], rooms[1])
    assert not (tmp_path / "out" / "report.html").exists()


def test_cli_exit_codes(rooms, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(rooms[0]), str(rooms[1]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "room-one-exit → room-two-exits" in printed
    assert "changed city.areas[0].exits[1]: (absent) → id: west" in printed
    assert re.search(
        r"crowd\.evacuation_time_s: [\d.]+ s → [\d.]+ s \(-[\d.]+ s, -[\d.]+ %, better\)", printed
    )
    assert (out / "report.html").is_file()
    assert (out / "comparison.json").is_file()
    assert main(["compare", str(tmp_path / "nope"), str(rooms[1]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("twin compare: error: ")
    assert str(tmp_path / "nope") in err[0]


def test_shipped_pairs_differ_in_the_decision_only():
    for base, variant, paths in (
        ("room_one_exit", "room_two_exits", {"name", "city.areas[0].exits[1]"}),
        ("grid10_open", "grid10_closed_road", {"name", "events"}),
        ("burst_no_valves", "burst_isolated", {"name", "events[0].isolate_after_s"}),
    ):
        a = yaml.safe_load((WHATIF / f"{base}.yaml").read_text())
        b = yaml.safe_load((WHATIF / f"{variant}.yaml").read_text())
        assert {d["path"] for d in scenario_diff(a, b)} == paths
    assert kpi_direction("crowd.exits.door.count") is None
    assert kpi_direction("crowd.exits.door.flow_pps") == "higher"
    assert kpi_direction("response.coverage_share.all") == "higher"
    assert kpi_direction("timing.model_wall_s.crowd") is None
    assert scenario_diff({"a": [1, 2], "b": 1}, {"a": [1], "b": 1.0}) == [
        {"path": "a[1]", "base": 2, "variant": None, "only_in": "base"}
    ]


def test_isolating_valves_cut_the_leak_and_the_flood(data_dir, tmp_path):
    base = _run(WHATIF / "burst_no_valves.yaml", tmp_path / "base", data_dir)
    variant = _run(WHATIF / "burst_isolated.yaml", tmp_path / "variant", data_dir)
    result = compare_results(base, variant, tmp_path / "cmp")
    rows = {r["kpi"]: r for r in result["kpis"]}
    leak = rows["water.water.leak_volume_m3"]
    assert leak["delta"] < -0.5 * leak["base"]  # the valves stop most of the outflow
    assert leak["verdict"] == "better"
    assert rows["flood.max_depth_m"]["delta"] < 0
    assert (tmp_path / "cmp" / "report.html").read_text().count("figures/") >= 1
