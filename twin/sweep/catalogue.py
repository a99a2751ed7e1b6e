"""The catalogue of a sweep: one Parquet row per run, written by the worker that ran it, and
``DIR/catalogue.parquet`` assembled from the rows with DuckDB.

Layout of a sweep folder::

    DIR/sweep.json                   what was swept (the sweep file, parameters, design, fingerprint)
    DIR/runs/<run_id>/               the run's normal results folder (summary.json, Parquet tables, …)
    DIR/runs/<run_id>/row.parquet    its catalogue row; written last and atomically: it marks the run as done
    DIR/runs/<run_id>/error.txt      the traceback of a failed run
    DIR/run_ids.txt                  every run id, in run order
    DIR/catalogue.parquet            every row, ordered by run_index

Row columns: ``run_id``, ``run_index``, ``status`` (``ok``/``failed``), ``error`` (one line, null when ok),
``seed``, ``sample`` (design point, null without sampled parameters), one column per parameter named by its
scenario path, one per scalar KPI of ``summary.json`` flattened with dots (``crowd.evacuation_time_s``,
``crowd.exits.door.flow_pps``, ``simulated_s``), then the volatile columns ``wall_time_s`` (the run's own),
``work_s`` (time in the run function, measured by the worker), ``worker`` (host/pid) and ``finished_at`` (UTC).

The catalogue is assembled by streaming over the row files in run order (``run_ids.txt``), a batch of rows at a
time, so the coordinating process never holds the rows in memory; query it with DuckDB.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from twin.city.layer import write_table
from twin.scenario.results import SUMMARY_METADATA
from twin.scenario.results import flatten_kpis as flatten_summary

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
    "write_run_ids",
    "read_catalogue",
    "row_status",
    "write_row",
]

ROW_FILE = "row.parquet"
ERROR_FILE = "error.txt"
CATALOGUE_FILE = "catalogue.parquet"
RUN_IDS_FILE = "run_ids.txt"
RUNS_DIR = "runs"
HEAD_COLUMNS = ("run_id", "run_index", "status", "error", "seed", "sample")
VOLATILE_COLUMNS = ("wall_time_s", "work_s", "worker", "finished_at")
"""Columns that differ between two runs of the same sweep (timings, where it ran)."""
_META_KEYS = SUMMARY_METADATA | {"timing"}
_HEAD_TYPES = (pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64())
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
    """The KPI columns of a run: :func:`twin.scenario.results.flatten_kpis` without the run's metadata and
    timings (they differ between identical runs)."""
    return flatten_summary(summary, skip=_META_KEYS)


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
    types: list[pa.DataType] = list(_HEAD_TYPES)
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
        table = pq.ParquetFile(path).read(columns=["status"])
    except FileNotFoundError:
        return None
    except (
        OSError,
        pa.ArrowException,
    ) as exc:  # rows are written atomically; a bad one is treated as missing
        log.warning("unreadable catalogue row %s (%s); the run counts as not done", path, exc)
        return None
    return str(table.column("status")[0].as_py()) if table.num_rows else None


def write_run_ids(run_ids: Iterable[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/run_ids.txt``: every run id of the sweep, one a line, in run order (streamed, atomic); the
    catalogue follows this order."""
    path = Path(out_dir) / RUN_IDS_FILE
    tmp = path.with_name(f".{RUN_IDS_FILE}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="ascii") as fh:
            for rid in run_ids:
                fh.write(rid + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _run_ids(out: Path) -> Iterator[str]:
    """The sweep's run ids in run order (from run_ids.txt; without it, the run folders in name order)."""
    path = out / RUN_IDS_FILE
    if path.is_file():
        with path.open(encoding="ascii") as fh:
            for line in fh:
                if line.strip():
                    yield line.strip()
    elif (out / RUNS_DIR).is_dir():
        yield from sorted(p.name for p in (out / RUNS_DIR).iterdir() if p.is_dir())


def _read_row(path: Path, *, schema_only: bool = False) -> Any:
    try:
        # ParquetFile.read, not read_table: a fifth of the time on a one-row file (no dataset discovery)
        return pq.read_schema(path) if schema_only else pq.ParquetFile(path).read()
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException) as exc:
        log.warning("unreadable catalogue row %s (%s): left out; --resume runs it again", path, exc)
        return None


def _merged_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a) for f in numeric) and any(f(b) for f in numeric):
        return pa.float64()
    return pa.string()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            cols.append(col if col.type == field.type else col.cast(field.type))
        else:
            cols.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=schema)


def assemble_catalogue(
    out_dir: str | os.PathLike[str], *, parameters: Iterable[str] = (), batch_rows: int = 256
) -> Path:
    """Assemble ``out_dir/catalogue.parquet`` from the runs' row files (written atomically).

    Columns: the head columns, ``parameters`` (paths, in sweep-file order), the KPIs in name order, the volatile
    columns (a column some rows lack is null there; a KPI that is a whole number in some rows and not in others is
    float64). Rows in run order. Two streaming passes over the row files (their schemas, then their rows in
    batches of ``batch_rows``), so memory does not grow with the number of runs.
    """
    out = Path(out_dir)
    target = out / CATALOGUE_FILE
    types: dict[str, pa.DataType] = dict(zip(HEAD_COLUMNS, _HEAD_TYPES, strict=True))
    for rid in _run_ids(out):
        schema = _read_row(out / RUNS_DIR / rid / ROW_FILE, schema_only=True)
        for field in schema or ():
            types[field.name] = (
                _merged_type(types[field.name], field.type) if field.name in types else field.type
            )
    params = [p for p in parameters if p in types]
    fixed = set(HEAD_COLUMNS) | set(VOLATILE_COLUMNS) | set(params)
    kpis = sorted(c for c in types if c not in fixed)
    names = list(HEAD_COLUMNS) + params + kpis + [c for c in VOLATILE_COLUMNS if c in types]
    schema = pa.schema([(n, types[n]) for n in names])
    tmp = out / f".{CATALOGUE_FILE}.{os.getpid()}.tmp"
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[pa.Table] = []
            for rid in _run_ids(out):
                table = _read_row(out / RUNS_DIR / rid / ROW_FILE)
                if table is None:
                    continue
                batch.append(_conform(table, schema))
                if len(batch) >= batch_rows:
                    writer.write_table(pa.concat_tables(batch))
                    batch.clear()
            if batch:
                writer.write_table(pa.concat_tables(batch))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s", target)
    return target


def read_catalogue(out_dir: str | os.PathLike[str], *, columns: Iterable[str] | None = None) -> Any:
    """``catalogue.parquet`` of a sweep folder as a pandas DataFrame (optionally only ``columns``)."""
    path = Path(out_dir) / CATALOGUE_FILE
    return pq.read_table(path, columns=list(columns) if columns is not None else None).to_pandas()
