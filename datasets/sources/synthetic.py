"""The embedded synthetic dataset: features with the structure that makes LiteEval work.

Real FCVID / ActivityNet features cannot be shipped, so the suite generates a store with
the same format and the properties the paper's argument rests on (docs/synthetic.md lists
every knob):

* redundancy: a video's class evidence is present only in some frames ("evidence frames",
  arriving in bursts). "Static" classes (scenes, objects) show it in most frames, "action"
  classes in few; the fraction also varies from video to video;
* coarse versus fine: the coarse stream carries the evidence with a lower gain and more
  noise, and for classes in *confusable pairs* it keeps only a small part (``pair_alpha``)
  of what tells the two classes apart, which the fine stream keeps in full;
* temporal correlation: a per-video scene offset and AR(1) nuisance that drifts slowly
  over frames, and bursty evidence, so K consecutive frames tell less than K frames spread
  over the video;
* variable length (gamma-distributed around a mean, in frames at 1 fps) and difficulty (a
  per-class and per-video evidence strength).

Generation is vectorised over a chunk of videos (a Python loop runs over time steps only)
and deterministic for a seed: chunk ``k`` draws from its own ``SeedSequence`` child, so the
output does not depend on anything but the config and the seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np

from datasets.common.errors import UsageError
from datasets.common.gitinfo import git_state
from datasets.common.progress import progress_bar
from datasets.extraction.backbones import COST_BACKEND, PAPER_STREAMS, count_gmacs_per_frame
from datasets.store.manifest import StreamSpec
from datasets.store.writer import StoreWriter

GENERATOR_VERSION = 1
STATIC, ACTION = 1, 0


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; docs/synthetic.md explains each."""

    num_classes: int
    num_videos: int
    train_fraction: float = 0.6
    mean_frames: float = 60.0
    std_frames: float = 20.0
    min_frames: int = 8
    max_frames: int = 300
    latent_dim: int = 32
    coarse_dim: int = 128
    fine_dim: int = 512
    # Redundancy.
    static_class_fraction: float = 0.5
    static_evidence: tuple[float, float] = (0.5, 0.8)  # range of class-mean evidence fractions
    action_evidence: tuple[float, float] = (0.06, 0.2)
    evidence_concentration: float = 8.0  # Beta concentration of per-video fractions
    static_burst: float = 12.0  # mean length (frames) of an evidence burst
    action_burst: float = 3.0
    # Coarse versus fine.
    confusable_fraction: float = 0.5  # fraction of classes that sit in confusable pairs
    pair_alpha: float = 0.15  # share of the pair-separating signal the coarse stream keeps
    coarse_gain: float = 0.7  # evidence gain of the coarse stream
    coarse_noise: float = 0.6  # per-dimension i.i.d. noise (features are O(1))
    fine_noise: float = 0.3
    # Temporal correlation and nuisance.
    temporal_rho: float = 0.9  # AR(1) coefficient of the nuisance between frames
    nuisance_scale: float = 0.8
    scene_scale: float = 0.6  # per-video constant offset
    # Difficulty.
    signal_strength: float = 3.0
    class_strength_spread: float = 0.3  # class strength ~ U(1 - s, 1 + s)
    video_strength_sigma: float = 0.35  # per-video strength ~ class * lognormal(0, sigma)
    chunk_videos: int = 512  # videos generated at once (fixed: part of determinism)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise UsageError("num_classes must be at least 2")
        if self.num_videos < 2:
            raise UsageError("num_videos must be at least 2")
        if not 0 < self.train_fraction < 1:
            raise UsageError("train_fraction must be in (0, 1)")
        if not 1 <= self.min_frames <= self.max_frames:
            raise UsageError("need 1 <= min_frames <= max_frames")
        if not 0 <= self.temporal_rho < 1:
            raise UsageError("temporal_rho must be in [0, 1)")


