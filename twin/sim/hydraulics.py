"""Pipe bursts and leaks in a water network: WNTR hydraulics with pressure-dependent demand.

:class:`BurstSimulation` reads an EPANET ``.inp`` file (directly, or the ``source`` of a water
:class:`~twin.city.pipes.PipeNetwork` layer) into a ``wntr`` ``WaterNetworkModel`` and runs WNTR's own
``WNTRSimulator`` twice: once as it is (the baseline) and once with the bursts. A burst on a pipe splits the pipe
(``wntr.morph.split_pipe``) at a fraction of its length and puts a leak at the new junction; a burst on a node puts
the leak on that junction. WNTR's leak is an orifice, ``Q = Cd · A · sqrt(2 g p)`` with ``p`` the pressure head
at the leak node (m), so the outflow falls as the network loses pressure.

Assumptions (stated, overridable)
---------------------------------
- Demand is pressure dependent (WNTR ``demand_model="PDD"``, Wagner et al. 1988): a junction receives its full
  demand at ``required_pressure_m`` (default 20 m ≈ 2 bar, a common minimum service pressure), none at or below
  ``minimum_pressure_m`` (default 0 m), with exponent ``pressure_exponent`` (0.5) in between.
- A customer is a junction with a base demand > 0; it is *below service* when its pressure is below
  ``service_pressure_m`` (default: ``required_pressure_m``). Demand not served is expected demand (base demand ×
  pattern × multiplier) minus the demand WNTR delivered, summed over customers, in m³/s.
- Hydraulic time step ``hydraulic_timestep_s`` (default 300 s) is also the report step; the solution at a report
  time holds until the next one (EPANET's extended-period convention). Leak start and end times are moved onto
  that grid (rounded up), because WNTR switches leaks at hydraulic steps; the effective times are in the result.
- Burst coordinates are in the network file's coordinates (``[COORDINATES]``/``[VERTICES]``): the point at the
  split fraction of the pipe's drawn polyline. The city layer maps them into the local frame.
- A full-bore rupture (``area_m2=None`` on a pipe) has the pipe's cross-section as the orifice area.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import InputError, TwinError
from twin.typing import FloatArray, IntArray

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.city.pipes import PipeNetwork

log = logging.getLogger(__name__)

G = 9.81
"""Gravity WNTR uses in its leak model, m/s²."""


@dataclass(frozen=True)
class Burst:
    """One burst or leak as it was run.

    ``name`` : id of the leak node in the simulated network (the new junction for a pipe burst).
    ``link`` : the pipe that burst (``None`` for a node leak); ``node`` : the junction that leaks (``None`` for a
    pipe burst until it is split). ``x``, ``y`` : location in the network file's coordinates.
    ``area_m2`` : orifice area; ``discharge_coeff`` : Cd; ``start_s`` / ``end_s`` : effective times on the
    hydraulic step grid (``end_s`` is ``None`` when the leak runs to the end).
    """

    name: str
    link: str | None
    node: str | None
    x: float
    y: float
    area_m2: float
    discharge_coeff: float
    start_s: float
    end_s: float | None
    position: float


@dataclass
class BurstResult:
    """Results of a :class:`BurstSimulation` run. Times are seconds from the start, one row per report step.

    ``times_s`` : (t,) float64 s. ``bursts`` : the bursts as run.
    ``pressure_m`` / ``baseline_pressure_m`` : DataFrames (t × nodes) of pressure head, m, with and without the
    bursts (the burst run also has the leak junctions).
    ``demand_m3s`` / ``baseline_demand_m3s`` : delivered demand per node, m³/s (leaks excluded).
    ``expected_demand_m3s`` : (t × junctions) demand asked for, m³/s.
    ``leak_m3s`` : (t × bursts) outflow of each leak, m³/s (columns: burst names).
    ``service_pressure_m`` : the threshold used; ``customers`` : names of junctions with base demand > 0.
    ``coordinates`` : (nodes × 2) x, y of the burst run's nodes in file coordinates.
    ``raw`` / ``raw_baseline`` : WNTR's own ``SimulationResults`` objects.
    """

    times_s: FloatArray
    bursts: list[Burst]
    pressure_m: pd.DataFrame
    baseline_pressure_m: pd.DataFrame
    demand_m3s: pd.DataFrame
    baseline_demand_m3s: pd.DataFrame
    expected_demand_m3s: pd.DataFrame
    leak_m3s: pd.DataFrame
    service_pressure_m: float
    customers: list[str]
    coordinates: pd.DataFrame
    node_types: pd.Series
    elevation_m: pd.Series
    timestep_s: float
    raw: Any = field(repr=False, default=None)
    raw_baseline: Any = field(repr=False, default=None)

    # -- time series ---------------------------------------------------------------------------------------------
    @property
    def leak_outflow_m3s(self) -> FloatArray:
        """(t,) float64 m³/s: total outflow of all leaks at each report time."""
        return self.leak_m3s.sum(axis=1).to_numpy(dtype=np.float64)

    def leak_volume_m3(self) -> float:
        """Total volume lost through the leaks over the run, m³ (each report value held for one step)."""
        return float(self.leak_outflow_m3s[:-1].sum() * self.timestep_s)

    def outflow_fn(self, burst: str | None = None) -> Callable[[float], float]:
        """Leak outflow as a function of time for a flood source: ``rate(t_s) -> m³/s``.

        Piecewise constant: the value reported at a step holds until the next; 0 after the last step. ``burst``
        picks one leak by name; ``None`` sums all of them. The function carries ``breakpoints_s`` (the report
        times) so that :meth:`twin.sim.flood.FloodModel.add_source` takes in exactly :meth:`leak_volume_m3`.
        """
        if burst is None:
            values = self.leak_outflow_m3s
        elif burst in self.leak_m3s.columns:
            values = self.leak_m3s[burst].to_numpy(dtype=np.float64)
        else:
            raise KeyError(f"no burst named {burst!r}; bursts: {list(self.leak_m3s.columns)}")
        times = self.times_s.copy()
        vals = values.copy()

        def rate(t_s: float) -> float:
            k = int(np.searchsorted(times, t_s, side="right")) - 1
            if k < 0 or k >= len(times) - 1:
                return 0.0
            return float(vals[k])

        rate.breakpoints_s = times.copy()  # type: ignore[attr-defined]  # FloodModel ends steps on them
        return rate

    def _below(self, pressure: pd.DataFrame) -> pd.DataFrame:
        return pressure[self.customers] < self.service_pressure_m

    def customers_below_service(self, *, baseline: bool = False) -> IntArray:
        """(t,) int64: customers (junctions with base demand > 0) below the service pressure at each time."""
        p = self.baseline_pressure_m if baseline else self.pressure_m
        return self._below(p).sum(axis=1).to_numpy(dtype=np.int64)

    def demand_not_served_m3s(self, *, baseline: bool = False) -> FloatArray:
        """(t,) float64 m³/s: expected minus delivered demand, summed over customers (never negative per node)."""
        d = self.baseline_demand_m3s if baseline else self.demand_m3s
        short = (self.expected_demand_m3s[self.customers] - d[self.customers]).clip(lower=0.0)
        return short.sum(axis=1).to_numpy(dtype=np.float64)

    def pressure_drop_m(self) -> pd.DataFrame:
        """(t × original nodes) baseline minus burst pressure, m (positive where the burst lowered pressure)."""
        cols = list(self.baseline_pressure_m.columns)
        return self.baseline_pressure_m[cols] - self.pressure_m[cols]

    # -- report --------------------------------------------------------------------------------------------------
    def node_table(self) -> pd.DataFrame:
        """One row per node of the original network, for the report.

        Columns: ``node``, ``type``, ``x``, ``y`` (file coordinates), ``elevation_m``, ``customer`` (bool),
        ``distance_to_burst`` (file units, to the nearest burst; NaN without bursts), ``baseline_min_pressure_m``,
        ``min_pressure_m``, ``max_pressure_drop_m``, ``time_below_service_s`` (burst run, customers only, else 0),
        ``demand_not_served_m3`` (burst run minus baseline, customers only, over the run).
        """
        nodes = list(self.baseline_pressure_m.columns)
        xy = self.coordinates.loc[nodes]
        if self.bursts:
            bxy = np.array([[b.x, b.y] for b in self.bursts])
            d = np.hypot(xy["x"].to_numpy()[:, None] - bxy[:, 0], xy["y"].to_numpy()[:, None] - bxy[:, 1])
            dist = d.min(axis=1)
        else:
            dist = np.full(len(nodes), np.nan)
        drop = self.pressure_drop_m()
        below = self._below(self.pressure_m)
        held = np.diff(self.times_s, append=self.times_s[-1])  # each report value holds for one step
        t_below = pd.Series(0.0, index=nodes)
        t_below[self.customers] = (below.to_numpy() * held[:, None]).sum(axis=0)

        def unserved(d: pd.DataFrame) -> FloatArray:
            s = (self.expected_demand_m3s[self.customers] - d[self.customers]).clip(lower=0.0)
            return (s.to_numpy() * held[:, None]).sum(axis=0)

        extra = pd.Series(0.0, index=nodes)
        extra[self.customers] = unserved(self.demand_m3s) - unserved(self.baseline_demand_m3s)
        cust = set(self.customers)
        return pd.DataFrame(
            {
                "node": nodes,
                "type": self.node_types.loc[nodes].to_numpy(),
                "x": xy["x"].to_numpy(),
                "y": xy["y"].to_numpy(),
                "elevation_m": self.elevation_m.loc[nodes].to_numpy(),
                "customer": [n in cust for n in nodes],
                "distance_to_burst": dist,
                "baseline_min_pressure_m": self.baseline_pressure_m[nodes].min(axis=0).to_numpy(),
                "min_pressure_m": self.pressure_m[nodes].min(axis=0).to_numpy(),
                "max_pressure_drop_m": drop.max(axis=0).to_numpy(),
                "time_below_service_s": t_below.to_numpy(),
                "demand_not_served_m3": extra.to_numpy(),
            }
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able KPIs: leak volume, peak outflow, peak customers below service and unserved demand."""
        below = self.customers_below_service()
        base_below = self.customers_below_service(baseline=True)
        return {
            "bursts": [b.name for b in self.bursts],
            "leak_volume_m3": self.leak_volume_m3(),
            "peak_leak_outflow_m3s": float(self.leak_outflow_m3s.max(initial=0.0)),
            "customers": len(self.customers),
            "service_pressure_m": self.service_pressure_m,
            "peak_customers_below_service": int(below.max(initial=0)),
            "baseline_peak_customers_below_service": int(base_below.max(initial=0)),
            "peak_demand_not_served_m3s": float(self.demand_not_served_m3s().max(initial=0.0)),
        }


