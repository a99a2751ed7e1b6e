"""The HTML report: it exists, references existing figures of the documented pixel sizes, and shows the KPIs,
the scenario and the provenance."""

from __future__ import annotations

import hashlib
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from twin.city.layer import read_arrays
from twin.scenario.report import FIGURE_SIZES, write_report
from twin.scenario.results import (
    DensityMap,
    EventLog,
    KpiRecorder,
    TrajectoryRecorder,
    crowd_summary,
    provenance,
    write_results,
)

LEVELS = ["Ground floor", "Level 1 / east"]


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _run(tmp_path: Path, *, n: int = 12, frames: int = 21, dt: float = 0.5):
    """n agents walking +x at 1.2 m/s from x0 = 0.25 i, lanes 0.6 m apart, alternating levels; they leave at
    x >= 10 through exit 'east0' (level 0) or 'east1' (level 1), observed every dt s."""
    inp = tmp_path / "hall.wkt"
    inp.write_text("POLYGON ((0 0, 10 0, 10 8, 0 8, 0 0))")
    x0 = 0.25 * np.arange(n)
    y = 0.5 + 0.6 * np.arange(n)
    lev = (np.arange(n) % 2).astype(np.int32)
    walls = np.array([[0, 0, 10, 0], [10, 0, 10, 8], [10, 8, 0, 8], [0, 8, 0, 0]] * 2, dtype=float)
    traj = TrajectoryRecorder(level_names=LEVELS)
    kpi = KpiRecorder(exit_ids=["east0", "east1"])
    dm = DensityMap(level_names=LEVELS, bounds=[0, 0, 10, 8], walls=walls, wall_levels=np.repeat([0, 1], 4))
    exit_index, exit_time = np.full(n, -1), np.full(n, np.nan)
    for f in range(frames):
        t = f * dt
        x = x0 + 1.2 * t
        gone = x >= 10.0
        a = dict(
            positions=np.column_stack([x, y]),
            velocities=np.column_stack([np.where(gone, 0.0, 1.2), np.zeros(n)]),
            levels=lev,
            state=np.where(gone, 3, 1).astype(np.int8),
        )
        ex = np.where(gone, lev, -1)
        new = gone & (exit_index < 0)
        exit_index[new], exit_time[new] = ex[new], t
        traj.record(t, z=lev * 3.5, **a)
        kpi.record(t, exit_index=ex, **a)
        dm.add(a["positions"], lev, dt_s=dt, state=a["state"])
    crowd = crowd_summary(
        agents=n,
        exit_index=exit_index,
        exit_time=exit_time,
        exit_ids=["east0", "east1"],
        simulated_s=(frames - 1) * dt,
        density_max_ppm2=kpi.max_density_ppm2,
    )
    ev = EventLog()
    ev.add(0.0, "alarm", "scenario")
    scenario = {
        "name": "walk <east>",
        "seed": 42,
        "duration_s": 10.0,
        "city": {"areas": [{"id": "hall", "file": str(inp)}]},
    }
    return dict(
        scenario_resolved=scenario,
        summary={"crowd": crowd, "traffic": {"vehicles": 10, "mean_travel_time_s": 240.125}},
        wall_time_s=0.5,
        simulated_s=(frames - 1) * dt,
        trajectories=traj,
        kpis=kpi,
        events=ev,
        density=dm,
    )


