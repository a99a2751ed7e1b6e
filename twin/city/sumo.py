"""Load a SUMO network (``.net.xml``, ``.net.xml.gz``) into a :class:`~twin.city.roads.RoadNetwork`.

The file is read with ``sumolib.net.readNet`` (internal edges left out, every signal programme and connection
read), so counts are sumolib's: normal edges, their lanes, non-internal junctions, connections between normal
edges (pedestrian crossings and walking areas excluded) and traffic lights.

Coordinates: a SUMO network keeps ``x, y`` in a shifted projected frame given by its ``<location>`` element.
When ``projParameter`` is a projection (``+proj=utm …``), ``x − netOffset`` are coordinates in that CRS and are
transformed into the city frame (which adopts the CRS if it has none). When it is ``"!"`` (no projection) the
network is placed with ``placement`` (``Frame.place``) or, without one, taken as local coordinates.
"""

from __future__ import annotations

import gzip
import logging
import os
import xml.etree.ElementTree as ET
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from twin.city.frame import Frame, Placement, crs_name
from twin.city.layer import layer_id_from_path
from twin.city.roads import RoadNetwork
from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

_SUMO_CLASSES: frozenset[str] | None = None


def _vehicle_classes() -> frozenset[str]:
    """SUMO's current vehicle classes (deprecated aliases left out), from sumolib."""
    global _SUMO_CLASSES
    if _SUMO_CLASSES is None:
        from sumolib.net.lane import SUMO_VEHICLE_CLASSES, SUMO_VEHICLE_CLASSES_DEPRECATED

        _SUMO_CLASSES = frozenset(SUMO_VEHICLE_CLASSES - SUMO_VEHICLE_CLASSES_DEPRECATED)
    return _SUMO_CLASSES


def permissions_strings(allowed: set[str] | frozenset[str]) -> tuple[str, str]:
    """(allow, disallow): sorted, space-separated vehicle classes allowed and the remaining SUMO classes."""
    classes = _vehicle_classes()
    allowed = set(allowed) & classes
    return " ".join(sorted(allowed)), " ".join(sorted(classes - allowed))


def _read(path: Path) -> Any:
    import sumolib

    try:
        return sumolib.net.readNet(str(path), withInternal=False, withPrograms=True, withConnections=True)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"cannot be read as a (gzip) SUMO network ({exc})") from None
    except Exception as exc:  # lxml.etree.XMLSyntaxError, KeyError/ValueError on missing or bad attributes
        raise InputError(
            path, f"is not a valid SUMO .net.xml network ({type(exc).__name__}: {exc})"
        ) from None


@dataclass
class JunctionLogic:
    """What sumolib does not keep of a network's junctions: internal lanes and right-of-way requests.

    ``internal_lanes``: internal lane id → (length m, speed m/s); ``next_via``: internal lane id → the internal
    lane a vehicle continues on inside the junction (split left turns wait halfway at an internal junction);
    ``int_lanes``: junction id → its ``intLanes`` (request ``k`` belongs to the connection whose internal lanes
    include ``int_lanes[k]``); ``requests``: junction id → ``[(response, foes)]`` by request index;
    ``inc_lanes``: junction id → ``incLanes``; ``lane_connections``: normal lane id → ``(to edge, to lane)`` of
    its connections in file order (the request order of junctions without internal lanes).
    """

    internal_lanes: dict[str, tuple[float, float]] = field(default_factory=dict)
    next_via: dict[str, str] = field(default_factory=dict)
    int_lanes: dict[str, list[str]] = field(default_factory=dict)
    inc_lanes: dict[str, list[str]] = field(default_factory=dict)
    requests: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    lane_connections: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))

    def via_chain(self, via: str) -> list[str]:
        """The internal lanes from ``via`` on, in driving order."""
        chain = [via]
        while chain[-1] in self.next_via and len(chain) < 16:
            chain.append(self.next_via[chain[-1]])
        return chain


