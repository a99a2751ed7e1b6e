"""Results of a run: crowd KPIs, recorders for trajectories, KPI time series, events and density maps, and the
writer of the results folder (contract: ``SCENARIO.md``, section Results).

Everything here takes plain numpy arrays, so it does not depend on the simulation: the crowd model hands the
recorders its read-only state arrays every k steps, and :func:`write_results` writes the folder::

    DIR/scenario.yaml  summary.json  crowd_trajectories.parquet  events.parquet  kpis.parquet
        density_maps.npz  report.html  figures/*.png

Each file is written atomically (a temp file in the same folder, then a rename), so a crash or a failing write
never leaves a partial file behind: readers see either the previous file or the complete new one.

Definitions used in ``summary.json`` (``crowd`` section, see :func:`crowd_summary`):

- ``evacuation_time_s``: the largest exit time, i.e. when the last agent reached an exit; ``null`` while any agent
  remains inside (or when there are no agents).
- ``t90_s``: the exit time of the agent of rank ⌈0.9 n⌉ (1-based) among all n agents sorted by exit time, i.e. the
  first time at which at least 90 % of *all* agents had left; ``null`` if fewer than ⌈0.9 n⌉ agents ever left.
- ``exits.<id>.flow_pps``: with the exit's m passage times sorted, t10 and t90 are the nearest-rank percentiles,
  the passages of rank r10 = ⌈0.1 m⌉ and r90 = ⌈0.9 m⌉; ``flow_pps = (r90 − r10) / (t90 − t10)``, the passages
  after the r10-th up to the r90-th divided by the time they took (for passages evenly spaced Δ s apart it is
  exactly 1/Δ). ``null`` when m < 2 or t90 == t10 (all counted passages in the same time step).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from twin.city.layer import read_arrays, write_arrays, write_json, write_table, write_text
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

__all__ = [
    "STATE_NAMES",
    "DensityMap",
    "EventLog",
    "KpiRecorder",
    "TrajectoryRecorder",
    "crowd_summary",
    "git_revision",
    "json_safe",
    "local_density",
    "provenance",
    "to_pedpy",
    "write_events",
    "write_results",
]

STATE_NAMES: tuple[str, ...] = ("waiting", "walking", "on_stair", "evacuated")
"""Names of the crowd core's int8 agent states 0..3 (the ``state`` category of the trajectories)."""
EVACUATED = 3

TRAJECTORY_COLUMNS = ("t_s", "agent_id", "x_m", "y_m", "z_m", "storey", "speed_mps", "state")
KPI_COLUMNS = ("t_s", "kpi", "value")
EVENT_COLUMNS = ("t_s", "type", "source", "details")

TRAJECTORIES_FILE = "crowd_trajectories.parquet"
KPIS_FILE = "kpis.parquet"
EVENTS_FILE = "events.parquet"
DENSITY_FILE = "density_maps.npz"
SUMMARY_FILE = "summary.json"
SCENARIO_FILE = "scenario.yaml"


# -- JSON ------------------------------------------------------------------------------------------------------------
SUMMARY_METADATA = frozenset(
    {"scenario", "seed", "twin_version", "git_revision", "provenance", "wall_time_s"}
)
"""Top-level keys of ``summary.json`` that describe the run rather than its results."""


def flatten_kpis(summary: Mapping[str, Any], *, skip: Iterable[str] = SUMMARY_METADATA) -> dict[str, Any]:
    """The scalar values of a run's summary flattened with dots (``crowd.exits.door.count``), in the summary's
    order; top-level keys in ``skip`` (default: the run metadata) and lists are left out. The sweep catalogue's
    KPI columns and ``twin compare``'s KPI rows both use it."""
    out: dict[str, Any] = {}
    skipped = frozenset(skip)

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, key + ".")
            elif v is None or isinstance(v, bool | int | float | str):
                out[key] = v

    walk({k: v for k, v in summary.items() if k not in skipped}, "")
    return out


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts: numpy scalars and arrays become Python
    numbers and lists, NaN and ±inf become ``None`` (JSON ``null``), tuples become lists, paths become strings,
    dates ISO strings. Anything else that JSON cannot hold raises ``TypeError`` (never silently stringified)."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str | int | np.integer):
                raise TypeError(f"JSON object keys must be str or int, got {type(k).__name__} ({k!r})")
            out[str(k)] = json_safe(v)
        return out
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, _dt.date | _dt.datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__} ({obj!r:.80})")


