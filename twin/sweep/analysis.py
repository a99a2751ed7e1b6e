"""Sensitivity indices of a sweep's KPIs to its sampled parameters, with SALib, from the catalogue.

The index follows the design the sweep sampled (each estimator needs its own design):

- ``sobol`` design (Saltelli scheme) → Sobol indices, ``SALib.analyze.sobol``: ``S1`` (first order: the share of
  the KPI's variance due to the parameter alone) and ``ST`` (total: including its interactions), each with its
  95 % bootstrap confidence half-width (``S1_conf``, ``ST_conf``);
- ``morris`` design (trajectories) → Morris elementary effects, ``SALib.analyze.morris``: ``mu_star`` (mean
  absolute effect over the parameter's range, in KPI units), ``mu``, ``sigma`` (spread: non-linearity or
  interactions), ``mu_star_conf``;
- ``latin`` design → first-order indices by RBD-FAST, ``SALib.analyze.rbd_fast``: ``S1``, ``S1_conf``.

The KPI at a design point is the mean over the seeds that ran ``ok`` there. Grid parameters (lists, ranges) are not
part of the design: with grid axes the indices are computed per grid combination (``group``). A design point with
no value (all its runs failed, or the KPI does not exist there) makes the Sobol and Morris estimators impossible:
that KPI is skipped with a note saying why, never estimated from a broken design.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from twin.sweep.catalogue import CATALOGUE_FILE, HEAD_COLUMNS, VOLATILE_COLUMNS

log = logging.getLogger(__name__)

__all__ = ["Sensitivity", "kpi_columns", "sensitivity"]

INDEX_COLUMNS = ("kpi", "group", "parameter", "method", "measure", "value", "conf")


@dataclass
class Sensitivity:
    """Sensitivity indices: ``indices`` has one row per (kpi, group, parameter, measure) with columns ``kpi``,
    ``group`` (grid combination, ``""`` without grid axes), ``parameter``, ``method`` (sobol / morris /
    rbd_fast), ``measure`` (S1, ST, mu_star, sigma, …), ``value`` and ``conf`` (95 % confidence half-width, NaN
    when the method gives none); ``notes`` say what was skipped and why."""

    method: str | None
    indices: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def kpi_columns(catalogue_columns: list[str], parameters: list[str]) -> list[str]:
    """The KPI columns among a catalogue's columns (neither head, parameter nor volatile columns)."""
    fixed = set(HEAD_COLUMNS) | set(VOLATILE_COLUMNS) | set(parameters)
    return [c for c in catalogue_columns if c not in fixed]


def _measures(method: str, result: Any, names: list[str]) -> list[tuple[str, str, float, float]]:
    """(parameter, measure, value, conf) rows of a SALib result."""
    rows = []
    pairs = {
        "sobol": [("S1", "S1_conf"), ("ST", "ST_conf")],
        "rbd_fast": [("S1", "S1_conf")],
        "morris": [("mu_star", "mu_star_conf"), ("mu", None), ("sigma", None)],
    }[method]
    for j, name in enumerate(names):
        for measure, conf in pairs:
            value = float(np.asarray(result[measure])[j])
            c = float(np.asarray(result[conf])[j]) if conf else float("nan")
            rows.append((name, measure, value, c))
    return rows


def _analyse(
    method: str, problem: dict[str, Any], x: np.ndarray, y: np.ndarray, sampling: dict[str, Any]
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # SALib's convergence hints; the confidence intervals carry that information
        if method == "sobol":
            from SALib.analyze import sobol

            return sobol.analyze(problem, y, calc_second_order=bool(sampling.get("second_order")), seed=0)
        if method == "morris":
            from SALib.analyze import morris

            return morris.analyze(problem, x, y, num_levels=int(sampling.get("levels", 4)), seed=0)
        from SALib.analyze import rbd_fast

        return rbd_fast.analyze(problem, x, y, seed=0)


def sensitivity(out_dir: str | os.PathLike[str], *, kpis: list[str] | None = None) -> Sensitivity:
    """Sensitivity indices of ``kpis`` (default: every numeric KPI that varies) for the sweep in ``out_dir``
    (its ``sweep.json``, ``design.parquet`` and ``catalogue.parquet``). Without sampled parameters the result is
    empty with a note."""
    import duckdb

    out = Path(out_dir)
    meta = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    sampling = meta.get("sampling") or {}
    design_method = sampling.get("method")
    if not design_method:
        return Sensitivity(
            None, pd.DataFrame(columns=INDEX_COLUMNS), ["no sampled parameters: no sensitivity indices"]
        )
    method = {"latin": "rbd_fast"}.get(design_method, design_method)
    problem = meta["problem"]
    design = pq.read_table(out / "design.parquet").to_pandas().sort_values("sample")
    x = design[problem["names"]].to_numpy(np.float64)
    grid = [p["path"] for p in meta["parameters"] if "sample" not in p]
    params = [p["path"] for p in meta["parameters"]]
    cat = str(out / CATALOGUE_FILE).replace("'", "''")
    con = duckdb.connect(":memory:")
    try:
        schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{cat}')").fetchall()
        numeric = {r[0] for r in schema if r[1].split("(")[0] in _NUMERIC}
        candidates = [k for k in kpi_columns([r[0] for r in schema], params) if k in numeric]
        wanted = candidates if kpis is None else [k for k in kpis if k in candidates]
        notes = [f"{k}: not a numeric KPI of this sweep" for k in (kpis or []) if k not in candidates]
        q = ", ".join
        gcols = q(_quote(g) for g in grid)
        aggs = q(f"avg({_quote(k)}) FILTER (WHERE status = 'ok') AS {_quote(k)}" for k in wanted)
        if not wanted:
            return Sensitivity(method, pd.DataFrame(columns=INDEX_COLUMNS), notes)
        sql = (
            f"SELECT {gcols + ', ' if grid else ''}sample, {aggs} FROM read_parquet('{cat}') "
            f"GROUP BY {gcols + ', ' if grid else ''}sample"
        )
        means = con.execute(sql).df()
    finally:
        con.close()
    rows: list[tuple[Any, ...]] = []
    groups = means.groupby(grid, dropna=False, sort=True) if grid else [((), means)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{g}={v}" for g, v in zip(grid, key, strict=True))
        frame = frame.set_index("sample").reindex(range(len(x)))
        for k in wanted:
            y = frame[k].to_numpy(np.float64)
            where = f"{k}{' at ' + label if label else ''}"
            missing = int(np.isnan(y).sum())
            if missing:
                notes.append(
                    f"{where}: {missing} of {len(y)} design points have no value (failed runs or no such KPI); "
                    f"{method} indices need every point, skipped"
                )
                continue
            if np.ptp(y) == 0:
                notes.append(f"{where}: constant ({y[0]:g}) over the design; no sensitivity")
                continue
            try:
                result = _analyse(method, problem, x, y, sampling)
            except (ValueError, ZeroDivisionError, IndexError) as exc:
                notes.append(f"{where}: {method} analysis failed ({exc})")
                continue
            for name, measure, value, conf in _measures(method, result, problem["names"]):
                rows.append((k, label, name, method, measure, value, conf))
    return Sensitivity(method, pd.DataFrame(rows, columns=INDEX_COLUMNS), notes)


_NUMERIC = {
    "DOUBLE",
    "FLOAT",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "DECIMAL",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
