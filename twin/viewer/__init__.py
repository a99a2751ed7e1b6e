"""The 3-D viewer: a PyVista scene of the city, playback of results, off-screen stills and movies, drill mode and
a trame web app. Optional (``pip install twin[viewer]``); PyVista is imported only when a viewer module is used.

Public names are loaded lazily: ``from twin.viewer import render_still`` imports :mod:`twin.viewer.render` only.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "render_still": "twin.viewer.render",
    "render_movie": "twin.viewer.render",
    "CityScene": "twin.viewer.scene",
    "PointCloud": "twin.viewer.scene",
    "Playback": "twin.viewer.playback",
    "open_results": "twin.viewer.playback",
    "load_results": "twin.viewer.frames",
    "ResultsData": "twin.viewer.frames",
    "Track": "twin.viewer.frames",
    "check_gl": "twin.viewer.gl",
    "Drill": "twin.viewer.drill",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'twin.viewer' has no attribute {name!r}")
