"""Progress bars that show on a terminal and stay out of CI logs.

tqdm draws a bar only when stderr is a TTY (so CI logs and piped output stay readable);
``LITEEVAL_PROGRESS=1`` forces bars on and ``=0`` forces them off.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def bars_enabled() -> bool:
    forced = os.environ.get("LITEEVAL_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "no")
    return sys.stderr.isatty()


def progress_bar(*, total: int | None, desc: str, unit: str = "it", enable: bool = True) -> tqdm:
    """A tqdm bar (with rate) that is disabled off a TTY or when ``enable`` is false."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (enable and bars_enabled()),
        leave=False,
    )
