"""``PipeNetwork``: a water (EPANET) or sewer (SWMM) network in the local frame, and the ``.inp`` section reader
both loaders use to check files line by line before they are parsed.

Tables
------
``nodes`` (one row per node, in file order):

==============  =======  ===========================================================================================
name            str      node id as in the file
type            str      junction, reservoir, tank (water); junction, outfall, storage, divider (sewer)
x_m, y_m        float64  local frame, metres
z_m             float64  local z of the pipe connection (water) or invert (sewer), metres; the file's elevation
                         moved into the frame, or after :meth:`PipeNetwork.bury` the buried depth below the terrain
elevation_m     float64  as in the file, in metres: EPANET elevation (reservoirs: total head); SWMM invert elevation
depth_m         float64  SWMM maximum depth (0 = not given); NaN for EPANET and outfalls
ground_m        float64  terrain height (local z) at the node once buried, else NaN
==============  =======  ===========================================================================================

``links``:

==============  ==========  ===========================================================================================
name, type      str         link id; pipe, pump, valve (water); conduit, pump, orifice, weir, outlet (sewer)
start, end      str         names of the end nodes (EPANET Node1/Node2, SWMM inlet/outlet)
start_index,    int64       row of the end nodes in ``nodes``
end_index
diameter_m      float64     pipe/valve diameter; SWMM: Geom1 (the diameter for CIRCULAR shapes, the full height for
                            other shapes); NaN where there is none (pumps, outlets, irregular channels)
length_m        float64     length from the file (pipes, conduits); for other links the plan length of their drawn
                            polyline in the local frame
roughness       float64     as used by the file's headloss model: Hazen-Williams C, Darcy-Weisbach absolute
                            roughness in metres (WNTR converts it), Chezy-Manning or SWMM Manning n; NaN if none
shape           str         SWMM cross-section shape (CIRCULAR, RECT_OPEN…); EPANET pipes and valves CIRCULAR; ""
vertices        list        interior polyline points ``[(x, y), …]`` in local metres between start and end
==============  ==========  ===========================================================================================
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import pyproj

from twin.city.frame import Frame, Placement, crs_name
from twin.city.layer import bounds_of, layer_id_from_path, read_table, write_table
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

NODE_COLUMNS = ["name", "type", "x_m", "y_m", "z_m", "elevation_m", "depth_m", "ground_m"]
LINK_COLUMNS = [
    "name",
    "type",
    "start",
    "end",
    "start_index",
    "end_index",
    "diameter_m",
    "length_m",
    "roughness",
    "shape",
    "vertices",
]
DEFAULT_COVER_M = 1.2
"""Soil cover above the crown of a buried pipe, metres (typical for water mains in frost-free to moderate climates)."""


class GraphArrays(NamedTuple):
    """Edges of a network for a graph: each link once, directed start → end.

    ``src``, ``dst`` : (m,) int64 node rows; ``length`` : (m,) float64 metres.
    """

    src: IntArray
    dst: IntArray
    length: FloatArray


class PipeNetwork:
    """A pipe network layer (``kind_of_network`` ``"water"`` or ``"sewer"``); see the module doc for the tables.

    Parameters
    ----------
    nodes, links : DataFrames with :data:`NODE_COLUMNS` and :data:`LINK_COLUMNS`.
    id, source : layer id and the file it came from.
    kind_of_network : ``"water"`` or ``"sewer"``.
    crs : name of the city CRS the coordinates are in (``None`` if the city has none).
    source_crs : the CRS declared for the file's coordinates, ``None`` when it was placed.
    z_offset_m : local z of a file elevation is ``elevation_m + z_offset_m`` (frame origin and placement height).
    units : the file's unit system (``"SI"`` or ``"US"``), for information.
    """

    kind: ClassVar[str] = "pipes"

    def __init__(
        self,
        nodes: pd.DataFrame,
        links: pd.DataFrame,
        *,
        id: str,
        source: str,
        kind_of_network: str,
        crs: str | None = None,
        source_crs: str | None = None,
        z_offset_m: float = 0.0,
        units: str | None = None,
    ):
        if kind_of_network not in ("water", "sewer"):
            raise ValueError(f"kind_of_network must be 'water' or 'sewer', got {kind_of_network!r}")
        missing = [c for c in NODE_COLUMNS if c not in nodes.columns]
        missing += [c for c in LINK_COLUMNS if c not in links.columns]
        if missing:
            raise ValueError(f"pipe network tables lack the columns {missing}")
        n = len(nodes)
        si = links["start_index"].to_numpy(dtype=np.int64)
        ei = links["end_index"].to_numpy(dtype=np.int64)
        if len(links) and (min(si.min(), ei.min()) < 0 or max(si.max(), ei.max()) >= n):
            raise ValueError(f"link end indices must be in [0, {n}) (rows of nodes)")
        self.nodes = nodes.reset_index(drop=True)
        self.links = links.reset_index(drop=True)
        self.id = id
        self.source = source
        self.kind_of_network = kind_of_network
        self.crs = crs
        self.source_crs = source_crs
        self.z_offset_m = float(z_offset_m)
        self.units = units

    # -- geometry ------------------------------------------------------------------------------------------------
    def node_xyz(self) -> FloatArray:
        """(n, 3) float64 node positions (x_m, y_m, z_m), local metres."""
        return self.nodes[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64)

    def _max_connected(self, values: FloatArray) -> FloatArray:
        """Per node, the largest finite ``values`` (m,) over its links; 0 where there is none."""
        out = np.zeros(len(self.nodes))
        v = np.where(np.isfinite(values), values, 0.0)
        np.maximum.at(out, self.links["start_index"].to_numpy(dtype=np.int64), v)
        np.maximum.at(out, self.links["end_index"].to_numpy(dtype=np.int64), v)
        return out

    def bury(self, terrain: Any, *, cover_m: float | None = None) -> int:
        """Put the nodes that lie on ``terrain`` below its surface; return how many were buried.

        ``terrain`` needs ``height_at(x (n,), y (n,)) -> (n,)`` in the same local frame (a :class:`Terrain`).
        Water: a node goes to ``ground − cover − d/2`` with ``d`` the largest diameter of its links (the pipe
        axis under ``cover_m``, default 1.2 m, of soil). Sewer: the invert goes to ``ground − max depth``; a node
        without a maximum depth (0 in the file, outfalls) goes to ``ground − cover − h`` with ``h`` the largest
        height of its links. ``ground_m`` records the terrain height. Nodes where the terrain has no height keep
        the elevation from the file and get ``ground_m = NaN``. Burying again starts from the file elevations.
        """
        cover = DEFAULT_COVER_M if cover_m is None else float(cover_m)
        if not np.isfinite(cover) or cover < 0:
            raise ValueError(f"cover_m must be a finite number >= 0, got {cover_m!r}")
        x = self.nodes["x_m"].to_numpy(dtype=np.float64)
        y = self.nodes["y_m"].to_numpy(dtype=np.float64)
        ground = np.asarray(terrain.height_at(x, y), dtype=np.float64)
        inside = np.isfinite(ground)
        diam = self._max_connected(self.links["diameter_m"].to_numpy(dtype=np.float64))
        if self.kind_of_network == "water":
            buried = ground - cover - diam / 2.0
        else:
            depth = self.nodes["depth_m"].to_numpy(dtype=np.float64)
            given = np.isfinite(depth) & (depth > 0)
            buried = np.where(given, ground - np.where(given, depth, 0.0), ground - cover - diam)
        from_file = self.nodes["elevation_m"].to_numpy(dtype=np.float64) + self.z_offset_m
        self.nodes["z_m"] = np.where(inside, buried, from_file)
        self.nodes["ground_m"] = np.where(inside, ground, np.nan)
        count = int(inside.sum())
        log.info(
            "%s: %d of %d nodes buried below terrain %s",
            self.id,
            count,
            len(self.nodes),
            getattr(terrain, "id", ""),
        )
        return count

    def as_graph(self) -> GraphArrays:
        """Edges for a graph: ``(src, dst, length)``, each link once from its start to its end node.

        ``src``, ``dst`` : (m,) int64 rows of :attr:`nodes`; ``length`` : (m,) float64 metres (``length_m``, or the
        straight distance between the end nodes where that is missing). Add reversed edges for undirected routing.
        """
        src = self.links["start_index"].to_numpy(dtype=np.int64).copy()
        dst = self.links["end_index"].to_numpy(dtype=np.int64).copy()
        length = self.links["length_m"].to_numpy(dtype=np.float64).copy()
        bad = ~np.isfinite(length)
        if bad.any():
            xyz = self.node_xyz()
            length[bad] = np.linalg.norm(xyz[dst[bad], :2] - xyz[src[bad], :2], axis=1)
        return GraphArrays(src, dst, length)

    # -- layer contract ------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) float64 bounds of nodes and link vertices, local metres."""
        b = bounds_of(self.node_xyz())
        verts = [v for vs in self.links["vertices"] for v in vs]
        if verts and not np.isnan(b).all():
            xy = np.asarray(verts, dtype=np.float64)
            b[0, :2] = np.minimum(b[0, :2], xy.min(axis=0))
            b[1, :2] = np.maximum(b[1, :2], xy.max(axis=0))
        return b

    def summary(self) -> dict[str, Any]:
        """Counts by node and link type, total length, diameter range, network kind, buried node count."""
        d = self.links["diameter_m"].to_numpy(dtype=np.float64)
        d = d[np.isfinite(d) & (d > 0)]
        return {
            "network": self.kind_of_network,
            "nodes": len(self.nodes),
            "links": len(self.links),
            "node_types": {str(k): int(v) for k, v in self.nodes["type"].value_counts(sort=False).items()},
            "link_types": {str(k): int(v) for k, v in self.links["type"].value_counts(sort=False).items()},
            "total_length_km": float(np.nansum(self.links["length_m"].to_numpy(dtype=np.float64)) / 1000.0),
            "diameter_range_m": [float(d.min()), float(d.max())] if len(d) else None,
            "buried_nodes": int(np.isfinite(self.nodes["ground_m"].to_numpy(dtype=np.float64)).sum()),
            "crs": self.crs,
            "units": self.units,
        }

    def save(self, directory: Path) -> dict[str, Any]:
        """Write ``nodes.parquet`` and ``links.parquet`` into ``directory``; return the manifest entry."""
        d = Path(directory)
        write_table(self.nodes[NODE_COLUMNS], d / "nodes.parquet")
        links = self.links[LINK_COLUMNS].copy()
        links["vertices"] = [[float(c) for xy in vs for c in xy] for vs in links["vertices"]]
        write_table(links, d / "links.parquet")
        return {
            "nodes": "nodes.parquet",
            "links": "links.parquet",
            "network": self.kind_of_network,
            "crs": self.crs,
            "source_crs": self.source_crs,
            "z_offset_m": self.z_offset_m,
            "units": self.units,
        }

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> PipeNetwork:
        """Read a network written by :meth:`save`."""
        d = Path(directory)
        paths = [d / entry.get("nodes", "nodes.parquet"), d / entry.get("links", "links.parquet")]
        for p in paths:
            if not p.exists():
                raise InputError(p, "is missing from the bundle (pipes layer)")
        nodes = read_table(paths[0])
        links = read_table(paths[1])
        links["vertices"] = [
            [(float(f[i]), float(f[i + 1])) for i in range(0, len(f), 2)] for f in links["vertices"]
        ]
        return cls(
            nodes,
            links,
            id=str(entry["id"]),
            source=str(entry.get("source", "")),
            kind_of_network=str(entry.get("network", "water")),
            crs=entry.get("crs"),
            source_crs=entry.get("source_crs"),
            z_offset_m=float(entry.get("z_offset_m", 0.0)),
            units=entry.get("units"),
        )

    def __repr__(self) -> str:
        return f"PipeNetwork(id={self.id!r}, {self.kind_of_network}, {len(self.nodes)} nodes, {len(self.links)} links)"


