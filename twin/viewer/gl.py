"""Is there an OpenGL backend VTK can render with? Checked in a child process, so that a missing one is a clear
:class:`~twin.errors.TwinError` and never a crash of the host process.

VTK picks its render window at run time: an X window when ``DISPLAY`` is set, else EGL (GPU or Mesa's llvmpipe),
else OSMesa. When none works VTK does not raise: it logs a warning and dereferences a null context (a segfault).
:func:`check_gl` therefore renders one tiny frame in a fresh Python process first, and only then may the caller
create render windows of its own. The answer is cached per process (and per relevant environment).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

from twin.errors import TwinError

log = logging.getLogger(__name__)

_ENV_KEYS = ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW", "__EGL_VENDOR_LIBRARY_FILENAMES")
_cache: dict[tuple[str | None, ...], str] = {}

# Rendered in the child: a red 8x8 frame, read back; prints the render-window class VTK chose.
_PROBE = """
import sys
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL factories)
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer, vtkWindowToImageFilter
rw = vtkRenderWindow()
rw.SetOffScreenRendering(1)
rw.SetSize(8, 8)
ren = vtkRenderer()
ren.SetBackground(1.0, 0.0, 0.0)
rw.AddRenderer(ren)
rw.Render()
grab = vtkWindowToImageFilter()
grab.SetInput(rw)
grab.Update()
pixel = grab.GetOutput().GetPointData().GetScalars().GetTuple(0)
if pixel[0] < 200 or pixel[1] > 50:
    sys.stderr.write(f"rendered pixel is {pixel}, expected red: the backend draws nothing\\n")
    sys.exit(3)
sys.stdout.write(rw.GetClassName() + "\\n")
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def has_display() -> bool:
    """True when a window can be opened (X or Wayland display set, or not on Linux)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _why(stderr: str) -> str:
    """The useful lines of VTK's log: warnings and errors, without colour codes and timestamps."""
    lines = []
    for raw in _ANSI.sub("", stderr).splitlines():
        text = raw.split("| ", 1)[-1].strip() if "|" in raw else raw.strip()
        if text and ("WARN" in raw or "ERR" in raw or "rendered pixel" in raw or "not found" in text):
            lines.append(text)
    return "; ".join(dict.fromkeys(lines))[:600]


def check_gl(*, timeout_s: float = 60.0) -> str:
    """Render one frame off-screen in a child process; return the VTK render-window class that worked.

    Without a display the backend found (``vtkEGLRenderWindow`` or ``vtkOSOpenGLRenderWindow``) is made this
    process's default through ``VTK_DEFAULT_OPENGL_WINDOW``, so VTK here does not try an X server first.

    Raises :class:`TwinError` naming what VTK reported when no backend can render (the child crashed, failed
    or drew nothing).
    """
    key = tuple(os.environ.get(k) for k in _ENV_KEYS)
    if key in _cache:
        return _cache[key]
    env = dict(os.environ)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TwinError(
            f"no working OpenGL backend: a test render did not finish in {timeout_s:.0f} s"
        ) from None
    name = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not name:
        how = f"crashed (signal {-proc.returncode})" if proc.returncode < 0 else f"failed ({proc.returncode})"
        display = os.environ.get("DISPLAY") or "(not set)"
        raise TwinError(
            f"no working OpenGL backend for the viewer: a test render in a child process {how}. "
            f"VTK said: {_why(proc.stderr) or proc.stderr.strip()[-300:] or 'nothing'}. "
            f"DISPLAY is {display}; without a display VTK needs EGL (libegl1 with Mesa's libegl-mesa0) or "
            "OSMesa (libosmesa6). Install one of them, or run with a display."
        )
    log.info("OpenGL backend: %s", name)
    if not has_display() and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ:
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = name
        key = tuple(os.environ.get(k) for k in _ENV_KEYS)
    _cache[key] = name
    return name