# Preset sizes. ``default`` is the embedded default of the main job: FCVID's per-video length
# distribution (mean 167 frames at 1 fps, as ``paper``) so that Uniform's 25 frames cover about
# 15 percent of a video as in the real benchmark, at the earlier default's 40 classes, 3,000
# videos and 128-d / 512-d features so that it runs on a laptop (docs/synthetic.md, "Why the
# default has FCVID's lengths"). ``paper`` has FCVID's
# per-video shape (239 classes, 1280-d / 2048-d) and is meant for a GPU; its video count is a
# flag (16,000 videos ~ 18 GB of float16).
PRESETS: dict[str, SynthConfig] = {
    "tiny": SynthConfig(
        num_classes=8, num_videos=160, mean_frames=20, std_frames=6, min_frames=6, max_frames=40,
        latent_dim=16, coarse_dim=16, fine_dim=32,
    ),
    "default": SynthConfig(num_classes=40, num_videos=3000, mean_frames=167, std_frames=80, min_frames=20,
                           max_frames=600),
    # A user's small dataset (issue 12): 16 classes, 320 training and 200 test videos of 20 to
    # 60 frames, 1280-d coarse and 2048-d fine features, each video's evidence in one short
    # burst that the coarse stream also shows (action classes, no confusable pairs). Budgets in
    # epochs leave it untrainable; the step floor of benchmark/protocol/budget.py does not.
    "small": SynthConfig(
        num_classes=16, num_videos=520, train_fraction=320 / 520, mean_frames=40, std_frames=12, min_frames=20,
        max_frames=60, coarse_dim=1280, fine_dim=2048, static_class_fraction=0.0, confusable_fraction=0.0,
        action_burst=4.0,
    ),
    "paper": SynthConfig(
        num_classes=239, num_videos=16000, train_fraction=0.5, mean_frames=167, std_frames=80, min_frames=20,
        max_frames=600, latent_dim=64, coarse_dim=1280, fine_dim=2048,
    ),
}
PAPER_BYTES_PER_VIDEO = 167 * (1280 + 2048) * 2


