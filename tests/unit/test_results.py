"""Results: crowd KPI definitions, recorders (trajectories, KPIs, events, density maps), PedPy interop and the
atomic results-folder writer."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pedpy
import pyarrow.parquet as pq
import pytest
import shapely
import yaml

from twin.errors import InputError
from twin.scenario.results import (
    STATE_NAMES,
    DensityMap,
    EventLog,
    KpiRecorder,
    TrajectoryRecorder,
    crowd_summary,
    events_table,
    exit_flow_pps,
    git_revision,
    json_safe,
    local_density,
    provenance,
    to_pedpy,
    write_events,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]


def _no_nan_json(text: str):
    def bad(c):
        raise AssertionError(f"non-JSON constant {c} in output")

    return json.loads(text, parse_constant=bad)


def _summary(exit_index, exit_time, exit_ids=("a", "b"), simulated_s=100.0, dens=3.2):
    return crowd_summary(
        agents=len(exit_index),
        exit_index=np.asarray(exit_index, dtype=np.int32),
        exit_time=np.asarray(exit_time, dtype=np.float64),
        exit_ids=list(exit_ids),
        simulated_s=simulated_s,
        density_max_ppm2=dens,
    )


# -- crowd_summary ---------------------------------------------------------------------------------------------------
def test_t90_ten_agents_is_the_ninth_exit_time():
    rng = np.random.default_rng(3)
    times = np.array([3.0, 4.5, 5.0, 7.25, 8.0, 9.5, 11.0, 12.75, 14.0, 20.0])
    perm = rng.permutation(10)
    s = _summary(np.zeros(10, int), times[perm], exit_ids=["door"])
    assert s["agents"] == 10
    assert s["evacuated"] == 10
    assert s["remaining"] == 0
    assert s["t90_s"] == 14.0  # 9 of 10 agents (90 %) had left at the 9th exit time
    assert s["evacuation_time_s"] == 20.0
    assert s["max_density_ppm2"] == pytest.approx(3.2)
    door = s["exits"]["door"]
    assert door["count"] == 10
    assert door["first_s"] == 3.0
    assert door["last_s"] == 20.0


def test_t90_rank_rounds_up_and_counts_all_agents():
    # 11 agents: 90 % is 9.9 agents, so the 10th exit time
    t = np.arange(1.0, 12.0)
    assert _summary(np.zeros(11, int), t, exit_ids=["d"])["t90_s"] == 10.0
    # 20 agents: exactly 18
    t = np.arange(1.0, 21.0)
    assert _summary(np.zeros(20, int), t, exit_ids=["d"])["t90_s"] == 18.0


def test_remaining_agents_give_null_evacuation_time():
    idx = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, -1])
    t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, np.nan])
    s = _summary(idx, t)
    assert s["evacuated"] == 9
    assert s["remaining"] == 1
    assert s["evacuation_time_s"] is None
    assert s["t90_s"] == 9.0  # 9 of 10 did leave
    idx[8], t[8] = -1, np.nan
    s = _summary(idx, t)
    assert s["t90_s"] is None  # only 8 of 10 ever left
    assert s["evacuation_time_s"] is None
    text = json.dumps(s, allow_nan=False)
    assert _no_nan_json(text)["t90_s"] is None


def test_exit_without_passages_and_no_agents():
    s = _summary([0, 0], [1.0, 2.0], exit_ids=["a", "b"], dens=float("nan"))
    assert s["exits"]["b"] == {"count": 0, "first_s": None, "last_s": None, "flow_pps": None}
    assert s["max_density_ppm2"] is None
    json.dumps(s, allow_nan=False)
    empty = _summary([], [], exit_ids=["a"])
    assert empty["agents"] == 0
    assert empty["evacuation_time_s"] is None
    assert empty["t90_s"] is None


def test_flow_pps_by_hand():
    # evenly spaced passages 0.4 s apart: exactly 2.5 P/s
    assert exit_flow_pps(3.0 + 0.4 * np.arange(10)) == pytest.approx(2.5)
    # m = 5: r10 = ceil(0.5) = 1, r90 = ceil(4.5) = 5 -> (5 - 1) / (11 - 1)
    assert exit_flow_pps(np.array([7.0, 1.0, 11.0, 2.0, 4.0])) == pytest.approx(0.4)
    # m = 20, t_i = i^2 (i = 1..20): r10 = 2, r90 = 18 -> 16 / (324 - 4)
    assert exit_flow_pps(np.arange(1, 21, dtype=float) ** 2) == pytest.approx(16 / 320)
    # m = 2: r10 = 1, r90 = 2
    assert exit_flow_pps(np.array([5.0, 7.0])) == pytest.approx(0.5)
    assert exit_flow_pps(np.array([5.0])) is None
    assert exit_flow_pps(np.array([])) is None
    assert exit_flow_pps(np.array([5.0, 5.0, 5.0])) is None  # all in one step: no time span


def test_flow_pps_in_summary_per_exit():
    idx = np.array([0, 1] * 10)
    t = np.where(idx == 0, 0.0, 100.0) + np.repeat(np.arange(10.0), 2) * np.where(idx == 0, 0.5, 2.0)
    s = _summary(idx, t, simulated_s=200.0)
    assert s["exits"]["a"]["flow_pps"] == pytest.approx(2.0)
    assert s["exits"]["b"]["flow_pps"] == pytest.approx(0.5)
    assert s["exits"]["a"]["count"] == s["exits"]["b"]["count"] == 10


def test_summary_rejects_inconsistent_arrays():
    with pytest.raises(ValueError, match="exit_time"):
        _summary([0, -1], [np.nan, np.nan], exit_ids=["a"])
    with pytest.raises(ValueError, match="expected NaN"):
        _summary([0, -1], [1.0, 2.0], exit_ids=["a"])
    with pytest.raises(ValueError, match="exit_index"):
        _summary([0, 2], [1.0, 2.0], exit_ids=["a"])
    with pytest.raises(ValueError, match="simulated_s"):
        _summary([0], [150.0], exit_ids=["a"], simulated_s=100.0)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        crowd_summary(
            agents=3,
            exit_index=np.zeros(2, int),
            exit_time=np.zeros(2),
            exit_ids=["a"],
            simulated_s=1.0,
            density_max_ppm2=None,
        )


def test_json_safe():
    out = json_safe(
        {"a": np.float32(1.5), "b": np.nan, "c": [np.int64(3), np.inf, (1, 2)], "d": np.bool_(True)}
    )
    assert out == {"a": 1.5, "b": None, "c": [3, None, [1, 2]], "d": True}
    assert type(out["c"][0]) is int
    with pytest.raises(TypeError, match="object"):
        json_safe({"x": object()})


# -- local density ---------------------------------------------------------------------------------------------------
def test_local_density_matches_brute_force():
    rng = np.random.default_rng(7)
    pos = rng.uniform(0, 6, (300, 2))
    lev = rng.integers(0, 3, 300)
    pos[:5] = [1.0, 1.0]  # coincident agents, also on different levels
    lev[:5] = [0, 0, 0, 1, 2]
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    same = lev[:, None] == lev[None]
    for r in (1.0, 0.5):
        ref = ((d <= r) & same).sum(axis=1) / (math.pi * r * r)
        np.testing.assert_allclose(local_density(pos, lev, radius_m=r), ref)


# -- synthetic walk --------------------------------------------------------------------------------------------------
def _walk(n=12, frames=21, dt=0.5, vx=1.2):
    """n agents walking +x at vx m/s from x0 in [0, 3), lanes 0.6 m apart; leave at x >= 10 through exit 0
    (level 0) or 1 (level 1). Yields (t, arrays) per frame."""
    x0 = np.linspace(0.0, 3.0, n, endpoint=False)
    y = 0.5 + 0.6 * np.arange(n)
    lev = (np.arange(n) % 2).astype(np.int32)
    for f in range(frames):
        t = f * dt
        x = x0 + vx * t
        gone = x >= 10.0
        state = np.where(gone, 3, 1).astype(np.int8)
        yield (
            t,
            dict(
                positions=np.column_stack([x, y]),
                velocities=np.column_stack([np.where(gone, 0.0, vx), np.zeros(n)]),
                levels=lev,
                z=lev * 3.5,
                state=state,
                exit_index=np.where(gone, lev, -1).astype(np.int32),
            ),
        )


def test_trajectory_recorder_columns_dtypes_and_round_trip(tmp_path):
    rec = TrajectoryRecorder(level_names=["Ground floor", "Level 1"])
    expected_rows = 0
    for t, a in _walk():
        expected_rows += int((a["state"] != 3).sum())
        rec.record(t, **{k: v for k, v in a.items() if k != "exit_index"}, ids=np.arange(100, 112))
    assert len(rec) == expected_rows
    assert rec.frames == 21
    df = rec.to_frame()
    assert list(df.columns) == ["t_s", "agent_id", "x_m", "y_m", "z_m", "storey", "speed_mps", "state"]
    assert (df["x_m"] < 10.0).all()  # evacuated rows are not kept
    assert set(df["state"].astype(str)) == {"walking"}
    assert list(df["state"].cat.categories) == list(STATE_NAMES)
    assert list(df["storey"].cat.categories) == ["Ground floor", "Level 1"]
    row = df[(df["agent_id"] == 103) & (df["t_s"] == 2.0)].iloc[0]
    assert row["x_m"] == pytest.approx(0.75 + 2.4)
    assert row["y_m"] == pytest.approx(0.5 + 1.8)
    assert row["z_m"] == 3.5
    assert row["storey"] == "Level 1"
    assert row["speed_mps"] == pytest.approx(1.2)

    path = rec.write(tmp_path / "crowd_trajectories.parquet")
    back = pq.read_table(path).to_pandas()
    assert str(back["t_s"].dtype) == "float64"
    assert str(back["agent_id"].dtype) == "int64"
    for c in ("x_m", "y_m", "z_m", "speed_mps"):
        assert str(back[c].dtype) == "float64"
    assert isinstance(back["storey"].dtype, pd.CategoricalDtype)
    assert isinstance(back["state"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(back, df)


def test_trajectory_recorder_copies_and_validates():
    rec = TrajectoryRecorder(level_names=["L0"])
    pos = np.zeros((2, 2))
    args = dict(
        velocities=np.zeros((2, 2)), levels=np.zeros(2, np.int32), z=np.zeros(2), state=np.ones(2, np.int8)
    )
    rec.record(0.0, positions=pos, **args)
    pos[:] = 5.0  # the core's views change in place
    assert (rec.to_frame()["x_m"] == 0.0).all()
    with pytest.raises(ValueError, match="non-decreasing"):
        rec.record(-1.0, positions=pos, **args)
    with pytest.raises(ValueError, match=r"positions must be \(n, 2\)"):
        rec.record(1.0, positions=np.zeros((2, 3)), **args)
    with pytest.raises(ValueError, match="levels must be in 0..0"):
        rec.record(1.0, positions=pos, **{**args, "levels": np.array([0, 1], np.int32)})
    with pytest.raises(ValueError, match="unique"):
        TrajectoryRecorder(level_names=["a", "a"])
    empty = TrajectoryRecorder(level_names=["a"]).to_frame()
    assert len(empty) == 0
    assert list(empty.columns) == ["t_s", "agent_id", "x_m", "y_m", "z_m", "storey", "speed_mps", "state"]


def test_pedpy_reads_trajectories_and_agrees(tmp_path):
    rec = TrajectoryRecorder(level_names=["L0", "L1"])
    for t, a in _walk():
        rec.record(t, **{k: v for k, v in a.items() if k != "exit_index"})
    path = rec.write(tmp_path / "crowd_trajectories.parquet")
    df = rec.to_frame()

    traj = to_pedpy(path, frame_rate=2.0)
    assert isinstance(traj, pedpy.TrajectoryData)
    assert traj.frame_rate == 2.0
    assert traj.number_pedestrians == 12
    assert len(traj.data) == len(df)
    assert to_pedpy(df).frame_rate == pytest.approx(2.0)  # inferred from the recording interval

    # PedPy's own speed: every agent walks 1.2 m/s in a straight line
    speed = pedpy.compute_individual_speed(traj_data=traj, frame_step=2)
    assert len(speed) > 0
    np.testing.assert_allclose(speed["speed"].to_numpy(), 1.2, rtol=1e-9)

    # PedPy's classic density in a measurement area equals our count / area per frame (one storey)
    traj0 = to_pedpy(path, frame_rate=2.0, storey="L0")
    area = pedpy.MeasurementArea(shapely.box(2.0, 0.0, 6.0, 8.0))
    dens = pedpy.compute_classic_density(traj_data=traj0, measurement_area=area)
    d0 = df[df["storey"] == "L0"]
    inside = d0[(d0.x_m > 2.0) & (d0.x_m < 6.0) & (d0.y_m > 0) & (d0.y_m < 8.0)]
    ref = inside.groupby("t_s").size().reindex(sorted(d0["t_s"].unique()), fill_value=0) / 32.0
    got = dens["density"].to_numpy()
    np.testing.assert_allclose(got, ref.to_numpy()[: len(got)])
    assert got.max() > 0


def test_to_pedpy_errors(tmp_path):
    df = pd.DataFrame({"t_s": [0.0, 0.3], "agent_id": [1, 1], "x_m": [0.0, 1.0], "y_m": [0.0, 0.0]})
    with pytest.raises(InputError, match="not on the grid"):
        to_pedpy(df, frame_rate=2.0)
    with pytest.raises(InputError, match="missing trajectory columns"):
        to_pedpy(df.drop(columns="y_m"), frame_rate=2.0)
    dup = pd.DataFrame({"t_s": [0.0, 0.0], "agent_id": [1, 1], "x_m": [0.0, 1.0], "y_m": [0.0, 0.0]})
    with pytest.raises(InputError, match="appears twice"):
        to_pedpy(dup, frame_rate=2.0)
    with pytest.raises(InputError, match="cannot read"):
        to_pedpy(tmp_path / "missing.parquet", frame_rate=2.0)
    df.drop(columns="x_m").to_parquet(tmp_path / "no_x.parquet")
    with pytest.raises(InputError, match=r"no_x.parquet: missing trajectory columns \['x_m'\]"):
        to_pedpy(tmp_path / "no_x.parquet", frame_rate=2.0)


# -- KPIs ------------------------------------------------------------------------------------------------------------
def test_kpi_recorder_values_and_table(tmp_path):
    kr = KpiRecorder(exit_ids=["east0", "east1"])
    last = None
    for t, a in _walk():
        last = kr.record(t, **{k: v for k, v in a.items() if k != "z"})
    # at t = 10 s every x0 + 12 >= 10: all agents have left, 6 through each exit
    assert last["evacuated"] == 12
    assert last["inside"] == 0
    assert last["exit_count:east0"] == 6
    assert last["exit_count:east1"] == 6
    assert math.isnan(last["mean_speed_mps"])
    df = kr.to_frame()
    assert list(df.columns) == ["t_s", "kpi", "value"]
    assert str(df["t_s"].dtype) == "float64"
    assert str(df["value"].dtype) == "float64"
    first = df[df["t_s"] == 0.0].set_index("kpi")["value"]
    assert first["inside"] == 12
    assert first["walking"] == 12
    assert first["waiting"] == 0
    assert first["mean_speed_mps"] == pytest.approx(1.2)
    # at t = 0 neighbours on one level are 1.3 m apart: each agent is alone in its 1 m disc
    _, a0 = next(_walk())
    ref = local_density(a0["positions"], a0["levels"]).max()
    assert first["max_density_ppm2"] == pytest.approx(ref)
    assert ref == pytest.approx(1 / math.pi)
    assert kr.max_density_ppm2 == pytest.approx(df[df.kpi == "max_density_ppm2"]["value"].max())
    ev = df[df.kpi == "evacuated"]["value"].to_numpy()
    assert (np.diff(ev) >= 0).all()
    kr.add(10.0, "traffic:arrived", 5)
    assert kr.to_frame().iloc[-1].tolist() == [10.0, "traffic:arrived", 5.0]
    back = pq.read_table(kr.write(tmp_path / "kpis.parquet")).to_pandas()
    assert back["kpi"].astype(str).tolist() == kr.to_frame()["kpi"].tolist()
    np.testing.assert_array_equal(back["value"].to_numpy(), kr.to_frame()["value"].to_numpy())


# -- events ----------------------------------------------------------------------------------------------------------
def test_events_table_sorted_with_json_details(tmp_path):
    ev = EventLog()
    ev.add(60.0, "fire", "scenario", {"building": "office", "space": "Room 2.04"})
    ev.add(30.0, "alarm", "scenario")
    ev.add(61.5, "corridor_blocked", "fire", {"hrr_kw": np.float32(250.0), "visibility_m": np.nan})
    df = events_table(ev)
    assert df["t_s"].tolist() == [30.0, 60.0, 61.5]
    assert df["type"].tolist() == ["alarm", "fire", "corridor_blocked"]
    assert json.loads(df["details"][1]) == {"building": "office", "space": "Room 2.04"}
    assert _no_nan_json(df["details"][2]) == {"hrr_kw": 250.0, "visibility_m": None}
    back = pq.read_table(write_events(ev, tmp_path / "events.parquet")).to_pandas()
    assert list(back.columns) == ["t_s", "type", "source", "details"]
    assert back["details"].tolist() == df["details"].tolist()
    dicts = events_table([{"t_s": 1, "type": "x", "source": "s"}])
    assert dicts["details"].tolist() == ["{}"]
    with pytest.raises(ValueError, match="lacks"):
        events_table([{"t_s": 1, "type": "x"}])


# -- density maps ----------------------------------------------------------------------------------------------------
def test_density_map_against_histogram2d(tmp_path):
    rng = np.random.default_rng(11)
    dm = DensityMap(level_names=["g", "u"], bounds=[-2.0, 1.0, 8.0, 6.0], cell_m=1.0)
    assert (dm.nx, dm.ny) == (10, 5)
    ref_as = np.zeros((2, 5, 10))
    ref_max = np.zeros((2, 5, 10))
    outside = 0.0
    for _ in range(6):
        pos = rng.uniform([-3.0, 0.0], [9.0, 7.0], (80, 2))
        lev = rng.integers(0, 2, 80)
        state = rng.integers(0, 4, 80).astype(np.int8)
        dm.add(pos, lev, dt_s=0.5, state=state)
        keep = state != 3
        for L in (0, 1):
            sel = keep & (lev == L)
            h, _, _ = np.histogram2d(pos[sel, 1], pos[sel, 0], bins=[dm.y_edges, dm.x_edges])
            ref_as[L] += h * 0.5
            ref_max[L] = np.maximum(ref_max[L], h)
        ok = (pos[:, 0] >= -2) & (pos[:, 0] < 8) & (pos[:, 1] >= 1) & (pos[:, 1] < 6)
        outside += float((keep & ~ok).sum()) * 0.5
    np.testing.assert_allclose(dm.agent_seconds, ref_as)
    np.testing.assert_allclose(dm.max_density_ppm2, ref_max)
    np.testing.assert_allclose(dm.mean_density_ppm2, ref_as / 3.0)
    assert dm.outside_agent_s == pytest.approx(outside)
    assert dm.duration_s == 3.0

    back = DensityMap.load(dm.save(tmp_path / "density_maps.npz"))
    assert back.level_names == ["g", "u"]
    np.testing.assert_array_equal(back.agent_seconds, dm.agent_seconds)
    np.testing.assert_array_equal(back.max_density_ppm2, dm.max_density_ppm2)
    np.testing.assert_array_equal(back.x_edges, dm.x_edges)
    assert back.duration_s == 3.0

    half = DensityMap(level_names=["g"], bounds=[0, 0, 2, 2], cell_m=0.5)
    half.add(np.array([[0.1, 0.1], [0.2, 0.2]]), np.zeros(2, int), dt_s=1.0)
    assert half.max_density_ppm2[0, 0, 0] == 8.0  # 2 persons in 0.25 m²
    with pytest.raises(InputError, match="cannot read"):
        DensityMap.load(tmp_path / "nope.npz")


# -- provenance and the results folder -------------------------------------------------------------------------------
def test_git_revision_of_the_source_tree():
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    rev = git_revision()
    assert rev is not None
    assert rev.removesuffix("-dirty") == head.stdout.strip()


def test_git_revision_none_outside_a_repository(tmp_path):
    assert git_revision(tmp_path) is None


def test_provenance_hashes_inputs(tmp_path):
    f = tmp_path / "model.ifc"
    f.write_bytes(b"ISO-10303-21;\n" * 1000)
    prov = provenance(
        {"name": "x", "seed": 5, "city": {"buildings": [{"ifc": str(f)}]}, "note": "relative.txt"}
    )
    assert prov["seed"] == 5
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["pandas"] == pd.__version__
    assert prov["inputs"] == [
        {"path": str(f), "size_bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    ]


def _full_run(tmp_path):
    inp = tmp_path / "area.wkt"
    inp.write_text("POLYGON ((0 0, 10 0, 10 8, 0 8, 0 0))")
    traj = TrajectoryRecorder(level_names=["L0", "L1"])
    kpi = KpiRecorder(exit_ids=["east0", "east1"])
    dm = DensityMap(level_names=["L0", "L1"], bounds=[0, 0, 10, 8])
    exit_time = np.full(12, np.nan)
    exit_index = np.full(12, -1)
    for t, a in _walk():
        traj.record(t, **{k: v for k, v in a.items() if k != "exit_index"})
        kpi.record(t, **{k: v for k, v in a.items() if k != "z"})
        dm.add(a["positions"], a["levels"], dt_s=0.5, state=a["state"])
        new = (a["exit_index"] >= 0) & (exit_index < 0)
        exit_index[new], exit_time[new] = a["exit_index"][new], t
    ev = EventLog()
    ev.add(0.0, "alarm", "scenario")
    crowd = crowd_summary(
        agents=12,
        exit_index=exit_index,
        exit_time=exit_time,
        exit_ids=["east0", "east1"],
        simulated_s=10.0,
        density_max_ppm2=kpi.max_density_ppm2,
    )
    scenario = {
        "name": "walk",
        "seed": 42,
        "duration_s": 10.0,
        "city": {"areas": [{"id": "hall", "file": str(inp)}]},
    }
    return dict(
        scenario_resolved=scenario,
        summary={"crowd": crowd},
        wall_time_s=0.25,
        simulated_s=10.0,
        trajectories=traj,
        kpis=kpi,
        events=ev,
        density=dm,
    )


def test_write_results_folder(tmp_path):
    out = tmp_path / "run"
    kw = _full_run(tmp_path)
    full = write_results(out, **kw, report=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "crowd_trajectories.parquet",
        "density_maps.npz",
        "events.parquet",
        "kpis.parquet",
        "scenario.yaml",
        "summary.json",
    ]
    s = _no_nan_json((out / "summary.json").read_text())
    assert s == full
    assert list(s)[:6] == ["scenario", "seed", "twin_version", "git_revision", "wall_time_s", "simulated_s"]
    assert s["scenario"] == "walk"
    assert s["seed"] == 42
    assert s["wall_time_s"] == 0.25
    assert s["simulated_s"] == 10.0
    assert s["git_revision"].removesuffix("-dirty") == git_revision().removesuffix("-dirty")
    assert s["crowd"]["evacuated"] == 12
    assert s["crowd"]["exits"]["east0"]["count"] == 6
    assert s["provenance"]["inputs"][0]["path"].endswith("area.wkt")
    assert yaml.safe_load((out / "scenario.yaml").read_text()) == kw["scenario_resolved"]
    traj = pq.read_table(out / "crowd_trajectories.parquet").to_pandas()
    pd.testing.assert_frame_equal(traj, kw["trajectories"].to_frame())
    assert len(pq.read_table(out / "events.parquet")) == 1
    assert not list(out.glob(".*.tmp"))

    with pytest.raises(ValueError, match="metadata keys"):
        write_results(out, scenario_resolved={}, summary={"seed": 1}, report=False)


def test_failed_write_leaves_previous_files_and_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "run"
    kw = _full_run(tmp_path)
    write_results(out, **kw, report=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # a table pyarrow cannot convert: the kpis file is not touched, and no temp file is left
    bad = pd.DataFrame({"t_s": [0.0, 1.0], "kpi": ["a", "b"], "value": [1.0, object()]})
    with pytest.raises(Exception, match="object"):
        write_results(out, **{**kw, "kpis": bad}, report=False)
    assert (out / "kpis.parquet").read_bytes() == before["kpis.parquet"]
    assert (out / "summary.json").read_bytes() == before["summary.json"]

    # a writer that dies half way through a file
    import twin.city.layer as layer

    def half_write(table, where, *a, **k):
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(layer.pq, "write_table", half_write)
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        write_results(fresh, **kw, report=False)
    assert not (fresh / "crowd_trajectories.parquet").exists()
    assert not (fresh / "summary.json").exists()
    assert [p.name for p in fresh.iterdir()] == ["scenario.yaml"]
    monkeypatch.undo()

    # a summary that JSON cannot hold: the old summary.json stays complete
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write_results(out, **{**kw, "summary": {"crowd": {"x": object()}}}, report=False)
    assert (out / "summary.json").read_bytes() == before["summary.json"]
    assert not list(out.glob(".*.tmp"))
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
