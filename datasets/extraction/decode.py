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
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.common.errors import UsageError, UserError

SEEK_GAP_SECONDS = 1.0  # seek when the next target is further ahead than this


class VideoDecodeError(UserError, RuntimeError):
    """A video cannot be opened or yields no frame; the message names the file and says why."""


@dataclass
class DecodedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, short side == short_side
    duration: float | None  # seconds, from the container (None if unknown)
    decoded: int  # frames the decoder produced (to check that seeking saved work)
    seeks: int


def _scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameReader:
    """The frames of ``path`` at ``fps`` (see the module docstring), scaled to ``short_side``,
    one at a time: iterating yields ``(seconds from the start, (H, W, 3) uint8 RGB)``.

    Open it as a context manager (or call ``close``); ``decoded`` and ``seeks`` count the
    work done so far."""

    def __init__(self, path: Path | str, fps: float, short_side: int) -> None:
        import av

        if fps <= 0:
            raise UsageError(f"fps must be positive, got {fps}")
        self._av = av
        self.path = Path(path)
        self.fps, self.short_side = fps, short_side
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise self._error(f"cannot open: {exc} (is it a complete video file?)") from None
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
        #: Frames the reader will yield (None when the container does not say how long it is).
        self.count = max(1, math.floor(self.duration * fps + 1e-6)) if self.duration else None
        self.decoded = self.seeks = 0
        self._frames: Iterator[Any] | None = None

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
            if not yielded:
                raise self._error(f"corrupt stream: {exc}") from None
            return None  # a damaged tail: keep what was decoded before it
        if frame is not None:
            self.decoded += 1
            if frame.time is None:
                raise self._error("frames carry no timestamps; re-mux the file (ffmpeg -i in -c copy out)")
        return frame

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        try:
            yield from self._targets()
        except self._av.FFmpegError as exc:
            raise self._error(f"decoding failed: {exc}") from None

    def _targets(self) -> Iterator[tuple[float, np.ndarray]]:
        base, stream = self._stream.time_base, self._stream
        yielded = 0
        current = None  # the last decoded frame
        seek_gap = SEEK_GAP_SECONDS
        size = None
        while self.count is None or yielded < self.count:
            target = self.start + yielded / self.fps
            if self._frames is None or (current is not None and target - current.time > seek_gap):
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


def decode_at_fps(path: Path | str, fps: float, short_side: int) -> DecodedVideo:
    """Every frame of ``path`` at ``fps``, scaled to ``short_side`` (``FrameReader``'s frames)."""
    with FrameReader(path, fps, short_side) as reader:
        frames = [frame for _, frame in reader]
    if not frames:
        raise VideoDecodeError(f"video {path}: no decodable frame")
    return DecodedVideo(np.stack(frames), reader.duration, reader.decoded, reader.seeks)
