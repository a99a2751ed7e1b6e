"""The scenario contract (``docs/SCENARIO.md``) as pydantic models, and loading it from YAML.

:func:`load_scenario` reads a YAML file, validates it, resolves every path relative to the scenario file (absolute
``Path`` objects, checked to exist) and fills defaults. Every problem becomes one :class:`twin.errors.InputError`
naming the scenario file and, per problem, the field path with list indices, what was expected and the value::

    office.yaml: crowd.groups[0].count: must be > 0, got -5

Validation has two passes: pydantic checks structure and types (unknown keys are errors everywhere), then
:func:`_check` checks meaning across sections (ids that must exist, exits that must touch their area, events within
the run, distribution bounds per field, areas that cannot hold their agents). What needs the loaded city (IFC storey
and door names, building exits) is checked by :func:`check_against_city` once :func:`build_city` has run.

Sections a scenario does not name are ``None`` (not simulated); ``outputs`` always exists with its defaults.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import shapely
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from twin.errors import InputError
from twin.sim import population

log = logging.getLogger(__name__)

__all__ = [
    "AreaSpec",
    "BuildingSpec",
    "CitySpec",
    "CrowdSpec",
    "Distribution",
    "EVENT_TYPES",
    "ExitSpec",
    "GroupSpec",
    "Outputs",
    "Scenario",
    "TrafficSpec",
    "build_city",
    "check_against_city",
    "load_scenario",
]

_MAX_ERRORS = 12  # problems listed in one InputError; the rest are counted


# --- plumbing ------------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    """Strict base: unknown keys are errors (named with the keys that are allowed), numbers must be finite."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=True, validate_default=False
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = {f.alias or name for name, f in cls.model_fields.items()}
            names = set(cls.model_fields)
            unknown = [k for k in data if k not in allowed and k not in names]
            if unknown:
                keys = ", ".join(repr(k) for k in unknown)
                raise PydanticCustomError(
                    "unknown_keys",
                    "unknown key{s} {keys}; expected {allowed}",
                    {
                        "s": "s" if len(unknown) > 1 else "",
                        "keys": keys,
                        "allowed": ", ".join(sorted(allowed)),
                    },
                )
        return data


def _base_dir(info: ValidationInfo) -> Path:
    ctx = info.context or {}
    return Path(ctx.get("base_dir") or os.getcwd())


def _resolve_file(value: Any, info: ValidationInfo) -> Any:
    """A path relative to the scenario file → absolute ``Path`` that must be an existing file."""
    if isinstance(value, str | os.PathLike) and not isinstance(value, bool):
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("file_empty", "must be a file path, got an empty string")
        p = Path(os.path.expanduser(os.fspath(value)))
        # abspath, not resolve: ".." is normalised but symlinks keep the names the user gave
        p = Path(os.path.abspath(p if p.is_absolute() else _base_dir(info) / p))
        if not p.exists():
            raise PydanticCustomError("file_not_found", "file not found: {path}", {"path": str(p)})
        if not p.is_file():
            raise PydanticCustomError("file_is_dir", "is a folder, not a file: {path}", {"path": str(p)})
        return p
    raise PydanticCustomError("path_type", "must be a file path (text)")


FilePath = Annotated[Path, BeforeValidator(_resolve_file)]
"""A file named relative to the scenario file; validated into an absolute, existing ``Path``."""


def _polygon_from_wkt(value: str) -> BaseGeometry:
    try:
        geom = shapely.from_wkt(value)
    except shapely.errors.ShapelyError as exc:
        raise PydanticCustomError(
            "wkt", "is not valid WKT ({err}): {text}", {"err": str(exc).strip(), "text": _clip(value)}
        ) from None
    if not isinstance(geom, Polygon | MultiPolygon):
        raise PydanticCustomError(
            "wkt_type", "must be a POLYGON or MULTIPOLYGON, got {kind}", {"kind": geom.geom_type.upper()}
        )
    if geom.is_empty:
        raise PydanticCustomError("wkt_empty", "is an empty polygon: {text}", {"text": _clip(value)})
    if not geom.is_valid:
        from shapely.validation import explain_validity

        raise PydanticCustomError(
            "wkt_invalid", "is not a valid polygon ({why})", {"why": explain_validity(geom)}
        )
    if not geom.area > 0:
        raise PydanticCustomError("wkt_area", "has no area: {text}", {"text": _clip(value)})
    return geom


def _check_wkt(value: str) -> str:
    _polygon_from_wkt(value)
    return value


