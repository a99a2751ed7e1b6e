"""The HTML report of a results folder: ``report.html`` plus PNG figures in ``figures/``.

The figures are separate files referenced by relative paths (``figures/evacuation.png``), not embedded as
base64: the HTML stays small and readable as text, the same PNGs serve slides and ``twin compare``, and the folder
(report.html + figures/) is self-contained — copy or zip it and it still displays offline (no scripts, no web
fonts, inline CSS only). Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no
display needed) at fixed pixel sizes.

Figures (each only when its data exists):

- ``evacuation.png`` (900×500 px): agents evacuated over time, with the 90 % line, ``t90_s`` and
  ``evacuation_time_s`` marked;
- ``exit_flows.png`` (1100×450 px): cumulative passages per exit over time, and ``flow_pps`` per exit as bars;
- ``crowd_state.png`` (900×500 px): mean speed of moving agents and maximum local density over time;
- ``density_<k>_<level>.png`` (800×650 px): per level, the maximum density per 1 m² cell over the run, with the
  walkable outline (walls) when known.
"""

from __future__ import annotations

import html
import io
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.city.layer import write_bytes, write_text
from twin.scenario.results import DensityMap

log = logging.getLogger(__name__)

__all__ = ["FIGURE_SIZES", "write_report"]

DPI = 100
FIGURE_SIZES: dict[str, tuple[int, int]] = {
    "evacuation": (900, 500),
    "exit_flows": (1100, 450),
    "crowd_state": (900, 500),
    "density": (800, 650),
}
"""Pixel sizes (width, height) of the report's figures by kind."""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
       color: #1f2933; background: #f5f7fa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 2px solid #d9e2ec; padding-bottom: 0.2em; }
