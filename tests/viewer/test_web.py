"""The web viewer: ``twin view --web`` served in a subprocess, opened in headless Chromium (playwright), a layer
toggle clicked, and the served picture checked to change."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("trame")
iio = pytest.importorskip("imageio.v3")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError("the web viewer did not start listening")


def _view_pixels(page) -> np.ndarray:
    return iio.imread(io.BytesIO(page.locator(".fill-height >> nth=-1").screenshot()), extension=".png")


def test_web_viewer_toggle_changes_the_picture(grid_results: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (apt-get install -y chromium)"
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "view", "--web", str(grid_results), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_port(port, proc)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.locator("#toggle-roads").wait_for()
            page.wait_for_timeout(2500)  # the first server-rendered image
            before = _view_pixels(page)
            assert before.std() > 5.0  # a picture, not a blank panel
            page.locator("#toggle-roads").click()
            page.wait_for_timeout(2500)
            after = _view_pixels(page)
            browser.close()
        diff = np.abs(before.astype(int) - after.astype(int)).mean()
        assert diff > 2.0, f"hiding the roads changed the picture by only {diff:.2f} grey levels"
        # the grid10 roads are dark grey: far fewer dark pixels once they are hidden
        dark = lambda im: (im[..., :3].max(axis=2) < 110).mean()  # noqa: E731
        assert dark(after) < 0.5 * dark(before)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
