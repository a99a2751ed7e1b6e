"""Sweep files: scenario paths, parameter expansion (against scipy / SALib directly), run ids, and bad files
rejected with the field path."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sweep.paths import PathError, format_path, get_at, parse_path, set_at
from twin.sweep.spec import load_sweep, run_id_of, sweep_from_dict

BASE = {
    "name": "tiny",
    "seed": 3,
    "duration_s": 10,
    "city": {
        "areas": [
            {
                "id": "room",
                "walkable": "POLYGON ((0 0, 5 0, 5 5, 0 5, 0 0))",
                "exits": [{"id": "door", "polygon": "POLYGON ((5 2, 6 2, 6 3, 5 3, 5 2))"}],
            }
        ]
    },
    "crowd": {
        "model": "collision_free_speed",
        "groups": [
            {
                "id": "occupants",
                "count": 5,
                "in": {"area": "room"},
                "speed_mps": 1.2,
                "premovement_s": {"dist": "uniform", "min": 0, "max": 10},
            }
        ],
    },
    "events": [{"at_s": 0, "type": "alarm"}],
    "outputs": {"report": False},
}


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    p = tmp_path / "base.yaml"
    p.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    return p


def sweep(tmp_path: Path, **keys):
    return sweep_from_dict({"base": "base.yaml", **keys}, source=tmp_path / "s.yaml", base_dir=tmp_path)


# --- paths -----------------------------------------------------------------------------------------------------------


def test_parse_and_format_paths():
    assert parse_path("crowd.groups[0].count") == ("crowd", "groups", 0, "count")
    assert parse_path("city.areas[0].exits[12].polygon") == ("city", "areas", 0, "exits", 12, "polygon")
    assert parse_path("duration_s") == ("duration_s",)
    assert format_path(("events", 1, "at_s")) == "events[1].at_s"


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "[0].a", "a[x]", "a[0]b", "a b", "a[-1]", "1a"])
def test_bad_paths_are_rejected(bad):
    with pytest.raises(PathError):
        parse_path(bad)


@given(
    st.lists(
        st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), st.integers(0, 99)),
        min_size=1,
        max_size=6,
    )
)
def test_path_round_trip(steps):
    steps = [s for s in steps]
    if isinstance(steps[0], int):
        steps[0] = "root"
    assert parse_path(format_path(steps)) == tuple(steps)


def test_get_and_set_name_where_the_path_stops():
    data = {"crowd": {"groups": [{"count": 5, "premovement_s": 0}]}}
    assert get_at(data, "crowd.groups[0].count") == 5
    set_at(data, "crowd.groups[0].count", 9)
    set_at(data, "crowd.dt_s", 0.1)  # a new key in an existing mapping
    assert data["crowd"]["groups"][0]["count"] == 9
    assert data["crowd"]["dt_s"] == 0.1
    with pytest.raises(PathError, match=r"crowd.groups has 1 item\(s\); there is no \[3\]"):
        set_at(data, "crowd.groups[3].count", 1)
    with pytest.raises(PathError, match=r"crowd.groups\[0\].premovement_s is a number \(0\), not a mapping"):
        set_at(data, "crowd.groups[0].premovement_s.max", 1)
    with pytest.raises(PathError, match="has no key 'traffic'"):
        set_at(data, "traffic.dt_s", 1)


# --- expansion -------------------------------------------------------------------------------------------------------


def test_grid_of_lists_ranges_and_linspace_times_seeds(tmp_path, base_file):
    s = sweep(
        tmp_path,
        seeds=[1, 2],
        parameters={
            "crowd.groups[0].count": [3, 4],
            "events[0].at_s": {"range": [0, 0.3, 0.1]},
            "crowd.groups[0].premovement_s.max": {"linspace": [1, 2, 3]},
        },
    )
    runs = list(s.plan.runs())
    assert s.plan.total == len(runs) == 2 * 4 * 3 * 2
    want = list(itertools.product([3, 4], [0.0, 0.1, 0.2, 0.3], [1.0, 1.5, 2.0], [1, 2]))
    got = [(*(v for _, v in r.values), r.seed) for r in runs]
    assert got == want  # file order, last axis fastest, seeds innermost; 0.1 steps without rounding noise
    assert [r.index for r in runs] == list(range(len(runs)))
    assert len({r.run_id for r in runs}) == len(runs)
    assert s.plan.kinds == {
        "crowd.groups[0].count": "int",
        "events[0].at_s": "float",
        "crowd.groups[0].premovement_s.max": "float",
    }


def test_integer_range_includes_stop_and_seed_range(tmp_path, base_file):
    s = sweep(tmp_path, seeds={"range": [4, 6]}, parameters={"crowd.groups[0].count": {"range": [2, 10, 4]}})
    assert s.plan.seeds == [4, 5, 6]
    assert s.plan.axes[0][1].values == (2, 6, 10)


def test_default_seed_is_the_base_scenarios(tmp_path, base_file):
    s = sweep(tmp_path, parameters={"crowd.groups[0].count": [3]})
    (run,) = s.plan.runs()
    assert run.seed == 3
    assert s.scenario_data(run)["seed"] == 3


def test_latin_design_equals_scipy_and_rounds_counts(tmp_path, base_file):
    from scipy.stats import qmc

    s = sweep(
        tmp_path,
        parameters={
            "crowd.groups[0].count": {"latin": [2, 9], "n": 7},
            "events[0].at_s": {"latin": [0, 30]},
        },
        sampling={"seed": 5},
    )
    ref = qmc.scale(qmc.LatinHypercube(d=2, rng=5).random(7), [2, 0], [9, 30])
    np.testing.assert_array_equal(s.plan.design, ref)
    runs = list(s.plan.runs())
    counts = [dict(r.values)["crowd.groups[0].count"] for r in runs]
    assert counts == [int(round(x)) for x in ref[:, 0]]  # the base count is a whole number: rounded
    assert all(isinstance(c, int) for c in counts)
    assert [dict(r.values)["events[0].at_s"] for r in runs] == list(ref[:, 1])
    assert [r.sample for r in runs] == list(range(7))


def test_sobol_and_morris_designs_equal_salib(tmp_path, base_file):
    from SALib.sample import morris, sobol

    problem = {
        "num_vars": 2,
        "names": ["events[0].at_s", "crowd.groups[0].premovement_s.max"],
        "bounds": [[0, 60], [10, 120]],
    }
    s = sweep(
        tmp_path,
        parameters={
            "events[0].at_s": {"sobol": [0, 60], "n": 8},
            "crowd.groups[0].premovement_s.max": {"sobol": [10, 120]},
        },
        sampling={"seed": 2},
    )
    np.testing.assert_array_equal(s.plan.design, sobol.sample(problem, 8, calc_second_order=False, seed=2))
    assert s.plan.total == 8 * (2 + 2)
    m = sweep(
        tmp_path,
        parameters={
            "events[0].at_s": {"morris": [0, 60], "n": 4},
            "crowd.groups[0].premovement_s.max": {"morris": [10, 120]},
        },
        sampling={"seed": 2, "levels": 6},
    )
    np.testing.assert_array_equal(m.plan.design, morris.sample(problem, 4, num_levels=6, seed=2))
    assert m.plan.total == 4 * 3


def test_grid_times_design_times_seeds(tmp_path, base_file):
    s = sweep(
        tmp_path,
        seeds=[1, 2, 3],
        parameters={"crowd.groups[0].count": [3, 4], "events[0].at_s": {"latin": [0, 10], "n": 5}},
    )
    runs = list(s.plan.runs())
    assert len(runs) == s.plan.total == 2 * 5 * 3
    assert [r.sample for r in runs[:15]] == [k for k in range(5) for _ in range(3)]


def test_run_ids_are_stable_and_depend_on_values_seed_and_point():
    a = run_id_of((("crowd.groups[0].count", 3),), 1, None)
    assert a == run_id_of((("crowd.groups[0].count", 3),), 1, None)
    assert len(a) == 12
    assert int(a, 16) >= 0
    others = {
        run_id_of((("crowd.groups[0].count", 4),), 1, None),
        run_id_of((("crowd.groups[0].count", 3),), 2, None),
        run_id_of((("crowd.groups[0].count", 3),), 1, 0),
        run_id_of((("crowd.groups[0].count", 3.0),), 1, None),
    }
    assert a not in others
    assert len(others) == 4


def test_scenario_data_applies_overrides_values_and_seed(tmp_path, base_file):
    s = sweep(
        tmp_path,
        seeds=[7],
        overrides={"duration_s": 30, "crowd.dt_s": 0.1},
        parameters={"city.areas[0].exits[0].polygon": ["POLYGON ((5 1, 6 1, 6 4, 5 4, 5 1))"]},
    )
    (run,) = s.plan.runs()
    data = s.scenario_data(run)
    assert (data["duration_s"], data["crowd"]["dt_s"], data["seed"]) == (30, 0.1, 7)
    assert data["city"]["areas"][0]["exits"][0]["polygon"] == "POLYGON ((5 1, 6 1, 6 4, 5 4, 5 1))"
    assert BASE["duration_s"] == 10  # the base is not changed
    sc = Scenario.from_dict(data, base_dir=tmp_path)
    assert sc.city.areas[0].exits[0].geometry.bounds == (5.0, 1.0, 6.0, 4.0)
    assert s.plan.kinds["city.areas[0].exits[0].polygon"] == "str"


def test_fingerprint_follows_what_decides_the_runs(tmp_path, base_file):
    a = sweep(tmp_path, seeds=[1], parameters={"crowd.groups[0].count": [3, 4]})
    assert (
        a.fingerprint()
        == sweep(tmp_path, seeds=[1], parameters={"crowd.groups[0].count": [3, 4]}, workers=7).fingerprint()
    )
    assert (
        a.fingerprint()
        != sweep(tmp_path, seeds=[2], parameters={"crowd.groups[0].count": [3, 4]}).fingerprint()
    )
    assert (
        a.fingerprint()
        != sweep(tmp_path, seeds=[1], parameters={"crowd.groups[0].count": [3, 5]}).fingerprint()
    )
    assert (
        a.fingerprint()
        != sweep(
            tmp_path, seeds=[1], overrides={"duration_s": 9}, parameters={"crowd.groups[0].count": [3, 4]}
        ).fingerprint()
    )


def test_load_sweep_resolves_base_relative_to_the_file(tmp_path, base_file):
    sub = tmp_path / "sweeps"
    sub.mkdir()
    (sub / "s.yaml").write_text(
        "base: ../base.yaml\nparameters:\n  crowd.groups[0].count: [2, 3]\n", encoding="utf-8"
    )
    s = load_sweep(sub / "s.yaml")
    assert s.base_path == base_file
    assert s.name == "s"
    assert s.plan.total == 2


def test_shipped_sweeps_load(repo_root):
    files = sorted((repo_root / "scenarios" / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        s = load_sweep(f)
        assert s.plan.total >= 1


# --- bad files -------------------------------------------------------------------------------------------------------

BAD = [
    (
        {"parameters": {"crowd.groups[0].count": []}},
        r"parameters\.crowd\.groups\[0\]\.count: needs at least one value",
    ),
    (
        {"parameters": {"crowd.groups[0].count": [3, 3]}},
        r"parameters\.crowd\.groups\[0\]\.count: value \[1\] repeats value \[0\]",
    ),
    (
        {"parameters": {"crowd.groups[0].count": {"range": [1, 5, 0]}}},
        r"parameters\.crowd\.groups\[0\]\.count: range step 0 does not lead from 1 to 5",
    ),
    (
        {"parameters": {"crowd.groups[0].count": {"range": [1, 5, -1]}}},
        r"range step -1 does not lead from 1 to 5",
    ),
    (
        {"parameters": {"crowd.groups[0].count": {"grid": [1, 2]}}},
        r"parameters\.crowd\.groups\[0\]\.count: needs exactly one of range, linspace",
    ),
    (
        {"parameters": {"crowd.groups[0].count": 4}},
        r"parameters\.crowd\.groups\[0\]\.count: must be a list of values",
    ),
    (
        {"parameters": {"events[0].at_s": {"latin": [10, 0], "n": 4}}},
        r"parameters\.events\[0\]\.at_s: latin must be \[low, high\] with low < high",
    ),
    ({"parameters": {"events[0].at_s": {"latin": [0, 10]}}}, r"parameters\.events\[0\]\.at_s: n is required"),
    (
        {"parameters": {"events[0].at_s": {"sobol": [0, 10], "n": 10}}},
        r"n must be a power of 2 for sobol.*got 10; e.g. 16",
    ),
    (
        {"parameters": {"events[0].at_s": {"latin": [0, 10], "n": 4, "levels": 3}}},
        r"unknown key\(s\) 'levels' beside latin",
    ),
    (
        {
            "parameters": {
                "events[0].at_s": {"latin": [0, 10], "n": 4},
                "duration_s": {"sobol": [5, 9], "n": 4},
            }
        },
        r"parameters: sampled parameters form one design and must use one method; got latin and sobol",
    ),
    (
        {
            "parameters": {
                "events[0].at_s": {"latin": [0, 10], "n": 4},
                "duration_s": {"latin": [5, 9], "n": 8},
            }
        },
        r"n differs: events\[0\]\.at_s: 4, duration_s: 8",
    ),
    (
        {"parameters": {"crowd.groups[3].count": [1]}},
        r"parameters\.crowd\.groups\[3\]\.count: crowd\.groups has 1 item\(s\); there is no \[3\] \(in base\.yaml\)",
    ),
    ({"parameters": {"crowd..count": [1]}}, r"parameters: 'crowd\.\.count' is not a scenario path"),
    ({"parameters": {"seed": [1, 2]}}, r"the seed is set by seeds:"),
    (
        {"overrides": {"crowd.groups[0].speed_mps.mean": 1.0}},
        r"overrides\.crowd\.groups\[0\]\.speed_mps\.mean: crowd\.groups\[0\]\.speed_mps is a number",
    ),
    (
        {"overrides": {"crowd.groups[0].count": -4}},
        r"base\.yaml \(with the overrides of .*s\.yaml\): crowd\.groups\[0\]\.count: must be > 0, got -4",
    ),
    ({"seeds": [1, 1]}, r"seeds: seeds must be distinct; repeated: \[1\]"),
    ({"seeds": [-1]}, r"seeds: seed \[0\] must be a whole number in \[0, 2\^63\), got -1"),
    ({"seeds": 5}, r"seeds: must be a list of seeds or \{range: \[first, last\]\}, got 5"),
    (
        {"executor": "cluster"},
        r"executor: must be local, dask, dask://HOST:PORT, tcp://HOST:PORT or slurm, got 'cluster'",
    ),
    ({"workers": 0}, r"workers: must be >= 1, got 0"),
    (
        {"executor": "local", "cluster": {"queue": "x"}},
        r"cluster: options are for the dask and slurm executors",
    ),
    ({"runner": "not a function"}, r"runner: must be package\.module:function"),
    ({"paramters": {}}, r"\(top level\): unknown key 'paramters'; expected"),
    ({"sampling": {"levels": 1}}, r"sampling\.levels: must be >= 2, got 1"),
    (
        {"parameters": {"crowd.groups[0]": [{}], "crowd.groups[0].count": [1]}},
        r"crowd\.groups\[0\] contains crowd\.groups\[0\]\.count",
    ),
]


@pytest.mark.parametrize(("keys", "message"), BAD)
def test_bad_sweeps_name_the_file_and_field(tmp_path, base_file, keys, message):
    with pytest.raises(InputError, match=message) as err:
        sweep(tmp_path, **keys)
    assert str(tmp_path / "s.yaml") in str(err.value) or "base.yaml" in str(err.value)


def test_missing_base_and_bad_yaml(tmp_path):
    with pytest.raises(InputError, match=r"s\.yaml: base: file not found: .*nope\.yaml"):
        sweep_from_dict({"base": "nope.yaml"}, source=tmp_path / "s.yaml", base_dir=tmp_path)
    f = tmp_path / "bad.yaml"
    f.write_text(textwrap.dedent("base: a.yaml\nparameters:\n  x: [1\n"), encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.yaml: invalid YAML at line \d+"):
        load_sweep(f)
    with pytest.raises(InputError, match="sweep file not found"):
        load_sweep(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="the sweep file is empty"):
        load_sweep(tmp_path / "empty.yaml")
