"""One results folder, ``results/<name>/``: its layout, who may write it, and when a pair in it is done.

The layout of ``results/<run name>/`` (every name is spelled in this module only)::

    table.md table.csv table.tex   the comparison table (rows in the paper's order)
    metrics.json                   the folder's summary: "summary" per method (means, stds, the
                                   paired bootstrap difference to Uniform) and "per_seed": every
                                   pair's record
    provenance.json                config, seeds, budget, validation ids, versions, git commit,
                                   machine, dataset, costs
    earlier.json                   only after a run on another machine replaced results that
                                   were here: their summary, which the run compared itself with
    crosscheck.json                that comparison (benchmark/crosscheck.py)
    runs/<method>/seed<k>/
        config.json                what this result was computed with (resume checks it)
        scores.npz                 per-video class scores, labels, costs, frames read
        model.pt                   the trained weights (state_dict), for online evaluation
        diagnostics.npz            per-video extras a method reports, if any (see pack_diagnostics)
        record.json                written last, with the SHA-256 of the files above: the
                                   pair is done when they are all there with those contents
                                   (its schema: benchmark/record.py)
    online.csv online.json         the online budget curves (python -m benchmark online)
    latency.json latency.md        time per video measured on one device (python -m benchmark latency)
    figures/                       the figures, PNG and PDF (python -m benchmark plot)
    tune.md tune.json tuned.json   a tuning run's trials and choice (python -m benchmark tune)
    notes.md                       written by hand: how the folder was made, what it says
                                   (shown on docs/results.md by python -m benchmark report)

Two promises live here (docs/guarantees.md):

* **One writer.** ``folder_lock`` takes an exclusive ``flock`` on ``<folder>/.lock`` for the
  whole invocation; a second run on the same folder is refused at once with the holder's pid
  and command line (two runs with different settings would otherwise interleave their pairs
  and leave a table that no single run produced). Taking the lock is also the first write,
  so a folder that cannot be written is reported before anything trains.
* **Done means complete and consistent.** A method/seed pair is done only when its
  record (written last) parses and records the SHA-256 of every other file of the
  pair, those files are there with exactly those contents, and its numbers are what its
  scores.npz gives (``numbers_disagreement``). A pair whose rewrite was
  interrupted, or whose scores or weights were deleted, is therefore not done and is
  computed again; the record of a pair being recomputed is removed first.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.common.atomic import file_sha256, remove_orphans
from datasets.common.errors import UsageError
from datasets.common.gitinfo import REPO

try:  # POSIX; elsewhere the folder is not locked (and the user is told so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- the layout, spelled here only
LOCK_NAME = ".lock"
SUMMARY = "metrics.json"  # the folder's summary: every pair's record, means, differences
PROVENANCE = "provenance.json"
TABLE_MD, TABLE_CSV, TABLE_TEX = "table.md", "table.csv", "table.tex"
NOTES = "notes.md"
FIGURES = "figures"
ONLINE_CSV, ONLINE_JSON = "online.csv", "online.json"
LATENCY_JSON, LATENCY_MD = "latency.json", "latency.md"
TUNE_MD, TUNE_JSON, TUNED_JSON = "tune.md", "tune.json", "tuned.json"
TRANSFER_JSON, TRANSFER_MD = "transfer.json", "transfer.md"  # a choice of settings across stores (`transfer`)
EARLIER, CROSSCHECK = "earlier.json", "crosscheck.json"  # results from another machine, and the comparison
STREAM_RECORDS = "stream-*.json"  # saved `python -m benchmark stream --out` runs
RUNS = "runs"
#: An accuracy-cost sweep (python -m benchmark curves): its evaluation-time points, table and per-point rows.
POINTS, CURVES_CSV, CURVES_JSON, CURVES_MD = "points", "curves.csv", "curves.json", "curves.md"
MATCHED_JSON = "matched.json"  # a sweep read at matched budgets (benchmark/presentation/curves.py), for the README
POINT_RECORD = "point.json"
CURVES_SUFFIX = "-curves"  # results/<run>-curves holds the sweep of results/<run>
#: A pair's files: the record marks it done (written last, with the others' checksums).
RECORD = "record.json"
CONFIG, SCORES, WEIGHTS, DIAGNOSTICS = "config.json", "scores.npz", "model.pt", "diagnostics.npz"
#: Files every finished pair's record lists (with their checksums); diagnostics only when a method
#: reports any.
REQUIRED_FILES = (CONFIG, SCORES, WEIGHTS)
OPTIONAL_FILES = (DIAGNOSTICS,)
#: Files a record lists that need not be in the folder: trained weights are reproducible by command
#: and not committed to git (.gitignore); a pair is done without them, and the commands that
#: evaluate a trained model again say how to get them back (``load_weights``). Where present,
#: they must match the record's checksum.
NOT_KEPT = (WEIGHTS,)
#: The version of the files' schema (docs/results-format.md), written as ``SCHEMA_KEY`` into
#: metrics.json, every pair's record.json, earlier.json, tune.json and transfer.json. Version 2:
#: a percentage is always named ``*_percent`` (in the CSV files too), so an unsuffixed ``map`` or
#: ``top1`` is a fraction (0..1) in every file. Version 1 (files without the key, before
#: 2026-12-06) had the summary's ``map``, ``top1`` and the tunes' ``validation_map`` in percent
#: under those names; it is refused (``read_current``): no committed folder holds it any more.
SCHEMA_VERSION = 2
SCHEMA_KEY = "schema_version"
#: The last commit whose suite converts schema 1 (``python -m benchmark migrate``, since removed).
LAST_MIGRATE = "d4a039a"


def is_published_root(root: Path) -> bool:
    """Whether ``root`` is the repository's own results/: the one its README and docs/results.md
    describe (``report`` rewrites them only from it, ``reproduce`` ends with ``report`` only there)."""
    return root.resolve() == (REPO / "results").resolve()


#: What joins one store's several tunes into one RUN of ``transfer`` (its arguments and record).
GROUP = "+"


def run_folder(run: str | Path, results_dir: str | Path) -> Path:
    """A run named as every command names it: a folder's path, else its name (``--name``) under
    ``results_dir`` (a name has no folder separator: one that has is a path, named as given in the
    caller's error where it does not exist). Whether it holds a run is the caller's to say."""
    return Path(run) if Path(run).is_dir() or len(Path(run).parts) > 1 else Path(results_dir) / str(run)


def pair_dir(out: Path, name: str, seed: int | str) -> Path:
    """The folder of result ``name``'s seed ``seed`` in the results folder ``out``."""
    return out / RUNS / name / f"seed{seed}"


def point_dir(out: Path, name: str, label: str, seed: int | str) -> Path:
    """The folder of one evaluation-time point (``label``) of method ``name``'s seed ``seed`` in a sweep."""
    return out / POINTS / name / label / f"seed{seed}"


def record_path(folder: Path) -> Path:
    """The record of the pair in ``folder``."""
    return folder / RECORD


def retire_old_name(folder: Path, name: str) -> None:
    """Nothing, now that files are read under their current names only (the names before issue 25,
    a pair's metrics.json and reference*.json, are in no committed folder). Kept while
    benchmark/pair.py, whose code every pair's fingerprint hashes, still calls it: removing the
    call would stale every committed pair; it goes with that file's next change."""


#: Where in a results folder the suite writes (globs relative to the folder; "" is the folder):
#: the only places where a killed writer's temporaries are looked for.
WRITTEN_IN = ("", f"{RUNS}/*/seed*", FIGURES)


class FolderInUseError(UsageError):
    """Another process holds the results folder's lock."""


class LinkInFolderError(UsageError):
    """A results folder holds a symbolic link, which could send its writes elsewhere."""


def refuse_links(folder: Path) -> None:
    """Refuse a results folder that holds a symbolic link anywhere inside it.

    Results folders are committed to git, so a clone can carry links: a ``.lock`` linking to
    another file would have that file truncated, a ``runs`` link would send the pairs' files
    elsewhere. Nothing the suite writes is a link, so any link is refused, with its path, the
    folder's own name first (``results/x -> ../..`` would redirect every write)."""
    if folder.is_symlink():
        raise LinkInFolderError(
            f"results folder {folder} is a symbolic link, -> {os.readlink(folder)}; the suite writes only into a "
            "plain folder and follows no link. Remove the link (or choose another --name)")
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(top) / name
            if path.is_symlink():
                raise LinkInFolderError(
                    f"results folder {folder} holds a symbolic link, {path} -> {os.readlink(path)}; the suite writes "
                    "only plain files there and follows no link. Remove the link (or choose another --name)")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since {info.get('since')})"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the duration; refuse if another process holds it.

    Orphan temporary files of writers that were killed mid-write are removed once the lock
    is held (no other writer can be active then)."""
    refuse_links(folder)  # before anything is created there: the folder's own name may be a link
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderInUseError(
            f"results folder {folder} cannot be written ({exc.strerror or exc}); make it writable or choose "
            "another --results-dir / --name") from None
    refuse_links(folder)
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        raise FolderInUseError(
            f"results folder {folder} cannot be written ({exc.strerror or exc}); make it writable or choose "
            "another --results-dir / --name") from None
    if fcntl is None:  # pragma: no cover - Windows
        log.warning("this platform has no flock: %s is not locked against a concurrent run", folder)
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUseError(
                f"results folder {folder} is in use by {_holder(path)}; wait for that run to finish, or write "
                "to another folder with --name") from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": shlex.join([Path(sys.executable).name, *sys.argv])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        for orphan in remove_orphans(folder, WRITTEN_IN):
            log.info("removed %s, left by a writer that was killed mid-write", orphan)
        yield
    finally:
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the flock


@dataclass(frozen=True)
class PairState:
    """What is on disk for one method/seed pair."""

    done: bool
    reason: str  # why it is not done ("" when it is)
    config: dict[str, Any] | None = None  # its config.json, when readable


def read_current(path: Path) -> Any:
    """``read_json`` of a file with a schema (``SCHEMA_KEY``), refused when an earlier version wrote
    it: its names would mean other units."""
    data = read_json(path)
    if isinstance(data, dict) and data and data.get(SCHEMA_KEY, 1) != SCHEMA_VERSION:
        raise UsageError(f"{path}: written in schema version {data.get(SCHEMA_KEY, 1)} of the results files, this "
                         f"version reads {SCHEMA_VERSION} only; recompute the folder with its command and --force "
                         f"(or convert it with `python -m benchmark migrate` of the suite at {LAST_MIGRATE})")
    return data


def read_json(path: Path) -> Any:
    """A JSON file's content; None when it is absent, empty or corrupt (a file a killed writer
    or a user damaged is no result, and must not stop a run)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


