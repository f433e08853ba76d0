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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEEK_GAP_SECONDS = 1.0  # seek when the next target is further ahead than this


class VideoDecodeError(RuntimeError):
    """A video cannot be opened or yields no frame; the message says why."""


@dataclass
class DecodedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, short side == short_side
    duration: float | None  # seconds, from the container (None if unknown)
    decoded: int  # frames the decoder produced (to check that seeking saved work)
    seeks: int


def _scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_at_fps(path: Path | str, fps: float, short_side: int) -> DecodedVideo:
    """Frames of ``path`` at ``fps`` (see the module docstring), scaled to ``short_side``."""
    import av

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(f"cannot open: {exc}") from None
    try:
        if not container.streams.video:
            raise VideoDecodeError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        start = float(stream.start_time * base) if stream.start_time is not None else 0.0
        if stream.duration is not None:
            duration: float | None = float(stream.duration * base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        count = max(1, math.floor(duration * fps + 1e-6)) if duration else None
        frames: list[np.ndarray] = []
        decoded = seeks = 0
        frames_iter = None
        current = None  # the last decoded frame
        seek_gap = SEEK_GAP_SECONDS
        size = None

        def advance():
            nonlocal decoded
            try:
                frame = next(frames_iter, None)
            except av.FFmpegError as exc:
                if not frames:
                    raise VideoDecodeError(f"corrupt stream: {exc}") from None
                return None  # a damaged tail: keep what was decoded before it
            if frame is not None:
                decoded += 1
                if frame.time is None:
                    raise VideoDecodeError("frames carry no timestamps; re-mux the file (ffmpeg -i in -c copy out)")
            return frame

        while count is None or len(frames) < count:
            target = start + len(frames) / fps
            if frames_iter is None or (current is not None and target - current.time > seek_gap):
                held = current.time if current is not None else None
                container.seek(max(0, int(target / base)), stream=stream, backward=True, any_frame=False)
                seeks += 1
                frames_iter = container.decode(stream)
                current = advance()
                if held is not None and current is not None and current.time <= held:
                    # The keyframe before this target was behind us: keyframes lie at least this far
                    # apart, so seek again only for targets further ahead than that.
                    seek_gap = max(seek_gap, 2 * (target - current.time))
            while current is not None and current.time < target - 1e-6:
                following = advance()
                if following is None:
                    break
                current = following
            if current is None or (current.time < target - 1e-6 and frames):
                break  # the stream ended (before this target, when the duration was an overestimate)
            if size is None:
                size = _scaled_size(current.width, current.height, short_side)
            frames.append(current.to_ndarray(format="rgb24", width=size[0], height=size[1]))
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"decoding failed: {exc}") from None
    finally:
        container.close()
    if not frames:
        raise VideoDecodeError("no decodable frame")
    return DecodedVideo(np.stack(frames), duration, decoded, seeks)
