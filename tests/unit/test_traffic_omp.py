"""``import twin`` asks OpenMP for passive waiting before the core loads, unless the user chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def policy_seen(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    env["PYTHONPATH"] = str(ROOT)
    code = "import os, twin, twin._core; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return out.stdout.strip()


def test_passive_waiting_by_default():
    assert policy_seen(None) == "PASSIVE"


def test_the_users_choice_wins():
    assert policy_seen("ACTIVE") == "ACTIVE"
