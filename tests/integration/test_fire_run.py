"""A fire in the generated office through ``twin run``: smoke makes the fire room untenable first, its
neighbours later; the crowd gets the events; bad fire locations are errors naming the event field."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]


def fire_scenario(**fire):
    data = yaml.safe_load((ROOT / "scenarios" / "office_fire.yaml").read_text())
    data["duration_s"] = 240
    for g in data["crowd"]["groups"]:
        g["count"] = 10
    data["events"][0].update(fire)
    data["outputs"]["report"] = False
    return Scenario.from_dict(
        data, source=ROOT / "scenarios" / "office_fire.yaml", base_dir=ROOT / "scenarios"
    )


@pytest.fixture(scope="module")
def fire_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fire")
    summary = run_scenario(fire_scenario(), out, progress=False)
    return summary, out


def test_the_fire_room_becomes_untenable_first_then_the_corridor(fire_run):
    summary, out = fire_run
    fire = summary["fire"]
    since = fire["untenable_since_s"]
    assert fire["fires"][0]["space"] == "Room 2.07"
    assert min(since, key=since.get) == "office/Room 2.07"
    assert since["office/Room 2.07"] < since["office/Corridor 2"]
    # storey 1 gets no smoke in 4 minutes (smoke rises)
    assert not any(k.startswith("office/Room 1.") for k in since)
    ev = pd.read_parquet(out / "events.parquet")
    untenable = ev[ev["type"] == "space_untenable"]
    assert json.loads(untenable["details"].iloc[0])["space"] == "Room 2.07"
    assert untenable["t_s"].iloc[0] == pytest.approx(since["office/Room 2.07"])
    state = pd.read_parquet(out / "smoke_state.parquet")
    room = state[state["name"] == "Room 2.07"].sort_values("t_s")
    # the layer comes down from the ceiling (3.3 m) below head height while the fire grows
    assert room["layer_height_m"].iloc[0] > 3.0
    assert room.loc[room["t_s"] <= since["office/Room 2.07"] + 10, "layer_height_m"].min() < 2.0
    assert summary["crowd"]["evacuated"] == summary["crowd"]["agents"] == 20
    assert summary["timing"]["model_wall_s"]["smoke"] > 0


@pytest.mark.parametrize(
    ("fire", "message"),
    [
        ({"space": "Room 9.99"}, r"events\[0\]\.space: building 'office' has no space 'Room 9.99'"),
        ({"building": "depot"}, r"events\[0\]\.building: no building 'depot'"),
    ],
)
def test_a_fire_where_nothing_is_is_an_error_naming_the_field(tmp_path, fire, message):
    with pytest.raises(InputError, match=message):
        run_scenario(fire_scenario(**fire), tmp_path, progress=False)
