"""The HTML report and figures of ``twin compare`` (``report.html`` + ``figures/``, self-contained like the run
report: inline CSS, PNGs beside it, matplotlib object API on Agg).

Figures (each only when both runs have its data; base in blue, variant in orange):

- ``evacuation.png``: agents evacuated over time, both runs, each run's t90 marked;
- ``exit_usage.png``: passages and flow (10–90 %) per exit, bars side by side;
- ``travel_times.png``: trip travel-time histograms overlaid, and their cumulative distributions;
- ``edge_speed_diff.png``: the road network coloured by the change of each edge's mean speed over the run
  (variant − base, m/s, diverging colour map centred at 0; black: used in one run only, grey: in neither);
- ``density_diff_<k>_<level>.png``: per level, the change of the maximum density per cell (variant − base) on
  the union of both grids when their cells line up (a wider room in the variant is fine), else the two maps side
  by side;
- ``flood_depth_diff.png``: the change of the maximum flood depth (variant − base), likewise, or both side by side.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.scenario.compare import (
    RunResults,
    density_grids,
    edge_mean_speed,
    flood_grids,
)
from twin.scenario.report import (
    _CSS,
    DPI,
    _finish_evacuation_figure,
    _fmt,
    _img,
    _save,
    _series,
    _slug,
    _table,
)

log = logging.getLogger(__name__)

__all__ = ["FIGURE_SIZES", "write_compare_report"]

FIGURE_SIZES: dict[str, tuple[int, int]] = {
    "evacuation": (900, 500),
    "exit_usage": (1100, 450),
    "travel_times": (1100, 450),
    "edge_speed_diff": (900, 800),
    "density_diff": (800, 650),
    "density_pair": (1300, 600),
    "flood_diff": (800, 650),
    "flood_pair": (1300, 600),
}
"""Pixel sizes (width, height) of the comparison figures by kind."""

BASE_COLOUR = "#1f77b4"
VARIANT_COLOUR = "#e8590c"

_EXTRA_CSS = """
td.better { color: #2b8a3e; font-weight: 600; }
td.worse { color: #c92a2a; font-weight: 600; }
.card.better { border-color: #2b8a3e; }
.card.worse { border-color: #c92a2a; }
.card .d { font-size: 0.95em; }
.card.better .d { color: #2b8a3e; }
.card.worse .d { color: #c92a2a; }
"""


def _figure(kind: str):
    from matplotlib.figure import Figure

    w, h = FIGURE_SIZES[kind]
    return Figure(figsize=(w / DPI, h / DPI), dpi=DPI)


def _labels(base: RunResults, variant: RunResults) -> tuple[str, str]:
    a, b = base.name, variant.name
    if a == b:
        return f"base ({a})", f"variant ({b})"
    return a, b


# -- crowd -----------------------------------------------------------------------------------------------------------
def _evacuation_figure(base: RunResults, variant: RunResults, path: Path) -> bool:
    runs = [(r, _series(r.kpis, "evacuated")) for r in (base, variant)]
    if any(s is None for _, s in runs):
        return False
    fig = _figure("evacuation")
    ax = fig.add_subplot()
    for (run, (t, v)), label, colour in zip(
        runs, _labels(base, variant), (BASE_COLOUR, VARIANT_COLOUR), strict=True
    ):
        crowd = run.summary.get("crowd") or {}
        ax.step(t, v, where="post", color=colour, lw=2, label=label)
        t90 = crowd.get("t90_s")
        if t90 is not None:
            ax.axvline(t90, color=colour, lw=1.2, ls="--", label=f"t90 {label} = {t90:.1f} s")
        agents = crowd.get("agents")
        if agents:
            ax.axhline(0.9 * agents, color=colour, lw=0.8, ls=":", alpha=0.8)
    _finish_evacuation_figure(fig, ax, "Evacuation curves (dotted: 90 % of each run's agents)", path)
    return True


def _exit_usage_figure(base: RunResults, variant: RunResults, path: Path) -> bool:
    eb = (base.summary.get("crowd") or {}).get("exits") or {}
    ev = (variant.summary.get("crowd") or {}).get("exits") or {}
    if not eb or not ev:
        return False
    names = list(eb) + [e for e in ev if e not in eb]
    x = np.arange(len(names))
    w = 0.4
    fig = _figure("exit_usage")
    axes = fig.subplots(1, 2)
    for ax, key, title, ylabel in (
        (axes[0], "count", "Passages per exit", "persons"),
        (axes[1], "flow_pps", "Flow between 10th and 90th percentile", "persons/s"),
    ):
        for k, (exits, label, colour) in enumerate(
            zip((eb, ev), _labels(base, variant), (BASE_COLOUR, VARIANT_COLOUR), strict=True)
        ):
            vals = [(exits.get(n) or {}).get(key) for n in names]
            xs = x + (k - 0.5) * w
            ax.bar(xs, [v if v is not None else 0.0 for v in vals], w, color=colour, label=label)
            for xi, v, n in zip(xs, vals, names, strict=True):
                text = (
                    "no exit"
                    if n not in exits
                    else ("n/a" if v is None else (f"{v:.2f}" if key == "flow_pps" else f"{v:g}"))
                )
                ax.text(xi, v or 0.0, text, ha="center", va="bottom", fontsize=8)
        rot = 30 if len(names) > 4 else 0
        ax.set_xticks(x, names, rotation=rot, ha="right" if rot else "center")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return True


# -- traffic ---------------------------------------------------------------------------------------------------------
def _arrived_durations(trips: pd.DataFrame) -> np.ndarray:
    t = trips.loc[trips["arrived"].astype(bool), "duration_s"].to_numpy(np.float64)
    return t[np.isfinite(t)]


def _travel_time_figure(base: RunResults, variant: RunResults, path: Path) -> bool:
    if base.trips is None or variant.trips is None:
        return False
    tb, tv = _arrived_durations(base.trips), _arrived_durations(variant.trips)
    if not tb.size or not tv.size:
        return False
    top = float(np.percentile(np.concatenate([tb, tv]), 99.5))
    bins = np.linspace(0.0, max(top, 1.0), 60)
    fig = _figure("travel_times")
    ax1, ax2 = fig.subplots(1, 2)
    for t, label, colour in zip((tb, tv), _labels(base, variant), (BASE_COLOUR, VARIANT_COLOUR), strict=True):
        ax1.hist(
            t, bins=bins, histtype="step", lw=1.8, color=colour, label=f"{label} (mean {t.mean():.1f} s)"
        )
        ax1.axvline(t.mean(), color=colour, lw=1, ls="--")
        s = np.sort(t)
        ax2.step(s, np.arange(1, s.size + 1) / s.size, where="post", color=colour, lw=1.8, label=label)
    ax1.set_xlabel("travel time (s)")
    ax1.set_ylabel("vehicles")
    ax1.set_title("Travel times of arrived vehicles")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("travel time (s)")
    ax2.set_ylabel("share of arrived vehicles")
    ax2.set_title("Cumulative distribution")
    ax2.set_xlim(0, bins[-1])
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return True


def edge_geometry(run: RunResults) -> tuple[list[str], list[np.ndarray]]:
    """Edge ids and centre lines ((n_i, 2) float64, metres, the run's local frame) of the run's road network,
    loaded from its resolved scenario the way the run loaded it. Raises :class:`InputError` when the scenario or
    its road source cannot be read."""
    from twin.scenario.schema import Scenario, build_city

    if run.scenario is None:
        raise InputError(run.path, "no scenario.yaml: the road network is unknown")
    source = run.path / "scenario.yaml"
    scenario = Scenario.from_dict(run.scenario, source=source, base_dir=run.path)
    roads = build_city(scenario).roads
    if roads is None:
        raise InputError(source, "the scenario has no road network (city.roads)")
    edges = roads.edges
    ids = [str(e) for e in edges["id"]]
    shapes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in edges["shape"]]
    return ids, shapes


def _edge_speed_figure(base: RunResults, variant: RunResults, path: Path, notes: list[str]) -> bool:
    from matplotlib.collections import LineCollection
    from matplotlib.colors import TwoSlopeNorm

    from twin.scenario.report_traffic import _right_offset

    if base.edges is None or variant.edges is None:
        return False
    try:
        ids, shapes = edge_geometry(base)
    except (InputError, OSError) as e:
        notes.append(f"no edge speed difference map: cannot load the road network of the base run ({e})")
        log.warning("edge speed difference map skipped: %s", e)
        return False
    if not shapes:
        return False
    sb, sv = edge_mean_speed(base.edges), edge_mean_speed(variant.edges)
    in_b = np.array([e in sb.index for e in ids])
    in_v = np.array([e in sv.index for e in ids])
    both = in_b & in_v
    delta = np.full(len(ids), np.nan)
    idx = np.flatnonzero(both)
    delta[idx] = sv.reindex([ids[i] for i in idx]).to_numpy() - sb.reindex([ids[i] for i in idx]).to_numpy()
    pts = np.concatenate(shapes)
    span = float(np.ptp(pts, axis=0).max()) if len(pts) else 1.0
    segs = [_right_offset(s, 0.004 * span) for s in shapes]
    fig = _figure("edge_speed_diff")
    ax = fig.add_subplot()
    unused = [s for s, b, v in zip(segs, in_b, in_v, strict=True) if not (b or v)]
    one = [s for s, b, v in zip(segs, in_b, in_v, strict=True) if b != v]
    ax.add_collection(LineCollection(unused, colors="0.85", linewidths=0.6))
    if one:
        ax.add_collection(LineCollection(one, colors="k", linewidths=2.0, label="used in one run only"))
    if idx.size:
        lim = max(float(np.abs(delta[idx]).max()), 0.1)
        lc = LineCollection(
            [segs[i] for i in idx], cmap="RdBu", norm=TwoSlopeNorm(0.0, -lim, lim), linewidths=1.8
        )
        lc.set_array(delta[idx])
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, label="mean speed change, variant − base (m/s)", shrink=0.85)
    if one:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(pts[:, 0].min(), pts[:, 0].max())
    ax.set_ylim(pts[:, 1].min(), pts[:, 1].max())
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("Where traffic got slower (red) or faster (blue)")
    fig.tight_layout()
    _save(fig, path)
    return True


# -- maps ------------------------------------------------------------------------------------------------------------
def _diff_map(ax: Any, fig: Any, xe: np.ndarray, ye: np.ndarray, d: np.ndarray, label: str) -> None:
    from matplotlib.colors import TwoSlopeNorm

    lim = max(float(np.abs(d).max()), 1e-9)
    im = ax.pcolormesh(xe, ye, d, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), shading="flat")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    fig.colorbar(im, ax=ax, label=label, shrink=0.85)


def _walls(ax: Any, dm: Any, level: int) -> None:
    from matplotlib.collections import LineCollection

    sel = dm.wall_levels == level
    if sel.any():
        ax.add_collection(LineCollection(dm.walls[sel].reshape(-1, 2, 2), colors="#495057", linewidths=1.0))


def _pair_maps(
    fig: Any,
    grids: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    titles: Sequence[str],
    label: str,
    cmap: str,
) -> list[Any]:
    vmax = max(max(float(np.nanmax(g[2])) for g in grids), 1e-9)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)  # one extent: places line up across the two maps
    for ax, (xe, ye, data), title in zip(axes, grids, titles, strict=True):
        im = ax.pcolormesh(
            xe, ye, np.ma.masked_where(~(data > 0), data), cmap=cmap, vmin=0, vmax=vmax, shading="flat"
        )
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("x (m)")
        fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    return list(axes)


def _density_figures(base: RunResults, variant: RunResults, out: Path) -> list[tuple[str, str]]:
    a, b = base.density, variant.density
    if a is None or b is None:
        return []
    written = []
    la, lb = _labels(base, variant)
    for k, name in enumerate([n for n in a.level_names if n in b.level_names]):
        ia, ib = a.level_names.index(name), b.level_names.index(name)
        rel = f"figures/density_diff_{k:02d}_{_slug(name)}.png"
        grids = density_grids(a, ia, b, ib)
        if grids is not None:
            xe, ye, ga, gb = grids
            fig = _figure("density_diff")
            ax = fig.add_subplot()
            _diff_map(ax, fig, xe, ye, gb - ga, "change of max density (P/m²)")
            _walls(ax, a, ia)
            _walls(ax, b, ib)
            ax.set_title(f"Maximum density per {a.cell_m:g} m cell, variant − base — {name}")
            caption = f"Change of the maximum density per cell (red: denser in the variant), {name}."
        else:
            fig = _figure("density_pair")
            axes = _pair_maps(
                fig,
                [
                    (a.x_edges, a.y_edges, a.max_density_ppm2[ia]),
                    (b.x_edges, b.y_edges, b.max_density_ppm2[ib]),
                ],
                [la, lb],
                "max density (P/m²)",
                "inferno_r",
            )
            _walls(axes[0], a, ia)
            _walls(axes[1], b, ib)
            caption = f"Maximum density per cell, {name}: the grids do not line up, so the two maps are side by side."
        fig.tight_layout()
        _save(fig, out / rel)
        written.append((rel, caption))
    return written


def _flood_edges(f: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = f["depth_m"].shape
    return f["x0"] + f["cell_m"] * np.arange(nx + 1), f["y0"] + f["cell_m"] * np.arange(ny + 1)


def _flood_figure(base: RunResults, variant: RunResults, path: Path) -> str | None:
    a, b = base.flood, variant.flood
    if a is None or b is None:
        return None
    grids = flood_grids(a, b)
    if grids is not None:
        xe, ye, da, db = grids
        fig = _figure("flood_diff")
        ax = fig.add_subplot()
        _diff_map(ax, fig, xe, ye, db - da, "change of max depth (m)")
        ax.set_title("Maximum flood depth, variant − base")
        caption = "Change of the maximum flood depth per cell (red: deeper in the variant)."
    else:
        fig = _figure("flood_pair")
        _pair_maps(
            fig,
            [(*_flood_edges(a), a["depth_m"]), (*_flood_edges(b), b["depth_m"])],
            list(_labels(base, variant)),
            "max depth (m)",
            "Blues",
        )
        caption = "Maximum flood depth: the grids do not line up, so the two maps are side by side."
    fig.tight_layout()
    _save(fig, path)
    return caption


# -- HTML ------------------------------------------------------------------------------------------------------------
def _value(v: Any, key: str) -> str:
    if isinstance(v, str):
        return html.escape(v)
    return _fmt(v, key)


def _signed(v: Any, key: str) -> str:
    if v is None:
        return _fmt(None)
    text = _fmt(v, key)
    return text if v <= 0 else "+" + text


def _pct(r: Any) -> str:
    return _fmt(None) if r is None else f"{100 * r:+.1f} %"


def _cards(rows: list[dict[str, Any]]) -> str:
    from twin.scenario.compare import HEADLINE_KPIS

    parts = ['<div class="cards">']
    for r in rows:
        if r["kpi"] not in HEADLINE_KPIS or r["delta"] is None:
            continue
        k = r["kpi"]
        cls = f" {r['verdict']}" if r["verdict"] in ("better", "worse") else ""
        parts.append(
            f'<div class="card{cls}"><div class="v">{_value(r["base"], k)} → {_value(r["variant"], k)}</div>'
            f'<div class="d">{_signed(r["delta"], k)} {html.escape(r["unit"])} ({_pct(r["relative_delta"])})</div>'
            f'<div class="k"><code>{html.escape(k)}</code></div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _kpi_table(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        k = r["kpi"]
        verdict = r["verdict"] or ""
        cls = f' class="{verdict}"' if verdict in ("better", "worse") else ""
        note = f" (only in {r['only_in']})" if r["only_in"] else ""
        out.append(
            "<tr>"
            f"<td><code>{html.escape(k)}</code>{note}</td><td>{html.escape(r['unit'])}</td>"
            f'<td class="num">{_value(r["base"], k)}</td><td class="num">{_value(r["variant"], k)}</td>'
            f'<td class="num">{_signed(r["delta"], k)}</td><td class="num">{_pct(r["relative_delta"])}</td>'
            f"<td{cls}>{html.escape(verdict)}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("KPI", "unit", "base", "variant", "Δ", "Δ %", "verdict"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody></table>"


def _yaml_value(v: Any) -> str:
    """A scenario value as compact text: mappings and lists as JSON (``{"at_s": 0.0, "type": "close_road"}``)."""
    if v is None:
        return _fmt(None)
    if isinstance(v, Mapping | list):
        return f"<code>{html.escape(json.dumps(v, ensure_ascii=False))}</code>"
    return f"<code>{html.escape(str(v))}</code>"


def _diff_table(diff: list[dict[str, Any]]) -> str:
    if not diff:
        return "<p>The two resolved scenarios are identical.</p>"
    rows = [
        [
            f"<code>{html.escape(d['path'])}</code>",
            _yaml_value(d["base"]) if d["only_in"] != "variant" else "<em>absent</em>",
            _yaml_value(d["variant"]) if d["only_in"] != "base" else "<em>absent</em>",
        ]
        for d in diff
    ]
    return _table(rows, ["scenario path", "base", "variant"])


def _runs_table(result: Mapping[str, Any]) -> str:
    b, v = result["base"], result["variant"]
    keys = ("scenario", "folder", "seed", "simulated_s", "wall_time_s", "twin_version", "git_revision")
    rows = [[html.escape(k), _value(b.get(k), k), _value(v.get(k), k)] for k in keys]
    rows.append(["sections", html.escape(", ".join(b["sections"])), html.escape(", ".join(v["sections"]))])
    return _table(rows, ["run", "base", "variant"])


def _versions_table(result: Mapping[str, Any]) -> str:
    vb, vv = result["base"]["versions"], result["variant"]["versions"]
    names = list(vb) + [n for n in vv if n not in vb]
    rows = [
        [
            html.escape(n),
            _value(vb.get(n), ""),
            _value(vv.get(n), ""),
            "" if vb.get(n) == vv.get(n) else "differs",
        ]
        for n in names
    ]
    return _table(rows, ["software", "base", "variant", ""])


def _edges_html(traffic: Mapping[str, Any]) -> str:
    e = traffic.get("edges")
    if not e:
        return ""
    parts = [
        f"<p>{e['compared']} edges used in both runs; mean speed change "
        f"{_signed(e['mean_delta_mps'], 'mps')} m/s. "
        f"Used in the base only: {len(e['used_in_base_only'])}; in the variant only: "
        f"{len(e['used_in_variant_only'])}.</p>"
    ]
    slowed = [r for r in e["slowed_most"] if r["delta_mps"] < 0]
    if slowed:
        rows = [
            [
                f"<code>{html.escape(r['edge'])}</code>",
                _fmt(r["base_mps"]),
                _fmt(r["variant_mps"]),
                _signed(r["delta_mps"], "mps"),
            ]
            for r in slowed
        ]
        parts.append("<h3>Edges slowed most</h3>")
        parts.append(_table(rows, ["edge", "base (m/s)", "variant (m/s)", "Δ (m/s)"], {1, 2, 3}))
    if e["used_in_base_only"]:
        shown = ", ".join(html.escape(x) for x in e["used_in_base_only"][:30])
        more = " …" if len(e["used_in_base_only"]) > 30 else ""
        parts.append(f"<p>Edges no vehicle used in the variant (closed?): <code>{shown}{more}</code></p>")
    return "".join(parts)


def _only_in_html(only: Mapping[str, Any]) -> str:
    items = []
    for side in ("base", "variant"):
        o = only[side]
        if o["sections"]:
            items.append(f"<li>sections only in the {side}: {html.escape(', '.join(o['sections']))}</li>")
        if o["files"]:
            items.append(f"<li>files only in the {side}: {html.escape(', '.join(o['files']))}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def write_compare_report(
    out: Path, base: RunResults, variant: RunResults, result: Mapping[str, Any], notes: list[str]
) -> list[dict[str, str]]:
    """Draw the figures into ``out/figures/`` and write ``out/report.html`` (each file atomically) from the
    comparison ``result`` (the comparison.json content so far); appends to ``notes`` what could not be drawn.
    Returns ``[{"file": relative path, "caption": …}]`` of the figures written."""
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figs: dict[str, list[tuple[str, str]]] = {"crowd": [], "traffic": [], "density": [], "flood": []}
    if _evacuation_figure(base, variant, figdir / "evacuation.png"):
        figs["crowd"].append(
            ("figures/evacuation.png", "Agents evacuated over time in both runs; dashed: each t90.")
        )
    if _exit_usage_figure(base, variant, figdir / "exit_usage.png"):
        figs["crowd"].append(
            ("figures/exit_usage.png", "Passages and flow per exit, base and variant side by side.")
        )
    if _travel_time_figure(base, variant, figdir / "travel_times.png"):
        figs["traffic"].append(
            (
                "figures/travel_times.png",
                "Travel times of the arrived vehicles: histograms and cumulative shares.",
            )
        )
    if _edge_speed_figure(base, variant, figdir / "edge_speed_diff.png", notes):
        figs["traffic"].append(
            (
                "figures/edge_speed_diff.png",
                "Change of each road edge's mean speed over the run, variant − base (red: slower in the variant; "
                "black: used in one run only; grey: unused).",
            )
        )
    figs["density"] = _density_figures(base, variant, out)
    caption = _flood_figure(base, variant, figdir / "flood_depth_diff.png")
    if caption:
        figs["flood"].append(("figures/flood_depth_diff.png", caption))
    for side, run in (("base", base), ("variant", variant)):
        other = variant if run is base else base
        for what, have in (("density maps", "density"), ("flood depths", "flood"), ("trip tables", "trips")):
            if getattr(run, have) is not None and getattr(other, have) is None:
                notes.append(f"{what} only in the {side} run: not compared")

    name = f"{base.name} → {variant.name}"
    body = [
        f"<h1>{html.escape(name)}</h1>",
        '<p class="sub">twin what-if comparison</p>',
        "<h2>What changed</h2>",
        _diff_table(result["scenario_diff"]),
        "<h2>Headline</h2>",
        _cards(result["kpis"]),
        _only_in_html(result["only_in"]),
        "<h2>KPIs</h2>",
        _kpi_table(result["kpis"]),
    ]
    titles = {"crowd": "Crowd", "traffic": "Traffic", "density": "Density", "flood": "Flood"}
    for key, items in figs.items():
        if not items and not (key == "traffic" and result.get("traffic")):
            continue
        body.append(f"<h2>{titles[key]}</h2>")
        body.extend(_img(rel, cap) for rel, cap in items)
        if key == "traffic" and result.get("traffic"):
            body.append(_edges_html(result["traffic"]))
    if notes:
        body.append("<h2>Not compared</h2>")
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    body.append("<h2>Runs</h2>")
    body.append(_runs_table(result))
    body.append(f"<details><summary>Software versions</summary>{_versions_table(result)}</details>")
    doc = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(name)} — twin comparison</title>\n<style>{_CSS}{_EXTRA_CSS}</style>\n</head>\n"
        f"<body><main>\n{chr(10).join(body)}\n</main></body>\n</html>\n"
    )
    from twin.city.layer import write_text

    write_text(doc, out / "report.html")
    log.info("wrote comparison report %s", out / "report.html")
    return [{"file": rel, "caption": cap} for items in figs.values() for rel, cap in items]
