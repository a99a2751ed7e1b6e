"""``City``: the georeferenced container of every loaded layer, with format dispatch and the bundle cache."""

from __future__ import annotations

import gzip
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twin.city.frame import Frame, Placement, crs_name, parse_crs
from twin.city.layer import Layer, union_bounds, write_json
from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "twin-city-bundle"
BUNDLE_VERSION = 1

# kind -> (module, class) of the layer type, imported lazily so that `import twin.city` stays fast.
LAYER_CLASSES: dict[str, tuple[str, str]] = {
    "building": ("twin.city.building", "Building"),
    "terrain": ("twin.city.terrain", "Terrain"),
    "pipes": ("twin.city.pipes", "PipeNetwork"),
    "roads": ("twin.city.roads", "RoadNetwork"),
    "citymodel": ("twin.city.citymodel", "CityModel"),
}

# format name -> (module, loader function, layer kind)
LOADERS: dict[str, tuple[str, str, str]] = {
    "ifc": ("twin.city.ifc", "load_ifc", "building"),
    "dem": ("twin.city.dem", "load_dem", "terrain"),
    "epanet": ("twin.city.epanet", "load_epanet", "pipes"),
    "swmm": ("twin.city.swmm", "load_swmm", "pipes"),
    "osm": ("twin.city.osm", "load_osm_roads", "roads"),
    "osm_buildings": ("twin.city.osm_buildings", "load_osm_buildings", "citymodel"),
    "sumo_net": ("twin.city.sumo", "load_sumo_net", "roads"),
    "cityjson": ("twin.city.cityjson", "load_cityjson", "citymodel"),
}

_OSM_SUFFIXES = (".osm", ".osm.xml", ".osm.pbf", ".pbf", ".osm.gz", ".osm.bz2", ".osm.xml.gz", ".osm.xml.bz2")


def _read_head(path: Path, n: int = 65536) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(n).decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc})") from None


def _is_cityjson(path: Path, chunk: int = 1 << 20) -> bool:
    """True if the JSON file declares ``"type": "CityJSON"`` anywhere at its top level.

    Writers put ``"type"`` anywhere among the top-level keys (cjio often after the city objects), so the file is
    scanned in chunks (with an overlap so the key is never split) rather than parsed.
    """
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            tail = b""
            while block := fh.read(chunk):
                if _CITYJSON_TYPE.search(tail + block):
                    return True
                tail = block[-64:]
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc})") from None
    return False


