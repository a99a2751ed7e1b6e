"""Sweep framework overhead: 1,000 short crowd runs (about 0.2 s each) on 2 local workers.

Prints the framework overhead ``(wall − Σ work / workers) / wall`` — the share of the sweep's wall time in which
the workers were not running scenarios (expansion, dispatch, process start, row files, catalogue) — and the peak
RSS of the coordinating process for a sweep of 100 runs and one of 1,000 (it must not grow with the number of
runs). Each sweep runs in a fresh coordinator process, so that its peak RSS is its own.

    python -m bench.bench_sweep [--runs 1000] [--workers 2]

Exit status 1 when the overhead is 5 % or more, or the coordinator's peak RSS grows by more than 10 % from 100 to
1,000 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "sweep"

SCENARIO = {
    "name": "bench-tiny",
    "seed": 1,
    "duration_s": 60,
    "city": {
        "areas": [
            {
                "id": "room",
                "walkable": "POLYGON ((0 0, 30 0, 30 30, 0 30, 0 0))",
                "exits": [
                    {"id": "door", "polygon": "POLYGON ((30 14.5, 31 14.5, 31 15.5, 30 15.5, 30 14.5))"}
                ],
            }
        ]
    },
    "crowd": {
        "model": "collision_free_speed",
        "dt_s": 0.05,
        "groups": [
            {
                "id": "occupants",
                "count": 10,
                "in": {"area": "room"},
                "speed_mps": {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.46, "max": 1.61},
                "premovement_s": {"dist": "uniform", "min": 0, "max": 2},
                "radius_m": 0.2,
            }
        ],
    },
    "outputs": {"trajectories_every_s": 0.5, "report": False},
}

CHILD = """
import json, sys
from twin.sweep import run_sweep
r = run_sweep(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), progress=False)
print(json.dumps({"total": r.total, "ok": r.ok, "failed": r.failed, "wall_s": r.wall_s, "work_s": r.work_s,
                  "workers": r.workers, "overhead": r.overhead, "rss_mib": r.coordinator_peak_rss_mib,
                  "startup_s": r.startup_s, "catalogue_s": r.catalogue_s}))
"""


def write_sweep(folder: Path, runs: int) -> Path:
    """A sweep of ``runs`` runs: 10 crowd sizes (6…15 agents) × ``runs / 10`` seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    sweep = {
        "name": f"bench-{runs}",
        "base": "tiny.yaml",
        "seeds": {"range": [1, runs // 10]},
        "parameters": {"crowd.groups[0].count": {"range": [6, 15]}},
    }
    path = folder / f"sweep_{runs}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
    return path


def run(runs: int, workers: int) -> dict:
    path = write_sweep(OUT, runs)
    out = OUT / f"out_{runs}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(out), str(workers)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the {runs}-run sweep failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    small = run(100, args.workers)
    big = run(args.runs, args.workers)
    for r in (small, big):
        print(
            f"{r['total']:>5} runs on {r['workers']} workers: wall {r['wall_s']:.1f} s, work {r['work_s']:.1f} s "
            f"({r['work_s'] / max(r['total'], 1):.3f} s per run), ok {r['ok']}, failed {r['failed']}; "
            f"framework overhead {r['overhead']:.1%} (start-up {r['startup_s']:.1f} s, catalogue "
            f"{r['catalogue_s']:.1f} s, the rest {r['wall_s'] - r['work_s'] / r['workers'] - r['startup_s'] - r['catalogue_s']:.1f} s); "
            f"coordinator peak RSS {r['rss_mib']:.0f} MiB"
        )
    with open("/proc/loadavg") if Path("/proc/loadavg").exists() else open(os.devnull) as fh:
        load = fh.read().split()[:3]
    if load:
        print(f"load average during the benchmark: {' '.join(load)} on {os.cpu_count()} CPUs")
    growth = big["rss_mib"] / small["rss_mib"] - 1
    print(f"overhead at {big['total']} runs: {big['overhead']:.2%} (required < 5 %)")
    print(
        f"coordinator peak RSS: {small['rss_mib']:.0f} MiB at {small['total']} runs, {big['rss_mib']:.0f} MiB at "
        f"{big['total']} runs ({growth:+.1%}; required flat: < +10 %)"
    )
    ok = big["overhead"] < 0.05 and growth < 0.10 and big["failed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
