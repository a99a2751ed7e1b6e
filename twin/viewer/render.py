"""Off-screen pictures of a results folder: a PNG still and an MP4 movie (imageio-ffmpeg), without a display."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import InputError, TwinError

log = logging.getLogger(__name__)


def _atomic_target(path: str | os.PathLike[str], suffix: str) -> tuple[Path, Path]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    return target, Path(tmp)


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an (h, w, 3|4) uint8 image as PNG atomically; returns the path."""
    import imageio.v3 as iio

    target, tmp = _atomic_target(path, ".png")
    try:
        iio.imwrite(tmp, np.asarray(image, dtype=np.uint8), extension=".png")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def render_still(
    results_dir: str | os.PathLike[str],
    png: str | os.PathLike[str],
    *,
    t_s: float | None = None,
    preset: str = "overview",
    window_size: tuple[int, int] = (1280, 720),
    playback: Any = None,
    cut_above_storey: int | None = None,
    xray: bool = False,
) -> Path:
    """Render the results folder at time ``t_s`` (default: the middle of the run) from camera ``preset`` into
    ``png``, off-screen. Returns the PNG path. ``playback``: an open :class:`~twin.viewer.playback.Playback`
    to reuse (its window size is kept)."""
    from twin.viewer.playback import open_results

    t0 = time.perf_counter()
    pb = playback or open_results(results_dir, window_size=window_size)
    try:
        pb.scene.set_camera(preset)
        if cut_above_storey is not None:
            pb.scene.cut_away(cut_above_storey)
        pb.scene.set_xray(xray)
        pb.set_time(0.5 * (pb.start_s + pb.end_s) if t_s is None else float(t_s))
        out = write_png(pb.scene.image(), png)
    finally:
        if playback is None:
            pb.scene.close()
    log.info("still %s written in %.1f s", out, time.perf_counter() - t0)
    return out


def render_movie(
    results_dir: str | os.PathLike[str],
    mp4: str | os.PathLike[str],
    *,
    fps: float = 10.0,
    speed: float = 10.0,
    preset: str = "overview",
    window_size: tuple[int, int] = (1280, 720),
    start_s: float | None = None,
    end_s: float | None = None,
    playback: Any = None,
    progress: bool = False,
) -> Path:
    """Render the run as an H.264 MP4: ``fps`` frames per second, each second showing ``speed`` simulated seconds,
    from ``start_s`` to ``end_s`` (default: the whole run). Written to a temporary file and moved into place."""
    import imageio.v2 as imageio

    from twin.viewer.playback import open_results

    if not (fps > 0 and speed > 0):
        raise InputError(None, f"fps and speed must be > 0, got fps={fps}, speed={speed}")
    w, h = window_size
    if w % 2 or h % 2:
        raise InputError(None, f"movie window size must be even (H.264), got {w}x{h}")
    t0 = time.perf_counter()
    pb = playback or open_results(results_dir, window_size=window_size)
    target, tmp = _atomic_target(mp4, ".mp4")
    try:
        pb.scene.set_camera(preset)
        times = pb.frame_times(fps=fps, speed=speed)
        lo = pb.start_s if start_s is None else float(start_s)
        hi = pb.end_s if end_s is None else float(end_s)
        times = times[(times >= lo - 1e-9) & (times <= hi + 1e-9)]
        if not len(times):
            raise InputError(
                None, f"no frames between {lo} s and {hi} s (the run spans {pb.start_s}…{pb.end_s} s)"
            )
        try:
            writer = imageio.get_writer(
                tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7, macro_block_size=2
            )
        except Exception as exc:  # imageio raises plain errors when ffmpeg is missing
            raise TwinError(
                f"cannot write MP4 (imageio-ffmpeg is needed: pip install twin[viewer]): {exc}"
            ) from exc
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(times), unit="frame", desc="movie")
        with writer:
            for t in times:
                pb.set_time(float(t))
                writer.append_data(pb.scene.image())
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        if playback is None:
            pb.scene.close()
    log.info("movie %s: %d frames in %.1f s", target, len(times), time.perf_counter() - t0)
    return target
