"""What-if comparison of two results folders (``twin compare BASE_DIR VARIANT_DIR --out DIR``).

:func:`compare_results` reads two folders written by ``twin run`` (contract: ``SCENARIO.md``, section Results) and
writes ``DIR/comparison.json``, ``DIR/report.html`` and the figures in ``DIR/figures/``
(:mod:`twin.scenario.compare_report`). ``comparison.json`` holds, in the order a planner reads them:

- ``base`` / ``variant``: each run's metadata (folder, scenario name, seed, simulated and wall time, twin version,
  git revision, library versions);
- ``scenario_diff``: the flat difference of the two resolved ``scenario.yaml`` files — every path
  (``crowd.groups[0].count``, ``city.areas[0].exits[1].id``) whose value differs, with both values; ``only_in``
  says when a path exists in one scenario only (its missing value is then ``null``);
- ``kpis``: one row per scalar KPI of either ``summary.json``, flattened with dots the way the sweep catalogue
  flattens them (``crowd.evacuation_time_s``, ``crowd.exits.<id>.count``; run metadata left out): ``base``,
  ``variant``, ``delta`` = variant − base, ``relative_delta`` = delta / |base| (``null`` when base is 0 or either
  value is missing or not a number), ``better`` (``lower`` / ``higher`` where the direction is known, see
  :func:`kpi_direction`) and ``verdict`` (``better`` / ``worse`` / ``same``). Headline KPIs come first
  (:data:`HEADLINE_KPIS`), then the others in the order of the summaries, run timings last;
- ``only_in``: the summary sections and result files that only one run has (a crowd-only base against a coupled
  variant compares what both have and lists the rest);
- ``traffic`` / ``density`` / ``flood``: what the difference maps show, in numbers (per-edge mean speeds, density
  and flood depth grids), when the runs have them;
- ``figures``: the figures written (path relative to DIR, caption); ``notes``: what could not be compared, and why.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.city.layer import read_arrays, write_text
from twin.errors import InputError
from twin.scenario.results import (
    DENSITY_FILE,
    KPIS_FILE,
    SCENARIO_FILE,
    SUMMARY_FILE,
    SUMMARY_METADATA,
    DensityMap,
    json_safe,
)
from twin.scenario.results import flatten_kpis as flatten_summary

log = logging.getLogger(__name__)

__all__ = [
    "COMPARISON_FILE",
    "FLOOD_FILE",
    "HEADLINE_KPIS",
    "RunResults",
    "aligned_union",
    "compare_kpis",
    "compare_results",
    "density_grids",
    "edge_mean_speed",
    "flatten_kpis",
    "flood_grids",
    "kpi_direction",
    "read_results",
    "run_metadata",
    "scenario_diff",
]

COMPARISON_FILE = "comparison.json"
FLOOD_FILE = "flood_max_depth.npz"
EDGES_FILE = "traffic_edges.parquet"
TRIPS_FILE = "traffic_trips.parquet"

_META_KEYS = SUMMARY_METADATA
"""Top-level summary keys that describe the run, not its outcome (the sweep catalogue leaves out the same)."""

HEADLINE_KPIS: tuple[str, ...] = (
    "crowd.evacuation_time_s",
    "crowd.t90_s",
    "crowd.evacuated",
    "crowd.remaining",
    "crowd.max_density_ppm2",
    "traffic.mean_travel_time_s",
    "traffic.mean_delay_s",
    "traffic.arrived",
    "traffic.throughput_vph",
    "response.mean_response_time_s",
    "response.share_within_target",
    "fire.first_untenable_s",
    "fire.untenable_spaces",
)
"""The KPIs a planner reads first, in this order, at the top of the KPI table."""

_LOWER_IS_BETTER = frozenset(
    {
        "evacuation_time_s",
        "t90_s",
        "remaining",
        "max_density_ppm2",
        "mean_travel_time_s",
        "mean_delay_s",
        "mean_waiting_time_s",
        "mean_depart_delay_s",
        "running",
        "collisions",
        "mean_response_time_s",
        "max_response_time_s",
        "response_time_s",
        "failed_dispatches",
        "untenable_spaces",
        "max_depth_m",
        "flooded_area_m2",
        "leak_volume_m3",
        "peak_leak_outflow_m3s",
        "peak_customers_below_service",
        "peak_demand_not_served_m3s",
        "volume_in_m3",
        "volume_stored_m3",
        "teleports",
        "not_alarmed",
    }
)
_HIGHER_IS_BETTER = frozenset(
    {
        "evacuated",
        "arrived",
        "throughput_vph",
        "flow_pps",
        "share_within_target",
        "first_untenable_s",
    }
)
_HIGHER_IS_BETTER_UNDER = frozenset({"coverage_share", "untenable_since_s"})
"""Sections whose every entry is better when higher (a share of the roads covered; a later loss of tenability)."""

FLOOD_WET_M = 0.01
"""Depth (m) above which a flood cell counts as flooded in the flooded-area numbers."""


# -- reading ---------------------------------------------------------------------------------------------------------
@dataclass
class RunResults:
    """The parts of one results folder a comparison uses (None where the run has no such file).

    summary : ``summary.json``; scenario : the resolved ``scenario.yaml`` as plain data.
    kpis : ``kpis.parquet`` (t_s float64 s, kpi str, value float64).
    density : ``density_maps.npz``; edges : ``traffic_edges.parquet`` (t_s, edge, entered, flow_vph,
    mean_speed_mps, density_vpkm); trips : ``traffic_trips.parquet`` (duration_s, time_loss_s, arrived, …).
    flood : ``flood_max_depth.npz``: ``depth_m`` (ny, nx) float64 metres, ``x0``, ``y0`` (m, the lower-left corner
    of cell [0, 0]; row i covers y0 + i·cell_m … y0 + (i+1)·cell_m) and ``cell_m``.
    files : names of the files in the folder.
    """

    path: Path
    summary: dict[str, Any]
    scenario: dict[str, Any] | None = None
    kpis: pd.DataFrame | None = None
    density: DensityMap | None = None
    edges: pd.DataFrame | None = None
    trips: pd.DataFrame | None = None
    flood: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.summary.get("scenario") or self.path.name)


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot read the table ({e})") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(path, f"missing columns {missing}; expected at least {list(required)}")
    return df


def _read_flood(path: Path) -> dict[str, Any]:
    try:
        arrays = read_arrays(path)
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot read the flood depth grid ({e})") from e
    missing = [k for k in ("depth_m", "x0", "y0", "cell_m") if k not in arrays]
    if missing:
        raise InputError(path, f"missing arrays {missing}; expected depth_m (ny, nx), x0, y0, cell_m")
    depth = np.asarray(arrays["depth_m"], dtype=np.float64)
    if depth.ndim != 2 or depth.size == 0:
        raise InputError(
            path, f"depth_m must be a non-empty (ny, nx) grid, got shape {depth.shape}", element="depth_m"
        )
    try:
        x0, y0, cell = (float(np.asarray(arrays[k]).reshape(())) for k in ("x0", "y0", "cell_m"))
    except (TypeError, ValueError) as e:
        raise InputError(path, f"x0, y0 and cell_m must be single numbers ({e})") from e
    if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(cell) and cell > 0):
        raise InputError(path, f"x0, y0 must be finite and cell_m > 0, got {x0}, {y0}, {cell}")
    return {"depth_m": depth, "x0": x0, "y0": y0, "cell_m": cell}


def read_results(folder: str | os.PathLike[str]) -> RunResults:
    """Read a results folder written by ``twin run``. A folder without ``summary.json`` (or a path that is not a
    folder) is an :class:`InputError` naming it; so is any file in it that cannot be read."""
    import yaml

    p = Path(folder)
    if not p.is_dir():
        raise InputError(
            p, "not a folder; expected a results folder written by `twin run` (with summary.json)"
        )
    sp = p / SUMMARY_FILE
    if not sp.is_file():
        raise InputError(
            p, f"no {SUMMARY_FILE}: not a results folder written by `twin run` (or the run did not finish)"
        )
    try:
        summary = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(sp, f"cannot read the summary ({e})") from e
    if not isinstance(summary, dict):
        raise InputError(sp, f"the summary must be a JSON object, got {type(summary).__name__}")
    run = RunResults(path=p, summary=summary, files=sorted(f.name for f in p.iterdir() if f.is_file()))
    if (p / SCENARIO_FILE).is_file():
        try:
            data = yaml.safe_load((p / SCENARIO_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise InputError(p / SCENARIO_FILE, f"cannot read the resolved scenario ({e})") from e
        if data is not None and not isinstance(data, dict):
            raise InputError(p / SCENARIO_FILE, f"the scenario must be a mapping, got {type(data).__name__}")
        run.scenario = data
    if (p / KPIS_FILE).is_file():
        run.kpis = _read_table(p / KPIS_FILE, ("t_s", "kpi", "value"))
    if (p / DENSITY_FILE).is_file():
        try:
            run.density = DensityMap.load(p / DENSITY_FILE)
        except (KeyError, ValueError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(p / DENSITY_FILE, f"not a valid density map file ({e})") from e
    if (p / EDGES_FILE).is_file():
        run.edges = _read_table(p / EDGES_FILE, ("t_s", "edge", "mean_speed_mps"))
    if (p / TRIPS_FILE).is_file():
        run.trips = _read_table(p / TRIPS_FILE, ("duration_s", "time_loss_s", "arrived"))
    if (p / FLOOD_FILE).is_file():
        run.flood = _read_flood(p / FLOOD_FILE)
    return run


# -- KPI table -------------------------------------------------------------------------------------------------------
def flatten_kpis(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar KPIs of a summary flattened with dots (:func:`twin.scenario.results.flatten_kpis`: run metadata
    and lists left out); run timings are kept (listed last, with no better direction)."""
    return flatten_summary(summary)