def preset(name: str, **overrides: Any) -> SynthConfig:
    """A preset's config, with ``overrides`` (e.g. ``num_videos``) applied."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def knobs(settings: list[str]) -> dict[str, Any]:
    """``KNOB=VALUE`` strings (``synth --set``) as ``preset`` overrides. A value is read as JSON
    and kept as written (60 stays an int, as in a ``preset(...)`` call: the store's fingerprint
    hashes the recorded knobs), a list becoming a pair; a knob the generator lacks, or a value of
    the wrong kind, is one line naming it."""
    kinds = get_type_hints(SynthConfig)  # int, float or tuple[float, float]
    known = {f.name: getattr(PRESETS["default"], f.name) for f in fields(SynthConfig)}
    out: dict[str, Any] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or key not in known:
            raise UsageError(f"--set {setting}: expected KNOB=VALUE with a knob of the generator: {', '.join(known)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise UsageError(f"--set {setting}: {text!r} is not a number or a [low, high] pair") from None
        kind, default = kinds[key], known[key]
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = _number(value)
        else:  # a (low, high) pair
            ok = isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value)
            value = tuple(value) if ok else value
        if not ok:
            what = kind.__name__ if kind in (int, float) else "[low, high] pair"
            raise UsageError(f"--set {setting}: {key} takes {what} values like {default!r}")
        out[key] = value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class ClassWorld:
    """Class-level ground truth shared by all videos."""

    kind: np.ndarray  # (C,) STATIC or ACTION
    partner: np.ndarray  # (C,) confusable partner class, -1 if none
    evidence_rate: np.ndarray  # (C,) mean fraction of evidence frames
    burst: np.ndarray  # (C,) mean evidence burst length
    strength: np.ndarray  # (C,)
    fine_signal: np.ndarray  # (C, L)
    coarse_signal: np.ndarray  # (C, L)
    fine_projection: np.ndarray  # (L, Df)
    coarse_projection: np.ndarray  # (L, Dc)


def make_world(cfg: SynthConfig, rng: np.random.Generator) -> ClassWorld:
    c, latent = cfg.num_classes, cfg.latent_dim
    kind = np.where(rng.random(c) < cfg.static_class_fraction, STATIC, ACTION)
    lo_s, hi_s = cfg.static_evidence
    lo_a, hi_a = cfg.action_evidence
    rate = np.where(kind == STATIC, rng.uniform(lo_s, hi_s, c), rng.uniform(lo_a, hi_a, c))
    burst = np.where(kind == STATIC, cfg.static_burst, cfg.action_burst)
    strength = rng.uniform(1 - cfg.class_strength_spread, 1 + cfg.class_strength_spread, c)

    # Confusable pairs share a group prototype; members differ by their own direction.
    partner = np.full(c, -1)
    paired = rng.permutation(c)[: 2 * int(cfg.confusable_fraction * c / 2)]
    for a, b in paired.reshape(-1, 2):
        partner[a], partner[b] = b, a
    group = np.arange(c)
    group[partner >= 0] = np.minimum(np.arange(c), partner)[partner >= 0]
    shared = rng.standard_normal((c, latent)) / np.sqrt(latent)
    own = rng.standard_normal((c, latent)) / np.sqrt(latent)
    fine = shared[group] + own
    alpha = np.where(partner >= 0, cfg.pair_alpha, 1.0)[:, None]
    coarse = cfg.coarse_gain * (shared[group] + alpha * own)
    return ClassWorld(
        kind=kind,
        partner=partner,
        evidence_rate=rate,
        burst=burst,
        strength=strength,
        fine_signal=fine.astype(np.float32),
        coarse_signal=coarse.astype(np.float32),
        fine_projection=(rng.standard_normal((latent, cfg.fine_dim)) / np.sqrt(latent)).astype(np.float32),
        coarse_projection=(rng.standard_normal((latent, cfg.coarse_dim)) / np.sqrt(latent)).astype(np.float32),
    )


def _lengths(cfg: SynthConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    shape = (cfg.mean_frames / cfg.std_frames) ** 2
    scale = cfg.std_frames**2 / cfg.mean_frames
    return np.clip(np.rint(rng.gamma(shape, scale, n)), cfg.min_frames, cfg.max_frames).astype(np.int64)


def generate_chunk(
    cfg: SynthConfig, world: ClassWorld, labels: np.ndarray, lengths: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Frames of a chunk of videos, packed video by video: coarse, fine and evidence."""
    b, t_max, latent = len(labels), int(lengths.max()), cfg.latent_dim
    valid = np.arange(t_max)[None, :] < lengths[:, None]

    # Evidence: a two-state Markov chain per video with the video's stationary fraction
    # and the class's mean burst length.
    rate = world.evidence_rate[labels]
    k = cfg.evidence_concentration
    frac = np.clip(rng.beta(rate * k, (1 - rate) * k), 0.02, 0.98)
    p_off = 1.0 / world.burst[labels]
    p_on = np.minimum(1.0, frac * p_off / (1 - frac))
    state = rng.random(b) < frac
    draws = rng.random((b, t_max))
    evidence = np.empty((b, t_max), dtype=bool)
    for t in range(t_max):
        evidence[:, t] = state
        state = np.where(state, draws[:, t] >= p_off, draws[:, t] < p_on)
    evidence &= valid
    # Every video shows its class at least once.
    none = ~evidence.any(axis=1)
    if none.any():
        pick = (rng.random(none.sum()) * lengths[none]).astype(np.int64)
        evidence[np.flatnonzero(none), pick] = True

    # Nuisance: per-video scene offset + AR(1) drift over frames.
    eps = rng.standard_normal((b, t_max, latent), dtype=np.float32)
    drift = np.empty_like(eps)
    drift[:, 0] = eps[:, 0]
    innovation = np.sqrt(1 - cfg.temporal_rho**2)
    for t in range(1, t_max):
        drift[:, t] = cfg.temporal_rho * drift[:, t - 1] + innovation * eps[:, t]
    scene = rng.standard_normal((b, 1, latent), dtype=np.float32)
    nuisance = (cfg.nuisance_scale * drift + cfg.scene_scale * scene) / np.sqrt(latent)

    strength = cfg.signal_strength * world.strength[labels] * rng.lognormal(0.0, cfg.video_strength_sigma, b)
    on = (evidence * strength[:, None]).astype(np.float32)[..., None]  # (b, T, 1)
    fine_latent = (on * world.fine_signal[labels][:, None, :] + nuisance)[valid]
    coarse_latent = (on * world.coarse_signal[labels][:, None, :] + nuisance)[valid]
    frames = fine_latent.shape[0]
    fine = fine_latent @ world.fine_projection
    fine += cfg.fine_noise * rng.standard_normal((frames, cfg.fine_dim), dtype=np.float32)
    coarse = coarse_latent @ world.coarse_projection
    coarse += cfg.coarse_noise * rng.standard_normal((frames, cfg.coarse_dim), dtype=np.float32)
    return {"coarse": coarse, "fine": fine, "evidence": evidence[valid]}


