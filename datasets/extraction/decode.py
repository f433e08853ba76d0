"""Decode a video at a low, fixed frame rate with PyAV, seeking instead of decoding everything.

The paper's features are taken at 1 frame per second, from videos that run at 25-30 fps and
last minutes. Decoding every frame to keep one in thirty wastes most of the work, so for each
target time t_k = k / fps we seek to the keyframe before it and decode forward only to t_k.
Seeking pays when targets are further apart than the keyframe interval; when a seek lands at
or before the frame we already hold (long keyframe intervals), the distance it fell back is a
lower bound of that interval, and from then on the video is decoded forward unless the next
target is more than twice that far ahead. Frames are scaled by FFmpeg (swscale) straight
to a short side of ``short_side`` pixels, so a long HD video never sits in memory at full size.

Target times: t_k = start + k / fps for k = 0 .. floor(duration * fps) - 1 (at least one),
and frame k is the first decoded frame whose time is >= t_k (the last frame, if the stream
ends early).

``FrameReader`` yields the frames one at a time, decoding only as far as the next target, so a
consumer sees each frame as soon as the video has played up to it (``python -m benchmark
stream``); ``decode_at_fps`` collects them all (the extractor). Both pick the same frames.

A live source (``open_source``: standard input, a network stream's URL, a capture device) can be
neither sought nor measured: ``FrameReader`` then decodes forward only, starts the clock at the
first frame it decodes and reads until the source ends or ``limit`` frames are taken. The
targets and the rule that picks a frame for each are the same, so a video piped in picks the
frames its file does.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from datasets.common.errors import UsageError, UserError

SEEK_GAP_SECONDS = 1.0  # seek when the next target is further ahead than this
#: What names a live source other than standard input ("-"): a URL's scheme (rtsp://, http://,
#: udp://, srt://, ...) or FFmpeg's pipe:N; two letters at least, so that a Windows drive (C:) stays a path.
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
#: How long a live URL or device may take to open, and to send the next packet, before it counts as
#: gone (seconds): a camera that stops sending ends the pass instead of hanging it.
LIVE_TIMEOUTS = (15.0, 10.0)


class VideoDecodeError(UserError, RuntimeError):
    """A video cannot be opened or yields no frame; the message names the file and says why."""


@dataclass
class DecodedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, short side == short_side
    duration: float | None  # seconds, from the container (None if unknown)
    decoded: int  # frames the decoder produced (to check that seeking saved work)
    seeks: int


def redacted(name: str) -> str:
    """``name`` as it may be printed and recorded: a URL's password (rtsp://user:PASSWORD@camera/...,
    as IP cameras are addressed) replaced by ``***``."""
    if not URL.match(name):
        return name
    parts = urlsplit(name)
    if parts.password is None:
        return name
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass(frozen=True)
class Source:
    """What ``av.open`` is given for a video, and whether it is live (``open_source``)."""

    name: str  # as the user gave it
    target: Any  # a path, a URL or a device for FFmpeg, or a binary file object (standard input)
    live: bool
    input_format: str | None = None

    @property
    def shown(self) -> str:
        """The name as messages and records give it (``redacted``)."""
        return redacted(self.name)


def open_source(given: str | Path, input_format: str | None = None) -> Source:
    """A video file, or a live source: ``-`` (standard input, e.g. piped from ``ffmpeg ... -f mpegts
    -``), a URL (``rtsp://``, ``http://``, ``udp://`` ...) or, with ``input_format`` (FFmpeg's
    name for it: ``v4l2``, ``avfoundation``, ``dshow``, ``lavfi``), a device. Anything else that is
    not a file is refused with what a live source looks like."""
    name = str(given)
    if name == "-":
        if sys.stdin.isatty():  # nothing piped in: reading would wait for a video that never comes
            raise UsageError("-: standard input is a terminal; pipe a video into it, e.g. `ffmpeg -i SOURCE -f "
                             "mpegts - | python -m benchmark stream - ...`")
        return Source(name, sys.stdin.buffer, True, input_format)
    if Path(name).is_file():
        return Source(name, name, False, input_format)
    if URL.match(name) or input_format is not None:
        return Source(name, name, True, input_format)
    raise FileNotFoundError(f"{name}: no such video file (a live source is '-' for standard input, a URL such as "
                            "rtsp://HOST/PATH, or a device with --input-format, e.g. v4l2 /dev/video0)")


def _scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameReader:
    """The frames of ``source`` (a path, or ``open_source``'s answer) at ``fps`` (see the module
    docstring), scaled to ``short_side``, one at a time, the first ``limit`` of them where given:
    iterating yields ``(seconds from the start, (H, W, 3) uint8 RGB)``.

    Open it as a context manager (or call ``close``); ``decoded`` and ``seeks`` count the
    work done so far."""

    def __init__(self, source: Source | Path | str, fps: float, short_side: int, limit: int | None = None) -> None:
        import av

        if fps <= 0:
            raise UsageError(f"fps must be positive, got {fps}")
        if limit is not None and limit < 1:
            raise UsageError(f"a frame limit must be at least 1, got {limit}")
        self._av = av
        if not isinstance(source, Source):
            source = Source(str(source), str(source), False)
        self.path, self.live, self._name = source.shown, source.live, source.name
        self.fps, self.short_side = fps, short_side
        #: Why the video stopped before its end (a damaged tail; a live source that broke off), or None.
        self.broke_off: str | None = None
        timeout = LIVE_TIMEOUTS if source.live and isinstance(source.target, str) else None
        try:
            self._container = av.open(source.target, format=source.input_format, timeout=timeout)
        except (av.FFmpegError, OSError, ValueError) as exc:
            said = self._said(exc, f"no answer in {LIVE_TIMEOUTS[0]:g} s")
            why = "is it a live source that is playing?" if source.live else "is it a complete video file?"
            raise self._error(f"cannot open: {said} ({why})") from None
        if not self._container.streams.video:
            self._container.close()
            raise self._error("no video stream")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        self.start = float(stream.start_time * base) if stream.start_time is not None else 0.0
        if stream.duration is not None:
            self.duration: float | None = float(stream.duration * base)
        elif self._container.duration is not None:
            self.duration = self._container.duration / av.time_base
        else:
            self.duration = None
        if self.live:  # what a live source says of its start and length is not the stream's clock
            self.start, self.duration = 0.0, None
        #: The video's frames at ``fps`` (None: its length is unknown, a live source's always), and
        #: the most the reader will yield (``limit`` where it is shorter; None: until the source ends).
        self.length = max(1, math.floor(self.duration * fps + 1e-6)) if self.duration else None
        self.count = self.length if limit is None else min(self.length or limit, limit)
        self.decoded = self.seeks = 0
        self._frames: Iterator[Any] | None = None

    def _said(self, exc: Exception, waited: str) -> str:
        """What FFmpeg's ``exc`` says, with the URL's password hidden (``redacted``); a timeout of
        ``LIVE_TIMEOUTS`` (FFmpeg's "Immediate exit requested") as ``waited``."""
        return waited if isinstance(exc, self._av.ExitError) else str(exc).replace(self._name, self.path)

    def _error(self, why: str) -> VideoDecodeError:
        return VideoDecodeError(f"video {self.path}: {why}")

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _advance(self, yielded: int) -> Any:
        """The next decoded frame, or None at the end (or at a damaged tail after some frames)."""
        assert self._frames is not None
        try:
            frame = next(self._frames, None)
        except self._av.FFmpegError as exc:
            said = self._said(exc, f"no packet for {LIVE_TIMEOUTS[1]:g} s")
            if not yielded:
                raise self._error(f"corrupt stream: {said}") from None
            self.broke_off = said
            return None  # a damaged tail, a source gone quiet: keep what was decoded before it
        if frame is not None:
            self.decoded += 1
            if frame.time is None:
                raise self._error("frames carry no timestamps; re-mux the file (ffmpeg -i in -c copy out)")
        return frame

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        try:
            yield from self._targets()
        except self._av.FFmpegError as exc:
            raise self._error(f"decoding failed: {self._said(exc, 'timed out')}") from None

    def _targets(self) -> Iterator[tuple[float, np.ndarray]]:
        base, stream = self._stream.time_base, self._stream
        yielded = 0
        current = None  # the last decoded frame
        seek_gap = SEEK_GAP_SECONDS
        size = None
        while self.count is None or yielded < self.count:
            if self.live and self._frames is None:  # never sought: decode forward, the clock from the first frame
                self._frames = self._container.decode(stream)
                current = self._advance(yielded)
                if current is None:
                    return
                self.start = current.time
            target = self.start + yielded / self.fps
            if not self.live and (self._frames is None or (current is not None and target - current.time > seek_gap)):
                held = current.time if current is not None else None
                self._container.seek(max(0, int(target / base)), stream=stream, backward=True, any_frame=False)
                self.seeks += 1
                self._frames = self._container.decode(stream)
                current = self._advance(yielded)
                if held is not None and current is not None and current.time <= held:
                    # The keyframe before this target was behind us: keyframes lie at least this far
                    # apart, so seek again only for targets further ahead than that.
                    seek_gap = max(seek_gap, 2 * (target - current.time))
            while current is not None and current.time < target - 1e-6:
                following = self._advance(yielded)
                if following is None:
                    break
                current = following
            if current is None or (current.time < target - 1e-6 and yielded):
                return  # the stream ended (before this target, when the duration was an overestimate)
            if size is None:
                size = _scaled_size(current.width, current.height, self.short_side)
            yield current.time - self.start, current.to_ndarray(format="rgb24", width=size[0], height=size[1])
            yielded += 1


def decode_at_fps(path: Source | Path | str, fps: float, short_side: int, limit: int | None = None) -> DecodedVideo:
    """Every frame of ``path`` at ``fps`` (the first ``limit``), scaled to ``short_side``
    (``FrameReader``'s frames)."""
    with FrameReader(path, fps, short_side, limit) as reader:
        frames = [frame for _, frame in reader]
    if not frames:
        raise VideoDecodeError(f"video {reader.path}: no decodable frame")
    return DecodedVideo(np.stack(frames), reader.duration, reader.decoded, reader.seeks)