#: Pair states already read, while ``remembering_pair_states`` holds (None: not remembering).
_REMEMBERED: dict[Path, PairState] | None = None


@contextmanager
def remembering_pair_states() -> Iterator[None]:
    """Within the block, each folder's ``pair_state`` is read once (its checksums and its
    re-scored numbers cost about 0.1 s a pair). Only where nothing writes a pair meanwhile:
    ``report`` and its audit, and a run before it computes any pair (its pending pairs and the
    earlier pairs' times ask about the same ones); a pair is read afresh outside the block."""
    global _REMEMBERED
    outer = _REMEMBERED
    _REMEMBERED = {} if outer is None else outer
    try:
        yield
    finally:
        _REMEMBERED = outer


def pair_state(folder: Path) -> PairState:
    """Whether the pair in ``folder`` is complete: its marker parses and every file it
    lists is present with the recorded checksum."""
    if _REMEMBERED is None:
        return _read_pair_state(folder)
    key = Path(os.path.abspath(folder))
    if key not in _REMEMBERED:
        _REMEMBERED[key] = _read_pair_state(folder)
    return _REMEMBERED[key]


def _read_pair_state(folder: Path) -> PairState:
    marker = record_path(folder)
    if not marker.is_file():
        partial = [f for f in (*REQUIRED_FILES, *OPTIONAL_FILES) if (folder / f).is_file()]
        return PairState(False, "not computed" if not partial else f"incomplete ({RECORD} missing)")
    record = read_json(marker)
    if not isinstance(record, dict):
        return PairState(False, f"{marker.name} is empty or corrupt")
    config = read_json(folder / CONFIG)
    if not isinstance(config, dict):
        return PairState(False, "config.json is missing or corrupt")
    files = record.get("files")
    if files is None:
        return PairState(False, f"{marker.name} has no checksums (written by a version before they were recorded, or "
                                "stripped); it is computed again", config)
    if not isinstance(files, dict):
        return PairState(False, f"{marker.name} has unreadable checksums", config)
    for name in REQUIRED_FILES:
        if name not in files:
            return PairState(False, f"{marker.name} lists no {name}", config)
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            if name in NOT_KEPT:
                continue
            return PairState(False, f"{name} is missing", config)
        if file_sha256(path) != digest:
            return PairState(False, f"{name} does not match {marker.name} (an interrupted rewrite?)", config)
    problem = numbers_disagreement(folder, record, marker.name)
    return PairState(not problem, problem, config)


