"""The sweep file (``SCENARIO.md``, section Sweeps): schema, loading, and its expansion into runs.

A sweep names a base scenario, parameters addressed by scenario path (:mod:`twin.sweep.paths`) and seeds::

    base: ../bottleneck.yaml                 # relative to the sweep file
    seeds: [1, 2, 3]                         # or {range: [1, 10]}; default: the base scenario's seed
    overrides:                               # fixed changes applied to every run before the parameters
      outputs.report: false
    parameters:
      crowd.groups[0].count: [100, 200, 400]               # a list of values
      events[0].at_s: {range: [0, 120, 30]}                # start, stop, step: 0, 30, …, 120 (stop included)
      crowd.dt_s: {linspace: [0.02, 0.1, 5]}               # start, stop, number of values
      crowd.groups[0].premovement_s.max: {latin: [0, 120], n: 50}   # a sample (latin, sobol or morris)
    sampling: {seed: 0, levels: 4, second_order: false}    # options of the sample design
    executor: local                          # local | dask | dask://HOST:PORT | tcp://HOST:PORT | slurm
    workers: 2
    cluster: {}                              # keyword arguments of the Dask LocalCluster / SLURMCluster
    runner: package.module:function          # optional: run function (scenario, out_dir) -> summary

Lists, ranges and linspaces are grid axes: every combination runs. Sampled parameters form one joint design of
``n`` points over their bounds, all with the same method: ``latin`` (scipy.stats.qmc Latin hypercube, ``n``
points), ``sobol`` (SALib's Saltelli scheme on a scrambled Sobol' sequence, ``n`` a power of 2, ``n (d + 2)``
points, ``n (2d + 2)`` with ``second_order``; needed for Sobol indices) or ``morris`` (SALib's ``n`` trajectories
of ``d + 1`` points on a ``levels`` grid; needed for Morris screening). A sampled parameter whose scenario field takes whole
numbers only (a count) is rounded, unless it says ``integer: false``. Runs = grid combinations × sample points ×
seeds, expanded lazily in that order (seeds innermost).

Every run has a ``run_id``: the first 12 hex digits of the SHA-256 of its parameter values, seed and sample
point, so a resumed sweep finds the runs it already did.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from twin.errors import InputError
from twin.scenario.schema import FilePath, Scenario, _join, _Model, _show, read_yaml, validate_mapping
from twin.sweep.catalogue import column_kind
from twin.sweep.paths import PathError, format_path, parse_path, set_at, settable_problem

log = logging.getLogger(__name__)

__all__ = [
    "Axis",
    "Plan",
    "RunSpec",
    "Sampled",
    "Sweep",
    "SweepFile",
    "load_sweep",
    "run_id_of",
    "sweep_from_dict",
    "variant_data",
]

SAMPLE_METHODS = ("latin", "sobol", "morris")
GRID_KINDS = ("range", "linspace")
RESERVED_COLUMNS = frozenset(
    {
        "run_id",
        "run_index",
        "status",
        "error",
        "seed",
        "sample",
        "work_s",
        "wall_time_s",
        "worker",
        "finished_at",
    }
)
"""Catalogue columns of every run: a parameter path may not take one of these names."""
MAX_RUNS = 10_000_000
EXECUTOR_PATTERN = re.compile(r"^(local|dask|slurm|(dask|tcp|tls)://[^\s/]+:\d+)$")
_RUNNER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


# --- parameter values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """A grid axis: the values one parameter takes (``kind``: ``list``, ``range`` or ``linspace``)."""

    values: tuple[Any, ...]
    kind: str = "list"


@dataclass(frozen=True)
class Sampled:
    """A sampled parameter: ``method`` over ``[low, high]``; ``n`` and ``integer`` as given (``None``: not given)."""

    method: str
    low: float
    high: float
    n: int | None = None
    integer: bool | None = None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _tidy(x: float) -> float:
    """0.30000000000000004 → 0.3: 12 significant digits, as a user would write the value."""
    return float(f"{x:.12g}")


def _range_values(spec: Any, *, what: str = "range") -> list[Any]:
    """``[start, stop]`` or ``[start, stop, step]`` → start, start + step, … up to and including stop."""
    if not isinstance(spec, list) or len(spec) not in (2, 3) or not all(_number(x) for x in spec):
        raise PydanticCustomError(
            "sweep_range",
            "{what} must be [start, stop] or [start, stop, step] (numbers), got {v}",
            {"what": what, "v": _show(spec)},
        )
    start, stop = spec[0], spec[1]
    step = spec[2] if len(spec) == 3 else 1
    if step == 0 or (stop - start) * step < 0:
        raise PydanticCustomError(
            "sweep_range",
            "{what} step {step} does not lead from {a} to {b}",
            {"what": what, "step": _show(step), "a": _show(start), "b": _show(stop)},
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RUNS:
        raise PydanticCustomError(
            "sweep_range", "{what} has {c} values; at most {m}", {"what": what, "c": count, "m": MAX_RUNS}
        )
    if all(isinstance(x, int) for x in (start, stop, step)):
        return list(range(start, start + count * step, step))
    return [_tidy(start + i * step) for i in range(count)]


def _linspace_values(spec: Any) -> list[float]:
    ok = (
        isinstance(spec, list)
        and len(spec) == 3
        and _number(spec[0])
        and _number(spec[1])
        and isinstance(spec[2], int)
        and not isinstance(spec[2], bool)
        and 1 <= spec[2] <= MAX_RUNS
    )
    if not ok:
        raise PydanticCustomError(
            "sweep_linspace",
            "linspace must be [start, stop, number of values ≥ 1], got {v}",
            {"v": _show(spec)},
        )
    start, stop, num = spec
    return [_tidy(x) for x in np.linspace(float(start), float(stop), num)]


def _parameter(value: Any) -> Axis | Sampled:
    """One entry of ``parameters`` → :class:`Axis` or :class:`Sampled` (pydantic errors name what is wrong)."""
    if isinstance(value, list):
        if not value:
            raise PydanticCustomError("sweep_values", "needs at least one value, got an empty list")
        seen: dict[str, int] = {}
        for i, v in enumerate(value):
            if isinstance(v, float) and not math.isfinite(v):
                raise PydanticCustomError(
                    "sweep_values", "value [{i}] must be finite, got {v}", {"i": i, "v": v}
                )
            key = _canonical(v)
            if key in seen:
                raise PydanticCustomError(
                    "sweep_values",
                    "value [{i}] repeats value [{j}] ({v})",
                    {"i": i, "j": seen[key], "v": _show(v)},
                )
            seen[key] = i
        return Axis(tuple(value))
    if not isinstance(value, Mapping):
        raise PydanticCustomError(
            "sweep_param",
            "must be a list of values, {range: [start, stop, step]}, {linspace: [start, stop, num]} or a "
            "sample {latin|sobol|morris: [low, high], n: N}, got {v}",
            {"v": _show(value)},
        )
    kinds = [k for k in (*GRID_KINDS, *SAMPLE_METHODS) if k in value]
    if len(kinds) != 1:
        raise PydanticCustomError(
            "sweep_param",
            "needs exactly one of range, linspace, latin, sobol, morris; got keys {keys}",
            {"keys": ", ".join(map(str, value)) or "none"},
        )
    kind = kinds[0]
    allowed = {kind} | ({"n", "integer"} if kind in SAMPLE_METHODS else set())
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise PydanticCustomError(
            "sweep_param",
            "unknown key(s) {keys} beside {kind}; expected {allowed}",
            {"keys": ", ".join(map(repr, unknown)), "kind": kind, "allowed": ", ".join(sorted(allowed))},
        )
    if kind == "range":
        return Axis(tuple(_range_values(value["range"])), "range")
    if kind == "linspace":
        return Axis(tuple(_linspace_values(value["linspace"])), "linspace")
    bounds = value[kind]
    if not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(_number(b) for b in bounds)
        and bounds[0] < bounds[1]
    ):
        raise PydanticCustomError(
            "sweep_sample",
            "{kind} must be [low, high] with low < high, got {v}",
            {"kind": kind, "v": _show(bounds)},
        )
    n = value.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_RUNS):
        raise PydanticCustomError("sweep_sample", "n must be a whole number ≥ 1, got {v}", {"v": _show(n)})
    if kind == "sobol" and n is not None and n & (n - 1):
        raise PydanticCustomError(
            "sweep_sample",
            "n must be a power of 2 for sobol (the balance of Sobol' points needs it), got {v}; e.g. {p}",
            {"v": n, "p": 1 << max(n - 1, 1).bit_length()},
        )
    if kind == "morris" and n is not None and n < 2:
        raise PydanticCustomError(
            "sweep_sample", "n (trajectories) must be ≥ 2 for morris, got {v}", {"v": n}
        )
    integer = value.get("integer")
    if integer is not None and not isinstance(integer, bool):
        raise PydanticCustomError(
            "sweep_sample", "integer must be true or false, got {v}", {"v": _show(integer)}
        )
    return Sampled(kind, float(bounds[0]), float(bounds[1]), n, integer)


Parameter = Annotated[Any, AfterValidator(_parameter)]


def _seeds(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        if set(value) != {"range"}:
            raise PydanticCustomError(
                "sweep_seeds",
                "must be a list of seeds or {range: [first, last]}, got keys {k}",
                {"k": ", ".join(map(str, value))},
            )
        values = _range_values(value["range"], what="seeds range")
        if not all(isinstance(v, int) for v in values):
            raise PydanticCustomError(
                "sweep_seeds", "seeds range must be whole numbers, got {v}", {"v": _show(value["range"])}
            )
    elif isinstance(value, list):
        values = value
    else:
        raise PydanticCustomError(
            "sweep_seeds", "must be a list of seeds or {range: [first, last]}, got {v}", {"v": _show(value)}
        )
    if not values:
        raise PydanticCustomError("sweep_seeds", "needs at least one seed")
    for i, s in enumerate(values):
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**63:
            raise PydanticCustomError(
                "sweep_seeds",
                "seed [{i}] must be a whole number in [0, 2^63), got {v}",
                {"i": i, "v": _show(s)},
            )
    if len(set(values)) != len(values):
        from collections import Counter

        dupes = sorted(s for s, c in Counter(values).items() if c > 1)[:5]
        raise PydanticCustomError("sweep_seeds", "seeds must be distinct; repeated: {d}", {"d": _show(dupes)})
    return list(values)


# --- the file ------------------------------------------------------------------------------------------------------


class Sampling(_Model):
    """``sampling``: options of the sample design shared by the sampled parameters."""

    seed: int = Field(default=0, ge=0, lt=2**32)
    levels: int = Field(default=4, ge=2, le=1000)
    second_order: bool = False


class SweepFile(_Model):
    """The sweep file as validated data (see the module docstring); build with :func:`load_sweep`."""

    name: str | None = Field(default=None, min_length=1)
    base: FilePath
    seeds: Annotated[Any, AfterValidator(_seeds)] = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    sampling: Sampling = Field(default_factory=Sampling)
    executor: str = "local"
    workers: int | None = Field(default=None, ge=1, le=100_000)
    threads_per_run: int = Field(default=1, ge=1, le=1024)
    cluster: dict[str, Any] = Field(default_factory=dict)
    runner: str | None = None

    @field_validator("overrides", "parameters", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            for key in v:
                try:
                    steps = parse_path(key)
                except PathError as exc:
                    raise PydanticCustomError("sweep_path", "{msg}", {"msg": str(exc)}) from None
                if steps[0] == "seed":
                    raise PydanticCustomError(
                        "sweep_path",
                        "{k}: the seed is set by seeds: (each run's seed replaces the scenario's)",
                        {"k": key},
                    )
                if key in RESERVED_COLUMNS:
                    raise PydanticCustomError("sweep_path", "{k} is a catalogue column name", {"k": key})
        return v

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        if not EXECUTOR_PATTERN.match(v):
            raise PydanticCustomError(
                "sweep_executor",
                "must be local, dask, dask://HOST:PORT, tcp://HOST:PORT or slurm, got {v}",
                {"v": _show(v)},
            )
        return v

    @field_validator("runner")
    @classmethod
    def _runner(cls, v: str | None) -> str | None:
        if v is not None and not _RUNNER.match(v):
            raise PydanticCustomError(
                "sweep_runner", "must be package.module:function, got {v}", {"v": _show(v)}
            )
        return v

    @model_validator(mode="after")
    def _one_design(self) -> SweepFile:
        sampled = {p: s for p, s in self.parameters.items() if isinstance(s, Sampled)}
        methods = sorted({s.method for s in sampled.values()})
        if len(methods) > 1:
            raise PydanticCustomError(
                "sweep_design",
                "parameters: sampled parameters form one design and must use one method; got {m}",
                {"m": " and ".join(methods)},
            )
        ns = {p: s.n for p, s in sampled.items() if s.n is not None}
        if sampled and not ns:
            raise PydanticCustomError(
                "sweep_design",
                "parameters.{p}: n is required (the design's number of points)",
                {"p": next(iter(sampled))},
            )
        if len(set(ns.values())) > 1:
            raise PydanticCustomError(
                "sweep_design",
                "parameters: sampled parameters share one design; n differs: {d}",
                {"d": ", ".join(f"{p}: {n}" for p, n in ns.items())},
            )
        if self.cluster and self.executor not in ("dask", "slurm"):
            raise PydanticCustomError(
                "sweep_cluster",
                "cluster: options are for the dask and slurm executors, not {e}",
                {"e": self.executor},
            )
        paths = [parse_path(p) for p in self.parameters]
        for a, b in itertools.permutations(paths, 2):
            if len(a) < len(b) and b[: len(a)] == a:
                raise PydanticCustomError(
                    "sweep_design",
                    "parameters: {a} contains {b}; a value cannot be swept inside a swept value",
                    {"a": format_path(a), "b": format_path(b)},
                )
        return self


# --- runs ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its position, id, seed, sample point (``None`` without sampled parameters) and
    parameter values ``(path, value)`` in the order of the sweep file."""

    index: int
    run_id: str
    seed: int
    sample: int | None
    values: tuple[tuple[str, Any], ...]


