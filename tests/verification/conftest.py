"""Verification runs: one core thread per test module (xdist workers already use one core each; results do not
depend on the thread count, which unit tests check)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from twin.spatial import get_num_threads, set_num_threads


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = get_num_threads()
    set_num_threads(1)
    yield
    set_num_threads(before)