def numbers_disagreement(folder: Path, record: dict[str, Any], marker: str = RECORD) -> str:
    """Where a pair's record disagrees with its checksummed scores.npz ("" where it does not).

    The checksums cover the pair's other files, not the record itself, so its numbers are
    recomputed from the per-video scores, costs and reads and must equal what it says: mAP
    (also interpolated), top-1, the number of videos, and the per-video distributions of
    GFLOPs, frames read and module runs. A record edited by hand ("map": 99.9) is thus not
    a result, and the table, which reads the records, shows only numbers the artefacts give."""
    from benchmark.measurement.costs import distribution  # heavy imports (torch, scikit-learn), needed only here
    from benchmark.measurement.metrics import score

    try:
        with np.load(folder / SCORES) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 - any failure to read it means the file is not complete
        return "scores.npz is unreadable"
    if len(arrays.get("video_ids", [])) != record.get("num_eval_videos"):
        return f"scores.npz has {len(arrays.get('video_ids', []))} videos, {marker} says " \
               f"{record.get('num_eval_videos')}"
    scored = score(arrays["scores"], arrays["labels"])
    expected: dict[str, Any] = {"map": scored.map, "map_interpolated": scored.map_interpolated, "top1": scored.top1,
                                "gflops": distribution(arrays["gmacs"])}
    for prefix, key in (("frames_read_", "frames_read"), ("steps_", "steps")):
        expected[key] = {k[len(prefix):]: distribution(v) for k, v in arrays.items() if k.startswith(prefix)}
    # scores.npz keeps the reads of every stream the run loaded; the record, the method's own. A stream
    # the record leaves out must not have been read at all.
    recorded = record.get("frames_read")
    recorded_streams: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    for stream in [s for s in expected["frames_read"] if s not in recorded_streams]:
        if expected["frames_read"].pop(stream)["max"] > 0:
            return f"scores.npz records reads of stream {stream!r} that {marker} leaves out (an edited record?)"
    for key, value in expected.items():
        if not _same(record.get(key), value):
            return f"{marker} says {key} = {_short(record.get(key))}, its scores.npz gives {_short(value)} (an " \
                   "edited record?); recompute the pair with --force"
    return ""


