"""Small results folders for the viewer tests, made once per session from the shipped scenarios (shortened)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def shortened(
    name: str, *, duration_s: float, count: int | None = None, events: list | None = None
) -> object:
    """The shipped scenario ``scenarios/<name>.yaml`` with a shorter duration (and fewer people)."""
    from twin.scenario.schema import Scenario

    path = ROOT / "scenarios" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["duration_s"] = duration_s
    if count is not None:
        for g in data["crowd"]["groups"]:
            g["count"] = count
    if events is not None:
        data["events"] = events
    return Scenario.from_dict(data, source=path, base_dir=path.parent)


@pytest.fixture(scope="session")
def office_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """office_fire.yaml for 120 s with 30 people per group: crowd, smoke, events, KPIs."""
    from twin.scenario.runner import run_scenario

    out = tmp_path_factory.mktemp("office_fire")
    run_scenario(shortened("office_fire", duration_s=120, count=30), out, progress=False)
    return out


@pytest.fixture(scope="session")
def grid_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """grid10.yaml for 600 s: roads and vehicles."""
    from twin.scenario.runner import run_scenario

    out = tmp_path_factory.mktemp("grid10")
    run_scenario(shortened("grid10", duration_s=600), out, progress=False)
    return out
