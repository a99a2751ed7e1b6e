"""One event bus for a coupled run: scenario events and model events on one timeline.

Models never import each other. A model that changes what others may use (smoke makes a space untenable, a
flood closes a street, a unit arrives) *publishes* an event; the models it concerns *subscribe* to its type.
Events are delivered in time order (ties in publication order), each exactly once, and every delivered event is
logged for ``events.parquet``. An event published for a time already passed is delivered at the next dispatch
(a model reports what it found during its last step); its logged time is the time it was published for.

Event types used by twin (``details`` keys in brackets):

* scenario events, by their scenario ``type``: ``fire``, ``pipe_burst``, ``gas_leak``, ``close_road``,
  ``open_road``, ``close_door``, ``alarm``, ``dispatch`` (the scenario event's fields);
* ``space_untenable`` [building, space, name, reason] — from the smoke model;
* ``road_flooded`` / ``road_dry`` [edges, depth_m, for: vehicles | people] — from the flood model;
* ``hazard_zone`` [kind, area_m2, buildings] — from the gas plume;
* ``unit_dispatched`` / ``unit_arrived`` [unit, station, incident, response_time_s] — from the response model.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twin.scenario.results import EventLog

log = logging.getLogger(__name__)

ALL = "*"
"""Subscribe to every event type."""


@dataclass(frozen=True, order=True)
class Event:
    """One event: ``t_s`` (simulated seconds), ``type``, ``source`` (who raised it: ``scenario``, ``crowd``,
    ``smoke``…) and ``details`` (JSON-able)."""

    t_s: float
    seq: int
    type: str = field(compare=False)
    source: str = field(compare=False)
    details: Mapping[str, Any] = field(compare=False, default_factory=dict)


Handler = Callable[[Event], None]


class EventBus:
    """Time-ordered publish/subscribe of :class:`Event` s with a log of everything delivered."""

    def __init__(self, *, log_: EventLog | None = None) -> None:
        self._queue: list[Event] = []
        self._seq = itertools.count()
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self.log = log_ if log_ is not None else EventLog()
        self.now = 0.0
        self.delivered = 0

    def subscribe(self, type: str, handler: Handler) -> None:  # noqa: A002 - the event's own word
        """Call ``handler(event)`` for each delivered event of ``type`` (:data:`ALL`: every type), in
        subscription order."""
        self._handlers[type].append(handler)

    def publish(
        self,
        t_s: float,
        type: str,  # noqa: A002
        source: str,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        """Queue an event for time ``t_s`` (seconds, finite, >= 0); returns it."""
        t = float(t_s)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(
                f"event {type!r} from {source!r}: time must be a finite number >= 0, got {t_s!r}"
            )
        event = Event(t, next(self._seq), str(type), str(source), dict(details or {}))
        heapq.heappush(self._queue, event)
        return event

    def next_time(self) -> float:
        """Time of the earliest queued event (``inf`` when none)."""
        return self._queue[0].t_s if self._queue else math.inf

    def pending(self) -> int:
        return len(self._queue)

    def dispatch(self, until_s: float) -> int:
        """Deliver every queued event with ``t_s <= until_s`` (including those its handlers publish for that
        span) in order; the bus clock becomes ``until_s``. Returns the number delivered."""
        n = 0
        self.now = max(self.now, float(until_s))
        while self._queue and self._queue[0].t_s <= self.now + 1e-9:
            event = heapq.heappop(self._queue)
            self.log.add(event.t_s, event.type, event.source, event.details)
            for handler in (*self._handlers.get(event.type, ()), *self._handlers.get(ALL, ())):
                handler(event)
            n += 1
        self.delivered += n
        return n
