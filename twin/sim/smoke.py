"""Smoke in buildings: a multi-compartment two-zone model over a building's spaces.

Every space (compartment) holds a hot, smoky **upper layer** under its ceiling and a clear **lower layer** of
ambient air below it. The state per compartment is the upper layer's mass ``m`` (kg), its enthalpy in excess of
ambient ``h = m c_p (T - T_a)`` (kJ) and the soot it carries ``s`` (kg). Connections are doors, open boundaries
between spaces, and stairs; a fire is a :class:`~twin.sim.fire.TSquaredFire` burning on the floor of one space.

Physics and assumptions
-----------------------
* **Pressure.** Every compartment's pressure at its floor equals the outside hydrostatic pressure there (the
  envelope leaks at floor level, the usual assumption of simple filling models; no pressure state is solved).
  Gas expands at constant pressure (ideal gas, ``ρ T = ρ_a T_a``), so the layer volume is
  ``V = m / ρ_a + h / (ρ_a c_p T_a)``; lower-layer air displaced by the layer leaks out and is not tracked.
  The pressure in a compartment in excess of outside at height ``z`` is then
  ``P(z) = g (ρ_a − ρ_u) · clip(z − z_i, 0, z_ceiling − z_i)`` with ``z_i`` the layer interface.
* **Fire plume.** NFPA 92 (2012) axisymmetric plume (after Heskestad), driven by the convective heat release
  ``Q_c`` (kW) with the fire base on the floor and no virtual-origin correction: mean flame height
  ``z_l = 0.166 Q_c^{2/5}``; entrained mass at height ``z`` above the fire (kg/s)
  ``m_p = 0.071 Q_c^{1/3} z^{5/3} + 0.0018 Q_c`` for ``z > z_l`` and ``0.032 Q_c^{3/5} z`` below.
  The plume is evaluated at the layer interface; it carries ambient lower-layer air into the upper layer.
  The fire is fuel-controlled (no oxygen limitation: cap it with ``max_hrr_kw``).
* **Heat loss** to walls and ceiling: in a room with a fire a fixed fraction (``wall_loss_fraction``, 0.3) of
  the plume's convective heat is lost where it enters the layer; the rest heats the layer. Layers in rooms without
  a fire lose heat to the ceiling and the walls they touch (area ``A + perimeter × depth``) at
  ``surface_loss_w_m2k × (T_u − T_a)`` (10 W/(m² K), surfaces held at ambient), integrated exactly over a
  sub-step (exponential decay of the excess temperature).
* **Vents.** A door or open boundary passes gas where the two sides' pressures differ (Bernoulli orifice flow,
  discharge coefficient ``discharge_coeff`` 0.7): mass flux ``C_d W ∫ sqrt(2 ρ_src |ΔP(z)|) dz`` over the
  opening's height, integrated exactly over the piecewise-linear ``ΔP(z)`` profile. With the floor-level datum
  only a layer below the soffit drives flow (a single hot room spilling into ambient gets the classic
  ``(2/3) C_d W sqrt(2 g ρ_u (ρ_a − ρ_u)) d^{3/2}`` for a layer ``d`` below the soffit). Gas always leaves from
  the source's upper layer and enters the receiving upper layer (no door-jet entrainment). Closed doors pass
  nothing (no leakage). Exits to the outside pass smoke out of the building; windows are closed.
* **Stairs** are vents in the slab between the space at the stair foot and the space at its head (area: the
  stair's footprint): ``m = C_d A sqrt(2 ρ_src |ΔP|)`` with ``ΔP`` taken at the upper storey's floor, so a
  smoke layer in the lower space pushes smoke up the stair (bidirectional exchange flow is neglected).
* **Open boundaries.** Two spaces on one storey whose footprints touch (gap ≤ 5 cm) and have no door between
  them are open to each other over their shared edge, from the higher floor to the lower ceiling (open-plan
  rooms, a foyer and its stair hall).
* **Full rooms.** A layer that would outgrow its room leaks the excess through the envelope (to outside).
* **Soot and visibility.** Soot is made at ``soot_yield × Q / ΔH_c`` (0.1 kg/kg, a conservative design yield
  for mixed fuels; ``ΔH_c`` 20 MJ/kg) and mixed uniformly in the layer; extinction coefficient
  ``K = σ_s ρ_soot`` with mass-specific extinction ``σ_s`` 8700 m²/kg (Mulholland and Croarkin 2000); the
  optical density per metre is ``D = K / 2.303`` and the visibility (Jin) ``S = C / K = C / (2.303 D)`` with
  ``C = 3`` for light-reflecting signs (8 for light-emitting ones). The lower layer is clear.
* **Tenability** (:class:`Tenability`, BS PD 7974-6 style): a space is untenable when its layer is below
  2.0 m and the layer is hotter than 60 °C or the visibility in it is below 10 m, or whenever the layer is
  hotter than 200 °C (radiation, about 2.5 kW/m² from the layer).

Time stepping is explicit (forward Euler) with sub-steps chosen inside :meth:`SmokeModel.advance` so that no
layer changes by more than ``cfl`` (10 %) of its room's volume per sub-step; an outflow limiter keeps every
layer's mass non-negative while conserving mass. All sub-step work is vectorised over compartments and
connections.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import Point

from twin.errors import InputError
from twin.sim.fire import TSquaredFire
from twin.typing import BoolArray, FloatArray, IntArray

log = logging.getLogger(__name__)

OUTSIDE = "outside"
"""The side value of an opening to the outside of the building (as in the building's door table)."""

G = 9.81
"""Gravitational acceleration, m/s²."""
CP_KJ_KG_K = 1.005
"""Specific heat of air at constant pressure, kJ/(kg K)."""
AMBIENT_PRESSURE_PA = 101325.0
R_AIR_J_KG_K = 287.05

# Plume (NFPA 92 2012, axisymmetric; Q_c in kW, z in m, m in kg/s)
_PLUME_FLAME = 0.166
_PLUME_FAR = 0.071
_PLUME_FAR_LINEAR = 0.0018
_PLUME_NEAR = 0.032

DISCHARGE_COEFF = 0.7
"""Orifice discharge coefficient of doors, open boundaries and stair vents."""
WALL_LOSS_FRACTION = 0.3
"""Share of the plume's convective heat lost to the fire room's surfaces."""
SURFACE_LOSS_W_M2K = 10.0
"""Heat transfer coefficient from a smoke layer to the (ambient) surfaces of a room without a fire, W/(m² K)."""
SOOT_YIELD = 0.1
"""Soot produced per mass of fuel burnt, kg/kg (conservative design value for mixed fuels)."""
HEAT_OF_COMBUSTION_KJ_KG = 20_000.0
"""Effective heat of combustion of the fuel, kJ/kg."""
MASS_EXTINCTION_M2_KG = 8700.0
"""Mass-specific extinction coefficient of soot, m²/kg (flaming combustion; Mulholland and Croarkin 2000)."""
VISIBILITY_CONSTANT = 3.0
"""Jin's visibility constant ``C`` in ``S = C / K``: 3 for light-reflecting signs, 8 for light-emitting signs."""
OPEN_GAP_M = 0.05
"""Spaces on one storey whose footprints are this close and share no door are open to each other, m."""
MIN_OPEN_WIDTH_M = 0.3
"""Shorter shared edges than this are not treated as open boundaries, m."""
DEFAULT_DOOR_HEIGHT_M = 2.0
"""Door height used when the IFC door has none, m."""

# Frantzich & Nilsson (2003) walking speed in smoke, as used by FDS+Evac: v = v0 (1 + beta/alpha K)
SMOKE_SPEED_ALPHA = 0.706
"""Frantzich–Nilsson coefficient alpha, m/s."""
SMOKE_SPEED_BETA = -0.057
"""Frantzich–Nilsson coefficient beta, m²/s."""
SMOKE_SPEED_MIN_FACTOR = 0.1
"""Smallest walking-speed factor in dense smoke (FDS+Evac's floor)."""

_M_EPS = 1e-9  # kg: below this a layer is "no layer" (temperature ambient, no soot)


@dataclass(frozen=True)
class Tenability:
    """Limits beyond which a space is untenable (BS PD 7974-6 style); every field may be overridden.

    A space is untenable when ``layer_height_m < layer_height_limit_m`` and (``upper_temp_c >
    layer_temp_limit_c`` or ``visibility_m < visibility_limit_m``), or when ``upper_temp_c >
    radiation_temp_limit_c`` whatever the layer height.
    """

    layer_height_limit_m: float = 2.0
    layer_temp_limit_c: float = 60.0
    visibility_limit_m: float = 10.0
    radiation_temp_limit_c: float = 200.0


def smoke_speed_factor(
    visibility_m: npt.ArrayLike,
    *,
    visibility_constant: float = VISIBILITY_CONSTANT,
    min_factor: float = SMOKE_SPEED_MIN_FACTOR,
) -> FloatArray:
    """Walking-speed multiplier for people in smoke of a given visibility (Frantzich and Nilsson 2003).

    The extinction coefficient is recovered from the visibility as ``K = C / S`` (Jin) and the speed factor
    is ``1 + (beta / alpha) K`` with ``alpha = 0.706 m/s``, ``beta = −0.057 m²/s`` (the fit FDS+Evac uses for
    the Lund experiments in irritant smoke), clamped to ``[min_factor, 1]``.

    visibility_m : scalar or (n,) float, metres (``inf`` for clear air). Returns float64 of the same shape.
    """
    s = np.asarray(visibility_m, dtype=np.float64)
    if np.any(np.isnan(s)) or np.any(s < 0):
        raise InputError(
            "smoke_speed_factor", "visibility_m must be ≥ 0 (inf for clear air)", element="visibility_m"
        )
    with np.errstate(divide="ignore"):
        k = np.where(s > 0, visibility_constant / np.where(s > 0, s, 1.0), np.inf)
    return np.clip(1.0 + (SMOKE_SPEED_BETA / SMOKE_SPEED_ALPHA) * k, min_factor, 1.0)


def plume_mass_flow(q_c_kw: npt.ArrayLike, z_m: npt.ArrayLike) -> FloatArray:
    """NFPA 92 axisymmetric plume mass flow at height ``z_m`` above a fire of convective output ``q_c_kw``.

    q_c_kw : (n,) float, kW (≥ 0). z_m : (n,) float, m (negative is treated as 0). Returns (n,) float64 kg/s.
    """
    q = np.maximum(np.asarray(q_c_kw, dtype=np.float64), 0.0)
    z = np.maximum(np.asarray(z_m, dtype=np.float64), 0.0)
    z_l = _PLUME_FLAME * q**0.4
    far = _PLUME_FAR * np.cbrt(q) * z ** (5.0 / 3.0) + _PLUME_FAR_LINEAR * q
    near = _PLUME_NEAR * q**0.6 * z
    return np.where(z > z_l, far, near)


def _sqrt_integral(p0: FloatArray, p1: FloatArray, length: FloatArray) -> FloatArray:
    """∫ sqrt(p(z)) dz over a segment of ``length`` where p is linear from p0 ≥ 0 to p1 ≥ 0 (exact)."""
    a, b = np.sqrt(p0), np.sqrt(p1)
    den = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        val = (2.0 / 3.0) * length * (p0 + a * b + p1) / den
    return np.where(den > 0, val, 0.0)


def _positive_part_integral(p0: FloatArray, p1: FloatArray, length: FloatArray) -> FloatArray:
    """∫ sqrt(max(p(z), 0)) dz over a segment where p is linear from p0 to p1 (either sign)."""
    both = (p0 >= 0) & (p1 >= 0)
    hi = np.maximum(p0, p1)
    span = np.abs(p0) + np.abs(p1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, np.maximum(hi, 0.0) / span, 0.0)
    mixed = _sqrt_integral(np.maximum(hi, 0.0), np.zeros_like(hi), length * frac)
    return np.where(both, _sqrt_integral(np.maximum(p0, 0.0), np.maximum(p1, 0.0), length), mixed)


def _as_fire_list(value: Any) -> list[TSquaredFire]:
    if isinstance(value, TSquaredFire):
        return [value]
    fires = list(value)
    for f in fires:
        if not isinstance(f, TSquaredFire):
            raise InputError(
                "fires", f"expected TSquaredFire values, got {type(f).__name__}", element="fires"
            )
    return fires


def _fire_items(fires: Any) -> list[tuple[str, TSquaredFire]]:
    """``{space: fire or [fires]}`` or ``[(space, fire), ...]`` as a flat list of (space, fire)."""
    if fires is None:
        return []
    items = fires.items() if isinstance(fires, Mapping) else fires
    out: list[tuple[str, TSquaredFire]] = []
    for item in items:
        try:
            space, value = item
        except (TypeError, ValueError):
            raise InputError(
                "fires", f"expected a mapping space → TSquaredFire or (space, fire) pairs, got {item!r}"
            ) from None
        out.extend((str(space), f) for f in _as_fire_list(value))
    return out


OPENING_COLUMNS = ["id", "kind", "side_a", "side_b", "width_m", "bottom_m", "top_m", "area_m2", "z_m"]
"""Columns of an opening table: ``kind`` is ``"door"`` or ``"open"`` (vertical openings: ``width_m``,
``bottom_m`` and ``top_m`` absolute heights of sill and soffit, m) or ``"vent"`` (a horizontal opening between
``side_a`` below and ``side_b`` above at height ``z_m`` with ``area_m2``). Sides are space ids or ``"outside"``."""


class SmokeModel:
    """Multi-compartment two-zone smoke model (see the module docstring for the physics).

    Build it with :meth:`from_building` or :meth:`from_rooms`; then call :meth:`advance` with the coupled
    model's step. Arrays indexed by space follow :attr:`space_ids`.
    """

    def __init__(
        self,
        *,
        space_ids: Sequence[str],
        names: Sequence[str],
        storeys: Sequence[str | None],
        floor_area_m2: FloatArray,
        height_m: FloatArray,
        z_m: FloatArray,
        openings: pd.DataFrame,
        fires: Iterable[tuple[str, TSquaredFire]] = (),
        closed: Iterable[str] = (),
        start_s: float = 0.0,
        ambient_temp_c: float = 20.0,
        discharge_coeff: float = DISCHARGE_COEFF,
        wall_loss_fraction: float = WALL_LOSS_FRACTION,
        soot_yield: float = SOOT_YIELD,
        heat_of_combustion_kj_kg: float = HEAT_OF_COMBUSTION_KJ_KG,
        mass_extinction_m2_kg: float = MASS_EXTINCTION_M2_KG,
        visibility_constant: float = VISIBILITY_CONSTANT,
        tenability: Tenability | None = None,
        surface_loss_w_m2k: float = SURFACE_LOSS_W_M2K,
        perimeter_m: npt.ArrayLike | None = None,
        cfl: float = 0.1,
        max_substep_s: float = 1.0,
        min_substep_s: float = 1e-3,
        source: str = "smoke model",
    ):
        self.source = source
        self.space_ids = [str(s) for s in space_ids]
        n = len(self.space_ids)
        if n == 0:
            raise InputError(source, "has no spaces; expected at least one compartment", element="spaces")
        if len(set(self.space_ids)) != n:
            dup = pd.Series(self.space_ids)[pd.Series(self.space_ids).duplicated()].tolist()
            raise InputError(source, f"space ids must be unique, repeated: {dup[:5]}", element="spaces")
        self.names = [str(s) for s in names]
        self.storeys = list(storeys)
        self._index = {sid: i for i, sid in enumerate(self.space_ids)}
        for name, i in zip(self.names, range(n), strict=True):
            self._index.setdefault(name, i)
        self.area = self._array(floor_area_m2, n, "floor_area_m2", positive=True)
        self.height = self._array(height_m, n, "height_m", positive=True)
        self.floor = self._array(z_m, n, "z_m", positive=False)
        self.ceiling = self.floor + self.height
        self.perimeter = (
            4.0 * np.sqrt(self.area)
            if perimeter_m is None
            else self._array(perimeter_m, n, "perimeter_m", positive=True)
        )
        self.volume = self.area * self.height
        for key, value, lo in (
            ("ambient_temp_c", ambient_temp_c, -50.0),
            ("discharge_coeff", discharge_coeff, 0.0),
            ("wall_loss_fraction", wall_loss_fraction, 0.0),
            ("soot_yield", soot_yield, 0.0),
            ("heat_of_combustion_kj_kg", heat_of_combustion_kj_kg, 0.0),
            ("mass_extinction_m2_kg", mass_extinction_m2_kg, 0.0),
            ("visibility_constant", visibility_constant, 0.0),
            ("cfl", cfl, 0.0),
            ("surface_loss_w_m2k", surface_loss_w_m2k, 0.0),
            ("max_substep_s", max_substep_s, 0.0),
            ("min_substep_s", min_substep_s, 0.0),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= lo):
                raise InputError(source, f"{key} must be a finite number ≥ {lo}, got {value!r}", element=key)
        if not 0 < discharge_coeff <= 1 or not 0 <= wall_loss_fraction < 1 or not 0 < cfl <= 1:
            raise InputError(
                source,
                "expected 0 < discharge_coeff ≤ 1, 0 ≤ wall_loss_fraction < 1 and 0 < cfl ≤ 1, got "
                f"{discharge_coeff}, {wall_loss_fraction}, {cfl}",
                element="options",
            )
        if heat_of_combustion_kj_kg <= 0 or max_substep_s <= 0 or min_substep_s > max_substep_s:
            raise InputError(
                source,
                "heat_of_combustion_kj_kg and max_substep_s must be > 0 and min_substep_s ≤ max_substep_s",
                element="options",
            )
        self.t_a = ambient_temp_c + 273.15
        self.rho_a = AMBIENT_PRESSURE_PA / (R_AIR_J_KG_K * self.t_a)
        self.cd = float(discharge_coeff)
        self.wall_loss = float(wall_loss_fraction)
        self.soot_yield = float(soot_yield)
        self.dhc = float(heat_of_combustion_kj_kg)
        self.sigma_s = float(mass_extinction_m2_kg)
        self.vis_c = float(visibility_constant)
        self.surface_h = float(surface_loss_w_m2k)
        self.tenability = tenability or Tenability()
        self.cfl = float(cfl)
        self.max_dt = float(max_substep_s)
        self.min_dt = float(min_substep_s)
        self.time_s = float(start_s)

        self._set_openings(openings)
        self._fire_space = np.zeros(0, dtype=np.int64)
        self._fires: list[TSquaredFire] = []
        self._fire_alpha = np.zeros(0)
        self._fire_start = np.zeros(0)
        self._fire_cap = np.zeros(0)
        self._fire_chi = np.zeros(0)
        self._cooled = np.ones(n, dtype=bool)  # rooms whose layer loses heat to its surfaces (no fire)
        for space, fire in fires:
            self.add_fire(space, fire)
        for cid in closed:
            self.close_door(cid)

        self.m = np.zeros(n)  # upper-layer mass, kg
        self.h = np.zeros(n)  # upper-layer excess enthalpy, kJ
        self.s = np.zeros(n)  # upper-layer soot, kg
        self.totals = dict.fromkeys(
            (
                "plume_mass_kg",
                "plume_heat_kj",
                "wall_loss_kj",
                "soot_made_kg",
                "outside_mass_kg",
                "outside_heat_kj",
                "outside_soot_kg",
            ),
            0.0,
        )
        self.untenable_since_s = np.full(n, np.nan)
        self._untenable_before = np.zeros(n, dtype=bool)
        self._untenable_now = np.zeros(n, dtype=bool)
        self.substeps = 0

    # -- construction helpers ----------------------------------------------------------------------------------
    def _array(self, values: Any, n: int, key: str, *, positive: bool) -> FloatArray:
        arr = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()
        bad = ~np.isfinite(arr) | ((arr <= 0) if positive else np.zeros(n, dtype=bool))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            want = "a finite number > 0" if positive else "a finite number"
            raise InputError(self.source, f"{key} must be {want}, got {arr[i]!r}", element=self.space_ids[i])
        return arr

    def _side(self, value: Any, opening: str) -> int:
        if value == OUTSIDE:
            return len(self.space_ids)
        if value not in self._index:
            raise InputError(
                self.source, f"opening side {value!r} is neither a space id nor {OUTSIDE!r}", element=opening
            )
        return self._index[value]

    def _set_openings(self, openings: pd.DataFrame) -> None:
        df = (
            pd.DataFrame(openings, columns=OPENING_COLUMNS)
            if not isinstance(openings, pd.DataFrame)
            else openings
        )
        missing = [c for c in ("id", "kind", "side_a", "side_b") if c not in df.columns]
        if missing:
            raise InputError(self.source, f"opening table lacks columns {missing}", element="openings")
        extra = [c for c in df.columns if c not in OPENING_COLUMNS]
        df = df.reindex(columns=OPENING_COLUMNS + extra).reset_index(drop=True)
        df["id"] = df["id"].astype(str)
        if df["id"].duplicated().any():
            raise InputError(
                self.source,
                f"opening ids must be unique, repeated: {df['id'][df['id'].duplicated()].tolist()[:5]}",
                element="openings",
            )
        n_out = len(self.space_ids)
        a = np.array([self._side(v, i) for v, i in zip(df["side_a"], df["id"], strict=True)], dtype=np.int64)
        b = np.array([self._side(v, i) for v, i in zip(df["side_b"], df["id"], strict=True)], dtype=np.int64)
        kinds = df["kind"].astype(str).to_numpy()
        bad_kind = ~np.isin(kinds, ["door", "open", "vent"])
        if bad_kind.any():
            i = int(np.flatnonzero(bad_kind)[0])
            raise InputError(
                self.source, f"kind must be door, open or vent, got {kinds[i]!r}", element=df["id"][i]
            )
        same = (a == b) | ((a == n_out) & (b == n_out))
        if same.any():
            raise InputError(
                self.source,
                "an opening must join two different sides",
                element=df["id"][int(np.flatnonzero(same)[0])],
            )
        vent = kinds == "vent"
        width = df["width_m"].to_numpy(dtype=np.float64)
        bottom = df["bottom_m"].to_numpy(dtype=np.float64)
        top = df["top_m"].to_numpy(dtype=np.float64)
        area = df["area_m2"].to_numpy(dtype=np.float64)
        zv = df["z_m"].to_numpy(dtype=np.float64)
        bad = np.where(
            vent,
            ~(np.isfinite(area) & (area > 0) & np.isfinite(zv)),
            ~(np.isfinite(width) & (width > 0) & np.isfinite(bottom) & np.isfinite(top) & (top > bottom)),
        )
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            want = (
                "area_m2 > 0 and a finite z_m"
                if vent[i]
                else "width_m > 0 and finite bottom_m < top_m (absolute heights)"
            )
            raise InputError(self.source, f"opening needs {want}", element=df["id"][i])
        self.openings = df.assign(open=True)
        self._a, self._b = a, b
        self._is_vent = vent
        self._width = np.where(vent, 0.0, width)
        self._bottom = np.where(vent, 0.0, bottom)
        self._top = np.where(vent, 0.0, top)
        self._area = np.where(vent, area, 0.0)
        self._zv = np.where(vent, zv, 0.0)
        self._open = np.ones(len(df), dtype=bool)
        self._oid = {oid: i for i, oid in enumerate(df["id"])}
        self._iv = np.flatnonzero(~vent)  # vertical openings
        self._ih = np.flatnonzero(vent)  # horizontal vents

    def space_index(self, space: str) -> int:
        """Row of a space given by id (GUID) or name."""
        if space not in self._index:
            raise InputError(self.source, f"no space {space!r} in the model", element=space)
        return self._index[space]

    def add_fire(self, space: str, fire: TSquaredFire) -> None:
        """Start ``fire`` (burning from its ``start_s``) on the floor of ``space`` (id or name)."""
        if not isinstance(fire, TSquaredFire):
            raise InputError(
                self.source, f"expected a TSquaredFire, got {type(fire).__name__}", element=space
            )
        i = self.space_index(space)
        self._fires.append(fire)
        self._fire_space = np.append(self._fire_space, i)
        self._fire_alpha = np.append(self._fire_alpha, fire.alpha)
        self._fire_start = np.append(self._fire_start, fire.start_s)
        self._fire_cap = np.append(self._fire_cap, math.inf if fire.max_hrr_kw is None else fire.max_hrr_kw)
        self._fire_chi = np.append(self._fire_chi, fire.convective_fraction)
        self._cooled[i] = False

    def _set_open(self, opening: str, value: bool) -> None:
        if opening not in self._oid:
            raise InputError(
                self.source, f"no opening {opening!r} (door GUID, name or opening id)", element=opening
            )
        i = self._oid[opening]
        self._open[i] = value
        self.openings.loc[i, "open"] = value

    def has_opening(self, opening: str) -> bool:
        """Whether ``opening`` is an opening id of the model (door and stair GUIDs, ``open:…`` boundaries)."""
        return opening in self._oid

    def close_door(self, door_id: str) -> None:
        """Close an opening (a door by GUID or name, or any opening id): it passes no smoke until opened."""
        self._set_open(door_id, False)

    def open_door(self, door_id: str) -> None:
        """Open an opening closed by :meth:`close_door`."""
        self._set_open(door_id, True)

    # -- builders ----------------------------------------------------------------------------------------------
    @classmethod
    def from_rooms(
        cls,
        space_ids: Sequence[str],
        *,
        floor_area_m2: npt.ArrayLike,
        height_m: npt.ArrayLike,
        z_m: npt.ArrayLike = 0.0,
        names: Sequence[str] | None = None,
        storeys: Sequence[str | None] | None = None,
        openings: pd.DataFrame | Sequence[Mapping[str, Any]] = (),
        fires: Mapping[str, Any] | Sequence[tuple[str, TSquaredFire]] | None = None,
        closed: Iterable[str] = (),
        **options: Any,
    ) -> SmokeModel:
        """A model from plain arrays and an opening table (see :data:`OPENING_COLUMNS`).

        space_ids : n unique ids. floor_area_m2, height_m : (n,) float, m², m (or scalars). z_m : (n,) float,
        floor heights, m. openings : DataFrame or records with the :data:`OPENING_COLUMNS`. fires : mapping
        space id → :class:`TSquaredFire` (or a list of them), or (space, fire) pairs. closed : opening ids closed
        at the start. ``options`` are the keyword options of the constructor (``wall_loss_fraction``…).
        """
        ids = [str(s) for s in space_ids]
        table = openings if isinstance(openings, pd.DataFrame) else pd.DataFrame(list(openings), columns=None)
        if table.empty:
            table = pd.DataFrame(columns=OPENING_COLUMNS)
        return cls(
            space_ids=ids,
            names=list(names) if names is not None else ids,
            storeys=list(storeys) if storeys is not None else [None] * len(ids),
            floor_area_m2=np.asarray(floor_area_m2, dtype=np.float64),
            height_m=np.asarray(height_m, dtype=np.float64),
            z_m=np.asarray(z_m, dtype=np.float64),
            openings=table,
            fires=_fire_items(fires),
            closed=closed,
            **options,
        )

    @classmethod
    def from_building(
        cls,
        building: Any,
        *,
        fires: Mapping[str, Any] | Sequence[tuple[str, TSquaredFire]] | None = None,
        closed_doors: Iterable[str] = (),
        open_boundaries: bool = True,
        **options: Any,
    ) -> SmokeModel:
        """A model over the spaces of a :class:`~twin.city.building.Building`.

        Compartments are the spaces with a footprint (space GUIDs are the ids); openings are the doors
        (id: door GUID; ``closed_doors`` may name doors by GUID or name), the stairs (id: stair GUID; a vent
        from the space at the stair foot to the space at its head, see :func:`stair_spaces`) and, with
        ``open_boundaries``, the touching boundaries of door-less neighbours (id ``"open:<guid a>|<guid b>"``).
        fires : mapping space (GUID or name) → :class:`TSquaredFire` or list, or (space, fire) pairs.
        """
        src = getattr(building, "source", None) or getattr(building, "id", "building")
        spaces = building.spaces
        has_geom = spaces["footprint"].map(lambda g: g is not None and not g.is_empty).to_numpy(dtype=bool)
        if not has_geom.any():
            raise InputError(
                src, "has no space with a footprint; the smoke model needs spaces", element="spaces"
            )
        for _, row in spaces[~has_geom].iterrows():
            log.warning(
                "%s: space %s (%s) has no footprint; left out of the smoke model", src, row.guid, row["name"]
            )
        sp = spaces[has_geom].reset_index(drop=True)
        area = sp["area_m2"].to_numpy(dtype=np.float64)
        fp_area = sp["footprint"].map(lambda g: float(g.area)).to_numpy(dtype=np.float64)
        perimeter = sp["footprint"].map(lambda g: float(g.length)).to_numpy(dtype=np.float64)
        area = np.where(np.isfinite(area) & (area > 0), area, fp_area)
        height = sp["height_m"].to_numpy(dtype=np.float64)
        z = sp["z_m"].to_numpy(dtype=np.float64)
        elev = dict(zip(building.storeys["guid"], building.storeys["elevation_m"], strict=True))
        storey_z = np.array([elev.get(s, np.nan) for s in sp["storey"]], dtype=np.float64)
        z = np.where(np.isfinite(z), z, np.nan_to_num(storey_z))
        bad_h = ~(np.isfinite(height) & (height > 0))
        if bad_h.any():
            log.warning("%s: %d spaces without a height; using 2.5 m", src, int(bad_h.sum()))
            height = np.where(bad_h, 2.5, height)
        guids = sp["guid"].astype(str).tolist()
        known = set(guids)
        floor_of = dict(zip(guids, z, strict=True))
        ceil_of = dict(zip(guids, z + height, strict=True))

        rows: list[dict[str, Any]] = []
        door_pairs: set[frozenset[str]] = set()
        for _, d in building.doors.iterrows():
            sides = [d.side_a, d.side_b]
            if any(s is None or (s != OUTSIDE and s not in known) for s in sides) or sides[0] == sides[1]:
                log.warning(
                    "%s: door %s (%s) has sides %s not both known spaces; skipped",
                    src,
                    d.guid,
                    d["name"],
                    sides,
                )
                continue
            room = sides[0] if sides[0] != OUTSIDE else sides[1]
            bottom = float(d.z_m) if math.isfinite(d.z_m) else floor_of[room]
            dh = float(d.height_m) if math.isfinite(d.height_m) and d.height_m > 0 else DEFAULT_DOOR_HEIGHT_M
            if not (math.isfinite(d.width_m) and d.width_m > 0):
                log.warning("%s: door %s has no width; skipped", src, d.guid)
                continue
            rows.append(
                dict(id=d.guid, kind="door", side_a=sides[0], side_b=sides[1], width_m=float(d.width_m),
                     bottom_m=bottom, top_m=bottom + dh, name=d["name"])
            )  # fmt: skip
            door_pairs.add(frozenset(sides))
        for st in stair_spaces(building, spaces=sp):
            if st["lower"] is None or st["upper"] is None:
                log.warning("%s: stair %s links no space on one of its storeys; skipped", src, st["guid"])
                continue
            rows.append(
                dict(id=st["guid"], kind="vent", side_a=st["lower"], side_b=st["upper"],
                     area_m2=st["area_m2"], z_m=floor_of[st["upper"]], name=st["name"])
            )  # fmt: skip
        if open_boundaries:
            for ga, gb, width in _touching_pairs(sp):
                if frozenset((ga, gb)) in door_pairs:
                    continue
                lo, hi = max(floor_of[ga], floor_of[gb]), min(ceil_of[ga], ceil_of[gb])
                if hi - lo <= 0.1:
                    continue
                rows.append(
                    dict(id=f"open:{ga}|{gb}", kind="open", side_a=ga, side_b=gb, width_m=width,
                         bottom_m=lo, top_m=hi, name="open boundary")
                )  # fmt: skip
        table = pd.DataFrame(rows, columns=[*OPENING_COLUMNS, "name"])
        names = sp["name"].map(lambda v: "" if v is None else str(v)).tolist()
        model = cls(
            space_ids=guids,
            names=names,
            storeys=sp["storey"].tolist(),
            floor_area_m2=area,
            height_m=height,
            z_m=z,
            openings=table,
            fires=[(locate_space(building, space=s, source=src), f) for s, f in _fire_items(fires)],
            source=str(src),
            perimeter_m=perimeter,
            **options,
        )
        # doors may also be closed by name
        for door in closed_doors:
            if door in model._oid:
                model.close_door(door)
                continue
            hits = table.index[table["name"] == door].tolist()
            if not hits:
                raise InputError(src, f"no door {door!r} (GUID or name) to close", element=door)
            for i in hits:
                model.close_door(table["id"][i])
        log.info(
            "%s: smoke model with %d spaces, %d doors, %d stair vents, %d open boundaries",
            src, len(guids), int((table["kind"] == "door").sum()), int((table["kind"] == "vent").sum()),
            int((table["kind"] == "open").sum()),
        )  # fmt: skip
        return model

    # -- derived state -----------------------------------------------------------------------------------------
    def _layer_volume(self, m: FloatArray, h: FloatArray) -> FloatArray:
        return m / self.rho_a + h / (self.rho_a * CP_KJ_KG_K * self.t_a)

    def _temperature_k(self, m: FloatArray, h: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(m > _M_EPS, self.t_a + h / (CP_KJ_KG_K * np.maximum(m, _M_EPS)), self.t_a)

    @property
    def layer_volume_m3(self) -> FloatArray:
        """(n,) float64 upper-layer volume per space, m³."""
        return np.minimum(self._layer_volume(self.m, self.h), self.volume)

    @property
    def layer_height_m(self) -> FloatArray:
        """(n,) float64 height of the smoke layer interface above each space's floor, m (ceiling height: none)."""
        return np.clip(self.height - self.layer_volume_m3 / self.area, 0.0, self.height)

    @property
    def upper_temp_c(self) -> FloatArray:
        """(n,) float64 upper-layer temperature per space, °C (ambient where there is no layer)."""
        return self._temperature_k(self.m, self.h) - 273.15

    @property
    def extinction_per_m(self) -> FloatArray:
        """(n,) float64 extinction coefficient ``K`` of the upper layer per space, 1/m."""
        v = self.layer_volume_m3
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(v > 1e-9, self.sigma_s * self.s / np.maximum(v, 1e-12), 0.0)

    @property
    def optical_density_per_m(self) -> FloatArray:
        """(n,) float64 optical density per metre ``D = K / 2.303`` of the upper layer, 1/m."""
        return self.extinction_per_m / 2.303

    @property
    def visibility_m(self) -> FloatArray:
        """(n,) float64 visibility in the upper layer per space, ``S = C / K``, m (``inf`` without soot)."""
        k = self.extinction_per_m
        with np.errstate(divide="ignore"):
            return np.where(k > 0, self.vis_c / np.where(k > 0, k, 1.0), np.inf)

    def _untenable_of(self, layer_h: FloatArray, temp_c: FloatArray, vis: FloatArray) -> BoolArray:
        t = self.tenability
        low = layer_h < t.layer_height_limit_m
        return (low & ((temp_c > t.layer_temp_limit_c) | (vis < t.visibility_limit_m))) | (
            temp_c > t.radiation_temp_limit_c
        )

    @property
    def untenable(self) -> BoolArray:
        """(n,) bool: the space is untenable now (see :class:`Tenability`)."""
        return self._untenable_of(self.layer_height_m, self.upper_temp_c, self.visibility_m)

    def newly_untenable(self) -> list[str]:
        """Ids of the spaces untenable after the last :meth:`advance` that were not untenable before it."""
        return [self.space_ids[i] for i in np.flatnonzero(self._untenable_now & ~self._untenable_before)]

    def hrr_kw(self, t_s: float | None = None) -> FloatArray:
        """(n_fires,) float64 heat release rate of each fire at ``t_s`` (default: now), kW."""
        t = self.time_s if t_s is None else t_s
        tau = np.maximum(t - self._fire_start, 0.0)
        return np.minimum(self._fire_alpha * tau * tau, self._fire_cap)

    def state_table(self) -> pd.DataFrame:
        """One row per space: ``space, name, storey, layer_height_m, upper_temp_c, visibility_m,
        extinction_per_m, untenable, untenable_since_s`` (the state after the last advance)."""
        return pd.DataFrame(
            {
                "space": self.space_ids,
                "name": self.names,
                "storey": self.storeys,
                "layer_height_m": self.layer_height_m,
                "upper_temp_c": self.upper_temp_c,
                "visibility_m": self.visibility_m,
                "extinction_per_m": self.extinction_per_m,
                "untenable": self.untenable,
                "untenable_since_s": self.untenable_since_s,
            }
        )

    def budget(self) -> dict[str, float]:
        """Cumulative mass (kg), heat (kJ) and soot (kg) budgets since the start, and what the layers hold now.

        Conservation: ``plume_mass_kg = layer_mass_kg + outside_mass_kg``; ``plume_heat_kj = wall_loss_kj +
        layer_heat_kj + outside_heat_kj`` (wall losses include the surface losses of smoke-filled rooms); ``soot_made_kg = layer_soot_kg + outside_soot_kg``.
        """
        return {
            **self.totals,
            "layer_mass_kg": float(self.m.sum()),
            "layer_heat_kj": float(self.h.sum()),
            "layer_soot_kg": float(self.s.sum()),
        }

    def set_layer(self, space: str, *, depth_m: float, temp_c: float, soot_kg: float = 0.0) -> None:
        """Put a uniform upper layer of ``depth_m`` (m, ≤ the room height) at ``temp_c`` (°C, ≥ ambient) holding
        ``soot_kg`` (kg) into ``space`` (id or name): an initial condition, e.g. for tests and restarts."""
        i = self.space_index(space)
        t_k = temp_c + 273.15
        if not (0 <= depth_m <= self.height[i] and t_k >= self.t_a and soot_kg >= 0):
            raise InputError(
                self.source,
                f"expected 0 ≤ depth_m ≤ {self.height[i]}, temp_c ≥ ambient and soot_kg ≥ 0, "
                f"got {depth_m}, {temp_c}, {soot_kg}",
                element=space,
            )
        rho = self.rho_a * self.t_a / t_k
        self.m[i] = rho * self.area[i] * depth_m
        self.h[i] = self.m[i] * CP_KJ_KG_K * (t_k - self.t_a)
        self.s[i] = soot_kg

    def opening_flows(self) -> pd.DataFrame:
        """Mass flow through every opening in the current state: the :attr:`openings` table (``id, kind,
        side_a, side_b, …, open``) with ``a_to_b_kg_s`` and ``b_to_a_kg_s`` (kg/s, ≥ 0) added."""
        fwd, bwd, _ = self._flows(self.m, self.h)
        return self.openings.assign(a_to_b_kg_s=fwd, b_to_a_kg_s=bwd)

    # -- time stepping -----------------------------------------------------------------------------------------
    def _flows(self, m: FloatArray, h: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Forward (a→b) and backward (b→a) mass flows per opening, kg/s, and the layer volumes, m³."""
        vol = np.minimum(self._layer_volume(m, h), self.volume)
        temp = self._temperature_k(m, h)
        rho_u = self.rho_a * self.t_a / temp
        z_i = self.ceiling - vol / self.area
        # extended by one "outside" entry (no layer, zero excess pressure)
        k = np.append(G * (self.rho_a - rho_u), 0.0)
        zi = np.append(z_i, 0.0)
        ceil = np.append(self.ceiling, 0.0)
        rho = np.append(rho_u, self.rho_a)
        a, b = self._a, self._b
        n_c = len(a)
        fwd = np.zeros(n_c)
        bwd = np.zeros(n_c)
        iv = self._iv
        if len(iv):
            av, bv = a[iv], b[iv]
            lo, hi = self._bottom[iv], self._top[iv]
            pts = np.stack(
                [lo, hi] + [np.clip(x, lo, hi) for x in (zi[av], ceil[av], zi[bv], ceil[bv])], axis=1
            )
            pts.sort(axis=1)

            def excess(side: IntArray) -> FloatArray:
                return k[side][:, None] * np.clip(
                    pts - zi[side][:, None], 0.0, (ceil[side] - zi[side])[:, None]
                )

            dp = excess(av) - excess(bv)  # (n_v, 6) Pa
            p0, p1, seg = dp[:, :-1], dp[:, 1:], np.diff(pts, axis=1)
            pos = _positive_part_integral(p0, p1, seg).sum(axis=1)
            neg = _positive_part_integral(-p0, -p1, seg).sum(axis=1)
            w = self.cd * self._width[iv]
            fwd[iv] = w * np.sqrt(2.0 * rho[av]) * pos
            bwd[iv] = w * np.sqrt(2.0 * rho[bv]) * neg
        ih = self._ih
        if len(ih):
            ah, bh = a[ih], b[ih]
            zv = self._zv[ih]

            def excess_at(side: IntArray) -> FloatArray:
                return k[side] * np.clip(zv - zi[side], 0.0, ceil[side] - zi[side])

            dp = excess_at(ah) - excess_at(bh)
            ca = self.cd * self._area[ih]
            fwd[ih] = ca * np.sqrt(2.0 * rho[ah] * np.maximum(dp, 0.0))
            bwd[ih] = ca * np.sqrt(2.0 * rho[bh] * np.maximum(-dp, 0.0))
        fwd *= self._open
        bwd *= self._open
        return fwd, bwd, vol

    def _substep(self, dt_left: float) -> float:
        n = len(self.space_ids)
        m, h, s = self.m, self.h, self.s
        fwd, bwd, vol = self._flows(m, h)
        # fire sources at the start of the sub-step
        q = self.hrr_kw()
        q_c = self._fire_chi * q
        fs = self._fire_space
        z_plume = self.ceiling[fs] - vol[fs] / self.area[fs] - self.floor[fs]
        m_p = plume_mass_flow(q_c, z_plume)
        src_m = np.bincount(fs, m_p, minlength=n)
        src_h = np.bincount(fs, (1.0 - self.wall_loss) * q_c, minlength=n)
        src_s = np.bincount(fs, self.soot_yield * q / self.dhc, minlength=n)
        a, b = self._a, self._b
        e_spec = np.where(m > _M_EPS, h / np.maximum(m, _M_EPS), 0.0)  # kJ/kg
        s_spec = np.where(m > _M_EPS, s / np.maximum(m, _M_EPS), 0.0)  # kg/kg
        e_ext = np.append(e_spec, 0.0)
        s_ext = np.append(s_spec, 0.0)
        c_v = 1.0 / (self.rho_a * CP_KJ_KG_K * self.t_a)  # layer volume per excess enthalpy, m³/kJ
        f_m = np.concatenate([fwd, bwd])
        src_idx = np.concatenate([a, b])
        dst_idx = np.concatenate([b, a])
        # sub-step: no layer changes by more than cfl of its room's volume
        f_vol = f_m * (1.0 / self.rho_a + e_ext[src_idx] * c_v)  # m³/s at the source's state
        dvdt = (
            src_m / self.rho_a
            + src_h * c_v
            + np.bincount(src_idx, f_vol, minlength=n + 1)[:n]
            + np.bincount(dst_idx, f_vol, minlength=n + 1)[:n]
        )
        rate = float(np.max(dvdt / self.volume))
        dt = self.max_dt if rate <= 0 else max(self.min_dt, min(self.max_dt, self.cfl / rate))
        dt = min(dt, dt_left)
        # outflow limiter: a layer gives at most half its mass per sub-step (both ends of a flow scale alike)
        out_rate = np.bincount(src_idx, f_m, minlength=n + 1)[:n]
        with np.errstate(divide="ignore", invalid="ignore"):
            lim = np.where(out_rate * dt > 0.5 * m, 0.5 * m / np.maximum(out_rate * dt, 1e-300), 1.0)
        f_m = f_m * np.append(lim, 1.0)[src_idx]
        f_h = f_m * e_ext[src_idx]
        f_s = f_m * s_ext[src_idx]
        dm = np.bincount(dst_idx, f_m, minlength=n + 1) - np.bincount(src_idx, f_m, minlength=n + 1)
        dh = np.bincount(dst_idx, f_h, minlength=n + 1) - np.bincount(src_idx, f_h, minlength=n + 1)
        ds = np.bincount(dst_idx, f_s, minlength=n + 1) - np.bincount(src_idx, f_s, minlength=n + 1)
        m_new = np.maximum(m + dt * (src_m + dm[:n]), 0.0)
        h_new = np.maximum(h + dt * (src_h + dh[:n]), 0.0)
        s_new = np.maximum(s + dt * (src_s + ds[:n]), 0.0)
        tot = self.totals
        tot["plume_mass_kg"] += dt * float(src_m.sum())
        tot["plume_heat_kj"] += dt * float(q_c.sum())
        tot["wall_loss_kj"] += dt * self.wall_loss * float(q_c.sum())
        tot["soot_made_kg"] += dt * float(src_s.sum())
        tot["outside_mass_kg"] += dt * float(dm[n])
        tot["outside_heat_kj"] += dt * float(dh[n])
        tot["outside_soot_kg"] += dt * float(ds[n])
        # a layer that outgrows its room leaks the excess out through the envelope
        v_new = self._layer_volume(m_new, h_new)
        over = v_new > self.volume
        if over.any():
            keep = np.where(over, self.volume / np.where(over, v_new, 1.0), 1.0)
            tot["outside_mass_kg"] += float((m_new * (1 - keep)).sum())
            tot["outside_heat_kj"] += float((h_new * (1 - keep)).sum())
            tot["outside_soot_kg"] += float((s_new * (1 - keep)).sum())
            m_new, h_new, s_new = m_new * keep, h_new * keep, s_new * keep
        if self.surface_h > 0:
            depth = np.minimum(self._layer_volume(m_new, h_new), self.volume) / self.area
            contact = self.area + self.perimeter * depth  # m²
            rate = np.where(
                self._cooled & (m_new > _M_EPS),
                self.surface_h * contact / (1000.0 * CP_KJ_KG_K * np.maximum(m_new, _M_EPS)),
                0.0,
            )  # 1/s
            kept = h_new * np.exp(-rate * dt)
            tot["wall_loss_kj"] += float((h_new - kept).sum())
            h_new = kept
        self.m, self.h, self.s = m_new, h_new, s_new
        self.time_s += dt
        self.substeps += 1
        return dt

    def advance(self, dt_s: float) -> None:
        """Advance the model by ``dt_s`` seconds (sub-stepped as needed); updates :meth:`newly_untenable`."""
        if not (isinstance(dt_s, int | float) and math.isfinite(dt_s) and dt_s >= 0):
            raise InputError(
                self.source, f"dt_s must be a finite number ≥ 0, got {dt_s!r}", element="advance"
            )
        self._untenable_before = self.untenable
        end = self.time_s + float(dt_s)
        while end - self.time_s > 1e-12:
            self._substep(end - self.time_s)
            now = self.untenable
            first = now & np.isnan(self.untenable_since_s)
            self.untenable_since_s[first] = self.time_s
        self.time_s = end
        self._untenable_now = self.untenable


def _touching_pairs(spaces: pd.DataFrame) -> list[tuple[str, str, float]]:
    """Pairs of spaces on one storey whose footprints touch (gap ≤ :data:`OPEN_GAP_M`), with the shared edge
    length (m) when it is at least :data:`MIN_OPEN_WIDTH_M`."""
    geoms = np.array(list(spaces["footprint"]), dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=OPEN_GAP_M)
    out = []
    storeys = spaces["storey"].to_numpy()
    guids = spaces["guid"].astype(str).to_numpy()
    for i, j in zip(left, right, strict=True):
        if i >= j or storeys[i] != storeys[j]:
            continue
        shared = geoms[i].boundary.intersection(geoms[j].buffer(OPEN_GAP_M, join_style="mitre"))
        width = float(shared.length) if not shared.is_empty else 0.0
        # the buffered neighbour also catches the short perpendicular edges at the ends of the shared edge
        width = max(0.0, width - 2 * OPEN_GAP_M)
        if width >= MIN_OPEN_WIDTH_M:
            out.append((guids[i], guids[j], width))
    return out


def stair_spaces(building: Any, *, spaces: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Map each stair of ``building`` to the space at its foot and the space at its head.

    On each of the stair's two storeys, the candidates are the spaces whose footprint intersects the stair's
    footprint (grown by 0.5 m); the one nearest the stair's end point on that storey (its ``bottom`` or ``top``)
    wins, ties going to the larger overlap. Returns one dict per stair: ``guid, name, lower, upper`` (space
    GUIDs or ``None``) and ``area_m2`` (the stair footprint area, the vent area).
    """
    sp = building.spaces if spaces is None else spaces
    sp = sp[sp["footprint"].map(lambda g: g is not None and not g.is_empty)]
    elev = dict(zip(building.storeys["guid"], building.storeys["elevation_m"], strict=True))
    out = []
    for _, st in building.stairs.iterrows():
        fp = st.footprint
        entry: dict[str, Any] = dict(guid=st.guid, name=st["name"], lower=None, upper=None, area_m2=math.nan)
        if fp is None or fp.is_empty:
            out.append(entry)
            continue
        entry["area_m2"] = float(fp.area)
        lo_st, hi_st = st.from_storey, st.to_storey
        lo_pt, hi_pt = st.bottom, st.top
        if elev.get(lo_st, 0.0) > elev.get(hi_st, 0.0):
            lo_st, hi_st, lo_pt, hi_pt = hi_st, lo_st, hi_pt, lo_pt
        grown = fp.buffer(0.5)
        for key, storey, pt in (("lower", lo_st, lo_pt), ("upper", hi_st, hi_pt)):
            cand = sp[(sp["storey"] == storey) & sp["footprint"].map(grown.intersects)]
            if cand.empty:
                continue
            ref = Point(pt[0], pt[1]) if pt is not None else fp.centroid
            dist = cand["footprint"].map(lambda g, ref=ref: round(g.distance(ref), 2)).to_numpy()
            overlap = cand["footprint"].map(lambda g, fp=fp: g.intersection(fp).area).to_numpy()
            best = np.lexsort((-overlap, dist))[0]
            entry[key] = str(cand["guid"].iloc[best])
        out.append(entry)
    return out


def locate_space(
    building: Any,
    *,
    space: str | None = None,
    storey: str | None = None,
    position: Sequence[float] | None = None,
    source: Any = None,
) -> str:
    """The GUID of the space a fire (or any event) is in: by ``space`` (GUID or name), or the space whose
    footprint contains ``position`` (x, y[, z], metres, local frame; on ``storey`` or the storey whose elevation
    is nearest below z), or, with ``storey`` alone, the largest space on that storey.

    Raises :class:`InputError` naming the space, storey or position when nothing matches.
    """
    src = source or getattr(building, "source", "building")
    sp = building.spaces
    if space is not None:
        hit = sp[sp["guid"] == space]
        if hit.empty:
            hit = sp[(sp["name"] == space) | (sp["long_name"] == space)]
        if storey is not None and len(hit) > 1:
            st = building.storey(storey)["guid"]
            hit = hit[hit["storey"] == st]
        if hit.empty:
            raise InputError(
                src, f"no space named {space!r}; spaces are {sp['name'].tolist()[:20]}", element=space
            )
        if len(hit) > 1:
            raise InputError(
                src,
                f"{len(hit)} spaces are named {space!r}; use a GUID of {hit['guid'].tolist()}",
                element=space,
            )
        return str(hit["guid"].iloc[0])
    cand = sp[sp["footprint"].map(lambda g: g is not None and not g.is_empty)]
    if storey is not None:
        try:
            cand = cand[cand["storey"] == building.storey(storey)["guid"]]
        except KeyError as exc:
            raise InputError(src, str(exc.args[0]), element=storey) from None
    if position is not None:
        p = [float(v) for v in position]
        if len(p) >= 3 and storey is None:
            zs = building.storeys["elevation_m"].to_numpy()
            below = np.flatnonzero(zs <= p[2] + 0.5)
            if len(below):
                cand = cand[cand["storey"] == building.storeys["guid"].iloc[int(below[-1])]]
        pt = Point(p[0], p[1])
        inside = cand[cand["footprint"].map(lambda g: g.covers(pt))]
        if inside.empty:
            raise InputError(src, f"no space contains the position {tuple(p)}", element="position")
        return str(inside["guid"].iloc[0])
    if storey is not None and not cand.empty:
        best = cand["footprint"].map(lambda g: g.area).to_numpy().argmax()
        log.info("%s: fire on storey %s placed in its largest space %s", src, storey, cand["name"].iloc[best])
        return str(cand["guid"].iloc[best])
    raise InputError(src, "needs a space, a storey with spaces, or a position", element="fire")
