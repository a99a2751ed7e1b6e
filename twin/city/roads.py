"""The road network layer: junctions, directed edges, lanes, lane-to-lane connections and traffic lights.

The model is lane-level, in the spirit of a SUMO network, so that the traffic microsimulation can run on it
whichever source it came from (OpenStreetMap through :mod:`twin.city.osm`, SUMO ``.net.xml`` through
:mod:`twin.city.sumo`). All coordinates are metres in the city's local frame.

Tables (pandas DataFrames, one row per item; ``*_index`` columns are row numbers into another table):

``junctions``
    ``id`` (str), ``x_m``, ``y_m``, ``z_m`` (float64), ``type`` (str: ``priority``, ``traffic_light``,
    ``right_before_left``, ``dead_end``, ``rail_signal``… as SUMO names them; internal junctions are not
    kept), ``tls`` (str traffic light id or None), ``response`` and ``foes`` (lists of str: SUMO's right-of-way
    logic, one bit string per request index as in ``<request index=k response=… foes=…>``, where the last
    character stands for request 0; empty when the source has none, e.g. OSM).
``edges``
    ``id`` (str), ``from_junction``, ``to_junction`` (str ids), ``from_index``, ``to_index`` (int64 rows of
    ``junctions``), ``name`` (str or None), ``highway`` (OSM highway class or None), ``type`` (SUMO edge type,
    ``"highway.<class>"`` for OSM), ``num_lanes`` (int64), ``speed_mps`` (float64, the fastest lane),
    ``length_m`` (float64 > 0), ``shape`` ((n, 2) float64 array of the centre line, metres, n ≥ 2),
    ``priority`` (int64, higher wins), ``oneway`` (bool: no edge runs the other way between the same
    junctions; for OSM the way's oneway tagging), ``osm_way`` (int64 OSM way id, -1 if unknown).
``lanes``
    ``id`` (str, ``<edge>_<index>``), ``edge`` (str), ``edge_index`` (int64 row of ``edges``), ``index``
    (int64, 0 = rightmost), ``speed_mps``, ``length_m``, ``width_m`` (float64), ``allow``, ``disallow`` (str:
    space-separated SUMO vehicle classes allowed / not allowed, both resolved, so ``allow`` alone decides),
    ``shape`` ((n, 2) float64 array, metres).
``connections``
    ``junction`` (str), ``from_edge``, ``to_edge`` (str), ``from_edge_index``, ``to_edge_index`` (int64),
    ``from_lane``, ``to_lane`` (int64 lane indices within their edges), ``via`` (str internal lane id or None),
    ``direction`` (str: ``s`` straight, ``l``/``r`` left/right, ``L``/``R`` partly left/right, ``t`` turn
    around), ``tls`` (str or None), ``link_index`` (int64 index into the signal state string, -1 if none),
    ``via_length_m``, ``via_speed_mps`` (float64: total length of the internal lane(s) the connection runs
    through and their lowest speed, -1 when the source has no internal lanes), ``request_index`` (int64: the
    connection's index in its junction's ``response``/``foes`` lists, -1 if none), ``state`` (str or None: SUMO's
    link state when no light rules it, ``M`` major, ``m`` minor, ``=`` equal, ``s`` stop, ``w`` all-way stop,
    ``O``/``o`` signal off major/minor…).
``traffic_lights``
    One row per signal programme: ``id`` (str), ``type`` (``static``, ``actuated``…, None when the source
    gives no programme), ``programme`` (str or None), ``offset_s`` (float64), ``phases`` (list of
    ``(duration_s, state, min_dur_s, max_dur_s)`` tuples; ``state`` has one character per link index),
    ``junctions`` (list of str junction ids the light controls), ``source_nodes`` (list of str OSM node ids
    tagged ``highway=traffic_signals`` that the light stands for; empty for SUMO). SUMO runs the last
    programme listed for an id.

``as_graph()`` gives the junction graph for routing (one arc per edge), ``as_turn_graph()`` the edge-based graph
of allowed turns (respects turn restrictions), ``lane_offsets()`` the CSR offsets of each edge's lanes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from twin.city.layer import bounds_of, read_table, write_table
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

# column -> kind; kinds: str, ostr (str or None), int, float, bool, shape ((n, 2) float64), list (of str), phases
JUNCTION_COLUMNS: dict[str, str] = {
    "id": "str",
    "x_m": "float",
    "y_m": "float",
    "z_m": "float",
    "type": "str",
    "tls": "ostr",
    "response": "list",
    "foes": "list",
}
EDGE_COLUMNS: dict[str, str] = {
    "id": "str",
    "from_junction": "str",
    "to_junction": "str",
    "from_index": "int",
    "to_index": "int",
    "name": "ostr",
    "highway": "ostr",
    "type": "ostr",
    "num_lanes": "int",
    "speed_mps": "float",
    "length_m": "float",
    "shape": "shape",
    "priority": "int",
    "oneway": "bool",
    "osm_way": "int",
}
LANE_COLUMNS: dict[str, str] = {
    "id": "str",
    "edge": "str",
    "edge_index": "int",
    "index": "int",
    "speed_mps": "float",
    "length_m": "float",
    "width_m": "float",
    "allow": "str",
    "disallow": "str",
    "shape": "shape",
}
CONNECTION_COLUMNS: dict[str, str] = {
    "junction": "str",
    "from_edge": "str",
    "to_edge": "str",
    "from_edge_index": "int",
    "to_edge_index": "int",
    "from_lane": "int",
    "to_lane": "int",
    "via": "ostr",
    "direction": "str",
    "tls": "ostr",
    "link_index": "int",
    "via_length_m": "float",
    "via_speed_mps": "float",
    "request_index": "int",
    "state": "ostr",
}
TLS_COLUMNS: dict[str, str] = {
    "id": "str",
    "type": "ostr",
    "programme": "ostr",
    "offset_s": "float",
    "phases": "phases",
    "junctions": "list",
    "source_nodes": "list",
}
# columns a loader may leave out (older bundles, sources without right-of-way data) and the value they then take
OPTIONAL_COLUMNS: dict[str, dict[str, Any]] = {
    "junctions": {"response": [], "foes": []},
    "connections": {"via_length_m": -1.0, "via_speed_mps": -1.0, "request_index": -1, "state": None},
}
TABLES: dict[str, dict[str, str]] = {
    "junctions": JUNCTION_COLUMNS,
    "edges": EDGE_COLUMNS,
    "lanes": LANE_COLUMNS,
    "connections": CONNECTION_COLUMNS,
    "traffic_lights": TLS_COLUMNS,
}


class Phase(NamedTuple):
    """One signal phase: ``state`` has one character per link index (SUMO codes ``G g y r`` …)."""

    duration_s: float
    state: str
    min_dur_s: float
    max_dur_s: float


class RoadGraph(NamedTuple):
    """The junction graph of a road network, ready for twin's CSR ``Graph``: one arc per edge.

    ``src``, ``dst`` : (m,) int64 junction rows (``len(junctions)`` nodes); ``length_m`` : (m,) float64 metres;
    ``edge_ids`` : (m,) object array of edge id strings. Turn restrictions are not in it (see ``TurnGraph``).
    """

    src: IntArray
    dst: IntArray
    length_m: FloatArray
    edge_ids: np.ndarray


class TurnGraph(NamedTuple):
    """The edge-based (line) graph: nodes are edges (rows of ``edges``), arcs the allowed turns between them.

    ``src``, ``dst`` : (k,) int64 edge rows, one arc per distinct (from edge, to edge) connection;
    ``length_m`` : (k,) float64 length of the ``dst`` edge in metres (the cost of entering it). Shortest paths
    on it respect turn restrictions and forbidden U-turns.
    """

    src: IntArray
    dst: IntArray
    length_m: FloatArray


def _empty_column(kind: str) -> pd.Series:
    dtype = {"int": "int64", "float": "float64", "bool": "bool"}.get(kind, object)
    return pd.Series([], dtype=dtype)


def _as_shape(value: Any) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 2)
    return np.ascontiguousarray(arr[:, :2])


def _normalise(name: str, df: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Return ``df`` with exactly ``columns`` in their documented dtypes (object columns keep None, not NaN).

    Columns of :data:`OPTIONAL_COLUMNS` that ``df`` lacks are filled with their default.
    """
    optional = {
        c: v for c, v in OPTIONAL_COLUMNS.get(name, {}).items() if c in columns and c not in df.columns
    }
    if optional:
        df = df.copy()
        for col, value in optional.items():
            df[col] = pd.Series([list(value) if isinstance(value, list) else value] * len(df), dtype=object)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}")
    out: dict[str, pd.Series] = {}
    for col, kind in columns.items():
        values = df[col]
        if len(values) == 0:
            out[col] = _empty_column(kind)
        elif kind == "int":
            out[col] = pd.Series(np.asarray(values, dtype=np.int64))
        elif kind == "float":
            out[col] = pd.Series(np.asarray(values, dtype=np.float64))
        elif kind == "bool":
            out[col] = pd.Series(np.asarray(values, dtype=bool))
        elif kind == "str":
            arr = values.to_numpy(dtype=object)
            out[col] = pd.Series([v if type(v) is str else str(v) for v in arr], dtype=object)
        elif kind == "ostr":
            arr = values.to_numpy(dtype=object)
            out[col] = pd.Series(
                [v if type(v) is str else None if v is None or v is pd.NA or v != v else str(v) for v in arr],
                dtype=object,
            )
        elif kind == "shape":
            out[col] = pd.Series([_as_shape(v) for v in values], dtype=object)
        elif kind == "list":
            out[col] = pd.Series([[str(x) for x in v] for v in values], dtype=object)
        elif kind == "phases":
            out[col] = pd.Series(
                [[Phase(float(p[0]), str(p[1]), float(p[2]), float(p[3])) for p in v] for v in values],
                dtype=object,
            )
        else:  # pragma: no cover - schema typo
            raise AssertionError(kind)
    return pd.DataFrame(out)


