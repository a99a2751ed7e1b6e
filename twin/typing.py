"""Array aliases used in signatures; docstrings state the shape and unit of each."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
"""float64 array; shape and unit are given where it is used (positions are metres in the local frame)."""
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]