def read_junction_logic(path: Path) -> JunctionLogic:
    """Read internal lanes, internal connections and junction requests of a ``.net.xml[.gz]`` (one streaming pass).

    Raises :class:`InputError` when a ``<request>`` has a non-integer index or bit strings of the wrong length.
    """
    logic = JunctionLogic()
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    fh = gzip.open(path, "rb") if gz else open(path, "rb")
    internal_edge = False
    junction: str | None = None
    requests: dict[int, tuple[str, str]] = {}
    try:
        with fh:
            context = ET.iterparse(fh, events=("start", "end"))
            _, root = next(context)
            for event, el in context:
                tag = el.tag
                if event == "start":
                    if tag == "edge":
                        internal_edge = el.get("function") == "internal"
                    elif tag == "junction" and el.get("type") != "internal":
                        junction = el.get("id")
                        logic.int_lanes[junction] = (el.get("intLanes") or "").split()
                        logic.inc_lanes[junction] = (el.get("incLanes") or "").split()
                        requests = {}
                    continue
                if tag == "lane" and internal_edge:
                    logic.internal_lanes[el.get("id", "")] = (
                        float(el.get("length", "nan")),
                        float(el.get("speed", "nan")),
                    )
                elif tag == "request" and junction is not None:
                    try:
                        requests[int(el.get("index", ""))] = (el.get("response", ""), el.get("foes", ""))
                    except ValueError:
                        raise InputError(
                            path,
                            f"request index {el.get('index')!r} is not an integer",
                            element=f"junction {junction}",
                        ) from None
                elif tag == "junction":
                    if junction is not None:
                        n = len(requests)
                        if sorted(requests) != list(range(n)) or any(
                            len(r) != n or len(f) != n for r, f in requests.values()
                        ):
                            raise InputError(
                                path,
                                f"has {n} <request> elements but their indices are not 0..{n - 1} or their "
                                f"response/foes bit strings are not {n} characters long",
                                element=f"junction {junction}",
                            )
                        logic.requests[junction] = [requests[k] for k in range(n)]
                    junction = None
                    root.clear()
                elif tag == "connection":
                    frm, via = el.get("from", ""), el.get("via")
                    if frm.startswith(":"):
                        if via:
                            logic.next_via[f"{frm}_{el.get('fromLane')}"] = via
                    else:
                        logic.lane_connections[f"{frm}_{el.get('fromLane')}"].append(
                            (el.get("to", ""), int(el.get("toLane", "-1")))
                        )
                    root.clear()
                elif tag in ("edge", "tlLogic"):
                    internal_edge = False
                    root.clear()
    except (ET.ParseError, OSError, EOFError, zlib.error, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            path, f"is not a valid SUMO .net.xml network ({type(exc).__name__}: {exc})"
        ) from None
    return logic


def _request_indices(
    logic: JunctionLogic, rows: list[tuple[str, str, int, str, int, str | None]]
) -> list[int]:
    """Request index of each connection ``(junction, from edge, from lane, to edge, to lane, via)`` (-1 if none).

    With internal lanes, request k is the connection whose internal lanes include ``intLanes[k]``; without, the
    requests number the connections of the junction's incoming lanes in ``incLanes`` and file order.
    """
    position: dict[str, dict[str, int]] = {}
    order: dict[str, dict[tuple[str, int, str, int], int]] = {}
    out = []
    for jid, frm, from_lane, to, to_lane, via in rows:
        if via:
            if jid not in position:
                position[jid] = {lane: k for k, lane in enumerate(logic.int_lanes.get(jid, []))}
            where = position[jid]
            out.append(next((where[v] for v in logic.via_chain(via) if v in where), -1))
        else:
            if jid not in order:
                order[jid] = {}
                k = 0
                for lane in logic.inc_lanes.get(jid, []):
                    edge, _, idx = lane.rpartition("_")
                    for t_edge, t_lane in logic.lane_connections.get(lane, []):
                        order[jid][(edge, int(idx) if idx.isdigit() else -1, t_edge, t_lane)] = k
                        k += 1
            out.append(order[jid].get((frm, from_lane, to, to_lane), -1))
    n_req = {j: len(r) for j, r in logic.requests.items()}
    return [k if 0 <= k < n_req.get(row[0], 0) else -1 for k, row in zip(out, rows, strict=True)]


def _location(net: Any, path: Path) -> tuple[np.ndarray, str]:
    loc = getattr(net, "_location", {})
    if net.getVersion() is None or "netOffset" not in loc:
        raise InputError(
            path,
            "is not a SUMO network: expected a <net> root with a <location netOffset=… projParameter=…/>",
        )
    try:
        offset = np.array([float(v) for v in loc["netOffset"].split(",")][:2], dtype=np.float64)
    except ValueError:
        raise InputError(path, f"netOffset {loc['netOffset']!r} is not 'x,y'", element="location") from None
    if offset.shape != (2,) or not np.isfinite(offset).all():
        raise InputError(path, f"netOffset {loc['netOffset']!r} is not 'x,y'", element="location")
    return offset, str(loc.get("projParameter", "!")).strip()