def run_id_of(values: tuple[tuple[str, Any], ...], seed: int, sample: int | None) -> str:
    """Stable id of a run: SHA-256 of its parameter values, seed and sample point (12 hex digits)."""
    text = _canonical({"params": [[p, v] for p, v in sorted(values)], "seed": seed, "sample": sample})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def variant_data(base: Mapping[str, Any], values: Iterable[tuple[str, Any]], seed: int) -> dict[str, Any]:
    """A copy of the plain scenario data ``base`` with ``values`` (``(path, value)``) written in and ``seed`` as its
    seed."""
    data = copy.deepcopy(dict(base))
    for path, value in values:
        set_at(data, path, copy.deepcopy(value))
    data["seed"] = seed
    return data


@dataclass
class Plan:
    """The expanded sweep: grid axes, the sample design, seeds; iterate :meth:`runs` (lazily, O(1) memory)."""

    axes: list[tuple[str, Axis]]
    sampled: list[tuple[str, Sampled]]
    method: str | None
    design: np.ndarray  # (n_points, d) float64, the design in parameter units (before rounding)
    integer: list[bool]  # per sampled parameter: rounded to whole numbers
    seeds: list[int]
    kinds: dict[str, str] = field(default_factory=dict)  # parameter path → catalogue kind

    @property
    def n_points(self) -> int:
        return int(self.design.shape[0]) if self.sampled else 1

    @property
    def total(self) -> int:
        """Number of runs."""
        n = self.n_points * len(self.seeds)
        for _, axis in self.axes:
            n *= len(axis.values)
        return n

    @property
    def parameter_paths(self) -> list[str]:
        return [p for p, _ in self.axes] + [p for p, _ in self.sampled]

    def point_values(self, k: int) -> tuple[Any, ...]:
        """The sampled parameters' values at design point ``k`` (rounded where integer)."""
        row = self.design[k]
        return tuple(int(round(x)) if rnd else float(x) for x, rnd in zip(row, self.integer, strict=True))

    def runs(self) -> Iterator[RunSpec]:
        """Every run in order: grid combinations (file order, last axis fastest) × sample points × seeds."""
        index = 0
        sampled_paths = [p for p, _ in self.sampled]
        for combo in itertools.product(*(axis.values for _, axis in self.axes)):
            grid = tuple(zip((p for p, _ in self.axes), combo, strict=True))
            for k in range(self.n_points):
                sample = k if self.sampled else None
                values = grid + (
                    tuple(zip(sampled_paths, self.point_values(k), strict=True)) if self.sampled else ()
                )
                for seed in self.seeds:
                    yield RunSpec(index, run_id_of(values, seed, sample), seed, sample, values)
                    index += 1

    def problem(self) -> dict[str, Any]:
        """The SALib problem of the sampled parameters (names, bounds)."""
        return {
            "num_vars": len(self.sampled),
            "names": [p for p, _ in self.sampled],
            "bounds": [[s.low, s.high] for _, s in self.sampled],
        }


