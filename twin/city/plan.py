"""A plan view of a city (matplotlib, headless): roads, building footprints, IFC buildings, pipes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _lines(ax: Any, segments: list[np.ndarray], **style: Any) -> None:
    from matplotlib.collections import LineCollection

    if segments:
        ax.add_collection(LineCollection(segments, **style))


def _polygons(ax: Any, geoms: list[Any], **style: Any) -> None:
    from matplotlib.collections import PolyCollection

    rings = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        for part in getattr(g, "geoms", [g]):
            if part.geom_type == "Polygon":
                rings.append(np.asarray(part.exterior.coords)[:, :2])
    if rings:
        ax.add_collection(PolyCollection(rings, **style))


def plot_plan(city: Any, path: str | os.PathLike[str], *, title: str | None = None, dpi: int = 150) -> Path:
    """Draw the city in plan (local metres) and write a PNG atomically; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 9))
    citymodel = city.citymodel
    if citymodel is not None:
        _polygons(
            ax, list(citymodel.buildings["footprint"]), facecolor="#d9d4cc", edgecolor="#a39e96", lw=0.3
        )
    roads = city.roads
    if roads is not None:
        shapes = [np.asarray(s, dtype=float).reshape(-1, 2) for s in roads.edges["shape"]]
        widths = np.clip(roads.edges["num_lanes"].to_numpy(dtype=float), 1, 4) * 0.6
        _lines(ax, shapes, colors="#5b5b5b", linewidths=widths)
    for net in city.pipes.values():
        nodes = net.nodes
        start, end = net.links["start_index"].to_numpy(), net.links["end_index"].to_numpy()
        xy = nodes[["x_m", "y_m"]].to_numpy()
        color = "#1f77b4" if net.kind_of_network == "water" else "#8c564b"
        _lines(ax, list(np.stack([xy[start], xy[end]], axis=1)), colors=color, linewidths=1.2)
    for building in city.buildings.values():
        _polygons(ax, list(building.spaces["footprint"]), facecolor="#f4a259", edgecolor="#b5651d", lw=0.4)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("x east (m, local frame)")
    ax.set_ylabel("y north (m, local frame)")
    if title:
        ax.set_title(title)
    crs = city.frame.to_dict()["crs"]
    if crs and len(crs) < 40:
        ax.text(
            0.01, 0.01, f"{crs}, origin {city.frame.origin[:2].tolist()}", transform=ax.transAxes, fontsize=7
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return target
