"""Load an EPANET ``.inp`` water network through WNTR as a :class:`PipeNetwork` (``kind_of_network="water"``).

WNTR reads the file and converts every quantity to SI (lengths, diameters, elevations and heads in metres;
Darcy-Weisbach roughness in metres), whatever the file's ``[OPTIONS] UNITS``. Map coordinates are not units of
the hydraulic model and are used as they are: in the declared ``crs``, or placed with ``placement``.

Before WNTR parses it, the file is checked line by line (field counts, numbers, node references, duplicate ids,
coordinates of unknown nodes), because WNTR reports such errors only as "error 200 in input file"; errors name
the file, the section and the line.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pyproj

from twin.city.frame import Frame, Placement, parse_crs
from twin.city.pipes import (
    InpLine,
    PipeNetwork,
    RawLink,
    RawNode,
    SectionRule,
    assemble_network,
    check_sections,
    read_inp_sections,
)
from twin.errors import InputError

log = logging.getLogger(__name__)

NODE_SECTIONS = ("JUNCTIONS", "RESERVOIRS", "TANKS")
LINK_SECTIONS = ("PIPES", "PUMPS", "VALVES")
RULES = {
    "JUNCTIONS": SectionRule(2, ("ID", "Elevation", "Demand", "Pattern"), numbers=(1, 2)),
    "RESERVOIRS": SectionRule(2, ("ID", "Head", "Pattern"), numbers=(1,)),
    "TANKS": SectionRule(
        6,
        (
            "ID",
            "Elevation",
            "InitLevel",
            "MinLevel",
            "MaxLevel",
            "Diameter",
            "MinVol",
            "VolCurve",
            "Overflow",
        ),
        numbers=(1, 2, 3, 4, 5, 6),
    ),
    "PIPES": SectionRule(
        6,
        ("ID", "Node1", "Node2", "Length", "Diameter", "Roughness", "MinorLoss", "Status"),
        numbers=(3, 4, 5, 6),
        positive=(3, 4),
        node_refs=(1, 2),
    ),
    "PUMPS": SectionRule(4, ("ID", "Node1", "Node2", "Parameters"), node_refs=(1, 2)),
    "VALVES": SectionRule(
        6,
        ("ID", "Node1", "Node2", "Diameter", "Type", "Setting", "MinorLoss"),
        numbers=(3,),
        positive=(3,),
        node_refs=(1, 2),
    ),
    "COORDINATES": SectionRule(3, ("Node", "X-Coord", "Y-Coord"), numbers=(1, 2), node_refs=(0,)),
    "VERTICES": SectionRule(3, ("Link", "X-Coord", "Y-Coord"), numbers=(1, 2), link_refs=(0,)),
}
DESCRIBE = {
    "JUNCTIONS": "junction",
    "RESERVOIRS": "reservoir",
    "TANKS": "tank",
    "PIPES": "pipe",
    "PUMPS": "pump",
    "VALVES": "valve",
    "COORDINATES": "coordinates of",
    "VERTICES": "vertex of",
}


DEFINING = {*NODE_SECTIONS, *LINK_SECTIONS, "CURVES", "PATTERNS"}


def _locate(sections: dict[str, list[InpLine]], name: str) -> str | None:
    """``"[SECTION] line N"`` of the first line that uses ``name`` without defining it, if any."""
    for sec, lines in sections.items():
        for rec in lines:
            if name in rec.fields and not (sec in DEFINING and rec.fields[0] == name):
                return f"[{sec}] line {rec.line}"
    return None


def read_wntr_model(path: Path, sections: dict[str, list[InpLine]]):  # -> wntr.network.WaterNetworkModel
    import wntr  # heavy import (matplotlib, networkx): only when a network is loaded

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            wn = wntr.network.WaterNetworkModel(str(path))
        except KeyError as exc:  # WNTR's way of saying a name or keyword is unknown
            name = str(exc.args[0]) if exc.args else ""
            raise InputError(
                path,
                f"{name!r} is not defined or not a valid keyword (WNTR could not resolve it)",
                element=_locate(sections, name),
            ) from None
        except Exception as exc:  # WNTR raises bare Exception subclasses (EpanetException, ValueError, …)
            raise InputError(path, f"WNTR could not read it as an EPANET network: {exc}") from None
    for w in caught:
        log.info("%s: WNTR: %s", path, w.message)
    return wn


def load_epanet(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    crs: pyproj.CRS | str | int | None = None,
    id: str | None = None,
) -> PipeNetwork:
    """Read the EPANET file at ``path`` into a water :class:`PipeNetwork` in ``frame``.

    ``crs`` is the CRS of the file's ``[COORDINATES]``/``[VERTICES]``; without it they are placed with
    ``placement`` (or taken as local metres). Every node needs coordinates. Raises :class:`InputError` naming
    the file (and section and line where it can) for a missing, unreadable or malformed file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "does not exist")
    crs = None if crs is None else parse_crs(crs, source=str(p))
    if p.is_dir():
        raise InputError(p, "is a directory, not an EPANET .inp file")
    sections = read_inp_sections(p)
    if not any(sections.get(s) for s in NODE_SECTIONS):
        raise InputError(p, "has no nodes: [JUNCTIONS], [RESERVOIRS] and [TANKS] are empty or missing")
    check_sections(p, sections, RULES, NODE_SECTIONS, LINK_SECTIONS, describe=DESCRIBE)
    with_coords = {rec.fields[0] for rec in sections.get("COORDINATES", [])}
    wn = read_wntr_model(p, sections)

    raw_nodes: list[RawNode] = []
    for kind, names in (
        ("junction", wn.junction_name_list),
        ("reservoir", wn.reservoir_name_list),
        ("tank", wn.tank_name_list),
    ):
        for name in names:
            node = wn.get_node(name)
            x, y = (float(c) for c in node.coordinates) if name in with_coords else (np.nan, np.nan)
            elevation = node.base_head if kind == "reservoir" else node.elevation
            raw_nodes.append(RawNode(name, kind, x, y, float(elevation)))
    raw_links: list[RawLink] = []
    for kind, names in (
        ("pipe", wn.pipe_name_list),
        ("pump", wn.pump_name_list),
        ("valve", wn.valve_name_list),
    ):
        for name in names:
            link = wn.get_link(name)
            verts = [(float(a), float(b)) for a, b in (link.vertices or [])]
            raw_links.append(
                RawLink(
                    name,
                    kind,
                    link.start_node_name,
                    link.end_node_name,
                    diameter=float(link.diameter) if kind != "pump" else np.nan,
                    length=float(link.length) if kind == "pipe" else np.nan,
                    roughness=float(link.roughness) if kind == "pipe" else np.nan,
                    shape="" if kind == "pump" else "CIRCULAR",
                    vertices=verts,
                )
            )
    units = str(wn.options.hydraulic.inpfile_units).upper()
    net = assemble_network(
        p,
        raw_nodes,
        raw_links,
        frame=frame,
        placement=placement,
        crs=crs,
        id=id,
        kind_of_network="water",
        units="US" if units in ("CFS", "GPM", "MGD", "IMGD", "AFD") else "SI",
    )
    log.info("%s: %d nodes, %d links (file units %s)", p, len(net.nodes), len(net.links), units)
    return net
