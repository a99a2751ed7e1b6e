"""The one place twin touches Mesa's API: a base model with Mesa's contract and a simulated clock.

Mesa's model API moves between releases (``seed`` → ``rng``, schedulers removed, ``time``); keeping every use
of it here means a Mesa upgrade touches this file only.
"""

from __future__ import annotations

import mesa


class SimModel(mesa.Model):
    """A :class:`mesa.Model` whose ``step()`` advances a simulated clock by ``step_s`` seconds.

    Parameters
    ----------
    seed : all randomness derives from it (``self.rng`` is a seeded ``numpy.random.Generator``).
    step_s : simulated seconds one model step advances (one call into the C++ core).
    """

    def __init__(self, *, seed: int, step_s: float) -> None:
        super().__init__(rng=int(seed))
        self.seed = int(seed)
        self.step_s = float(step_s)
        self.time_s = 0.0

    def advance_clock(self) -> None:
        self.time_s = round(self.time_s + self.step_s, 9)
