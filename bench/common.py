"""Shared bits of the benchmarks: where the real data is, and a best-of timer."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The real-data folder: ``$TWIN_DATA`` or ``../shared/data`` beside the project."""
    return Path(os.environ.get("TWIN_DATA", ROOT.parent / "shared" / "data")).resolve()


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result
