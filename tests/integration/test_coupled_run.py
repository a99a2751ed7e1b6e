"""The coupled run as an object: the same scenario and seed give identical summaries twice; events injected during
a run (a drill) are validated like scenario events and the saved scenario replays the drill exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.errors import InputError
from twin.scenario.coupled_run import CoupledRun
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]
VOLATILE = {"wall_time_s", "timing", "provenance", "git_revision"}


def office(events=(), count=8, duration=240):
    data = yaml.safe_load((ROOT / "scenarios" / "office_fire.yaml").read_text())
    data["duration_s"] = duration
    for g in data["crowd"]["groups"]:
        g["count"] = count
    data["events"] = list(events)
    data["outputs"]["report"] = False
    return Scenario.from_dict(
        data, source=ROOT / "scenarios" / "office_fire.yaml", base_dir=ROOT / "scenarios"
    )


def stable(summary):
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def test_the_same_scenario_and_seed_give_identical_summaries(tmp_path):
    events = [
        {"at_s": 0, "type": "fire", "building": "office", "space": "Room 2.07", "growth": "fast"},
        {"at_s": 30, "type": "alarm"},
    ]
    a = run_scenario(office(events), tmp_path / "a", progress=False)
    b = run_scenario(office(events), tmp_path / "b", progress=False)
    assert stable(a) == stable(b)
    assert a["fire"]["untenable_spaces"] > 0


def test_a_drill_replays_exactly(tmp_path):
    run = CoupledRun(office([{"at_s": 5, "type": "alarm"}]), live=True)
    assert set(run.parts) >= {"crowd", "smoke"}
    assert run.advance(20.0) >= 20.0
    fire = run.inject({"type": "fire", "building": "office", "space": "Room 1.07", "growth": "ultra_fast"})
    assert fire.at_s == pytest.approx(run.time_s)
    run.advance(60.0)
    run.inject({"type": "close_door", "building": "office", "door": "Main entrance"})
    run.run(progress=False)
    live = run.finish(tmp_path / "live")
    assert live["drill"]["actions"] == ["events[1]", "events[2]"]
    assert live["fire"]["fires"][0]["start_s"] == pytest.approx(fire.at_s)
    replay = run.replay_scenario()
    assert [e["type"] for e in replay["events"]] == ["alarm", "fire", "close_door"]
    again = run_scenario(
        Scenario.from_dict(replay, source="replay.yaml"), tmp_path / "replay", progress=False
    )
    assert stable(again) | {"drill": live["drill"]} == stable(live)
    # the closed main entrance was not used after it closed
    assert live["crowd"]["evacuated"] == live["crowd"]["agents"]


def test_bad_drill_actions_are_errors_naming_the_field():
    run = CoupledRun(office(), live=True)
    run.advance(10.0)
    with pytest.raises(InputError, match=r"events\[0\]\.space: no space named 'Room 9.99'"):
        run.inject({"type": "fire", "building": "office", "space": "Room 9.99"})
    with pytest.raises(InputError, match="in the past"):
        run.inject({"type": "alarm", "at_s": 1.0})
    with pytest.raises(InputError, match=r"events\[0\]\.type"):
        run.inject({"type": "meteor"})
    assert run.scenario.events == []  # nothing half-added
