"""Progress that shows on a terminal as a bar and in a log file as timestamped lines.

On a terminal (stderr a TTY) tqdm draws a bar. Anywhere else (a log file, ``nohup``, CI, a
worker process whose bar would garble its parent's) a long loop says how far it is as a logged
line every ``LITEEVAL_PROGRESS_SECONDS`` (default 60): done of total, elapsed, the estimated time
left and the clock time it should end. A loop shorter than that says nothing, so short commands
and CI logs stay quiet.

``LITEEVAL_PROGRESS`` chooses: ``bar`` (or ``1``) forces bars, ``log`` forces lines, ``0`` turns
both off. ``enable=False`` (``-q``) turns a loop's progress off whatever the variable says.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from tqdm.auto import tqdm

#: The variable that chooses bars, lines or nothing (see the module docstring).
MODE_VARIABLE = "LITEEVAL_PROGRESS"
#: The variable that sets the seconds between two progress lines.
INTERVAL_VARIABLE = "LITEEVAL_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 60.0

log = logging.getLogger("progress")


def progress_mode() -> str:
    """"bar", "log" or "off" (see the module docstring)."""
    forced = os.environ.get(MODE_VARIABLE)
    if forced is not None:
        forced = forced.strip().lower()
        if forced in ("", "0", "false", "no", "off"):
            return "off"
        if forced == "log":
            return "log"
        return "bar"
    return "bar" if sys.stderr.isatty() else "log"


def interval_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_VARIABLE, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def duration(seconds: float) -> str:
    """A duration a person reads at a glance: 45s, 3m05s, 2h04m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta_text(seconds_left: float | None) -> str:
    """"ETA 3m05s (at 16:24)", or that it is not known yet."""
    if seconds_left is None or not math.isfinite(seconds_left):
        return "ETA unknown yet"
    at = datetime.now() + timedelta(seconds=seconds_left)
    return f"ETA {duration(seconds_left)} (at {at:%H:%M})"


class LogProgress:
    """tqdm's ``update`` / ``set_postfix`` as timestamped log lines, at most one per interval."""

    def __init__(self, *, total: int | None, desc: str, unit: str, interval: float) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.start = self.last = time.monotonic()
        self.spoke = False

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(finished=kind is None)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.spoke = True
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        if self.total:
            done = f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"
            left = elapsed / self.n * (self.total - self.n) if self.n else None
            timing = f"{duration(elapsed)} elapsed, {eta_text(left)}"
        else:
            done, timing = f"{self.n} {self.unit}", f"{duration(elapsed)} elapsed"
        extra = ", ".join(f"{key}={value}" for key, value in self.postfix.items())
        return f"{self.desc}: {done}, {timing}" + (f"; {extra}" if extra else "")

    def close(self, finished: bool = True) -> None:
        if self.spoke and finished:  # a loop that said how far it was also says it ended
            log.info("%s: done, %d %s in %s", self.desc, self.n, self.unit, duration(time.monotonic() - self.start))
        self.spoke = False


def progress_bar(*, total: int | None, desc: str, unit: str = "it", enable: bool = True) -> tqdm | LogProgress:
    """A tqdm bar on a terminal, timestamped lines elsewhere, nothing when ``enable`` is false."""
    mode = progress_mode() if enable else "off"
    if mode == "log":
        return LogProgress(total=total, desc=desc, unit=unit, interval=interval_seconds())
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True, disable=mode != "bar",
                leave=False)