def _to_local(
    xyz: FloatArray, *, frame: Frame, offset: np.ndarray, proj: str, placement: Placement | None, path: Path
) -> FloatArray:
    """Net coordinates (n, 3) → local frame (n, 3), metres."""
    if proj and proj != "!":
        try:
            crs = pyproj.CRS.from_user_input(proj)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(
                path, f"projParameter {proj!r} is not a projection ({exc})", element="location"
            ) from None
        epsg = crs.to_epsg()
        if epsg is not None and pyproj.CRS.from_epsg(epsg).equals(crs):
            crs = pyproj.CRS.from_epsg(
                epsg
            )  # the same CRS under its EPSG name ("+proj=utm +zone=32" → 32632)
        if not crs.is_projected:
            raise InputError(path, f"projParameter {proj!r} is not a projected CRS", element="location")
        world = xyz.copy()
        world[:, :2] -= offset
        if placement is not None:
            log.info("%s is georeferenced (%s); the placement is ignored", path.name, proj)
        return frame.to_local(world, crs)
    return frame.place(xyz, placement)


def load_sumo_net(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    id: str | None = None,
) -> RoadNetwork:
    """Read a SUMO ``.net.xml`` (or ``.net.xml.gz``) into a :class:`RoadNetwork` in ``frame``.

    Raises :class:`InputError` naming the file when it is missing, not XML, not a SUMO network or has no edges.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "does not exist or is not a file")
    net = _read(p)
    offset, proj = _location(net, p)
    sumo_edges = net.getEdges(withInternal=False)
    if not sumo_edges:
        raise InputError(p, "is a SUMO network without normal edges (only internal ones or none)")

    nodes = net.getNodes()
    node_row = {n.getID(): i for i, n in enumerate(nodes)}

    # one coordinate block for junctions, edge shapes and lane shapes, transformed in a single call
    blocks: list[np.ndarray] = [np.array([n.getCoord3D() for n in nodes], dtype=np.float64).reshape(-1, 3)]
    for e in sumo_edges:
        blocks.append(np.array(e.getShape3D(), dtype=np.float64).reshape(-1, 3))
    sumo_lanes = [lane for e in sumo_edges for lane in e.getLanes()]
    for lane in sumo_lanes:
        blocks.append(np.array(lane.getShape3D(), dtype=np.float64).reshape(-1, 3))
    sizes = np.array([len(b) for b in blocks])
    local = _to_local(
        np.concatenate(blocks), frame=frame, offset=offset, proj=proj, placement=placement, path=p
    )
    parts = np.split(local, np.cumsum(sizes)[:-1])
    jxyz, edge_shapes, lane_shapes = parts[0], parts[1 : 1 + len(sumo_edges)], parts[1 + len(sumo_edges) :]

    logic = read_junction_logic(p)

    # connections (sumolib keeps them per edge, per target edge)
    conn_rows = []
    edge_row = {e.getID(): i for i, e in enumerate(sumo_edges)}
    junction_tls: dict[str, str] = {}
    tls_junctions: dict[str, set[str]] = defaultdict(set)
    for e in sumo_edges:
        jid = e.getToNode().getID()
        for to_edge, conns in e.getOutgoing().items():
            for c in conns:
                tls = c.getTLSID() or None
                if tls is not None:
                    junction_tls.setdefault(jid, tls)
                    tls_junctions[tls].add(jid)
                conn_rows.append(
                    (
                        jid,
                        e.getID(),
                        to_edge.getID(),
                        edge_row[e.getID()],
                        edge_row[to_edge.getID()],
                        c.getFromLane().getIndex(),
                        c.getToLane().getIndex(),
                        c.getViaLaneID() or None,
                        c.getDirection(),
                        tls,
                        int(c.getTLLinkIndex()) if tls is not None else -1,
                        c.getState() or None,
                    )
                )
    connections = pd.DataFrame(
        conn_rows,
        columns=[
            "junction", "from_edge", "to_edge", "from_edge_index", "to_edge_index",
            "from_lane", "to_lane", "via", "direction", "tls", "link_index", "state",
        ],
    )  # fmt: skip
    via_length, via_speed = [], []
    for via in connections["via"]:
        parts = (
            [logic.internal_lanes[v] for v in logic.via_chain(via) if v in logic.internal_lanes]
            if via
            else []
        )
        via_length.append(sum(x[0] for x in parts) if parts else -1.0)
        via_speed.append(min(x[1] for x in parts) if parts else -1.0)
    connections["via_length_m"] = np.array(via_length, dtype=np.float64)
    connections["via_speed_mps"] = np.array(via_speed, dtype=np.float64)
    connections["request_index"] = np.array(
        _request_indices(
            logic,
            list(
                zip(
                    connections["junction"], connections["from_edge"], connections["from_lane"],
                    connections["to_edge"], connections["to_lane"], connections["via"], strict=True,
                )
            ),
        ),
        dtype=np.int64,
    )  # fmt: skip

    junctions = pd.DataFrame(
        {
            "id": [n.getID() for n in nodes],
            "x_m": jxyz[:, 0],
            "y_m": jxyz[:, 1],
            "z_m": jxyz[:, 2],
            "type": [n.getType() or "unknown" for n in nodes],
            "tls": pd.Series([junction_tls.get(n.getID()) for n in nodes], dtype=object),
            "response": pd.Series(
                [[r for r, _ in logic.requests.get(n.getID(), [])] for n in nodes], dtype=object
            ),
            "foes": pd.Series(
                [[f for _, f in logic.requests.get(n.getID(), [])] for n in nodes], dtype=object
            ),
        }
    )

    pairs = {(e.getFromNode().getID(), e.getToNode().getID()) for e in sumo_edges}
    edge_records = []
    for e, shape in zip(sumo_edges, edge_shapes, strict=True):
        etype = e.getType() or None
        highway = None
        if etype:
            for part in etype.split("|"):
                if part.startswith("highway."):
                    highway = part[len("highway.") :]
                    break
        fid, tid = e.getFromNode().getID(), e.getToNode().getID()
        orig = e.getParam("origId")
        edge_records.append(
            {
                "id": e.getID(),
                "from_junction": fid,
                "to_junction": tid,
                "from_index": node_row[fid],
                "to_index": node_row[tid],
                "name": e.getName() or None,
                "highway": highway,
                "type": etype,
                "num_lanes": e.getLaneNumber(),
                "speed_mps": max(lane.getSpeed() for lane in e.getLanes()),
                "length_m": e.getLength(),
                "shape": shape[:, :2],
                "priority": e.getPriority(),
                "oneway": (tid, fid) not in pairs,
                "osm_way": int(orig) if orig and orig.lstrip("-").isdigit() else -1,
            }
        )
    edges = pd.DataFrame(edge_records)

    lane_records = []
    for lane, shape in zip(sumo_lanes, lane_shapes, strict=True):
        allow, disallow = permissions_strings(lane.getPermissions())
        e = lane.getEdge()
        lane_records.append(
            {
                "id": lane.getID(),
                "edge": e.getID(),
                "edge_index": edge_row[e.getID()],
                "index": lane.getIndex(),
                "speed_mps": lane.getSpeed(),
                "length_m": lane.getLength(),
                "width_m": lane.getWidth(),
                "allow": allow,
                "disallow": disallow,
                "shape": shape[:, :2],
            }
        )
    lanes = pd.DataFrame(lane_records)

    tl_records = []
    for tls in net.getTrafficLights():
        tid = tls.getID()
        controlled = sorted(tls_junctions.get(tid, set()))
        programmes = tls.getPrograms()
        if not programmes:  # e.g. rail signals: links are controlled but the file carries no <tlLogic>
            tl_records.append(
                {"id": tid, "type": None, "programme": None, "offset_s": 0.0, "phases": [],
                 "junctions": controlled, "source_nodes": []}
            )  # fmt: skip
        for pid, prog in programmes.items():
            phases = []
            for ph in prog.getPhases():
                d = float(ph.duration)
                mn = float(ph.minDur) if ph.minDur is not None and ph.minDur >= 0 else d
                mx = float(ph.maxDur) if ph.maxDur is not None and ph.maxDur >= 0 else d
                phases.append((d, ph.state, mn, mx))
            tl_records.append(
                {
                    "id": tid,
                    "type": prog.getType(),
                    "programme": str(pid),
                    "offset_s": float(prog.getOffset()),
                    "phases": phases,
                    "junctions": controlled,
                    "source_nodes": [],
                }
            )
    traffic_lights = pd.DataFrame(
        tl_records, columns=["id", "type", "programme", "offset_s", "phases", "junctions", "source_nodes"]
    )
    meta = {
        "projParameter": proj,
        "netOffset": offset.tolist(),
        "sumo_net_version": f"{net.getVersion()[0]}.{net.getVersion()[1]:g}",
        "frame_crs": crs_name(frame.crs),
    }
    return RoadNetwork(
        id=id or layer_id_from_path(p),
        source=str(p),
        source_kind="sumo",
        junctions=junctions,
        edges=edges,
        lanes=lanes,
        connections=connections,
        traffic_lights=traffic_lights,
        meta=meta,
    )