def _same(recorded: Any, computed: Any) -> bool:
    if isinstance(computed, dict):
        return isinstance(recorded, dict) and set(recorded) == set(computed) and all(
            _same(recorded[k], v) for k, v in computed.items())
    return isinstance(recorded, int | float) and abs(recorded - computed) <= 1e-9 * max(1.0, abs(computed))


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}" if "mean" not in value else f"mean {value['mean']:.6g}"
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def has_weights(folder: Path) -> bool:
    """Whether the pair in ``folder`` has its trained weights here (``NOT_KEPT``: a clone has none)."""
    return (folder / WEIGHTS).is_file()


def load_weights(folder: Path, device: Any,
                 recompute: str = "`python -m benchmark run ... --force` (the run's own flags)",
                 ) -> dict[str, Any]:
    """A pair's saved weights (``model.pt``), loaded as plain tensors only (``weights_only``: a
    pickle payload in the file never runs); a file that is not a plain state dict is one line,
    and so are weights that were not kept (``NOT_KEPT``), with ``recompute``, the command that
    brings them back."""
    import pickle

    import torch

    path = folder / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the pair's trained weights are not here (results keep scores and records; weights are not "
            f"committed to git). Recompute the pair to get them back: {recompute}; on the kind of machine that "
            "computed it they come back bit for bit (their checksum is in its record), elsewhere its numbers are "
            "recomputed too. `run ... --restore-weights` recomputes every done pair of the run whose weights are "
            "missing, and only those")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path} is not a plain state dict of tensors that torch.load(weights_only=True) reads "
                         f"({reason}); recompute the pair with `python -m benchmark run ... --force`") from None


