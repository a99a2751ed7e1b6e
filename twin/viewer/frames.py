"""What playback reads from a results folder, indexed by time: agent and vehicle positions, smoke per space,
road closures, KPIs, incidents. No rendering here (no VTK), so it is cheap to test.

A :class:`Track` holds one trajectory table sorted by time with the row offsets of each recorded frame, so the
frame at time ``t`` (the last recorded at or before ``t``) is one ``searchsorted`` and one slice: no per-frame
grouping, no copies of the table.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

AGENT_STATES: tuple[str, ...] = ("waiting", "walking", "on_stair", "evacuated")
"""Crowd states in the order of their colour codes (an unknown state gets ``len(AGENT_STATES)``)."""
INCIDENT_TYPES = ("fire", "pipe_burst", "gas_leak")
"""Scenario events that start an incident (counted as active from their time on)."""


@dataclass
class Track:
    """Positions of many movers over time.

    times : (f,) float64 seconds, the recorded frame times, increasing.
    offsets : (f + 1,) int64; frame ``i`` is rows ``offsets[i]:offsets[i + 1]``.
    xyz : (n, 3) float32 metres, local frame, all rows in frame order.
    value : (n,) float32, the colour value of each row (state code, speed…).
    ids : (n,) int64 mover index (0..movers-1) of each row.
    names : (movers,) the mover ids as in the table.
    """

    times: FloatArray
    offsets: np.ndarray
    xyz: np.ndarray
    value: np.ndarray
    ids: np.ndarray
    names: np.ndarray

    @classmethod
    def from_arrays(
        cls, t_s: FloatArray, ids: Any, xyz: FloatArray, value: FloatArray, *, source: str = "<arrays>"
    ) -> Track:
        """Index a table: ``t_s`` (n,) seconds, ``ids`` (n,) any hashable ids, ``xyz`` (n, 3) metres,
        ``value`` (n,) float. Rows may come in any order; non-finite times or positions are an InputError."""
        t = np.asarray(t_s, dtype=np.float64).reshape(-1)
        p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        v = np.asarray(value, dtype=np.float64).reshape(-1)
        if not (len(t) == len(p) == len(v) == len(ids)):
            raise InputError(source, f"column lengths differ: t {len(t)}, xyz {len(p)}, value {len(v)}")
        if len(t) and not (np.isfinite(t).all() and np.isfinite(p).all()):
            raise InputError(source, "times and positions must be finite numbers")
        codes, names = pd.factorize(pd.Series(ids), sort=False)
        order = np.argsort(t, kind="stable")
        t = t[order]
        times, starts = np.unique(t, return_index=True)
        offsets = np.append(starts, len(t)).astype(np.int64)
        return cls(
            times=times,
            offsets=offsets,
            xyz=np.ascontiguousarray(p[order], dtype=np.float32),
            value=np.ascontiguousarray(v[order], dtype=np.float32),
            ids=np.asarray(codes, dtype=np.int64)[order],
            names=np.asarray(names),
        )

    @property
    def max_count(self) -> int:
        """Most movers recorded in any one frame (the capacity a point cloud needs)."""
        return int(np.diff(self.offsets).max()) if len(self.times) else 0

    def frame_index(self, t_s: float) -> int:
        """Index of the last frame recorded at or before ``t_s`` (-1 before the first)."""
        return int(np.searchsorted(self.times, t_s + 1e-9, side="right")) - 1

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions (k, 3) float32 metres and values (k,) float32 of the frame shown at ``t_s`` (views)."""
        i = self.frame_index(t_s)
        if i < 0:
            return self.xyz[:0], self.value[:0]
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.xyz[a:b], self.value[a:b]


