"""``twin sweep report DIR``: the catalogue of a sweep as text and as ``DIR/report.html`` with figures.

The report (re)assembles the catalogue from the run rows, then queries it with DuckDB:

- runs by status, and the failed runs with their errors;
- a KPI table: per parameter combination (grid values and design point), the number of runs and the mean and
  standard deviation of each KPI over the seeds that ran ``ok``;
- ``figures/kpi_<kpi>.png``: each KPI against each parameter, one panel per parameter (every ``ok`` run a dot;
  the mean over the other parameters and seeds per value as a line for grid parameters);
- sensitivity indices (:mod:`twin.sweep.analysis`) for sampled sweeps, as a table and as
  ``figures/sensitivity_<kpi>.png``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.city.layer import write_text
from twin.errors import InputError
from twin.sweep.analysis import Sensitivity, kpi_columns, sensitivity
from twin.sweep.catalogue import CATALOGUE_FILE, assemble_catalogue

log = logging.getLogger(__name__)

__all__ = ["PREFERRED_KPIS", "SweepReport", "sweep_report"]

PREFERRED_KPIS = (
    "crowd.evacuation_time_s",
    "crowd.t90_s",
    "crowd.evacuated",
    "crowd.max_density_ppm2",
    "traffic.mean_travel_time_s",
    "traffic.mean_delay_s",
    "traffic.arrived",
    "response.mean_response_time_s",
)
"""KPIs the report shows first (when present and varying); the rest follow in name order up to ``max_kpis``."""
DPI = 100


@dataclass
class SweepReport:
    """What :func:`sweep_report` made: the text summary, ``report.html``, the figures, the KPIs shown and the
    sensitivity analysis."""

    text: str
    html: Path
    figures: list[Path] = field(default_factory=list)
    kpis: list[str] = field(default_factory=list)
    sensitivity: Sensitivity | None = None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    s = str(v)
    return s if len(s) <= 40 else s[:39] + "…"


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "kpi"


def _choose_kpis(
    available: list[str], varying: set[str], asked: list[str] | None, *, source: Path, limit: int
) -> list[str]:
    if asked:
        unknown = [k for k in asked if k not in available]
        if unknown:
            raise InputError(
                source,
                f"--kpi: no KPI {', '.join(unknown)} in this sweep; its KPIs: {', '.join(available) or 'none'}",
            )
        return list(asked)
    first = [k for k in PREFERRED_KPIS if k in varying]
    rest = sorted(k for k in varying if k not in first)
    return (first + rest)[:limit]


def _distinct_kpis(
    con: Any, cat: str, available: list[str], varying: set[str], params: list[str], numeric: set[str]
) -> set[str]:
    """The varying KPIs without those equal, run for run, to a KPI before them (in report order) or to a
    parameter (``crowd.agents`` of a sweep over ``crowd.groups[0].count``)."""
    order = [k for k in PREFERRED_KPIS if k in varying] + sorted(
        k for k in varying if k not in PREFERRED_KPIS
    )
    kept: list[str] = []
    for k in order:
        others = kept + [p for p in params if p in numeric]
        if others:
            same = con.execute(
                "SELECT "
                + ", ".join(f"count(*) FILTER (WHERE {_q(k)} IS DISTINCT FROM {_q(o)})" for o in others)
                + f" FROM {cat} WHERE status = 'ok'"
            ).fetchone()
            if any(n == 0 for n in same):
                continue
        kept.append(k)
    return set(kept)


def _figure(width: int, height: int) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI)


def _save(fig: Any, path: Path) -> None:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from twin.city.layer import write_bytes

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    write_bytes(buf.getvalue(), path)


def _kpi_figure(runs: pd.DataFrame, kpi: str, params: list[dict[str, Any]], path: Path) -> None:
    """One panel per parameter: every ok run's KPI against the parameter value; grid parameters also get the mean
    per value. Non-numeric values (text, mappings) are placed at their position in the grid."""
    n = len(params)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(380 * cols + 40, 320 * rows + 40)
    for i, p in enumerate(params):
        ax = fig.add_subplot(rows, cols, i + 1)
        col = p["path"]
        y = runs[kpi].to_numpy(np.float64)
        numeric = p["kind"] in ("int", "float", "bool")
        if numeric:
            x = runs[col].to_numpy(np.float64)
            ticks = None
        else:
            order = [
                json.dumps(v, sort_keys=True, separators=(",", ":")) if p["kind"] == "json" else v
                for v in p.get("grid") or []
            ]
            pos = {v: j for j, v in enumerate(order)}
            x = np.array([pos.get(v, np.nan) for v in runs[col]], dtype=np.float64)
            ticks = [_num(v) if len(str(v)) <= 12 else f"#{j}" for j, v in enumerate(order)]
        ax.scatter(x, y, s=12, alpha=0.6, color="#3e7cb1", label="runs")
        if "sample" not in p:
            frame = pd.DataFrame({"x": x, "y": y}).dropna()
            mean = frame.groupby("x")["y"].mean()
            ax.plot(mean.index, mean.to_numpy(), color="#d9480f", marker="o", label="mean")
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=20, fontsize=8)
        ax.set_xlabel(col, fontsize=9)
        ax.set_ylabel(kpi, fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _sensitivity_figure(table: pd.DataFrame, kpi: str, method: str, path: Path) -> None:
    measures = ["S1", "ST"] if method == "sobol" else (["mu_star", "sigma"] if method == "morris" else ["S1"])
    sub = table[(table["kpi"] == kpi) & (table["group"] == table["group"].iloc[0])]
    names = list(dict.fromkeys(sub["parameter"]))
    fig = _figure(160 + 140 * len(names) * len(measures), 380)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(measures)
    for j, m in enumerate(measures):
        rows = sub[sub["measure"] == m].set_index("parameter").reindex(names)
        conf = rows["conf"].to_numpy(np.float64)
        ax.bar(
            np.arange(len(names)) + j * width,
            rows["value"].to_numpy(np.float64),
            width,
            yerr=None if np.isnan(conf).all() else conf,
            capsize=3,
            label=m,
        )
    ax.set_xticks(np.arange(len(names)) + width * (len(measures) - 1) / 2, names, fontsize=8)
    ax.set_title(
        f"{kpi}: {method} indices" + (f" ({sub['group'].iloc[0]})" if sub["group"].iloc[0] else ""),
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save(fig, path)


def sweep_report(
    out_dir: str | os.PathLike[str], *, kpis: list[str] | None = None, max_kpis: int = 6, max_rows: int = 30
) -> SweepReport:
    """Report the sweep in ``out_dir``: returns the text summary (``max_rows`` rows of the KPI table) and writes
    ``report.html`` (every row) with ``figures/``. ``kpis``: KPI columns to show (default: up to ``max_kpis``
    that vary, :data:`PREFERRED_KPIS` first)."""
    import duckdb

    from twin.scenario.report import _CSS  # one look for every twin report

    out = Path(out_dir)
    meta_path = out / "sweep.json"
    if not meta_path.is_file():
        raise InputError(out, "is not a sweep folder (no sweep.json); run `twin sweep SWEEP --out DIR` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    params_meta: list[dict[str, Any]] = meta["parameters"]
    params = [p["path"] for p in params_meta]
    assemble_catalogue(out, parameters=params)
    cat = "read_parquet('" + str(out / CATALOGUE_FILE).replace("'", "''") + "')"
    con = duckdb.connect(":memory:")
    try:
        schema = con.execute(f"DESCRIBE SELECT * FROM {cat}").fetchall()
        numeric = {
            r[0] for r in schema if r[1].split("(")[0] in {"DOUBLE", "BIGINT", "INTEGER", "FLOAT", "BOOLEAN"}
        }
        available = [k for k in kpi_columns([r[0] for r in schema], params) if k in numeric]
        varying = set()
        if available:
            row = con.execute(
                "SELECT "
                + ", ".join(f"count(DISTINCT {_q(k)})" for k in available)
                + f" FROM {cat} WHERE status = 'ok'"
            ).fetchone()
            varying = {k for k, n in zip(available, row, strict=True) if n > 1}
        if not kpis:
            varying = _distinct_kpis(con, cat, available, varying, params, numeric)
        shown = _choose_kpis(available, varying, kpis, source=out, limit=max_kpis)
        status = dict(con.execute(f"SELECT status, count(*) FROM {cat} GROUP BY status").fetchall())
        failed = con.execute(
            f"SELECT run_id, error FROM {cat} WHERE status = 'failed' ORDER BY run_index LIMIT 20"
        ).fetchall()
        group_cols = params + (["sample"] if meta.get("problem") else [])
        keys = ", ".join(_q(c) for c in group_cols)
        stats = ", ".join(
            f"avg({_q(k)}) FILTER (WHERE status = 'ok') AS {_q(k + ' mean')}, "
            f"stddev_samp({_q(k)}) FILTER (WHERE status = 'ok') AS {_q(k + ' sd')}"
            for k in shown
        )
        table = con.execute(
            f"SELECT {keys + ', ' if keys else ''}count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok"
            f"{', ' + stats if stats else ''} FROM {cat} {'GROUP BY ' + keys if keys else ''} "
            f"ORDER BY min(run_index)"
        ).df()
        runs = (
            con.execute(
                f"SELECT {', '.join(_q(c) for c in [*params, *shown])} FROM {cat} WHERE status = 'ok' ORDER BY run_index"
            ).df()
            if shown and params
            else None
        )
    finally:
        con.close()

    total = int(meta.get("runs", sum(status.values())))
    n_ok, n_failed = status.get("ok", 0), status.get("failed", 0)
    missing = total - n_ok - n_failed
    lines = [
        f"sweep {meta.get('name')}: {total} runs: {n_ok} ok, {n_failed} failed, {missing} not run"
        + (" (twin sweep --resume runs them)" if missing or n_failed else ""),
        f"catalogue: {out / CATALOGUE_FILE}",
    ]
    header = [*params, "runs", "ok"] + [f"{k} (mean ± sd)" for k in shown]

    def table_rows(frame: pd.DataFrame) -> list[list[str]]:
        rows = []
        for rec in frame.to_dict("records"):
            cells = [_num(rec[p]) for p in params] + [str(rec["runs"]), str(rec["ok"])]
            for k in shown:
                m, s = rec[f"{k} mean"], rec[f"{k} sd"]
                cells.append(
                    _num(m)
                    + ("" if s is None or (isinstance(s, float) and math.isnan(s)) else f" ± {_num(s)}")
                )
            rows.append(cells)
        return rows

    all_rows = table_rows(table)
    lines += ["", _text_table(header, all_rows[:max_rows])]
    if len(all_rows) > max_rows:
        lines.append(
            f"… {len(all_rows) - max_rows} more rows in report.html (or query the catalogue with DuckDB)"
        )
    if failed:
        lines += ["", "failed runs:"] + [f"  {rid}: {err}" for rid, err in failed]
        if n_failed > len(failed):
            lines.append(f"  … and {n_failed - len(failed)} more")

    figdir = out / "figures"
    figures: list[Path] = []
    if runs is not None and len(runs):
        for k in shown:
            path = figdir / f"kpi_{_slug(k)}.png"
            _kpi_figure(runs, k, params_meta, path)
            figures.append(path)

    sens = sensitivity(out, kpis=shown) if meta.get("problem") else None
    if sens is not None:
        if len(sens.indices):
            lines += ["", f"sensitivity indices ({sens.method}):"]
            srows = [
                [r.kpi, r.group, r.parameter, r.measure, _num(r.value), _num(r.conf)]
                for r in sens.indices.itertuples()
            ]
            lines.append(_text_table(["kpi", "group", "parameter", "measure", "value", "± conf"], srows))
            for k in dict.fromkeys(sens.indices["kpi"]):
                path = figdir / f"sensitivity_{_slug(k)}.png"
                _sensitivity_figure(sens.indices, k, sens.method, path)
                figures.append(path)
        lines += [f"note: {n}" for n in sens.notes]

    body = [
        f"<h1>{html.escape(str(meta.get('name')))}</h1>",
        f'<p class="sub">twin sweep report — {total} runs of {html.escape(str(meta.get("base")))}</p>',
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v">{v}</div><div class="k">{k}</div></div>'
            for k, v in (("runs", total), ("ok", n_ok), ("failed", n_failed), ("not run", missing))
        )
        + "</div>",
        "<h2>KPIs by parameters</h2>",
        _html_table(header, all_rows[:5000]),
    ]
    for path in figures:
        rel = path.relative_to(out).as_posix()
        body.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(path.stem)}"></figure>')
    if sens is not None:
        body.append("<h2>Sensitivity</h2>")
        if len(sens.indices):
            body.append(
                _html_table(
                    ["kpi", "group", "parameter", "method", "measure", "value", "± conf"],
                    [
                        [r.kpi, r.group, r.parameter, r.method, r.measure, _num(r.value), _num(r.conf)]
                        for r in sens.indices.itertuples()
                    ],
                )
            )
        body += [f"<p>{html.escape(n)}</p>" for n in sens.notes]
    if failed:
        body.append("<h2>Failed runs</h2>")
        body.append(_html_table(["run", "error"], [[r, e or ""] for r, e in failed]))
    doc = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(str(meta.get('name')))} — twin sweep</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body><main>\n{chr(10).join(body)}\n</main></body>\n</html>\n"
    )
    html_path = out / "report.html"
    write_text(doc, html_path)
    lines += ["", f"report: {html_path}"]
    return SweepReport("\n".join(lines), html_path, figures, shown, sens)
