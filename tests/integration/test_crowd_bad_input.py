"""``twin run`` on crowd scenarios that make no sense: one clear line naming the file and the field, exit code 2.

The cases of issue 3: more agents than fit their area, an exit not touching any walkable area, an area no exit can
be reached from, a building with no exit to the outside, negative speeds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import ifcopenshell
import ifcopenshell.api
import pytest
import yaml

from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "bad",
    "seed": 1,
    "duration_s": 60,
    "city": {
        "areas": [
            {
                "id": "hall",
                "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",
                "exits": [{"id": "door", "polygon": "POLYGON ((10 4.5, 11 4.5, 11 5.5, 10 5.5, 10 4.5))"}],
            }
        ]
    },
    "crowd": {
        "model": "collision_free_speed",
        "groups": [{"id": "people", "count": 20, "in": {"area": "hall"}}],
    },
    "outputs": {"report": False},
}


def _hall(d):
    return d["city"]["areas"][0]


def _group(d):
    return d["crowd"]["groups"][0]


CASES = [
    (
        "more agents than fit",
        lambda d: _group(d).update(count=800),
        "crowd.groups[0].count: 800 agents do not fit in area 'hall' (100 m², at most ~",
    ),
    (
        "exit not touching",
        lambda d: _hall(d)["exits"][0].update(polygon="POLYGON ((15 4, 16 4, 16 5, 15 5, 15 4))"),
        "city.areas[0].exits[0].polygon: exit 'door' does not touch the walkable area of 'hall' (5 m away)",
    ),
    (
        "unreachable area",
        lambda d: (
            d["city"]["areas"].append({"id": "vault", "walkable": "POLYGON ((20 0, 25 0, 25 5, 20 5, 20 0))"})
            or d["crowd"]["groups"].append({"id": "guards", "count": 2, "in": {"area": "vault"}})
        ),
        "city.areas[1]: 25.0 m² of area 'vault' (area on level 'hall+vault', of 25.0 m²) cannot reach any exit",
    ),
    (
        "negative speed",
        lambda d: _group(d).update(speed_mps=-1.3),
        "crowd.groups[0].speed_mps: must be > 0, got -1.3",
    ),
    (
        "negative speed bound",
        lambda d: _group(d).update(speed_mps={"dist": "uniform", "min": -0.4, "max": 1.2}),
        "crowd.groups[0].speed_mps.min: must be > 0, got -0.4",
    ),
    (
        "negative stair speed",
        lambda d: _group(d).update(stair_down_mps=-0.5),
        "crowd.groups[0].stair_down_mps: must be > 0, got -0.5",
    ),
]


def _run(tmp_path: Path, data: dict, capsys) -> tuple[int, str, Path]:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    return code, capsys.readouterr().err, path


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_crowd_scenario_is_one_clear_line(tmp_path, capsys, mutate, message) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    code, err, path = _run(tmp_path, data, capsys)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_building_without_exit_to_the_outside(tmp_path, capsys) -> None:
    f = ifcopenshell.open(str(ROOT / "models" / "office.ifc"))
    for door in list(f.by_type("IfcDoor")):
        ifcopenshell.api.run("root.remove_product", f, product=door)
    ifc = tmp_path / "sealed.ifc"
    f.write(str(ifc))
    data = {
        "name": "sealed",
        "duration_s": 60,
        "city": {"buildings": [{"id": "office", "ifc": str(ifc)}]},
        "crowd": {"groups": [{"id": "staff", "count": 10, "in": {"building": "office"}}]},
        "outputs": {"report": False},
    }
    code, err, _ = _run(tmp_path, data, capsys)
    assert code == 2
    assert str(ifc) in err
    assert "building 'office' has no door to the outside" in err


def test_input_read_differently_than_drawn_is_reported(tmp_path, capsys) -> None:
    """Input that runs but not as drawn is reported, not only logged: an exit region only 0.4 m deep beyond the
    door line (agents leave at its far cells) and a 1 m x 1 m exit inside the hall (its cells 0.5 m inside its
    outline: a sink of 0.2 m) each get a note on stderr and in summary.json's crowd.warnings."""
    data = copy.deepcopy(BASE)
    data["duration_s"] = 5
    _hall(data)["exits"] = [
        {"id": "door", "polygon": "POLYGON ((10 4.5, 10.4 4.5, 10.4 5.5, 10 5.5, 10 4.5))"},
        {"id": "hatch", "polygon": "POLYGON ((2 2, 3 2, 3 3, 2 3, 2 2))"},
    ]
    code, err, _ = _run(tmp_path, data, capsys)
    assert code == 0
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, err
    assert "exit 'door' reaches only 0.3" in notes[0]
    assert "exit 'hatch': only 1 of its 25 cells lie 0.50 m beyond" in notes[1]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["crowd"]["warnings"] == [n.removeprefix("note: ") for n in notes]