def matching_store(out: Path | str, cfg: SynthConfig, seed: int) -> bool:
    """Is there already a valid store at ``out`` generated with exactly ``cfg`` and ``seed``?"""
    from datasets.common.errors import StoreError
    from datasets.store.reader import FeatureStore

    try:
        provenance = FeatureStore.open(out).manifest.provenance
    except (StoreError, OSError):
        return False
    params = json.loads(json.dumps(asdict(cfg)))  # tuples -> lists, as stored in JSON
    return (
        provenance.get("kind") == "synthetic"
        and provenance.get("generator_version") == GENERATOR_VERSION
        and provenance.get("seed") == seed
        and provenance.get("params") == params
    )


def synthesize(
    cfg: SynthConfig,
    out: Path | str,
    *,
    seed: int,
    name: str = "synthetic",
    preset_name: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Generate a store at ``out`` (published atomically) and return its path."""
    root = np.random.SeedSequence(seed)
    world_seq, video_seq, chunk_seq = root.spawn(3)
    world = make_world(cfg, np.random.default_rng(world_seq))
    vrng = np.random.default_rng(video_seq)
    n = cfg.num_videos
    labels = vrng.integers(0, cfg.num_classes, n)
    lengths = _lengths(cfg, vrng, n)
    n_train = int(round(cfg.train_fraction * n))
    splits = ["train"] * n_train + ["test"] * (n - n_train)  # grouped by split: one read each
    width = len(str(n - 1))
    video_ids = [f"{name}_{i:0{width}d}" for i in range(n)]
    classes = [f"{'static' if k == STATIC else 'action'}_{c:03d}" for c, k in enumerate(world.kind)]
    onehot = np.zeros((n, cfg.num_classes), dtype=np.uint8)
    onehot[np.arange(n), labels] = 1

    streams = {}
    for stream, backbone in PAPER_STREAMS.items():
        streams[stream] = StreamSpec(
            backbone=backbone.name,
            resolution=backbone.resolution,
            dim=cfg.coarse_dim if stream == "coarse" else cfg.fine_dim,
            gmacs_per_frame=count_gmacs_per_frame(backbone.name, backbone.resolution),
            provenance={
                "kind": "synthetic",
                "stands_in_for": f"torchvision {backbone.name} at {backbone.resolution}x{backbone.resolution}, "
                f"penultimate {backbone.feature_dim}-d features",
                "cost": f"ptflops backend={COST_BACKEND} on that model",
            },
        )
    provenance = {
        "kind": "synthetic",
        "generator": "datasets.synthetic",  # a stable identifier recorded in stores, not a module path
        "generator_version": GENERATOR_VERSION,
        "preset": preset_name,
        "seed": seed,
        "params": asdict(cfg),
        "git_commit": git_state()["commit"],
    }
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    chunk_seeds = chunk_seq.spawn((n + cfg.chunk_videos - 1) // cfg.chunk_videos)
    with StoreWriter(
        out, name=name, classes=classes, multi_label=False, fps=1.0, streams=streams, video_ids=video_ids,
        splits=splits, labels=onehot, lengths=lengths, provenance=provenance, overwrite=overwrite,
    ) as writer:
        evidence = np.zeros(int(offsets[-1]), dtype=np.uint8)
        with progress_bar(total=int(offsets[-1]), desc=f"synth {name}", unit="frame", enable=show_progress) as bar:
            for k, seq in enumerate(chunk_seeds):
                lo, hi = k * cfg.chunk_videos, min(n, (k + 1) * cfg.chunk_videos)
                frames = generate_chunk(cfg, world, labels[lo:hi], lengths[lo:hi], np.random.default_rng(seq))
                start = int(offsets[lo])
                writer.write_frames("coarse", start, frames["coarse"])
                writer.write_frames("fine", start, frames["fine"])
                evidence[start : start + len(frames["evidence"])] = frames["evidence"]
                bar.update(len(frames["evidence"]))
        # Ground truth for analyses (which frames carry evidence, class kinds and pairs);
        # loaders ignore extras/.
        writer.write_extra("evidence", evidence)
        writer.write_extra("class_kind", world.kind.astype(np.uint8))
        writer.write_extra("confusable_partner", world.partner.astype(np.int64))
    return Path(out)
