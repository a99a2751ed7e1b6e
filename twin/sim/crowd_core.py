"""The Python face of the C++ crowd core (``twin._core.CrowdSim``): thin, typed, documented shapes.

One :meth:`CrowdSim.step` call advances ``n`` steps of ``dt`` in C++ (GIL released, OpenMP over agents, results
bitwise independent of the thread count; agents are kept in a spatially sorted order, re-sorted about once a
simulated second, while their ids stay fixed). Neighbours come from a cell index rebuilt every step, each agent
looking as far as anything can act on it (contact, the repulsion's reach and its own headway at its desired
speed). The social force model integrates in 0.01 s substeps with multiple time stepping (r-RESPA, Tuckerman,
Berne & Martyna 1992): the social repulsion, a slow force, is evaluated every ``social_interval`` (0.05 s, whatever
dt is) and held in between; the driving term, the contact forces and the walls in every substep, each agent testing
for contact only the agents on its contact list (those that can touch it before the next evaluation: up to 12 in
the agent's own slots, longer lists in a pool shared by all, grown to the largest need:
:attr:`CrowdSim.list_pool_bytes`). Two operational models:

``social_force`` (Helbing & Molnár 1995; Helbing, Farkas & Vicsek 2000)
    ``m dv/dt = m (v0 e0 - v) / tau + S + sum_j [k g(r_ij - d_ij) n_ij + kappa g(r_ij - d_ij) (dv_ji . t_ij) t_ij] +
    walls`` with the social repulsion ``S = sum_j A exp((r_ij + T u cos+(phi) - d_ij) / B) w(phi) n_ij``: the
    angular weight ``w(phi) = lambda + (1 - lambda)(1 + cos phi) / 2`` of Helbing & Molnár (phi between the desired
    direction and j), and ``u`` the agent's speed along its desired direction (clamped to [0, v0]), so the space a
    pedestrian keeps ahead grows with its walking speed (``d = a + b v``: Seyfried et al. 2006; the
    velocity-dependent size of Chraibi et al.'s GCFM 2010). Without it no (A, B, lambda) follows Weidmann's
    fundamental diagram: the exponential force is negligible until people nearly touch, so a crowd keeps free speed
    up to about 3 P/m^2 and then stops abruptly. ``S``'s component against the desired direction is capped at
    ``m v0 / tau``: people ahead can stop a pedestrian, not walk it backwards (the angular weight is not reciprocal;
    uncapped, a crowd above about 3.5 P/m^2 walks backwards); contact forces and walls still push. Walls: the same
    terms against the nearest points of the walls within the cut-off (no speed term, no cap). Semi-implicit Euler in
    ``ceil(dt / max_substep)`` substeps (``max_substep`` 0.01 s: the body force ``k/m = 1500 s^-2`` and the friction
    need it), ``S`` evaluated every ``social_interval`` = 0.05 s and held in between (its time scale
    ``sqrt(m B / A)`` = 0.17 s is three such intervals); speed capped at ``speed_cap * v0``.

``collision_free_speed`` (Tordeux, Chraibi & Seyfried 2016; JuPedSim's CollisionFreeSpeedModel)
    ``e = normalise(e0 + sum_j a exp((l - s_ij) / D) n_ij + walls)``, ``speed = min(v0, max(0, (s - l) / T))`` with
    ``s`` the spacing to the nearest agent ahead (within the strip of width ``l = r_i + r_j`` along ``e`` and within
    ``cone_angle`` of it). No agent closes more than half of a gap per substep (the excess is first projected out,
    so agents slide along each other), so agents never overlap outside deadlock resolution; discs never move into
    walls, and walls deflect but never turn an agent back (JuPedSim's plain wall term pushes agents at door jambs
    back into the crowd, and its bottlenecks clog).

Defaults (``default_params(model)``, meanings and sources in ``param_docs(model)``):

* ``social_force``: mass 80 kg, tau 0.5 s, body_force 1.2e5 kg/s^2, friction 2.4e5 kg/(m s), wall_body_force /
  wall_friction as body_force / friction (Helbing et al. 2000); agent_strength 335 N, agent_range 0.12 m,
  anisotropy 0.4, time_gap 0.6 s, wall_strength 1000 N, wall_range 0.05 m (calibrated, below); speed_cap 1.5,
  max_substep 0.01 s, social_interval 0.05 s.
* ``collision_free_speed``: time_gap 0.55 s, agent_range 0.2 m (calibrated, below); agent_strength 8,
  wall_strength 5, wall_range 0.02 m (JuPedSim 1.4 defaults); cone_angle 90 degrees (the pure strip of Tordeux et
  al.); max_substep 0.1 s; unstick_shrink 0.1, unstick_shrink_max 0.5.

Shared: range_cutoff 5 (interactions beyond contact + 5 ranges ignored: exp(-5) = 0.7 % of the contact value),
stuck_time 3 s, stuck_speed 0.15 m/s, stuck_window 2 s, unstick_time 2 s, unstick_angle 60 degrees, stair_density
1.5 P/m^2 (a 2 m stair at 0.675 m/s takes about 2 P/s, near the handbooks' ~1 P/(m s); RiMEA 13).

Calibration (body radius 0.2 m; tests/verification/test_fundamental_diagram.py and test_bottleneck_flow.py):
Weidmann's (1993) fundamental diagram in a periodic corridor (RiMEA 3.0 test 4, all at v0 = 1.34 m/s): the speed at
0.5-4 P/m^2 is 0.87-1.20 x Weidmann's with the social force model (peak specific flow 1.45 P/(m s)) and 0.82-1.13
x with the collision-free speed model, falls strictly up to 6 P/m^2 (Weidmann's peak: 1.22 P/(m s)). Bottleneck
(door in a wall, exit cells 0.5 m beyond it, see :mod:`twin.sim.crowd_space`; 200 RiMEA adults): social force
1.53 P/s, collision-free speed 2.0 P/s through a 1 m door (laboratory 1.5-2.0 P/s, Seyfried et al. 2009), growing
about linearly with width (1.46-1.80 and 1.83-1.91 P/(m s) over 0.8-2.4 m). From a jam into a 2 m corridor
(RiMEA 13) the social force model passes 2.2 P/s, the collision-free speed model 2.4 P/s. The social force model's
anisotropy (those behind weigh 0.4) is what keeps a jam from pushing a 1 m corridor's stream up to the free-stream
capacity of an equally wide exit behind it (single file with its speed-dependent gap): with 0.6 (and A = 400 N,
time_gap 0.5 s; Weidmann 0.96-1.22 x, 1.91 P/s through 1 m) the stream queued again before that exit in 7 of 16
runs of RiMEA 12, now in 1 of 48 (tests/verification/test_rimea_9_and_11_to_15.py).
Helbing et al.'s A = 2000 N, B = 0.08 m (walls alike) without the speed term give a crowd at 2 P/m^2 twice
Weidmann's speed and, without the cap, a backward-walking crowd above 3.5 P/m^2; JuPedSim's D = 0.1 m lets
collision-free agents of equal speed form lanes and walk 1.25 x Weidmann's speed at 1 P/m^2.

Shared by both models: navigation down the descent direction of each agent's distance field (bilinear across
cells, never into a wall), WAITING agents (occupying space) until their start time, exits, stairs (entered in
the zone around a stair end when the field's way goes over the stair; capacity ``length * width *
stair_density``, FIFO queue; time on the stair ``length / stair speed``), and the hard guarantees: no agent centre
leaves the walkable cells or crosses a wall, and deadlocks are resolved. An agent whose progress speed (along its
field's direction, averaged over ``stuck_window``) stays below ``stuck_speed`` for ``stuck_time`` is stuck; if it is
deadlocked rather than queueing (there is room one body length ahead, or the agent ahead of it is waiting or
wants a way more than 60 degrees off its own) it gets an unstick episode of ``unstick_time``: the first turns its
desired direction aside (to the right, so head-on pairs pass; later episodes pick a side from the counter-based
RNG); in the collision-free speed model later episodes in a row probe turned directions for a free one and
squeeze by ``unstick_shrink`` of the radius per episode (overlaps below ``unstick_shrink_max * radius``, and only
then). Desired directions are sampled once per step; exits are checked every substep, stair entries and stuck
detection once per step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from twin import _core
from twin.typing import FloatArray, Int32Array, IntArray

__all__ = [
    "EVACUATED",
    "MODELS",
    "ON_STAIR",
    "STATE_NAMES",
    "WAITING",
    "WALKING",
    "CrowdSim",
    "Model",
    "default_params",
    "param_docs",
]

logger = logging.getLogger(__name__)

WAITING = 0
"""State code: pre-movement (the agent stands, occupying space, until its start time)."""
WALKING = 1
"""State code: walking on a floor."""
ON_STAIR = 2
"""State code: on a stair (no interaction with floor agents)."""
EVACUATED = 3
"""State code: left through an exit (``exit_index``, ``exit_time`` recorded)."""
STATE_NAMES = ("waiting", "walking", "on_stair", "evacuated")

Model = Literal["social_force", "collision_free_speed"]
MODELS: tuple[str, ...] = ("social_force", "collision_free_speed")


def default_params(model: Model) -> dict[str, float]:
    """Parameter names and default values of ``model`` (``ValueError`` for an unknown model)."""
    return dict(_core.CrowdSim.default_params(model))


def param_docs(model: Model) -> dict[str, str]:
    """Parameter names and their meaning, unit and source."""
    return dict(_core.CrowdSim.param_docs(model))


def _per_agent(value: npt.ArrayLike, n: int, dtype: type) -> np.ndarray:
    """A per-agent array: a scalar is repeated n times; arrays pass unchanged (the core checks their shape)."""
    a = np.asarray(value)
    if a.ndim == 0:
        return np.full(n, a.item(), dtype=dtype)
    return a


class CrowdSim:
    """Pedestrians on walkable rasters of several levels linked by stairs, stepped in C++.

    Raster conventions follow ``twin.spatial.DistanceField``: all levels share ``(ny, nx)`` and ``cell_size``
    ``h``; cell ``(iy, ix)`` of level ``l`` spans ``[x0 + ix*h, x0 + (ix+1)*h) x [y0 + iy*h, y0 + (iy+1)*h)`` with
    ``(x0, y0) = origins[l]``. Local frame, metres, seconds.

    Parameters
    ----------
    model : ``"social_force"`` or ``"collision_free_speed"``.
    dt : step length, seconds, in (0, 1].
    seed : scenario seed; the only source of randomness (counter-based hash of seed, agent id and counter).
    walkable : (L, ny, nx) uint8 or bool, non-zero where people may stand (exits included).
    cell_size : h, metres.
    origins : (L, 2) float64, metres: lower-left corner of cell (0, 0) per level.
    level_z : (L,) float64, metres: elevation of each level.
    walls : (w, 4) float64, metres: segments ``x0, y0, x1, y1`` bounding the walkable area (not across exits).
    wall_levels : (w,) int32 level of each wall.
    exit_cells : (L, ny, nx) int32: -1, or the index of the exit whose region covers the cell.
    stairs : (s, 8) float64 rows ``level_a, xa, ya, level_b, xb, yb, length_m, width_m`` (foot on level_a at
        (xa, ya), head on level_b at (xb, yb)); None or (0, 8) for none. Both ends must lie in walkable cells.
    params : model parameters by name (see :func:`default_params`); an unknown name raises ``ValueError``.
    """

    def __init__(
        self,
        *,
        model: Model,
        dt: float,
        seed: int,
        walkable: npt.ArrayLike,
        cell_size: float,
        origins: npt.ArrayLike,
        level_z: npt.ArrayLike,
        walls: npt.ArrayLike,
        wall_levels: npt.ArrayLike,
        exit_cells: npt.ArrayLike,
        stairs: npt.ArrayLike | None = None,
        params: Mapping[str, float] | None = None,
    ) -> None:
        self._core = _core.CrowdSim(
            model=model,
            dt=float(dt),
            seed=int(seed),
            walkable=walkable,
            cell_size=float(cell_size),
            origins=origins,
            level_z=level_z,
            walls=walls,
            wall_levels=wall_levels,
            exit_cells=exit_cells,
            stairs=np.zeros((0, 8)) if stairs is None else stairs,
            params=dict(params or {}),
        )
        logger.debug("CrowdSim %s dt=%g substeps=%d", model, dt, self._core.substeps)

    # --- set-up ------------------------------------------------------------------------------------------------

    def set_fields(self, fields: Sequence[FloatArray]) -> None:
        """Replace the navigation fields: each (L, ny, nx) float64 distance (metres, or seconds), ``inf`` where
        unreachable. Agents walk down their field (``field`` index). Descent directions are computed here."""
        self._core.set_fields(list(fields))

    def add_agents(
        self,
        positions: FloatArray,
        levels: npt.ArrayLike = 0,
        desired_speed: npt.ArrayLike = 1.34,
        radius: npt.ArrayLike = 0.2,
        start_time: npt.ArrayLike = 0.0,
        field: npt.ArrayLike = 0,
        stair_up_speed: npt.ArrayLike = 0.675,
        stair_down_speed: npt.ArrayLike = 0.8,
    ) -> IntArray:
        """Add n agents; returns their ids (n,) int64, consecutive from the current count.

        positions : (n, 2) float64, metres; each must lie in a walkable cell of its level (``ValueError`` names
            the first agent index that does not).
        levels : (n,) int level of each agent. desired_speed : (n,) m/s, in (0, 10]. radius : (n,) m, in (0, 2].
        start_time : (n,) s, absolute simulated time at which the agent starts moving (WAITING until then).
        field : (n,) int index into the fields of :meth:`set_fields` (call it first).
        stair_up_speed, stair_down_speed : (n,) m/s along the stair's slope (defaults: RiMEA 13's 0.675 m/s up,
            0.8 m/s down, within the handbook ranges 0.55-0.80 up and 0.60-1.01 down).
        Scalars are broadcast to all n agents.
        """
        pos = np.asarray(positions, dtype=np.float64)
        n = pos.shape[0] if pos.ndim == 2 else 0
        return self._core.add_agents(
            pos,
            _per_agent(levels, n, np.int32),
            _per_agent(desired_speed, n, np.float64),
            _per_agent(radius, n, np.float64),
            _per_agent(start_time, n, np.float64),
            _per_agent(field, n, np.int32),
            _per_agent(stair_up_speed, n, np.float64),
            _per_agent(stair_down_speed, n, np.float64),
        )

    def set_field_of(self, ids: IntArray, field: npt.ArrayLike) -> None:
        """Re-route agents (exit choice): agent ``ids[k]`` follows field ``field[k]`` (a scalar applies to all)."""
        ids = np.asarray(ids)
        self._core.set_field_of(ids, _per_agent(field, ids.size, np.int32))

    def set_desired_speed(self, ids: IntArray, speed: npt.ArrayLike) -> None:
        """Desired walking speed (m/s, in [0, 10]) of agents ``ids`` (a scalar applies to all), e.g. in smoke."""
        ids = np.asarray(ids)
        self._core.set_desired_speed(ids, _per_agent(speed, ids.size, np.float64))

    def set_start_time(self, ids: IntArray, start_time: npt.ArrayLike) -> None:
        """Time (s) agents ``ids`` start moving (a scalar applies to all): an alarm starts pre-movement clocks.
        Agents already walking keep walking."""
        ids = np.asarray(ids)
        self._core.set_start_time(ids, _per_agent(start_time, ids.size, np.float64))

    def step(self, n: int = 1) -> None:
        """Advance ``n`` steps of ``dt`` in C++."""
        self._core.step(int(n))

    # --- state: read-only arrays by agent id, copied from the core on each access (the core keeps agents in a
    # spatially sorted order for speed), so an array keeps the state of the time it was taken --------------------

    @property
    def model(self) -> str:
        return str(self._core.model)

    @property
    def params(self) -> dict[str, float]:
        """All parameters of the model as used (defaults with the given overrides)."""
        return dict(self._core.params)

    @property
    def dt(self) -> float:
        """Step length, seconds."""
        return float(self._core.dt)

    @property
    def substeps(self) -> int:
        """Substeps per step (``ceil(dt / max_substep)``)."""
        return int(self._core.substeps)

    @property
    def time(self) -> float:
        """Simulated time, seconds (``step_count * dt``)."""
        return float(self._core.time)

    @property
    def step_count(self) -> int:
        return int(self._core.step_count)

    @property
    def n_agents(self) -> int:
        """Agents ever added (evacuated agents keep their ids and rows)."""
        return int(self._core.n_agents)

    @property
    def stair_capacity(self) -> IntArray:
        """(s,) int64: agents a stair holds at once."""
        return self._core.stair_capacity

    @property
    def stair_entries(self) -> IntArray:
        """(s, 2) int64: agents that have entered each stair so far, at its foot (going up) and at its head
        (going down)."""
        return self._core.stair_entries

    @property
    def positions(self) -> FloatArray:
        """(n, 2) float64, metres (on a stair: along the stair line; evacuated: where the exit was reached)."""
        return self._core.positions

    @property
    def velocities(self) -> FloatArray:
        """(n, 2) float64, m/s: horizontal velocity over the last substep."""
        return self._core.velocities

    @property
    def levels(self) -> Int32Array:
        """(n,) int32 level (on a stair: the level it was entered from)."""
        return self._core.levels

    @property
    def z(self) -> FloatArray:
        """(n,) float64, metres: level elevation, interpolated along stairs."""
        return self._core.z

    @property
    def state(self) -> npt.NDArray[np.int8]:
        """(n,) int8 state codes: WAITING 0, WALKING 1, ON_STAIR 2, EVACUATED 3."""
        return self._core.state

    @property
    def field(self) -> Int32Array:
        """(n,) int32 navigation field of each agent."""
        return self._core.field

    @property
    def exit_index(self) -> Int32Array:
        """(n,) int32 exit through which the agent left, -1 until evacuated."""
        return self._core.exit_index

    @property
    def exit_time(self) -> FloatArray:
        """(n,) float64 seconds at which the agent left, NaN until evacuated."""
        return self._core.exit_time

    @property
    def stair_index(self) -> Int32Array:
        """(n,) int32 stair the agent is on, -1 otherwise."""
        return self._core.stair_index

    @property
    def desired_speed(self) -> npt.NDArray[np.float32]:
        """(n,) float32 desired walking speed, m/s."""
        return self._core.desired_speed

    @property
    def radius(self) -> npt.NDArray[np.float32]:
        """(n,) float32 body radius, metres."""
        return self._core.radius

    def counts(self) -> dict[str, int]:
        """Agents per state: ``waiting``, ``walking``, ``on_stair``, ``evacuated``."""
        return {k: int(v) for k, v in self._core.counts().items()}

    @property
    def list_pool_bytes(self) -> int:
        """Bytes of the shared pool that holds the social force model's contact lists longer than 12 (very dense
        crowds, or a large skin when someone's desired speed is high; scratch rebuilt every step, grown to the
        largest step's need; not part of :meth:`state_bytes_per_agent`)."""
        return int(self._core.list_pool_bytes)

    @staticmethod
    def state_bytes_per_agent() -> float:
        """Bytes of simulation state per agent (all columns, double buffers, neighbour index and lists)."""
        return float(_core.CrowdSim.state_bytes_per_agent)
