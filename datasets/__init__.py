"""Data layer of the LiteEval benchmark suite: feature stores, loaders, synthetic data.

Run from the repository root: ``python -m datasets {validate,ingest,extract,merge,synth} ...``.
The format is documented in docs/feature-store.md. The subpackages, by job:

* ``store``: the format (layout, manifest), reading, writing and checking a store;
* ``sources``: building a store from annotations and per-video features, or synthetically;
* ``extraction``: raw videos to a store (decoding, backbones and their cost, shards, merge);
* ``loading``: a split on the device, frame sampling, the metered accessor and the meter;
* ``common``: errors, atomic writes, the one ptflops wrapper, command line, progress, git and torchrun helpers.

The names below are the public API a method or a script needs.
"""

import importlib
from typing import Any

#: The public names and where they live; imported on first use, so that a tool reading saved
#: results (tables, figures, the report) does not load torch through this package.
_EXPORTS = {
    "AllFrames": "datasets.loading.sampling",
    "Batch": "datasets.loading.bank",
    "ConsecutiveFrames": "datasets.loading.sampling",
    "FeatureBank": "datasets.loading.bank",
    "FeatureStore": "datasets.store.reader",
    "FrameSampler": "datasets.loading.sampling",
    "IngestError": "datasets.common.errors",
    "Manifest": "datasets.store.manifest",
    "Problem": "datasets.common.errors",
    "ReadMeter": "datasets.loading.meter",
    "SplitSpec": "datasets.store.manifest",
    "StoreError": "datasets.common.errors",
    "StoreValidationError": "datasets.common.errors",
    "StreamSpec": "datasets.store.manifest",
    "UniformFrames": "datasets.loading.sampling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
