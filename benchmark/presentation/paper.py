"""The LiteEval paper's published numbers (Wu et al., NeurIPS 2019), written once.

``python -m benchmark report`` sets them beside the suite's results. mAP in percent and
GFLOPs (multiply-accumulates, 1e9) per video, as printed in the paper's tables.
"""

from __future__ import annotations

#: Table 1 (offline): method -> dataset -> (mAP %, GFLOPs per video).
TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "uniform": {"FCVID": (80.0, 195.5), "ActivityNet": (70.0, 195.5)},
    "lstm": {"FCVID": (79.8, 196.0), "ActivityNet": (70.8, 195.8)},
    "frameglimpse": {"FCVID": (71.2, 29.9), "ActivityNet": (60.2, 32.9)},
    "fastforward": {"FCVID": (67.6, 66.2), "ActivityNet": (54.7, 17.2)},
    "liteeval_rl": {"FCVID": (74.2, 245.9), "ActivityNet": (65.2, 269.3)},
    "liteeval": {"FCVID": (80.0, 94.3), "ActivityNet": (72.7, 95.1)},
}

#: Published numbers of the later methods (their own papers; other backbones, so context rather
#: than targets): method -> dataset -> (mAP %, GFLOPs per video).
LATER_METHODS: dict[str, dict[str, tuple[float, float]]] = {
    "adaframe": {"FCVID": (80.2, 75.1), "ActivityNet": (71.5, 79.0)},
    "scsampler": {"FCVID": (81.0, 42.0), "ActivityNet": (72.9, 42.0)},
    "arnet": {"FCVID": (81.3, 35.1), "ActivityNet": (73.8, 33.5)},
    "frameexit": {"ActivityNet": (76.1, 26.1)},
    "ocsampler": {"FCVID": (82.7, 26.8), "ActivityNet": (76.9, 21.7)},
}

#: Ablations on FCVID. Table 2: mAP without / with synchronisation. Table 3: gamma -> (mAP,
#: GFLOPs). Table 4: coarse LSTM units -> mAP (fine LSTM 2048).
TABLE2 = {"w/o sync": 65.7, "sync": 80.0}
TABLE3 = {0.01: (78.8, 75.4), 0.03: (79.7, 82.1), 0.05: (80.0, 94.3), 0.10: (80.1, 139.0)}
TABLE4 = {64: 76.9, 128: 77.3, 256: 78.3, 512: 80.0}
