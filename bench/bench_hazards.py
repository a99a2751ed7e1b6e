"""Smoke model cost per simulated second on the generated office and the Duplex IFC (no peer: prints costs).

A fast fire capped at 2 MW burns in one room; the model advances in 1 s steps (the coupled model's step) for
600 simulated seconds. The cost per simulated second is what the hazard adds to every second of a coupled run.

Run from the repository root: ``python -m bench.bench_hazards``.
"""

from __future__ import annotations

import time

from bench.common import ROOT, best_of, data_dir
from twin.city.frame import Frame
from twin.city.ifc import load_ifc
from twin.sim.fire import TSquaredFire
from twin.sim.smoke import SmokeModel

CASES = [
    ("office", ROOT / "models" / "office.ifc", "Room 1.07"),
    ("Duplex", data_dir() / "ifc" / "Duplex_A_20110907.ifc", "A104"),
]
SIM_S = 600.0
STEP_S = 1.0


def _run(building, room):
    model = SmokeModel.from_building(building, fires={room: TSquaredFire(growth="fast", max_hrr_kw=2000.0)})
    while model.time_s < SIM_S - 1e-9:
        model.advance(STEP_S)
    return model


def main() -> int:
    for name, path, room in CASES:
        building = load_ifc(path, frame=Frame())
        t0 = time.perf_counter()
        SmokeModel.from_building(building, fires={room: TSquaredFire(growth="fast")})
        build_s = time.perf_counter() - t0
        wall, model = best_of(lambda b=building, r=room: _run(b, r), repeat=3)
        n_open = len(model.openings)
        print(
            f"{name}: {len(model.space_ids)} spaces, {n_open} openings; build {build_s * 1e3:.1f} ms; "
            f"{SIM_S:.0f} s simulated in {wall:.3f} s = {wall / SIM_S * 1e3:.3f} ms per simulated second "
            f"({model.substeps / SIM_S:.1f} sub-steps/s, {wall / model.substeps * 1e6:.0f} µs per sub-step); "
            f"{int(model.untenable.sum())} spaces untenable at {SIM_S:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