# -- building a network from parsed records ----------------------------------------------------------------------
@dataclass
class RawNode:
    """A node as read from a file: coordinates in the source (NaN if the file gives none), elevation in metres."""

    name: str
    type: str
    x: float
    y: float
    elevation: float
    depth: float = np.nan


@dataclass
class RawLink:
    """A link as read from a file; ``vertices`` in source coordinates, lengths and diameters in metres."""

    name: str
    type: str
    start: str
    end: str
    diameter: float = np.nan
    length: float = np.nan
    roughness: float = np.nan
    shape: str = ""
    vertices: Sequence[tuple[float, float]] = ()


def assemble_network(
    path: Path,
    raw_nodes: Sequence[RawNode],
    raw_links: Sequence[RawLink],
    *,
    frame: Frame,
    placement: Placement | None,
    crs: pyproj.CRS | None,
    id: str | None,
    kind_of_network: str,
    units: str | None,
) -> PipeNetwork:
    """Move parsed nodes and links into the local frame and build the :class:`PipeNetwork`.

    With ``crs`` the coordinates are transformed with ``frame.to_local`` (the frame adopts a CRS if it has none);
    without it they are placed with ``frame.place(…, placement)`` (as local coordinates when there is no
    placement). Raises :class:`InputError` when no node or only some nodes have coordinates.
    """
    if not raw_nodes:
        raise InputError(path, "defines no nodes (no junctions, reservoirs, tanks, outfalls or storage)")
    xs = np.array([n.x for n in raw_nodes], dtype=np.float64)
    ys = np.array([n.y for n in raw_nodes], dtype=np.float64)
    elev = np.array([n.elevation for n in raw_nodes], dtype=np.float64)
    lost = ~(np.isfinite(xs) & np.isfinite(ys))
    if lost.all():
        raise InputError(
            path,
            "no node has coordinates, so the network cannot be placed (a [COORDINATES] line per node is needed)",
            element="[COORDINATES]",
        )
    if lost.any():
        names = [raw_nodes[i].name for i in np.flatnonzero(lost)]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise InputError(
            path,
            f"{len(names)} of {len(raw_nodes)} nodes have no coordinates: {shown}",
            element="[COORDINATES]",
        )
    counts = [len(link.vertices) for link in raw_links]
    vxy = np.array([v for link in raw_links for v in link.vertices], dtype=np.float64).reshape(-1, 2)
    # the last point (first node at z = 0) gives the vertical offset of the frame and placement
    pts = np.vstack(
        [np.column_stack([xs, ys, elev]), np.column_stack([vxy, np.zeros(len(vxy))]), [[xs[0], ys[0], 0.0]]]
    )
    if crs is not None:
        if placement is not None:
            log.warning("%s: coordinates are in %s; the placement is ignored", path, crs_name(crs))
        local = frame.to_local(pts, crs)
    else:
        local = frame.place(pts, placement)
    n = len(raw_nodes)
    z_offset = float(local[-1, 2])
    nodes = pd.DataFrame(
        {
            "name": [nd.name for nd in raw_nodes],
            "type": [nd.type for nd in raw_nodes],
            "x_m": local[:n, 0],
            "y_m": local[:n, 1],
            "z_m": elev + z_offset,
            "elevation_m": elev,
            "depth_m": np.array([nd.depth for nd in raw_nodes], dtype=np.float64),
            "ground_m": np.full(n, np.nan),
        }
    )
    dup = nodes["name"].duplicated()
    if dup.any():
        raise InputError(path, f"node {nodes['name'][dup].iloc[0]!r} is defined twice")
    row = {name: i for i, name in enumerate(nodes["name"])}
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64) + n
    vertices: list[list[tuple[float, float]]] = []
    plan_length = np.empty(len(raw_links))
    for k, link in enumerate(raw_links):
        vs = local[offsets[k] : offsets[k + 1], :2]
        vertices.append([(float(a), float(b)) for a, b in vs])
        line = np.vstack([local[row[link.start], :2], vs, local[row[link.end], :2]])
        plan_length[k] = float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum())
    length = np.array([link.length for link in raw_links], dtype=np.float64)
    links = pd.DataFrame(
        {
            "name": [link.name for link in raw_links],
            "type": [link.type for link in raw_links],
            "start": [link.start for link in raw_links],
            "end": [link.end for link in raw_links],
            "start_index": np.array([row[link.start] for link in raw_links], dtype=np.int64),
            "end_index": np.array([row[link.end] for link in raw_links], dtype=np.int64),
            "diameter_m": np.array([link.diameter for link in raw_links], dtype=np.float64),
            "length_m": np.where(np.isfinite(length), length, plan_length),
            "roughness": np.array([link.roughness for link in raw_links], dtype=np.float64),
            "shape": [link.shape for link in raw_links],
            "vertices": vertices,
        },
        columns=LINK_COLUMNS,
    )
    dup = links["name"].duplicated()
    if dup.any():
        raise InputError(path, f"link {links['name'][dup].iloc[0]!r} is defined twice")
    return PipeNetwork(
        nodes,
        links,
        id=id or layer_id_from_path(path),
        source=str(path),
        kind_of_network=kind_of_network,
        crs=crs_name(frame.crs),
        source_crs=crs_name(crs),
        z_offset_m=z_offset,
        units=units,
    )