@dataclass
class ResultsData:
    """A results folder, loaded for playback (see ``docs/SCENARIO.md``: Results).

    scenario : the resolved :class:`~twin.scenario.schema.Scenario` (``scenario.yaml``).
    summary : ``summary.json`` as a dict.
    crowd, traffic : :class:`Track` of ``crowd_trajectories.parquet`` (value: state code) and
        ``traffic_fcd.parquet`` (value: speed m/s; z on the terrain when there is one), or ``None``.
    smoke : ``smoke_state.parquet`` or ``None``.
    events : ``events.parquet`` with ``details`` parsed into dicts.
    kpis : ``kpis.parquet`` (t_s, kpi, value) or an empty table.
    trips : ``traffic_trips.parquet`` or ``None``.
    flood : ``flood_max_depth.npz`` arrays (``depth_m`` (ny, nx) south-up, ``x0``, ``y0``, ``cell_m``) or ``None``.
    """

    directory: Path
    scenario: Any
    summary: dict[str, Any]
    crowd: Track | None = None
    traffic: Track | None = None
    smoke: pd.DataFrame | None = None
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    kpis: pd.DataFrame = field(default_factory=pd.DataFrame)
    trips: pd.DataFrame | None = None
    flood: dict[str, Any] | None = None
    _kpi_series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def start_s(self) -> float:
        return 0.0

    @property
    def end_s(self) -> float:
        """Last simulated second (``summary.simulated_s``, else the last recorded time)."""
        sim = self.summary.get("simulated_s")
        if isinstance(sim, int | float) and math.isfinite(sim):
            return float(sim)
        ends = [tr.times[-1] for tr in (self.crowd, self.traffic) if tr is not None and len(tr.times)]
        return float(max(ends, default=0.0))

    # -- KPIs at a time ------------------------------------------------------------------------------------------
    def kpi_at(self, name: str, t_s: float) -> float | None:
        """The last value of KPI ``name`` recorded at or before ``t_s``; ``None`` if there is none yet."""
        if name not in self._kpi_series:
            rows = self.kpis[self.kpis["kpi"] == name] if len(self.kpis) else self.kpis
            t = rows["t_s"].to_numpy(dtype=np.float64) if len(rows) else np.empty(0)
            v = rows["value"].to_numpy(dtype=np.float64) if len(rows) else np.empty(0)
            order = np.argsort(t, kind="stable")
            self._kpi_series[name] = (t[order], v[order])
        t, v = self._kpi_series[name]
        i = int(np.searchsorted(t, t_s + 1e-9, side="right")) - 1
        return None if i < 0 else float(v[i])

    def mean_delay_at(self, t_s: float) -> float | None:
        """Mean time loss (s, SUMO ``timeLoss``) of the trips that arrived by ``t_s``; ``None`` before any."""
        if self.trips is None or not len(self.trips):
            return None
        trips = self.trips
        arrived = trips["arrived"].to_numpy(dtype=bool) & (trips["arrival_s"].to_numpy(dtype=float) <= t_s)
        if not arrived.any():
            return None
        return float(trips["time_loss_s"].to_numpy(dtype=float)[arrived].mean())

    def incidents_at(self, t_s: float) -> list[str]:
        """Incidents started by ``t_s`` and not cleared: descriptions like ``"fire Room 3.05"``."""
        out: list[str] = []
        if not len(self.events):
            return out
        ev = self.events[self.events["t_s"] <= t_s + 1e-9]
        cleared = {str(d.get("event")) for d in ev[ev["type"] == "hazard_zone_cleared"]["details"]}
        for row in ev[ev["type"].isin(INCIDENT_TYPES)].itertuples():
            d = row.details
            if f"events[{d.get('index')}]" in cleared:
                continue
            where = d.get("space") or d.get("link") or d.get("network") or d.get("building") or ""
            out.append(f"{row.type} {where}".strip())
        return out

    def kpi_text(self, t_s: float) -> str:
        """The KPI overlay: time, evacuated, mean delay, active incidents."""
        lines = [f"t = {t_s:6.0f} s"]
        agents = (self.summary.get("crowd") or {}).get("agents")
        evac = self.kpi_at("evacuated", t_s)
        if agents is not None or evac is not None:
            lines.append(f"evacuated {0 if evac is None else int(evac)}" + (f" / {agents}" if agents else ""))
        if self.trips is not None:
            delay = self.mean_delay_at(t_s)
            lines.append("mean delay " + ("n/a" if delay is None else f"{delay:.0f} s"))
        incidents = self.incidents_at(t_s)
        lines.append(f"active incidents {len(incidents)}")
        return "\n".join(lines)

    # -- hazards at a time ---------------------------------------------------------------------------------------
    def smoke_at(self, t_s: float) -> pd.DataFrame:
        """The smoke rows of the last record at or before ``t_s`` (one row per space), possibly empty."""
        if self.smoke is None or not len(self.smoke):
            return pd.DataFrame(columns=["building", "space", "visibility_m", "untenable"])
        times = self._smoke_times
        i = int(np.searchsorted(times, t_s + 1e-9, side="right")) - 1
        if i < 0:
            return self.smoke.iloc[:0]
        return self.smoke[self.smoke["t_s"] == times[i]]

    @property
    def _smoke_times(self) -> np.ndarray:
        if not hasattr(self, "_smoke_t"):
            self._smoke_t = np.unique(self.smoke["t_s"].to_numpy(dtype=np.float64))
        return self._smoke_t

    def closed_roads_at(self, t_s: float) -> set[str]:
        """Road edge ids closed (``close_road``) or flooded for vehicles (``road_flooded``) at ``t_s``."""
        closed: set[str] = set()
        if not len(self.events):
            return closed
        ev = self.events[self.events["t_s"] <= t_s + 1e-9]
        for row in ev.itertuples():
            d = row.details
            if row.type == "close_road" and d.get("edge"):
                closed.add(str(d["edge"]))
            elif row.type == "open_road" and d.get("edge"):
                closed.discard(str(d["edge"]))
            elif row.type == "road_flooded" and d.get("for", "vehicles") == "vehicles":
                closed.update(str(e) for e in d.get("edges", []))
            elif row.type == "road_dry" and d.get("for", "vehicles") == "vehicles":
                closed.difference_update(str(e) for e in d.get("edges", []))
        return closed

    def first_event_s(self, type_: str) -> float | None:
        """Time of the first event of ``type_`` (``None`` if none)."""
        if not len(self.events):
            return None
        hits = self.events[self.events["type"] == type_]
        return float(hits["t_s"].min()) if len(hits) else None