def _design(sampled: list[tuple[str, Sampled]], sampling: Sampling) -> tuple[str | None, np.ndarray]:
    if not sampled:
        return None, np.zeros((0, 0))
    method = sampled[0][1].method
    n = next(s.n for _, s in sampled if s.n is not None)
    d = len(sampled)
    problem = {
        "num_vars": d,
        "names": [p for p, _ in sampled],
        "bounds": [[s.low, s.high] for _, s in sampled],
    }
    if method == "latin":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=d, rng=sampling.seed).random(n)
        lo = np.array([s.low for _, s in sampled])
        hi = np.array([s.high for _, s in sampled])
        x = qmc.scale(unit, lo, hi)
    elif method == "sobol":
        from SALib.sample import sobol

        x = sobol.sample(problem, n, calc_second_order=sampling.second_order, seed=sampling.seed)
    else:
        from SALib.sample import morris

        x = morris.sample(problem, n, num_levels=sampling.levels, seed=sampling.seed)
    return method, np.ascontiguousarray(x, dtype=np.float64)


# --- loading -------------------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """A validated sweep file with its base scenario (plain data, overrides applied)."""

    spec: SweepFile
    source: str
    base_data: dict[str, Any]
    name: str

    @property
    def base_path(self) -> Path:
        return Path(self.spec.base)

    @cached_property
    def plan(self) -> Plan:
        spec = self.spec
        axes = [(p, v) for p, v in spec.parameters.items() if isinstance(v, Axis)]
        sampled = [(p, v) for p, v in spec.parameters.items() if isinstance(v, Sampled)]
        method, design = _design(sampled, spec.sampling)
        integer = []
        for p, s in sampled:
            if s.integer is not None:
                integer.append(s.integer)
            else:
                integer.append(_takes_whole_numbers(self.base_data, p, base_dir=self.base_path.parent))
        seeds = spec.seeds if spec.seeds is not None else [int(self.base_data.get("seed", 0))]
        kinds = {p: column_kind(list(a.values)) for p, a in axes}
        kinds.update({p: "int" if rnd else "float" for (p, _), rnd in zip(sampled, integer, strict=True)})
        plan = Plan(axes, sampled, method, design, integer, list(seeds), kinds)
        if plan.total > MAX_RUNS:
            raise InputError(self.source, f"the sweep has {plan.total:,} runs; at most {MAX_RUNS:,}")
        return plan

    def scenario_data(self, run: RunSpec) -> dict[str, Any]:
        """The plain scenario data of ``run``: the base (with overrides), the run's values and seed."""
        return variant_data(self.base_data, run.values, run.seed)

    def fingerprint(self) -> str:
        """SHA-256 of everything that decides the runs and their ids (base, overrides, parameters, seeds, design,
        runner); a resumed sweep must match it."""
        plan = self.plan
        spec = self.spec.model_dump(mode="json", include={"overrides", "sampling", "runner"})
        text = _canonical(
            {
                "base": self.base_data,
                "spec": spec,
                "axes": [[p, list(a.values)] for p, a in plan.axes],
                "sampled": [[p, s.method, s.low, s.high] for p, s in plan.sampled],
                "integer": plan.integer,
                "seeds": plan.seeds,
            }
        )
        h = hashlib.sha256(text.encode("utf-8"))
        h.update(np.ascontiguousarray(plan.design).tobytes())
        return h.hexdigest()


