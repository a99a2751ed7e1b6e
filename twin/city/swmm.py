"""Load a SWMM 5 ``.inp`` sewer/drainage network as a :class:`PipeNetwork` (``kind_of_network="sewer"``).

The file is read section by section with :func:`twin.city.pipes.read_inp_sections` and checked line by line
(field counts, numbers, node and link references, duplicate ids), so that every error names the file, section
and line. swmmio, which the tests use as the reference reader, is not used here: it infers column types with
pandas, which silently renames ids such as ``007`` to ``7`` and turns short lines into NaN.

Units follow ``[OPTIONS] FLOW_UNITS``: CFS, GPM and MGD (the default is CFS) mean US customary units, so
elevations, depths, lengths and cross-section sizes are feet and are converted to metres; CMS, LPS and MLD mean
metres. Map coordinates are used as they are (in the declared ``crs``, or placed with ``placement``).

Nodes: junctions (depth = Ymax), outfalls (no depth), dividers (depth = Ymax), storage units (depth = Ymax).
Links: conduits, pumps, orifices, weirs, outlets. ``diameter_m`` is the cross-section's Geom1: the diameter of
CIRCULAR (and FORCE_MAIN, FILLED_CIRCULAR) sections, the full height of the others, NaN for IRREGULAR and STREET
sections (defined by transects) and for links without a cross-section (pumps, outlets).
"""

from __future__ import annotations

import logging
import os
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
    to_float,
)
from twin.errors import InputError

log = logging.getLogger(__name__)

FOOT = 0.3048
US_FLOW_UNITS = ("CFS", "GPM", "MGD")
SI_FLOW_UNITS = ("CMS", "LPS", "MLD")

NODE_SECTIONS = ("JUNCTIONS", "OUTFALLS", "DIVIDERS", "STORAGE")
LINK_SECTIONS = ("CONDUITS", "PUMPS", "ORIFICES", "WEIRS", "OUTLETS")
NODE_TYPES = {"JUNCTIONS": "junction", "OUTFALLS": "outfall", "DIVIDERS": "divider", "STORAGE": "storage"}
LINK_TYPES = {
    "CONDUITS": "conduit",
    "PUMPS": "pump",
    "ORIFICES": "orifice",
    "WEIRS": "weir",
    "OUTLETS": "outlet",
}
# Geom1 is a transect or street name for these shapes, not a size
NAMED_SHAPES = ("IRREGULAR", "STREET")
# position of Ymax in a [DIVIDERS] line, by divider type (after Name Elev DivLink Type and the type's parameters)
DIVIDER_YMAX = {"OVERFLOW": 4, "CUTOFF": 5, "TABULAR": 5, "WEIR": 7}


def _xsection_numbers(fields: list[str]) -> tuple[int, ...]:
    return () if fields[1].upper() in NAMED_SHAPES else (2,)


def _divider_numbers(fields: list[str]) -> tuple[int, ...]:
    pos = DIVIDER_YMAX.get(fields[3].upper())
    return () if pos is None else (pos,)


RULES = {
    "JUNCTIONS": SectionRule(
        2, ("Name", "Elevation", "MaxDepth", "InitDepth", "SurDepth", "Aponded"), (1, 2)
    ),
    "OUTFALLS": SectionRule(3, ("Name", "Elevation", "Type", "Stage Data", "Gated", "Route To"), (1,)),
    "DIVIDERS": SectionRule(
        4,
        ("Name", "Elevation", "Diverted Link", "Type", "Parameters"),
        (1,),
        link_refs=(2,),
        more_numbers=_divider_numbers,
    ),
    "STORAGE": SectionRule(5, ("Name", "Elev.", "MaxDepth", "InitDepth", "Shape", "Parameters"), (1, 2)),
    "CONDUITS": SectionRule(
        7,
        (
            "Name",
            "From Node",
            "To Node",
            "Length",
            "Roughness",
            "InOffset",
            "OutOffset",
            "InitFlow",
            "MaxFlow",
        ),
        numbers=(3, 4, 5, 6),
        positive=(3,),
        node_refs=(1, 2),
    ),
    "PUMPS": SectionRule(
        4,
        ("Name", "From Node", "To Node", "Pump Curve", "Status", "Startup", "Shutoff"),
        (),
        node_refs=(1, 2),
    ),
    "ORIFICES": SectionRule(
        6, ("Name", "From Node", "To Node", "Type", "Offset", "Qcoeff"), numbers=(4, 5), node_refs=(1, 2)
    ),
    "WEIRS": SectionRule(
        6, ("Name", "From Node", "To Node", "Type", "CrestHt", "Qcoeff"), numbers=(4, 5), node_refs=(1, 2)
    ),
    "OUTLETS": SectionRule(
        6, ("Name", "From Node", "To Node", "Offset", "Type", "QTable/Qcoeff"), numbers=(3,), node_refs=(1, 2)
    ),
    "XSECTIONS": SectionRule(
        3,
        ("Link", "Shape", "Geom1", "Geom2", "Geom3", "Geom4", "Barrels"),
        link_refs=(0,),
        more_numbers=_xsection_numbers,
    ),
    "COORDINATES": SectionRule(3, ("Node", "X-Coord", "Y-Coord"), numbers=(1, 2), node_refs=(0,)),
    "VERTICES": SectionRule(3, ("Link", "X-Coord", "Y-Coord"), numbers=(1, 2), link_refs=(0,)),
}
DESCRIBE = {
    "JUNCTIONS": "junction",
    "OUTFALLS": "outfall",
    "DIVIDERS": "divider",
    "STORAGE": "storage unit",
    "CONDUITS": "conduit",
    "PUMPS": "pump",
    "ORIFICES": "orifice",
    "WEIRS": "weir",
    "OUTLETS": "outlet",
    "XSECTIONS": "cross-section of",
    "COORDINATES": "coordinates of",
    "VERTICES": "vertex of",
}


