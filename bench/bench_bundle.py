"""Bundle reload against parsing the sources, per format, on the real files in ``$TWIN_DATA``.

Prints the load time from the source, the bundle reload time and their ratio (the bundle exists so that a city is
parsed once and reloaded fast: the issue asks for "far faster").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import best_of, data_dir
from twin.city import City

SOURCES = [
    ("ifc/Duplex_A_20110907.ifc", {}),
    ("terrain/bigtujunga.tif", {}),
    ("water/BWSN_Network_2.inp", {}),
    ("sewer/EPA_Example7_DualDrainage.inp", {}),
    ("roads/BadHersfeld_osm_bbox.osm.xml.gz", {}),
    ("roads/BadHersfeld_osm_edited.net.xml.gz", {}),
    ("citymodel/delft.city.json", {}),
]


def main() -> None:
    data = data_dir()
    print(f"{'source':<42} {'layers':>6} {'parse s':>9} {'reload s':>9} {'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for rel, kwargs in SOURCES:
            path = data / rel

            def parse(path: Path = path, kwargs: dict = kwargs) -> City:
                city = City()
                city.add_file(path, **kwargs)
                return city

            t_parse, city = best_of(parse, repeat=1)
            bundle = city.save(Path(tmp) / path.name)
            t_load, _ = best_of(lambda bundle=bundle: City.load(bundle), repeat=3)
            print(f"{rel:<42} {len(city.layers):>6} {t_parse:>9.3f} {t_load:>9.3f} {t_parse / t_load:>7.1f}x")


if __name__ == "__main__":
    main()