def _opt_float(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


# -- array checks ----------------------------------------------------------------------------------------------------
def _vector(a: Any, name: str, n: int | None, dtype: type) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"{name} must be {want} {np.dtype(dtype).name}, got shape {arr.shape}")
    if np.issubdtype(np.dtype(dtype), np.integer) and arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be (n,) {np.dtype(dtype).name}, got {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _rows(a: Any, name: str, n: int | None, cols: int) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != cols or (n is not None and arr.shape[0] != n):
        want = f"({n if n is not None else 'n'}, {cols})"
        raise ValueError(f"{name} must be {want} float64, got shape {arr.shape}")
    return arr


# -- crowd summary ---------------------------------------------------------------------------------------------------
def _rank_ceil(m: int, tenths: int) -> int:
    """⌈tenths/10 · m⌉ in exact integer arithmetic (1-based nearest-rank index)."""
    return (tenths * m + 9) // 10


def exit_flow_pps(times: FloatArray) -> float | None:
    """Flow through one exit from its passage times (s): ``(r90 − r10) / (t90 − t10)`` with nearest-rank
    percentiles r10 = ⌈0.1 m⌉, r90 = ⌈0.9 m⌉ (1-based) of the m sorted times; ``None`` when m < 2 or t90 == t10."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    m = t.size
    if m < 2:
        return None
    r10, r90 = max(1, _rank_ceil(m, 1)), _rank_ceil(m, 9)
    span = t[r90 - 1] - t[r10 - 1]
    if r90 <= r10 or not span > 0:
        return None
    return float((r90 - r10) / span)


def crowd_summary(
    *,
    agents: int,
    exit_index: IntArray,
    exit_time: FloatArray,
    exit_ids: Sequence[str],
    simulated_s: float,
    density_max_ppm2: float | None,
) -> dict[str, Any]:
    """The ``crowd`` section of ``summary.json`` (definitions in the module docstring), JSON-safe (``None``, never
    NaN).

    agents : number of agents (n).
    exit_index : (n,) int, index into ``exit_ids`` of the exit each agent left through, -1 if not evacuated.
    exit_time : (n,) float64, seconds of simulated time when the agent left; NaN if not evacuated.
    exit_ids : exit names, in the order of ``exit_index``.
    simulated_s : simulated time in seconds (exit times may not exceed it).
    density_max_ppm2 : the maximum local density over the run, persons/m² (``KpiRecorder.max_density_ppm2``);
        None or NaN if unknown.

    Returns ``{agents, evacuated, remaining, evacuation_time_s, t90_s, exits: {id: {count, first_s, last_s,
    flow_pps}}, max_density_ppm2}``.
    """
    n = int(agents)
    if n < 0:
        raise ValueError(f"agents must be >= 0, got {agents}")
    idx = _vector(exit_index, "exit_index", n, np.int64)
    t = _vector(exit_time, "exit_time", n, np.float64)
    ids = [str(e) for e in exit_ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"exit_ids must be unique, got {ids}")
    if n and (idx.min() < -1 or idx.max() >= len(ids)):
        bad = int(np.flatnonzero((idx < -1) | (idx >= len(ids)))[0])
        raise ValueError(
            f"exit_index[{bad}] = {idx[bad]} is not -1 or an index into exit_ids (len {len(ids)})"
        )
    left = idx >= 0
    if not np.isfinite(t[left]).all():
        bad = int(np.flatnonzero(left & ~np.isfinite(t))[0])
        raise ValueError(f"exit_time[{bad}] is {t[bad]} but the agent left through exit {idx[bad]}")
    if not np.isnan(t[~left]).all():
        bad = int(np.flatnonzero(~left & ~np.isnan(t))[0])
        raise ValueError(
            f"exit_time[{bad}] = {t[bad]} but exit_index[{bad}] = -1 (not evacuated); expected NaN"
        )
    sim_s = float(simulated_s)
    if left.any() and t[left].max() > sim_s + 1e-9 * max(1.0, abs(sim_s)):
        raise ValueError(f"an exit time ({t[left].max()} s) is later than simulated_s ({sim_s} s)")

    times = np.sort(t[left])
    evacuated = int(times.size)
    k90 = _rank_ceil(n, 9)
    exits: dict[str, Any] = {}
    for j, eid in enumerate(ids):
        tj = t[idx == j]
        exits[eid] = {
            "count": int(tj.size),
            "first_s": float(tj.min()) if tj.size else None,
            "last_s": float(tj.max()) if tj.size else None,
            "flow_pps": exit_flow_pps(tj),
        }
    return {
        "agents": n,
        "evacuated": evacuated,
        "remaining": n - evacuated,
        "evacuation_time_s": float(times[-1]) if n and evacuated == n else None,
        "t90_s": float(times[k90 - 1]) if n and evacuated >= k90 else None,
        "exits": exits,
        "max_density_ppm2": _opt_float(density_max_ppm2),
    }


# -- local density ---------------------------------------------------------------------------------------------------
def local_density(positions: FloatArray, levels: IntArray, *, radius_m: float = 1.0) -> FloatArray:
    """Local density at each agent, persons/m²: the number of agents on the same level whose centre lies within
    ``radius_m`` of its centre (itself included, distance <= r) divided by the disc area π r².

    positions : (n, 2) float64, metres; levels : (n,) int. Returns (n,) float64. Uses one
    ``twin.spatial.NeighborGrid`` per level and counts each agent's close pairs (O(n) per level).
    """
    # the C++ core, imported here so that reading results needs no compiled extension
    from twin.spatial import NeighborGrid

    pos = _rows(positions, "positions", None, 2)
    lev = _vector(levels, "levels", pos.shape[0], np.int64)
    r = float(radius_m)
    if not r > 0:
        raise ValueError(f"radius_m must be > 0, got {radius_m}")
    counts = np.ones(pos.shape[0], dtype=np.int64)  # each agent counts itself
    grid = NeighborGrid(r, dim=2)
    for level in np.unique(lev):
        rows = np.flatnonzero(lev == level)
        if rows.size < 2:
            continue
        grid.rebuild(np.ascontiguousarray(pos[rows]))
        pairs = grid.pairs_within(r)
        counts[rows] += np.bincount(pairs.reshape(-1), minlength=rows.size)
    return counts.astype(np.float64) / (math.pi * r * r)


# -- trajectories ----------------------------------------------------------------------------------------------------
class TrajectoryRecorder:
    """Accumulates crowd frames as arrays (no per-agent Python objects) and writes ``crowd_trajectories.parquet``.

    The caller decides when to record (e.g. every k steps so that frames are ``outputs.trajectories_every_s``
    apart) and passes the core's state arrays; only agents that have not evacuated are kept. Columns of the table:
    ``t_s`` float64 s, ``agent_id`` int64, ``x_m, y_m, z_m`` float64 metres (local frame), ``storey`` category
    (level names), ``speed_mps`` float64, ``state`` category (``waiting``/``walking``/``on_stair``/``evacuated``).

    level_names : the storey names, indexed by the agents' level index (must be unique).
    """

    def __init__(self, *, level_names: Sequence[str]) -> None:
        names = [str(s) for s in level_names]
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise ValueError(f"level_names must be unique, got duplicates {dup}")
        self.level_names = names
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._times: list[float] = []
        self._rows = 0

    def __len__(self) -> int:
        """Number of rows recorded so far."""
        return self._rows

    @property
    def frames(self) -> int:
        return len(self._times)

    @property
    def times(self) -> FloatArray:
        """(frames,) float64 recording times, seconds."""
        return np.asarray(self._times, dtype=np.float64)

    def record(
        self,
        t_s: float,
        *,
        positions: FloatArray,
        velocities: FloatArray,
        levels: IntArray,
        z: FloatArray,
        state: np.ndarray,
        ids: IntArray | None = None,
    ) -> int:
        """Add one frame at time ``t_s`` (s, non-decreasing). positions, velocities : (n, 2) float64 m, m/s;
        levels : (n,) int level index; z : (n,) float64 m; state : (n,) int8 codes 0..3; ids : (n,) int64 agent ids
        (default 0..n-1). Arrays are copied (core views may change afterwards). Returns the number of rows added."""
        t = float(t_s)
        if not math.isfinite(t) or (self._times and t < self._times[-1]):
            last = self._times[-1] if self._times else None
            raise ValueError(f"t_s must be finite and non-decreasing, got {t_s} after {last}")
        pos = _rows(positions, "positions", None, 2)
        n = pos.shape[0]
        vel = _rows(velocities, "velocities", n, 2)
        lev = _vector(levels, "levels", n, np.int64)
        zz = _vector(z, "z", n, np.float64)
        st = _vector(state, "state", n, np.int8)
        aid = np.arange(n, dtype=np.int64) if ids is None else _vector(ids, "ids", n, np.int64)
        if n and (lev.min() < 0 or lev.max() >= len(self.level_names)):
            raise ValueError(
                f"levels must be in 0..{len(self.level_names) - 1}, got {lev.min()}..{lev.max()}"
            )
        if n and (st.min() < 0 or st.max() > EVACUATED):
            raise ValueError(f"state codes must be 0..3, got {st.min()}..{st.max()}")
        keep = st != EVACUATED
        k = int(keep.sum())
        speed = np.hypot(vel[keep, 0], vel[keep, 1])
        self._chunks.append(
            (
                np.full(k, t),
                aid[keep].copy(),
                pos[keep, 0].copy(),
                pos[keep, 1].copy(),
                zz[keep].copy(),
                lev[keep].astype(np.int16),
                speed,
                st[keep].copy(),
            )
        )
        self._times.append(t)
        self._rows += k
        return k

    def to_frame(self) -> pd.DataFrame:
        """The recorded rows as a DataFrame with the columns of ``crowd_trajectories.parquet``."""
        if self._chunks:
            cols = [np.concatenate(c) for c in zip(*self._chunks, strict=True)]
        else:
            cols = [np.zeros(0), np.zeros(0, np.int64), *(np.zeros(0),) * 3, np.zeros(0, np.int16)]
            cols += [np.zeros(0), np.zeros(0, np.int8)]
        t, aid, x, y, z, lev, speed, st = cols
        return pd.DataFrame(
            {
                "t_s": t.astype(np.float64),
                "agent_id": aid.astype(np.int64),
                "x_m": x,
                "y_m": y,
                "z_m": z,
                "storey": pd.Categorical.from_codes(lev.astype(np.int64), categories=self.level_names),
                "speed_mps": speed.astype(np.float64),
                "state": pd.Categorical.from_codes(st.astype(np.int64), categories=list(STATE_NAMES)),
            }
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the table to ``path`` (Parquet, atomically)."""
        p = Path(path)
        write_table(self.to_frame(), p)
        log.info("wrote %d trajectory rows (%d frames) to %s", self._rows, self.frames, p)
        return p


def to_pedpy(
    path_or_df: str | os.PathLike[str] | pd.DataFrame,
    *,
    frame_rate: float | None = None,
    storey: str | None = None,
):
    """Trajectories (a ``crowd_trajectories.parquet`` path or its DataFrame) as a ``pedpy.TrajectoryData``.

    PedPy wants columns ``id, frame, x, y`` (metres) and a frame rate (frames/s): ``id`` = agent_id,
    ``frame`` = round(t_s · frame_rate). ``frame_rate`` defaults to 1 / (the smallest spacing between recording
    times). Times must lie on that frame grid. PedPy is 2-D: for a multi-storey run pass ``storey`` to take one
    level (an agent appears at most once per frame in any case; agents on stairs belong to their current level).
    """
    import pedpy  # optional dependency (dev extra)

    source = os.fspath(path_or_df) if not isinstance(path_or_df, pd.DataFrame) else "trajectories"
    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df
    else:
        try:
            names = set(pq.read_schema(path_or_df).names)
            wanted = [c for c in ("t_s", "agent_id", "x_m", "y_m", "storey") if c in names]
            df = pq.read_table(path_or_df, columns=wanted).to_pandas()
        except (OSError, KeyError, ValueError) as e:
            raise InputError(source, f"cannot read trajectories ({e})") from e
    missing = [c for c in ("t_s", "agent_id", "x_m", "y_m") if c not in df.columns]
    if missing:
        raise InputError(source, f"missing trajectory columns {missing}; expected {list(TRAJECTORY_COLUMNS)}")
    if storey is not None:
        if "storey" not in df.columns:
            raise InputError(source, "no 'storey' column to select from", element=f"storey={storey!r}")
        df = df[df["storey"].astype(str) == str(storey)]
        if df.empty:
            raise InputError(source, "no rows on this storey", element=f"storey={storey!r}")
    t = df["t_s"].to_numpy(np.float64)
    if frame_rate is None:
        steps = np.diff(np.unique(t))
        if steps.size == 0:
            raise InputError(source, "one recording time only; pass frame_rate", element="t_s")
        frame_rate = 1.0 / float(steps.min())
    fr = float(frame_rate)
    if not (math.isfinite(fr) and fr > 0):
        raise ValueError(f"frame_rate must be > 0 frames/s, got {frame_rate}")
    f = t * fr
    frame = np.rint(f)
    off = np.abs(f - frame)
    if off.size and off.max() > 1e-6:
        i = int(np.argmax(off))
        raise InputError(
            source, f"t_s = {t[i]} is not on the grid of frame_rate {fr} frames/s", element="t_s"
        )
    out = pd.DataFrame(
        {
            "id": df["agent_id"].to_numpy(np.int64),
            "frame": frame.astype(np.int64),
            "x": df["x_m"].to_numpy(np.float64),
            "y": df["y_m"].to_numpy(np.float64),
        }
    )
    if out.duplicated(["id", "frame"]).any():
        row = out[out.duplicated(["id", "frame"])].iloc[0]
        raise InputError(
            source,
            f"agent {row['id']} appears twice in frame {row['frame']}; pass storey= or a coarser frame_rate",
            element="agent_id",
        )
    return pedpy.TrajectoryData(data=out.sort_values(["frame", "id"]).reset_index(drop=True), frame_rate=fr)


# -- KPI time series -------------------------------------------------------------------------------------------------
class KpiRecorder:
    """KPI time series in long form (``kpis.parquet``: ``t_s`` float64 s, ``kpi`` str, ``value`` float64).

    :meth:`record` adds, per crowd frame: ``evacuated``, ``inside`` (not evacuated), ``waiting``, ``walking``,
    ``on_stair`` (counts), ``mean_speed_mps`` (mean speed of the moving agents, state walking or on_stair; NaN when
    none moves), ``max_density_ppm2`` (the maximum over agents inside of :func:`local_density` — agents within a
    disc of radius ``density_radius_m`` (default 1 m) on the same level, divided by π r²; Voronoi-free) and
    ``exit_count:<id>`` (cumulative passages per exit). :meth:`add` adds any other KPI (traffic, hazards).

    exit_ids : exit names in the order of the core's ``exit_index``.
    """

    def __init__(self, *, exit_ids: Sequence[str] = (), density_radius_m: float = 1.0) -> None:
        self.exit_ids = [str(e) for e in exit_ids]
        if not float(density_radius_m) > 0:
            raise ValueError(f"density_radius_m must be > 0, got {density_radius_m}")
        self.density_radius_m = float(density_radius_m)
        self._t: list[np.ndarray] = []
        self._k: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._crowd_names = np.array(
            ["evacuated", "inside", "waiting", "walking", "on_stair", "mean_speed_mps", "max_density_ppm2"]
            + [f"exit_count:{e}" for e in self.exit_ids],
            dtype=object,
        )
        self.max_density_ppm2: float | None = None
        """The largest ``max_density_ppm2`` recorded so far (persons/m²), None before the first frame."""

    def add(self, t_s: float, kpi: str, value: float) -> None:
        """Add one value of any KPI at time ``t_s`` (s)."""
        self._t.append(np.array([float(t_s)]))
        self._k.append(np.array([str(kpi)], dtype=object))
        self._v.append(np.array([float(value)]))

    def record(
        self,
        t_s: float,
        *,
        positions: FloatArray,
        velocities: FloatArray,
        levels: IntArray,
        state: np.ndarray,
        exit_index: IntArray,
    ) -> dict[str, float]:
        """Record the crowd KPIs at ``t_s`` from the core's arrays: positions, velocities (n, 2) float64 m, m/s;
        levels (n,) int; state (n,) int8 codes; exit_index (n,) int (-1 until evacuated). Returns the values."""
        pos = _rows(positions, "positions", None, 2)
        n = pos.shape[0]
        vel = _rows(velocities, "velocities", n, 2)
        lev = _vector(levels, "levels", n, np.int64)
        st = _vector(state, "state", n, np.int8)
        ex = _vector(exit_index, "exit_index", n, np.int64)
        counts = np.bincount(st[(st >= 0) & (st <= EVACUATED)], minlength=4)
        inside = st != EVACUATED
        moving = (st == 1) | (st == 2)
        mean_speed = float(np.hypot(vel[moving, 0], vel[moving, 1]).mean()) if moving.any() else math.nan
        if inside.any():
            dens = float(local_density(pos[inside], lev[inside], radius_m=self.density_radius_m).max())
        else:
            dens = 0.0
        self.max_density_ppm2 = dens if self.max_density_ppm2 is None else max(self.max_density_ppm2, dens)
        per_exit = np.bincount(ex[ex >= 0], minlength=len(self.exit_ids))[: len(self.exit_ids)]
        values = np.array(
            [counts[3], n - counts[3], counts[0], counts[1], counts[2], mean_speed, dens, *per_exit],
            dtype=np.float64,
        )
        self._t.append(np.full(values.size, float(t_s)))
        self._k.append(self._crowd_names)
        self._v.append(values)
        return dict(zip(self._crowd_names.tolist(), values.tolist(), strict=True))

    def to_frame(self) -> pd.DataFrame:
        """All values as a long table (t_s, kpi, value), in recording order."""
        if not self._t:
            return pd.DataFrame({"t_s": np.zeros(0), "kpi": np.zeros(0, dtype=object), "value": np.zeros(0)})
        return pd.DataFrame(
            {
                "t_s": np.concatenate(self._t),
                "kpi": np.concatenate(self._k).astype(object),
                "value": np.concatenate(self._v),
            }
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        write_table(self.to_frame(), p)
        return p


# -- events ----------------------------------------------------------------------------------------------------------
class EventLog:
    """Events of a run (scenario events and model events): ``t_s`` float64 s, ``type`` str, ``source`` str (who
    raised it: ``scenario``, ``crowd``, ``traffic``…), ``details`` str (a JSON object, keys sorted)."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, str, str, str]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, t_s: float, type: str, source: str, details: Mapping[str, Any] | None = None) -> None:  # noqa: A002
        text = json.dumps(json_safe(dict(details or {})), sort_keys=True, allow_nan=False)
        self._rows.append((float(t_s), str(type), str(source), text))

    def to_frame(self) -> pd.DataFrame:
        return events_table(self)


def events_table(events: EventLog | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Events (an :class:`EventLog` or dicts with ``t_s``, ``type``, ``source`` and optional ``details`` dict) as
    the ``events.parquet`` table, sorted by time (stable)."""
    if isinstance(events, EventLog):
        rows = list(events._rows)
    else:
        log_ = EventLog()
        for i, e in enumerate(events):
            missing = [k for k in ("t_s", "type", "source") if k not in e]
            if missing:
                raise ValueError(f"event {i} lacks {missing}: {dict(e)}")
            log_.add(e["t_s"], e["type"], e["source"], e.get("details"))
        rows = log_._rows
    t = np.array([r[0] for r in rows], dtype=np.float64)
    df = pd.DataFrame(
        {
            "t_s": t,
            "type": np.array([r[1] for r in rows], dtype=object),
            "source": np.array([r[2] for r in rows], dtype=object),
            "details": np.array([r[3] for r in rows], dtype=object),
        }
    )
    return df.iloc[np.argsort(t, kind="stable")].reset_index(drop=True)


def write_events(events: EventLog | Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write ``events.parquet`` atomically."""
    p = Path(path)
    write_table(events_table(events), p)
    return p


# -- density maps ----------------------------------------------------------------------------------------------------
class DensityMap:
    """Per-level 2-D histograms of agent presence over time, built incrementally from crowd frames.

    The grid has square cells of ``cell_m`` metres (default 1 m², the conventional density cell) with its lower-left
    corner at (xmin, ymin) of ``bounds`` and enough cells to cover (xmax, ymax); all levels share it. Each
    :meth:`add` counts the agents per cell of their level and accumulates

    - ``agent_seconds`` (L, ny, nx) float64: Σ count · dt_s (agent-seconds; divide by cell area for per m²);
    - ``max_density_ppm2`` (L, ny, nx) float64: max over frames of count / cell area (persons/m²);

    and ``mean_density_ppm2`` = agent_seconds / (duration_s · cell area) is the mean occupancy (persons/m²).
    Agents outside the grid are not binned; their agent-seconds are kept in ``outside_agent_s``.
    Optional ``walls`` (w, 4) float64 [x0, y0, x1, y1] with ``wall_levels`` (w,) int32 are the walkable outline
    drawn by the report.
    """

    def __init__(
        self,
        *,
        level_names: Sequence[str],
        bounds: Sequence[float],
        cell_m: float = 1.0,
        walls: FloatArray | None = None,
        wall_levels: IntArray | None = None,
    ) -> None:
        self.level_names = [str(s) for s in level_names]
        b = np.asarray(bounds, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
            raise ValueError(f"bounds must be finite [xmin, ymin, xmax, ymax] with max > min, got {bounds}")
        h = float(cell_m)
        if not h > 0:
            raise ValueError(f"cell_m must be > 0, got {cell_m}")
        self.cell_m = h
        self.origin = b[:2].copy()
        self.nx = max(1, math.ceil((b[2] - b[0]) / h - 1e-9))
        self.ny = max(1, math.ceil((b[3] - b[1]) / h - 1e-9))
        shape = (len(self.level_names), self.ny, self.nx)
        self.agent_seconds = np.zeros(shape)
        self.max_density_ppm2 = np.zeros(shape)
        self.duration_s = 0.0
        self.outside_agent_s = 0.0
        self.frames = 0
        self.walls = np.zeros((0, 4)) if walls is None else _rows(walls, "walls", None, 4).copy()
        self.wall_levels = (
            np.zeros(len(self.walls), np.int32)
            if wall_levels is None
            else _vector(wall_levels, "wall_levels", len(self.walls), np.int32).copy()
        )

    @property
    def x_edges(self) -> FloatArray:
        """(nx + 1,) float64 cell edges in x, metres."""
        return self.origin[0] + self.cell_m * np.arange(self.nx + 1)

    @property
    def y_edges(self) -> FloatArray:
        """(ny + 1,) float64 cell edges in y, metres."""
        return self.origin[1] + self.cell_m * np.arange(self.ny + 1)

    @property
    def mean_density_ppm2(self) -> FloatArray:
        """(L, ny, nx) float64 time-averaged occupancy, persons/m² (zeros before any frame)."""
        if self.duration_s <= 0:
            return np.zeros_like(self.agent_seconds)
        return self.agent_seconds / (self.duration_s * self.cell_m**2)

    def add(
        self, positions: FloatArray, levels: IntArray, *, dt_s: float, state: np.ndarray | None = None
    ) -> None:
        """Bin one frame that stands for ``dt_s`` seconds (the recording interval). positions (n, 2) float64 m,
        levels (n,) int; with ``state`` (n,) int8 evacuated agents are skipped."""
        pos = _rows(positions, "positions", None, 2)
        lev = _vector(levels, "levels", pos.shape[0], np.int64)
        dt = float(dt_s)
        if not (math.isfinite(dt) and dt >= 0):
            raise ValueError(f"dt_s must be >= 0 seconds, got {dt_s}")
        if state is not None:
            keep = _vector(state, "state", pos.shape[0], np.int8) != EVACUATED
            pos, lev = pos[keep], lev[keep]
        L = len(self.level_names)
        if lev.size and (lev.min() < 0 or lev.max() >= L):
            raise ValueError(f"levels must be in 0..{L - 1}, got {lev.min()}..{lev.max()}")
        ix = np.floor((pos[:, 0] - self.origin[0]) / self.cell_m)
        iy = np.floor((pos[:, 1] - self.origin[1]) / self.cell_m)
        inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        flat = (lev[inside] * self.ny + iy[inside].astype(np.int64)) * self.nx + ix[inside].astype(np.int64)
        counts = np.bincount(flat, minlength=L * self.ny * self.nx).reshape(L, self.ny, self.nx)
        self.agent_seconds += counts * dt
        np.maximum(self.max_density_ppm2, counts / self.cell_m**2, out=self.max_density_ppm2)
        self.outside_agent_s += float((~inside).sum()) * dt
        self.duration_s += dt
        self.frames += 1

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "level_names": np.array(self.level_names, dtype=np.str_),
            "x_edges": self.x_edges,
            "y_edges": self.y_edges,
            "cell_m": np.float64(self.cell_m),
            "agent_seconds": self.agent_seconds,
            "max_density_ppm2": self.max_density_ppm2,
            "mean_density_ppm2": self.mean_density_ppm2,
            "duration_s": np.float64(self.duration_s),
            "outside_agent_s": np.float64(self.outside_agent_s),
            "frames": np.int64(self.frames),
            "walls": self.walls,
            "wall_levels": self.wall_levels,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> DensityMap:
        """Rebuild from :meth:`to_arrays` output (or a loaded ``density_maps.npz``)."""
        xe, ye = np.asarray(arrays["x_edges"]), np.asarray(arrays["y_edges"])
        h = float(arrays["cell_m"])
        dm = cls(
            level_names=[str(s) for s in np.asarray(arrays["level_names"]).tolist()],
            bounds=[xe[0], ye[0], xe[-1], ye[-1]],
            cell_m=h,
            walls=arrays.get("walls"),
            wall_levels=arrays.get("wall_levels"),
        )
        dm.agent_seconds = np.array(arrays["agent_seconds"], dtype=np.float64)
        dm.max_density_ppm2 = np.array(arrays["max_density_ppm2"], dtype=np.float64)
        dm.duration_s = float(arrays["duration_s"])
        dm.outside_agent_s = float(arrays.get("outside_agent_s", 0.0))
        dm.frames = int(arrays.get("frames", 0))
        if dm.agent_seconds.shape != (len(dm.level_names), dm.ny, dm.nx):
            raise ValueError(f"agent_seconds has shape {dm.agent_seconds.shape}, edges say {(dm.ny, dm.nx)}")
        return dm

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``density_maps.npz`` atomically."""
        p = Path(path)
        write_arrays(self.to_arrays(), p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DensityMap:
        try:
            arrays = read_arrays(Path(path))
        except (OSError, ValueError) as e:
            raise InputError(path, f"cannot read density maps ({e})") from e
        missing = [
            k for k in ("level_names", "x_edges", "y_edges", "cell_m", "agent_seconds") if k not in arrays
        ]
        if missing:
            raise InputError(path, f"not a density map file: missing arrays {missing}")
        return cls.from_arrays(arrays)


# -- provenance ------------------------------------------------------------------------------------------------------
def git_revision(path: str | os.PathLike[str] | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository holding the twin source tree (``path`` defaults to the installed
    package folder), with ``-dirty`` appended when tracked files under the package differ from HEAD. None when twin
    is not inside a git work tree of its own (e.g. installed from a wheel) or git is missing."""
    pkg = Path(path) if path is not None else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(pkg), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        if len(out) != 2:
            return None
        top, rev = Path(out[0]).resolve(), out[1]
        # a venv inside some other repository must not report that repository's revision
        if path is None and pkg.parent.resolve() != top:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(pkg), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _input_files(obj: Any) -> list[Path]:
    found: list[Path] = []

    def walk(o: Any) -> None:
        if isinstance(o, Mapping):
            for v in o.values():
                walk(v)
        elif isinstance(o, list | tuple):
            for v in o:
                walk(v)
        elif isinstance(o, str | PurePath) and len(str(o)) < 4096 and "\n" not in str(o):
            p = Path(o)
            if p.is_absolute() and p.is_file():
                found.append(p)

    walk(obj)
    return sorted(set(found))


def provenance(
    scenario_resolved: Mapping[str, Any] | None = None,
    *,
    input_files: Iterable[str | os.PathLike[str]] | None = None,
) -> dict[str, Any]:
    """What produced a run: ``versions`` (twin, python, numpy, pandas, pyarrow, shapely, ifcopenshell, mesa, …;
    None for packages not installed), ``seed``, ``git_revision`` and ``inputs``: one ``{path, size_bytes, sha256}``
    per input file — ``input_files`` if given, else every absolute path of an existing file in the resolved
    scenario."""
    import twin

    dists = ["numpy", "pandas", "pyarrow", "scipy", "shapely", "pyproj", "ifcopenshell", "mesa", "matplotlib"]
    versions = {"twin": twin.__version__, "python": platform.python_version()}
    versions.update({d: _version(d) for d in dists})
    files = (
        sorted({Path(f).resolve() for f in input_files})
        if input_files is not None
        else _input_files(scenario_resolved or {})
    )
    inputs = [{"path": str(p), "size_bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files]
    return {
        "versions": versions,
        "seed": None if scenario_resolved is None else json_safe(scenario_resolved.get("seed")),
        "git_revision": git_revision(),
        "platform": platform.platform(),
        "inputs": inputs,
    }


# -- the results folder ----------------------------------------------------------------------------------------------
def _as_table(obj: Any, name: str) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    if hasattr(obj, "to_frame"):
        return obj.to_frame()
    raise TypeError(f"{name} must be a DataFrame or a recorder with to_frame(), got {type(obj).__name__}")


def write_results(
    out_dir: str | os.PathLike[str],
    *,
    scenario_resolved: Mapping[str, Any],
    summary: Mapping[str, Any],
    wall_time_s: float | None = None,
    simulated_s: float | None = None,
    trajectories: TrajectoryRecorder | pd.DataFrame | None = None,
    kpis: KpiRecorder | pd.DataFrame | None = None,
    events: EventLog | pd.DataFrame | Iterable[Mapping[str, Any]] | None = None,
    density: DensityMap | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    report: bool = True,
    input_files: Iterable[str | os.PathLike[str]] | None = None,
    traffic_report: Any = None,
) -> dict[str, Any]:
    """Write the results folder ``out_dir`` (created if needed), every file atomically (temp + rename).

    scenario_resolved : the resolved scenario (absolute paths, defaults filled) → ``scenario.yaml``; its ``name``
        and ``seed`` go into the summary.
    summary : the model sections (``{"crowd": crowd_summary(...), "traffic": ...}``) → ``summary.json``, preceded
        by metadata: scenario, seed, twin_version, git_revision, wall_time_s, simulated_s; plus ``provenance``
        (see :func:`provenance`). NaN becomes null.
    trajectories, kpis, events : recorders or DataFrames → ``crowd_trajectories.parquet``, ``kpis.parquet``,
        ``events.parquet`` (events always written, empty if None).
    density : → ``density_maps.npz``.
    tables : further tables by file stem, e.g. ``{"traffic_fcd": df}`` → ``traffic_fcd.parquet``.
    report : also write ``report.html`` + ``figures/`` (:func:`twin.scenario.report.write_report`).
    traffic_report : the traffic figures' data (:class:`twin.scenario.report_traffic.TrafficReport`) or None.

    Returns the summary as written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    import twin

    prov = provenance(scenario_resolved, input_files=input_files)
    meta = {
        "scenario": scenario_resolved.get("name"),
        "seed": scenario_resolved.get("seed"),
        "twin_version": twin.__version__,
        "git_revision": prov["git_revision"],
        "wall_time_s": _opt_float(wall_time_s),
        "simulated_s": _opt_float(simulated_s),
    }
    clash = sorted(set(meta) & set(summary))
    if clash:
        raise ValueError(f"summary must hold model sections only; metadata keys {clash} are filled in here")
    full = json_safe({**meta, **dict(summary), "provenance": prov})

    write_text(
        yaml.safe_dump(json_safe(dict(scenario_resolved)), sort_keys=False, allow_unicode=True),
        out / SCENARIO_FILE,
    )
    if trajectories is not None:
        write_table(_as_table(trajectories, "trajectories"), out / TRAJECTORIES_FILE)
    kpis_df = _as_table(kpis, "kpis") if kpis is not None else None
    if kpis_df is not None:
        write_table(kpis_df, out / KPIS_FILE)
    if isinstance(events, pd.DataFrame):
        events_df = events
    else:
        events_df = events_table(events if events is not None else [])
    write_table(events_df, out / EVENTS_FILE)
    if density is not None:
        density.save(out / DENSITY_FILE)
    for stem, df in (tables or {}).items():
        if not stem or Path(stem).name != stem or stem.startswith("."):
            raise ValueError(f"table names must be plain file stems, got {stem!r}")
        write_table(df, out / f"{stem}.parquet")
    # summary last: its presence marks a complete folder
    if report:
        from twin.scenario.report import write_report

        write_report(out, full, kpis_df, density, dict(scenario_resolved), prov, traffic=traffic_report)
    write_json(full, out / SUMMARY_FILE)
    log.info("wrote results to %s", out)
    return full
