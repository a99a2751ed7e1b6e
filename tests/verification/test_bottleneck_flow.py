"""Bottleneck flow through a door against laboratory data, for both crowd models with default parameters.

Set-up (VALIDATION.md, "Crowd — empirical data"), built through the scenario contract (``Scenario.from_dict`` and
``run_scenario``, what ``twin run`` does): a 10 m x 10 m room whose east wall has one door of width w, the exit
polygon a w x 1 m rectangle outside the wall (as in ``scenarios/bottleneck.yaml``); 200 RiMEA adults
(``rimea:adults`` speeds, 0.2 m radius, no pre-movement time) fill the room at 2 P/m², so a jam forms at once and
lasts while the 10th-90th percentile passages are counted. Flow = ``summary.crowd.exits.door.flow_pps``: passages
between the 10th and 90th percentile passage times (SCENARIO.md).

Asserted, per model:

* everyone leaves, through every door width (a jam that never clears is a model defect);
* a 1 m door passes 1.3-2.2 P/s (laboratory 1.5-2.0 P/s: Seyfried et al. 2009, Liao et al. 2014);
* over widths 0.8, 1.2, 1.6, 2.0 and 2.4 m the flow rises strictly with width and grows about linearly
  (Seyfried et al. 2009; Liao et al. 2014; Kretz et al. 2006): the specific flow (flow / width) stays within
  1.2-2.2 P/(m·s) at every width (laboratory 1.5-2.0; Weidmann's corridor capacity 1.22), and its largest value
  is at most 1.4 x its smallest.

Measured with the defaults: social force 1.53 P/s (seed 1) through 1 m and 1.46-1.80 P/(m·s) over
all widths; collision-free speed 2.0 P/s and 1.83-1.91 P/(m·s). Seeds are fixed; the core runs on one thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

MODELS = ("social_force", "collision_free_speed")
ROOM = 10.0  # m
AGENTS = 200
WIDTHS = (0.8, 1.2, 1.6, 2.0, 2.4)  # m
SEED = 1


def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """WKT of the rectangle [x0, x1] x [y0, y1], metres."""
    return f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


def door_scenario(model: str, width: float) -> Scenario:
    """The room with a door of ``width`` metres in the middle of its east wall, as a validated scenario."""
    c = ROOM / 2
    return Scenario.from_dict(
        {
            "name": f"bottleneck-{width:g}m",
            "seed": SEED,
            "duration_s": 600,
            "city": {
                "areas": [
                    {
                        "id": "room",
                        "walkable": box(0, 0, ROOM, ROOM),
                        "exits": [
                            {"id": "door", "polygon": box(ROOM, c - width / 2, ROOM + 1.0, c + width / 2)}
                        ],
                    }
                ]
            },
            "crowd": {
                "model": model,
                "groups": [
                    {
                        "id": "adults",
                        "count": AGENTS,
                        "in": {"area": "room"},
                        "speed_mps": "rimea:adults",
                        "premovement_s": 0,
                        "radius_m": 0.2,
                    }
                ],
            },
            "outputs": {"trajectories_every_s": 1.0, "report": False},
        }
    )


@pytest.fixture(scope="module", params=MODELS)
def flows(request, tmp_path_factory) -> dict:
    """One model's runs: width (m) → ``summary["crowd"]`` of the room emptying through a door that wide."""
    out: dict = {"model": request.param}
    for width in (1.0, *WIDTHS):
        folder: Path = tmp_path_factory.mktemp(f"{request.param}-{width:g}")
        out[width] = run_scenario(door_scenario(request.param, width), folder, progress=False)["crowd"]
    return out


def test_everyone_leaves_through_every_door(flows):
    for width in (1.0, *WIDTHS):
        crowd = flows[width]
        assert crowd["evacuated"] == crowd["agents"] == AGENTS, f"{flows['model']}, {width} m door: {crowd}"
        assert crowd["exits"]["door"]["count"] == AGENTS


def test_one_metre_door_passes_laboratory_flow(flows):
    flow = flows[1.0]["exits"]["door"]["flow_pps"]
    assert 1.3 <= flow <= 2.2, f"{flows['model']}: {flow:.3f} P/s through a 1 m door"


def test_flow_rises_about_linearly_with_width(flows):
    w = np.array(WIDTHS)
    flow = np.array([flows[x]["exits"]["door"]["flow_pps"] for x in WIDTHS])
    specific = flow / w
    what = f"{flows['model']}: flows {np.round(flow, 3).tolist()} P/s at {list(WIDTHS)} m"
    assert (np.diff(flow) > 0).all(), what
    assert ((specific >= 1.2) & (specific <= 2.2)).all(), what
    assert specific.max() <= 1.4 * specific.min(), what