def kpi_direction(kpi: str) -> str | None:
    """``"lower"`` or ``"higher"`` when that value of the KPI (a flattened path) is the better one, None when
    neither is (counts per exit, vehicles generated, run timings…). Lower is better for times (evacuation, t90,
    travel, delay, response), densities, people remaining, failures, flood depths; higher for people evacuated,
    vehicles arrived, throughputs and flows, shares within target and coverage, and a later loss of tenability."""
    parts = kpi.split(".")
    if parts[0] == "timing":
        return None
    leaf = parts[-1]
    if any(p in _HIGHER_IS_BETTER_UNDER for p in parts[:-1]):
        return "higher"
    if leaf in _LOWER_IS_BETTER:
        return "lower"
    if leaf in _HIGHER_IS_BETTER:
        return "higher"
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _kpi_unit(kpi: str) -> str:
    from twin.scenario.report import _unit

    return _unit(kpi)


def compare_kpis(base: Mapping[str, Any], variant: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The KPI table of two summaries (see the module docstring): one dict per KPI with ``kpi``, ``unit``,
    ``base``, ``variant``, ``delta``, ``relative_delta``, ``better``, ``verdict`` and ``only_in``, headline KPIs
    first."""
    fb, fv = flatten_kpis(base), flatten_kpis(variant)
    order = list(fb) + [k for k in fv if k not in fb]
    head = [k for k in HEADLINE_KPIS if k in fb or k in fv]
    rest = [k for k in order if k not in HEADLINE_KPIS]
    rest.sort(key=lambda k: k.split(".")[0] == "timing")  # stable: run timings last
    rows = []
    for k in head + rest:
        b, v = fb.get(k), fv.get(k)
        delta = rel = verdict = None
        if _is_number(b) and _is_number(v):
            delta = v - b
            rel = delta / abs(b) if b != 0 else None
        direction = kpi_direction(k)
        if delta is not None and direction is not None:
            if delta == 0:
                verdict = "same"
            else:
                verdict = "better" if (delta < 0) == (direction == "lower") else "worse"
        rows.append(
            {
                "kpi": k,
                "unit": _kpi_unit(k),
                "base": b,
                "variant": v,
                "delta": delta,
                "relative_delta": rel,
                "better": direction,
                "verdict": verdict,
                "only_in": None if (k in fb) == (k in fv) else ("base" if k in fb else "variant"),
            }
        )
    return rows


# -- scenario difference ---------------------------------------------------------------------------------------------
def scenario_diff(base: Mapping[str, Any] | None, variant: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Where two resolved scenarios differ: ``{path, base, variant, only_in}`` rows, paths written the way sweep
    parameters are (``crowd.groups[0].count``, ``events[0]``), in the order of the base scenario with keys only
    the variant has after. Mappings and lists are compared item by item; an item only one side has is one row
    with its whole value and ``only_in`` = ``base``/``variant`` (the other value None); numbers compare by value
    (``1 == 1.0``)."""
    out: list[dict[str, Any]] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in list(a) + [k for k in b if k not in a]:
                sub = f"{path}.{k}" if path else str(k)
                if k not in b:
                    out.append({"path": sub, "base": a[k], "variant": None, "only_in": "base"})
                elif k not in a:
                    out.append({"path": sub, "base": None, "variant": b[k], "only_in": "variant"})
                else:
                    walk(a[k], b[k], sub)
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                sub = f"{path}[{i}]"
                if i >= len(b):
                    out.append({"path": sub, "base": a[i], "variant": None, "only_in": "base"})
                elif i >= len(a):
                    out.append({"path": sub, "base": None, "variant": b[i], "only_in": "variant"})
                else:
                    walk(a[i], b[i], sub)
        elif not (_same_number(a, b) or (type(a) is type(b) and a == b)):
            out.append({"path": path, "base": a, "variant": b, "only_in": None})

    walk(dict(base or {}), dict(variant or {}), "")
    return out


def _same_number(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and float(a) == float(b)


# -- metadata --------------------------------------------------------------------------------------------------------
def run_metadata(run: RunResults) -> dict[str, Any]:
    """What identifies a run: folder, scenario name, seed, simulated and wall time, twin version, git revision and
    library versions (from ``summary.json``)."""
    s = run.summary
    prov = s.get("provenance") if isinstance(s.get("provenance"), Mapping) else {}
    return {
        "folder": str(run.path.resolve()),
        "scenario": s.get("scenario"),
        "seed": s.get("seed"),
        "simulated_s": s.get("simulated_s"),
        "wall_time_s": s.get("wall_time_s"),
        "twin_version": s.get("twin_version"),
        "git_revision": s.get("git_revision"),
        "versions": dict(prov.get("versions") or {}),
        "sections": [k for k, v in s.items() if k not in _META_KEYS | {"timing"} and isinstance(v, Mapping)],
    }


# -- traffic, density, flood -----------------------------------------------------------------------------------------
def edge_mean_speed(edges: pd.DataFrame) -> pd.Series:
    """Per-edge mean speed over the run (m/s): the mean of the edge's interval mean speeds (``traffic_edges``
    rows with a finite ``mean_speed_mps``), as the report's delay map averages them. Indexed by edge id (str);
    edges that no vehicle used are absent."""
    speed = edges["mean_speed_mps"].to_numpy(np.float64)
    ok = np.isfinite(speed)
    df = pd.DataFrame({"edge": edges["edge"].astype(str).to_numpy()[ok], "speed": speed[ok]})
    return df.groupby("edge", sort=True)["speed"].mean()


def _traffic_numbers(base: RunResults, variant: RunResults, *, top: int = 10) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if base.edges is not None and variant.edges is not None:
        sb, sv = edge_mean_speed(base.edges), edge_mean_speed(variant.edges)
        both = sb.index.intersection(sv.index)
        d = (sv[both] - sb[both]).sort_values(kind="stable")
        rows = [
            {"edge": e, "base_mps": float(sb[e]), "variant_mps": float(sv[e]), "delta_mps": float(d[e])}
            for e in d.index
        ]
        out["edges"] = {
            "compared": len(both),
            "mean_delta_mps": float(d.mean()) if len(d) else None,
            "slowed_most": rows[:top],
            "faster_most": rows[::-1][:top],
            "used_in_base_only": sorted(sb.index.difference(sv.index).tolist()),
            "used_in_variant_only": sorted(sv.index.difference(sb.index).tolist()),
        }
    if base.trips is not None and variant.trips is not None:
        out["travel_time_s"] = {
            side: _quantiles(run.trips) for side, run in (("base", base), ("variant", variant))
        }
    return out or None


def _quantiles(trips: pd.DataFrame) -> dict[str, Any]:
    t = trips.loc[trips["arrived"].astype(bool), "duration_s"].to_numpy(np.float64)
    t = t[np.isfinite(t)]
    if not t.size:
        return {"arrived": 0, "p50": None, "p90": None, "mean": None}
    return {
        "arrived": int(t.size),
        "p50": float(np.percentile(t, 50)),
        "p90": float(np.percentile(t, 90)),
        "mean": float(t.mean()),
    }


def aligned_union(
    a: np.ndarray, origin_a: Any, b: np.ndarray, origin_b: Any, cell_m: float, cell_b_m: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Two raster grids on their union, when their cells line up (same cell size, origins a whole number of cells
    apart, to 1 µm); cells a grid does not cover are 0.

    a, b : (ny, nx) float64 values, row i covering y0 + i·cell … y0 + (i+1)·cell; origin_a, origin_b : (x0, y0) of
    each grid's lower-left corner, metres; cell_m, cell_b_m : cell sizes, metres (b's defaults to a's).
    Returns ``(x_edges (NX + 1,), y_edges (NY + 1,), a (NY, NX), b (NY, NX))`` float64 on the union grid, or None
    when the cells do not line up.
    """
    h = float(cell_m)
    if cell_b_m is not None and abs(float(cell_b_m) - h) > 1e-9:
        return None
    oa_m, ob_m = np.asarray(origin_a, np.float64), np.asarray(origin_b, np.float64)
    off = (ob_m - oa_m) / h
    if np.abs(off - np.rint(off)).max() * h > 1e-6:
        return None
    oa = np.zeros(2, np.int64)
    ob = np.rint(off).astype(np.int64)
    lo = np.minimum(oa, ob)
    hi = np.maximum(oa + [a.shape[1], a.shape[0]], ob + [b.shape[1], b.shape[0]])
    nx, ny = (hi - lo).tolist()
    out = []
    for g, o in ((a, oa - lo), (b, ob - lo)):
        u = np.zeros((ny, nx))
        u[o[1] : o[1] + g.shape[0], o[0] : o[0] + g.shape[1]] = g
        out.append(u)
    x0 = oa_m + lo * h
    return x0[0] + h * np.arange(nx + 1), x0[1] + h * np.arange(ny + 1), out[0], out[1]


def density_grids(a: DensityMap, ia: int, b: DensityMap, ib: int) -> tuple[np.ndarray, ...] | None:
    """Level ``ia`` of ``a`` and level ``ib`` of ``b`` (their ``max_density_ppm2``, persons/m²) on the union of
    their grids (:func:`aligned_union`; 0 where a map has no cell: nobody was there), or None when the cells do not
    line up."""
    return aligned_union(
        a.max_density_ppm2[ia], a.origin, b.max_density_ppm2[ib], b.origin, a.cell_m, b.cell_m
    )


def _density_numbers(base: DensityMap, variant: DensityMap) -> dict[str, Any]:
    levels = []
    aligned = True
    for name in [n for n in base.level_names if n in variant.level_names]:
        ia, ib = base.level_names.index(name), variant.level_names.index(name)
        row: dict[str, Any] = {
            "level": name,
            "base_max_ppm2": float(base.max_density_ppm2[ia].max()),
            "variant_max_ppm2": float(variant.max_density_ppm2[ib].max()),
        }
        grids = density_grids(base, ia, variant, ib)
        if grids is not None:
            d = grids[3] - grids[2]
            row["max_increase_ppm2"] = float(max(d.max(), 0.0))
            row["max_decrease_ppm2"] = float(max(-d.min(), 0.0))
        aligned = aligned and grids is not None
        levels.append(row)
    return {
        "aligned_grids": aligned,
        "cell_m": [base.cell_m, variant.cell_m],
        "levels": levels,
        "levels_only_in_base": [n for n in base.level_names if n not in variant.level_names],
        "levels_only_in_variant": [n for n in variant.level_names if n not in base.level_names],
    }


def flood_grids(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[np.ndarray, ...] | None:
    """The maximum depths (m) of two flood grids on the union of their grids (:func:`aligned_union`; NaN and cells
    a grid lacks count as dry, 0 m), or None when the cells do not line up."""
    return aligned_union(
        np.nan_to_num(a["depth_m"], nan=0.0),
        (a["x0"], a["y0"]),
        np.nan_to_num(b["depth_m"], nan=0.0),
        (b["x0"], b["y0"]),
        a["cell_m"],
        b["cell_m"],
    )


def _flood_stats(f: Mapping[str, Any]) -> dict[str, Any]:
    d = np.nan_to_num(f["depth_m"], nan=0.0)
    return {
        "max_depth_m": float(d.max()),
        "flooded_area_m2": float((d > FLOOD_WET_M).sum() * f["cell_m"] ** 2),
    }


def _flood_numbers(base: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    grids = flood_grids(base, variant)
    out: dict[str, Any] = {
        "aligned_grids": grids is not None,
        "wet_threshold_m": FLOOD_WET_M,
        "base": _flood_stats(base),
        "variant": _flood_stats(variant),
    }
    if grids is not None:
        a, b = grids[2], grids[3]
        d = b - a
        area = base["cell_m"] ** 2
        out["max_deeper_m"] = float(max(d.max(), 0.0))
        out["max_shallower_m"] = float(max(-d.min(), 0.0))
        out["newly_flooded_m2"] = float(((b > FLOOD_WET_M) & ~(a > FLOOD_WET_M)).sum() * area)
        out["no_longer_flooded_m2"] = float(((a > FLOOD_WET_M) & ~(b > FLOOD_WET_M)).sum() * area)
    return out


# -- entry point -----------------------------------------------------------------------------------------------------
def _only_in(base: RunResults, variant: RunResults) -> dict[str, Any]:
    sb, sv = run_metadata(base)["sections"], run_metadata(variant)["sections"]
    fb, fv = set(base.files), set(variant.files)
    return {
        "base": {"sections": [s for s in sb if s not in sv], "files": sorted(fb - fv)},
        "variant": {"sections": [s for s in sv if s not in sb], "files": sorted(fv - fb)},
    }


def compare_results(
    base_dir: str | os.PathLike[str],
    variant_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    figures: bool = True,
) -> dict[str, Any]:
    """Compare two results folders and write ``out_dir/comparison.json`` and ``out_dir/report.html`` (with
    ``figures/``; ``figures=False`` writes comparison.json only). Returns the content of comparison.json (see the
    module docstring).

    Raises :class:`InputError` naming the folder when either is not a results folder, and when ``out_dir`` is one
    of the two (the comparison would overwrite that run's report).
    """
    base, variant = read_results(base_dir), read_results(variant_dir)
    out = Path(out_dir)
    for run in (base, variant):
        if out.exists() and out.resolve() == run.path.resolve():
            raise InputError(
                out, "the output folder is one of the compared results folders; choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {
        "base": run_metadata(base),
        "variant": run_metadata(variant),
        "scenario_diff": scenario_diff(base.scenario, variant.scenario),
        "kpis": compare_kpis(base.summary, variant.summary),
        "only_in": _only_in(base, variant),
    }
    notes: list[str] = []
    if base.scenario is None or variant.scenario is None:
        missing = [r.path.name for r in (base, variant) if r.scenario is None]
        notes.append(f"no {SCENARIO_FILE} in {', '.join(missing)}: the scenario difference is incomplete")
    traffic = _traffic_numbers(base, variant)
    if traffic is not None:
        result["traffic"] = traffic
    if base.density is not None and variant.density is not None:
        result["density"] = _density_numbers(base.density, variant.density)
    if base.flood is not None and variant.flood is not None:
        result["flood"] = _flood_numbers(base.flood, variant.flood)
    result["figures"] = []
    if figures:
        from twin.scenario.compare_report import write_compare_report

        result["figures"] = write_compare_report(out, base, variant, result, notes)
    result["notes"] = notes
    result = json_safe(result)
    write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", out / COMPARISON_FILE)
    log.info("wrote comparison of %s and %s to %s", base.path, variant.path, out)
    return result
