"""The contract every city layer keeps, and the bundle file helpers layers use to save themselves.

A layer is one loaded source in the local frame: a building (IFC), the terrain (DEM), a pipe network
(EPANET/SWMM), a road network (OSM/SUMO) or a city model (CityJSON/OSM buildings). Each layer class:

- has a class attribute ``kind`` (``"building"``, ``"terrain"``, ``"pipes"``, ``"roads"``, ``"citymodel"``),
  and instance attributes ``id`` (str) and ``source`` (the path it was loaded from, str);
- ``bounds()`` → (2, 3) float64 array ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]``, metres, local frame;
- ``summary()`` → a JSON-able dict of counts and names (what ``twin info`` prints);
- ``save(directory)`` writes its tables/arrays into ``directory`` (already created, empty) and returns a
  JSON-able dict stored in the bundle manifest; ``load(directory, entry)`` (classmethod) reads them back.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from twin.typing import FloatArray


@runtime_checkable
class Layer(Protocol):
    kind: ClassVar[str]
    id: str
    source: str

    def bounds(self) -> FloatArray: ...

    def summary(self) -> dict[str, Any]: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> Layer: ...


EMPTY_BOUNDS = np.full((2, 3), np.nan)

_SOURCE_SUFFIXES = (
    ".gz",
    ".bz2",
    ".pbf",
    ".xml",
    ".osm",
    ".net",
    ".json",
    ".city",
    ".ifc",
    ".inp",
    ".tif",
    ".tiff",
)


def layer_id_from_path(path: str | os.PathLike[str]) -> str:
    """A default layer id: the file name without its (compound) suffixes, e.g. ``West-Oakland`` for
    ``West-Oakland.osm.bz2`` and ``delft`` for ``delft.city.json``."""
    name = Path(path).name
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SOURCE_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, stripped = name[: -len(suffix)], True
    return name


def bounds_of(points: FloatArray) -> FloatArray:
    """(2, 3) min/max of (n, 3) points; NaN bounds when there are none."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return EMPTY_BOUNDS.copy()
    return np.vstack([np.nanmin(pts, axis=0), np.nanmax(pts, axis=0)])


def union_bounds(boxes: Iterable[FloatArray]) -> FloatArray:
    """Union of (2, 3) boxes, ignoring NaN boxes."""
    stack = [b for b in boxes if not np.isnan(b).all()]
    if not stack:
        return EMPTY_BOUNDS.copy()
    arr = np.stack(stack)
    return np.vstack([np.nanmin(arr[:, 0], axis=0), np.nanmax(arr[:, 1], axis=0)])


# -- geometry columns -----------------------------------------------------------------------------------------------
def geoms_to_wkb(geoms: Iterable[Any]) -> list[bytes | None]:
    """shapely geometries (or None) → WKB bytes (3-D kept) for a Parquet column."""
    return [None if g is None else shapely.to_wkb(g, output_dimension=3) for g in geoms]


def wkb_to_geoms(values: Iterable[bytes | None]) -> list[Any]:
    """WKB bytes column → shapely geometries (None stays None)."""
    return [None if v is None else shapely.from_wkb(v) for v in values]


# -- atomic files ----------------------------------------------------------------------------------------------------
def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def write_table(df: pd.DataFrame | pa.Table, path: Path) -> None:
    """Write ``df`` (a DataFrame or an Arrow table) to Parquet atomically (temp file + rename)."""
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_table(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def write_arrays(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    """Write named arrays to an uncompressed ``.npz`` atomically (fast to reload)."""
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename): readers see the old file or the whole new one."""
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(text: str, path: Path) -> None:
    """Write ``text`` as UTF-8 atomically (temp file + rename)."""
    write_bytes(text.encode("utf-8"), path)


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically."""
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