@dataclass
class _Request:
    link: str | None
    node: str | None
    area_m2: float | None
    discharge_coeff: float
    start_s: float
    end_s: float | None
    position: float
    isolate_s: float | None = None


def _polyline_point(points: list[tuple[float, float]], fraction: float) -> tuple[float, float]:
    """The point at ``fraction`` of the length along the polyline ``points`` (file coordinates)."""
    xy = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(xy, axis=0).T)
    total = float(seg.sum())
    if total == 0.0:
        return float(xy[0, 0]), float(xy[0, 1])
    target = fraction * total
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    k = int(min(np.searchsorted(cum, target, side="right") - 1, len(seg) - 1))
    s = (target - cum[k]) / seg[k] if seg[k] > 0 else 0.0
    p = xy[k] + s * (xy[k + 1] - xy[k])
    return float(p[0]), float(p[1])


class BurstSimulation:
    """Pipe bursts and leaks in an EPANET network, run with WNTR's pressure-dependent ``WNTRSimulator``.

    Parameters
    ----------
    network : path of an EPANET ``.inp`` file, or a water :class:`~twin.city.pipes.PipeNetwork` (its ``source``).
    duration_s : simulated time, s (> 0).
    hydraulic_timestep_s : hydraulic and report step, s (> 0; 60-300 s is typical).
    required_pressure_m : pressure head for full demand, m (PDD). ``minimum_pressure_m`` : no demand at or below, m.
    pressure_exponent : PDD exponent. ``service_pressure_m`` : threshold for "below service" (default: required).

    Raises :class:`InputError` naming the file for a missing or unreadable network, and naming the element for a
    burst on a link or node that is not in it.
    """

    def __init__(
        self,
        network: str | os.PathLike[str] | PipeNetwork,
        *,
        duration_s: float = 3600.0,
        hydraulic_timestep_s: float = 300.0,
        required_pressure_m: float = 20.0,
        minimum_pressure_m: float = 0.0,
        pressure_exponent: float = 0.5,
        service_pressure_m: float | None = None,
    ):
        if hasattr(network, "kind_of_network"):
            if network.kind_of_network != "water":  # type: ignore[union-attr]
                raise InputError(network.source, "is not a water (EPANET) network; bursts need one")  # type: ignore[union-attr]
            path = Path(network.source)  # type: ignore[union-attr]
        else:
            path = Path(network)  # type: ignore[arg-type]
        self.path = path
        checks = {
            "duration_s": (duration_s, duration_s > 0),
            "hydraulic_timestep_s": (hydraulic_timestep_s, hydraulic_timestep_s > 0),
            "required_pressure_m": (required_pressure_m, required_pressure_m > minimum_pressure_m),
            "pressure_exponent": (pressure_exponent, pressure_exponent > 0),
        }
        for name, (value, ok) in checks.items():
            if not (math.isfinite(value) and ok):
                raise InputError(
                    path,
                    f"{name} = {value!r} is not valid (positive, required > minimum pressure)",
                    element=name,
                )
        if hydraulic_timestep_s != int(hydraulic_timestep_s) or duration_s != int(duration_s):
            raise InputError(
                path,
                f"duration_s ({duration_s}) and hydraulic_timestep_s ({hydraulic_timestep_s}) must be whole seconds "
                "(EPANET/WNTR time options are integers)",
                element="hydraulic_timestep_s",
            )
        self.duration_s = float(duration_s)
        self.timestep_s = float(hydraulic_timestep_s)
        self.required_pressure_m = float(required_pressure_m)
        self.minimum_pressure_m = float(minimum_pressure_m)
        self.pressure_exponent = float(pressure_exponent)
        service = required_pressure_m if service_pressure_m is None else service_pressure_m
        if not math.isfinite(service):
            raise InputError(
                path, f"service_pressure_m = {service!r} must be finite", element="service_pressure_m"
            )
        self.service_pressure_m = float(service)
        self._requests: list[_Request] = []
        self._names = self._element_names()

    # -- model construction -------------------------------------------------------------------------------------
    def _read(self):  # -> wntr.network.WaterNetworkModel
        """A fresh WNTR model of the file (WNTR runs change a model's state, so every run gets its own)."""
        from twin.city.epanet import DESCRIBE, LINK_SECTIONS, NODE_SECTIONS, RULES, read_wntr_model
        from twin.city.pipes import check_sections, read_inp_sections

        p = self.path
        if not p.exists():
            raise InputError(p, "does not exist")
        if p.is_dir():
            raise InputError(p, "is a directory, not an EPANET .inp file")
        sections = read_inp_sections(p)
        check_sections(p, sections, RULES, NODE_SECTIONS, LINK_SECTIONS, describe=DESCRIBE)
        return read_wntr_model(p, sections)

    def _element_names(self) -> tuple[set[str], set[str]]:
        wn = self._read()
        return set(wn.node_name_list), set(wn.link_name_list)

    def model(self):  # -> wntr.network.WaterNetworkModel
        """A fresh WNTR model of the network with this simulation's options and no bursts (the baseline)."""
        wn = self._read()
        h = wn.options.hydraulic
        h.demand_model = "PDD"
        h.required_pressure = self.required_pressure_m
        h.minimum_pressure = self.minimum_pressure_m
        h.pressure_exponent = self.pressure_exponent
        t = wn.options.time
        t.duration = int(self.duration_s)
        t.hydraulic_timestep = int(self.timestep_s)
        t.report_timestep = int(self.timestep_s)
        t.report_start = 0
        return wn

    def add_burst(
        self,
        *,
        link: str | None = None,
        node: str | None = None,
        area_m2: float | None = None,
        discharge_coeff: float = 0.75,
        start_s: float = 0.0,
        end_s: float | None = None,
        position: float = 0.5,
        isolate_s: float | None = None,
    ) -> None:
        """Add a burst on pipe ``link`` (split at ``position`` of its length, 0 < position < 1) or a leak on
        junction ``node`` (exactly one of them).

        ``area_m2`` : orifice area, m² (> 0); for a pipe ``None`` means a full-bore rupture (the pipe's
        cross-section). ``discharge_coeff`` : Cd in (0, 1]. ``start_s`` / ``end_s`` : when the leak opens and
        closes, s from the start (``end_s=None``: stays open). ``isolate_s`` : when the crew closes the isolating
        valves (s from the start, after ``start_s``): the burst pipe (both halves; for a node leak every pipe at the
        node) is closed from then on and the leak stops — customers behind the valves lose supply.
        """
        src = self.path
        nodes, links = self._names
        if (link is None) == (node is None):
            raise InputError(src, "a burst needs exactly one of link= or node=", element="burst")
        if link is not None:
            element = f"link {link!r}"
            if link not in links:
                raise InputError(src, f"has no link {link!r} to burst", element=element)
            if any(r.link == link for r in self._requests):
                raise InputError(src, f"pipe {link!r} already has a burst", element=element)
        else:
            element = f"node {node!r}"
            if node not in nodes:
                raise InputError(src, f"has no node {node!r} to put a leak on", element=element)
            if area_m2 is None:
                raise InputError(src, "a leak on a node needs area_m2 (orifice area, m²)", element=element)
            if any(r.node == node for r in self._requests):
                raise InputError(src, f"node {node!r} already has a leak", element=element)
        if area_m2 is not None and not (math.isfinite(area_m2) and area_m2 > 0):
            raise InputError(src, f"burst area_m2 must be > 0, got {area_m2!r}", element=element)
        if not (math.isfinite(discharge_coeff) and 0 < discharge_coeff <= 1):
            raise InputError(
                src, f"discharge_coeff must be in (0, 1], got {discharge_coeff!r}", element=element
            )
        if not (0.0 < position < 1.0):
            raise InputError(src, f"position must be in (0, 1), got {position!r}", element=element)
        if not (math.isfinite(start_s) and 0 <= start_s < self.duration_s):
            raise InputError(
                src, f"start_s = {start_s!r} must be in [0, duration_s = {self.duration_s})", element=element
            )
        if end_s is not None and not (math.isfinite(end_s) and end_s > start_s):
            raise InputError(src, f"end_s = {end_s!r} must be after start_s = {start_s}", element=element)
        if isolate_s is not None and not (math.isfinite(isolate_s) and isolate_s > start_s):
            raise InputError(
                src, f"isolate_s = {isolate_s!r} must be after start_s = {start_s}", element=element
            )
        if isolate_s is not None:
            end_s = isolate_s if end_s is None else min(end_s, isolate_s)
        self._requests.append(
            _Request(link, node, area_m2, float(discharge_coeff), start_s, end_s, position, isolate_s)
        )

    def _snap(self, t: float) -> float:
        return math.ceil(t / self.timestep_s - 1e-9) * self.timestep_s

    def _apply(self, wn) -> list[Burst]:  # wn: wntr.network.WaterNetworkModel
        import wntr

        bursts: list[Burst] = []
        for r in self._requests:
            start = self._snap(r.start_s)
            end = None if r.end_s is None else self._snap(r.end_s)
            if end is not None and end <= start:
                end = start + self.timestep_s
            if r.link is not None:
                pipe = wn.get_link(r.link)
                if pipe.link_type != "Pipe":
                    raise InputError(
                        self.path,
                        f"link {r.link!r} is a {pipe.link_type.lower()}; only pipes can burst",
                        element=f"link {r.link!r}",
                    )
                poly = [
                    tuple(wn.get_node(pipe.start_node_name).coordinates),
                    *[tuple(v) for v in (pipe.vertices or [])],
                    tuple(wn.get_node(pipe.end_node_name).coordinates),
                ]
                x, y = _polyline_point(poly, r.position)
                area = r.area_m2 if r.area_m2 is not None else math.pi * pipe.diameter**2 / 4.0
                name = self._fresh(wn, f"{r.link}_burst")
                half = self._fresh(wn, f"{r.link}_B", links=True)
                wntr.morph.split_pipe(
                    wn, r.link, half, name, split_at_point=r.position, return_copy=False,
                )  # fmt: skip
                leak_node = wn.get_node(name)
                leak_node.coordinates = (x, y)
                isolated = [r.link, half]
            else:
                leak_node = wn.get_node(r.node)
                if leak_node.node_type != "Junction":
                    raise InputError(
                        self.path,
                        f"node {r.node!r} is a {leak_node.node_type.lower()}; leaks go on junctions",
                        element=f"node {r.node!r}",
                    )
                name = r.node
                x, y = (float(c) for c in leak_node.coordinates)
                area = float(r.area_m2)  # type: ignore[arg-type]
                isolated = [ln for ln in wn.get_links_for_node(r.node) if wn.get_link(ln).link_type == "Pipe"]
            if r.isolate_s is not None:
                when = self._snap(r.isolate_s)
                for ln in isolated:
                    act = wntr.network.controls.ControlAction(
                        wn.get_link(ln), "status", wntr.network.LinkStatus.Closed
                    )
                    cond = wntr.network.controls.SimTimeCondition(wn, "=", when)
                    wn.add_control(
                        self._fresh_control(wn, f"isolate_{ln}"), wntr.network.controls.Control(cond, act)
                    )
            leak_node.add_leak(
                wn, area=area, discharge_coeff=r.discharge_coeff, start_time=start, end_time=end
            )
            bursts.append(Burst(name, r.link, r.node, x, y, area, r.discharge_coeff, start, end, r.position))
            log.info(
                "%s: burst %s at (%.1f, %.1f), area %.4g m², from %g s", self.path, name, x, y, area, start
            )
        return bursts

    @staticmethod
    def _fresh_control(wn, base: str) -> str:
        taken = set(wn.control_name_list)
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        return name

    @staticmethod
    def _fresh(wn, base: str, *, links: bool = False) -> str:
        taken = set(wn.link_name_list if links else wn.node_name_list)
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        return name

    def _simulate(self, wn, *, with_bursts: bool):  # -> wntr.sim.results.SimulationResults
        import wntr

        res = wntr.sim.WNTRSimulator(wn).run_sim()
        times = res.node["pressure"].index
        if len(times) == 0 or float(times[-1]) < self.duration_s:
            when = f"at t = {float(times[-1]) + self.timestep_s:g} s" if len(times) else "at the first step"
            hint = (
                "try a smaller burst area or a shorter hydraulic_timestep_s"
                if with_bursts
                else "the network without any burst does not converge in WNTR's pressure-dependent solver"
            )
            raise TwinError(
                f"{self.path}: WNTR's hydraulics did not converge {when} of {self.duration_s:g} s "
                f"({'burst' if with_bursts else 'baseline'} run; {hint})"
            )
        return res

    # -- runs ----------------------------------------------------------------------------------------------------
    def run_baseline(self):  # -> wntr.sim.results.SimulationResults
        """The network without bursts, run with this simulation's options: WNTR's own results object."""
        return self._simulate(self.model(), with_bursts=False)

    def run(self) -> BurstResult:
        """Run the baseline and (if any burst was added) the burst scenario; return a :class:`BurstResult`."""
        import wntr

        wn0 = self.model()
        expected = wntr.metrics.expected_demand(wn0)
        customers = [
            n
            for n in wn0.junction_name_list
            if any(ts.base_value > 0 for ts in wn0.get_node(n).demand_timeseries_list)
        ]
        base = self._simulate(wn0, with_bursts=False)
        if self._requests:
            wn = self.model()
            bursts = self._apply(wn)
            res = self._simulate(wn, with_bursts=True)
        else:
            wn, bursts, res = wn0, [], base
        times = res.node["pressure"].index.to_numpy(dtype=np.float64)
        expected = expected.reindex(res.node["pressure"].index).ffill()
        leak_names = [b.name for b in bursts]
        leak = res.node["leak_demand"].reindex(columns=leak_names, fill_value=0.0)
        coords = pd.DataFrame(
            [(n, *map(float, wn.get_node(n).coordinates)) for n in wn.node_name_list],
            columns=["node", "x", "y"],
        ).set_index("node")
        types = pd.Series({n: wn.get_node(n).node_type.lower() for n in wn.node_name_list})
        elev = pd.Series(
            {
                n: float(getattr(wn.get_node(n), "elevation", np.nan))
                if wn.get_node(n).node_type != "Reservoir"
                else float(wn.get_node(n).base_head)
                for n in wn.node_name_list
            }
        )
        out = BurstResult(
            times_s=times,
            bursts=bursts,
            pressure_m=res.node["pressure"],
            baseline_pressure_m=base.node["pressure"],
            demand_m3s=res.node["demand"],
            baseline_demand_m3s=base.node["demand"],
            expected_demand_m3s=expected,
            leak_m3s=leak,
            service_pressure_m=self.service_pressure_m,
            customers=customers,
            coordinates=coords,
            node_types=types,
            elevation_m=elev,
            timestep_s=self.timestep_s,
            raw=res,
            raw_baseline=base,
        )
        log.info("%s: %s", self.path, out.summary())
        return out
