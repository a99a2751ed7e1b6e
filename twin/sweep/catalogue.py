"""The catalogue of a sweep: one Parquet row per run, written by the worker that ran it, and
``DIR/catalogue.parquet`` assembled from the rows with DuckDB.

Layout of a sweep folder::

    DIR/sweep.json                   what was swept (the sweep file, parameters, design, fingerprint)
    DIR/runs/<run_id>/               the run's normal results folder (summary.json, Parquet tables, …)
    DIR/runs/<run_id>/row.parquet    its catalogue row; written last and atomically: it marks the run as done
    DIR/runs/<run_id>/error.txt      the traceback of a failed run
    DIR/catalogue.parquet            every row, ordered by run_index

Row columns: ``run_id``, ``run_index``, ``status`` (``ok``/``failed``), ``error`` (one line, null when ok),
``seed``, ``sample`` (design point, null without sampled parameters), one column per parameter named by its
scenario path, one per scalar KPI of ``summary.json`` flattened with dots (``crowd.evacuation_time_s``,
``crowd.exits.door.flow_pps``, ``simulated_s``), then the volatile columns ``wall_time_s`` (the run's own),
``work_s`` (time in the run function, measured by the worker), ``worker`` (host/pid) and ``finished_at`` (UTC).

The catalogue is assembled by DuckDB streaming over the row files (``union_by_name``), so the coordinating process
never holds the rows in memory.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from twin.city.layer import write_table

log = logging.getLogger(__name__)

__all__ = [
    "CATALOGUE_FILE",
    "HEAD_COLUMNS",
    "ROW_FILE",
    "VOLATILE_COLUMNS",
    "assemble_catalogue",
    "column_kind",
    "column_value",
    "flatten_kpis",
    "make_row",
    "read_catalogue",
    "row_status",
    "write_row",
]

ROW_FILE = "row.parquet"
ERROR_FILE = "error.txt"
CATALOGUE_FILE = "catalogue.parquet"
RUNS_DIR = "runs"
HEAD_COLUMNS = ("run_id", "run_index", "status", "error", "seed", "sample")
VOLATILE_COLUMNS = ("wall_time_s", "work_s", "worker", "finished_at")
"""Columns that differ between two runs of the same sweep (timings, where it ran)."""
_META_KEYS = frozenset({"scenario", "seed", "twin_version", "git_revision", "provenance", "wall_time_s"})
_KIND_TYPES = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "json": pa.string(),
}


def column_kind(values: list[Any]) -> str:
    """The catalogue type of a parameter's values: ``bool``, ``int``, ``float``, ``str`` or ``json`` (text of
    mappings, lists or mixed values)."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(_finite_number(v) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "str"
    return "json"


def column_value(value: Any, kind: str) -> Any:
    """A parameter value as its catalogue column stores it (see :func:`column_kind`)."""
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return value


def _finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def flatten_kpis(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar KPIs of a run's summary, flattened with dots (``crowd.exits.door.count``); metadata (scenario,
    seed, versions, provenance, wall time) and lists are left out."""
    out: dict[str, Any] = {}

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, key + ".")
            elif v is None or isinstance(v, bool | int | float | str):
                out[key] = v

    walk({k: v for k, v in summary.items() if k not in _META_KEYS}, "")
    return out


def _kpi_type(v: Any) -> pa.DataType:
    if isinstance(v, bool):
        return pa.bool_()
    if isinstance(v, int):
        return pa.int64()
    if isinstance(v, str):
        return pa.string()
    return pa.float64()  # floats, and None (a KPI that does not exist in this run, e.g. no evacuation time)


def make_row(
    *,
    run_id: str,
    run_index: int,
    seed: int,
    sample: int | None,
    params: Iterable[tuple[str, Any, str]],
    status: str,
    error: str | None,
    summary: Mapping[str, Any] | None,
    work_s: float,
) -> pa.Table:
    """One catalogue row as a one-row Arrow table. ``params``: ``(path, catalogue value, kind)`` per parameter
    (kinds of :func:`twin.sweep.spec.column_kind`)."""
    names: list[str] = list(HEAD_COLUMNS)
    types: list[pa.DataType] = [pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64()]
    values: list[Any] = [run_id, run_index, status, error, seed, sample]
    for path, value, kind in params:
        names.append(path)
        types.append(_KIND_TYPES[kind])
        values.append(value)
    taken = set(names) | set(VOLATILE_COLUMNS)
    wall = None
    if summary is not None:
        wall = summary.get("wall_time_s")
        for key, v in flatten_kpis(summary).items():
            name = key if key not in taken else f"kpi.{key}"
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            names.append(name)
            types.append(_kpi_type(v))
            values.append(v)
    names += list(VOLATILE_COLUMNS)
    types += [pa.float64(), pa.float64(), pa.string(), pa.timestamp("us", tz="UTC")]
    values += [
        float(wall) if isinstance(wall, int | float) else None,
        float(work_s),
        f"{socket.gethostname()}/{os.getpid()}",
        _dt.datetime.now(_dt.UTC),
    ]
    arrays = [pa.array([v], type=t) for v, t in zip(values, types, strict=True)]
    return pa.Table.from_arrays(arrays, names=names)


def write_row(row: pa.Table, run_dir: str | os.PathLike[str]) -> Path:
    """Write a run's catalogue row atomically (temp file + rename) into its folder; returns the file."""
    path = Path(run_dir) / ROW_FILE
    write_table(row, path)
    return path


