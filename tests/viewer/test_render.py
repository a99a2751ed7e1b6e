"""Off-screen renders of the shipped scenarios against small golden images, in-place updates, movies."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pv = pytest.importorskip("pyvista")
iio = pytest.importorskip("imageio.v3")

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TWIN_UPDATE_GOLDEN") == "1"
SIZE = (320, 240)


def _compare(image: np.ndarray, name: str) -> None:
    """Mean absolute difference <= 4 grey levels and < 3 % of pixels off by more than 60 (dots may move a little
    when the models change; a missing layer, wrong camera or colours fail)."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden image {path}; run with TWIN_UPDATE_GOLDEN=1 to create it")
        iio.imwrite(path, image)
        return
    golden = iio.imread(path)
    assert golden.shape == image.shape
    diff = np.abs(golden.astype(np.int16) - image.astype(np.int16))
    off = (diff.max(axis=2) > 60).mean()
    message = f"{name}: mean diff {diff.mean():.2f}, {100 * off:.2f} % pixels off"
    assert diff.mean() <= 4.0, message
    assert off < 0.03, message


@pytest.fixture(scope="module")
def office_playback(office_results: Path):
    from twin.viewer.playback import open_results

    pb = open_results(office_results, window_size=SIZE)
    yield pb
    pb.scene.close()


def test_golden_office_building(office_playback) -> None:
    pb = office_playback
    pb.scene.set_camera("building")
    pb.scene.cut_away(1)
    pb.set_time(60.0)
    image = pb.scene.image()
    pb.scene.cut_away(None)
    _compare(image, "office_building_t60.png")


def test_golden_office_xray_changes_picture(office_playback) -> None:
    pb = office_playback
    pb.scene.set_camera("building")
    pb.set_time(60.0)
    solid = pb.scene.image()
    pb.scene.set_xray(True)
    xray = pb.scene.image()
    pb.scene.set_xray(False)
    assert np.abs(solid.astype(int) - xray.astype(int)).mean() > 1.0
    _compare(xray, "office_xray_t60.png")


def test_golden_grid10_overview(grid_results: Path, tmp_path: Path) -> None:
    from twin.viewer.render import render_still

    png = render_still(grid_results, tmp_path / "grid.png", t_s=300.0, window_size=SIZE)
    _compare(iio.imread(png), "grid10_overview_t300.png")


def test_points_update_in_place_and_match_the_table(office_results: Path, office_playback) -> None:
    """The agent layer keeps its PolyData, points array and actor across frames; the points shown at t are the
    table's rows of the last frame at or before t (reference: a pandas filter)."""
    pb = office_playback
    cloud = pb.scene.points["agents"]
    ids = (id(cloud.poly), id(cloud.actor))
    vtk_points = cloud.poly.GetPoints()
    pointer = cloud.poly.GetPoints().GetData()
    table = pd.read_parquet(office_results / "crowd_trajectories.parquet")
    for t in (0.0, 33.3, 61.0, 119.0):
        pb.set_time(t)
        assert (id(cloud.poly), id(cloud.actor)) == ids
        assert cloud.poly.GetPoints() is vtk_points
        assert cloud.poly.GetPoints().GetData() is pointer
        frame_t = table["t_s"][table["t_s"] <= t + 1e-9].max()
        rows = table[table["t_s"] == frame_t]
        assert cloud.count == len(rows)
        shown = np.asarray(cloud.poly.points[: cloud.count], dtype=np.float64)
        expected = rows[["x_m", "y_m", "z_m"]].to_numpy()
        assert np.allclose(np.sort(shown, axis=0), np.sort(expected, axis=0), atol=1e-3)
        assert cloud.poly.GetVerts().GetNumberOfCells() == len(rows)


def test_kpi_overlay_follows_the_kpi_table(office_results: Path, office_playback) -> None:
    pb = office_playback
    kpis = pd.read_parquet(office_results / "kpis.parquet")
    evac = kpis[kpis["kpi"] == "evacuated"].sort_values("t_s")
    t = 100.0
    expected = int(evac[evac["t_s"] <= t]["value"].iloc[-1])
    pb.set_time(t)
    text = pb.scene.kpi_actor.GetText(2)
    assert f"evacuated {expected} / 60" in text
    assert "active incidents 1" in text  # the fire of office_fire.yaml


def test_smoke_overlay_shows_the_fire_room(office_results: Path, office_playback) -> None:
    pb = office_playback
    pb.set_time(119.0)
    smoke = pd.read_parquet(office_results / "smoke_state.parquet")
    last = smoke[smoke["t_s"] == smoke["t_s"][smoke["t_s"] <= 119.0].max()]
    mesh, space_row, guids = pb.scene._smoke["office"]
    vis = np.asarray(mesh.cell_data["visibility_m"])
    for guid, v in zip(last["space"], last["visibility_m"], strict=True):
        cells = space_row == guids[str(guid)]
        if cells.any():
            assert np.allclose(vis[cells], min(max(v, 0.0), 30.0) if np.isfinite(v) else 30.0, atol=1e-4)
    assert vis.min() < 30.0  # some smoke after two minutes of a fast fire


def test_layer_toggle_and_terrain_opacity(grid_results: Path) -> None:
    from twin.viewer.playback import open_results

    pb = open_results(grid_results, window_size=SIZE)
    try:
        pb.set_time(300.0)
        with_roads = pb.scene.image()
        pb.scene.set_visible("roads", False)
        without = pb.scene.image()
        assert np.abs(with_roads.astype(int) - without.astype(int)).mean() > 2.0
        with pytest.raises(KeyError, match="no layer"):
            pb.scene.set_visible("nonsense", True)
    finally:
        pb.scene.close()


def test_movie_has_one_frame_per_step(office_results: Path, tmp_path: Path) -> None:
    from twin.viewer.render import render_movie

    mp4 = render_movie(office_results, tmp_path / "office.mp4", fps=5, speed=30, window_size=(160, 120))
    frames = list(iio.imiter(mp4, extension=".mp4"))
    assert len(frames) == 21  # a frame every 30 / 5 = 6 simulated seconds over 0…120 s
    assert frames[0].shape[:2] == (120, 160)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.05  # people moved


def test_bad_results_folder_is_an_input_error(tmp_path: Path) -> None:
    from twin.errors import InputError
    from twin.viewer.render import render_still

    with pytest.raises(InputError, match="no scenario.yaml"):
        render_still(tmp_path, tmp_path / "x.png")