def test_report_html_references_existing_figures(tmp_path):
    out = tmp_path / "run"
    kw = _run(tmp_path)
    full = write_results(out, **kw)
    report = out / "report.html"
    assert report.is_file()
    text = report.read_text(encoding="utf-8")
    parser = _Imgs()
    parser.feed(text)
    assert "style" in parser.tags
    assert "script" not in parser.tags
    expected = {
        "figures/evacuation.png": FIGURE_SIZES["evacuation"],
        "figures/exit_flows.png": FIGURE_SIZES["exit_flows"],
        "figures/crowd_state.png": FIGURE_SIZES["crowd_state"],
        "figures/density_00_Ground-floor.png": FIGURE_SIZES["density"],
        "figures/density_01_Level-1-east.png": FIGURE_SIZES["density"],
    }
    assert sorted(parser.srcs) == sorted(expected)
    for src, size in expected.items():
        path = out / src
        assert path.is_file(), src
        assert path.stat().st_size > 5000, src
        assert _png_size(path) == size, src
        img = imread(path)
        assert img.shape[:2] == (size[1], size[0])
        assert img[..., :3].std() > 0.05, f"{src} looks blank"
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(Path(s).name for s in expected)

    # all agents left: x0 = 0 needs (10 - 0) / 1.2 = 8.33 s, seen at the 8.5 s frame; the 11th of 12 as well
    crowd = full["crowd"]
    assert crowd["evacuation_time_s"] == 8.5
    assert crowd["t90_s"] == 8.5
    assert ">8.5<" in text
    for eid, e in crowd["exits"].items():
        assert f'<td>{eid}</td><td class="num">{e["count"]}</td>' in text
        assert f">{e['flow_pps']:.2f}<" in text
    assert f">{crowd['max_density_ppm2']:.2f}<" in text
    assert ">240.1<" in text  # other sections: traffic.mean_travel_time_s
    assert "<code>traffic.vehicles</code>" in text
    # scenario (collapsed YAML), escaped
    assert "<details><summary>Resolved scenario (YAML)</summary><pre>" in text
    assert "duration_s: 10.0" in text
    assert "walk &lt;east&gt;" in text
    assert "walk <east>" not in text
    # provenance: versions and input hashes
    inp = tmp_path / "hall.wkt"
    assert hashlib.sha256(inp.read_bytes()).hexdigest() in text
    assert f"<td>numpy</td><td>{np.__version__}</td>" in text
    assert f"<td>pandas</td><td>{pd.__version__}</td>" in text
    assert full["git_revision"] in text


def test_report_from_loaded_files_with_remaining_agents(tmp_path):
    kw = _run(tmp_path, frames=15)  # stop at 7 s: agents 0..6 (x0 < 1.6 m) still inside
    out = tmp_path / "run"
    full = write_results(out, **kw, report=False)
    assert full["crowd"]["evacuation_time_s"] is None
    assert full["crowd"]["remaining"] == 7
    kpis = pd.read_parquet(out / "kpis.parquet")
    dens = read_arrays(out / "density_maps.npz")
    path = write_report(out, full, kpis, dens, kw["scenario_resolved"], full["provenance"])
    text = path.read_text(encoding="utf-8")
    assert 'evacuation_time_s</code></td><td class="num"><span class="na">n/a</span>' in text
    assert 'remaining</code></td><td class="num">7<' in text
    assert (out / "figures" / "evacuation.png").is_file()
    assert _png_size(out / "figures" / "density_01_Level-1-east.png") == FIGURE_SIZES["density"]


def test_report_without_time_series_or_maps(tmp_path):
    crowd = crowd_summary(
        agents=3,
        exit_index=np.array([0, 0, -1]),
        exit_time=np.array([4.0, 6.0, np.nan]),
        exit_ids=["door"],
        simulated_s=10.0,
        density_max_ppm2=None,
    )
    summary = {"scenario": "tiny", "seed": 1, "simulated_s": 10.0, "crowd": crowd}
    path = write_report(tmp_path, summary, None, None, None, provenance(None))
    text = path.read_text(encoding="utf-8")
    parser = _Imgs()
    parser.feed(text)
    assert parser.srcs == ["figures/exit_flows.png"]  # the flow bars need no time series
    assert _png_size(tmp_path / "figures" / "exit_flows.png") == FIGURE_SIZES["exit_flows"]
    assert not (tmp_path / "figures" / "evacuation.png").exists()
    assert ">0.50<" in text  # door: 2 passages 2 s apart
    assert "No input files." in text
    assert "<h2>Scenario</h2>" not in text
    with pytest.raises(ValueError, match="kpis_df lacks"):
        write_report(tmp_path, summary, pd.DataFrame({"t": [0.0]}), None, None, None)
