"""Shared fixtures: the real-data folder (``TWIN_DATA``, default ``../shared/data`` beside the project)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (make test, CI): a failure is reproducible, and a change is
# not judged by a case drawn once. HYPOTHESIS_PROFILE=explore draws new examples each run.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

if "PYTEST_XDIST_WORKER" in os.environ:
    # each xdist worker already has a core of its own: OpenMP teams of two per worker would oversubscribe the
    # machine and spin-wait (tests of thread-count independence set their thread counts explicitly)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TWIN_DATA", ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real public test data (see its PROVENANCE.md)."""
    if not DATA.is_dir():
        pytest.fail(f"test data folder {DATA} not found; set TWIN_DATA")
    return DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
