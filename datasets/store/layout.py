"""The on-disk layout of a feature store: every name and version in one place.

A store is a directory holding ``manifest.json`` (human-readable description) and
``features.h5`` (the packed arrays). docs/feature-store.md is the prose version of this
module; when you change a name here, change it there.
"""

from __future__ import annotations

FORMAT_NAME = "liteeval-feature-store"
FORMAT_VERSION = 1

MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.h5"

# HDF5 dataset names (all at the root of features.h5 except the per-stream arrays).
VIDEO_IDS = "video_ids"  # (N,) UTF-8 strings, unique
SPLITS = "splits"  # (N,) UTF-8 strings, one split name per video
LABELS = "labels"  # (N, C) uint8 multi-hot
OFFSETS = "offsets"  # (N + 1,) int64; video i owns frame rows offsets[i]:offsets[i+1]
FEATURES_GROUP = "features"  # features/<stream>: (offsets[-1], D) float16
EXTRAS_GROUP = "extras"  # optional, ignored by loaders (e.g. synthetic ground truth)

# manifest.json "checksums": a SHA-256 of the per-video arrays (ids, splits, labels, offsets),
# recorded by the writer, so an edited label or offset is caught (the frame arrays carry
# their own Fletcher-32 checksums, chunk by chunk).
HEADER_CHECKSUM = "header_sha256"

FEATURE_DTYPE = "float16"
LABEL_DTYPE = "uint8"
OFFSET_DTYPE = "int64"

# Streams every store must have; a store may add more.
REQUIRED_STREAMS = ("coarse", "fine")

# Rows per HDF5 chunk are chosen so a chunk holds about this many bytes: big enough that a
# whole-split read is a few large I/Os, small enough that the Fletcher-32 checksum (which
# lets a reader detect corrupted bytes) is verified per ~4 MiB.
CHUNK_BYTES = 4 * 1024 * 1024


def feature_dataset(stream: str) -> str:
    """HDF5 path of one stream's packed frame array."""
    return f"{FEATURES_GROUP}/{stream}"