def _flow_units(path: Path, options: list[InpLine]) -> str:
    for rec in options:
        if rec.fields[0].upper() == "FLOW_UNITS":
            if len(rec.fields) < 2:
                raise InputError(path, "FLOW_UNITS has no value", element=f"[OPTIONS] line {rec.line}")
            units = rec.fields[1].upper()
            if units not in US_FLOW_UNITS + SI_FLOW_UNITS:
                raise InputError(
                    path,
                    f"FLOW_UNITS {rec.fields[1]!r} is not one of {', '.join(US_FLOW_UNITS + SI_FLOW_UNITS)}",
                    element=f"[OPTIONS] line {rec.line}",
                )
            return units
    return "CFS"  # SWMM's default


def _depth(section: str, f: list[str]) -> float:
    """Maximum depth in file units from a node line; NaN where the node type has none."""
    if section in ("JUNCTIONS", "STORAGE"):
        return to_float(f[2]) if len(f) > 2 else 0.0
    if section == "DIVIDERS":
        pos = DIVIDER_YMAX.get(f[3].upper())
        return to_float(f[pos]) if pos is not None and len(f) > pos else 0.0
    return np.nan


def load_swmm(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    crs: pyproj.CRS | str | int | None = None,
    id: str | None = None,
) -> PipeNetwork:
    """Read the SWMM file at ``path`` into a sewer :class:`PipeNetwork` in ``frame``.

    ``crs`` is the CRS of the file's ``[COORDINATES]``/``[VERTICES]``; without it they are placed with
    ``placement`` (or taken as local metres). Every node needs coordinates. Raises :class:`InputError` naming
    the file, section and line for a missing, unreadable or malformed file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "does not exist")
    crs = None if crs is None else parse_crs(crs, source=str(p))
    if p.is_dir():
        raise InputError(p, "is a directory, not a SWMM .inp file")
    sections = read_inp_sections(p)
    if not any(sections.get(s) for s in NODE_SECTIONS):
        raise InputError(
            p, "has no nodes: [JUNCTIONS], [OUTFALLS], [DIVIDERS] and [STORAGE] are empty or missing"
        )
    check_sections(p, sections, RULES, NODE_SECTIONS, LINK_SECTIONS, describe=DESCRIBE)
    units = _flow_units(p, sections.get("OPTIONS", []))
    k = FOOT if units in US_FLOW_UNITS else 1.0

    coords = {
        rec.fields[0]: (to_float(rec.fields[1]), to_float(rec.fields[2]))
        for rec in sections.get("COORDINATES", [])
    }
    raw_nodes: list[RawNode] = []
    for sec in NODE_SECTIONS:
        for rec in sections.get(sec, []):
            f = rec.fields
            x, y = coords.get(f[0], (np.nan, np.nan))
            raw_nodes.append(RawNode(f[0], NODE_TYPES[sec], x, y, to_float(f[1]) * k, _depth(sec, f) * k))

    xsections = {rec.fields[0]: rec.fields for rec in sections.get("XSECTIONS", [])}
    vertices: dict[str, list[tuple[float, float]]] = {}
    for rec in sections.get("VERTICES", []):
        vertices.setdefault(rec.fields[0], []).append((to_float(rec.fields[1]), to_float(rec.fields[2])))
    raw_links: list[RawLink] = []
    for sec in LINK_SECTIONS:
        for rec in sections.get(sec, []):
            f = rec.fields
            xs = xsections.get(f[0])
            shape = xs[1].upper() if xs else ""
            size = to_float(xs[2]) * k if xs and shape not in NAMED_SHAPES else np.nan
            if sec == "CONDUITS" and xs is None:
                raise InputError(
                    p, f"conduit {f[0]!r} has no [XSECTIONS] line", element=f"[CONDUITS] line {rec.line}"
                )
            raw_links.append(
                RawLink(
                    f[0],
                    LINK_TYPES[sec],
                    f[1],
                    f[2],
                    diameter=size,
                    length=to_float(f[3]) * k if sec == "CONDUITS" else np.nan,
                    roughness=to_float(f[4]) if sec == "CONDUITS" else np.nan,
                    shape=shape,
                    vertices=vertices.get(f[0], []),
                )
            )
    net = assemble_network(
        p,
        raw_nodes,
        raw_links,
        frame=frame,
        placement=placement,
        crs=crs,
        id=id,
        kind_of_network="sewer",
        units="US" if k != 1.0 else "SI",
    )
    log.info("%s: %d nodes, %d links (FLOW_UNITS %s)", p, len(net.nodes), len(net.links), units)
    return net
