"""Every scenario in ``scenarios/`` runs with ``twin run`` and writes the results the contract promises."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_runs_and_everyone_leaves(scenario, tmp_path, capsys):
    out = tmp_path / scenario.stem
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    assert "evacuated" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    crowd = summary["crowd"]
    assert crowd["evacuated"] == crowd["agents"] > 0
    assert crowd["evacuation_time_s"] is not None
    assert crowd["t90_s"] <= crowd["evacuation_time_s"] <= summary["simulated_s"]
    assert sum(e["count"] for e in crowd["exits"].values()) == crowd["agents"]
    for name in (
        "crowd_trajectories.parquet",
        "events.parquet",
        "kpis.parquet",
        "report.html",
        "scenario.yaml",
    ):
        assert (out / name).exists(), name
    traj = pd.read_parquet(out / "crowd_trajectories.parquet")
    assert list(traj.columns) == ["t_s", "agent_id", "x_m", "y_m", "z_m", "storey", "speed_mps", "state"]
    assert traj["agent_id"].nunique() == crowd["agents"]
    assert not math.isnan(crowd["max_density_ppm2"])