def row_status(run_dir: str | os.PathLike[str]) -> str | None:
    """The recorded status of the run in ``run_dir`` (``ok``/``failed``), or ``None`` if it has no row yet."""
    path = Path(run_dir) / ROW_FILE
    try:
        table = pq.read_table(path, columns=["status"])
    except FileNotFoundError:
        return None
    except (
        OSError,
        pa.ArrowException,
    ) as exc:  # rows are written atomically; a bad one is treated as missing
        log.warning("unreadable catalogue row %s (%s); the run counts as not done", path, exc)
        return None
    return str(table.column("status")[0].as_py()) if table.num_rows else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _connect() -> Any:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '512MB'")
    return con


def assemble_catalogue(out_dir: str | os.PathLike[str], *, parameters: Iterable[str] = ()) -> Path:
    """Assemble ``out_dir/catalogue.parquet`` from the runs' row files with DuckDB (streamed; written atomically).

    Columns: the head columns, ``parameters`` (paths, in sweep-file order), the KPIs in name order, the volatile
    columns; rows ordered by ``run_index``. With no rows yet the catalogue is an empty table of the head columns.
    """
    out = Path(out_dir)
    target = out / CATALOGUE_FILE
    rows_glob = str(out / RUNS_DIR / "*" / ROW_FILE)
    if not any((out / RUNS_DIR).glob(f"*/{ROW_FILE}")):
        empty = pa.schema(
            [
                (c, t)
                for c, t in zip(
                    HEAD_COLUMNS,
                    (pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64()),
                    strict=True,
                )
            ]
        )
        write_table(empty.empty_table(), target)
        return target
    con = _connect()
    try:
        source = f"read_parquet({_literal(rows_glob)}, union_by_name = true)"
        present = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        params = [p for p in parameters if p in present]
        fixed = set(HEAD_COLUMNS) | set(VOLATILE_COLUMNS) | set(params)
        kpis = sorted(c for c in present if c not in fixed)
        columns = [c for c in HEAD_COLUMNS if c in present] + params + kpis
        columns += [c for c in VOLATILE_COLUMNS if c in present]
        tmp = out / f".{CATALOGUE_FILE}.{os.getpid()}.tmp"
        select = ", ".join(_quote(c) for c in columns)
        try:
            con.execute(
                f"COPY (SELECT {select} FROM {source} ORDER BY run_index) TO {_literal(str(tmp))} (FORMAT parquet)"
            )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        con.close()
    log.info("wrote %s", target)
    return target


def read_catalogue(out_dir: str | os.PathLike[str], *, columns: Iterable[str] | None = None) -> Any:
    """``catalogue.parquet`` of a sweep folder as a pandas DataFrame (optionally only ``columns``)."""
    path = Path(out_dir) / CATALOGUE_FILE
    return pq.read_table(path, columns=list(columns) if columns is not None else None).to_pandas()
