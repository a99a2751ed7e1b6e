"""The Python face of the C++ traffic core (``twin._core.TrafficSim``): thin, typed, documented shapes.

One :meth:`TrafficSim.step` call advances ``n`` steps of ``dt`` in C++ (GIL released, OpenMP over vehicles when at
least ``parallel_min`` (2,048) are running, serial below: thread barriers cost more than they save with few vehicles;
results bitwise independent of the thread count and of that threshold). Conventions (SUMO's): metres, seconds, m/s; lanes of an edge are
consecutive rows, index 0 the rightmost; a vehicle's position is its front bumper's distance from the start of its
lane, or, inside a junction, of its link (the internal path from one lane to the next).

Model
-----
Car following: the Intelligent Driver Model (Treiber, Hennecke & Helbing 2000)
``a = a_max [1 - (v/v0)^delta - (s*/s)^2]``, ``s* = s0 + max(0, v T + v dv / (2 sqrt(a_max b)))`` with
``v0 = min(lane or link speed x speed factor, max speed)``, ``s0 = minGap``, ``T = tau``, ``b = decel``. The speed
update is SUMO's IDM: ``round(dt / idm_stepping)`` Euler iterations (``idm_stepping`` 0.25 s) with the leader's
speed held, then ``x' = x + v' dt``. In the homogeneous steady state this has the analytic equilibrium gap
``s = (s0 + v T) / sqrt(1 - (v/v0)^delta)``. A final clamp keeps the distance driven in a step within the gap to
whatever is ahead (the rear of the vehicle ahead, a stop line), so vehicles following one another never overlap;
braking is otherwise limited to ``emergency_decel``. Leaders are searched along the vehicle's planned path through
the links ahead, over the braking distance ``v^2 / (2 b)`` + ``lookahead``, including vehicles that have just left
the lane into any of its links while their rear is still on it (also for a vehicle whose route ends on the lane);
vehicles inside a junction on other links into the same lane are followed by their remaining distance (merging). Stop lines use SUMO's IDM stop rule (``s*``
without ``s0``: the vehicle halts at the line). Lower speed limits ahead are approached braking at ``decel``.

Junctions: signal states are SUMO's characters. ``r``/``u`` stop; ``y`` stop if the vehicle can still stop at the
line with ``decel``; ``G`` go; ``g`` go but yield to the link's foes; ``s`` stop at the line, then yield; ``o``/``O``
(off) follow the link's priority. Unsignalised links are major (go) or minor (yield). Yielding = gap acceptance by
time: a foe link occupied by a vehicle, or a vehicle approaching it (that intends to take it and is not itself
stopping) arriving within ``critical_gap`` (3 s), blocks; the critical gap falls by ``impatience`` per second of
waiting down to ``min_critical_gap`` (like SUMO's impatience). Mutual foes: the earlier arrival goes first. Keep
clear: no entry while the exit lane's last vehicle stands within the entering vehicle's length + minGap of its
start. A vehicle that decided to go and can no longer stop comfortably keeps going (except at red). Fixed-time
programmes: phase at time ``t`` from ``(t - offset) mod cycle`` (SUMO: a positive offset delays the programme).
A yielding vehicle's own arrival at the conflict area is estimated at its speed or, from a crawl, accelerating.

Actuated programmes (``tls_actuated``; SUMO ``type="actuated"``, gap-based): a phase with ``phase_min < phase_max``
is actuated. Each lane with a green link (``G``/``g``) in it has a detector (an emulated induction loop)
``actuated_detector_gap`` (2 s) of travel at the lane's speed limit before the stop line (at the lane start if the
lane is shorter); a vehicle on it, or one that passed over it during the last step, is a detection. The phase ends
after ``phase_min`` once no detection has been made for ``actuated_max_gap`` (3 s) on any of its lanes, at
``phase_max`` at the latest; the end time is exact, the switch shows at the next step. Other phases last
``phase_duration``. The programme starts at time 0 in the phase the fixed-time rule gives.

Emergency vehicles (``priority`` 1, like SUMO's bluelight device): they pass red lights (``r``, ``u``, ``s``, ``y``
when they could stop) no faster than ``emergency_red_speed`` (4 m/s, also inside the junction), and red lights and
yield rules (``g``, ``m``) only when no vehicle is on a conflicting link (the link's foes and the links that have
it as a foe), no vehicle that can no longer stop comfortably is about to enter one, and no other emergency vehicle
arrives there first (with priority, ``G``/``M``, it gives way only to other emergency vehicles). Other vehicles do
not enter a junction on a link conflicting with one an emergency vehicle will reach within ``emergency_yield_time``
(5 s at its speed, at least 1 m/s) unless they can no longer stop. On roads with several lanes the emergency
vehicle heads for its rescue lane (the leftmost lane from which its route goes on best); vehicles in that lane from
beside it to ``emergency_yield_distance`` (100 m) ahead change out of it (to the right; from the rightmost lane to
the left) accepting braking up to ``decel`` for themselves and their new follower, whose driver also slows (at most
at ``decel``) to let a moving one in (not a standing one: that one gets in behind); vehicles in the other lanes
there do not change into it unless their route needs it. Single-lane roads: nobody can pull over (lanes have no
lateral room in this model); the junction rules still apply.

Start-up: the head of a queue (a standing vehicle with nothing ahead within the lookahead, released by a light or
a gap) starts ``startup_delay`` (1 s, a driver's reaction; SUMO's vType ``startupDelay``) after it could; the
vehicles behind start with their leader as the IDM has them. Measured at a signal with SUMO's passenger car:
1,810-1,850 veh/h/lane saturation flow and 1.8-1.9 s start-up lost time (plain IDM, ``startup_delay`` 0: the same
flow and 0.8-0.9 s).

Lane changes: strategic, SUMO's "best lanes": over the route ahead (``best_lanes_horizon``, 3000 m) each lane of
the current edge is rated by how far along the route it leads without a lane change (following, at each junction,
the link into the lane that leads on farthest; these planned links are also the ones the vehicle takes, so a run of
short edges is driven in the lane that gets through it). A vehicle whose lane leads on less far than another
changes towards the nearest best lane once its lane's continuation ends on this or the next edge, or within
``strategic_urgency`` (200 m) per lane to cross; closer than ``strategic_urgency`` to that end the vehicle and its
new follower accept braking up to ``decel``; a vehicle that cannot change stops at the lane end and waits; two such
vehicles standing side by side, each wanting the other's lane, swap. MOBIL (Kesting, Treiber & Helbing 2007:
politeness 0.2, threshold 0.1 m/s^2, safe braking 4 m/s^2, keep-right bias 0.2 m/s^2) about once per
``lc_interval`` for a vehicle below 90 % of its desired speed (to the left) and once per 5 ``lc_interval`` (keep
right), not to a lane that leads on less far unless that lane's continuation still goes beyond the next edge and
twice ``strategic_urgency``; at most one change per ``lc_cooldown``; changes to the left on even steps and to the
right on odd steps, so no two vehicles change into one lane from both sides at once.

Several junctions in one step: the leader search and the move follow the planned links through any number of lanes
and links within the braking distance + ``lookahead``; at each link into a lane the vehicles on the other links
into it that are nearer to it (inside the junction, or about to enter from their lane having decided to go) are
followed as if already on it, and the gap to them also bounds the distance driven, so merging never overlaps.

Signalised left turns that yield (``g``, links of 10 m or more with foes) wait for a gap inside the junction, at
half the link's length (SUMO's internal junction), so that one or two turn at the end of each green.

Jams: a vehicle at the head of its lane or junction path that has stood for ``time_to_teleport`` (300 s, SUMO's
default; 0: never) is teleported like in SUMO: put at the start of the next edge of its route with room (standing),
or taken off at the end of its route; :attr:`TrafficSim.teleports` counts them and :meth:`TrafficSim.teleport_log`
lists them. They are a last resort and rare (none on grid10, a few per 5,000 trips on the Bad Hersfeld town).

Insertion: at the first step at or after ``depart_s``, on the first edge of the route, per edge FIFO (a vehicle
that does not fit waits and blocks later departures on that edge, as in SUMO). Lane: the given one, or (``-1``) the
lane with the most room among those from which the route continues. Position: SUMO's ``base`` (front bumper at the
vehicle length) unless ``depart_pos`` is given. It needs ``s0 + (v - v_leader) T`` to the leader and
``s0 + v_f T_f`` behind it; ``depart_speed < 0`` ("max") takes the largest such speed up to the lane's.

Statistics: ``time_loss`` is SUMO's timeLoss (``dt (v_max - v) / v_max`` summed, ``v_max`` the allowed speed),
``waiting_time`` the time at speed below ``stop_speed`` (0.1 m/s); ``collisions`` counts new overlaps (a front
bumper beyond the rear of the vehicle ahead) and stays 0 in a correct run. Times follow SUMO: a vehicle inserted at
time ``t`` is first moved in the step ``t -> t + dt``; it arrives when its front reaches the end of its last edge,
at the end time of that step.

Speed factors: per vehicle ``speed_factor (1 + speed_dev z)``, ``z`` standard normal drawn from a counter-based hash
of (seed, vehicle id), redrawn outside ``[0.2, 2] x speed_factor`` (SUMO's ``normc``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from twin import _core
from twin.typing import FloatArray, Int32Array, IntArray

__all__ = [
    "ARRIVED",
    "NETWORK_FIELDS",
    "PENDING",
    "RUNNING",
    "STATE_NAMES",
    "TrafficSim",
    "default_params",
    "param_docs",
    "routes_to_csr",
]

logger = logging.getLogger(__name__)

PENDING = 0
"""State code: not inserted yet (before its departure time, or waiting in the insertion queue)."""
RUNNING = 1
"""State code: on the network."""
ARRIVED = 2
"""State code: reached the end of its route (``arrival_time`` recorded)."""
STATE_NAMES = ("pending", "running", "arrived")

NETWORK_FIELDS: tuple[str, ...] = (
    "lane_edge",
    "lane_index",
    "lane_length",
    "lane_speed",
    "lane_allow_passenger",
    "lane_shape_offsets",
    "lane_shape_xy",
    "edge_lane_offsets",
    "edge_length",
    "link_from_lane",
    "link_to_lane",
    "link_length",
    "link_speed",
    "link_dir",
    "link_junction",
    "link_tls",
    "link_tls_index",
    "link_major",
    "link_foe_offsets",
    "link_foes",
    "lane_link_offsets",
    "lane_links",
    "tls_offset",
    "tls_phase_offsets",
    "phase_duration",
    "phase_min",
    "phase_max",
    "phase_state_offsets",
    "phase_state",
    "tls_actuated",
)
"""The network arrays the core needs (shapes and meanings: ``TRAFFIC_DESIGN.md``, "Network arrays")."""


def default_params() -> dict[str, float]:
    """Model parameter names and default values."""
    return dict(_core.TrafficSim.default_params())


def param_docs() -> dict[str, str]:
    """Model parameter names and their meaning, unit and source."""
    return dict(_core.TrafficSim.param_docs())


def routes_to_csr(routes: Sequence[Sequence[int]]) -> tuple[IntArray, Int32Array]:
    """Routes as lists of edge ids -> CSR ``(offsets (n + 1,) int64, edges (m,) int32)``."""
    offsets = np.zeros(len(routes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in routes])
    edges = np.fromiter((e for r in routes for e in r), dtype=np.int32, count=int(offsets[-1]))
    return offsets, edges


def _per_vehicle(value: npt.ArrayLike, n: int, dtype: type) -> np.ndarray:
    a = np.asarray(value)
    if a.ndim == 0:
        return np.full(n, a.item(), dtype=dtype)
    return a


def _network_arrays(network: Mapping[str, Any] | object) -> dict[str, Any]:
    if isinstance(network, Mapping):
        missing = [f for f in NETWORK_FIELDS if f not in network]
        if missing:
            raise ValueError(f"network is missing arrays: {', '.join(missing)}")
        return {f: network[f] for f in NETWORK_FIELDS}
    missing = [f for f in NETWORK_FIELDS if not hasattr(network, f)]
    if missing:
        raise ValueError(f"network is missing arrays: {', '.join(missing)}")
    return {f: getattr(network, f) for f in NETWORK_FIELDS}


class TrafficSim:
    """Vehicles on a lane-level road network, stepped in C++.

    Parameters
    ----------
    network : a mapping or an object (e.g. ``twin.sim.traffic_net.TrafficNetwork``) holding the arrays named in
        :data:`NETWORK_FIELDS`: lanes ``(nl,)`` (``lane_length``/``lane_speed`` float64 m and m/s, shapes as CSR
        ``lane_shape_offsets (nl + 1,) int64`` over ``lane_shape_xy (p, 2) float64`` m), edges ``(ne,)``, links
        ``(nk,)`` (``link_length`` m, ``link_speed`` m/s, ``link_dir``/``phase_state`` uint8 ASCII or bytes), signal
        programmes ``(nt,)`` and phases ``(np,)`` (``phase_duration`` s). Checked once; a bad array raises
        ``ValueError`` naming it.
    dt : step length, seconds, in (0, 10].
    seed : the only source of randomness (speed factors), >= 0.
    params : model parameters by name (see :func:`default_params`); an unknown name raises ``ValueError``.
    """

    def __init__(
        self,
        network: Mapping[str, Any] | object,
        *,
        dt: float,
        seed: int,
        params: Mapping[str, float] | None = None,
    ) -> None:
        self._core = _core.TrafficSim(
            dt=float(dt), seed=int(seed), params=dict(params or {}), **_network_arrays(network)
        )
        logger.debug("TrafficSim dt=%g seed=%d", dt, seed)

    # --- set-up ------------------------------------------------------------------------------------------------

    def add_vehicle_types(
        self,
        *,
        length: npt.ArrayLike = 5.0,
        min_gap: npt.ArrayLike = 2.5,
        accel: npt.ArrayLike = 2.6,
        decel: npt.ArrayLike = 4.5,
        emergency_decel: npt.ArrayLike = 9.0,
        tau: npt.ArrayLike = 1.0,
        max_speed: npt.ArrayLike = 55.56,
        speed_factor: npt.ArrayLike = 1.0,
        delta: npt.ArrayLike = 4.0,
        speed_dev: npt.ArrayLike = 0.0,
    ) -> int:
        """Add t vehicle types (SUMO vType semantics; defaults: SUMO's passenger car); returns the first type id.

        Each argument is (t,) float64 or a scalar: length m, min_gap m (IDM s0), accel m/s^2 (IDM a), decel m/s^2
        (IDM b, comfortable), emergency_decel m/s^2 (>= decel), tau s (IDM T), max_speed m/s, speed_factor and
        speed_dev (dimensionless), delta (IDM exponent).
        """
        cols = [
            length,
            min_gap,
            accel,
            decel,
            emergency_decel,
            tau,
            max_speed,
            speed_factor,
            delta,
            speed_dev,
        ]
        t = max((np.asarray(c).size if np.asarray(c).ndim else 1) for c in cols)
        a = [_per_vehicle(c, t, np.float64) for c in cols]
        return int(self._core.add_vehicle_types(*a[:9], speed_dev=a[9]))

    def add_vehicles(
        self,
        depart_s: npt.ArrayLike,
        type: npt.ArrayLike,  # noqa: A002 - the design's name for the vehicle type column
        route_offsets: npt.ArrayLike,
        route_edges: npt.ArrayLike,
        *,
        depart_lane: npt.ArrayLike = -1,
        depart_speed: npt.ArrayLike = 0.0,
        priority: npt.ArrayLike = 0,
        depart_pos: npt.ArrayLike | None = None,
    ) -> IntArray:
        """Add n vehicles; returns their ids (n,) int64, consecutive from the current count.

        depart_s : (n,) float64 s, desired departure time. type : (n,) int32 vehicle type ids.
        route_offsets : (n + 1,) int64 and route_edges : (m,) int32: each route as CSR over edge ids; consecutive
            edges must be joined by a link (``ValueError`` names the vehicle otherwise); see :func:`routes_to_csr`.
        depart_lane : (n,) int32 lane index on the first edge, -1 for the best free lane.
        depart_speed : (n,) float64 m/s, -1 for "max" (the largest safe speed up to the lane's).
        priority : (n,) int8, 1 for emergency vehicles (they pass red lights slowly and carefully, others yield;
            see the module docstring).
        depart_pos : (n,) float64 m, front bumper position on the first lane; None or -1: SUMO's "base".
        Scalars are broadcast to all n vehicles.
        """
        dep = np.asarray(depart_s, dtype=np.float64)
        n = dep.size
        return self._core.add_vehicles(
            dep,
            _per_vehicle(type, n, np.int32),
            route_offsets,
            route_edges,
            _per_vehicle(depart_lane, n, np.int32),
            _per_vehicle(depart_speed, n, np.float64),
            _per_vehicle(priority, n, np.int8),
            depart_pos=None if depart_pos is None else _per_vehicle(depart_pos, n, np.float64),
        )

    def step(self, n: int = 1) -> None:
        """Advance ``n`` steps of ``dt`` in C++."""
        self._core.step(int(n))

    def set_edge_closed(self, edges: npt.ArrayLike, closed: bool) -> None:
        """Close (or reopen) edges (k,) int32: no insertion on them and no entry into them; vehicles whose route
        goes over a closed edge stop before it unless rerouted with :meth:`set_route`."""
        self._core.set_edge_closed(np.atleast_1d(np.asarray(edges)), bool(closed))

    def set_route(self, ids: npt.ArrayLike, route_offsets: npt.ArrayLike, route_edges: npt.ArrayLike) -> None:
        """Reroute vehicles ids (k,) int64 to routes given as CSR (``route_offsets (k + 1,)``, ``route_edges``); each
        route must start with the vehicle's current edge (a pending vehicle's: its departure edge) and, inside a
        junction, continue with the edge it is entering."""
        self._core.set_route(np.atleast_1d(np.asarray(ids)), route_offsets, route_edges)

    # --- state: read-only arrays by vehicle id (n = all vehicles ever added), copied on each access --------------

    @property
    def params(self) -> dict[str, float]:
        """All model parameters as used (defaults with the given overrides)."""
        return dict(self._core.params)

    @property
    def dt(self) -> float:
        """Step length, seconds."""
        return float(self._core.dt)

    @property
    def time(self) -> float:
        """Simulated time, seconds (``step_count * dt``)."""
        return float(self._core.time)

    @property
    def step_count(self) -> int:
        return int(self._core.step_count)

    @property
    def n_vehicles(self) -> int:
        """Vehicles ever added (arrived vehicles keep their ids)."""
        return int(self._core.n_vehicles)

    @property
    def collisions(self) -> int:
        """Overlaps that have occurred (a front bumper beyond the rear of the vehicle ahead); 0 in a correct run."""
        return int(self._core.collisions)

    @property
    def teleports(self) -> int:
        """Jam teleports so far (``time_to_teleport``, SUMO's default 300 s; see :meth:`teleport_log`)."""
        return int(self._core.teleports)

    @property
    def taken_back(self) -> int:
        """Moves taken back so far: two vehicles that entered the same place from different directions in one step
        (each deciding on the last step's state); the one that moved onto the other's segment stayed where it stood.
        A safety net, normally rare; never a collision."""
        return int(self._core.taken_back)

    def teleport_log(self) -> dict[str, np.ndarray]:
        """Every jam teleport so far: ``time`` (k,) float64 s, ``vehicle`` (k,) int64 id, ``from_segment`` (k,)
        int32 (a lane row, or ``n_lanes + link row`` inside a junction), ``to_edge`` (k,) int32 edge row it was put
        on (-1: it left the network at the end of its route)."""
        return dict(self._core.teleport_log())

    def collision_log(self) -> dict[str, np.ndarray]:
        """Every collision so far (empty in a correct run): ``time`` (k,) float64 s, ``vehicle`` (k,) int64 (its
        front overlapped), ``other`` (k,) int64 (the vehicle ahead on the same segment, -1: beyond its end),
        ``segment`` (k,) int32 (lane row, or ``n_lanes + link row``)."""
        return dict(self._core.collision_log())

    @property
    def state(self) -> npt.NDArray[np.int8]:
        """(n,) int8: PENDING 0, RUNNING 1, ARRIVED 2."""
        return self._core.state

    @property
    def lane(self) -> Int32Array:
        """(n,) int32 lane row, -1 when not on a lane (pending, arrived, or inside a junction: see :attr:`link`)."""
        return self._core.lane

    @property
    def link(self) -> Int32Array:
        """(n,) int32 link row while inside a junction, else -1."""
        return self._core.link

    @property
    def pos(self) -> FloatArray:
        """(n,) float64 m: front bumper from the start of the lane (or link); NaN while pending."""
        return self._core.pos

    @property
    def speed(self) -> FloatArray:
        """(n,) float64 m/s (0 unless running)."""
        return self._core.speed

    @property
    def route_index(self) -> Int32Array:
        """(n,) int32 index of the current edge in the vehicle's route."""
        return self._core.route_index

    @property
    def depart_time(self) -> FloatArray:
        """(n,) float64 s, actual insertion time (NaN while pending)."""
        return self._core.depart_time

    @property
    def arrival_time(self) -> FloatArray:
        """(n,) float64 s (NaN until arrived)."""
        return self._core.arrival_time

    @property
    def time_loss(self) -> FloatArray:
        """(n,) float64 s, SUMO's timeLoss."""
        return self._core.time_loss

    @property
    def waiting_time(self) -> FloatArray:
        """(n,) float64 s spent below ``stop_speed``."""
        return self._core.waiting_time

    @property
    def distance(self) -> FloatArray:
        """(n,) float64 m driven."""
        return self._core.distance

    @property
    def lane_changes(self) -> Int32Array:
        """(n,) int32 lane changes made."""
        return self._core.lane_changes

    @property
    def speed_factor(self) -> FloatArray:
        """(n,) float64 speed factor of each vehicle (drawn from its type's speed_factor and speed_dev)."""
        return self._core.speed_factor

    @property
    def link_state(self) -> npt.NDArray[np.uint8]:
        """(nk,) uint8 ASCII signal state of each link for the next step (``M``/``m``: unsignalised major/minor)."""
        return self._core.link_state

    @property
    def tls_phase(self) -> Int32Array:
        """(nt,) int32 current phase of each programme (row into the phase arrays)."""
        return self._core.tls_phase

    def positions(self) -> FloatArray:
        """(n, 2) float64 m: xy of each running vehicle's front bumper on its lane shape (inside a junction: on the
        straight line between the lanes); NaN when not running."""
        return self._core.positions()

    def counts(self) -> dict[str, int]:
        """Vehicles per state: ``pending``, ``running``, ``arrived``."""
        return {k: int(v) for k, v in self._core.counts().items()}

    def edge_stats(self, *, reset: bool = False) -> dict[str, np.ndarray]:
        """Per edge since the last reset: ``entered`` (ne,) int64 vehicles that entered it (inserted or through a
        link), ``speed_sum`` (ne,) float64 m/s summed over ``samples`` (ne,) int64 (one per vehicle on the edge per
        step): mean speed = speed_sum / samples, density = samples * dt / (duration * length)."""
        return dict(self._core.edge_stats(bool(reset)))
