"""``CrowdModel``: a Mesa model whose step is one call into the C++ crowd core.

The model owns the crowd space (rasters, walls, exits, stairs), the navigation fields (one per exit and one
towards all exits), the agents' arrays in the core, exit choice (re-evaluated every ``exit_choice_every_s``
from expected times: own walking time, or the time the exit needs for the people ahead heading there),
quickest-path routing (the fields re-computed every ``congestion_every_s`` through the current crowd, see
:mod:`twin.sim.congestion`), and recorders for trajectories, KPIs and density. Agents are arrays in C++; no per-agent Python object exists.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from twin import _core
from twin.scenario.results import DensityMap, EventLog, KpiRecorder, TrajectoryRecorder
from twin.sim.congestion import crowd_cost_factor
from twin.sim.crowd_core import CrowdSim
from twin.sim.crowd_space import (
    EXIT_FLOW_PPS_PER_M,
    STAIR_SPEED_DOWN_MPS,
    STAIR_SPEED_UP_MPS,
    CrowdSpace,
)
from twin.sim.mesa_model import SimModel

log = logging.getLogger(__name__)

DEFAULT_DT_S = {"social_force": 0.01, "collision_free_speed": 0.05}
WALKING = 1
EVACUATED = 3
EXIT_SWITCH_MIN_GAIN = 0.10  # a walking agent changes its exit only for one at least 10 % and
EXIT_SWITCH_MIN_GAIN_S = 2.0  # 2 s quicker than its current one (hysteresis)
NAV_CLEARANCE_M = 0.25  # routes keep a body radius (+5 cm of raster slack) from walls
# Routes keep off walls (CrowdSpace.wall_cost): walking right at a wall costs 1 + WALL_COST_EXTRA times as much, the
# extra falling linearly to 0 at WALL_COST_RANGE_M. People then approach a door along its axis instead of along the
# wall beside it and merge before the door jambs, and a crowd does not press against the inside of a corner
# (RiMEA tests 12 and 15 with the social force model).
WALL_COST_EXTRA = 1.0
WALL_COST_RANGE_M = 0.8
# default interval of quickest-path re-routing, seconds (scenario crowd.routing.congestion_every_s), for spaces up
# to CONGESTION_CELL_FIELDS walkable raster cells x exits; larger ones re-route proportionally less often, so that
# re-routing costs about the same per simulated second (each re-routing is a quickest-path field per exit over the
# whole raster; a 160 m x 160 m, 4-storey building with 4 exits re-routes every 16 s)
CONGESTION_EVERY_S = 2.0
CONGESTION_CELL_FIELDS = 1_250_000  # 10,000 m^2 at 0.2 m cells, 5 exits


def default_congestion_every_s(walkable_cells: int, n_exits: int) -> float:
    """The default quickest-path re-routing interval (s) of a space: CONGESTION_EVERY_S, times the raster's
    walkable cells x exits over CONGESTION_CELL_FIELDS when that is above 1."""
    return CONGESTION_EVERY_S * max(1.0, walkable_cells * max(n_exits, 1) / CONGESTION_CELL_FIELDS)


def exit_labels(table: Any) -> list[str]:
    """Readable, unique names of exits or stairs (rows of ``CrowdSpace.exits`` or ``stairs_table``), as results
    and reports show them.

    A row's ``name`` (a scenario id, an IFC door's Name such as "Main entrance") when it is set and no other row
    has it; otherwise the name followed by the row's ``id`` (an IFC GlobalId), or the ``id`` alone.
    """
    names = [str(n).strip() if isinstance(n, str) else "" for n in table["name"]]
    ids = [str(i) for i in table["id"]]
    counts = {n: names.count(n) for n in names}
    out = []
    for n, i in zip(names, ids, strict=True):
        if n and counts[n] == 1:
            out.append(n)
        elif n and n != i:
            out.append(f"{n} ({i})")
        else:
            out.append(i)
    return out


class CrowdModel(SimModel):
    """Crowd evacuation over a :class:`CrowdSpace`.

    Parameters
    ----------
    space : the walkable rasters, walls, exits and stairs.
    population : arrays from :func:`twin.sim.population.build_population` — ``positions (n, 2)`` m,
        ``levels (n,)``, ``speed (n,)`` m/s, ``radius (n,)`` m, ``premovement (n,)`` s, ``stair_up (n,)``,
        ``stair_down (n,)`` m/s, ``group (n,)`` and ``allowed_exits`` (per group: exit ids or None).
    model : ``"social_force"`` or ``"collision_free_speed"``.
    dt_s : the operational model's time step (default per model).
    record_every_s : simulated seconds per Mesa step (one core call); frames are recorded at this interval.
    exit_choice_every_s : simulated seconds between re-evaluations of every walking agent's exit.
    stair_cost_factor : multiplies what a stair costs a route (1: its walking time; > 1: people avoid stairs).
    congestion_every_s : simulated seconds between re-computations of the navigation fields with the walking
        crowd's density (quickest instead of shortest routes, :mod:`twin.sim.congestion`); 0: never (the static
        shortest-path fields); None: :func:`default_congestion_every_s` of the space (2 s up to 10,000 m² with 5
        exits, less often in larger spaces). Exit choice uses the same fields as the agents follow.
    """

    def __init__(
        self,
        space: CrowdSpace,
        population: Mapping[str, Any],
        *,
        model: str = "social_force",
        dt_s: float | None = None,
        seed: int = 0,
        record_every_s: float = 0.5,
        exit_choice_every_s: float = 2.0,
        params: Mapping[str, float] | None = None,
        record_trajectories: bool = True,
        stair_cost_factor: float = 1.0,
        congestion_every_s: float | None = None,
    ) -> None:
        dt = float(dt_s or DEFAULT_DT_S[model])
        steps = max(1, round(record_every_s / dt))
        super().__init__(seed=seed, step_s=steps * dt)
        self.space = space
        self.core_steps = steps
        self.exit_choice_every_s = float(exit_choice_every_s)
        self.exit_ids = exit_labels(space.exits)  # readable names, in the order of the exits' rows
        n_exits = len(self.exit_ids)
        # one field per exit, the last one towards all exits (assigned-exit groups use their exit's field)
        if not (math.isfinite(stair_cost_factor) and stair_cost_factor > 0):
            raise ValueError(f"stair_cost_factor must be a finite number > 0, got {stair_cost_factor!r}")
        if not (math.isfinite(exit_choice_every_s) and exit_choice_every_s > 0):
            raise ValueError(f"exit_choice_every_s must be a finite number > 0, got {exit_choice_every_s!r}")
        if congestion_every_s is None:
            cells = int(np.count_nonzero(space.walkable))
            congestion_every_s = default_congestion_every_s(cells, n_exits)
            if congestion_every_s > CONGESTION_EVERY_S:
                log.info(
                    "quickest-path re-routing every %.1f s of simulated time (a large space: %d walkable cells, "
                    "%d exits; crowd.routing.congestion_every_s sets it)",
                    congestion_every_s,
                    cells,
                    n_exits,
                )
        if not (math.isfinite(congestion_every_s) and congestion_every_s >= 0):
            raise ValueError(f"congestion_every_s must be a finite number >= 0, got {congestion_every_s!r}")
        self._field_options = {
            "clearance_m": NAV_CLEARANCE_M,
            "stair_speed_down": STAIR_SPEED_DOWN_MPS / stair_cost_factor,
            "stair_speed_up": STAIR_SPEED_UP_MPS / stair_cost_factor,
        }
        self._wall_cost = space.wall_cost(extra=WALL_COST_EXTRA, range_m=WALL_COST_RANGE_M)
        self.fields = space.distance_fields(cost=self._wall_cost, **self._field_options)
        self.congestion_every_s = float(congestion_every_s)
        self._next_congestion_s = self.congestion_every_s if self.congestion_every_s > 0 else math.inf
        self._congestion: np.ndarray | None = None  # the cost factor of the current fields (None: plain)
        self._plain_fields = list(self.fields)  # without congestion (with the hazards' cost, if any)
        self._static_fields = list(self.fields)  # without congestion or hazards
        self._hazard: np.ndarray | None = None  # walking-time factor from hazards, (L, ny, nx), or None
        self._field_regions = [np.isfinite(f) for f in self.fields]  # the cells each field reaches
        self._stale_all_exits = False  # the all-exits field lags behind the congestion (nobody followed it)
        self.all_exits_field = n_exits
        self.core = CrowdSim(
            model=model,
            dt=dt,
            seed=seed,
            walkable=space.walkable,
            cell_size=space.cell_size,
            origins=space.origins,
            level_z=space.level_z,
            walls=space.walls,
            wall_levels=space.wall_levels,
            exit_cells=space.exit_cells,
            stairs=space.stairs,
            params=dict(params or {}),
        )
        self.core.set_fields(self.fields)
        pop = population
        self.n_agents = len(pop["positions"])
        self.speed = np.asarray(pop["speed"], dtype=np.float64)
        self.allowed = self._allowed_exit_mask(pop)
        field = self._initial_fields(pop)
        self.ids = self.core.add_agents(
            positions=pop["positions"],
            levels=pop["levels"],
            desired_speed=pop["speed"],
            radius=pop["radius"],
            start_time=pop["premovement"],
            field=field,
            stair_up_speed=pop["stair_up"],
            stair_down_speed=pop["stair_down"],
        )
        self.events = EventLog()
        self.trajectories = TrajectoryRecorder(level_names=space.level_names) if record_trajectories else None
        self.kpis = KpiRecorder(exit_ids=self.exit_ids)
        x0, y0 = space.origins.min(axis=0)
        ny, nx = space.walkable.shape[1:]
        self.density = DensityMap(
            level_names=space.level_names,
            bounds=[x0, y0, x0 + nx * space.cell_size, y0 + ny * space.cell_size],
            cell_m=1.0,
            walls=space.walls,
            wall_levels=space.wall_levels,
        )
        self._next_choice_s = self.exit_choice_every_s
        self._record()

    # -- exits ---------------------------------------------------------------------------------------------------
    def _allowed_exit_mask(self, pop: Mapping[str, Any]) -> np.ndarray | None:
        """(n, n_exits) bool of the exits each agent may use, or None when every agent may use every exit."""
        allowed = pop.get("allowed_exits")
        if not allowed or all(a is None for a in allowed):
            return None
        index = {e: i for i, e in enumerate(self.exit_ids)}  # exits are named by label or by id
        index.update({str(e): i for i, e in enumerate(self.space.exits["id"])})
        per_group = np.ones((len(allowed), len(self.exit_ids)), dtype=bool)
        for g, exits in enumerate(allowed):
            if exits is not None:
                per_group[g] = False
                per_group[g, [index[e] for e in exits]] = True
        return per_group[np.asarray(pop["group"], dtype=np.int64)]

    def _initial_fields(self, pop: Mapping[str, Any]) -> np.ndarray:
        current = np.full(self.n_agents, self.all_exits_field, dtype=np.int32)
        return self._choose(pop["positions"], pop["levels"], current, np.zeros(len(self.exit_ids)))

    def _choose(
        self, positions: np.ndarray, levels: np.ndarray, current: np.ndarray, queues: np.ndarray
    ) -> np.ndarray:
        """(n,) int32 field per agent: its quickest allowed exit; agents with none reachable keep ``current``."""
        chosen = self.space.choose_exits(
            positions,
            levels,
            self.speed,
            self.fields[: len(self.exit_ids)],
            queue_counts=queues,
            current=np.where(current < len(self.exit_ids), current, -1),
            allowed=self.allowed,
        )
        return np.where(chosen >= 0, chosen, current).astype(np.int32)

    def _update_exit_choice(self) -> None:
        """Re-evaluate the exit of every walking agent, one agent after the other, nearest to an exit first.

        An agent expects to pass exit e at ``max(d_e / v, ahead_e / capacity_e)``: its own walking time, or the
        time the exit needs for the people heading for it who come before the agent in this pass (capacity
        ``EXIT_FLOW_PPS_PER_M`` × width). Waiting agents and agents on stairs keep their exit and count as people
        ahead there. A walking agent switches only to an exit at least ``EXIT_SWITCH_MIN_GAIN`` (relative) and
        ``EXIT_SWITCH_MIN_GAIN_S`` quicker (hysteresis). Every choice adds to the load the later agents see, so a
        queue at one exit sends only as many people elsewhere as that saves time; judging all agents against the
        same queue counts sent everybody to the other exit at once, and back (RiMEA test 11).
        """
        state = self.core.state
        walking = state == WALKING
        if not walking.any():
            return
        n_exits = len(self.exit_ids)
        inside = np.flatnonzero(state != EVACUATED)
        pos, lev = self.core.positions[inside], self.core.levels[inside]
        t_walk = (
            np.column_stack([self.space.sample_distance(f, pos, lev) for f in self.fields[:n_exits]])
            / self.speed[inside, None]
        )
        if self.allowed is not None:
            t_walk = np.where(self.allowed[inside], t_walk, np.inf)
        capacity = EXIT_FLOW_PPS_PER_M * self.space.exits["width_m"].to_numpy(np.float64)
        current = self.core.field.copy()
        chosen = current.copy()
        # (A sequential pass, in C++: every choice adds to the load the later agents see.)
        chosen[inside] = _core.greedy_exit_choice(
            np.ascontiguousarray(t_walk),
            np.argsort(t_walk.min(axis=1), kind="stable").astype(np.int64),
            walking[inside],
            current[inside].astype(np.int32),
            capacity,
            EXIT_SWITCH_MIN_GAIN,
            EXIT_SWITCH_MIN_GAIN_S,
        )
        changed = np.flatnonzero(walking & (chosen != current))
        if changed.size:
            self.core.set_field_of(self.ids[changed], chosen[changed])

    def _update_congestion(self) -> None:
        """Re-compute the navigation fields as quickest paths through the walking crowd (cost factor of
        :func:`twin.sim.congestion.crowd_cost_factor`) and hand them to the core.

        A field is re-computed only if the factor changed somewhere it reaches (exactly: elsewhere it cannot
        change); where the factor is 1 throughout, the plain field is restored. The all-exits field is kept up to
        date only while someone follows it (it is a fallback for agents with no reachable exit).
        """
        walking = self.core.state == WALKING
        factor = crowd_cost_factor(
            self.space,
            self.core.positions[walking],
            self.core.levels[walking],
            velocities=self.core.velocities[walking],
            desired_speeds=self.speed[walking],
        )
        total = factor * self._wall_cost if self._hazard is None else factor * self._hazard * self._wall_cost
        previous = self._congestion if self._congestion is not None else np.ones_like(factor)
        changed = factor != previous
        n_fields = len(self.exit_ids)
        if np.any(self.core.field[self.core.state != EVACUATED] == self.all_exits_field):
            n_fields += 1
        elif changed.any():
            self._stale_all_exits = True  # not followed: left as it is, re-computed when needed
        sets, redo = self.space.default_exit_sets(), []
        for j in range(n_fields):
            region = self._field_regions[j]
            stale = j == self.all_exits_field and self._stale_all_exits
            if not (stale or changed[region].any()):
                continue
            if np.all(factor[region] == 1.0):
                self.fields[j] = self._plain_fields[j]
            else:
                redo.append(j)
        if redo:
            t0 = time.perf_counter()
            fresh = self.space.distance_fields([sets[j] for j in redo], cost=total, **self._field_options)
            for j, f in zip(redo, fresh, strict=True):
                self.fields[j] = f
            log.debug(
                "t=%.1f s: %d navigation fields re-computed for congestion (max factor %.2f) in %.3f s",
                self.time_s,
                len(redo),
                float(factor.max()),
                time.perf_counter() - t0,
            )
        if n_fields > len(self.exit_ids):
            self._stale_all_exits = False
        if changed.any() or redo:
            self.core.set_fields(self.fields)
        self._congestion = factor if np.any(factor != 1.0) else None

    def close_exit(self, k: int) -> int:
        """Nobody chooses exit ``k`` (row of the space's exits) from now on: people heading for it turn to their
        quickest other exit at once. People with no other reachable exit keep it (a locked-in crowd is not
        invented). Returns the number of people re-routed."""
        n_exits = len(self.exit_ids)
        if not 0 <= k < n_exits:
            raise ValueError(f"exit index must be in [0, {n_exits}), got {k}")
        if self.allowed is None:
            self.allowed = np.ones((self.n_agents, n_exits), dtype=bool)
        self.allowed[:, k] = False
        c = self.core
        current = c.field.copy()
        on = (c.state != EVACUATED) & (current == k)
        if not on.any():
            return 0
        chosen = self._choose(c.positions, c.levels, current, np.zeros(n_exits))
        moved = np.flatnonzero(on & (chosen != k))
        if moved.size:
            c.set_field_of(self.ids[moved], chosen[moved])
        return int(moved.size)

    def set_hazard_cost(self, cost: np.ndarray | None) -> None:
        """Make hazards part of every route from now on: ``cost`` (L, ny, nx) float64 >= 1 multiplies the walking
        time of each cell (smoke, water); None or all ones: no hazard. The fields are re-computed at once (with
        the current congestion when quickest-path routing is on) and exits re-chosen."""
        if cost is not None:
            cost = np.asarray(cost, dtype=np.float64)
            if cost.shape != self.space.walkable.shape or not np.all(np.isfinite(cost) & (cost >= 1.0)):
                raise ValueError(
                    f"hazard cost must be a finite (L, ny, nx) = {self.space.walkable.shape} array >= 1, got "
                    f"shape {cost.shape}"
                )
            if np.all(cost == 1.0):
                cost = None
        self._hazard = None if cost is None else cost.copy()
        if self._hazard is None:
            plain = list(self._static_fields)
        else:
            plain = self.space.distance_fields(cost=self._hazard * self._wall_cost, **self._field_options)
        self._plain_fields = list(plain)
        self.fields = list(plain)
        self._congestion = None
        self._stale_all_exits = False
        self.core.set_fields(self.fields)
        if self.congestion_every_s > 0:
            self._update_congestion()
        self._update_exit_choice()

    def stair_usage(self) -> dict[str, dict[str, int]]:
        """Agents that have entered each stair so far, by stair name (see :func:`exit_labels`):
        ``{name: {"up": n, "down": n}}``."""
        entries = self.core.stair_entries
        ids = exit_labels(self.space.stairs_table) if len(entries) else []
        return {sid: {"up": int(e[0]), "down": int(e[1])} for sid, e in zip(ids, entries, strict=True)}

    # -- stepping ------------------------------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return int(np.count_nonzero(self.core.state != EVACUATED))

    def step(self) -> None:
        """One Mesa step: ``core_steps`` operational steps, then recording. The steps run in as few C++ calls as
        the routing allows: quickest-path re-routing and exit choice happen at their own intervals
        (``congestion_every_s``, ``exit_choice_every_s``), also when a Mesa step (the recording interval) is
        longer."""
        dt = self.core.dt
        left = self.core_steps
        while left > 0:
            now = self.core.time
            due = min(self._next_congestion_s, self._next_choice_s)
            n = left if not math.isfinite(due) else max(1, min(left, math.ceil((due - now) / dt - 1e-6)))
            self.core.step(n)
            left -= n
            now = self.core.time
            if now + 1e-9 >= self._next_congestion_s:
                self._update_congestion()
                while self._next_congestion_s <= now + 1e-9:
                    self._next_congestion_s += self.congestion_every_s
            if now + 1e-9 >= self._next_choice_s:
                self._update_exit_choice()
                while self._next_choice_s <= now + 1e-9:
                    self._next_choice_s += self.exit_choice_every_s
        self.advance_clock()
        self._record()
        if self.remaining == 0:
            self.running = False

    def _record(self) -> None:
        c = self.core
        if self.trajectories is not None:
            self.trajectories.record(
                self.time_s,
                positions=c.positions,
                velocities=c.velocities,
                levels=c.levels,
                z=c.z,
                state=c.state,
                ids=self.ids,
            )
        self.kpis.record(
            self.time_s,
            positions=c.positions,
            velocities=c.velocities,
            levels=c.levels,
            state=c.state,
            exit_index=c.exit_index,
        )
        self.density.add(c.positions, c.levels, dt_s=self.step_s, state=c.state)

    def run(self, duration_s: float, *, progress: bool = True) -> float:
        """Step until everyone has left or ``duration_s`` simulated seconds have passed; returns wall seconds."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        total = math.ceil(duration_s / self.step_s - 1e-9)
        bar = tqdm(
            total=self.n_agents,
            unit="agent",
            desc="evacuated",
            disable=None if progress else True,
            leave=False,
        )
        done = 0
        for _ in range(total):
            if not self.running:
                break
            self.step()
            evacuated = self.n_agents - self.remaining
            bar.update(evacuated - done)
            done = evacuated
        bar.close()
        return time.perf_counter() - t0
