"""The coupled headline and what hazards cost the models they touch.

1. ``make demo``'s coupled scenario (fire, evacuation, units through traffic, a burst flooding a street): total wall
   time (required: under 5 minutes) and the wall time per model from ``summary.json``.
2. Hazard overhead: the office evacuation with and without a fire on its top storey. Required: the crowd model's
   wall time with the fire is at most its wall time without it plus the smoke model's own wall time (the fire may
   change where people walk, which changes the crowd's own work; the check allows 10 % for that and timing noise).

    python -m bench.bench_coupled
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _office(fire: bool) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "office_fire.yaml").read_text())
    if not fire:
        data["events"] = [e for e in data["events"] if e["type"] != "fire"]
    data["outputs"]["report"] = False
    return data


def main() -> int:
    from twin.demo import build_demo_city, coupled_demo_scenario
    from twin.scenario.runner import run_scenario
    from twin.scenario.schema import Scenario

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        city = build_demo_city(out)
        summary = run_scenario(coupled_demo_scenario(out, city), out, progress=False)
        wall = time.perf_counter() - t0
        per_model = summary["timing"]["model_wall_s"]
        print(
            f"coupled headline: {wall:.1f} s wall for {summary['simulated_s']:.0f} s simulated (required < 300 s)"
        )
        print("  per model: " + ", ".join(f"{k} {v:.2f} s" for k, v in per_model.items()))
        ok &= wall < 300

        walls = {}
        for fire in (False, True):
            s = Scenario.from_dict(
                _office(fire), source=ROOT / "scenarios" / "office_fire.yaml", base_dir=ROOT / "scenarios"
            )
            r = run_scenario(s, Path(tmp) / f"office-{fire}", progress=False)
            walls[fire] = r["timing"]["model_wall_s"]
        crowd0, crowd1 = walls[False]["crowd"], walls[True]["crowd"]
        smoke = walls[True].get("smoke", 0.0)
        limit = 1.1 * (crowd0 + smoke)
        print(
            f"office evacuation: crowd {crowd0:.2f} s without the fire, {crowd1:.2f} s with it; smoke model "
            f"{smoke:.2f} s; crowd with fire / (crowd without + smoke) = {crowd1 / (crowd0 + smoke):.2f} "
            f"(required <= 1.10)"
        )
        ok &= crowd1 <= limit
    print("all requirements met" if ok else "REQUIREMENT NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
