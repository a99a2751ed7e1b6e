"""The ``twin`` command: ``info``, ``convert``, ``run``, ``compare``, ``sweep``, ``view``, ``drill`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twin.errors import TwinError

log = logging.getLogger(__name__)


def _parse_place(text: str) -> dict[str, float]:
    """``"x,y[,z[,rotation_deg[,scale]]]"`` → placement mapping; non-numbers are a clear error."""
    keys = ("x", "y", "z", "rotation_deg", "scale")
    parts = [p.strip() for p in text.split(",")]
    if not 2 <= len(parts) <= len(keys):
        raise argparse.ArgumentTypeError(f"--place must be x,y[,z[,rotation_deg[,scale]]], got {text!r}")
    out: dict[str, float] = {}
    for key, part in zip(keys, parts, strict=False):
        try:
            out[key] = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--place {key} must be a number, got {part!r}") from None
    return out


def _load_city(files: Sequence[str], *, crs: str | None, place: dict[str, float] | None) -> Any:
    from twin.city import City, detect_format

    city = City(crs)  # checks --crs before any file is read
    if len(files) == 1 and detect_format(files[0]) == "bundle":
        return City.load(files[0])
    for f in files:
        city.add_file(f, placement=place)
    return city


def _format_value(value: Any, width: int = 100) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        items = [_format_named(v) if isinstance(v, dict) and "name" in v else _format_value(v) for v in value]
        text = ", ".join(items)
        return text if len(text) <= width else text[: width - 3] + "..."
    if isinstance(value, dict):
        text = ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
        return text if len(text) <= width else text[: width - 3] + "..."
    return str(value)


def _format_named(item: dict[str, Any]) -> str:
    """A named record (a storey…) as its name, with its elevation when it has one."""
    z = item.get("elevation_m")
    return (
        f"{item['name']} ({_format_value(float(z))} m)" if isinstance(z, int | float) else str(item["name"])
    )


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :meth:`City.summary`."""
    lines = [f"CRS     {summary['crs'] or '(none: local coordinates)'}"]
    if summary.get("crs"):
        lines.append(f"origin  {_format_value(summary['origin'])}")
    if summary.get("bounds"):
        (x0, y0, z0), (x1, y1, z1) = summary["bounds"]
        lines.append(f"extent  {x1 - x0:,.1f} m × {y1 - y0:,.1f} m, z {z0:,.1f} … {z1:,.1f} m")
    for layer in summary["layers"]:
        lines.append("")
        lines.append(f"{layer['kind']} '{layer['id']}'  ({Path(layer['source']).name})")
        for key, value in layer.items():
            if key in ("kind", "id", "source"):
                continue
            lines.append(f"  {key:<22} {_format_value(value)}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    city = _load_city(args.files, crs=args.crs, place=args.place)
    summary = city.summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_summary(summary))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    city = _load_city(args.files, crs=args.crs, place=args.place)
    out = city.save(args.out)
    print(f"wrote bundle {out} ({len(city.layers)} layers) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from twin.demo import run_demo

    result = run_demo(Path(args.out))
    print(format_summary(result["summary"]))
    r = result["results"]
    crowd = r["crowd"]
    lines = [
        f"\nheadline: {r['scenario']} ({r['simulated_s']:.0f} s simulated in {r['wall_time_s']:.0f} s)",
        f"  crowd: {crowd['evacuated']}/{crowd['agents']} evacuated, evacuation time {crowd['evacuation_time_s']} s, "
        f"t90 {crowd['t90_s']} s",
    ]
    if "fire" in r:
        lines.append(
            f"  fire: {r['fire']['untenable_spaces']} spaces untenable, first at {r['fire']['first_untenable_s']} s"
        )
    if "response" in r:
        resp = r["response"]
        lines.append(
            f"  response: {resp['arrived']}/{resp['dispatches']} units on scene, mean response "
            f"{resp['mean_response_time_s']:.0f} s"
            if resp["mean_response_time_s"] is not None
            else f"  response: {resp['dispatches']} units dispatched, none on scene yet"
        )
    if "flood" in r:
        fl = r["flood"]
        lines.append(
            f"  flood: {fl['volume_in_m3']:.0f} m³ leaked, max depth {fl['max_depth_m']:.2f} m, "
            f"{len(fl['roads_closed_vehicles'])} road edges closed to cars"
        )
    if "traffic" in r:
        tr = r["traffic"]
        lines.append(f"  traffic: {tr['arrived']}/{tr['vehicles']} vehicles arrived")
    print("\n".join(lines) + "\n")
    for name, path in result["outputs"].items():
        print(f"{name:<10} {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from twin.scenario.runner import default_out_dir, run_scenario

    out = Path(args.out) if args.out else default_out_dir(args.scenario)
    summary = run_scenario(args.scenario, out, progress=not args.quiet)
    crowd = summary.get("crowd")
    if crowd:
        evac = crowd["evacuation_time_s"]
        print(
            f"{summary['scenario']}: {crowd['evacuated']}/{crowd['agents']} evacuated"
            + (
                f" in {evac:.1f} s"
                if evac is not None
                else f" ({crowd['agents'] - crowd['evacuated']} remain)"
            )
            + (f", t90 {crowd['t90_s']:.1f} s" if crowd["t90_s"] is not None else "")
        )
        for note in crowd.get("warnings", []):
            print(f"note: {note}", file=sys.stderr)
    traffic = summary.get("traffic")
    if traffic:
        tt, delay = traffic["mean_travel_time_s"], traffic["mean_delay_s"]
        print(
            f"{summary['scenario']}: {traffic['arrived']}/{traffic['vehicles']} vehicles arrived"
            + (f", mean travel time {tt:.1f} s, mean delay {delay:.1f} s" if tt is not None else "")
        )
    print(f"results in {out} (wall time {summary['wall_time_s']:.1f} s)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from twin.sweep.cli import sweep_command

    return sweep_command(args)


def _format_kpi(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".rstrip()


def cmd_compare(args: argparse.Namespace) -> int:
    from twin.scenario.compare import HEADLINE_KPIS, compare_results

    result = compare_results(args.base, args.variant, args.out)
    print(f"{result['base']['scenario']} → {result['variant']['scenario']}")
    for d in result["scenario_diff"]:
        was = "(absent)" if d["only_in"] == "variant" else _format_value(d["base"])
        now = "(absent)" if d["only_in"] == "base" else _format_value(d["variant"])
        print(f"  changed {d['path']}: {was} → {now}")
    for row in result["kpis"]:
        if row["kpi"] not in HEADLINE_KPIS or row["delta"] is None:
            continue
        delta = row["delta"]
        rel = f", {100 * row['relative_delta']:+.1f} %" if row["relative_delta"] is not None else ""
        verdict = f", {row['verdict']}" if row["verdict"] else ""
        print(
            f"  {row['kpi']}: {_format_kpi(row['base'], row['unit'])} → "
            f"{_format_kpi(row['variant'], row['unit'])} "
            f"({'+' if delta > 0 else ''}{_format_kpi(delta, row['unit'])}{rel}{verdict})"
        )
    print(f"report in {Path(args.out) / 'report.html'}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from twin.viewer.gl import has_display

    if args.web:
        from twin.viewer.web import serve_results

        serve_results(args.dir, port=args.port, open_browser=False)
        return 0
    if args.screenshot or args.movie:
        from twin.viewer.playback import open_results
        from twin.viewer.render import render_movie, render_still

        t0 = time.perf_counter()
        pb = open_results(args.dir, window_size=tuple(args.size))
        try:
            if args.screenshot:
                out = render_still(args.dir, args.screenshot, t_s=args.time, preset=args.preset, playback=pb)
                print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
            if args.movie:
                t1 = time.perf_counter()
                out = render_movie(
                    args.dir,
                    args.movie,
                    fps=args.fps,
                    speed=args.speed,
                    preset=args.preset,
                    playback=pb,
                    progress=True,
                )
                print(f"wrote {out} in {time.perf_counter() - t1:.1f} s")
        finally:
            pb.scene.close()
        return 0
    if not has_display():
        raise TwinError("no display: use --screenshot PNG, --movie MP4 or --web to view without one")
    from twin.viewer.playback import open_results

    pb = open_results(args.dir, window_size=tuple(args.size), off_screen=False)
    pb.scene.set_camera(args.preset)
    if args.time is not None:
        pb.set_time(args.time)
    pb.show()
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from twin.viewer.gl import has_display

    if args.web:
        from twin.viewer.web import serve_drill

        serve_drill(args.scenario, port=args.port, out_dir=args.out, open_browser=False)
        return 0
    if not has_display():
        raise TwinError("no display: use twin drill --web to run a drill without one")
    from twin.viewer.drill import Drill

    drill = Drill(args.scenario, off_screen=False)
    drill.show()
    out = Path(args.out) if args.out else Path("results") / f"drill-{drill.run.scenario.name}"
    drill.finish(out)
    print(f"drill results in {out}; replay with: twin run {out / 'drill_scenario.yaml'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin", description="twin: a City Information Modelling digital twin"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_source_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "files", nargs="+", help="IFC, DEM (.tif), EPANET/SWMM (.inp), OSM, SUMO .net.xml, CityJSON"
        )
        p.add_argument(
            "--crs", help="projected CRS of the city frame, e.g. EPSG:3067 (default: from the data)"
        )
        p.add_argument(
            "--place",
            type=_parse_place,
            help="x,y[,z[,rotation_deg[,scale]]] placement for sources without georeference",
        )

    p = sub.add_parser("info", help="summary of supported files (or a bundle)")
    add_source_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="load files into one city and write a bundle")
    add_source_options(p)
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("run", help="run a scenario and write its results folder")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="results folder (default: results/<scenario name>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="what-if comparison of two results folders (report and KPI deltas)")
    p.add_argument("base", help="results folder of the base run")
    p.add_argument("variant", help="results folder of the variant run")
    p.add_argument("--out", required=True, help="folder for report.html and comparison.json")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "sweep",
        help="run a parameter sweep (twin sweep SWEEP --out DIR), or report one (twin sweep report DIR)",
    )
    p.add_argument("sweep", metavar="SWEEP|report", help="sweep YAML file, or the word report")
    p.add_argument("dir", nargs="?", metavar="DIR", help="with report: the sweep's output folder")
    p.add_argument("--out", help="output folder (default: results/<sweep name>)")
    p.add_argument("--resume", action="store_true", help="run only the runs that are missing or failed")
    p.add_argument("--workers", type=int, help="worker processes (default: the sweep file's, else the CPUs)")
    p.add_argument("--executor", help="local, dask, dask://HOST:PORT, tcp://HOST:PORT or slurm")
    p.add_argument("--check", action="store_true", help="validate every variant scenario; run nothing")
    p.add_argument("--kpi", action="append", help="with report: a KPI column to show (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("view", help="play back a results folder in 3-D (or render a still/movie off-screen)")
    p.add_argument("dir", help="results folder written by twin run")
    p.add_argument("--screenshot", metavar="PNG", help="render one picture off-screen and exit")
    p.add_argument("--movie", metavar="MP4", help="render a movie off-screen and exit")
    p.add_argument("--time", type=float, help="simulated time to show, s (default: the middle of the run)")
    p.add_argument("--preset", default="overview", choices=["overview", "building", "street"], help="camera")
    p.add_argument("--fps", type=float, default=10.0, help="movie frames per second (default 10)")
    p.add_argument(
        "--speed", type=float, default=10.0, help="movie: simulated seconds per second (default 10)"
    )
    p.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("W", "H"), help="pixels")
    p.add_argument("--web", action="store_true", help="serve the viewer on localhost (trame)")
    p.add_argument("--port", type=int, default=8080, help="port of --web (default 8080)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("drill", help="run a scenario live and inject events by picking (drill mode)")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="results folder of the drill (default: results/drill-<name>)")
    p.add_argument("--web", action="store_true", help="serve the drill on localhost (trame)")
    p.add_argument("--port", type=int, default=8080, help="port of --web (default 8080)")
    p.set_defaults(func=cmd_drill)

    p = sub.add_parser(
        "demo",
        help="run the headline scenario on the demo city that comes with the install; write report and picture",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except TwinError as exc:
        print(f"twin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"twin {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
