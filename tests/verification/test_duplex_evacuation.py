"""Issue 3: an evacuation of ``Duplex_A_20110907.ifc`` from every storey people can be on completes with everyone out.

The Duplex has four storeys: ``T/FDN`` (foundation, no spaces), ``Level 1``, ``Level 2`` and ``Roof`` (one space,
R301, the flat green roof, which no stair, door or hatch reaches in the file). A building-wide group fills the
occupiable storeys (Level 1 and Level 2 of both dwellings, joined by each dwelling's stair) and reports the roof
as unreachable; naming the roof explicitly is an error, since nobody placed there could ever leave.
"""

from __future__ import annotations

import pytest

from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario


def duplex(data_dir, model: str, **where) -> Scenario:
    return Scenario.from_dict(
        {
            "name": f"duplex-{model}",
            "seed": 7,
            "duration_s": 300,
            "city": {"buildings": [{"id": "duplex", "ifc": str(data_dir / "ifc" / "Duplex_A_20110907.ifc")}]},
            "crowd": {
                "model": model,
                "groups": [{"id": "residents", "count": 48, "in": {"building": "duplex", **where}}],
            },
            "outputs": {"report": False, "trajectories_every_s": 1.0},
        }
    )


@pytest.mark.parametrize("model", ["social_force", "collision_free_speed"])
def test_duplex_empties_from_every_occupiable_storey(data_dir, tmp_path, model) -> None:
    summary = run_scenario(duplex(data_dir, model), tmp_path, progress=False)
    crowd = summary["crowd"]
    assert crowd["evacuated"] == crowd["agents"] == 48
    assert crowd["remaining"] == 0
    # the four exterior doors (two per dwelling: front and back)
    assert len(crowd["exits"]) == 4
    assert sum(e["count"] for e in crowd["exits"].values()) == 48
    # people started upstairs too: both dwellings' stairs were walked down, never up
    stairs = crowd["stairs"]
    assert len(stairs) == 2
    assert all(s["up"] == 0 and s["down"] > 0 for s in stairs.values())
    # the roof is reported, not silently dropped
    assert crowd["unreachable_areas"] == [
        {
            "area": "Roof",
            "level": "Roof",
            "unreachable_m2": pytest.approx(136.0, abs=2.0),
            "area_m2": pytest.approx(136.0, abs=2.0),
        }
    ]
    # a small house: everyone is out within a minute and a half
    assert crowd["evacuation_time_s"] < 90


def test_people_named_onto_the_unreachable_roof_are_an_error(data_dir, tmp_path) -> None:
    scenario = duplex(data_dir, "collision_free_speed", storeys=["Level 2", "Roof"])
    with pytest.raises(InputError, match=r"area 'Roof' .*cannot reach any exit") as exc:
        run_scenario(scenario, tmp_path, progress=False)
    assert exc.value.source.endswith("Duplex_A_20110907.ifc")