# -- .inp sections ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InpLine:
    """One data line of an ``.inp`` section: 1-based line number and whitespace-separated fields."""

    line: int
    fields: list[str]


_TOKEN = re.compile(r'"[^"]*"|\S+')


def read_inp_sections(path: Path) -> dict[str, list[InpLine]]:
    """Split an EPANET/SWMM ``.inp`` file into sections: ``{"PIPES": [InpLine, …], …}`` (names upper-cased).

    Comments (from ``;``) and blank lines are dropped; quoted fields keep their spaces (quotes removed).
    Raises :class:`InputError` if the file cannot be read or has data before the first section header.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sections: dict[str, list[InpLine]] = {}
    current: list[InpLine] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split(";", 1)[0].strip()
        if not stripped:
            continue
        if stripped.startswith("["):
            end = stripped.find("]")
            if end < 0:
                raise InputError(
                    path, f"section header {stripped!r} has no closing ']'", element=f"line {number}"
                )
            current = sections.setdefault(stripped[1:end].strip().upper(), [])
            continue
        if current is None:
            raise InputError(
                path, f"data before the first [SECTION] header: {stripped[:40]!r}", element=f"line {number}"
            )
        fields = stripped.split() if '"' not in stripped else [t.strip('"') for t in _TOKEN.findall(stripped)]
        current.append(InpLine(number, fields))
    return sections


@dataclass(frozen=True)
class SectionRule:
    """What a data line of a section must hold: at least ``min_fields`` fields (named ``names`` for messages),
    numbers at positions ``numbers`` (those in ``positive`` also > 0; ``more_numbers(fields)`` adds positions that
    depend on the line), node ids at ``node_refs`` and link ids at ``link_refs``."""

    min_fields: int
    names: tuple[str, ...]
    numbers: tuple[int, ...] = ()
    positive: tuple[int, ...] = ()
    node_refs: tuple[int, ...] = ()
    link_refs: tuple[int, ...] = ()
    more_numbers: Callable[[list[str]], tuple[int, ...]] | None = None


def to_float(value: str) -> float:
    """Parse a number as .inp files write them (``1e3``, ``.5``); raise ValueError otherwise."""
    x = float(value)
    if not np.isfinite(x):
        raise ValueError(value)
    return x


def check_sections(
    path: Path,
    sections: Mapping[str, list[InpLine]],
    rules: Mapping[str, SectionRule],
    node_sections: Sequence[str],
    link_sections: Sequence[str],
    *,
    describe: Mapping[str, str],
) -> None:
    """Check every line of the sections in ``rules``; raise :class:`InputError` naming the section and line.

    ``node_sections`` / ``link_sections`` are the sections whose first field defines a node / link id (the targets
    of ``node_refs`` / ``link_refs``); ``describe`` maps a section to the word for its elements ("pipe").
    """
    ids: dict[str, dict[str, str]] = {"node": {}, "link": {}}
    for what, secs in (("node", node_sections), ("link", link_sections)):
        seen = ids[what]
        for sec in secs:
            for rec in sections.get(sec, []):
                if rec.fields[0] in seen:
                    raise InputError(
                        path,
                        f"{what} {rec.fields[0]!r} is defined again (first in [{seen[rec.fields[0]]}])",
                        element=f"[{sec}] line {rec.line}",
                    )
                seen[rec.fields[0]] = sec
    where = {
        "node": ", ".join(f"[{s}]" for s in node_sections),
        "link": ", ".join(f"[{s}]" for s in link_sections),
    }
    for sec, rule in rules.items():
        what = describe.get(sec, "entry")
        for rec in sections.get(sec, []):
            f = rec.fields
            element = f"[{sec}] line {rec.line}"
            if len(f) < rule.min_fields:
                raise InputError(
                    path,
                    f"{what} {f[0]!r} has {len(f)} fields, expected at least {rule.min_fields} "
                    f"({', '.join(rule.names[: rule.min_fields])})",
                    element=element,
                )
            positions = rule.numbers + (rule.more_numbers(f) if rule.more_numbers else ())
            for i in positions:
                if i >= len(f):
                    continue
                try:
                    value = to_float(f[i])
                except ValueError:
                    raise InputError(
                        path,
                        f"{what} {f[0]!r}: {rule.names[i] if i < len(rule.names) else f'field {i + 1}'} "
                        f"{f[i]!r} is not a number",
                        element=element,
                    ) from None
                if i in rule.positive and value <= 0:
                    raise InputError(
                        path, f"{what} {f[0]!r}: {rule.names[i]} must be > 0, got {f[i]}", element=element
                    )
            for kind, refs in (("node", rule.node_refs), ("link", rule.link_refs)):
                for i in refs:
                    if f[i] not in ids[kind]:
                        raise InputError(
                            path,
                            f"{what} {f[0]!r} refers to {kind} {f[i]!r}, which is not defined in {where[kind]}",
                            element=element,
                        )
