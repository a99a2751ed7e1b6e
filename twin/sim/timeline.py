"""One clock for a coupled run: crowd, traffic, hazards and response step on one timeline, each with its own
step length, coupled only through the :class:`~twin.sim.bus.EventBus`.

The rule: the model that is furthest behind steps next (ties in the order the models were given), after every
event due by its time has been delivered. So an event at ``t`` takes effect in each model at its first step
boundary at or after ``t`` — within one of its own steps, never earlier — and results do not depend on wall
time or thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

from twin.sim.bus import EventBus
from twin.sim.mesa_model import SimModel


class Component(Protocol):
    """What the timeline needs of a model: its clock, its step and whether it still has work to do."""

    name: str
    time_s: float
    step_s: float
    running: bool

    def step(self) -> None: ...


class ModelComponent:
    """A timeline component that wraps one model (``self.model``, a :class:`SimModel`): its clock, step and
    running flag are the model's."""

    model: SimModel

    @property
    def time_s(self) -> float:
        return self.model.time_s

    @property
    def step_s(self) -> float:
        return self.model.step_s

    @property
    def running(self) -> bool:
        return bool(self.model.running)

    def step(self) -> None:
        self.model.step()


class CoupledModel(SimModel):
    """The coupled run as one :class:`mesa.Model`: one Mesa step advances the model furthest behind.

    Parameters
    ----------
    components : the models, in tie-break order; each steps ``step_s`` seconds per call.
    bus : the event bus they publish to and subscribe on (scenario events already queued).
    duration_s : simulated time limit, seconds.
    seed : the scenario seed (Mesa's ``rng``; each component has its own derived from it).
    """

    def __init__(
        self, components: Sequence[Component], bus: EventBus, *, duration_s: float, seed: int = 0
    ) -> None:
        steps = [c.step_s for c in components]
        super().__init__(seed=seed, step_s=min(steps) if steps else 1.0)
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique, got {names}")
        self.components = list(components)
        self.bus = bus
        self.duration_s = float(duration_s)
        self.wall_s: dict[str, float] = {c.name: 0.0 for c in components}
        self.steps_of: dict[str, int] = {c.name: 0 for c in components}

    def laggard(self) -> Any | None:
        """The component that steps next (furthest behind, still running, before the end), or None."""
        best, best_t = None, math.inf
        for c in self.components:
            if c.running and c.time_s + 1e-9 < self.duration_s and c.time_s < best_t - 1e-12:
                best, best_t = c, c.time_s
        return best

    def step(self) -> None:
        """Deliver the events due by the laggard's time, then step it once."""
        c = self.laggard()
        if c is None:
            self.bus.dispatch(self.duration_s)
            self.running = False
            return
        self.bus.dispatch(c.time_s)
        if not c.running:  # an event may have finished it
            return
        t0 = time.perf_counter()
        c.step()
        self.wall_s[c.name] += time.perf_counter() - t0
        self.steps_of[c.name] += 1
        self.time_s = min((m.time_s for m in self.components if m.running), default=c.time_s)

    def run(self, *, progress: bool = True) -> float:
        """Step until every component has finished or reached ``duration_s``; returns wall seconds."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        bar = tqdm(
            total=round(self.duration_s),
            unit="s",
            desc="simulated",
            disable=None if progress else True,
            leave=False,
        )
        shown = 0
        while self.running:
            self.step()
            now = min(round(self.time_s), round(self.duration_s))
            if now > shown:
                bar.update(now - shown)
                shown = now
        bar.close()
        return time.perf_counter() - t0

    @property
    def simulated_s(self) -> float:
        """The furthest any component got (the run's simulated span)."""
        return max((c.time_s for c in self.components), default=0.0)