def _read_parquet(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(path, f"cannot be read as Parquet ({exc})") from None


def _need(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(path, f"lacks the columns {missing}; expected {columns}")


def _parse_details(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return {}
    try:
        out = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return {}
    return out if isinstance(out, dict) else {}


def check_results_dir(directory: str | os.PathLike[str]) -> Path:
    """``directory`` as a Path if it is a results folder (has ``scenario.yaml``); else an InputError."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(d, "is not a folder; expected a results folder written by twin run")
    if not (d / "scenario.yaml").exists():
        raise InputError(d, "is not a results folder: it has no scenario.yaml (written by twin run)")
    return d


def load_results(
    directory: str | os.PathLike[str], *, terrain: Any = None, scenario: Any = None
) -> ResultsData:
    """Read a results folder for playback. ``terrain`` (a :class:`~twin.city.terrain.Terrain`) puts vehicles on
    the ground (the FCD table has no z); without it they ride at z = 0.

    ``scenario`` is the folder's loaded ``scenario.yaml`` when the caller has it already.

    Raises :class:`InputError` naming the folder or file when it is not a results folder or a table lacks the
    columns of ``docs/SCENARIO.md``.
    """
    d = check_results_dir(directory)
    if scenario is None:
        from twin.scenario.schema import load_scenario

        scenario = load_scenario(d / "scenario.yaml")
    summary: dict[str, Any] = {}
    if (d / "summary.json").exists():
        try:
            summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(d / "summary.json", f"is not valid JSON ({exc})") from None
    data = ResultsData(directory=d, scenario=scenario, summary=summary)

    path = d / "crowd_trajectories.parquet"
    crowd = _read_parquet(path)
    if crowd is not None and len(crowd):
        _need(crowd, ["t_s", "agent_id", "x_m", "y_m", "z_m", "state"], path)
        state = pd.Categorical(crowd["state"].astype(str), categories=list(AGENT_STATES))
        code = np.where(state.codes < 0, len(AGENT_STATES), state.codes).astype(np.float64)
        data.crowd = Track.from_arrays(
            crowd["t_s"].to_numpy(),
            crowd["agent_id"].to_numpy(),
            crowd[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64),
            code,
            source=str(path),
        )

    path = d / "traffic_fcd.parquet"
    fcd = _read_parquet(path)
    if fcd is not None and len(fcd):
        _need(fcd, ["t_s", "vehicle_id", "x_m", "y_m", "speed_mps"], path)
        x = fcd["x_m"].to_numpy(dtype=np.float64)
        y = fcd["y_m"].to_numpy(dtype=np.float64)
        z = np.zeros_like(x)
        if terrain is not None:
            ground = terrain.height_at(x, y)
            z = np.where(np.isfinite(ground), ground, 0.0)
        data.traffic = Track.from_arrays(
            fcd["t_s"].to_numpy(),
            fcd["vehicle_id"].astype(str).to_numpy(),
            np.column_stack([x, y, z + 1.0]),
            fcd["speed_mps"].to_numpy(dtype=np.float64),
            source=str(path),
        )

    path = d / "smoke_state.parquet"
    smoke = _read_parquet(path)
    if smoke is not None:
        _need(smoke, ["t_s", "building", "space", "visibility_m", "untenable"], path)
        data.smoke = smoke

    path = d / "events.parquet"
    events = _read_parquet(path)
    if events is not None:
        _need(events, ["t_s", "type", "source", "details"], path)
        events = events.copy()
        events["details"] = [_parse_details(v) for v in events["details"]]
        events["type"] = events["type"].astype(str)
        data.events = events.sort_values("t_s", kind="stable").reset_index(drop=True)

    path = d / "kpis.parquet"
    kpis = _read_parquet(path)
    if kpis is not None:
        _need(kpis, ["t_s", "kpi", "value"], path)
        data.kpis = kpis

    path = d / "traffic_trips.parquet"
    trips = _read_parquet(path)
    if trips is not None and {"arrived", "arrival_s", "time_loss_s"} <= set(trips.columns):
        data.trips = trips

    path = d / "flood_max_depth.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                data.flood = {k: z[k] for k in ("depth_m", "x0", "y0", "cell_m")}
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(path, f"must hold depth_m, x0, y0 and cell_m arrays ({exc})") from None
    return data
