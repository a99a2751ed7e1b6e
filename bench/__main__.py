"""``python -m bench`` (``make bench``): run every benchmark against its peer on the same inputs and print ratios."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = [
    "bench.bench_mesh",
    "bench.bench_neighbors",
    "bench.bench_nav",
    "bench.bench_ifc",
    "bench.bench_bundle",
    "bench.bench_crowd",
    "bench.bench_traffic",
    "bench.bench_hazards",
    "bench.bench_hazards_flood",
    "bench.bench_sweep",
    "bench.bench_coupled",
    "bench.bench_viewer",
]


def main(argv: list[str] | None = None) -> int:
    selected = (argv if argv is not None else sys.argv[1:]) or BENCHMARKS
    failed = []
    for name in selected:
        name = name if name.startswith("bench.") else f"bench.{name}"
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        sys.argv = [name]  # benchmarks with their own options run with their defaults here
        try:
            if importlib.import_module(name).main():  # a non-zero return: a required ratio was not reached
                failed.append(name)
        except Exception as exc:  # a broken benchmark must not hide the others; it is reported at the end
            failed.append(name)
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"({name} took {time.perf_counter() - t0:.1f} s)", flush=True)
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
