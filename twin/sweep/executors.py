"""Where the runs execute: a local process pool (default), or Dask — a ``LocalCluster``, an existing scheduler
(``dask://HOST:PORT`` or ``tcp://HOST:PORT``) or a SLURM cluster through dask-jobqueue. The same sweep runs
unchanged on each; :func:`open_backend` picks one from the sweep file's ``executor``.

Each backend keeps a few tasks in flight (:attr:`Backend.slots`), reports finished ones, and turns a dead worker
process into :class:`WorkerLost`:

- local: a worker that dies breaks the whole ``ProcessPoolExecutor``: every task in flight fails with
  ``BrokenProcessPool``. The backend cannot tell which task killed it (``isolates_deaths`` is False); the
  coordinator re-runs those tasks one at a time on a fresh pool (:meth:`Backend.recover`) to find it.
- Dask: the scheduler retries a task whose worker died on other workers and gives up with ``KilledWorker``
  after ``distributed.scheduler.allowed-failures`` deaths; only that task fails (``isolates_deaths``).

Dask and dask-jobqueue are imported only when used.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
from collections.abc import Collection, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from twin.errors import InputError
from twin.sweep.worker import RunTask, SweepContext, execute

log = logging.getLogger(__name__)

__all__ = ["Backend", "DaskBackend", "LocalBackend", "WorkerLost", "open_backend", "slurm_cluster"]


class WorkerLost(Exception):
    """The process running a task died (killed, crashed, out of memory) before the task could report."""


class Backend:
    """A place to run :func:`twin.sweep.worker.execute` tasks."""

    slots: int = 1
    """Tasks to keep in flight."""
    isolates_deaths: bool = True
    """Whether a dead worker fails only the task it ran (else all tasks in flight fail with it)."""

    def submit(self, ctx: SweepContext, task: RunTask) -> Any:
        raise NotImplementedError

    def wait(self, handles: Collection[Any], timeout: float) -> set[Any]:
        """The handles among ``handles`` that have finished, waiting up to ``timeout`` s for at least one."""
        raise NotImplementedError

    def result(self, handle: Any) -> dict[str, Any]:
        """The status record of a finished task; raises :class:`WorkerLost` if its worker died."""
        raise NotImplementedError

    def recover(self) -> None:
        """Make the backend usable again after :class:`WorkerLost` (a new pool); no-op where not needed."""

    def close(self) -> None:
        """Release workers and clusters this backend started."""

    def describe(self) -> str:
        return type(self).__name__

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


WORKER_PRELOAD = (
    "twin.sweep.worker",
    "twin.scenario.schema",
    "twin.scenario.runner",
    "twin.scenario.coupled_run",
    "twin.scenario.results",
)
"""Modules a local pool's forkserver imports before forking workers (the runs' own imports, paid once). Not the
C++ core: OpenMP must not be initialised in a process that forks."""


class LocalBackend(Backend):
    """``workers`` processes of a ``ProcessPoolExecutor`` (forkserver start method where available, else spawn:
    no fork of a process that has threads)."""

    isolates_deaths = False

    def __init__(self, workers: int):
        self.workers = int(workers)
        self.slots = 4 * self.workers  # queued in the pool: a worker never waits for the coordinator
        methods = multiprocessing.get_all_start_methods()
        self._mp = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            # the forkserver imports what every run needs once; each worker forks from it with those loaded
            self._mp.set_forkserver_preload(list(WORKER_PRELOAD))
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._mp)

    def submit(self, ctx: SweepContext, task: RunTask) -> cf.Future:
        return self._pool.submit(execute, ctx, task)

    def wait(self, handles: Collection[cf.Future], timeout: float) -> set[cf.Future]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def result(self, handle: cf.Future) -> dict[str, Any]:
        try:
            return handle.result()
        except BrokenProcessPool as exc:
            raise WorkerLost(f"worker process died ({exc})") from None

    def recover(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"local process pool ({self.workers} workers)"


def slurm_cluster(options: Mapping[str, Any], *, source: str = "<sweep>") -> Any:
    """A ``dask_jobqueue.SLURMCluster`` from the sweep file's ``cluster`` options (its keyword arguments: queue,
    account, cores, memory, walltime, processes, job_extra_directives, job_script_prologue, …); no jobs submitted
    yet. Bad options are an :class:`InputError` naming ``cluster``."""
    from dask_jobqueue import SLURMCluster

    opts = {"cores": 1, "processes": 1, "memory": "2GiB", **dict(options)}
    try:
        return SLURMCluster(**opts)
    except (TypeError, ValueError) as exc:
        raise InputError(source, f"cluster: not valid SLURMCluster options ({exc})") from None


class DaskBackend(Backend):
    """A Dask ``Client`` on a new ``LocalCluster`` (``executor: dask``), an existing scheduler (``dask://HOST:PORT``,
    ``tcp://HOST:PORT``) or a SLURM cluster (``executor: slurm``, scaled to ``workers`` worker processes)."""

    isolates_deaths = True

    def __init__(
        self, executor: str, *, workers: int, cluster: Mapping[str, Any] | None = None, source: str = ""
    ):
        from distributed import Client, LocalCluster

        self.executor = executor
        self._cluster = None
        options = dict(cluster or {})
        if executor == "dask":
            kwargs = {
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",
                "silence_logs": logging.ERROR,
                **options,
            }
            try:
                self._cluster = LocalCluster(**kwargs)
            except TypeError as exc:
                raise InputError(source, f"cluster: not valid LocalCluster options ({exc})") from None
            self._client = Client(self._cluster)
        elif executor == "slurm":
            self._cluster = slurm_cluster(options, source=source)
            self._cluster.scale(n=workers)
            self._client = Client(self._cluster)
        else:
            address = (
                "tcp://" + executor.removeprefix("dask://") if executor.startswith("dask://") else executor
            )
            try:
                self._client = Client(address, timeout="30s")
            except OSError as exc:
                raise InputError(
                    source, f"executor: cannot reach the Dask scheduler at {address} ({exc})"
                ) from None
        threads = sum(self._client.nthreads().values())
        self.slots = max(2 * workers, 2 * threads, 2)

    def submit(self, ctx: SweepContext, task: RunTask) -> Any:
        return self._client.submit(
            execute, ctx, task, pure=False, key=f"twin-run-{task.run_id}-{os.urandom(4).hex()}"
        )

    def wait(self, handles: Collection[Any], timeout: float) -> set[Any]:
        from distributed import wait

        try:
            return set(wait(list(handles), timeout=timeout, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            return set()

    def result(self, handle: Any) -> dict[str, Any]:
        from distributed import KilledWorker

        try:
            return handle.result()
        except KilledWorker as exc:
            raise WorkerLost(f"worker process died: {' '.join(str(exc).split())[:300]}") from None

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> str:
        if self.executor == "dask":
            return f"Dask LocalCluster ({self._client.dashboard_link or 'no dashboard'})"
        if self.executor == "slurm":
            return "Dask SLURMCluster"
        return f"Dask scheduler {self._client.scheduler.address}"


def open_backend(
    executor: str, *, workers: int, cluster: Mapping[str, Any] | None = None, source: str = ""
) -> Backend:
    """The backend for ``executor`` (``local``, ``dask``, ``dask://HOST:PORT``, ``tcp://HOST:PORT``, ``slurm``)."""
    if executor == "local":
        return LocalBackend(workers)
    return DaskBackend(executor, workers=workers, cluster=cluster, source=source)
