"""The experiments' names and defaults that the command line shows, in a module that imports
nothing heavy, so that ``python -m benchmark --help`` starts without torch."""

from __future__ import annotations

#: The paper's ablations (Tables 2-4) and the columns each table shows.
ABLATION_COLUMNS = {
    "sync": ["Method", "mAP (%)", "Top-1 (%)", "GFLOPs/video", "Fine frames/video", "Evidence lift"],
    "gamma": ["Method", "mAP (%)", "GFLOPs/video", "Fine frames/video", "Top-1 (%)", "Evidence lift"],
    "units": ["Method", "mAP (%)", "Top-1 (%)", "GFLOPs/video", "Params"],
}
ABLATION_KINDS = tuple(ABLATION_COLUMNS)
#: The frame classifier Uniform-K and Seq-K average (the paper's UNIFORM network).
FRAME_MODEL = "uniform"
#: The online method whose stopping points define Uniform-K's K'.
HORIZON_METHOD = "liteeval"

#: The stages of ``python -m benchmark reproduce``, in order (benchmark/reproduce.py).
REPRODUCE_STAGES = ("tune", "studies", "table", "ablate-sync", "ablate-gamma", "ablate-units", "online", "curves",
                    "checks", "latency", "plot", "others", "report")