_CITYJSON_TYPE = re.compile(rb'"type"\s*:\s*"CityJSON"')


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the format of ``path`` (a key of :data:`LOADERS`) from its name and, where needed, its first bytes."""
    p = Path(path)
    name = p.name.lower()
    if not p.exists():
        raise InputError(p, "does not exist")
    if p.is_dir():
        if (p / "manifest.json").exists():
            return "bundle"
        raise InputError(p, "is a directory but not a twin bundle (no manifest.json)")
    if name.endswith(".ifc"):
        return "ifc"
    if name.endswith((".tif", ".tiff", ".geotiff")):
        return "dem"
    if name.endswith((".net.xml", ".net.xml.gz")):
        return "sumo_net"
    if name.endswith(_OSM_SUFFIXES):
        return "osm"
    if name.endswith(".inp"):
        head = _read_head(p).upper()
        if "[SUBCATCHMENTS]" in head or "[CONDUITS]" in head or "[OUTFALLS]" in head:
            return "swmm"
        if "[PIPES]" in head or "[JUNCTIONS]" in head or "[RESERVOIRS]" in head:
            return "epanet"
        raise InputError(
            p, "is an .inp file with neither EPANET ([PIPES], [JUNCTIONS]) nor SWMM ([CONDUITS]) sections"
        )
    if name.endswith((".json", ".json.gz")):
        if _is_cityjson(p):
            return "cityjson"
        raise InputError(p, 'is a .json file but not CityJSON (no "type": "CityJSON")')
    head = _read_head(p, 512)
    if head.startswith("ISO-10303-21"):
        return "ifc"
    if "<osm" in head:
        return "osm"
    if "<net" in head:
        return "sumo_net"
    raise InputError(
        p,
        "unknown file type; expected .ifc, .tif (DEM), .inp (EPANET/SWMM), .osm/.osm.pbf, .net.xml or .city.json",
    )


def _layer_class(kind: str) -> type:
    module, cls = LAYER_CLASSES[kind]
    return getattr(importlib.import_module(module), cls)


class City:
    """One georeferenced city: a local metric frame and the layers loaded into it.

    Parameters
    ----------
    crs : projected CRS of the local frame (``"EPSG:3067"``…); if omitted, the first georeferenced source sets it.
    origin : (3,) origin of the local frame in ``crs`` coordinates, metres; by default the first georeferenced or
        placed source fixes it at its centre rounded to whole kilometres.
    """

    def __init__(self, crs: Any = None, origin: tuple[float, float, float] | None = None):
        self.frame = Frame(crs, origin)
        self.layers: list[Layer] = []

    # -- layer access ----------------------------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Any]:
        return [layer for layer in self.layers if layer.kind == kind]

    @property
    def buildings(self) -> dict[str, Any]:
        return {b.id: b for b in self.of_kind("building")}

    @property
    def pipes(self) -> dict[str, Any]:
        return {p.id: p for p in self.of_kind("pipes")}

    @property
    def terrain(self) -> Any | None:
        found = self.of_kind("terrain")
        return found[0] if found else None

    @property
    def roads(self) -> Any | None:
        found = self.of_kind("roads")
        return found[0] if found else None

    @property
    def citymodel(self) -> Any | None:
        found = self.of_kind("citymodel")
        return found[0] if found else None

    def get(self, kind: str, id: str) -> Any:
        for layer in self.layers:
            if layer.kind == kind and layer.id == id:
                return layer
        raise KeyError(f"no {kind} layer with id {id!r}; have {[x.id for x in self.of_kind(kind)]}")

    def add(self, layer: Layer) -> Layer:
        """Add a loaded layer. Ids are unique per kind; pipes are buried below the terrain once both exist."""
        if any(x.kind == layer.kind and x.id == layer.id for x in self.layers):
            raise InputError(
                layer.source, f"a {layer.kind} layer with id {layer.id!r} is already in the city"
            )
        if layer.kind in ("terrain", "roads", "citymodel") and self.of_kind(layer.kind):
            log.info(
                "city now has several %s layers; %s is used as the first",
                layer.kind,
                self.of_kind(layer.kind)[0].id,
            )
        self.layers.append(layer)
        terrain = self.terrain
        if terrain is not None:
            targets = (
                self.of_kind("pipes") if layer.kind == "terrain" else [layer] if layer.kind == "pipes" else []
            )
            for net in targets:
                net.bury(terrain)
        return layer

    def add_file(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        id: str | None = None,
        placement: Placement | Mapping[str, Any] | None = None,
        crs: Any = None,
    ) -> list[Layer]:
        """Load ``path`` into the city and return the layers it gave.

        ``format`` overrides detection (a key of :data:`LOADERS`). ``placement`` places sources without
        georeference; ``crs`` declares the CRS of sources whose files do not carry one (EPANET coordinates, a DEM
        without CRS). An OSM file gives its roads and, if it has any, its building footprints as a city model.
        """
        p = Path(path)
        fmt = format or detect_format(p)
        if fmt == "bundle":
            raise InputError(p, "is a bundle; open it with City.load")
        if fmt not in LOADERS:
            raise InputError(p, f"unknown format {fmt!r}; expected one of {sorted(LOADERS)}")
        if isinstance(placement, Mapping):
            placement = Placement.from_mapping(placement, source=str(p))
        src_crs = None if crs is None else parse_crs(crs, source=str(p))
        kwargs: dict[str, Any] = {"frame": self.frame, "id": id}
        if fmt in ("ifc", "dem", "epanet", "swmm", "sumo_net", "cityjson"):
            kwargs["placement"] = placement
        if fmt in ("dem", "epanet", "swmm"):
            kwargs["crs"] = src_crs
        formats = [fmt]
        if fmt == "osm" and format is None:
            formats.append("osm_buildings")
        added: list[Layer] = []
        for f in formats:
            module, func, _kind = LOADERS[f]
            loader = getattr(importlib.import_module(module), func)
            t0 = time.perf_counter()
            layer = loader(p, **kwargs)
            if layer is None:  # only the optional OSM buildings pass may find nothing
                continue
            log.info("loaded %s %s from %s in %.2f s", layer.kind, layer.id, p.name, time.perf_counter() - t0)
            added.append(self.add(layer))
        return added

    # -- summaries -------------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) bounds of all layers in the local frame, metres."""
        return union_bounds(layer.bounds() for layer in self.layers)

    def summary(self) -> dict[str, Any]:
        """Counts per layer, CRS and bounds, as JSON-able data (what ``twin info --json`` prints)."""
        b = self.bounds()
        return {
            "crs": crs_name(self.frame.crs),
            "origin": self.frame.origin.tolist(),
            "bounds": None if bool(np.isnan(b).all()) else b.tolist(),
            "layers": [self._layer_summary(layer) for layer in self.layers],
        }

    @staticmethod
    def _layer_summary(layer: Layer) -> dict[str, Any]:
        head = {"kind": layer.kind, "id": layer.id, "source": layer.source}
        return head | {k: v for k, v in layer.summary().items() if k not in head}

    # -- bundle ----------------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the city as a bundle: one folder per layer (Parquet/npz) and ``manifest.json``.

        The bundle is written into a temporary folder beside ``directory`` and moved into place at the end, so an
        interrupted save never leaves a half-written bundle; an existing bundle at ``directory`` is replaced.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not (target / "manifest.json").exists():
            raise InputError(target, "exists and is not a twin bundle; refusing to overwrite it")
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            entries = []
            for i, layer in enumerate(self.layers):
                sub = f"{i:03d}-{layer.kind}"
                (tmp / sub).mkdir()
                entry = layer.save(tmp / sub)
                entries.append(
                    {"kind": layer.kind, "id": layer.id, "source": layer.source, "dir": sub, **entry}
                )
            from twin import __version__

            write_json(
                {
                    "format": BUNDLE_FORMAT,
                    "version": BUNDLE_VERSION,
                    "twin_version": __version__,
                    "frame": self.frame.to_dict(),
                    "layers": entries,
                },
                tmp / "manifest.json",
            )
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> City:
        """Read a bundle written by :meth:`save`."""
        d = Path(directory)
        manifest_path = d / "manifest.json"
        if not manifest_path.exists():
            raise InputError(d, "is not a twin bundle (no manifest.json)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(manifest_path, f"is not valid JSON ({exc})") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise InputError(
                manifest_path, f"format must be {BUNDLE_FORMAT!r}, got {manifest.get('format')!r}"
            )
        if manifest.get("version") != BUNDLE_VERSION:
            raise InputError(
                manifest_path, f"bundle version {manifest.get('version')} is not {BUNDLE_VERSION}"
            )
        frame = manifest.get("frame", {})
        origin = frame.get("origin")
        city = cls(frame.get("crs"), None if origin is None else tuple(origin))
        for i, entry in enumerate(manifest.get("layers", [])):
            kind = entry.get("kind")
            if kind not in LAYER_CLASSES:
                raise InputError(manifest_path, f"unknown layer kind {kind!r}", element=f"layers[{i}]")
            city.layers.append(_layer_class(kind).load(d / entry["dir"], entry))
        return city


def load(*paths: str | os.PathLike[str], crs: Any = None) -> City:
    """Load files (or one bundle folder) into a new :class:`City`; the format of each is detected."""
    if len(paths) == 1 and detect_format(paths[0]) == "bundle":
        return City.load(paths[0])
    city = City(crs)
    for p in paths:
        city.add_file(p)
    return city


def load_many(sources: Iterable[str | os.PathLike[str]]) -> City:
    return load(*sources)
