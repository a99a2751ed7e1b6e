"""Batch scenario sweeps (``twin sweep``): a base scenario, parameters addressed by scenario path, seeds; runs on a
local process pool or Dask; one results folder per run plus a Parquet catalogue; resume; sensitivity analysis.

The contract of the sweep file and the catalogue is ``SCENARIO.md`` (section Sweeps). Modules: :mod:`.spec` (the
sweep file and its expansion into runs), :mod:`.paths` (scenario paths), :mod:`.worker` (one run),
:mod:`.executors` (local pool, Dask, SLURM), :mod:`.runner` (the coordinator), :mod:`.catalogue` (rows and the
catalogue), :mod:`.analysis` (SALib sensitivity indices), :mod:`.report` (``twin sweep report``).
"""

from __future__ import annotations

from twin.sweep.catalogue import assemble_catalogue, read_catalogue
from twin.sweep.runner import SweepResult, check_sweep, run_sweep
from twin.sweep.spec import Plan, RunSpec, Sweep, load_sweep, sweep_from_dict

__all__ = [
    "Plan",
    "RunSpec",
    "Sweep",
    "SweepResult",
    "assemble_catalogue",
    "check_sweep",
    "load_sweep",
    "read_catalogue",
    "run_sweep",
    "sweep_from_dict",
]
