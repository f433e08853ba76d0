"""Data layer of the LiteEval benchmark suite: feature stores, loaders, synthetic data.

Run from the repository root: ``python -m datasets {validate,ingest,synth} ...``.
The format is documented in docs/feature-store.md.
"""

from datasets.bank import Batch, FeatureBank
from datasets.errors import IngestError, Problem, StoreError, StoreValidationError
from datasets.manifest import Manifest, SplitSpec, StreamSpec
from datasets.meter import ReadMeter
from datasets.sampling import AllFrames, ConsecutiveFrames, FrameSampler, UniformFrames
from datasets.store import FeatureStore

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
