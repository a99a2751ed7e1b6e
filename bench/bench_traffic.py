"""Traffic core (twin.sim.traffic_core.TrafficSim) against SUMO on the same network and routes; and a town-wide day.

Run from the repository root: ``python -m bench.bench_traffic`` (``--quick``: one run per case, a smaller town).

1. grid10 (``$TWIN_DATA/traffic/grid10.net.xml`` + ``grid10.rou.xml``: a 10 x 10 signalised grid, 2 lanes each way,
   10,000 routed vehicles departing over an hour) at 1 s and 0.5 s steps, lane changing on in both (SUMO: its
   defaults, Krauss car following and LC2013 lane changing, seed 42; twin: its defaults, IDM and MOBIL + strategic
   changes, seed 42). Each runs until every vehicle has arrived.
   Rate: vehicle-steps per second = vehicle-steps / wall time of the simulation loop, loading excluded. SUMO: its own
   ``--statistic-output`` performance figures (``clockDuration``, the wall time of the loop; ``vehicleUpdatesPerSecond``
   = vehicle-steps / clockDuration; it reads the route file incrementally during the loop, as it always does). twin:
   the time spent in ``TrafficSim.step`` (one call per 50 steps), vehicle-steps = the sum over vehicles of the steps
   they were on the network ((arrival - depart) / dt, SUMO's count). twin at 1 and 2 threads
   (``twin.spatial.set_num_threads``), best of 3 runs (the machine may be shared); SUMO single-threaded, one run.
   Required: twin >= 10x SUMO's vehicle-steps per second at 1 and at 2 threads, for both step lengths (issue 4).
   Agreement: mean travel time (tripinfo ``duration``: arrival - actual depart) and mean time loss (``timeLoss``) of
   both, over all vehicles; required within 10 % of SUMO's, every vehicle arriving and no collision in twin.
2. Town: 100,000 random trips over a day on the Bad Hersfeld network (``$TWIN_DATA/roads/
   BadHersfeld_osm_edited.net.xml.gz``, SUMO net from OSM): origins and destinations drawn uniformly over the edges
   passenger cars may use, at least 500 m apart (straight line), routed by free-flow time
   (``twin.sim.demand.random_trips``), departures following DAY_PROFILE (hourly shares of a weekday's traffic with a
   morning and an evening peak). Static free-flow routes overload the arterials in the peaks (twin and SUMO both
   jam from about 7 h on and never recover), so, as in practice, vehicles reroute by the measured travel times every
   TOWN_REROUTE_S (``TrafficModel(reroute_every_s=...)``; those about to depart too; SUMO: its rerouting device at
   the same period). twin on 2 threads at 1 s steps until everyone arrived or the day + 2 h are over, or gridlock
   (GRIDLOCK_VEHICLES vehicles standing still for over GRIDLOCK_S). Required: every trip arrives, no gridlock, no
   collision, at most TELEPORT_SHARE of the vehicles teleported (both twin and SUMO teleport a vehicle that has
   stood at the head of its lane for 300 s).
   Printed: set-up time, wall time of the run (all of it: the core, rerouting in Python, recording; the core's share
   separately), vehicle-steps per second, peak resident memory (``ru_maxrss``; the town part runs in its own process
   so the figure is its own), arrivals, teleports, collisions; on gridlock the places where vehicles have stood the
   longest. ``--town-sumo`` also runs SUMO on the same routes (same depart times, lanes and speed factors, rerouting
   at the same period), limited to ``--sumo-limit`` seconds of wall time, and prints the ratios of the vehicle-steps
   per second and of the teleports.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS worker threads would compete with the core's
# The core runs ~6 short parallel loops per step. With OpenMP's default (active) waiting, a thread that reaches the
# barrier spins on the CPU the other, descheduled, thread needs: on a shared 2-core machine 2 threads then run grid10
# 20-50x slower than 1. Passive waiting (sleep at the barrier) avoids that. It only takes effect if the OpenMP runtime
# is not loaded yet (run this benchmark on its own: python -m bench.bench_traffic); set it before, to choose.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import ROOT, data_dir  # noqa: E402
from twin.city.frame import Frame  # noqa: E402
from twin.city.sumo import load_sumo_net  # noqa: E402
from twin.sim.demand import Demand, random_trips, read_sumo_routes  # noqa: E402
from twin.sim.traffic import TrafficModel  # noqa: E402
from twin.sim.traffic_core import ARRIVED, RUNNING, TrafficSim  # noqa: E402
from twin.sim.traffic_net import TrafficNetwork, compile_network  # noqa: E402
from twin.spatial import get_num_threads, set_num_threads  # noqa: E402

REQUIRED_RATIO = 10.0
AGREEMENT = 0.10
SEED = 42
CHUNK = 50  # core steps per TrafficSim.step call
DAY_PROFILE = (
    0.8, 0.5, 0.4, 0.4, 0.7, 1.8, 4.5, 7.5, 6.5, 5.2, 5.0, 5.3,
    5.8, 5.8, 6.0, 7.0, 7.8, 8.0, 6.5, 4.8, 3.5, 2.8, 2.0, 1.2,
)  # fmt: skip
"""Share of a weekday's car trips starting in each hour (per cent; 7-8 h 7.5 %, 17-18 h 8 %): the usual urban
weekday curve of German traffic counts (peak hours 7-9 % of the daily volume, night below 1 %)."""
TOWN_TRIPS, TOWN_TRIPS_QUICK = 100_000, 20_000
GRIDLOCK_S = 1800.0
GRIDLOCK_VEHICLES = 1000
TELEPORT_SHARE = 0.02
TOWN_REROUTE_S = 300.0


# ----------------------------------------------------------------------------------------------------------------
# SUMO.


def sumo_binary() -> Path | None:
    """The ``sumo`` executable of the eclipse-sumo package (bench extra), or None."""
    try:
        import sumo
    except ImportError:
        return None
    exe = Path(sumo.SUMO_HOME) / "bin" / ("sumo.exe" if os.name == "nt" else "sumo")
    return exe if exe.is_file() else None


def sumo_version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else "SUMO"


def run_sumo(
    exe: Path, net: Path, routes: Path, dt: float, *, timeout_s: float | None = None, reroute_s: float = 0.0
) -> dict:
    """Run SUMO until every vehicle has left (or for ``timeout_s`` of wall time at most) and read its statistic
    output: wall time of the loop, vehicle-steps, trip means, teleports, collisions. ``reroute_s`` > 0: every vehicle
    reroutes by the current travel times at that period (SUMO's rerouting device)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.xml"
        summary = Path(tmp) / "summary.xml"
        cmd = [str(exe), "-n", str(net), "-r", str(routes), "--step-length", f"{dt:g}", "--seed", str(SEED),
               "--no-step-log", "--no-warnings", "--duration-log.statistics",
               "--statistic-output", str(stats), "--summary-output", str(summary)]  # fmt: skip
        if reroute_s > 0:
            cmd += ["--device.rerouting.probability", "1", "--device.rerouting.period", f"{reroute_s:g}"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return {"timeout": True, "wall_total": time.perf_counter() - t0, **_last_summary_step(summary)}
        if proc.returncode != 0 or not stats.is_file():
            raise RuntimeError(f"SUMO failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        root = ET.parse(stats).getroot()
    perf = root.find("performance")
    trips = root.find("vehicleTripStatistics")
    veh = root.find("vehicles")
    if perf is None or trips is None or veh is None:
        raise RuntimeError(f"SUMO's statistic output lacks performance, vehicles or trip figures: {stats}")
    wall = float(perf.get("clockDuration", "nan"))
    ups = float(perf.get("vehicleUpdatesPerSecond", "nan"))
    return {
        "timeout": False,
        "wall": wall,
        "wall_total": time.perf_counter() - t0,
        "vehicle_steps": ups * wall,
        "rate": ups,
        "end": float(perf.get("end", "nan")),
        "arrived": int(trips.get("count", "0")),
        "inserted": int(veh.get("inserted", "0")),
        "travel_time": float(trips.get("duration", "nan")),
        "time_loss": float(trips.get("timeLoss", "nan")),
        "teleports": int(root.find("teleports").get("total", "0")),  # type: ignore[union-attr]
        "collisions": int(root.find("safety").get("collisions", "0")),  # type: ignore[union-attr]
    }


def _last_summary_step(path: Path) -> dict:
    """The last complete ``<step>`` of a summary file cut short: time, arrived, running, teleports."""
    last = None
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            if line.lstrip().startswith("<step ") and line.rstrip().endswith("/>"):
                last = line
    if last is None:
        return {}
    el = ET.fromstring(last)
    return {k: float(el.get(k, "nan")) for k in ("time", "arrived", "running", "teleports", "halting")}


def write_sumo_routes(demand: Demand, network: TrafficNetwork, path: Path) -> None:
    """The demand as a SUMO route file: each vehicle with its depart time, depart lane, speed factor and route."""
    ids = network.edge_ids
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("<routes>\n")
        for i in range(len(demand)):
            edges = " ".join(ids[e] for e in demand.route(i))
            lane = int(demand.depart_lane[i])
            fh.write(
                f'  <vehicle id="{demand.ids[i]}" depart="{demand.depart_s[i]:.2f}" '
                f'departLane="{lane if lane >= 0 else "best"}" speedFactor="{demand.speed_factor[i]:.4f}">'
                f'<route edges="{edges}"/></vehicle>\n'
            )
        fh.write("</routes>\n")


# ----------------------------------------------------------------------------------------------------------------
# twin.


def new_sim(network: TrafficNetwork, demand: Demand, dt: float) -> TrafficSim:
    sim = TrafficSim(network, dt=dt, seed=SEED)
    first = sim.add_vehicle_types(**demand.vtypes.arrays())
    arrays = demand.arrays()
    arrays["type"] = np.asarray(arrays["type"], dtype=np.int32) + first
    sim.add_vehicles(**arrays)
    return sim


def vehicle_steps(sim: TrafficSim) -> float:
    """Steps the vehicles spent on the network so far (arrived: (arrival - depart) / dt; running: (now - depart))."""
    dep = sim.depart_time
    end = np.where(sim.state == ARRIVED, sim.arrival_time, sim.time)
    on = (sim.state == ARRIVED) | (sim.state == RUNNING)
    return float(np.sum(end[on] - dep[on]) / sim.dt)


def twin_grid_run(
    network: TrafficNetwork, demand: Demand, dt: float, threads: int, limit_s: float = 7200.0
) -> dict:
    """One run until every vehicle arrived: wall time in ``step``, vehicle-steps, trip means, collisions."""
    set_num_threads(threads)
    sim = new_sim(network, demand, dt)
    n = len(demand)
    wall = 0.0
    while sim.counts()["arrived"] < n and sim.time < limit_s:
        t0 = time.perf_counter()
        sim.step(CHUNK)
        wall += time.perf_counter() - t0
    done = sim.state == ARRIVED
    steps = vehicle_steps(sim)
    return {
        "wall": wall,
        "vehicle_steps": steps,
        "rate": steps / wall,
        "arrived": int(done.sum()),
        "travel_time": float(np.mean(sim.arrival_time[done] - sim.depart_time[done])),
        "time_loss": float(np.mean(sim.time_loss[done])),
        "collisions": int(sim.collisions),
        "end": float(sim.time),
    }


# ----------------------------------------------------------------------------------------------------------------
# Part 1: grid10.


def grid_part(exe: Path, repeats: int) -> bool:
    net_path = data_dir() / "traffic" / "grid10.net.xml"
    rou_path = data_dir() / "traffic" / "grid10.rou.xml"
    t0 = time.perf_counter()
    network = compile_network(load_sumo_net(net_path, frame=Frame()))
    demand = read_sumo_routes(rou_path, network, seed=SEED)
    print(f"grid10: {network.n_edges} edges, {network.n_lanes} lanes, {network.n_links} links, {network.n_tls} signals, "
          f"{len(demand):,} vehicles (twin loading {time.perf_counter() - t0:.1f} s, not timed)")  # fmt: skip
    ok = True
    rows = []
    for dt in (1.0, 0.5):
        s = run_sumo(exe, net_path, rou_path, dt)
        twin = {th: min((twin_grid_run(network, demand, dt, th) for _ in range(repeats)), key=lambda r: r["wall"])
                for th in (1, 2)}  # fmt: skip
        rows.append((dt, s, twin))
        print(f"\ndt {dt:g} s: SUMO {s['arrived']:,} arrived by {s['end']:.0f} s, {s['teleports']} teleports, "
              f"{s['collisions']} collisions; twin {twin[1]['arrived']:,} arrived by {twin[1]['end']:.0f} s, "
              f"{twin[1]['collisions']} collisions")  # fmt: skip
        print(f"{'':<10}{'wall s':>9}{'veh-steps':>12}{'veh-steps/s':>13}{'x SUMO':>8}")
        print(f"{'SUMO':<10}{s['wall']:>9.2f}{s['vehicle_steps']:>12,.0f}{s['rate']:>13.3e}{'':>8}")
        for th, r in twin.items():
            print(f"{'twin ' + str(th) + 'T':<10}{r['wall']:>9.2f}{r['vehicle_steps']:>12,.0f}{r['rate']:>13.3e}"
                  f"{r['rate'] / s['rate']:>8.1f}")  # fmt: skip
        print(f"{'':<10}{'travel time s':>14}{'time loss s':>13}")
        print(f"{'SUMO':<10}{s['travel_time']:>14.1f}{s['time_loss']:>13.1f}")
        t = twin[1]
        dtt = t["travel_time"] / s["travel_time"] - 1
        dtl = t["time_loss"] / s["time_loss"] - 1
        print(
            f"{'twin':<10}{t['travel_time']:>14.1f}{t['time_loss']:>13.1f}   ({dtt:+.1%}, {dtl:+.1%})",
            flush=True,
        )
    print()
    for dt, s, twin in rows:
        r1, r2 = twin[1]["rate"] / s["rate"], twin[2]["rate"] / s["rate"]
        good = r1 >= REQUIRED_RATIO and r2 >= REQUIRED_RATIO
        ok &= good
        print(f"required: grid10 dt {dt:g} s: vehicle-steps per second >= {REQUIRED_RATIO:g}x SUMO at 1 and 2 threads: "
              f"{r1:.1f}x, {r2:.1f}x {'ok' if good else 'FAIL'}")  # fmt: skip
    for dt, s, twin in rows:
        t = twin[1]
        dtt = t["travel_time"] / s["travel_time"] - 1
        dtl = t["time_loss"] / s["time_loss"] - 1
        n = len(demand)
        good = abs(dtt) <= AGREEMENT and abs(dtl) <= AGREEMENT and t["arrived"] == n and t["collisions"] == 0
        ok &= good
        print(f"required: grid10 dt {dt:g} s: mean travel time and time loss within {AGREEMENT:.0%} of SUMO's "
              f"({dtt:+.1%}, {dtl:+.1%}), all {n:,} arrive ({t['arrived']:,}), no collision ({t['collisions']}): "
              f"{'ok' if good else 'FAIL'}")  # fmt: skip
    return ok


# ----------------------------------------------------------------------------------------------------------------
# Part 2: the town.


def rss_mb() -> float:
    """Current resident memory of this process, MB (Linux; nan elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return math.nan
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def describe(sim: TrafficSim, network: TrafficNetwork, demand: Demand, i: int) -> str:
    """Where vehicle ``i`` is and where its route goes next."""
    lane, link, pos = int(sim.lane[i]), int(sim.link[i]), float(sim.pos[i])
    if lane >= 0:
        where = f"on lane {network.lane_ids[lane]} at {pos:.1f} of {network.lane_length[lane]:.1f} m"
    else:
        a, b = network.lane_ids[network.link_from_lane[link]], network.lane_ids[network.link_to_lane[link]]
        j = network.junction_ids[network.link_junction[link]]
        where = f"in junction {j} on link {a} -> {b} at {pos:.1f} of {network.link_length[link]:.1f} m"
    k = int(sim.route_index[i])
    nxt = " ".join(network.edge_ids[e] for e in demand.route(i)[k : k + 3])
    return f"vehicle {demand.ids[i]} {where}, route ahead: {nxt}"


def town_part(trips: int, threads: int, with_sumo: bool, sumo_limit: float) -> bool:
    set_num_threads(threads)
    net_path = data_dir() / "roads" / "BadHersfeld_osm_edited.net.xml.gz"
    t0 = time.perf_counter()
    network = compile_network(load_sumo_net(net_path, frame=Frame()))
    t_net = time.perf_counter() - t0
    t0 = time.perf_counter()
    demand = random_trips(
        network, trips, (0.0, 86400.0), SEED, min_distance_m=500.0, depart_profile=DAY_PROFILE
    )
    t_dem = time.perf_counter() - t0
    length = np.add.reduceat(network.edge_length[demand.route_edges], demand.route_offsets[:-1])
    peak_hour = max(DAY_PROFILE) / sum(DAY_PROFILE) * trips
    print(f"town: Bad Hersfeld, {network.n_edges:,} edges, {network.n_lanes:,} lanes, {network.n_links:,} links, "
          f"{network.n_tls} signals (loaded in {t_net:.1f} s); {trips:,} random trips over a day, >= 500 m apart, "
          f"mean route {length.mean() / 1000:.1f} km, peak hour {peak_hour:,.0f} departures (routed in {t_dem:.1f} s); "
          f"rerouting by measured travel times every {TOWN_REROUTE_S:g} s")  # fmt: skip
    model = TrafficModel(
        network,
        demand,
        seed=SEED,
        record_every_s=60.0,
        edge_interval_s=TOWN_REROUTE_S,
        reroute_every_s=TOWN_REROUTE_S,
        record_fcd=False,
    )
    sim = model.core
    core_wall = 0.0
    core_step = sim.step

    def timed_step(n: int = 1) -> None:
        nonlocal core_wall
        t = time.perf_counter()
        core_step(n)
        core_wall += time.perf_counter() - t

    sim.step = timed_step  # type: ignore[method-assign]
    rss_loaded = rss_mb()
    limit = 86400.0 + 7200.0
    n = len(demand)
    last_lane, last_link, last_pos = sim.lane.copy(), sim.link.copy(), sim.pos.copy()
    still_since = np.full(n, np.nan)
    wall, gridlock, report_every, next_report = 0.0, False, 7200.0, 7200.0
    check_every, next_check = 300.0, 300.0
    while model.running and sim.time < limit:
        t0 = time.perf_counter()
        model.step()
        wall += time.perf_counter() - t0
        if sim.time + 1e-9 < next_check:
            continue
        next_check += check_every
        moved = (sim.lane != last_lane) | (sim.link != last_link) | (np.abs(sim.pos - last_pos) > 0.1)
        moved |= sim.state != RUNNING
        still_since[moved] = np.nan
        fresh = ~moved & np.isnan(still_since)
        still_since[fresh] = sim.time - check_every
        last_lane, last_link, last_pos = sim.lane.copy(), sim.link.copy(), sim.pos.copy()
        stuck = int(np.count_nonzero(sim.time - still_since > GRIDLOCK_S))
        c = sim.counts()
        if sim.time >= next_report:
            next_report += report_every
            print(f"  {sim.time / 3600:5.1f} h: {c['running']:6,} running, {c['arrived']:7,} arrived, "
                  f"{c['pending']:7,} not yet in, {stuck:6,} standing > {GRIDLOCK_S:.0f} s, {sim.teleports:6,} "
                  f"teleports   [{wall:6.1f} s wall]", flush=True)  # fmt: skip
        if stuck >= GRIDLOCK_VEHICLES:
            gridlock = True
            break
    c = sim.counts()
    steps = vehicle_steps(sim)
    print(f"twin ({threads} threads, dt 1 s): {sim.time / 3600:.1f} h simulated in {wall:.1f} s wall ({core_wall:.1f} s "
          f"in the core, the rest rerouting and recording), {steps:,.0f} vehicle-steps = {steps / wall:.3e} "
          f"vehicle-steps/s ({steps / max(core_wall, 1e-9):.3e} in the core); arrived {c['arrived']:,} of {n:,} "
          f"({c['running']:,} running, {c['pending']:,} not yet in), {sim.teleports:,} teleports, {model.reroutes:,} "
          f"reroutes, {sim.collisions} collisions; resident memory {rss_loaded:.0f} MB after loading, peak "
          f"{peak_rss_mb():.0f} MB")  # fmt: skip
    done = sim.state == ARRIVED
    if done.any():
        print(f"  arrived trips: mean travel time {np.mean(sim.arrival_time[done] - sim.depart_time[done]):.0f} s, "
              f"mean time loss {np.mean(sim.time_loss[done]):.0f} s")  # fmt: skip
    if gridlock:
        standing = np.flatnonzero(np.isfinite(still_since))
        order = standing[np.argsort(still_since[standing], kind="stable")]
        print(f"  GRIDLOCK: {GRIDLOCK_VEHICLES:,}+ vehicles standing still for over {GRIDLOCK_S:.0f} s at "
              f"{sim.time / 3600:.1f} h; standing the longest:")  # fmt: skip
        for i in order[:5]:
            print(f"    since {still_since[i] / 3600:.2f} h: {describe(sim, network, demand, int(i))}")
    ok = not gridlock and c["arrived"] == n and sim.collisions == 0 and sim.teleports <= TELEPORT_SHARE * n
    print(f"required: town run: all {n:,} trips arrive ({c['arrived']:,}), no gridlock, teleports <= "
          f"{TELEPORT_SHARE:.1%} ({sim.teleports:,}), no collision ({sim.collisions}): {'ok' if ok else 'FAIL'}")  # fmt: skip
    if with_sumo:
        exe = sumo_binary()
        if exe is None:
            print("SUMO is not installed: no SUMO town run")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                rou = Path(tmp) / "town.rou.xml"
                write_sumo_routes(demand, network, rou)
                s = run_sumo(exe, net_path, rou, 1.0, timeout_s=sumo_limit, reroute_s=TOWN_REROUTE_S)
            if s["timeout"]:
                print(f"SUMO (rerouting every {TOWN_REROUTE_S:g} s): stopped after {sumo_limit:.0f} s wall at t = "
                      f"{s.get('time', math.nan) / 3600:.1f} h: {s.get('arrived', math.nan):,.0f} arrived, "
                      f"{s.get('running', math.nan):,.0f} running ({s.get('halting', math.nan):,.0f} halting), "
                      f"{s.get('teleports', math.nan):,.0f} teleports")  # fmt: skip
            else:
                print(f"SUMO (rerouting every {TOWN_REROUTE_S:g} s): {s['end'] / 3600:.1f} h simulated in "
                      f"{s['wall']:.1f} s wall, {s['rate']:.3e} vehicle-steps/s; arrived {s['arrived']:,} of {n:,}, "
                      f"{s['teleports']:,} teleports; mean travel time {s['travel_time']:.0f} s, time loss "
                      f"{s['time_loss']:.0f} s")  # fmt: skip
                if wall > 0 and not gridlock:
                    print(f"twin / SUMO: vehicle-steps per second x{steps / wall / s['rate']:.1f}, teleports "
                          f"x{sim.teleports / max(s['teleports'], 1):.1f}")  # fmt: skip
    return ok


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"one run per case; {TOWN_TRIPS_QUICK:,} town trips"
    )
    parser.add_argument("--part", choices=("all", "grid", "town"), default="all")
    parser.add_argument(
        "--town-trips", type=int, default=None, help="trips of the town day (default 100,000)"
    )
    parser.add_argument("--town-threads", type=int, default=2)
    parser.add_argument("--town-sumo", action="store_true", help="also run SUMO on the town's trips")
    parser.add_argument(
        "--sumo-limit", type=float, default=600.0, help="wall seconds allowed to SUMO's town run"
    )
    args = parser.parse_args(argv)
    threads_before = get_num_threads()
    t_start = time.perf_counter()
    ok = True
    try:
        if args.part in ("all", "grid"):
            exe = sumo_binary()
            if exe is None:
                print("SUMO is not installed: no peer, no ratios (pip install eclipse-sumo)")
                return 1
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
            print(f"{sumo_version(exe)}; {os.cpu_count()} CPUs, load average {load:.1f}, OMP_WAIT_POLICY="
                  f"{os.environ.get('OMP_WAIT_POLICY', '')}; vehicle-steps per second (higher is better)")  # fmt: skip
            ok &= grid_part(exe, 1 if args.quick else 3)
        if args.part == "town":
            trips = args.town_trips or (TOWN_TRIPS_QUICK if args.quick else TOWN_TRIPS)
            ok &= town_part(trips, args.town_threads, args.town_sumo, args.sumo_limit)
        elif args.part == "all":
            # its own process, so that the peak memory printed is the town run's
            print(flush=True)
            cmd = [sys.executable, "-m", "bench.bench_traffic", "--part", "town",
                   "--town-threads", str(args.town_threads), "--sumo-limit", str(args.sumo_limit)]  # fmt: skip
            cmd += ["--quick"] if args.quick else []
            cmd += ["--town-trips", str(args.town_trips)] if args.town_trips else []
            cmd += ["--town-sumo"] if args.town_sumo else []
            ok &= subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0
    finally:
        set_num_threads(threads_before)
    print(
        f"\n{'all requirements met' if ok else 'some requirements FAILED'} ({time.perf_counter() - t_start:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