def _takes_whole_numbers(base: Mapping[str, Any], path: str, *, base_dir: Path) -> bool:
    """Whether the scenario field at ``path`` takes whole numbers only (a count): the scenario schema says so
    when given 1.5 there."""
    data = copy.deepcopy(dict(base))
    set_at(data, path, 1.5)
    try:
        Scenario.from_dict(data, base_dir=base_dir)
    except InputError as exc:
        return f"{path}: must be a whole number" in str(exc)
    return False


def sweep_from_dict(
    data: Any, *, source: str | os.PathLike[str] = "<dict>", base_dir: str | os.PathLike[str] | None = None
) -> Sweep:
    """Validate sweep data (as read from YAML); ``base`` resolves against ``base_dir`` (default: cwd).

    Problems raise one :class:`InputError` naming ``source`` and each field path (``parameters.crowd.groups[0].count:
    range step 0 does not lead from 1 to 5``). The base scenario with the overrides applied is validated as a
    scenario, and every parameter path must exist there (a missing last key of a mapping may be added).
    """
    src = os.fspath(source)
    base_dir = Path(os.path.abspath(base_dir)) if base_dir is not None else Path.cwd()
    spec = validate_mapping(
        SweepFile, data, source=src, base_dir=base_dir, what="a sweep", keys="base, parameters, seeds"
    )
    base_file = Path(spec.base)
    raw = read_yaml(base_file)
    if not isinstance(raw, Mapping):
        raise InputError(src, f"base: {base_file} is not a scenario (a mapping of keys), got {_show(raw)}")
    base = copy.deepcopy(dict(raw))
    problems = []
    for path, value in spec.overrides.items():
        problem = settable_problem(base, path)
        if problem:
            problems.append(f"overrides.{path}: {problem} (in {base_file.name})")
        else:
            set_at(base, path, copy.deepcopy(value))
    for path in spec.parameters:
        problem = settable_problem(base, path)
        if problem:
            problems.append(f"parameters.{path}: {problem} (in {base_file.name})")
    if problems:
        raise InputError(src, _join(problems))
    scenario_source = f"{base_file} (with the overrides of {src})" if spec.overrides else str(base_file)
    Scenario.from_dict(base, source=scenario_source, base_dir=base_file.parent)  # the base must be a scenario
    name = spec.name or Path(src).name.removesuffix(".yaml").removesuffix(".yml")
    sweep = Sweep(spec=spec, source=src, base_data=base, name=name)
    sweep.plan  # noqa: B018 - builds the design now, so that bad samples fail at load time
    return sweep


def load_sweep(path: str | os.PathLike[str]) -> Sweep:
    """Read and validate a sweep file (see :func:`sweep_from_dict`); raises :class:`InputError`."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    if not p.is_file():
        raise InputError(p, "sweep file not found" if not p.exists() else "is a folder, not a sweep file")
    data = read_yaml(p)
    if data is None:
        raise InputError(p, "the sweep file is empty; it needs at least base and parameters or seeds")
    return sweep_from_dict(data, source=p, base_dir=p.parent)
