"""OSM tag interpretation for roads: speed limits, one-way rules, lanes, access, turns and signal programmes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.city.osm import (
    NO_LIMIT_KMH,
    ROAD_CLASSES,
    WALK_KMH,
    direction_speeds,
    lane_counts,
    lane_links,
    offset_polyline,
    oneway_direction,
    parse_lanes,
    parse_maxspeed,
    signal_programme,
    turn_direction,
    vehicle_classes,
    zone_speed,
)

KMH = 1 / 3.6
MPH = 1.609344 / 3.6


@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        ("50", 50),
        (" 60 ", 60),
        ("50 km/h", 50),
        ("50km/h", 50),
        ("50 kmh", 50),
        ("50 kph", 50),
        ("50 KM/H", 50),
        ("30 mph", 30 * 1.609344),
        ("30mph", 30 * 1.609344),
        ("10 knots", 10 * 1.852),
        ("50.5", 50.5),
        ("50,5", 50.5),
        ("none", NO_LIMIT_KMH),
        ("None", NO_LIMIT_KMH),
        ("walk", WALK_KMH),
        ("DE:urban", 50),
        ("DE:rural", 100),
        ("DE:motorway", NO_LIMIT_KMH),
        ("DE:living_street", WALK_KMH),
        ("DE:bicycle_road", 30),
        ("DE:zone30", 30),
        ("DE:zone:30", 30),
        ("DE:zone:20", 20),
        ("DE:30", 30),
        ("de:urban", 50),
        ("AT:rural", 100),
        ("FR:rural", 80),
        ("FR:motorway", 130),
        ("IT:urban", 50),
        ("RU:urban", 60),
        ("CH:motorway", 120),
        ("GB:nsl_single", 60 * 1.609344),
        ("GB:nsl_dual", 70 * 1.609344),
        ("GB:motorway", 70 * 1.609344),
        ("GB:zone20", 20 * 1.609344),
        ("50;30", 50),
        ("signals;50", 50),
    ],
)
def test_maxspeed_values(value, kmh):
    assert parse_maxspeed(value) == pytest.approx(kmh / 3.6, rel=1e-12)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "signals",
        "variable",
        "fast",
        "0",
        "-5",
        "1000",
        "XX:urban",
        "DE:nonsense",
        "DE:zone:0",
        "50 m/s",
        ";",
    ],
)
def test_maxspeed_without_a_number_is_none(value):
    assert parse_maxspeed(value) is None


def test_zone_speed_direct():
    assert zone_speed("DE:urban") == pytest.approx(50 * KMH)
    assert zone_speed("urban") is None
    assert zone_speed(None) is None


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "residential"}, 0),
        ({"highway": "residential", "oneway": "yes"}, 1),
        ({"highway": "residential", "oneway": "true"}, 1),
        ({"highway": "residential", "oneway": "1"}, 1),
        ({"highway": "residential", "oneway": "YES"}, 1),
        ({"highway": "residential", "oneway": "-1"}, -1),
        ({"highway": "residential", "oneway": "reverse"}, -1),
        ({"highway": "residential", "oneway": "no"}, 0),
        ({"highway": "residential", "oneway": "false"}, 0),
        ({"highway": "residential", "oneway": "0"}, 0),
        ({"highway": "residential", "oneway": "reversible"}, 0),
        ({"highway": "residential", "oneway": "alternating"}, 0),
        ({"highway": "residential", "oneway": "maybe"}, 0),
        ({"highway": "motorway"}, 1),
        ({"highway": "motorway", "oneway": "no"}, 0),
        ({"highway": "motorway", "oneway": "-1"}, -1),
        ({"highway": "motorway_link"}, 0),
        ({"highway": "primary", "junction": "roundabout"}, 1),
        ({"highway": "primary", "junction": "circular"}, 1),
        ({"highway": "primary", "junction": "roundabout", "oneway": "no"}, 0),
        ({"highway": "primary", "junction": "roundabout", "oneway": "-1"}, -1),
    ],
)
def test_oneway(tags, expected):
    assert oneway_direction(tags) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2),
        (" 3 ", 3),
        ("2;3", 2),
        ("x;4", 4),
        ("0", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_lanes(value, expected):
    assert parse_lanes(value) == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "residential"}, (1, 1)),
        ({"highway": "residential", "oneway": "yes"}, (1, 0)),
        ({"highway": "residential", "oneway": "-1"}, (0, 1)),
        ({"highway": "motorway"}, (2, 0)),
        ({"highway": "trunk"}, (2, 2)),
        ({"highway": "motorway", "lanes": "3"}, (3, 0)),
        ({"highway": "primary", "lanes": "2"}, (1, 1)),
        ({"highway": "primary", "lanes": "1"}, (1, 1)),
        ({"highway": "primary", "lanes": "3"}, (2, 1)),
        ({"highway": "primary", "lanes": "4"}, (2, 2)),
        ({"highway": "primary", "lanes": "3", "lanes:forward": "1", "lanes:backward": "1"}, (1, 1)),
        ({"highway": "primary", "lanes": "3", "lanes:both_ways": "1"}, (1, 1)),
        ({"highway": "primary", "lanes": "3", "lanes:backward": "1"}, (2, 1)),
        ({"highway": "primary", "lanes": "3", "lanes:backward": "2"}, (1, 2)),
        ({"highway": "primary", "lanes": "5", "lanes:forward": "2"}, (2, 3)),
        ({"highway": "primary", "lanes:forward": "2"}, (2, 1)),
        ({"highway": "primary", "lanes:forward": "2", "lanes:backward": "1"}, (2, 1)),
        ({"highway": "secondary", "oneway": "yes", "lanes": "3", "lanes:forward": "2"}, (2, 0)),
        ({"highway": "secondary", "oneway": "-1", "lanes": "2"}, (0, 2)),
        ({"highway": "secondary", "lanes": "bad"}, (1, 1)),
        ({"highway": "primary", "junction": "roundabout", "lanes": "2"}, (2, 0)),
    ],
)
def test_lane_counts(tags, expected):
    assert lane_counts(tags) == expected


@pytest.mark.parametrize(
    ("tags", "fwd_kmh", "bwd_kmh"),
    [
        ({"highway": "residential", "maxspeed": "30"}, 30, 30),
        (
            {"highway": "residential"},
            ROAD_CLASSES["residential"].speed_kmh,
            ROAD_CLASSES["residential"].speed_kmh,
        ),
        ({"highway": "motorway"}, ROAD_CLASSES["motorway"].speed_kmh, ROAD_CLASSES["motorway"].speed_kmh),
        ({"highway": "living_street"}, WALK_KMH, WALK_KMH),
        ({"highway": "primary", "maxspeed": "50", "maxspeed:backward": "30"}, 50, 30),
        ({"highway": "primary", "maxspeed:forward": "70", "maxspeed:backward": "50"}, 70, 50),
        ({"highway": "primary", "maxspeed:type": "DE:rural"}, 100, 100),
        ({"highway": "primary", "source:maxspeed": "DE:urban"}, 50, 50),
        ({"highway": "primary", "zone:maxspeed": "DE:30"}, 30, 30),
        ({"highway": "primary", "zone:maxspeed": "DE:nonsense"}, 70, 70),
        ({"highway": "primary", "zone:maxspeed": "DE:zone30"}, 30, 30),
        ({"highway": "primary", "maxspeed": "signals", "source:maxspeed": "DE:urban"}, 50, 50),
        ({"highway": "primary", "maxspeed": "40", "source:maxspeed": "DE:urban"}, 40, 40),
        ({"highway": "tertiary", "maxspeed": "20 mph"}, 20 * 1.609344, 20 * 1.609344),
    ],
)
def test_direction_speeds(tags, fwd_kmh, bwd_kmh):
    fwd, bwd = direction_speeds(tags)
    assert fwd == pytest.approx(fwd_kmh / 3.6)
    assert bwd == pytest.approx(bwd_kmh / 3.6)


def test_vehicle_classes_follow_class_and_access():
    res = vehicle_classes({"highway": "residential"})
    assert {"passenger", "truck", "bus", "bicycle", "emergency"} <= res
    assert "pedestrian" not in res
    assert "rail" not in res
    motorway = vehicle_classes({"highway": "motorway"})
    assert "bicycle" not in motorway
    assert "moped" not in motorway
    assert "passenger" in motorway
    closed = vehicle_classes({"highway": "service", "access": "no"})
    assert closed == {"emergency", "authority"}
    bus_only = vehicle_classes({"highway": "service", "access": "no", "bus": "yes"})
    assert bus_only == {"bus", "coach", "emergency", "authority"}
    no_motor = vehicle_classes({"highway": "residential", "motor_vehicle": "no"})
    assert "passenger" not in no_motor
    assert "bicycle" in no_motor
    no_hgv = vehicle_classes({"highway": "primary", "hgv": "no"})
    assert "truck" not in no_hgv
    assert "trailer" not in no_hgv
    assert "passenger" in no_hgv
    destination = vehicle_classes({"highway": "residential", "motor_vehicle": "destination"})
    assert "passenger" in destination
    bikes_on_motorway = vehicle_classes({"highway": "motorway", "bicycle": "yes"})
    assert "bicycle" in bikes_on_motorway


@pytest.mark.parametrize(
    ("angle", "expected"),
    [(0, "s"), (9.9, "s"), (-9.9, "s"), (30, "L"), (-30, "R"), (90, "l"), (-90, "r"), (149, "l"), (-149, "r"),
     (170, "t"), (-170, "t"), (180, "t")],
)  # fmt: skip
def test_turn_direction(angle, expected):
    assert turn_direction(angle) == expected


def test_lane_links_three_lanes_right_straight_left():
    links = lane_links(3, [("r", 1), ("s", 3), ("l", 2)])
    right = [(i, to) for i, t, to in links if t == 0]
    straight = [(i, to) for i, t, to in links if t == 1]
    left = [(i, to) for i, t, to in links if t == 2]
    assert right == [(0, 0)]
    assert straight == [(0, 0), (1, 1), (2, 2)]
    assert left == [(2, 1)]  # leftmost lane into the leftmost target lane


def test_lane_links_fork_and_turn_pockets_divide_the_lanes():
    # a 4-lane road forking into two 2-lane roads (SUMO's netconvert: lanes 0-1 straight on, 2-3 to the fork)
    assert lane_links(4, [("s", 2), ("L", 2)]) == [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]
    # 3 lanes into a 2-lane road ahead with a left and a right turn: the spare lane is a left-turn pocket, the
    # rightmost lane is shared by straight and right
    assert lane_links(3, [("r", 1), ("s", 2), ("l", 1)]) == [(0, 0, 0), (0, 1, 0), (1, 1, 1), (2, 2, 0)]
    # 4 lanes, 2 ahead, one lane each way: a pocket on each side
    assert lane_links(4, [("R", 1), ("s", 2), ("l", 1)]) == [(0, 0, 0), (1, 1, 0), (2, 1, 1), (3, 2, 0)]
    # every incoming lane leads somewhere
    for n in range(1, 7):
        for targets in ([("s", 1), ("l", 2)], [("r", 3), ("s", 1)], [("r", 1), ("s", 1), ("l", 1), ("t", 1)]):
            assert {i for i, _, _ in lane_links(n, targets)} == set(range(n))


def test_lane_links_merge_and_single_lane():
    assert [(i, to) for i, _, to in lane_links(3, [("s", 2)])] == [(0, 0), (1, 1), (2, 1)]
    assert lane_links(1, [("r", 2), ("s", 1), ("l", 2), ("t", 1)]) == [
        (0, 0, 0),
        (0, 1, 0),
        (0, 2, 1),
        (0, 3, 0),
    ]


def test_lane_links_without_straight_split_lanes():
    # T-junction seen from the stem: 2 lanes, right and left only
    assert lane_links(2, [("r", 1), ("l", 1)]) == [(0, 0, 0), (1, 1, 0)]
    # 4 lanes: lower half right, upper half left; the k-th lane from each side to the k-th target lane from it
    assert lane_links(4, [("r", 2), ("l", 2)]) == [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]
    # only left turns: every lane turns left
    assert lane_links(2, [("l", 2)]) == [(0, 0, 0), (1, 0, 1)]


@settings(max_examples=200, deadline=None)
@given(
    num_in=st.integers(1, 5),
    targets=st.lists(st.tuples(st.sampled_from(list("srRlLt")), st.integers(1, 4)), min_size=1, max_size=5),
)
def test_lane_links_cover_every_lane_and_target(num_in, targets):
    links = lane_links(num_in, targets)
    assert {i for i, _, _ in links} == set(range(num_in))  # no dead lane
    assert {t for _, t, _ in links} == set(range(len(targets)))  # every movement is possible
    straight = [i for i, t, _ in links if targets[t][0] == "s"]
    for i, t, to in links:
        assert 0 <= to < targets[t][1]
        d = targets[t][0]
        # turns never cross the straight movement: right turns from lanes right of (or shared with) the
        # rightmost straight lane, left turns from lanes left of (or shared with) the leftmost one; a turn lane not
        # shared with straight only where more lanes come in than the straight target has
        if d in "rR" and straight:
            assert i <= min(straight)
            assert i == 0 or i < min(straight)
        if d in "lLt" and straight:
            assert i >= max(straight)
            assert i == num_in - 1 or i > max(straight)
    assert len(set(links)) == len(links)


def test_signal_programme_four_arm_cross():
    # approaches heading east, north, west, south; links: each approach has right, straight, left
    bearings = [0.0, 90.0, 180.0, -90.0]
    link_app = [a for a in range(4) for _ in range(3)]
    link_dir = ["r", "s", "l"] * 4
    phases = signal_programme(bearings, link_app, link_dir, main_approach=0)
    assert [p[0] for p in phases] == [31.0, 3.0, 31.0, 3.0]
    assert all(p[2] == p[0] and p[3] == p[0] for p in phases)
    states = [p[1] for p in phases]
    assert states[0] == "GGg" + "rrr" + "GGg" + "rrr"  # east-west axis green, left turns permissive
    assert states[1] == "yyy" + "rrr" + "yyy" + "rrr"
    assert states[2] == "rrr" + "GGg" + "rrr" + "GGg"
    assert states[3] == "rrr" + "yyy" + "rrr" + "yyy"
    # every link is green in exactly one phase and never together with a crossing approach
    for k in range(len(link_app)):
        assert sum(s[k] in "Gg" for s in states) == 1


def test_signal_programme_single_axis_has_all_red_half():
    phases = signal_programme([10.0, -170.0], [0, 1], ["s", "s"], main_approach=1)
    assert [p[1] for p in phases] == ["GG", "yy", "rr", "rr"]


def test_signal_programme_axis_tolerance():
    # 40 degrees off the main axis still belongs to group A, 50 degrees does not
    phases = signal_programme([0.0, 220.0, 130.0], [0, 1, 2], ["s", "s", "s"], main_approach=0)
    assert phases[0][1] == "GGr"
    assert phases[2][1] == "rrG"


def test_offset_polyline_straight_and_corner():
    line = np.array([[0.0, 0.0], [10.0, 0.0]])
    np.testing.assert_allclose(offset_polyline(line, 1.5), [[0.0, -1.5], [10.0, -1.5]])  # right of eastward
    np.testing.assert_allclose(offset_polyline(line, -1.5), [[0.0, 1.5], [10.0, 1.5]])
    corner = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])  # east then north (a left bend)
    out = offset_polyline(corner, 2.0)
    np.testing.assert_allclose(out, [[0.0, -2.0], [12.0, -2.0], [12.0, 10.0]], atol=1e-12)
    dup = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    np.testing.assert_allclose(offset_polyline(dup, 1.0), [[0.0, -1.0], [5.0, -1.0]])


@settings(max_examples=100, deadline=None)
@given(
    pts=st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=2, max_size=8, unique=True),
    d=st.floats(-5, 5),
)
def test_offset_polyline_ends_are_perpendicular(pts, d):
    xy = np.array(pts)
    out = offset_polyline(xy, d)
    assert out.shape == xy.shape
    for end, nxt, o in ((0, 1, out[0]), (-1, -2, out[-1])):
        seg = xy[nxt] - xy[end]
        shift = o - xy[end]
        assert math.hypot(*shift) == pytest.approx(abs(d), abs=1e-9)
        assert abs(np.dot(seg, shift)) <= 1e-6 * max(1.0, float(np.linalg.norm(seg)))
