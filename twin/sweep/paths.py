"""Scenario paths: ``crowd.groups[0].count``, ``city.areas[0].exits[0].polygon``, ``events[1].at_s``.

A path is a key (``[A-Za-z_][A-Za-z0-9_-]*``) followed by any number of ``.key`` and ``[index]`` steps; it
addresses one value in the plain data of a scenario (as read from YAML), the way the scenario errors name fields.
:func:`set_at` writes a value there: every step but the last must exist; the last may add a key to a mapping
(an option the base scenario leaves at its default), never an item to a list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["PathError", "format_path", "get_at", "parse_path", "set_at", "settable_problem"]

Step = str | int

_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


class PathError(ValueError):
    """A path that is malformed or does not lead anywhere in the data; the message says where it stops."""


def parse_path(text: str) -> tuple[Step, ...]:
    """``"crowd.groups[0].count"`` → ``("crowd", "groups", 0, "count")``; raises :class:`PathError`."""
    if not isinstance(text, str) or not text:
        raise PathError(f"a scenario path must be text like crowd.groups[0].count, got {text!r}")
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        first = pos == 0
        if m is None or (first and text[0] in ".[") or (not first and m.group(1) and text[pos] != "."):
            raise PathError(
                f"{text!r} is not a scenario path like crowd.groups[0].count (problem at character {pos + 1})"
            )
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return tuple(steps)


def format_path(steps: Sequence[Step]) -> str:
    """The inverse of :func:`parse_path`."""
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def _walk(data: Any, steps: Sequence[Step]) -> Any:
    """The value at ``steps`` (all must exist)."""
    node = data
    for i, step in enumerate(steps):
        where = format_path(steps[:i]) or "the scenario"
        if isinstance(step, int):
            if not isinstance(node, list):
                raise PathError(f"{where} is {_kind(node)}, not a list; cannot take [{step}]")
            if step >= len(node):
                raise PathError(f"{where} has {len(node)} item(s); there is no [{step}]")
            node = node[step]
        else:
            if not isinstance(node, Mapping):
                raise PathError(f"{where} is {_kind(node)}, not a mapping; cannot take .{step}")
            if step not in node:
                keys = ", ".join(sorted(map(str, node))) or "none"
                raise PathError(f"{where} has no key {step!r} (keys: {keys})")
            node = node[step]
    return node


def get_at(data: Any, path: str | Sequence[Step]) -> Any:
    """The value at ``path`` in ``data``; :class:`PathError` naming where the path stops."""
    steps = parse_path(path) if isinstance(path, str) else tuple(path)
    return _walk(data, steps)


def settable_problem(data: Any, path: str | Sequence[Step]) -> str | None:
    """Why :func:`set_at` could not write at ``path`` in ``data`` (``None`` when it can)."""
    steps = parse_path(path) if isinstance(path, str) else tuple(path)
    try:
        parent = _walk(data, steps[:-1])
    except PathError as exc:
        return str(exc)
    last = steps[-1]
    where = format_path(steps[:-1]) or "the scenario"
    if isinstance(last, int):
        if not isinstance(parent, list):
            return f"{where} is {_kind(parent)}, not a list; cannot take [{last}]"
        if last >= len(parent):
            return f"{where} has {len(parent)} item(s); there is no [{last}]"
        return None
    if not isinstance(parent, MutableMapping):
        return f"{where} is {_kind(parent)}, not a mapping; cannot set .{last}"
    return None


def set_at(data: Any, path: str | Sequence[Step], value: Any) -> None:
    """Write ``value`` at ``path`` in ``data`` (in place); :class:`PathError` if the path cannot be written."""
    steps = parse_path(path) if isinstance(path, str) else tuple(path)
    problem = settable_problem(data, steps)
    if problem:
        raise PathError(problem)
    _walk(data, steps[:-1])[steps[-1]] = value


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, int | float):
        return f"a number ({v})"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, Mapping):
        return "a mapping"
    return type(v).__name__