def _clip(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _num(v: float) -> str:
    """1200.0 → '1200', 0.05 → '0.05'."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _show(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, int | float):
        return _num(v)
    if isinstance(v, list | tuple) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
        return "[" + ", ".join(_num(x) for x in v) + "]"
    return _clip(v)


def _kind_of_spec(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return "<number>"
    if isinstance(v, Mapping | Distribution):
        return "<distribution>"
    if isinstance(v, str):
        return "<profile>"
    return None


def _event_tag(v: Any) -> str | None:
    t = v.get("type") if isinstance(v, Mapping) else getattr(v, "type", None)
    return f"<{t}>" if isinstance(t, str) else None


# --- distributions ---------------------------------------------------------------------------------------------


class Distribution(_Model):
    """A per-agent quantity drawn from a distribution (see :mod:`twin.sim.population` for the exact meaning).

    ``normal`` and ``lognormal``: ``mean``, ``sd``, optional ``min``/``max`` (truncation by resampling);
    ``uniform``: ``min``, ``max``; ``constant``: ``value`` (or ``mean``).
    """

    dist: Literal["normal", "uniform", "constant", "lognormal"]
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)
    min: float | None = None
    max: float | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _keys_for_dist(self) -> Distribution:
        given = {k for k in ("mean", "sd", "min", "max", "value") if getattr(self, k) is not None}
        required, optional = {
            "normal": ({"mean", "sd"}, {"min", "max"}),
            "lognormal": ({"mean", "sd"}, {"min", "max"}),
            "uniform": ({"min", "max"}, set()),
            "constant": (set(), {"value", "mean"}),
        }[self.dist]
        missing = sorted(required - given)
        if missing:
            raise PydanticCustomError(
                "dist_missing", "dist {dist} needs {keys}", {"dist": self.dist, "keys": ", ".join(missing)}
            )
        unused = sorted(given - required - optional)
        if unused:
            raise PydanticCustomError(
                "dist_unused",
                "{keys} not used by dist {dist} (it takes {takes})",
                {
                    "keys": ", ".join(unused),
                    "dist": self.dist,
                    "takes": ", ".join(sorted(required | optional)),
                },
            )
        if self.dist == "constant" and len(given & {"value", "mean"}) != 1:
            raise PydanticCustomError("dist_constant", "dist constant needs exactly one of value or mean")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "min_max", "min {lo} is greater than max {hi}", {"lo": _num(self.min), "hi": _num(self.max)}
            )
        if self.dist == "lognormal" and self.mean is not None and self.mean <= 0:
            raise PydanticCustomError(
                "lognormal_mean", "a lognormal mean must be > 0, got {v}", {"v": _num(self.mean)}
            )
        return self


_DIST_HELP = "must be a number or a distribution such as {dist: uniform, min: 0, max: 60}"
_SPEED_HELP = (
    "must be a number, a distribution such as {dist: normal, mean: 1.34, sd: 0.26, min: 0.46, max: 1.61} "
    "or a profile name (" + ", ".join(sorted(population.PROFILES)) + ")"
)

DistSpec = Annotated[
    Annotated[float, Tag("<number>")] | Annotated[Distribution, Tag("<distribution>")],
    Discriminator(_kind_of_spec, custom_error_type="dist_kind", custom_error_message=_DIST_HELP),
]
"""A number or a :class:`Distribution`."""

SpeedSpec = Annotated[
    Annotated[float, Tag("<number>")]
    | Annotated[Distribution, Tag("<distribution>")]
    | Annotated[str, Tag("<profile>")],
    Discriminator(_kind_of_spec, custom_error_type="speed_kind", custom_error_message=_SPEED_HELP),
]
"""A number, a :class:`Distribution` or a profile name (:data:`twin.sim.population.PROFILES`)."""

Position = Annotated[list[float], Field(min_length=2, max_length=3)]


# --- city ------------------------------------------------------------------------------------------------------


class Place(_Model):
    """Placement of a source without georeference (see :class:`twin.city.frame.Placement`)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    rotation_deg: float = 0.0
    scale: float = Field(default=1.0, gt=0)


def _check_crs(value: str | int | None, *, projected: bool) -> str | int | None:
    if value is None:
        return value
    from twin.city.frame import parse_crs

    try:
        crs = parse_crs(value)
    except InputError as exc:
        raise PydanticCustomError("crs", "{msg}", {"msg": exc.message}) from None
    if projected and not crs.is_projected:
        raise PydanticCustomError(
            "crs_projected", "must be a projected CRS (metres), got {v}", {"v": _show(value)}
        )
    return value


class _Source(_Model):
    @field_validator("crs", mode="after", check_fields=False)
    @classmethod
    def _crs(cls, v: str | int | None) -> str | int | None:
        return _check_crs(v, projected=False)


class BuildingSpec(_Model):
    """``city.buildings[i]``: an IFC model, placed with ``place`` when it carries no georeference."""

    id: str = Field(min_length=1)
    ifc: FilePath
    place: Place | None = None


class TerrainSpec(_Source):
    """``city.terrain``: a DEM (GeoTIFF); ``crs`` for a file without one, ``place`` for a file without any CRS."""

    dem: FilePath
    id: str | None = Field(default=None, min_length=1)
    crs: str | int | None = None
    place: Place | None = None


class PipeSpec(_Source):
    """``city.pipes[i]``: an EPANET (water/gas) or SWMM (sewer) network; exactly one of ``epanet``/``swmm``."""

    id: str = Field(min_length=1)
    epanet: FilePath | None = None
    swmm: FilePath | None = None
    crs: str | int | None = None
    place: Place | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PipeSpec:
        if (self.epanet is None) == (self.swmm is None):
            raise PydanticCustomError("one_of", "needs exactly one of epanet or swmm")
        return self

    @property
    def path(self) -> Path:
        return self.epanet if self.epanet is not None else self.swmm  # type: ignore[return-value]

    @property
    def format(self) -> str:
        return "epanet" if self.epanet is not None else "swmm"


class RoadsSpec(_Model):
    """``city.roads``: exactly one of an OSM file (``osm``) or a SUMO network (``sumo_net``)."""

    osm: FilePath | None = None
    sumo_net: FilePath | None = None
    id: str | None = Field(default=None, min_length=1)
    place: Place | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RoadsSpec:
        if (self.osm is None) == (self.sumo_net is None):
            raise PydanticCustomError("one_of", "needs exactly one of osm or sumo_net")
        if self.osm is not None and self.place is not None:
            raise PydanticCustomError("place_osm", "place is not used with osm (OSM data is georeferenced)")
        return self


class CityModelSpec(_Model):
    """``city.citymodel``: exactly one of a CityJSON file or an OSM file (its building footprints)."""

    cityjson: FilePath | None = None
    osm: FilePath | None = None
    id: str | None = Field(default=None, min_length=1)
    place: Place | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CityModelSpec:
        if (self.cityjson is None) == (self.osm is None):
            raise PydanticCustomError("one_of", "needs exactly one of cityjson or osm")
        if self.osm is not None and self.place is not None:
            raise PydanticCustomError("place_osm", "place is not used with osm (OSM data is georeferenced)")
        return self


class ExitSpec(_Model):
    """``city.areas[i].exits[j]``: a polygon next to (or overlapping) the area; agents entering it have left."""

    id: str = Field(min_length=1)
    polygon: str

    @field_validator("polygon", mode="after")
    @classmethod
    def _wkt(cls, v: str) -> str:
        return _check_wkt(v)

    @cached_property
    def geometry(self) -> BaseGeometry:
        """The exit region as a shapely (Multi)Polygon, metres, local frame."""
        return shapely.from_wkt(self.polygon)


class AreaSpec(_Model):
    """``city.areas[i]``: plain 2-D walkable geometry at height ``z`` (holes are obstacles), with exits."""

    id: str = Field(min_length=1)
    walkable: str
    z: float = 0.0
    exits: list[ExitSpec] = Field(default_factory=list)

    @field_validator("walkable", mode="after")
    @classmethod
    def _wkt(cls, v: str) -> str:
        return _check_wkt(v)

    @cached_property
    def geometry(self) -> BaseGeometry:
        """The walkable area as a shapely (Multi)Polygon, metres, local frame."""
        return shapely.from_wkt(self.walkable)


class StairSpec(_Model):
    """``city.stairs[i]``: a stair between two ``city.areas`` at different heights.

    ``foot`` (x, y) lies in ``from_area`` (the lower), ``head`` (x, y) in ``to_area`` (the upper), metres in the
    local frame; ``length_m`` is the walking length along the slope and ``width_m`` the clear width (it sets the
    stair's capacity).
    """

    id: str = Field(min_length=1)
    from_area: str = Field(min_length=1)
    to_area: str = Field(min_length=1)
    foot: list[float] = Field(min_length=2, max_length=2)
    head: list[float] = Field(min_length=2, max_length=2)
    length_m: float = Field(gt=0, le=1000)
    width_m: float = Field(gt=0, le=100)


class CitySpec(_Model):
    """``city``: the sources loaded into one :class:`twin.city.City` (see :func:`build_city`), plain areas and
    the stairs between them."""

    crs: str | int | None = None
    origin: Position | None = None
    buildings: list[BuildingSpec] = Field(default_factory=list)
    terrain: TerrainSpec | None = None
    pipes: list[PipeSpec] = Field(default_factory=list)
    roads: RoadsSpec | None = None
    citymodel: CityModelSpec | None = None
    areas: list[AreaSpec] = Field(default_factory=list)
    stairs: list[StairSpec] = Field(default_factory=list)

    @field_validator("crs", mode="after")
    @classmethod
    def _crs(cls, v: str | int | None) -> str | int | None:
        return _check_crs(v, projected=True)


# --- crowd -----------------------------------------------------------------------------------------------------


class InSpec(_Model):
    """``crowd.groups[i].in``: exactly one of ``area``, ``building`` (optionally ``storeys``) or ``polygon``."""

    area: str | None = Field(default=None, min_length=1)
    building: str | None = Field(default=None, min_length=1)
    storeys: list[str] | None = Field(default=None, min_length=1)
    polygon: str | None = None
    level: int | None = Field(default=None, ge=0)

    @field_validator("polygon", mode="after")
    @classmethod
    def _wkt(cls, v: str | None) -> str | None:
        return None if v is None else _check_wkt(v)

    @model_validator(mode="after")
    def _exactly_one(self) -> InSpec:
        chosen = [k for k in ("area", "building", "polygon") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise PydanticCustomError(
                "in_one_of",
                "needs exactly one of area, building or polygon, got {got}",
                {"got": ", ".join(chosen) or "none"},
            )
        if self.storeys is not None and self.building is None:
            raise PydanticCustomError("in_storeys", "storeys only go with building")
        if self.level is not None and self.polygon is None:
            raise PydanticCustomError(
                "in_level", "level only goes with polygon (the storey index, 0 = lowest)"
            )
        return self


class GroupSpec(_Model):
    """``crowd.groups[i]``: ``count`` agents drawn with these distributions and placed ``in`` a region."""

    id: str = Field(min_length=1)
    count: int = Field(gt=0)
    in_: InSpec = Field(alias="in")
    speed_mps: SpeedSpec = Field(default_factory=lambda: Distribution(**population.DEFAULT_SPEED))
    premovement_s: DistSpec = 0.0
    radius_m: DistSpec = population.DEFAULT_RADIUS_M
    stair_up_mps: DistSpec | None = None
    stair_down_mps: DistSpec | None = None
    exits: list[str] | None = Field(default=None, min_length=1)


class RoutingSpec(_Model):
    """``crowd.routing``: how routes and exits are chosen.

    ``stair_cost_factor`` multiplies what a stair costs a route (its walking time, as flat-walking metres):
    1 weighs stairs by time alone; above 1 people avoid stairs (they take a longer flat way when it costs less
    than ``factor`` × the stair), below 1 they prefer them. ``exit_choice_every_s`` is how often people
    re-evaluate their exit by expected time (distance and queue). ``congestion_every_s`` is how often the
    routes are re-computed as quickest paths through the current crowd (walking through dense parts costs
    time by Weidmann's speed-density relation); 0 keeps the static shortest paths; unset: every 2 s up to
    10,000 m² of floor with 5 exits, proportionally less often in larger buildings (each re-computation is a
    field per exit over the whole floor area: a 4-storey 160 m × 160 m building with 4 exits re-routes every 16 s).
    """

    stair_cost_factor: float = Field(default=1.0, gt=0, le=100)
    exit_choice_every_s: float = Field(default=2.0, gt=0)
    congestion_every_s: float | None = Field(default=None, ge=0)


class CrowdSpec(_Model):
    """``crowd``: the pedestrian model, its step, raster cell size, free model parameters, routing and the
    groups."""

    model: Literal["social_force", "collision_free_speed"] = "social_force"
    dt_s: float | None = Field(default=None, gt=0, le=1.0)
    cell_size_m: float = Field(default=0.2, gt=0, le=2.0)
    params: dict[str, float] = Field(default_factory=dict)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    groups: list[GroupSpec] = Field(min_length=1)


# --- traffic ---------------------------------------------------------------------------------------------------


class RandomTrips(_Model):
    """``traffic.demand.random_trips``: ``count`` trips between random edges departing uniformly in ``depart_s``."""

    count: int = Field(gt=0)
    depart_s: Annotated[list[float], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [0.0, 3600.0]
    )
    min_distance_m: float | None = Field(default=None, ge=0)

    @field_validator("depart_s", mode="after")
    @classmethod
    def _window(cls, v: list[float]) -> list[float]:
        if v[0] < 0 or v[0] > v[1]:
            raise PydanticCustomError(
                "depart", "must be [start, end] with 0 <= start <= end, got {v}", {"v": _show(v)}
            )
        return v


class Demand(_Model):
    """``traffic.demand``: exactly one of a SUMO route file, a SUMO trip file, an OD table (CSV or Parquet with
    origin, destination, count, begin_s, end_s; zones are junction ids) or random trips."""

    routes: FilePath | None = None
    trips: FilePath | None = None
    od: FilePath | None = None
    random_trips: RandomTrips | None = None

    @model_validator(mode="after")
    def _one(self) -> Demand:
        chosen = [k for k in ("routes", "trips", "od", "random_trips") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise PydanticCustomError(
                "demand_one_of",
                "needs exactly one of routes, trips, od or random_trips, got {got}",
                {"got": ", ".join(chosen) or "none"},
            )
        return self


class TrafficSpec(_Model):
    """``traffic``: step, demand, how signals are controlled and how often vehicles reroute around congestion
    (``reroute_every_s``, 0 = only around closed roads)."""

    dt_s: float | None = Field(default=None, gt=0, le=10.0)
    demand: Demand
    signals: Literal["from_network", "fixed", "actuated"] = "from_network"
    reroute_every_s: float = Field(default=0.0, ge=0)


# --- events ----------------------------------------------------------------------------------------------------


class _Event(_Model):
    at_s: float = Field(ge=0)
    id: str | None = Field(default=None, min_length=1)


class FireEvent(_Event):
    """A fire starts in a building (``space`` or ``storey`` by name or GUID, or at ``position``)."""

    type: Literal["fire"]
    building: str | None = None
    space: str | None = None
    storey: str | None = None
    position: Position | None = None
    growth: Literal["slow", "medium", "fast", "ultra_fast"] = "medium"
    alpha_kw_s2: float | None = Field(default=None, gt=0)
    max_hrr_kw: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _where(self) -> FireEvent:
        if self.building is None and self.position is None:
            raise PydanticCustomError(
                "fire_where", "a fire needs building (with space or storey) or position"
            )
        if (self.space is not None or self.storey is not None) and self.building is None:
            raise PydanticCustomError("fire_building", "space and storey need building")
        return self


class PipeBurstEvent(_Event):
    """A pipe (``link``) or junction (``node``) of ``network`` bursts with an orifice of ``area_m2``; with
    ``isolate_after_s`` the crew closes the isolating valves that long after the burst (the pipe closes, the leak
    stops, customers behind the valves lose supply)."""

    type: Literal["pipe_burst"]
    network: str
    link: str | None = None
    node: str | None = None
    area_m2: float = Field(gt=0)
    discharge_coeff: float = Field(default=0.75, gt=0, le=1)
    duration_s: float | None = Field(default=None, gt=0)
    isolate_after_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> PipeBurstEvent:
        if (self.link is None) == (self.node is None):
            raise PydanticCustomError("one_of", "needs exactly one of link or node")
        return self


class GasLeakEvent(_Event):
    """Gas escapes from a gas network element or at a position, at ``rate_kg_s`` (default 1 kg/s), dispersing as a
    Gaussian plume in the given wind (speed at 10 m, direction it blows from, Pasquill stability class); the hazard
    zone is where the ground-level concentration exceeds ``threshold_ppm`` (default 5000 ppm: 10 % of methane's
    lower explosive limit) for a gas of ``molar_mass_g_mol`` (default methane)."""

    type: Literal["gas_leak"]
    network: str | None = None
    link: str | None = None
    node: str | None = None
    position: Position | None = None
    rate_kg_s: float = Field(default=1.0, gt=0)
    duration_s: float | None = Field(default=None, gt=0)
    height_m: float = Field(default=0.0, ge=0)
    wind_speed_mps: float = Field(default=3.0, ge=1.0)
    wind_from_deg: float = Field(default=270.0, ge=0, lt=360)
    stability: Literal["A", "B", "C", "D", "E", "F"] = "D"
    terrain: Literal["rural", "urban"] = "urban"
    threshold_ppm: float = Field(default=5000.0, gt=0)
    molar_mass_g_mol: float = Field(default=16.04, gt=0)

    @model_validator(mode="after")
    def _where(self) -> GasLeakEvent:
        on_net = self.network is not None and (self.link is not None or self.node is not None)
        if not on_net and self.position is None:
            raise PydanticCustomError("gas_where", "a gas leak needs network with link or node, or position")
        return self


class _RoadEvent(_Event):
    edge: str | None = None
    edges: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> _RoadEvent:
        if (self.edge is None) == (self.edges is None):
            raise PydanticCustomError("one_of", "needs exactly one of edge or edges")
        return self

    @property
    def edge_ids(self) -> list[str]:
        return [self.edge] if self.edge is not None else list(self.edges or [])


class CloseRoadEvent(_RoadEvent):
    """Road edges (SUMO/OSM edge ids) close to traffic."""

    type: Literal["close_road"]


class OpenRoadEvent(_RoadEvent):
    """Road edges open again."""

    type: Literal["open_road"]


class CloseDoorEvent(_Event):
    """A building door (``building`` + ``door`` name or GUID) or an area exit (``exit`` id) closes."""

    type: Literal["close_door"]
    building: str | None = None
    door: str | None = None
    exit: str | None = None

    @model_validator(mode="after")
    def _which(self) -> CloseDoorEvent:
        by_door = self.building is not None and self.door is not None
        if by_door == (self.exit is not None) or (self.door is not None) != (self.building is not None):
            raise PydanticCustomError("door_which", "needs building and door, or exit (an area exit id)")
        return self


class AlarmEvent(_Event):
    """The alarm sounds (everywhere, or in the named buildings/areas): pre-movement times start."""

    type: Literal["alarm"]
    buildings: list[str] | None = Field(default=None, min_length=1)
    areas: list[str] | None = Field(default=None, min_length=1)
    message: str | None = None


class DispatchEvent(_Event):
    """Emergency units are sent (from ``station``, or the nearest) to a building, a position or an incident."""

    type: Literal["dispatch"]
    units: int = Field(default=1, gt=0)
    unit_type: str = "engine"
    station: str | None = None
    building: str | None = None
    position: Position | None = None
    incident: str | None = None


EVENT_TYPES: dict[str, type[_Event]] = {
    "fire": FireEvent,
    "pipe_burst": PipeBurstEvent,
    "gas_leak": GasLeakEvent,
    "close_road": CloseRoadEvent,
    "open_road": OpenRoadEvent,
    "close_door": CloseDoorEvent,
    "alarm": AlarmEvent,
    "dispatch": DispatchEvent,
}
"""Event type name → model."""

Event = Annotated[
    Annotated[FireEvent, Tag("<fire>")]
    | Annotated[PipeBurstEvent, Tag("<pipe_burst>")]
    | Annotated[GasLeakEvent, Tag("<gas_leak>")]
    | Annotated[CloseRoadEvent, Tag("<close_road>")]
    | Annotated[OpenRoadEvent, Tag("<open_road>")]
    | Annotated[CloseDoorEvent, Tag("<close_door>")]
    | Annotated[AlarmEvent, Tag("<alarm>")]
    | Annotated[DispatchEvent, Tag("<dispatch>")],
    Discriminator(_event_tag, custom_error_type="event_type", custom_error_message="bad event"),
]


# --- response -----------------------------------------------------------------------------------------------------

UNIT_TYPE_NAMES = ("engine", "ladder", "ambulance", "police")
"""Unit types a station may hold (vehicle parameters in :data:`twin.sim.response.UNIT_TYPES`)."""
DEFAULT_UNITS_PER_INCIDENT = {"fire": {"engine": 2}, "pipe_burst": {"engine": 1}, "gas_leak": {"engine": 1}}


def _check_unit_counts(v: dict[str, int]) -> dict[str, int]:
    for k, n in v.items():
        if k not in UNIT_TYPE_NAMES:
            raise PydanticCustomError(
                "unit_type",
                "unknown unit type '{k}'; expected one of {types}",
                {"k": k, "types": ", ".join(UNIT_TYPE_NAMES)},
            )
        if n < 0:
            raise PydanticCustomError("unit_count", "{k}: must be >= 0, got {n}", {"k": k, "n": n})
    return v


class StationSpec(_Model):
    """An emergency station at ``position`` (x, y metres, local frame) with units by type."""

    id: str = Field(min_length=1)
    position: Position
    units: dict[str, int] = Field(min_length=1)
    turnout_s: float = Field(default=0.0, ge=0)

    _units = field_validator("units", mode="after")(_check_unit_counts)


class ResponseSpec(_Model):
    """``response``: stations and the dispatch rule (``auto``: every ``fire``, ``pipe_burst`` and ``gas_leak`` gets
    the nearest available units of ``units_per_incident``; ``manual``: only ``dispatch`` events send units)."""

    stations: list[StationSpec] = Field(min_length=1)
    dispatch: Literal["auto", "manual"] = "auto"
    units_per_incident: dict[Literal["fire", "pipe_burst", "gas_leak"], dict[str, int]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_UNITS_PER_INCIDENT.items()}
    )
    target_response_s: float = Field(default=240.0, gt=0)

    @field_validator("units_per_incident", mode="after")
    @classmethod
    def _per_incident(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for counts in v.values():
            _check_unit_counts(counts)
        return v


# --- outputs and the scenario ----------------------------------------------------------------------------------


class Outputs(_Model):
    """``outputs``: how often trajectories are recorded, and whether a report and a movie are written."""

    trajectories_every_s: float = Field(default=0.5, gt=0)
    report: bool = True
    movie: bool = False


def validate_mapping(
    model: type[_Model], data: Any, *, source: str, base_dir: Path, what: str, keys: str
) -> Any:
    """``model`` validated from plain data read from ``source`` (relative paths against ``base_dir``); a non-mapping
    or invalid fields raise one :class:`InputError` naming ``source`` and every field path. ``what`` and ``keys``
    word the error for data that is not a mapping ("a scenario", "name, duration_s")."""
    if not isinstance(data, Mapping):
        raise InputError(source, f"{what} must be a mapping of keys ({keys}, …), got {_show(data)}")
    try:
        return model.model_validate(dict(data), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise InputError(source, _join([_format_error(e) for e in exc.errors()])) from None


class Scenario(_Model):
    """One scenario (``docs/SCENARIO.md``). Build with :func:`load_scenario` or :meth:`from_dict`."""

    name: str = Field(default="scenario", min_length=1)
    seed: int = Field(default=0, ge=0, lt=2**63)
    duration_s: float = Field(gt=0)
    city: CitySpec | None = None
    crowd: CrowdSpec | None = None
    traffic: TrafficSpec | None = None
    response: ResponseSpec | None = None
    events: list[Event] = Field(default_factory=list)
    outputs: Outputs = Field(default_factory=Outputs)

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def source(self) -> str:
        """The scenario file (or ``"<dict>"``) that errors name."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The folder relative paths were resolved against."""
        return self._base_dir

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str | os.PathLike[str] = "<dict>",
        base_dir: str | os.PathLike[str] | None = None,
    ) -> Scenario:
        """Validate plain data (as read from YAML); relative paths resolve against ``base_dir`` (default: cwd)."""
        src = os.fspath(source)
        base = Path(os.path.abspath(base_dir)) if base_dir is not None else Path.cwd()
        scenario = validate_mapping(
            cls, data, source=src, base_dir=base, what="a scenario", keys="name, duration_s"
        )
        scenario._source = src
        scenario._base_dir = base
        problems = _check(scenario)
        if problems:
            raise InputError(src, _join(problems))
        return scenario

    def model_dump_resolved(self) -> dict[str, Any]:
        """The resolved scenario as plain data (absolute paths as text, defaults filled, unset options left out).

        Loading it again with :meth:`from_dict` gives an equal scenario.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def area(self, area_id: str) -> AreaSpec:
        """The ``city.areas`` entry with ``area_id`` (KeyError if there is none)."""
        for a in self.city.areas if self.city else []:
            if a.id == area_id:
                return a
        raise KeyError(area_id)


# --- errors ----------------------------------------------------------------------------------------------------


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("<") and part.endswith(">"):
            continue  # union tags
        else:
            out += ("." if out else "") + str(part)
    return out


_MESSAGES: dict[str, Callable[[dict[str, Any], Any], str]] = {
    "missing": lambda c, v: "is required",
    "extra_forbidden": lambda c, v: "unknown key",
    "greater_than": lambda c, v: f"must be > {_show(c['gt'])}, got {_show(v)}",
    "greater_than_equal": lambda c, v: f"must be >= {_show(c['ge'])}, got {_show(v)}",
    "less_than": lambda c, v: f"must be < {_show(c['lt'])}, got {_show(v)}",
    "less_than_equal": lambda c, v: f"must be <= {_show(c['le'])}, got {_show(v)}",
    "int_type": lambda c, v: f"must be a whole number, got {_show(v)}",
    "int_parsing": lambda c, v: f"must be a whole number, got {_show(v)}",
    "int_from_float": lambda c, v: f"must be a whole number, got {_show(v)}",
    "float_type": lambda c, v: f"must be a number, got {_show(v)}{_yaml_number_hint(v)}",
    "float_parsing": lambda c, v: f"must be a number, got {_show(v)}{_yaml_number_hint(v)}",
    "finite_number": lambda c, v: f"must be a finite number, got {_show(v)}",
    "string_type": lambda c, v: f"must be text, got {_show(v)}",
    "string_too_short": lambda c, v: "must not be empty",
    "bool_type": lambda c, v: f"must be true or false, got {_show(v)}",
    "literal_error": lambda c, v: f"must be one of {c['expected']}, got {_show(v)}",
    "model_type": lambda c, v: f"must be a mapping of keys, got {_show(v)}",
    "model_attributes_type": lambda c, v: f"must be a mapping of keys, got {_show(v)}",
    "dict_type": lambda c, v: f"must be a mapping of keys, got {_show(v)}",
    "list_type": lambda c, v: f"must be a list, got {_show(v)}",
    "too_short": lambda c, v: f"must have at least {c['min_length']} item(s), got {c.get('actual_length')}",
    "too_long": lambda c, v: f"must have at most {c['max_length']} item(s), got {c.get('actual_length')}",
    "dist_kind": lambda c, v: (
        f"profile names are only for speed_mps; expected {_DIST_HELP.removeprefix('must be ')}, got {_show(v)}"
        if isinstance(v, str)
        else f"{_DIST_HELP}, got {_show(v)}"
    ),
    "speed_kind": lambda c, v: f"{_SPEED_HELP}, got {_show(v)}",
}


def _yaml_number_hint(v: Any) -> str:
    """YAML 1.1 reads ``1e3`` (no dot) as text: say so."""
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return ""
        return " (text: YAML reads numbers like 1e3 as text; write 1000 or 1.0e+3)"
    return ""


def _event_message(v: Any) -> tuple[str, str]:
    types = ", ".join(EVENT_TYPES)
    if not isinstance(v, Mapping):
        return "", f"must be a mapping with at_s and type, got {_show(v)}"
    t = v.get("type")
    if t is None:
        return ".type", f"is required (one of {types})"
    return ".type", f"unknown event type {_show(t)}; expected one of {types}"


def _format_error(err: Mapping[str, Any]) -> str:
    """One pydantic error → ``"field.path[i]: what was expected, got value"``."""
    kind = err["type"]
    ctx = dict(err.get("ctx") or {})
    value = err.get("input")
    path = _path(err["loc"])
    if kind == "event_type":
        suffix, msg = _event_message(value)
        path += suffix
    elif kind in _MESSAGES:
        msg = _MESSAGES[kind](ctx, value)
    elif kind in ("value_error", "assertion_error"):
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        msg = str(err["msg"])  # our own PydanticCustomError messages, already phrased for users
    return f"{path or '(top level)'}: {msg}"


def _join(problems: list[str]) -> str:
    head = problems[:_MAX_ERRORS]
    more = len(problems) - len(head)
    return "; ".join(head) + (f"; and {more} more" if more > 0 else "")


# --- meaning across sections -----------------------------------------------------------------------------------


_FIELD_BOUNDS: dict[str, tuple[float, bool, float | None]] = {
    # field → (lower bound, strict?, upper bound or None)
    "speed_mps": (0.0, True, 15.0),
    "stair_up_mps": (0.0, True, 5.0),
    "stair_down_mps": (0.0, True, 5.0),
    "premovement_s": (0.0, False, None),
    "radius_m": (0.0, True, 1.5),
}


def _check_spec(path: str, field: str, spec: Any) -> list[str]:
    """Bounds of a per-agent quantity (number, distribution or profile) for its field."""
    lo, strict, hi = _FIELD_BOUNDS[field]
    op = ">" if strict else ">="

    def bad_low(x: float) -> bool:
        return x <= lo if strict else x < lo

    if isinstance(spec, str):
        if field != "speed_mps":
            return [f"{path}: profile names are only for speed_mps, got {_show(spec)}"]
        if spec not in population.PROFILES:
            return [
                f"{path}: unknown profile {_show(spec)}; expected one of {', '.join(sorted(population.PROFILES))}"
            ]
        return []
    if isinstance(spec, int | float):
        if bad_low(spec):
            return [f"{path}: must be {op} {_num(lo)}, got {_num(float(spec))}"]
        if hi is not None and spec > hi:
            return [f"{path}: must be <= {_num(hi)}, got {_num(float(spec))}"]
        return []
    problems = []
    d: Distribution = spec
    for key in ("min", "max", "value"):
        x = getattr(d, key)
        if x is not None and bad_low(x):
            problems.append(f"{path}.{key}: must be {op} {_num(lo)}, got {_num(x)}")
        if x is not None and hi is not None and x > hi:
            problems.append(f"{path}.{key}: must be <= {_num(hi)}, got {_num(x)}")
    if d.dist == "constant" and d.mean is not None and bad_low(d.mean):
        problems.append(f"{path}.mean: must be {op} {_num(lo)}, got {_num(d.mean)}")
    if not problems and d.dist in ("normal", "lognormal"):
        try:
            population.sample(d, 1, _rng0(), lower=lo, upper=math.inf)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
    return problems


def _rng0() -> Any:
    import numpy as np

    return np.random.default_rng(0)


def _dupes(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i in seen and i not in out:
            out.append(i)
        seen.add(i)
    return out


def _names(ids: Iterable[str]) -> str:
    ids = sorted(set(ids))
    return ", ".join(ids) if ids else "none"


def _check(s: Scenario) -> list[str]:
    """Checks across sections; returns the problems as ``"path: message"``."""
    problems: list[str] = []
    city = s.city
    areas = city.areas if city else []
    buildings = {b.id for b in city.buildings} if city else set()
    pipes = {p.id for p in city.pipes} if city else set()
    area_ids = {a.id for a in areas}
    exit_ids: dict[str, str] = {}

    if city is not None:
        for name, ids in (
            ("buildings", [b.id for b in city.buildings]),
            ("pipes", [p.id for p in city.pipes]),
            ("areas", [a.id for a in areas]),
            ("stairs", [st.id for st in city.stairs]),
        ):
            for d in _dupes(ids):
                i = [k for k, x in enumerate(ids) if x == d][1]
                problems.append(f"city.{name}[{i}].id: {d!r} is used twice")
        for i, a in enumerate(areas):
            for j, e in enumerate(a.exits):
                p = f"city.areas[{i}].exits[{j}]"
                if e.id in exit_ids:
                    problems.append(f"{p}.id: exit {e.id!r} is already an exit of area {exit_ids[e.id]!r}")
                    continue
                exit_ids[e.id] = a.id
                gap = a.geometry.distance(e.geometry)
                if gap > 1e-6:
                    problems.append(
                        f"{p}.polygon: exit {e.id!r} does not touch the walkable area of {a.id!r} "
                        f"({gap:.3g} m away)"
                    )

        for i, st in enumerate(city.stairs):
            for key in ("from_area", "to_area"):
                aid = getattr(st, key)
                if aid not in area_ids:
                    problems.append(
                        f"city.stairs[{i}].{key}: no area {aid!r} in city.areas (have: {_names(area_ids)})"
                    )

    if s.crowd is not None:
        if city is None or not (areas or city.buildings):
            problems.append("crowd: needs city.areas or city.buildings (somewhere to walk)")
        for d in _dupes([g.id for g in s.crowd.groups]):
            problems.append(f"crowd.groups: group id {d!r} is used twice")
        per_area: dict[str, list[tuple[int, GroupSpec]]] = {}
        for i, g in enumerate(s.crowd.groups):
            p = f"crowd.groups[{i}]"
            for field in ("speed_mps", "premovement_s", "radius_m", "stair_up_mps", "stair_down_mps"):
                spec = getattr(g, field)
                if spec is not None:
                    problems += _check_spec(f"{p}.{field}", field, spec)
            where = g.in_
            if where.area is not None:
                if where.area not in area_ids:
                    problems.append(
                        f"{p}.in.area: no area {where.area!r} in city.areas (have: {_names(area_ids)})"
                    )
                else:
                    per_area.setdefault(where.area, []).append((i, g))
            if where.building is not None and where.building not in buildings:
                problems.append(
                    f"{p}.in.building: no building {where.building!r} in city.buildings (have: {_names(buildings)})"
                )
            if where.polygon is not None and areas and not buildings:
                geom = shapely.from_wkt(where.polygon)
                if not any(geom.intersection(a.geometry).area > 0 for a in areas):
                    problems.append(f"{p}.in.polygon: does not overlap any walkable area in city.areas")
            for j, e in enumerate(g.exits or []):
                # Exits of buildings are only known once the IFC is read: check_against_city checks those.
                if e not in exit_ids and not buildings:
                    problems.append(f"{p}.exits[{j}]: no exit {e!r} in city.areas (have: {_names(exit_ids)})")
            for d in _dupes(list(g.exits or [])):
                problems.append(f"{p}.exits: exit {d!r} is listed twice")
        problems += _check_area_capacity(s, per_area)

    if s.traffic is not None and (city is None or city.roads is None):
        problems.append("traffic: needs city.roads (a road network to drive on)")

    stations = [st.id for st in s.response.stations] if s.response is not None else []
    if s.response is not None:
        if s.traffic is None:
            problems.append(
                "response: units drive in the traffic model; the scenario needs a traffic section"
            )
        for d in _dupes(stations):
            i = [k for k, x in enumerate(stations) if x == d][1]
            problems.append(f"response.stations[{i}].id: {d!r} is used twice")

    event_ids = [e.id for e in s.events if e.id is not None]
    for d in _dupes(event_ids):
        problems.append(f"events: event id {d!r} is used twice")
    for i, e in enumerate(s.events):
        p = f"events[{i}]"
        if e.at_s > s.duration_s:
            problems.append(
                f"{p}.at_s: {_num(e.at_s)} is after the end of the run (duration_s {_num(s.duration_s)})"
            )
        building = getattr(e, "building", None)
        if building is not None and building not in buildings:
            problems.append(
                f"{p}.building: no building {building!r} in city.buildings (have: {_names(buildings)})"
            )
        for j, b in enumerate(getattr(e, "buildings", None) or []):
            if b not in buildings:
                problems.append(
                    f"{p}.buildings[{j}]: no building {b!r} in city.buildings (have: {_names(buildings)})"
                )
        for j, a in enumerate(getattr(e, "areas", None) or []):
            if a not in area_ids:
                problems.append(f"{p}.areas[{j}]: no area {a!r} in city.areas (have: {_names(area_ids)})")
        network = getattr(e, "network", None)
        if network is not None and network not in pipes:
            problems.append(f"{p}.network: no pipe network {network!r} in city.pipes (have: {_names(pipes)})")
        if isinstance(e, CloseRoadEvent | OpenRoadEvent) and (city is None or city.roads is None):
            problems.append(f"{p}: {e.type} needs city.roads")
        if isinstance(e, CloseDoorEvent) and e.exit is not None and e.exit not in exit_ids:
            problems.append(f"{p}.exit: no exit {e.exit!r} in city.areas (have: {_names(exit_ids)})")
        if isinstance(e, DispatchEvent) and s.response is None:
            problems.append(f"{p}: dispatch needs a response section (stations and their units)")
        if isinstance(e, DispatchEvent) and e.station is not None and s.response is not None:
            if e.station not in stations:
                problems.append(
                    f"{p}.station: no station {e.station!r} in response.stations (have: {_names(stations)})"
                )
        if isinstance(e, DispatchEvent) and e.unit_type not in UNIT_TYPE_NAMES:
            problems.append(
                f"{p}.unit_type: unknown unit type {e.unit_type!r}; expected one of {list(UNIT_TYPE_NAMES)}"
            )
        if isinstance(e, DispatchEvent) and e.incident is not None and e.incident not in event_ids:
            problems.append(f"{p}.incident: no event with id {e.incident!r} (have: {_names(event_ids)})")
    return problems


def _radius_floor(spec: Any) -> float:
    """The smallest radius a spec can draw (0 when unbounded), metres."""
    lo, _ = population.spec_bounds(spec)
    return max(lo, 0.0) if math.isfinite(lo) else 0.0


def _check_area_capacity(s: Scenario, per_area: Mapping[str, list[tuple[int, GroupSpec]]]) -> list[str]:
    """Groups placed in one area must fit together (an early, generous check; placement has the final word)."""
    problems = []
    for area_id, entries in per_area.items():
        area = s.area(area_id)
        total = 0
        for i, g in entries:
            total += g.count
            r = _radius_floor(g.radius_m)
            if r <= 0:
                continue
            cap = population.capacity(area.geometry, r)
            if total > cap:
                others = total - g.count
                together = f" together with {others} of earlier groups" if others else ""
                problems.append(
                    f"crowd.groups[{i}].count: {g.count} agents{together} do not fit in area {area_id!r} "
                    f"({area.geometry.area:.0f} m², at most ~{cap} at this radius ({_num(r)} m))"
                )
                break
    return problems


# --- YAML ------------------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain PyYAML keeps the last one silently)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping", mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Read a YAML file with ``safe_load`` semantics; syntax errors and repeated keys name the line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(p, "scenario file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot be read ({exc})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            raise InputError(
                p, f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
            ) from None
        raise InputError(p, f"invalid YAML: {problem}") from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read, validate and resolve a scenario file (see the module docstring); raises :class:`InputError`."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    data = read_yaml(p)
    if data is None:
        raise InputError(p, "the scenario file is empty; it needs at least duration_s")
    scenario = Scenario.from_dict(data, source=p, base_dir=p.parent)
    if "name" not in data:
        scenario.name = p.name.removesuffix(".yaml").removesuffix(".yml")
    return scenario


# --- the city --------------------------------------------------------------------------------------------------


def _placement(place: Place | None) -> dict[str, float] | None:
    return None if place is None else place.model_dump()


def build_city(scenario: Scenario) -> Any:
    """Load every source of ``scenario.city`` into one :class:`twin.city.City` (its CRS, the placements).

    Order: buildings, terrain, pipes, roads, city model (the first georeferenced or placed source fixes the local
    origin unless ``city.origin`` gives it: x, y[, z] in the CRS, metres). ``areas`` are not a city layer: they go to the crowd space.
    A loader's error is re-raised naming the scenario field and the file. Without a ``city`` section the city is
    empty.
    """
    from twin.city.city import City

    spec = scenario.city
    if spec is None:
        return City(None)
    origin = None if spec.origin is None else (*(float(v) for v in spec.origin), 0.0)[:3]
    city = City(spec.crs, origin)
    jobs: list[tuple[str, Path, dict[str, Any]]] = []
    for i, b in enumerate(spec.buildings):
        jobs.append(
            (
                f"city.buildings[{i}].ifc",
                b.ifc,
                {"format": "ifc", "id": b.id, "placement": _placement(b.place)},
            )
        )
    if spec.terrain is not None:
        t = spec.terrain
        jobs.append(
            (
                "city.terrain.dem",
                t.dem,
                {"format": "dem", "id": t.id, "placement": _placement(t.place), "crs": t.crs},
            )
        )
    for i, pipe in enumerate(spec.pipes):
        jobs.append(
            (
                f"city.pipes[{i}].{pipe.format}",
                pipe.path,
                {"format": pipe.format, "id": pipe.id, "placement": _placement(pipe.place), "crs": pipe.crs},
            )
        )
    if spec.roads is not None:
        r = spec.roads
        if r.osm is not None:
            jobs.append(("city.roads.osm", r.osm, {"format": "osm", "id": r.id}))
        else:
            jobs.append(
                (
                    "city.roads.sumo_net",
                    r.sumo_net,
                    {"format": "sumo_net", "id": r.id, "placement": _placement(r.place)},
                )
            )
    if spec.citymodel is not None:
        c = spec.citymodel
        if c.cityjson is not None:
            jobs.append(
                (
                    "city.citymodel.cityjson",
                    c.cityjson,
                    {"format": "cityjson", "id": c.id, "placement": _placement(c.place)},
                )
            )
        else:
            jobs.append(("city.citymodel.osm", c.osm, {"format": "osm_buildings", "id": c.id}))
    for field, path, kwargs in jobs:
        try:
            layers = city.add_file(path, **kwargs)
        except InputError as exc:
            raise InputError(scenario.source, f"{field}: {exc}") from exc
        if field.startswith("city.citymodel.osm") and not layers:
            raise InputError(scenario.source, f"{field}: {path} has no building footprints")
    return city


def check_against_city(
    scenario: Scenario,
    city: Any,
    *,
    exit_ids: Collection[str] | None = None,
) -> None:
    """Checks that need the loaded city: storeys, spaces and doors named by groups and events, and group exits.

    ``exit_ids`` are every exit the crowd space knows (area exit ids and building exit ids, as in
    ``CrowdSpace.exits.id``); when given, each group's ``exits`` must name some of them. Raises :class:`InputError`
    naming the scenario file and the field paths.
    """
    problems: list[str] = []
    buildings = city.buildings

    def storey_ok(b: Any, name: str) -> bool:
        try:
            b.storey(name)
        except KeyError:
            return False
        return True

    def storey_names(b: Any) -> str:
        return ", ".join(map(str, b.storeys["name"].tolist()))

    if scenario.crowd is not None:
        for i, g in enumerate(scenario.crowd.groups):
            b = buildings.get(g.in_.building) if g.in_.building else None
            if b is not None:
                for j, s in enumerate(g.in_.storeys or []):
                    if not storey_ok(b, s):
                        problems.append(
                            f"crowd.groups[{i}].in.storeys[{j}]: building {b.id!r} has no storey {s!r} "
                            f"(have: {storey_names(b)})"
                        )
            if exit_ids is not None:
                for j, e in enumerate(g.exits or []):
                    if e not in exit_ids:
                        problems.append(
                            f"crowd.groups[{i}].exits[{j}]: no exit {e!r} (have: {_names(exit_ids)})"
                        )
    pipes = city.pipes
    roads = city.roads
    for i, e in enumerate(scenario.events):
        net = pipes.get(getattr(e, "network", None) or "")
        if net is not None:
            for key, table in (("link", net.links), ("node", net.nodes)):
                name = getattr(e, key, None)
                if name is not None and not (table["name"] == name).any():
                    problems.append(f"events[{i}].{key}: pipe network {net.id!r} has no {key} {name!r}")
        if isinstance(e, CloseRoadEvent | OpenRoadEvent) and roads is not None:
            known = set(roads.edges["id"])
            for j, edge in enumerate(e.edge_ids):
                if edge not in known:
                    field = "edge" if e.edge is not None else f"edges[{j}]"
                    problems.append(f"events[{i}].{field}: road network {roads.id!r} has no edge {edge!r}")
        b = buildings.get(getattr(e, "building", None) or "")
        if b is None:
            continue
        if isinstance(e, FireEvent):
            if e.storey is not None and not storey_ok(b, e.storey):
                problems.append(
                    f"events[{i}].storey: building {b.id!r} has no storey {e.storey!r} (have: {storey_names(b)})"
                )
            if e.space is not None:
                sp = b.spaces
                if not (
                    (sp["name"] == e.space) | (sp["long_name"] == e.space) | (sp["guid"] == e.space)
                ).any():
                    problems.append(f"events[{i}].space: building {b.id!r} has no space {e.space!r}")
        if isinstance(e, CloseDoorEvent) and e.door is not None:
            doors = b.doors
            if not ((doors["name"] == e.door) | (doors["guid"] == e.door)).any():
                problems.append(f"events[{i}].door: building {b.id!r} has no door {e.door!r}")
    if problems:
        raise InputError(scenario.source, _join(problems))
