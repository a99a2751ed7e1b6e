"""Sweeps end to end: the same catalogue on the local pool and on a Dask LocalCluster, failing variants and
killed workers recorded, resume after a killed coordinator, atomic rows, sensitivity indices against SALib, the
report and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.cli import main
from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario
from twin.sweep import read_catalogue, run_sweep
from twin.sweep.catalogue import ROW_FILE, VOLATILE_COLUMNS
from twin.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = "tests.integration.sweep_runners"

TINY = {
    "name": "tiny",
    "seed": 1,
    "duration_s": 20,
    "city": {
        "areas": [
            {
                "id": "room",
                "walkable": "POLYGON ((0 0, 5 0, 5 5, 0 5, 0 0))",
                "exits": [{"id": "door", "polygon": "POLYGON ((5 2, 6 2, 6 3, 5 3, 5 2))"}],
            }
        ]
    },
    "crowd": {
        "model": "collision_free_speed",
        "dt_s": 0.05,
        "groups": [
            {
                "id": "occupants",
                "count": 3,
                "in": {"area": "room"},
                "speed_mps": {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.46, "max": 1.61},
                "premovement_s": {"dist": "uniform", "min": 0, "max": 2},
                "radius_m": 0.2,
            }
        ],
    },
    "events": [{"at_s": 0, "type": "alarm"}],
    "outputs": {"trajectories_every_s": 1.0, "report": False},
}


def write_sweep(folder: Path, name: str = "sweep.yaml", **keys) -> Path:
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    path = folder / name
    path.write_text(yaml.safe_dump({"base": "tiny.yaml", **keys}, sort_keys=False), encoding="utf-8")
    return path


def stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in VOLATILE_COLUMNS if c in df.columns]).reset_index(drop=True)


def test_local_and_dask_give_identical_catalogues(tmp_path):
    path = write_sweep(
        tmp_path,
        seeds=[1, 2],
        parameters={
            "crowd.groups[0].count": [3, 5],
            "crowd.groups[0].premovement_s.max": {"range": [0, 1, 1]},
        },
    )
    local = run_sweep(path, tmp_path / "local", workers=2, progress=False)
    dask = run_sweep(path, tmp_path / "dask", executor="dask", workers=2, progress=False)
    assert (local.ok, local.failed, dask.ok, dask.failed) == (8, 0, 8, 0)
    assert dask.backend.startswith("Dask LocalCluster")
    a, b = read_catalogue(tmp_path / "local"), read_catalogue(tmp_path / "dask")
    pd.testing.assert_frame_equal(stable(a), stable(b))
    assert list(a["run_index"]) == list(range(8))
    assert a["run_id"].is_unique
    assert (a["status"] == "ok").all()
    assert list(a.columns[:8]) == [
        "run_id", "run_index", "status", "error", "seed", "sample",
        "crowd.groups[0].count", "crowd.groups[0].premovement_s.max",
    ]  # fmt: skip
    assert a["crowd.evacuated"].tolist() == a["crowd.groups[0].count"].tolist()
    assert (a["work_s"] > 0).all()
    # each run is a normal results folder, and its KPIs are those of running the variant directly
    row = a.iloc[5]
    run_dir = tmp_path / "local" / "runs" / row["run_id"]
    assert {"summary.json", "crowd_trajectories.parquet", "events.parquet", ROW_FILE} <= {
        p.name for p in run_dir.iterdir()
    }
    data = json.loads(json.dumps(TINY))
    data["crowd"]["groups"][0]["count"] = int(row["crowd.groups[0].count"])
    data["crowd"]["groups"][0]["premovement_s"]["max"] = float(row["crowd.groups[0].premovement_s.max"])
    data["seed"] = int(row["seed"])
    direct = run_scenario(Scenario.from_dict(data, base_dir=tmp_path), tmp_path / "direct", progress=False)
    assert direct["crowd"]["evacuation_time_s"] == row["crowd.evacuation_time_s"]
    assert direct["crowd"]["t90_s"] == row["crowd.t90_s"]
    assert direct["crowd"]["exits"]["door"]["flow_pps"] == row["crowd.exits.door.flow_pps"]
    assert json.loads((run_dir / "summary.json").read_text())["seed"] == row["seed"]


def test_failing_variant_is_recorded_with_its_error(tmp_path, capsys):
    path = write_sweep(
        tmp_path,
        seeds=[1],
        parameters={"crowd.groups[0].count": [3, -1, 2]},
        runner=f"{RUNNERS}:analytic",
        workers=2,
    )
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "-q"]) == 1
    out = capsys.readouterr().out
    assert "2/3 runs ok, 1 failed" in out
    cat = read_catalogue(tmp_path / "out")
    assert cat["status"].tolist() == ["ok", "failed", "ok"]
    bad = cat.iloc[1]
    assert "tiny.yaml [run " in bad["error"]
    assert "crowd.groups[0].count: must be > 0, got -1" in bad["error"]
    assert pd.isna(bad["model.y"])
    assert pd.isna(cat.iloc[0]["error"])
    trace = (tmp_path / "out" / "runs" / bad["run_id"] / "error.txt").read_text()
    assert "Traceback" in trace
    assert "InputError" in trace
    assert main(["sweep", "report", str(tmp_path / "out")]) == 0
    report = capsys.readouterr().out
    assert "3 runs: 2 ok, 1 failed" in report
    assert f"{bad['run_id']}: " in report
    assert (tmp_path / "out" / "report.html").is_file()


def test_killed_worker_is_recorded_and_resume_runs_it_once(tmp_path):
    (tmp_path / "KILL").touch()
    path = write_sweep(
        tmp_path, seeds=[1, 2], parameters={"crowd.groups[0].count": [3, 4, 5]}, runner=f"{RUNNERS}:killing"
    )
    first = run_sweep(path, tmp_path / "out", workers=2, progress=False)
    assert (first.ok, first.failed, first.ran) == (4, 2, 6)
    cat = read_catalogue(tmp_path / "out")
    dead = cat[cat["crowd.groups[0].count"] == 4]
    assert (dead["status"] == "failed").all()
    assert dead["error"].str.startswith("worker process died while running this run").all()
    alive = cat[cat["crowd.groups[0].count"] != 4]
    assert (alive["status"] == "ok").all()
    before = dict(zip(alive["run_id"], alive["finished_at"], strict=True))

    (tmp_path / "KILL").unlink()
    second = run_sweep(path, tmp_path / "out", resume=True, workers=2, progress=False)
    assert (second.skipped, second.ran, second.ok, second.failed) == (4, 2, 6, 0)
    cat = read_catalogue(tmp_path / "out")
    assert len(cat) == 6
    assert cat["run_id"].is_unique
    assert sorted(cat["run_index"]) == list(range(6))
    assert (cat["status"] == "ok").all()
    kept = cat[cat["run_id"].isin(before)]
    assert dict(zip(kept["run_id"], kept["finished_at"], strict=True)) == before  # not run again


def test_killed_worker_on_dask_is_recorded(tmp_path):
    import dask
    import distributed  # noqa: F401 - its config defaults must exist before dask.config.set restores them

    (tmp_path / "KILL").touch()
    path = write_sweep(
        tmp_path, seeds=[1], parameters={"crowd.groups[0].count": [3, 4, 5]}, runner=f"{RUNNERS}:killing"
    )
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        r = run_sweep(path, tmp_path / "out", executor="dask", workers=2, progress=False)
    assert (r.ok, r.failed) == (2, 1)
    cat = read_catalogue(tmp_path / "out")
    assert cat["status"].tolist() == ["ok", "failed", "ok"]
    assert cat.iloc[1]["error"].startswith("worker process died while running this run")


def test_killed_coordinator_then_resume_completes_every_run_once(tmp_path):
    path = write_sweep(
        tmp_path,
        seeds=list(range(6)),
        parameters={"events[0].at_s": [0, 10], "crowd.groups[0].premovement_s.max": [5]},
        runner=f"{RUNNERS}:slow",
        workers=1,
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "sweep", str(path), "--out", str(out), "-q"],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group: the coordinator and its workers die together
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob(f"runs/*/{ROW_FILE}"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"runs/*/{ROW_FILE}")}
    assert 3 <= len(done) < 12
    assert not (out / "catalogue.parquet").exists()

    r = run_sweep(path, out, resume=True, progress=False)
    assert r.skipped == len(done)
    assert r.ran == 12 - len(done)
    cat = read_catalogue(out)
    assert len(cat) == 12
    assert cat["run_id"].is_unique
    assert (cat["status"] == "ok").all()
    assert sorted(cat["run_index"]) == list(range(12))
    assert cat["model.seed_echo"].tolist() == cat["seed"].tolist()
    for run_id, mtime in done.items():
        assert (out / "runs" / run_id / ROW_FILE).stat().st_mtime_ns == mtime  # kept, not re-run


def test_half_written_runs_are_not_counted_as_done(tmp_path):
    path = write_sweep(
        tmp_path, seeds=[1, 2, 3], parameters={"events[0].at_s": [1]}, runner=f"{RUNNERS}:analytic", workers=1
    )
    out = tmp_path / "out"
    run_sweep(path, out, progress=False)
    ids = read_catalogue(out)["run_id"].tolist()
    # run 0 was killed before its row was renamed into place: only a temp file and a partial summary exist
    (out / "runs" / ids[0] / ROW_FILE).rename(out / "runs" / ids[0] / f".{ROW_FILE}.x1.tmp")
    (out / "runs" / ids[0] / "summary.json").write_text('{"model": {"y"')
    # run 1's row is garbage (a disk that lost it): it counts as not done either
    (out / "runs" / ids[1] / ROW_FILE).write_bytes(b"PAR1 not really")
    r = run_sweep(path, out, resume=True, progress=False)
    assert (r.skipped, r.ran) == (1, 2)
    cat = read_catalogue(out)
    assert cat["run_id"].tolist() == ids
    assert (cat["status"] == "ok").all()
    assert not list((out / "runs" / ids[0]).glob(".*.tmp"))  # the earlier attempt's leftovers are gone
    assert json.loads((out / "runs" / ids[0] / "summary.json").read_text())["model"]["y"] > 0


def test_folder_must_be_free_or_hold_the_same_sweep(tmp_path, capsys):
    path = write_sweep(
        tmp_path, seeds=[1], parameters={"events[0].at_s": [1]}, runner=f"{RUNNERS}:analytic", workers=1
    )
    out = tmp_path / "out"
    run_sweep(path, out, progress=False)
    with pytest.raises(InputError, match="already holds a sweep; pass --resume"):
        run_sweep(path, out, progress=False)
    other = write_sweep(
        tmp_path, "other.yaml", seeds=[2], parameters={"events[0].at_s": [1]}, runner=f"{RUNNERS}:analytic"
    )
    with pytest.raises(InputError, match=r"holds a different sweep \(from .*sweep\.yaml\)"):
        run_sweep(other, out, resume=True, progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    assert main(["sweep", str(path), "--out", str(tmp_path / "junk")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_sobol_and_morris_indices_equal_salib_on_the_same_design(tmp_path):
    from SALib.analyze import morris as salib_morris
    from SALib.analyze import sobol as salib_sobol

    from tests.integration.sweep_runners import model_y
    from twin.sweep.analysis import sensitivity
    from twin.sweep.report import sweep_report

    problem = {
        "num_vars": 2,
        "names": ["events[0].at_s", "crowd.groups[0].premovement_s.max"],
        "bounds": [[0.0, 60.0], [10.0, 120.0]],
    }
    for method, n in (("sobol", 32), ("morris", 6)):
        path = write_sweep(
            tmp_path,
            f"{method}.yaml",
            seeds=[1, 2],
            overrides={"duration_s": 100},
            parameters={
                "events[0].at_s": {method: [0, 60], "n": n},
                "crowd.groups[0].premovement_s.max": {method: [10, 120]},
            },
            runner=f"{RUNNERS}:analytic",
            workers=2,
        )
        out = tmp_path / method
        r = run_sweep(path, out, progress=False)
        plan = load_sweep(path).plan
        assert (r.ok, r.failed) == (plan.total, 0)
        x = plan.design
        y = np.array([model_y(a, p) for a, p in x])
        got = sensitivity(out, kpis=["model.y"])
        assert not got.notes
        table = got.indices.set_index(["parameter", "measure"])["value"]
        if method == "sobol":
            ref = salib_sobol.analyze(problem, y, calc_second_order=False, seed=0)
            measures = ("S1", "ST")
        else:
            ref = salib_morris.analyze(problem, x, y, num_levels=4, seed=0)
            measures = ("mu_star", "sigma")
        for j, name in enumerate(problem["names"]):
            for m in measures:
                assert table[(name, m)] == pytest.approx(float(ref[m][j]), rel=1e-12, abs=1e-12)
        if method == "sobol":
            # y is dominated by the alarm time: its variance share is larger
            assert table[("events[0].at_s", "ST")] > table[("crowd.groups[0].premovement_s.max", "ST")]
        rep = sweep_report(out, kpis=["model.y"])
        assert f"sensitivity indices ({method})" in rep.text
        assert any(p.name == "sensitivity_model.y.png" for p in rep.figures)
        assert all(p.stat().st_size > 1000 for p in rep.figures)


def test_sobol_indices_are_skipped_when_a_design_point_failed(tmp_path):
    from twin.sweep.analysis import sensitivity

    path = write_sweep(
        tmp_path,
        seeds=[1],
        overrides={"duration_s": 100},
        parameters={
            "events[0].at_s": {"sobol": [-10, 60], "n": 4},
            "crowd.groups[0].premovement_s.max": {"sobol": [10, 20]},
        },
        runner=f"{RUNNERS}:analytic",
        workers=1,
    )
    r = run_sweep(path, tmp_path / "out", progress=False)
    assert r.failed > 0  # alarm times below 0 are invalid scenarios
    got = sensitivity(tmp_path / "out", kpis=["model.y"])
    assert len(got.indices) == 0
    assert f"{r.failed} of 16 design points have no value" in got.notes[0]


def test_report_plots_kpis_against_grid_parameters(tmp_path, capsys):
    path = write_sweep(
        tmp_path, seeds=[1, 2], parameters={"events[0].at_s": [0, 5, 10], "crowd.groups[0].premovement_s.max": [2, 4]},
        runner=f"{RUNNERS}:analytic", workers=2,
    )  # fmt: skip
    run_sweep(path, tmp_path / "out", progress=False)
    assert main(["sweep", "report", str(tmp_path / "out"), "--kpi", "model.y"]) == 0
    text = capsys.readouterr().out
    assert "6 runs" not in text
    assert "12 runs: 12 ok, 0 failed, 0 not run" in text
    # mean ± sd over the two seeds: the analytic y does not depend on the seed, so sd is 0
    y = f"{10 + 0.5 * 4 + 0.01 * 10 * 4:.4g} ± 0"
    assert y in text
    assert (tmp_path / "out" / "figures" / "kpi_model.y.png").stat().st_size > 1000
    html = (tmp_path / "out" / "report.html").read_text()
    assert "figures/kpi_model.y.png" in html
    assert main(["sweep", "report", str(tmp_path / "out"), "--kpi", "nope"]) == 2
    assert (
        "no KPI nope in this sweep; its KPIs: model.alarm_s, model.seed_echo, model.y"
        in capsys.readouterr().err
    )


def test_cli_rejects_bad_sweep_files_with_the_field_path(tmp_path, capsys):
    path = write_sweep(tmp_path, parameters={"crowd.groups[0].count": {"range": [1, 5, 0]}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"twin sweep: error: {path}: parameters.crowd.groups[0].count: range step 0 does not lead from 1 to 5"
    )
    assert not (tmp_path / "o").exists()
    assert main(["sweep", "report"]) == 2
    assert "needs the sweep's output folder" in capsys.readouterr().err
    assert main(["sweep", "report", str(tmp_path)]) == 2
    assert "is not a sweep folder (no sweep.json)" in capsys.readouterr().err
    ok = write_sweep(tmp_path, "ok.yaml", parameters={"crowd.groups[0].count": [2, 3, -1]})
    assert main(["sweep", str(ok), "--check"]) == 1
    out = capsys.readouterr().out
    assert "3 runs; invalid variants:" in out
    assert "crowd.groups[0].count: must be > 0, got -1" in out


def test_slurm_example_renders_a_job_script(repo_root):
    from twin.sweep.executors import slurm_cluster

    sweep = load_sweep(repo_root / "scenarios" / "sweeps" / "slurm_example.yaml")
    assert sweep.spec.executor == "slurm"
    assert sweep.plan.total == 4 * 3 * 10
    cluster = slurm_cluster(sweep.spec.cluster)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p normal", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=4", "#SBATCH -t 01:00:00",
                 "#SBATCH --exclusive", "source $HOME/twin/.venv/bin/activate", "--nworkers 4"):  # fmt: skip
        assert line in script
    with pytest.raises(InputError, match="cluster: not valid SLURMCluster options"):
        slurm_cluster({"no_such_option": 1})


def test_catalogue_assembly_unifies_columns_in_run_order(tmp_path):
    from twin.sweep.catalogue import assemble_catalogue, make_row, write_row, write_run_ids

    rows = [
        ("c3", 0, "ok", {"model": {"y": 1, "tag": "a"}}),  # y a whole number here…
        ("a1", 1, "failed", None),  # …no KPIs at all here…
        ("b2", 2, "ok", {"model": {"y": 2.5, "extra": True}}),  # …a float and a new KPI here
    ]
    for rid, index, status, summary in rows:
        row = make_row(
            run_id=rid, run_index=index, seed=index, sample=None, params=[("events[0].at_s", float(index), "float")],
            status=status, error=None if summary else "boom", summary=summary, work_s=0.5,
        )  # fmt: skip
        write_row(row, tmp_path / "runs" / rid)
    write_run_ids(["c3", "a1", "b2", "never-ran"], tmp_path)
    assemble_catalogue(tmp_path, parameters=["events[0].at_s"], batch_rows=2)
    cat = read_catalogue(tmp_path)
    assert cat["run_id"].tolist() == ["c3", "a1", "b2"]  # run order, not name order
    assert list(cat.columns) == [
        "run_id", "run_index", "status", "error", "seed", "sample", "events[0].at_s",
        "model.extra", "model.tag", "model.y", "wall_time_s", "work_s", "worker", "finished_at",
    ]  # fmt: skip
    assert cat["model.y"].tolist()[0] == 1.0
    assert pd.isna(cat["model.y"].tolist()[1])
    assert cat["model.y"].tolist()[2] == 2.5
    assert cat["model.y"].dtype == np.float64
    assert cat["error"].tolist()[1] == "boom"
