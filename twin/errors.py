"""Exceptions and warnings raised by twin.

Every error caused by user input names where the problem is (the file, the element or line, the scenario field)
and what was expected, so that a user can fix it without reading our code.
"""

from __future__ import annotations

import os


class TwinError(Exception):
    """Base class of every error twin raises on purpose."""


class TwinWarning(UserWarning):
    """Base class of twin's own warnings (the test suite turns them into errors)."""


class InputError(TwinError, ValueError):
    """Bad input: a file, an element in it, or a parameter that does not hold what was expected.

    Parameters
    ----------
    source : the file path (or scenario field path) where the problem is; ``None`` if there is no file.
    message : what is wrong and what was expected.
    element : optional element within the source (an IFC GUID, an EPANET section and line, an OSM way id…).
    """

    def __init__(self, source: str | os.PathLike[str] | None, message: str, *, element: str | None = None):
        self.source = os.fspath(source) if source is not None else None
        self.element = element
        self.message = message
        parts = [p for p in (self.source, element) if p]
        super().__init__(": ".join([*parts, message]))