class RoadNetwork:
    """A lane-level road network in the local frame (see the module docstring for the tables).

    Parameters
    ----------
    id : layer id; source : the file it was loaded from; source_kind : ``"osm"`` or ``"sumo"``.
    junctions, edges, lanes, connections, traffic_lights : the tables; they are copied into their documented
        column order and dtypes.
    meta : JSON-able notes from the loader (skipped items, CRS of the source…), kept in the bundle.
    """

    kind: ClassVar[str] = "roads"

    def __init__(
        self,
        *,
        id: str,
        source: str,
        source_kind: str,
        junctions: pd.DataFrame,
        edges: pd.DataFrame,
        lanes: pd.DataFrame,
        connections: pd.DataFrame,
        traffic_lights: pd.DataFrame,
        meta: Mapping[str, Any] | None = None,
    ):
        self.id = str(id)
        self.source = str(source)
        self.source_kind = str(source_kind)
        self.junctions = _normalise("junctions", junctions, JUNCTION_COLUMNS)
        self.edges = _normalise("edges", edges, EDGE_COLUMNS)
        self.lanes = _normalise("lanes", lanes, LANE_COLUMNS)
        self.connections = _normalise("connections", connections, CONNECTION_COLUMNS)
        self.traffic_lights = _normalise("traffic_lights", traffic_lights, TLS_COLUMNS)
        self.meta: dict[str, Any] = dict(meta or {})
        self._check()

    def _check(self) -> None:
        nj, ne = len(self.junctions), len(self.edges)
        for col in ("from_index", "to_index"):
            idx = self.edges[col].to_numpy()
            if len(idx) and (idx.min() < 0 or idx.max() >= nj):
                raise ValueError(f"edges.{col} must index the {nj} junctions")
        for table, col in (
            ("lanes", "edge_index"),
            ("connections", "from_edge_index"),
            ("connections", "to_edge_index"),
        ):
            idx = getattr(self, table)[col].to_numpy()
            if len(idx) and (idx.min() < 0 or idx.max() >= ne):
                raise ValueError(f"{table}.{col} must index the {ne} edges")

    # -- lookups ---------------------------------------------------------------------------------------------------
    def edge_index(self) -> dict[str, int]:
        """Edge id → row of ``edges``."""
        return {e: i for i, e in enumerate(self.edges["id"])}

    def junction_index(self) -> dict[str, int]:
        """Junction id → row of ``junctions``."""
        return {j: i for i, j in enumerate(self.junctions["id"])}

    def lane_offsets(self) -> IntArray:
        """(num_edges + 1,) int64 CSR offsets: the lanes of edge ``e`` are rows ``offsets[e]:offsets[e+1]``.

        Lanes are stored edge by edge in edge order and lane index order, so this is a prefix sum.
        """
        return np.concatenate([[0], np.cumsum(self.edges["num_lanes"].to_numpy(dtype=np.int64))])

    # -- layer contract --------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) float64 ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]``, metres: junctions and every shape point."""
        pts = [self.junctions[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64)]
        b = bounds_of(pts[0])
        shapes = [s for s in self.edges["shape"]] + [s for s in self.lanes["shape"]]
        if shapes:
            xy = np.concatenate(shapes)
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            if np.isnan(b).all():
                b = np.array([[lo[0], lo[1], 0.0], [hi[0], hi[1], 0.0]])
            else:
                b[0, :2] = np.minimum(b[0, :2], lo)
                b[1, :2] = np.maximum(b[1, :2], hi)
        return b

    def summary(self) -> dict[str, Any]:
        """Counts, total length and speed range (JSON-able)."""
        speeds = self.lanes["speed_mps"].to_numpy()
        tls_types = self.traffic_lights.drop_duplicates("id", keep="last")["type"]
        return {
            "source_kind": self.source_kind,
            "junctions": len(self.junctions),
            "edges": len(self.edges),
            "lanes": len(self.lanes),
            "connections": len(self.connections),
            "traffic_lights": int(self.traffic_lights["id"].nunique()),
            "signal_programmes": int(self.traffic_lights["programme"].notna().sum()),
            "length_km": round(float(self.edges["length_m"].sum()) / 1000.0, 3),
            "lane_length_km": round(float(self.lanes["length_m"].sum()) / 1000.0, 3),
            "speed_min_mps": float(speeds.min()) if len(speeds) else None,
            "speed_max_mps": float(speeds.max()) if len(speeds) else None,
            "junction_types": {str(k): int(v) for k, v in self.junctions["type"].value_counts().items()},
            "traffic_light_types": {str(k): int(v) for k, v in tls_types.value_counts(dropna=False).items()},
        }

    def as_graph(self) -> RoadGraph:
        """The directed junction graph: one arc per edge from ``from_index`` to ``to_index`` weighted by length."""
        return RoadGraph(
            src=self.edges["from_index"].to_numpy(dtype=np.int64).copy(),
            dst=self.edges["to_index"].to_numpy(dtype=np.int64).copy(),
            length_m=self.edges["length_m"].to_numpy(dtype=np.float64).copy(),
            edge_ids=self.edges["id"].to_numpy(dtype=object).copy(),
        )

    def as_turn_graph(self) -> TurnGraph:
        """The turn graph over edges (see :class:`TurnGraph`), from the distinct edge pairs of ``connections``."""
        pairs = self.connections[["from_edge_index", "to_edge_index"]].to_numpy(dtype=np.int64).reshape(-1, 2)
        pairs = np.unique(pairs, axis=0) if len(pairs) else pairs
        length = self.edges["length_m"].to_numpy(dtype=np.float64)
        return TurnGraph(src=pairs[:, 0].copy(), dst=pairs[:, 1].copy(), length_m=length[pairs[:, 1]])

    # -- bundle ----------------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        """Write the tables as Parquet into ``directory``; shapes become flat ``[x0, y0, x1, y1, …]`` lists."""
        directory = Path(directory)
        for name in ("junctions", "edges", "lanes", "connections"):
            df = getattr(self, name).copy()
            if "shape" in df.columns:
                df["shape"] = [np.asarray(s, dtype=np.float64).ravel().tolist() for s in df["shape"]]
            write_table(df, directory / f"{name}.parquet")
        tl = self.traffic_lights
        write_table(tl.drop(columns=["phases"]).reset_index(drop=True), directory / "traffic_lights.parquet")
        rows = [
            (i, k, p.duration_s, p.state, p.min_dur_s, p.max_dur_s)
            for i, phases in enumerate(tl["phases"])
            for k, p in enumerate(phases)
        ]
        phases = pd.DataFrame(
            rows, columns=["programme_row", "phase", "duration_s", "state", "min_dur_s", "max_dur_s"]
        )
        phases = phases.astype({"programme_row": "int64", "phase": "int64", "state": object})
        write_table(phases, directory / "phases.parquet")
        return {"source_kind": self.source_kind, "meta": self.meta, "counts": self.summary()}

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> RoadNetwork:
        """Read a network written by :meth:`save`."""
        directory = Path(directory)
        try:
            tables = {name: read_table(directory / f"{name}.parquet") for name in TABLES}
            phases = read_table(directory / "phases.parquet")
        except (OSError, ValueError) as exc:
            raise InputError(directory, f"road network tables cannot be read ({exc})") from None
        per_row: list[list[tuple[float, str, float, float]]] = [
            [] for _ in range(len(tables["traffic_lights"]))
        ]
        for r, d, s, mn, mx in zip(
            phases["programme_row"],
            phases["duration_s"],
            phases["state"],
            phases["min_dur_s"],
            phases["max_dur_s"],
            strict=True,
        ):
            per_row[int(r)].append((d, s, mn, mx))
        tables["traffic_lights"]["phases"] = pd.Series(per_row, dtype=object)
        for name in ("junctions", "edges", "lanes", "connections", "traffic_lights"):
            df = tables[name]
            for col, kind in TABLES[name].items():
                if kind == "list" and col in df.columns:
                    df[col] = [list(v) if v is not None else [] for v in df[col]]
        return cls(
            id=str(entry.get("id", directory.name)),
            source=str(entry.get("source", "")),
            source_kind=str(entry.get("source_kind", "")),
            meta=entry.get("meta") or {},
            **tables,
        )

    def __repr__(self) -> str:
        return (
            f"RoadNetwork(id={self.id!r}, {self.source_kind}, {len(self.junctions)} junctions, "
            f"{len(self.edges)} edges, {len(self.lanes)} lanes, {len(self.connections)} connections, "
            f"{self.traffic_lights['id'].nunique()} traffic lights)"
        )


def polyline_length(xy: FloatArray) -> float:
    """Length in metres of an (n, 2) float64 polyline."""
    xy = np.asarray(xy, dtype=np.float64)
    return float(np.hypot(*np.diff(xy[:, :2], axis=0).T).sum()) if len(xy) > 1 else 0.0
