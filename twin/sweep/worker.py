"""What a worker does for one run: build the variant scenario, run it into its results folder, write its
catalogue row. Runs in worker processes (a local process pool or Dask workers); nothing comes back to the
coordinator but a small status record.

A run that raises is recorded as failed: the one-line error goes into its catalogue row and the traceback into
``error.txt`` in its folder. A run that kills its process cannot record anything; the coordinator does it
(:mod:`twin.sweep.runner`).
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from twin.city.layer import write_text
from twin.sweep.catalogue import ERROR_FILE, RUNS_DIR, column_value, make_row, write_row

log = logging.getLogger(__name__)

__all__ = ["RunTask", "SweepContext", "execute", "failure_row", "one_line"]

_MAX_ERROR = 500


@dataclass(frozen=True)
class SweepContext:
    """What every run of a sweep shares: the base scenario data (overrides applied), where it came from (relative
    paths resolve against ``base_file``'s folder), the sweep folder, parameter kinds, run function, threads."""

    base: Mapping[str, Any]
    base_file: str
    out_root: str
    kinds: tuple[tuple[str, str], ...]
    runner: str | None = None
    threads: int = 1


@dataclass(frozen=True)
class RunTask:
    """One run: id, position, seed, design point and parameter values ``(path, value)``."""

    run_id: str
    index: int
    seed: int
    sample: int | None
    values: tuple[tuple[str, Any], ...]


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters (our input errors as they are, others with their type)."""
    from twin.errors import TwinError

    text = str(exc) if isinstance(exc, TwinError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


@cache
def _run_function(spec: str | None) -> Callable[[Any, Path], Mapping[str, Any]]:
    if spec is None:
        from twin.scenario.runner import run_scenario

        return lambda scenario, out_dir: run_scenario(scenario, out_dir, progress=False)
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@cache
def _set_threads(n: int) -> None:
    from twin import _core

    _core.set_num_threads(n)


def _fresh_dir(path: Path) -> None:
    """An empty folder at ``path`` (what an earlier, failed or killed attempt left is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def _params(ctx: SweepContext, task: RunTask) -> list[tuple[str, Any, str]]:
    kinds = dict(ctx.kinds)
    return [(p, column_value(v, kinds[p]), kinds[p]) for p, v in task.values]


def _write_task_row(
    ctx: SweepContext, task: RunTask, status: str, error: str | None, summary: Any, work_s: float
) -> Path:
    """The catalogue row of ``task`` written into its run folder; returns the row file."""
    row = make_row(
        run_id=task.run_id,
        run_index=task.index,
        seed=task.seed,
        sample=task.sample,
        params=_params(ctx, task),
        status=status,
        error=error,
        summary=summary,
        work_s=work_s,
    )
    return write_row(row, Path(ctx.out_root) / RUNS_DIR / task.run_id)


def failure_row(ctx: SweepContext, task: RunTask, error: str, *, work_s: float = 0.0) -> Path:
    """Record ``task`` as failed with ``error`` (written by whoever knows: the worker, or the coordinator when the
    worker died); returns the row file."""
    return _write_task_row(ctx, task, "failed", error, None, work_s)


def execute(ctx: SweepContext, task: RunTask) -> dict[str, Any]:
    """Run ``task`` into ``out_root/runs/<run_id>/`` and write its catalogue row there (atomically, last).

    Returns ``{run_id, status, error, work_s}``; ``work_s`` is the time spent building the variant scenario and
    running it (seconds), the rest is the sweep framework's.
    """
    from twin.scenario.schema import Scenario
    from twin.sweep.spec import variant_data

    run_dir = Path(ctx.out_root) / RUNS_DIR / task.run_id
    _fresh_dir(run_dir)
    status, error, summary = "ok", None, None
    t0 = time.perf_counter()
    try:
        _set_threads(ctx.threads)
        data = variant_data(ctx.base, task.values, task.seed)
        scenario = Scenario.from_dict(
            data, source=f"{ctx.base_file} [run {task.run_id}]", base_dir=os.path.dirname(ctx.base_file)
        )
        summary = dict(_run_function(ctx.runner)(scenario, run_dir))
    except (Exception, SystemExit) as exc:  # a failing variant is recorded, never stops the sweep
        status, error, summary = "failed", one_line(exc), None
        write_text("".join(traceback.format_exception(exc)), run_dir / ERROR_FILE)
        log.debug("run %s failed: %s", task.run_id, error)
    work_s = time.perf_counter() - t0
    _write_task_row(ctx, task, status, error, summary, work_s)
    return {"run_id": task.run_id, "status": status, "error": error, "work_s": work_s}
