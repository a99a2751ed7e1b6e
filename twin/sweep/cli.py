"""The ``twin sweep`` subcommand (parsed in :mod:`twin.cli`): ``twin sweep SWEEP --out DIR [--resume] [--workers N]
[--executor E] [--check]`` and ``twin sweep report DIR [--kpi K]…``.

Exit codes: 0 every run ok; 1 the sweep finished but some runs failed (recorded in the catalogue; ``--resume``
re-runs them); 2 bad input (the sweep file, the folder, an option), with a one-line error.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from twin.errors import InputError

__all__ = ["sweep_command"]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def sweep_command(args: argparse.Namespace) -> int:
    if args.sweep == "report":
        if not args.dir:
            raise InputError(None, "twin sweep report needs the sweep's output folder: twin sweep report DIR")
        given = [
            o
            for o, v in (
                ("--out", args.out),
                ("--resume", args.resume),
                ("--workers", args.workers),
                ("--executor", args.executor),
                ("--check", args.check),
            )
            if v
        ]
        if given:
            raise InputError(None, f"{', '.join(given)}: not options of twin sweep report")
        from twin.sweep.report import sweep_report

        _say(sweep_report(args.dir, kpis=args.kpi).text)
        return 0
    if args.dir:
        raise InputError(None, f"unexpected argument {args.dir!r}; the output folder is given with --out DIR")
    if args.kpi:
        raise InputError(None, "--kpi is an option of twin sweep report DIR")
    if args.workers is not None and args.workers < 1:
        raise InputError(None, f"--workers must be ≥ 1, got {args.workers}")
    from twin.sweep.runner import check_sweep, run_sweep
    from twin.sweep.spec import load_sweep

    sweep = load_sweep(args.sweep)
    if args.check:
        n, problems = check_sweep(sweep)
        _say(f"{sweep.name}: {n} runs; {'all variants valid' if not problems else 'invalid variants:'}")
        for run_id, error in problems:
            _say(f"  {run_id}: {error}")
        return 1 if problems else 0
    out = Path(args.out) if args.out else Path("results") / sweep.name
    r = run_sweep(
        sweep, out, resume=args.resume, executor=args.executor, workers=args.workers, progress=not args.quiet
    )
    overhead = "" if math.isnan(r.overhead) else f"; framework overhead {r.overhead:.1%}"
    _say(
        f"{sweep.name}: {r.ok}/{r.total} runs ok, {r.failed} failed"
        + (f" ({r.skipped} were done before)" if r.skipped else "")
        + f", {r.ran} ran in {r.wall_s:.1f} s on {r.backend}{overhead}"
    )
    _say(f"catalogue {r.catalogue}")
    if r.failed:
        _say(f"failed runs are listed by: twin sweep report {out}; re-run them with --resume")
    return 1 if r.failed else 0
