"""Write a feature store with nothing but h5py, numpy and json (docs/feature-store.md).

    python docs/examples/write_store_by_hand.py OUT_DIR
    python -m datasets validate OUT_DIR

This is what to adapt when your features live somewhere `python -m datasets ingest` does
not read. tests/test_docs.py runs it and validates the result.
"""

import json
import sys
from pathlib import Path

import h5py
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True)

# Three videos of 4, 2 and 3 frames; two classes; train / test grouped (one read each).
video_ids = ["vid_a", "vid_b", "vid_c"]
splits = ["train", "train", "test"]
classes = ["cooking", "skiing"]
labels = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.uint8)  # multi-hot, (N, C)
lengths = np.array([4, 2, 3])
offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (N + 1,)
rng = np.random.default_rng(0)
coarse = rng.standard_normal((offsets[-1], 1280)).astype(np.float16)  # all frames, packed
fine = rng.standard_normal((offsets[-1], 2048)).astype(np.float16)

with h5py.File(out / "features.h5", "w") as h5:
    text = h5py.string_dtype("utf-8")
    h5.create_dataset("video_ids", data=np.array(video_ids, dtype=object), dtype=text)
    h5.create_dataset("splits", data=np.array(splits, dtype=object), dtype=text)
    h5.create_dataset("labels", data=labels)
    h5.create_dataset("offsets", data=offsets)
    # Chunking + fletcher32 are optional but let readers detect corrupted bytes.
    h5.create_dataset("features/coarse", data=coarse, chunks=(len(coarse), 1280), fletcher32=True)
    h5.create_dataset("features/fine", data=fine, chunks=(len(fine), 2048), fletcher32=True)

manifest = {
    "format": "liteeval-feature-store",
    "format_version": 1,
    "name": "my-dataset",
    "classes": classes,
    "multi_label": False,
    "fps": 1.0,
    "num_videos": len(video_ids),
    "num_frames": int(offsets[-1]),
    "splits": {"train": {"num_videos": 2, "labelled": True}, "test": {"num_videos": 1, "labelled": True}},
    "streams": {
        "coarse": {"backbone": "mobilenet_v2", "resolution": 112, "dim": 1280, "gmacs_per_frame": 0.0809,
                   "provenance": {"kind": "extractor", "weights": "/path/to/mobilenet_v2.pth"}},
        "fine": {"backbone": "resnet101", "resolution": 224, "dim": 2048, "gmacs_per_frame": 7.7994,
                 "provenance": {"kind": "extractor", "weights": "/path/to/resnet101.pth"}},
    },
    "provenance": {"kind": "hand-written", "script": "docs/examples/write_store_by_hand.py"},
}
(out / "manifest.json").write_text(json.dumps(manifest, indent=2))
print(f"wrote {out}")
