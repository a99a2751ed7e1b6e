"""Run functions for the sweep tests (``runner: tests.integration.sweep_runners:NAME`` in a sweep file); imported by
the worker processes, so they live in a module of their own.

- :func:`analytic`: no simulation; a known function of the swept fields, for checking the sensitivity analysis
  against SALib on the same design;
- :func:`slow`: the analytic KPIs after 0.25 s, to kill a coordinator mid-sweep;
- :func:`killing`: :func:`analytic`, except that a run with 4 agents kills its own process while the flag file
  ``KILL`` exists beside the sweep folder.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from twin.city.layer import write_json


def model_y(alarm_s: float, premovement_max_s: float) -> float:
    """A non-linear KPI of two inputs with an interaction."""
    return alarm_s + 0.5 * premovement_max_s + 0.01 * alarm_s * premovement_max_s


def analytic(scenario: Any, out_dir: Path) -> dict[str, Any]:
    alarm = scenario.events[0].at_s
    pmax = scenario.crowd.groups[0].premovement_s.max
    summary = {"model": {"y": model_y(alarm, pmax), "alarm_s": alarm, "seed_echo": scenario.seed}}
    write_json(summary, Path(out_dir) / "summary.json")
    return summary


def slow(scenario: Any, out_dir: Path) -> dict[str, Any]:
    time.sleep(0.25)
    return analytic(scenario, out_dir)


def killing(scenario: Any, out_dir: Path) -> dict[str, Any]:
    flag = Path(out_dir).parents[2] / "KILL"
    if scenario.crowd.groups[0].count == 4 and flag.exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return analytic(scenario, out_dir)
