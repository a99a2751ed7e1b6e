"""Report figures for the coupled run: event timeline, fire and smoke, water network, flood and emergency response.

Each figure reads the tables the run wrote beside the report (``smoke_state.parquet``, ``water_leaks_*.parquet``,
``flood_max_depth.npz``, ``response_units.parquet``, ``response_coverage.parquet``, ``events.parquet``) and is drawn
only when its data exists. Sizes in pixels (:data:`FIGURE_SIZES`):

- ``timeline.png``: the run's events over time, one row per event type (scenario events and model events);
- ``smoke.png``: smoke layer height over time in the spaces that became untenable, with the untenable times;
- ``water.png``: leak outflow and customers below service pressure over time, per network;
- ``flood.png``: maximum flood depth over the run (cells deeper than 1 cm), with the roads when known;
- ``response.png``: each unit's response time against the target; ``coverage.png``: travel time from the nearest
  station to each road edge at the end of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FIGURE_SIZES: dict[str, tuple[int, int]] = {
    "timeline": (1100, 420),
    "smoke": (1000, 500),
    "water": (1000, 450),
    "flood": (900, 750),
    "response": (900, 450),
    "coverage": (900, 750),
}

Figure = Callable[[str], Any]
Save = Callable[[Any, Path], None]


def _roads(ax: Any, traffic: Any, **style: Any) -> None:
    from matplotlib.collections import LineCollection

    if traffic is not None and len(traffic.shapes):
        ax.add_collection(LineCollection([np.asarray(s)[:, :2] for s in traffic.shapes], **style))


def timeline_figure(out: Path, figure: Figure, save: Save) -> tuple[str, str] | None:
    path = out / "events.parquet"
    if not path.exists():
        return None
    ev = pd.read_parquet(path)
    if ev.empty:
        return None
    types = list(dict.fromkeys(ev["type"].tolist()))
    fig = figure("timeline")
    ax = fig.add_subplot(1, 1, 1)
    for k, t in enumerate(types):
        sel = ev[ev["type"] == t]
        ax.scatter(sel["t_s"], np.full(len(sel), k), s=28, marker="|" if len(sel) > 20 else "o")
    ax.set_yticks(range(len(types)))
    ax.set_yticklabels(types)
    ax.set_xlabel("time (s)")
    ax.set_title("Events on the run's timeline")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save(fig, out / "figures" / "timeline.png")
    return "figures/timeline.png", "Scenario and model events over time (one row per event type)."


def smoke_figure(section: Mapping[str, Any], out: Path, figure: Figure, save: Save) -> tuple[str, str] | None:
    path = out / "smoke_state.parquet"
    if not path.exists():
        return None
    df = pd.read_parquet(path)
    since = section.get("untenable_since_s") or {}
    if df.empty:
        return None
    fig = figure("smoke")
    ax = fig.add_subplot(1, 1, 1)
    shown = list(since)[:8]
    for key in shown:
        bid, name = key.split("/", 1)
        s = df[(df["building"] == bid) & (df["name"] == name)].sort_values("t_s")
        (line,) = ax.plot(s["t_s"], s["layer_height_m"], label=f"{name} ({since[key]:.0f} s)")
        ax.axvline(since[key], color=line.get_color(), lw=0.8, ls=":")
    ax.axhline(2.0, color="k", lw=0.8, ls="--", label="2 m tenability limit")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("smoke layer height (m)")
    ax.set_title("Smoke layer in the spaces that became untenable (dotted: untenable from)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out / "figures" / "smoke.png")
    return (
        "figures/smoke.png",
        "Smoke layer height over time; a space is untenable below 2 m with hot or dense smoke.",
    )


def water_figure(section: Mapping[str, Any], out: Path, figure: Figure, save: Save) -> tuple[str, str] | None:
    files = sorted(out.glob("water_leaks_*.parquet"))
    if not files:
        return None
    fig = figure("water")
    ax = fig.add_subplot(1, 1, 1)
    ax2 = ax.twinx()
    for f in files:
        net = f.stem.removeprefix("water_leaks_")
        d = pd.read_parquet(f)
        ax.step(d["t_s"], d["leak_outflow_m3s"], where="post", label=f"{net}: leak outflow")
        ax2.step(
            d["t_s"], d["customers_below_service"], where="post", ls="--", label=f"{net}: customers below"
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("leak outflow (m³/s)")
    ax2.set_ylabel("customers below service pressure")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper left")
    ax.set_title("Water network: burst outflow and customers below service pressure")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out / "figures" / "water.png")
    return (
        "figures/water.png",
        "Outflow of the bursts (WNTR, pressure-dependent demand) and customers below service.",
    )


def flood_figure(out: Path, traffic: Any, figure: Figure, save: Save) -> tuple[str, str] | None:
    path = out / "flood_max_depth.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        h, x0, y0, cell = z["depth_m"], float(z["x0"]), float(z["y0"]), float(z["cell_m"])
    wet = np.argwhere(h > 0.01)
    if wet.size == 0:
        return None
    (r0, c0), (r1, c1) = wet.min(axis=0), wet.max(axis=0)
    pad = max(10, (r1 - r0 + c1 - c0) // 4)
    r0, c0 = max(r0 - pad, 0), max(c0 - pad, 0)
    r1, c1 = min(r1 + pad, h.shape[0] - 1), min(c1 + pad, h.shape[1] - 1)
    sub = np.where(h[r0 : r1 + 1, c0 : c1 + 1] > 0.01, h[r0 : r1 + 1, c0 : c1 + 1], np.nan)
    ext = (x0 + c0 * cell, x0 + (c1 + 1) * cell, y0 + r0 * cell, y0 + (r1 + 1) * cell)
    fig = figure("flood")
    ax = fig.add_subplot(1, 1, 1)
    _roads(ax, traffic, colors="#7b8794", linewidths=1.0)
    im = ax.imshow(sub, origin="lower", extent=ext, cmap="Blues", vmin=0, zorder=2)
    fig.colorbar(im, ax=ax, label="maximum depth (m)", shrink=0.8)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("Maximum flood depth (roads closed to cars above 0.3 m, to people above 0.5 m)")
    fig.tight_layout()
    save(fig, out / "figures" / "flood.png")
    return "figures/flood.png", "Maximum water depth over the run on the terrain, roads in grey."


def response_figures(
    section: Mapping[str, Any], out: Path, traffic: Any, figure: Figure, save: Save
) -> list[tuple[str, str]]:
    done = []
    path = out / "response_units.parquet"
    if path.exists():
        u = pd.read_parquet(path)
        u = u[np.isfinite(u["dispatched_s"])]
        if len(u):
            fig = figure("response")
            ax = fig.add_subplot(1, 1, 1)
            t = u["response_time_s"].to_numpy(dtype=float)
            colors = ["#2f9e44" if v <= section.get("target_response_s", 240) else "#e03131" for v in t]
            ax.barh(u["unit"], np.nan_to_num(t, nan=0.0), color=colors)
            ax.axvline(section.get("target_response_s", 240), color="k", ls="--", lw=1, label="target")
            ax.set_xlabel("response time (s): dispatch to arrival")
            ax.set_title("Response time of each dispatched unit")
            ax.legend()
            fig.tight_layout()
            save(fig, out / "figures" / "response.png")
            done.append(("figures/response.png", "Each unit's response time (green: within the target)."))
    path = out / "response_coverage.parquet"
    if path.exists() and traffic is not None:
        from matplotlib.collections import LineCollection

        cov = pd.read_parquet(path).set_index("edge")["travel_time_s"]
        t = np.array([cov.get(e, np.inf) for e in traffic.edge_ids], dtype=float)
        target = float(section.get("target_response_s", 240))
        fig = figure("coverage")
        ax = fig.add_subplot(1, 1, 1)
        segs = [np.asarray(s)[:, :2] for s in traffic.shapes]
        lc = LineCollection(segs, array=np.minimum(t, 2 * target), cmap="viridis_r", linewidths=1.5)
        lc.set_clim(0, 2 * target)
        ax.add_collection(lc)
        ax.autoscale()
        ax.set_aspect("equal")
        fig.colorbar(lc, ax=ax, label="travel time from the nearest station (s)", shrink=0.8)
        ax.set_title(
            f"Coverage: {100 * section.get('coverage_share', {}).get('all', 0):.0f} % of roads within {target:.0f} s"
        )
        fig.tight_layout()
        save(fig, out / "figures" / "coverage.png")
        done.append(
            (
                "figures/coverage.png",
                "Travel time from the nearest station to every road, end-of-run traffic.",
            )
        )
    return done


def hazard_figures(
    key: str, section: Mapping[str, Any], out: Path, traffic: Any, figure: Figure, save: Save
) -> list[tuple[str, str]]:
    """Figures of summary section ``key`` (fire, water, flood, response); (relative path, caption) each."""
    if key == "fire":
        r = smoke_figure(section, out, figure, save)
    elif key == "water":
        r = water_figure(section, out, figure, save)
    elif key == "flood":
        r = flood_figure(out, traffic, figure, save)
    elif key == "response":
        return response_figures(section, out, traffic, figure, save)
    else:
        return []
    return [r] if r else []
