"""``stream``: an online method of a run on a video as it plays (a file or a live source)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli.base import SubCommand
from datasets.common.errors import UsageError


class Stream(SubCommand):
    name = "stream"
    help = ("an online method of a run (LiteEval) on a video as it plays (a file, standard input, a network stream, a "
            "camera), with the fine backbone run only where its gate fires; then Uniform on the same video")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("video", help="the video: a file; or live, '-' for standard input (e.g. `ffmpeg -i SOURCE -f mpegts -`), a "
                           "URL (rtsp://, http://, udp://, srt:// ...) or a device with --input-format")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--name", help="the run whose trained models to use (results/<name>), trained on a store "
                                          "extracted from videos")
        which.add_argument("--run", help="the same as a folder path (a run under another results root)")
        add("--method", default="liteeval", help="the online method to stream (default liteeval)")
        add("--seed", type=int, help="which trained seed (default: the lowest in the run)")
        add("--compare", default="uniform",
            help="the offline method of the same run to run on the whole video afterwards (default uniform; none: no "
                 "comparison)")
        add("--store", help="the run's feature store, if it moved since training (default: the path its "
                            "provenance.json records)")
        add("--coarse-weights", help="the coarse backbone's checkpoint, if it moved since extraction")
        add("--fine-weights", help="the fine backbone's checkpoint, if it moved since extraction")
        add("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
        add("--realtime", action="store_true",
            help="wait for each frame's time in the video, as a camera would deliver it (default: as fast as decoding "
                 "allows)")
        add("--input-format", help="FFmpeg's name of a live source's format or device where it cannot be guessed "
                                   "(mpegts for standard input; v4l2, avfoundation, dshow for a camera where this "
                                   "PyAV build has them, else pipe the camera through ffmpeg)")
        add("--seconds", type=float, help="stop after this many seconds of the video (default: at its end; a live "
                                          "source also stops at Ctrl-C)")
        add("--top", type=int, default=3, help="running top classes printed per frame (3)")
        add("--out", help="also write the whole record (per-frame decisions, times, machine) as JSON here")
        add("--overwrite", action="store_true", help="replace an existing --out file")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.commands.stream import StreamOptions, stream_video, write_record
        from benchmark.presentation.stream_text import describe_frame, footer, header

        if args.top < 1:
            raise UsageError(f"--top must be >= 1, got {args.top}")
        if args.out and Path(args.out).exists() and not args.overwrite:
            raise FileExistsError(f"--out {args.out} already exists; choose another path, or pass --overwrite to "
                                  "replace it")
        weights = {s: w for s, w in (("coarse", args.coarse_weights), ("fine", args.fine_weights)) if w}
        compare = None if args.compare == "none" else args.compare
        options = StreamOptions(method=args.method, seed=args.seed, compare=compare, store=args.store,
                                weights=weights, device=args.device, realtime=args.realtime, top=args.top,
                                input_format=args.input_format, seconds=args.seconds)
        run = args.run or str(Path("results") / args.name)

        def show(frame: dict) -> None:  # the heading with the first frame (0), once the inputs are checked
            if frame["frame"] == 0:
                print(header(args.video, args.method, run))
            print(describe_frame(frame), flush=True)

        record = stream_video(args.video, run, options, on_frame=show)
        print(footer(record))
        if args.out:
            write_record(record, args.out)
            print(f"written: {args.out}")
        return 0
