"""Stairs between ``city.areas`` (``city.stairs``): people on an upper area come down and the summary reports
which stairs were used, in which direction."""

from __future__ import annotations

import pytest

from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

FLOOR = "POLYGON ((0 0, 20 0, 20 4, 0 4, 0 0))"


def two_floors(**stair) -> dict:
    return {
        "name": "two-floors",
        "seed": 3,
        "duration_s": 300,
        "city": {
            "areas": [
                {
                    "id": "ground",
                    "walkable": FLOOR,
                    "z": 0,
                    "exits": [{"id": "out", "polygon": "POLYGON ((-1 1, 0 1, 0 3, -1 3, -1 1))"}],
                },
                {"id": "upper", "walkable": FLOOR, "z": 3.0},
            ],
            "stairs": [
                {
                    "id": "s1",
                    "from_area": "ground",
                    "to_area": "upper",
                    "foot": [8, 2],
                    "head": [18, 2],
                    "length_m": 11.0,
                    "width_m": 2.0,
                }
                | stair
            ],
        },
        "crowd": {
            "model": "collision_free_speed",
            "groups": [
                {"id": "up", "count": 20, "in": {"area": "upper"}, "stair_down_mps": 0.8, "premovement_s": 0}
            ],
        },
        "outputs": {"report": False},
    }


def test_upper_floor_comes_down_the_stair(tmp_path) -> None:
    data = two_floors()
    data["outputs"]["report"] = True
    crowd = run_scenario(Scenario.from_dict(data), tmp_path, progress=False)["crowd"]
    assert crowd["evacuated"] == 20
    assert crowd["stairs"] == {"s1": {"up": 0, "down": 20}}
    report = (tmp_path / "report.html").read_text()
    assert "<h3>Stairs</h3>" in report
    assert '<tr><td>s1</td><td class="num">0</td><td class="num">20</td></tr>' in report
    # nobody is faster than the stair allows: 11 m at 0.8 m/s, then 8 m on the flat at <= 1.61 m/s
    assert crowd["exits"]["out"]["first_s"] >= 11.0 / 0.8 + 8.0 / 1.61 - 0.5


def test_stair_foot_must_be_below_its_head(tmp_path) -> None:
    bad = two_floors(from_area="upper", to_area="ground")
    with pytest.raises(InputError, match=r"city\.stairs\[0\]: from_area 'upper' must be on a lower level"):
        run_scenario(Scenario.from_dict(bad), tmp_path, progress=False)
