"""Bad traffic input through ``twin run``: a clear error naming the file and the element, never a crash or a run.

Issue 4: "routes over edges that do not exist or do not connect, vehicles that cannot fit, a signal programme whose
phases do not match the junction -- clear errors with the file and element". Each case is the shared grid10 network
(``$TWIN_DATA/traffic/grid10.net.xml``) with one defect, run as a scenario; the command must fail before simulating,
printing the defective file's path and the element (vehicle id, tlLogic id).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from twin.cli import main

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
GRID = DATA / "traffic" / "grid10.net.xml"

ROUTES = {
    "missing_edge": (
        '<vehicle id="ok" depart="0"><route edges="A0A1 A1A2"/></vehicle>'
        '<vehicle id="lost" depart="1"><route edges="A0A1 NOPE A2A3"/></vehicle>',
        "vehicle lost",
        "edge 'NOPE' is not in the network",
    ),
    "not_connected": (
        '<vehicle id="jump" depart="0"><route edges="A0A1 C5C6"/></vehicle>',
        "vehicle jump",
        "no connection leads from edge 'A0A1' to 'C5C6'",
    ),
    "does_not_fit": (
        '<vType id="road_train" length="400"/>'
        '<vehicle id="huge" type="road_train" depart="0"><route edges="A0A1 A1A2"/></vehicle>',
        "vehicle huge",
        "400 m long but the lanes of its first edge 'A0A1' are at most",
    ),
}


def _scenario(tmp_path: Path, net: Path, routes: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad_traffic_input\nseed: 1\nduration_s: 60\n"
        f"city:\n  roads: {{sumo_net: {net}}}\n"
        f"traffic:\n  dt_s: 1.0\n  demand:\n    routes: {routes}\n"
        "outputs:\n  report: false\n"
    )
    return path


def _run_fails(scenario: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert not (out / "summary.json").exists()  # nothing simulated, no results
    return err


@pytest.mark.parametrize("case", sorted(ROUTES))
def test_bad_routes_name_file_and_vehicle(tmp_path, capsys, case):
    body, element, what = ROUTES[case]
    routes = tmp_path / f"{case}.rou.xml"
    routes.write_text(f"<routes>{body}</routes>")
    err = _run_fails(_scenario(tmp_path, GRID, routes), tmp_path / "out", capsys)
    assert str(routes) in err
    assert element in err
    assert what in err


def _with_tls_states(tmp_path: Path, tls: str, cut: int, *, every_phase: bool) -> Path:
    """grid10 with the state strings of tlLogic ``tls`` shortened by ``cut`` characters (all phases, or only the
    first)."""
    text = GRID.read_text()
    a = text.index(f'<tlLogic id="{tls}"')
    b = text.index("</tlLogic>", a)
    block = text[a:b]
    count = 0 if every_phase else 1
    block = re.sub(r'state="([^"]*)"', lambda m: f'state="{m.group(1)[:-cut]}"', block, count=count)
    path = tmp_path / f"grid10_{tls}_{'all' if every_phase else 'one'}.net.xml"
    path.write_text(text[:a] + block + text[b:])
    return path


@pytest.mark.parametrize(
    ("every_phase", "what"),
    [
        (True, "phase states have 8 characters but the light controls 9 links"),
        (False, "phase states have different lengths"),
    ],
)
def test_signal_programme_not_matching_its_junction(tmp_path, capsys, every_phase, what):
    net = _with_tls_states(tmp_path, "A1", 1, every_phase=every_phase)
    routes = tmp_path / "ok.rou.xml"
    routes.write_text('<routes><vehicle id="ok" depart="0"><route edges="A0A1 A1A2"/></vehicle></routes>')
    err = _run_fails(_scenario(tmp_path, net, routes), tmp_path / "out", capsys)
    assert str(net) in err
    assert "tlLogic A1" in err
    assert what in err


def test_the_unbroken_inputs_run(tmp_path, capsys):
    """The same scenario without a defect runs (so the failures above come from the defects)."""
    routes = tmp_path / "ok.rou.xml"
    routes.write_text('<routes><vehicle id="ok" depart="0"><route edges="A0A1 A1A2"/></vehicle></routes>')
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path, GRID, routes)), "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").exists()
