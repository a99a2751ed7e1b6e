"""The event bus (time order, each event once, handlers publishing more, logging) and the coupled timeline
(the model furthest behind steps next; an event takes effect at each model's first step boundary at or after it;
per-model wall time)."""

from __future__ import annotations

import math

import pytest

from twin.sim.bus import ALL, EventBus
from twin.sim.timeline import CoupledModel


def test_events_are_delivered_in_time_order_once_and_logged():
    bus = EventBus()
    seen = []
    bus.subscribe("a", lambda e: seen.append(("a", e.t_s)))
    bus.subscribe(ALL, lambda e: seen.append(("*", e.type)))
    bus.publish(5, "a", "test")
    bus.publish(1, "b", "test")
    bus.publish(5, "a", "test", {"k": 1})
    assert bus.dispatch(0.5) == 0
    assert bus.dispatch(5) == 3
    assert seen == [("*", "b"), ("a", 5.0), ("*", "a"), ("a", 5.0), ("*", "a")]
    assert bus.dispatch(100) == 0
    df = bus.log.to_frame()
    assert df["t_s"].tolist() == [1.0, 5.0, 5.0]
    assert df["details"].tolist()[2] == '{"k": 1}'
    assert bus.next_time() == math.inf


def test_handlers_may_publish_follow_up_events_within_the_same_dispatch():
    bus = EventBus()
    out = []
    bus.subscribe("fire", lambda e: bus.publish(e.t_s + 2, "untenable", "smoke"))
    bus.subscribe("untenable", lambda e: out.append(e.t_s))
    bus.publish(1, "fire", "scenario")
    bus.dispatch(2)
    assert out == []
    bus.dispatch(3)
    assert out == [3.0]


def test_bad_times_are_rejected():
    bus = EventBus()
    with pytest.raises(ValueError, match="finite number >= 0"):
        bus.publish(-1, "x", "test")
    with pytest.raises(ValueError, match="finite number >= 0"):
        bus.publish(math.nan, "x", "test")


class Clock:
    """A model with its own step that records when it saw each event."""

    def __init__(self, name, step_s, bus, *, stop_at=math.inf):
        self.name, self.step_s, self.time_s, self.running = name, step_s, 0.0, True
        self.stop_at = stop_at
        self.seen = []
        self.trace = []
        bus.subscribe("go", lambda e: self.seen.append(self.time_s))

    def step(self):
        self.time_s = round(self.time_s + self.step_s, 9)
        self.trace.append(self.time_s)
        if self.time_s >= self.stop_at:
            self.running = False


def test_the_laggard_steps_next_and_events_take_effect_at_step_boundaries():
    bus = EventBus()
    fast, slow = Clock("fast", 0.5, bus), Clock("slow", 2.0, bus)
    bus.publish(3.2, "go", "scenario")
    model = CoupledModel([fast, slow], bus, duration_s=10, seed=1)
    model.run(progress=False)
    assert fast.trace[-1] == 10.0
    assert len(fast.trace) == 20
    assert slow.trace == [2.0, 4.0, 6.0, 8.0, 10.0]
    # each model saw the event at its first step boundary at or after 3.2 s
    assert fast.seen == [3.5]
    assert slow.seen == [4.0]
    assert set(model.wall_s) == {"fast", "slow"}
    assert model.steps_of == {"fast": 20, "slow": 5}
    assert model.simulated_s == 10.0


def test_a_finished_model_stops_while_others_go_on():
    bus = EventBus()
    a, b = Clock("a", 1.0, bus, stop_at=3), Clock("b", 1.0, bus)
    model = CoupledModel([a, b], bus, duration_s=6, seed=1)
    model.run(progress=False)
    assert a.trace == [1.0, 2.0, 3.0]
    assert b.trace[-1] == 6.0


def test_names_must_be_unique():
    bus = EventBus()
    with pytest.raises(ValueError, match="unique"):
        CoupledModel([Clock("a", 1, bus), Clock("a", 1, bus)], bus, duration_s=1)