.sub { color: #52606d; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.95em; }
th, td { border: 1px solid #d9e2ec; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f4f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 1em 0; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 10px 16px; min-width: 150px; background: #fbfcfe; }
.card .v { font-size: 1.5em; font-weight: 600; }
.card .k { color: #52606d; font-size: 0.85em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e7eb; }
figcaption { color: #52606d; font-size: 0.9em; }
details { margin: 0.8em 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f0f4f8; padding: 12px; overflow-x: auto; font-size: 0.85em; }
code { font-size: 0.9em; }
.na { color: #9aa5b1; }
"""

_UNITS = (("_s", "s"), ("_pps", "P/s"), ("_ppm2", "P/m²"), ("_mps", "m/s"), ("_m", "m"), ("_vph", "veh/h"))


# -- formatting ------------------------------------------------------------------------------------------------------
def _fmt(value: Any, key: str = "") -> str:
    """A value for the HTML (escaped): None → an n/a marker, floats with 2 decimals (1 for seconds)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<span class="na">n/a</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        digits = 1 if key.endswith("_s") else 2
        return f"{float(value):.{digits}f}"
    return html.escape(str(value))


def _unit(key: str) -> str:
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _table(rows: list[list[str]], header: list[str], num_cols: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "level"


# -- figures ---------------------------------------------------------------------------------------------------------
def _figure(kind: str):
    from matplotlib.figure import Figure

    w, h = FIGURE_SIZES[kind]
    return Figure(figsize=(w / DPI, h / DPI), dpi=DPI)


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    write_bytes(buf.getvalue(), path)


def _series(kpis: pd.DataFrame | None, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    if kpis is None or kpis.empty:
        return None
    rows = kpis[kpis["kpi"].astype(str) == name]
    if rows.empty:
        return None
    rows = rows.sort_values("t_s", kind="stable")
    return rows["t_s"].to_numpy(np.float64), rows["value"].to_numpy(np.float64)


def _evacuation_figure(crowd: Mapping[str, Any], kpis: pd.DataFrame | None, path: Path) -> bool:
    s = _series(kpis, "evacuated")
    if s is None:
        return False
    t, v = s
    fig = _figure("evacuation")
    ax = fig.add_subplot()
    ax.step(t, v, where="post", color="#1f77b4", lw=2, label="evacuated")
    agents = crowd.get("agents")
    if agents:
        ax.axhline(agents, color="#7b8794", lw=1, ls=":", label=f"all agents ({agents})")
        ax.axhline(0.9 * agents, color="#7b8794", lw=1, ls="--", label="90 %")
    t90, tev = crowd.get("t90_s"), crowd.get("evacuation_time_s")
    if t90 is not None:
        ax.axvline(t90, color="#e67e22", lw=1.5, label=f"t90 = {t90:.1f} s")
    if tev is not None:
        ax.axvline(tev, color="#c0392b", lw=1.5, label=f"evacuation time = {tev:.1f} s")
    _finish_evacuation_figure(fig, ax, "Evacuation curve", path)
    return True


def _finish_evacuation_figure(fig: Any, ax: Any, title: str, path: Path) -> None:
    """Axes, grid and legend of an evacuation-curve figure (agents evacuated over time), then write it."""
    ax.set_xlabel("time (s)")
    ax.set_ylabel("agents evacuated")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _exit_flow_figure(crowd: Mapping[str, Any], kpis: pd.DataFrame | None, path: Path) -> bool:
    exits = crowd.get("exits") or {}
    if not exits:
        return False
    fig = _figure("exit_flows")
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    any_series = False
    for eid in exits:
        s = _series(kpis, f"exit_count:{eid}")
        if s is not None:
            ax1.step(s[0], s[1], where="post", lw=1.8, label=str(eid))
            any_series = True
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("cumulative passages")
    ax1.set_title("Passages per exit")
    ax1.grid(alpha=0.3)
    if any_series:
        ax1.legend(fontsize=8, loc="upper left")
    else:
        ax1.text(0.5, 0.5, "no KPI time series", ha="center", va="center", transform=ax1.transAxes)
    names = [str(e) for e in exits]
    flows = [exits[e].get("flow_pps") for e in exits]
    x = np.arange(len(names))
    ax2.bar(x, [f if f is not None else 0.0 for f in flows], color="#3e7cb1")
    for xi, f in zip(x, flows, strict=True):
        ax2.text(
            xi, f if f is not None else 0.0, f"{f:.2f}" if f is not None else "n/a", ha="center", va="bottom"
        )
    ax2.set_xticks(x, names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax2.set_ylabel("flow (persons/s)")
    ax2.set_title("Flow between 10th and 90th percentile")
    ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return True


def _crowd_state_figure(kpis: pd.DataFrame | None, path: Path) -> bool:
    sp, de = _series(kpis, "mean_speed_mps"), _series(kpis, "max_density_ppm2")
    if sp is None and de is None:
        return False
    fig = _figure("crowd_state")
    ax = fig.add_subplot()
    if sp is not None:
        ax.plot(sp[0], sp[1], color="#2a9d8f", lw=1.6, label="mean speed of moving agents")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speed (m/s)", color="#2a9d8f")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if de is not None:
        ax2 = ax.twinx()
        ax2.plot(de[0], de[1], color="#c0392b", lw=1.2, label="max local density")
        ax2.set_ylabel("max local density (P/m², r = 1 m)", color="#c0392b")
        ax2.set_ylim(bottom=0)
    ax.set_title("Speed and density over time")
    fig.tight_layout()
    _save(fig, path)
    return True


def _density_figure(dm: DensityMap, level: int, path: Path) -> None:
    from matplotlib.collections import LineCollection

    fig = _figure("density")
    ax = fig.add_subplot()
    data = dm.max_density_ppm2[level]
    xe, ye = dm.x_edges, dm.y_edges
    vmax = max(float(dm.max_density_ppm2.max()), 1e-9)
    masked = np.ma.masked_where(data <= 0, data)
    im = ax.pcolormesh(xe, ye, masked, cmap="inferno_r", vmin=0.0, vmax=vmax, shading="flat")
    sel = dm.wall_levels == level
    if sel.any():
        segs = dm.walls[sel].reshape(-1, 2, 2)
        ax.add_collection(LineCollection(segs, colors="#1c7ed6", linewidths=1.5, zorder=3))
        lo = np.minimum(segs.reshape(-1, 2).min(axis=0), [xe[0], ye[0]])
        hi = np.maximum(segs.reshape(-1, 2).max(axis=0), [xe[-1], ye[-1]])
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"Maximum density per {dm.cell_m:g} m cell — {dm.level_names[level]}")
    fig.colorbar(im, ax=ax, label="persons/m²", shrink=0.85)
    fig.tight_layout()
    _save(fig, path)


# -- HTML sections ---------------------------------------------------------------------------------------------------
def _img(rel: str, caption: str) -> str:
    c = html.escape(caption)
    return f'<figure><img src="{html.escape(rel)}" alt="{c}"><figcaption>{c}</figcaption></figure>'


def _crowd_html(crowd: Mapping[str, Any]) -> str:
    cards = [
        ("agents", "agents"),
        ("evacuated", "evacuated"),
        ("evacuation_time_s", "evacuation time (s)"),
        ("t90_s", "t90 (s)"),
        ("max_density_ppm2", "max density (P/m²)"),
    ]
    parts = ['<div class="cards">']
    for key, label in cards:
        if key in crowd:
            parts.append(
                f'<div class="card"><div class="v">{_fmt(crowd[key], key)}</div><div class="k">{label}</div></div>'
            )
    parts.append("</div>")
    scalar = [(k, v) for k, v in crowd.items() if k != "exits" and not isinstance(v, Mapping | list)]
    parts.append(
        _table(
            [[f"<code>crowd.{html.escape(k)}</code>", _fmt(v, k), _unit(k)] for k, v in scalar],
            ["KPI", "value", "unit"],
            {1},
        )
    )
    exits = crowd.get("exits") or {}
    if exits:
        rows = [
            [
                html.escape(str(eid)),
                _fmt(e.get("count")),
                _fmt(e.get("first_s"), "first_s"),
                _fmt(e.get("last_s"), "last_s"),
                _fmt(e.get("flow_pps"), "flow_pps"),
            ]
            for eid, e in exits.items()
        ]
        parts.append("<h3>Exits</h3>")
        parts.append(
            _table(rows, ["exit", "passages", "first (s)", "last (s)", "flow (P/s, 10–90 %)"], {1, 2, 3, 4})
        )
    stairs = crowd.get("stairs") or {}
    if stairs:
        rows = [[html.escape(str(sid)), _fmt(s.get("up")), _fmt(s.get("down"))] for sid, s in stairs.items()]
        parts.append("<h3>Stairs</h3>")
        parts.append(_table(rows, ["stair", "went up", "went down"], {1, 2}))
    dead = crowd.get("unreachable_areas") or []
    if dead:
        rows = [
            [
                html.escape(str(d["area"])),
                html.escape(str(d["level"])),
                _fmt(d["unreachable_m2"]),
                _fmt(d["area_m2"]),
            ]
            for d in dead
        ]
        parts.append("<h3>Walkable areas with no way out (nobody placed there)</h3>")
        parts.append(_table(rows, ["area", "level", "no way out (m²)", "area (m²)"], {2, 3}))
    return "".join(parts)


def _section_html(name: str, section: Mapping[str, Any]) -> str:
    rows = [
        [f"<code>{html.escape(name)}.{html.escape(k)}</code>", _fmt(v, k), _unit(k)]
        for k, v in _flatten(section)
    ]
    return _table(rows, ["KPI", "value", "unit"], {1})


def _provenance_html(prov: Mapping[str, Any]) -> str:
    parts = []
    versions = prov.get("versions") or {}
    parts.append(
        _table([[html.escape(str(k)), _fmt(v)] for k, v in versions.items()], ["software", "version"])
    )
    meta = [[html.escape(k), _fmt(prov.get(k))] for k in ("seed", "git_revision", "platform") if k in prov]
    if meta:
        parts.append(_table(meta, ["run", "value"]))
    inputs = prov.get("inputs") or []
    if inputs:
        rows = [
            [
                f"<code>{html.escape(str(f.get('path')))}</code>",
                _fmt(f.get("size_bytes")),
                f"<code>{_fmt(f.get('sha256'))}</code>",
            ]
            for f in inputs
        ]
        parts.append("<h3>Input files</h3>")
        parts.append(_table(rows, ["file", "bytes", "sha256"], {1}))
    else:
        parts.append("<p>No input files.</p>")
    return "".join(parts)


# -- entry point -----------------------------------------------------------------------------------------------------
def write_report(
    out_dir: str | os.PathLike[str],
    summary: Mapping[str, Any],
    kpis_df: pd.DataFrame | None,
    density_maps: DensityMap | Mapping[str, np.ndarray] | None,
    scenario_resolved: Mapping[str, Any] | None,
    provenance: Mapping[str, Any] | None,
    traffic: Any = None,
) -> Path:
    """Write ``out_dir/report.html`` and its figures in ``out_dir/figures/`` (each file atomically); returns the
    path of report.html.

    summary : the ``summary.json`` content (metadata and model sections).
    kpis_df : the ``kpis.parquet`` table (t_s, kpi, value) or None.
    density_maps : a :class:`DensityMap`, its arrays (a loaded ``density_maps.npz``) or None.
    scenario_resolved : the resolved scenario, shown as YAML (collapsed).
    provenance : :func:`twin.scenario.results.provenance` output (versions, seed, git revision, inputs).
    traffic : a :class:`twin.scenario.report_traffic.TrafficReport` for the traffic figures, or None.
    """
    import yaml

    out = Path(out_dir)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    if kpis_df is not None:
        missing = {"t_s", "kpi", "value"} - set(kpis_df.columns)
        if missing:
            raise ValueError(f"kpis_df lacks columns {sorted(missing)}; expected t_s, kpi, value")
    dm = None
    if density_maps is not None:
        dm = density_maps if isinstance(density_maps, DensityMap) else DensityMap.from_arrays(density_maps)

    name = summary.get("scenario") or (scenario_resolved or {}).get("name") or "scenario"
    body: list[str] = [
        f"<h1>{html.escape(str(name))}</h1>",
        '<p class="sub">twin results report</p>',
    ]
    meta_keys = ("scenario", "seed", "simulated_s", "wall_time_s", "twin_version", "git_revision")
    body.append(
        _table(
            [[html.escape(k), _fmt(summary.get(k), k), _unit(k)] for k in meta_keys if k in summary],
            ["run", "value", "unit"],
        )
    )

    crowd = summary.get("crowd")
    if isinstance(crowd, Mapping):
        body.append("<h2>Crowd</h2>")
        body.append(_crowd_html(crowd))
        if _evacuation_figure(crowd, kpis_df, figdir / "evacuation.png"):
            body.append(
                _img("figures/evacuation.png", "Agents evacuated over time; t90 and evacuation time marked.")
            )
        if _exit_flow_figure(crowd, kpis_df, figdir / "exit_flows.png"):
            body.append(
                _img(
                    "figures/exit_flows.png",
                    "Cumulative passages per exit, and each exit's flow between its 10th and 90th percentile passage.",
                )
            )
        if _crowd_state_figure(kpis_df, figdir / "crowd_state.png"):
            body.append(
                _img("figures/crowd_state.png", "Mean speed of moving agents and maximum local density.")
            )

    if dm is not None:
        body.append("<h2>Density maps</h2>")
        body.append(
            f"<p>Maximum number of people per {dm.cell_m:g} m × {dm.cell_m:g} m cell over {dm.frames} recorded "
            f"frames ({dm.duration_s:.1f} s).</p>"
        )
        for k, level in enumerate(dm.level_names):
            rel = f"figures/density_{k:02d}_{_slug(level)}.png"
            _density_figure(dm, k, out / rel)
            body.append(_img(rel, f"Maximum density, {level}"))

    from twin.scenario.report_hazards import FIGURE_SIZES as HAZARD_SIZES
    from twin.scenario.report_hazards import hazard_figures, timeline_figure

    def hazard_figure(kind: str):
        from matplotlib.figure import Figure

        w, h = HAZARD_SIZES[kind]
        return Figure(figsize=(w / DPI, h / DPI), dpi=DPI)

    if any(k in summary for k in ("fire", "water", "flood", "gas", "response", "drill")):
        timeline = timeline_figure(out, hazard_figure, _save)
        if timeline is not None:
            body.append("<h2>Timeline</h2>")
            body.append(_img(*timeline))

    for key, section in summary.items():
        if key in ("crowd", "provenance") or not isinstance(section, Mapping):
            continue
        body.append(f"<h2>{html.escape(str(key)).capitalize()}</h2>")
        body.append(_section_html(str(key), section))
        for rel, caption in hazard_figures(str(key), section, out, traffic, hazard_figure, _save):
            body.append(_img(rel, caption))
        if key == "traffic" and traffic is not None:
            from twin.scenario.report_traffic import FIGURE_SIZES as TRAFFIC_SIZES
            from twin.scenario.report_traffic import traffic_figures

            def figure(kind: str):
                from matplotlib.figure import Figure

                w, h = TRAFFIC_SIZES[kind]
                return Figure(figsize=(w / DPI, h / DPI), dpi=DPI)

            for rel, caption in traffic_figures(traffic, kpis_df, figdir, figure, _save):
                body.append(_img(rel, caption))

    if scenario_resolved is not None:
        from twin.scenario.results import json_safe

        text = yaml.safe_dump(json_safe(dict(scenario_resolved)), sort_keys=False, allow_unicode=True)
        body.append("<h2>Scenario</h2>")
        body.append(
            f"<details><summary>Resolved scenario (YAML)</summary><pre>{html.escape(text)}</pre></details>"
        )

    if provenance is not None:
        body.append("<h2>Provenance</h2>")
        body.append(_provenance_html(provenance))

    doc = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(str(name))} — twin report</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body><main>\n{chr(10).join(body)}\n</main></body>\n</html>\n"
    )
    path = out / "report.html"
    write_text(doc, path)
    log.info("wrote report %s", path)
    return path
