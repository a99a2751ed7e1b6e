"""Format detection and the City container's own errors (loaders are tested on real files elsewhere)."""

from __future__ import annotations

import gzip

import pytest

from twin.city import City, detect_format
from twin.city.layer import layer_id_from_path
from twin.errors import InputError


@pytest.mark.parametrize(
    ("relpath", "fmt"),
    [
        ("ifc/AC20-FZK-Haus.ifc", "ifc"),
        ("terrain/bigtujunga.tif", "dem"),
        ("water/Net1.inp", "epanet"),
        ("sewer/EPA_Example1.inp", "swmm"),
        ("sewer/EPA_Example8_CombinedSewer.inp", "swmm"),
        ("roads/West-Oakland.osm.bz2", "osm"),
        ("roads/BadHersfeld_osm_bbox.osm.xml.gz", "osm"),
        ("roads/BadHersfeld_osm_edited.net.xml.gz", "sumo_net"),
        ("traffic/grid10.net.xml", "sumo_net"),
        ("citymodel/delft.city.json", "cityjson"),
    ],
)
def test_detect_format_on_real_files(data_dir, relpath, fmt):
    assert detect_format(data_dir / relpath) == fmt


def test_detect_format_sniffs_content_without_extension(tmp_path, data_dir):
    ifc = tmp_path / "building"
    ifc.write_bytes((data_dir / "ifc/AC20-FZK-Haus.ifc").read_bytes()[:2000])
    assert detect_format(ifc) == "ifc"
    osm = tmp_path / "streets.xml"
    osm.write_text('<?xml version="1.0"?>\n<osm version="0.6"></osm>\n')
    assert detect_format(osm) == "osm"


def test_detect_format_reads_gzip_heads(tmp_path):
    p = tmp_path / "thing.inp.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("[TITLE]\n")
    with pytest.raises(InputError, match="unknown file type"):
        detect_format(p)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.ifc", None, "does not exist"),
        ("notes.txt", "hello", "unknown file type"),
        ("model.inp", "[TITLE]\nnothing\n", "neither EPANET"),
        ("data.json", '{"type": "FeatureCollection"}', "not CityJSON"),
    ],
)
def test_detect_format_errors_name_the_file(tmp_path, name, content, message):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        detect_format(p)
    assert str(p) in str(info.value)


def test_directory_without_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(InputError, match="not a twin bundle"):
        detect_format(tmp_path)
    with pytest.raises(InputError, match="not a twin bundle"):
        City.load(tmp_path)


def test_bundle_manifest_errors(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        City.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="format must be"):
        City.load(tmp_path)
    (tmp_path / "manifest.json").write_text(
        '{"format": "twin-city-bundle", "version": 1, "frame": {}, "layers": [{"kind": "spaceship", "dir": "x"}]}'
    )
    with pytest.raises(InputError, match="unknown layer kind 'spaceship'"):
        City.load(tmp_path)


def test_empty_city_saves_and_loads(tmp_path):
    city = City("EPSG:3067", origin=(385_000.0, 6_672_000.0, 0.0))
    out = city.save(tmp_path / "b")
    again = City.load(out)
    assert again.frame.crs.to_epsg() == 3067
    assert again.layers == []
    assert again.summary()["bounds"] is None


def test_save_refuses_to_overwrite_a_foreign_folder(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.txt").write_text("years of work")
    with pytest.raises(InputError, match="refusing to overwrite"):
        City().save(target)
    assert (target / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("West-Oakland.osm.bz2", "West-Oakland"),
        ("BadHersfeld_osm_edited.net.xml.gz", "BadHersfeld_osm_edited"),
        ("delft.city.json", "delft"),
        ("Net3.inp", "Net3"),
        ("AC20-FZK-Haus.ifc", "AC20-FZK-Haus"),
        ("terrain.tif", "terrain"),
        (".gz", ".gz"),
    ],
)
def test_default_layer_ids_drop_compound_suffixes(name, expected):
    assert layer_id_from_path(f"/data/{name}") == expected