def start_pair(folder: Path) -> None:
    """Mark the pair as not done before any of its files is rewritten (an interrupted
    rewrite then leaves a pair that is redone, never old numbers under a new config)."""
    (folder / RECORD).unlink(missing_ok=True)
    for name in OPTIONAL_FILES:
        (folder / name).unlink(missing_ok=True)


def pairs_on_disk(out: Path) -> list[tuple[str, int]]:
    """Every (method result name, seed) with a folder under ``out/runs``."""
    found = []
    for seed_dir in sorted((out / RUNS).glob("*/seed*")):
        suffix = seed_dir.name[len("seed"):]
        if seed_dir.is_dir() and suffix.isdigit():
            found.append((seed_dir.parent.name, int(suffix)))
    return found


def load_scores(out: Path, name: str, seeds: Iterable[int | str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-video scores of result ``name``'s ``seeds`` in the folder ``out``: video ids (N,),
    labels (N, C) and scores stacked over the seeds (S, N, C). Every seed must have scored the
    same videos in the same order (a paired comparison needs it)."""
    ids: np.ndarray | None = None
    labels: np.ndarray | None = None
    stacked = []
    for seed in seeds:
        path = pair_dir(out, name, seed) / SCORES
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no scores for {name} seed {seed}; compute the pair first")
        with np.load(path) as data:
            if ids is None:
                ids, labels = data["video_ids"], data["labels"]
            elif not np.array_equal(ids, data["video_ids"]):
                raise UsageError(f"{path}: {name} seed {seed} scored other videos than its other seeds")
            stacked.append(data["scores"])
    if ids is None or labels is None:
        raise UsageError(f"{out}: no seeds of {name} asked for")
    return ids, labels, np.stack(stacked)


# ---------------------------------------------------------------------- online.csv
#: The ``method`` values of the online curves that are not methods but readings of the trained
#: frame classifier (benchmark/commands/online.py): Seq-K and Uniform-K.
SEQ_K, UNIFORM_K = "seq", "uniform_k"
ONLINE_BASELINES = (SEQ_K, UNIFORM_K)


# ---------------------------------------------------------------------- per-pair diagnostics
def pack_diagnostics(video_ids: list[str], diagnostics: dict[str, list]) -> bytes:
    """Per-video diagnostics as a compressed .npz: for each name, the values of every video
    flattened and concatenated (``<name>``) and where each video's values start
    (``<name>_offsets``, N + 1 entries). Read them back with ``unpack_diagnostics``."""
    arrays: dict[str, np.ndarray] = {"video_ids": np.asarray(video_ids)}
    for name, values in diagnostics.items():
        flat = [np.asarray(v).reshape(-1) for v in values]
        arrays[name] = np.concatenate(flat) if flat else np.zeros(0)
        arrays[f"{name}_offsets"] = np.concatenate([[0], np.cumsum([len(v) for v in flat])]).astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    return buffer.getvalue()


def unpack_diagnostics(path: Path | str) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """The inverse of ``pack_diagnostics``: video ids and, per name, one array per video."""
    with np.load(path) as data:
        ids = data["video_ids"].tolist()
        names = [k for k in data.files if k != "video_ids" and not k.endswith("_offsets")]
        out = {}
        for name in names:
            values, offsets = data[name], data[f"{name}_offsets"]
            out[name] = [values[offsets[i] : offsets[i + 1]] for i in range(len(ids))]
    return ids, out
