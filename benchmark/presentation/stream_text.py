"""What ``python -m benchmark stream`` prints, from its record: written once, so that the
command's output, the JSON it saves and the README's copy (``python -m benchmark report``) are
the same text. No torch here: reading a saved record must not load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets.extraction.decode import redacted

#: How a live pass that did not play to the video's end says so (its record's ``ended``).
ENDINGS = {"limit": " (stopped at --seconds)", "interrupted": " (stopped by Ctrl-C)",
           "broke off": " (the video broke off: {broke_off}; the frames before it are kept)"}


def header(video: str, method: str, run: str) -> str:
    shown = "standard input" if video == "-" else redacted(video)  # a camera URL's password: never printed
    return (f"{shown}: {method} from {run}, frame by frame as the video plays (time in the video, backbones run on "
            "the frame, time spent on it, running top classes)")


def describe_frame(record: dict[str, Any]) -> str:
    ran = "+".join(record["backbones"]) or "-"
    top = ", ".join(f"{name} {100 * p:.0f}%" for name, p in record["top"])
    return f"  {record['time_s']:6.1f} s  {ran:<12} {record['ms']:7.1f} ms   top: {top}"


def footer(record: dict[str, Any]) -> str:
    """The end of a streaming run: each method's frames, backbone runs and wall-clock time."""
    live, gmacs = record["live"], record["gmacs_per_frame"]

    def cost(runs: dict[str, int]) -> str:
        return f"{sum(runs[s] * gmacs[s] for s in runs):.1f} GMACs of backbones"

    def seconds(spent: dict[str, float]) -> str:
        return ", ".join(f"{s} {v:.2f} s" for s, v in spent.items())

    fine = live["backbone_frames"].get("fine", 0)
    lines = [f"{record['display'][live['method']]} (live, seed {live['seed']}): {live['frames']} frames at "
             f"{record['fps']:g} fps; coarse backbone on {live['backbone_frames'].get('coarse', 0)}, fine backbone "
             f"on {fine} ({100 * fine / live['frames']:.0f}%), {cost(live['backbone_frames'])}; "
             f"{live['wall_s']:.2f} s wall-clock ({'receive and decode' if record.get('live_source') else 'decode'} "
             f"{live['decode_s']:.2f} s, "
             + seconds(live["backbone_s"]) + f", method {live['method_s'] * 1000:.1f} ms); the slowest frame's work "
             f"{max(f['ms'] for f in live['per_frame']):.1f} ms of the {1000 / record['fps']:.0f} ms between frames; "
             f"top: {live['top'][0][0]}"
             + ENDINGS.get(live.get("ended", "end"), "").format(broke_off=live.get("broke_off"))]
    other = record.get("offline")
    if other:
        fine_offline = other["backbone_frames"].get("fine", 0)
        kept = other.get("decode_s") is None  # a live source's frames, kept from the live pass
        whole = live.get("ended", "end") == "end" and not kept
        lines.append(f"{record['display'][other['method']]} (offline, seed {other['seed']}, after the "
                     f"{'whole video' if whole else 'live pass, on its frames'}): {other['frames']} frames "
                     f"{'kept from the live pass (a live source plays once)' if kept else 'decoded'}, fine backbone "
                     f"on the {fine_offline} distinct frames of its {other['grid']}-frame grid, "
                     f"{cost(other['backbone_frames'])}; {other['wall_s']:.2f} s wall-clock ("
                     + ("" if kept else f"decode {other['decode_s']:.2f} s, ")
                     + seconds(other["backbone_s"]) + f"); top: {other['top'][0][0]}")
    machine = record["machine"]
    def weights(b: dict[str, Any]) -> str:
        if b["random"]:
            return f"RANDOM weights, seed {b.get('seed')}"
        if b.get("packaged"):
            return f"ImageNet weights from {b['packaged']}"
        return f"checkpoint {Path(b['checkpoint']).name}"

    backbones = ", ".join(f"{s} {b['backbone']}@{b['resolution']} ({weights(b)})"
                          for s, b in record["backbones"].items())
    video_seconds = f" for {live['video_s']:.1f} s of video" if live.get("video_s") else ""
    lines.append(f"Measured on {machine['cpu'] if machine['device'] == 'cpu' else machine.get('gpu')} "
                 f"({machine['device']}, {machine['torch_threads']} threads), torch {record['versions']['torch']}, "
                 f"{record['written'][:10]}; live wall-clock {live['wall_s']:.2f} s{video_seconds}; backbones: "
                 f"{backbones}.")
    return "\n".join(lines)


def render(record: dict[str, Any]) -> str:
    """The whole output of the streaming run ``record`` describes, as the command printed it."""
    lines = [header(record["video"], record["live"]["method"], record["run"])]
    lines += [describe_frame(frame) for frame in record["live"]["per_frame"]]
    return "\n".join([*lines, footer(record)])
