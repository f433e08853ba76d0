"""Data layer of the LiteEval benchmark suite: feature stores, loaders, synthetic data.

Run from the repository root: ``python -m datasets {validate,ingest,extract,merge,synth} ...``.
The format is documented in docs/feature-store.md. The subpackages, by job:

* ``store``: the format (layout, manifest), reading, writing and checking a store;
* ``sources``: building a store from annotations and per-video features, or synthetically;
* ``extraction``: raw videos to a store (decoding, backbones and their cost, shards, merge);
* ``loading``: a split on the device, frame sampling, the metered accessor and the meter;
* ``common``: errors, atomic writes, command line, progress, git and torchrun helpers.

The names below are the public API a method or a script needs.
"""

from datasets.common.errors import IngestError, Problem, StoreError, StoreValidationError
from datasets.loading.bank import Batch, FeatureBank
from datasets.loading.meter import ReadMeter
from datasets.loading.sampling import AllFrames, ConsecutiveFrames, FrameSampler, UniformFrames
from datasets.store.manifest import Manifest, SplitSpec, StreamSpec
from datasets.store.reader import FeatureStore

__all__ = [
    "AllFrames",
    "Batch",
    "ConsecutiveFrames",
    "FeatureBank",
    "FeatureStore",
    "FrameSampler",
    "IngestError",
    "Manifest",
    "Problem",
    "ReadMeter",
    "SplitSpec",
    "StoreError",
    "StoreValidationError",
    "StreamSpec",
    "UniformFrames",
]
