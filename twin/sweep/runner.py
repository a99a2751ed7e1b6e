"""``run_sweep``: the coordinator. Expands the sweep lazily, keeps a few runs in flight on the executor, records
what the workers cannot (a worker that died), shows progress, and assembles the catalogue at the end.

Nothing is lost: each run's row is written atomically by its worker and marks it as done; a run that raised is
recorded as failed; a run whose worker process died is recorded as failed by the coordinator and the sweep goes on
(a local pool is recreated; the runs that were in flight with it are re-run one at a time to find the one that
killed it). ``resume=True`` skips runs recorded ``ok`` and runs everything else again.

The coordinator's memory does not grow with the number of runs: runs are generated on demand, at most
``Backend.slots`` are in flight, results stay in the workers' files, and the catalogue is assembled by DuckDB
streaming over them.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from twin.city.layer import write_json, write_table
from twin.errors import InputError
from twin.sweep.catalogue import RUNS_DIR, assemble_catalogue, row_status, write_run_ids
from twin.sweep.executors import Backend, WorkerLost, open_backend
from twin.sweep.spec import EXECUTOR_PATTERN, Sweep, load_sweep
from twin.sweep.worker import RunTask, SweepContext, failure_row, one_line

log = logging.getLogger(__name__)

__all__ = ["SWEEP_FILE", "SweepResult", "check_sweep", "run_sweep"]

SWEEP_FILE = "sweep.json"
DESIGN_FILE = "design.parquet"
DIED = "worker process died while running this run (killed, crashed or out of memory)"


@dataclass
class SweepResult:
    """What :func:`run_sweep` did. Counts are runs; times seconds; memory MiB."""

    out_dir: Path
    catalogue: Path
    total: int
    ok: int
    failed: int
    skipped: int  # recorded ok before (resume), not run again
    ran: int  # runs executed now
    workers: int
    wall_s: float  # wall time of the sweep (from expansion to the assembled catalogue)
    work_s: float  # sum over the runs executed now of the time spent in the run function
    coordinator_peak_rss_mib: float
    backend: str
    startup_s: float = float("nan")  # from the call to the first finished run, less that run's work
    catalogue_s: float = float("nan")  # assembling the catalogue at the end

    @property
    def overhead(self) -> float:
        """Framework overhead: ``(wall − work / workers) / wall``, the share of the wall time the workers did not
        spend running scenarios (0 for a perfect framework; NaN when nothing ran)."""
        if not self.ran or self.wall_s <= 0:
            return float("nan")
        return (self.wall_s - self.work_s / self.workers) / self.wall_s


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _prepare(sweep: Sweep, out: Path, *, resume: bool) -> None:
    """Check that ``out`` is free (or holds this very sweep when resuming) and write ``sweep.json``."""
    meta_path = out / SWEEP_FILE
    fingerprint = sweep.fingerprint()
    if meta_path.exists():
        if not resume:
            raise InputError(
                out, "already holds a sweep; pass --resume to finish it, or choose another --out"
            )
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(meta_path, f"cannot be read ({exc}); the folder cannot be resumed") from None
        if old.get("fingerprint") != fingerprint:
            raise InputError(
                out,
                f"holds a different sweep (from {old.get('source')}): its base scenario, overrides, parameters, "
                "seeds or design differ from this one; choose another --out",
            )
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(out, "exists and is not empty (and holds no sweep); choose another --out")
    plan = sweep.plan
    meta = {
        "name": sweep.name,
        "source": sweep.source,
        "base": str(sweep.base_path),
        "fingerprint": fingerprint,
        "runs": plan.total,
        "seeds": plan.seeds,
        "parameters": [
            {"path": p, "kind": plan.kinds[p], "grid": list(a.values) if len(a.values) <= 1000 else None}
            for p, a in plan.axes
        ]
        + [
            {"path": p, "kind": plan.kinds[p], "sample": s.method, "bounds": [s.low, s.high], "integer": rnd}
            for (p, s), rnd in zip(plan.sampled, plan.integer, strict=True)
        ],
        "sampling": {"method": plan.method, "points": plan.n_points if plan.sampled else 0}
        | sweep.spec.sampling.model_dump(),
        "problem": plan.problem() if plan.sampled else None,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    import twin

    meta["twin_version"] = twin.__version__
    out.mkdir(parents=True, exist_ok=True)
    if plan.sampled:
        cols = {"sample": pa.array(range(plan.n_points), type=pa.int64())}
        cols.update({p: pa.array(plan.design[:, j]) for j, (p, _) in enumerate(plan.sampled)})
        write_table(pa.table(cols), out / DESIGN_FILE)
    write_run_ids((run.run_id for run in plan.runs()), out)
    write_json(meta, meta_path)  # last: a folder with sweep.json is a complete sweep folder


def _tasks(sweep: Sweep, out: Path, *, skip_done: bool) -> Iterator[RunTask]:
    for run in sweep.plan.runs():
        if skip_done and row_status(out / RUNS_DIR / run.run_id) == "ok":
            continue
        yield RunTask(run.run_id, run.index, run.seed, run.sample, run.values)


def _done_count(sweep: Sweep, out: Path) -> int:
    return sum(row_status(out / RUNS_DIR / run.run_id) == "ok" for run in sweep.plan.runs())


class _Progress:
    """tqdm bar of runs: done / failed / remaining, with tqdm's estimate of the time left."""

    def __init__(self, total: int, done: int, *, name: str, enabled: bool):
        from tqdm.auto import tqdm

        self.total, self.ok, self.failed = total, done, 0
        self.bar = tqdm(
            total=total,
            initial=done,
            unit="run",
            desc=name,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.05,
        )
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix(
            done=self.ok, failed=self.failed, left=self.total - self.ok - self.failed, refresh=False
        )

    def add(self, status: str) -> None:
        if status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        self._show()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_sweep(
    sweep: Sweep | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    executor: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every run of ``sweep`` (a :class:`Sweep` or a sweep file) into ``out_dir`` and assemble its catalogue.

    executor, workers : override the sweep file's ``executor`` and ``workers`` (default workers: the CPUs).
    resume : continue the sweep already in ``out_dir`` (it must be the same sweep): runs recorded ``ok`` are kept,
        missing and failed ones run (again).

    Raises :class:`InputError` for a bad sweep file or an ``out_dir`` that holds something else.
    """
    t0 = time.perf_counter()
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    spec = sweep.spec
    executor = executor or spec.executor
    if not EXECUTOR_PATTERN.match(executor):
        raise InputError(
            "--executor", f"must be local, dask, dask://HOST:PORT, tcp://HOST:PORT or slurm, got {executor!r}"
        )
    cluster = spec.cluster if executor == spec.executor else {}  # the file's options belong to its executor
    n_workers = int(workers or spec.workers or _default_workers())
    out = Path(os.path.abspath(out_dir))
    _prepare(sweep, out, resume=resume)
    plan = sweep.plan
    done_before = _done_count(sweep, out) if resume else 0
    ctx = SweepContext(
        base=sweep.base_data,
        base_file=str(sweep.base_path),
        out_root=str(out),
        kinds=tuple(plan.kinds.items()),
        runner=spec.runner,
        threads=spec.threads_per_run,
    )
    counts = collections.Counter()
    bar = _Progress(plan.total, done_before, name=sweep.name, enabled=progress)
    backend = open_backend(executor, workers=n_workers, cluster=cluster, source=sweep.source)
    where = backend.describe()
    log.info("sweep %s: %d runs (%d done before) on %s", sweep.name, plan.total, done_before, where)
    first: list[float] = []
    try:
        work_s = _drive(backend, ctx, _tasks(sweep, out, skip_done=resume), bar, counts, first)
    except BaseException:
        # interrupted (Ctrl-C, a lost scheduler…): what finished is kept and catalogued, then the error goes on
        bar.close()
        for step in (backend.close, lambda: assemble_catalogue(out, parameters=plan.parameter_paths)):
            try:
                step()
            except Exception:  # noqa: BLE001 - must not hide the interruption
                log.warning("cleaning up after an interrupted sweep failed", exc_info=True)
        raise
    backend.close()
    bar.close()
    t_cat = time.perf_counter()
    catalogue = assemble_catalogue(out, parameters=plan.parameter_paths)
    t_end = time.perf_counter()
    return SweepResult(
        out_dir=out,
        catalogue=catalogue,
        total=plan.total,
        ok=done_before + counts["ok"],
        failed=counts["failed"],
        skipped=done_before,
        ran=counts["ok"] + counts["failed"],
        workers=n_workers,
        wall_s=t_end - t0,
        work_s=work_s,
        coordinator_peak_rss_mib=_peak_rss_mib(),
        backend=where,
        startup_s=first[0] - first[1] - t0 if first else float("nan"),
        catalogue_s=t_end - t_cat,
    )


def _drive(
    backend: Backend,
    ctx: SweepContext,
    tasks: Iterator[RunTask],
    bar: _Progress,
    counts: collections.Counter,
    first: list[float],
) -> float:
    """Keep ``backend.slots`` tasks in flight until ``tasks`` is exhausted; returns the summed work seconds.
    ``first`` receives the time the first run finished and that run's work seconds."""
    inflight: dict[Any, RunTask] = {}
    suspects: collections.deque[RunTask] = collections.deque()  # in flight when a local pool broke
    isolating = False  # a suspect runs alone, so that a death names it
    work = 0.0

    def record(status: str, w: float = 0.0) -> None:
        nonlocal work
        if not first:
            first.extend((time.perf_counter(), w))
        counts[status] += 1
        work += w
        bar.add(status)

    def died(task: RunTask, why: str) -> None:
        log.warning("run %s: %s", task.run_id, why)
        failure_row(ctx, task, f"{DIED}: {why}")
        record("failed")

    while True:
        if suspects or isolating:
            if not inflight and suspects:
                task = suspects.popleft()
                inflight[backend.submit(ctx, task)] = task
                isolating = True
        else:
            while len(inflight) < backend.slots:
                task = next(tasks, None)
                if task is None:
                    break
                inflight[backend.submit(ctx, task)] = task
        if not inflight:
            return work
        broken = False
        for handle in backend.wait(inflight.keys(), timeout=0.5):
            task = inflight.pop(handle)
            try:
                rec = backend.result(handle)
            except WorkerLost as exc:
                if backend.isolates_deaths or isolating:
                    died(task, str(exc))
                else:
                    suspects.append(task)
                broken = not backend.isolates_deaths  # a local pool is gone with its worker
                continue
            except Exception as exc:  # noqa: BLE001 - the task could not report (e.g. its row could not be written)
                failure_row(ctx, task, f"the run could not report: {one_line(exc)}")
                record("failed")
                continue
            record(rec["status"], rec["work_s"])
        if broken:
            # the pool is gone: tasks that finished before it broke report normally, the rest become suspects
            for handle, task in list(inflight.items()):
                if handle.done() and not handle.cancelled() and handle.exception() is None:
                    rec = handle.result()
                    record(rec["status"], rec["work_s"])
                else:
                    suspects.append(task)
            inflight.clear()
            if suspects:
                log.warning(
                    "a worker process died; re-running the %d runs in flight one at a time", len(suspects)
                )
            backend.recover()
        if isolating and not inflight:
            isolating = False


def check_sweep(
    sweep: Sweep | str | os.PathLike[str], *, limit: int = 20
) -> tuple[int, list[tuple[str, str]]]:
    """Validate every variant scenario of ``sweep`` without running it: ``(runs, [(run_id, error), …])`` with at
    most ``limit`` errors listed."""
    from twin.scenario.schema import Scenario

    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    problems: list[tuple[str, str]] = []
    n = 0
    for run in sweep.plan.runs():
        n += 1
        try:
            Scenario.from_dict(
                sweep.scenario_data(run),
                source=f"{sweep.base_path} [run {run.run_id}]",
                base_dir=sweep.base_path.parent,
            )
        except InputError as exc:
            if len(problems) < limit:
                problems.append((run.run_id, str(exc)))
    return n, problems
