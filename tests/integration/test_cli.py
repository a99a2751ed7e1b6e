"""The ``twin`` command on real files: readable and JSON summaries, bundles, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import ifcopenshell
import pytest

from twin.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("name", ["AC20-FZK-Haus.ifc", "Duplex_A_20110907.ifc"])
def test_info_json_counts_equal_ifcopenshell(data_dir, name, capsys):
    path = data_dir / "ifc" / name
    assert main(["info", "--json", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    (layer,) = summary["layers"]
    f = ifcopenshell.open(str(path))
    assert layer["kind"] == "building"
    assert layer["storeys"] == len(f.by_type("IfcBuildingStorey"))
    assert layer["spaces"] == len(f.by_type("IfcSpace"))
    assert layer["doors"] == len(f.by_type("IfcDoor"))
    stairs = f.by_type("IfcStair")
    loose_flights = [
        fl
        for fl in f.by_type("IfcStairFlight")
        if not any(r.RelatingObject.is_a("IfcStair") for r in fl.Decomposes)
    ]
    assert layer["stairs"] == len(stairs) + len(loose_flights)
    assert summary["bounds"] is not None


def test_info_text_on_several_formats_in_one_frame(data_dir, capsys):
    files = [
        data_dir / "roads/West-Oakland.osm.bz2",
        data_dir / "water/Net1.inp",
    ]
    assert main(["info", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert "roads 'West-Oakland'" in out or "roads '" in out
    assert "pipes '" in out
    assert "EPSG:326" in out  # a UTM frame adopted from the OSM data


def test_info_json_on_dem_reports_crs_and_bounds(data_dir, capsys):
    assert main(["info", "--json", str(data_dir / "terrain/bigtujunga.tif")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["crs"] == "EPSG:32611"
    (x0, y0, _), (x1, y1, _) = summary["bounds"]
    assert x1 - x0 > 1000
    assert y1 - y0 > 1000


def test_convert_writes_a_bundle_that_info_reads_back(data_dir, tmp_path, capsys):
    out = tmp_path / "city.bundle"
    files = [
        str(data_dir / "ifc/AC20-FZK-Haus.ifc"),
        str(data_dir / "citymodel/zurich_subset_lod2.city.json"),
    ]
    assert main(["convert", *files, "--out", str(out)]) == 0
    assert (out / "manifest.json").exists()
    capsys.readouterr()
    assert main(["info", "--json", *files]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main(["info", "--json", str(out)]) == 0
    reloaded = json.loads(capsys.readouterr().out)
    assert reloaded["layers"] == direct["layers"]
    assert reloaded["crs"] == direct["crs"] == "EPSG:2056"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "nonexistent.ifc"], "nonexistent.ifc: does not exist"),
        (["info", "--crs", "EPSG:0000", "x.ifc"], "is not a known coordinate reference system"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_place_that_is_not_a_number_is_rejected(data_dir):
    result = run_cli("info", str(data_dir / "ifc/AC20-FZK-Haus.ifc"), "--place", "100,north")
    assert result.returncode == 2
    assert "--place y must be a number, got 'north'" in result.stderr
