"""Traffic part of ``report.html``: the network coloured by delay, the travel-time distribution and the vehicles
on the road over time (matplotlib, written beside the report)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIGURE_SIZES: dict[str, tuple[int, int]] = {
    "delay_map": (900, 800),
    "travel_times": (900, 450),
    "traffic_state": (900, 450),
}


@dataclass
class TrafficReport:
    """What the traffic figures need.

    trips : the trip table (``traffic_trips.parquet``: duration_s, time_loss_s, arrived, …).
    edges : per-edge interval table (``traffic_edges.parquet``: t_s, edge, entered, mean_speed_mps, …).
    edge_ids : (ne,) edge ids; shapes : (n_i, 2) float64 centre lines in metres, same order;
    free_speed : (ne,) float64 m/s, each edge's speed limit.
    """

    trips: pd.DataFrame
    edges: pd.DataFrame
    edge_ids: Sequence[str]
    shapes: Sequence[np.ndarray]
    free_speed: np.ndarray


def traffic_figures(
    data: TrafficReport, kpis: pd.DataFrame | None, figdir: Path, figure: Any, save: Any
) -> list[tuple[str, str]]:
    """Draw the figures into ``figdir``; returns (relative path, caption) for each written."""
    out: list[tuple[str, str]] = []
    if _delay_map(data, figure("delay_map"), save, figdir / "delay_map.png"):
        out.append(
            (
                "figures/delay_map.png",
                "Road network coloured by the ratio of measured mean speed to the speed limit over the run "
                "(1 = free flow; grey: no traffic).",
            )
        )
    if _travel_times(data, figure("travel_times"), save, figdir / "travel_times.png"):
        out.append(
            (
                "figures/travel_times.png",
                "Distribution of trip travel times and time losses (arrived vehicles).",
            )
        )
    if _traffic_state(kpis, figure("traffic_state"), save, figdir / "traffic_state.png"):
        out.append(
            (
                "figures/traffic_state.png",
                "Vehicles on the road and arrived, and their mean speed, over time.",
            )
        )
    return out


def _delay_map(data: TrafficReport, fig: Any, save: Any, path: Path) -> bool:
    from matplotlib.collections import LineCollection

    if not len(data.shapes):
        return False
    ratio = np.full(len(data.edge_ids), np.nan)
    e = data.edges
    if len(e):
        w = e["mean_speed_mps"].to_numpy(np.float64) * 0 + 1.0
        speed = e["mean_speed_mps"].to_numpy(np.float64)
        ok = np.isfinite(speed)
        g = pd.DataFrame({"edge": e["edge"].to_numpy()[ok], "s": speed[ok] * w[ok], "w": w[ok]})
        agg = g.groupby("edge", sort=False).sum()
        index = {eid: i for i, eid in enumerate(data.edge_ids)}
        for eid, row in agg.iterrows():
            i = index.get(eid)
            if i is not None and row["w"] > 0:
                ratio[i] = row["s"] / row["w"] / max(float(data.free_speed[i]), 0.1)
    ax = fig.add_subplot(1, 1, 1)
    allpts = np.concatenate([np.asarray(s, dtype=np.float64) for s in data.shapes])
    span = float(np.ptp(allpts, axis=0).max()) if len(allpts) else 1.0
    segs = [_right_offset(np.asarray(s, dtype=np.float64), 0.004 * span) for s in data.shapes]
    grey = LineCollection(
        [s for s, r in zip(segs, ratio, strict=True) if not np.isfinite(r)], colors="0.8", linewidths=0.6
    )
    ax.add_collection(grey)
    used = [s for s, r in zip(segs, ratio, strict=True) if np.isfinite(r)]
    if used:
        lc = LineCollection(used, cmap="RdYlGn", linewidths=1.6)
        lc.set_array(np.clip(ratio[np.isfinite(ratio)], 0, 1))
        lc.set_clim(0, 1)
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, label="mean speed / speed limit")
    ax.set_xlim(allpts[:, 0].min(), allpts[:, 0].max())
    ax.set_ylim(allpts[:, 1].min(), allpts[:, 1].max())
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("Where traffic is slow")
    save(fig, path)
    return True


def _right_offset(line: np.ndarray, d: float) -> np.ndarray:
    """The polyline (n, 2) shifted ``d`` metres to the right of its direction (so the two directions of a road
    are drawn side by side, as driven on the right)."""
    if len(line) < 2 or d <= 0:
        return line
    seg = np.diff(line, axis=0)
    norm = np.hypot(seg[:, 0], seg[:, 1])
    seg = seg / np.where(norm > 0, norm, 1.0)[:, None]
    right = np.column_stack([seg[:, 1], -seg[:, 0]])
    vert = np.vstack([right[:1], right[:-1] + right[1:], right[-1:]])
    vn = np.hypot(vert[:, 0], vert[:, 1])
    vert = vert / np.where(vn > 0, vn, 1.0)[:, None]
    return line + d * vert


def _travel_times(data: TrafficReport, fig: Any, save: Any, path: Path) -> bool:
    t = data.trips
    if not len(t) or not t["arrived"].any():
        return False
    done = t[t["arrived"]]
    ax = fig.add_subplot(1, 1, 1)
    top = float(np.nanpercentile(done["duration_s"], 99.5))
    bins = np.linspace(0, max(top, 1.0), 60)
    ax.hist(
        done["duration_s"],
        bins=bins,
        alpha=0.7,
        label=f"travel time (mean {done['duration_s'].mean():.1f} s)",
    )
    ax.hist(
        done["time_loss_s"],
        bins=bins,
        alpha=0.6,
        label=f"time loss (mean {done['time_loss_s'].mean():.1f} s)",
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("vehicles")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, path)
    return True


def _traffic_state(kpis: pd.DataFrame | None, fig: Any, save: Any, path: Path) -> bool:
    if kpis is None or kpis.empty:
        return False
    k = kpis[kpis["kpi"].astype(str).isin(["vehicles_running", "vehicles_arrived", "mean_speed_mps"])]
    if k.empty:
        return False
    ax = fig.add_subplot(1, 1, 1)
    for name, label in (("vehicles_running", "on the road"), ("vehicles_arrived", "arrived")):
        rows = k[k["kpi"] == name].sort_values("t_s")
        ax.plot(rows["t_s"], rows["value"], label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("vehicles")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    rows = k[k["kpi"] == "mean_speed_mps"].sort_values("t_s")
    ax2.plot(rows["t_s"], rows["value"], color="tab:green", alpha=0.7, label="mean speed")
    ax2.set_ylabel("mean speed (m/s)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left")
    save(fig, path)
    return True


def edge_shapes(network: Any, roads: Any) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """(edge ids, centre lines, speed limits) of a compiled network, from the road layer's edge table."""
    edges = roads.edges
    ids = list(network.edge_ids)
    shape_of: Mapping[str, Any] = dict(zip(edges["id"], edges["shape"], strict=True))
    shapes = [np.asarray(shape_of[e], dtype=np.float64).reshape(-1, 2) for e in ids]
    return ids, shapes, np.asarray(network.edge_speed, dtype=np.float64)
