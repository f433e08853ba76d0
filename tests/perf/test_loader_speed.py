"""Loader benchmark: the feature bank against the usual per-video .npy DataLoader.

Not part of the default test run (marker ``perf``). Run it with::

    python -m pytest -m perf tests/perf --benchmark-columns=min,mean,max,rounds

Both loaders produce the same thing for one epoch of the `default` preset's train split:
batches of 64 videos with padded float32 coarse and fine features of 25 uniformly sampled
frames (what Uniform and LSTM consume) or of all frames (what LiteEval consumes), plus
labels, on the bank's device. The DataLoader follows the pattern of research code: one
``np.load`` per video and stream, frames picked in ``__getitem__``, a padding collate, and
a copy to the device. The .npy files hold the store's values exactly (float32, as
extractors save them). ``LITEEVAL_BENCH_STORE`` points at an existing store to skip
generating one; ``LITEEVAL_BENCH_DEVICE`` picks the device (default: auto).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from datasets.loading.bank import FeatureBank
from datasets.loading.device import resolve_device
from datasets.loading.sampling import AllFrames, FrameSampler, UniformFrames
from datasets.store.reader import FeatureStore

pytestmark = pytest.mark.perf
BATCH = 64
ROUNDS = 5
STREAMS = ("coarse", "fine")
SAMPLERS = {"uniform25": UniformFrames(25), "all_frames": AllFrames()}


@pytest.fixture(scope="module")
def device() -> torch.device:
    return resolve_device(os.environ.get("LITEEVAL_BENCH_DEVICE", "auto"))


@pytest.fixture(scope="module")
def npy_dir(store_path, tmp_path_factory) -> Path:
    """The train split as one float32 <video_id>.npy per video and stream."""
    store = FeatureStore.open(store_path)
    rows = store.split_rows("train")
    root = tmp_path_factory.mktemp("npy")
    for stream in STREAMS:
        (root / stream).mkdir()
        frames = np.empty((int(store.header.lengths[rows].sum()), store.manifest.streams[stream].dim), np.float16)
        store.read_frames(stream, rows, frames)
        start = 0
        for row in rows:
            n = int(store.header.lengths[row])
            np.save(root / stream / f"{store.header.video_ids[row]}.npy", frames[start : start + n].astype(np.float32))
            start += n
    return root


class NpyVideos(Dataset):
    """The usual research-code dataset: one np.load per video and stream."""

    def __init__(self, root: Path, ids: list[str], labels: np.ndarray, sampler: FrameSampler) -> None:
        self.root, self.ids, self.labels, self.sampler = root, ids, labels, sampler

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        arrays = [np.load(self.root / s / f"{self.ids[i]}.npy") for s in STREAMS]
        length = torch.tensor([arrays[0].shape[0]])
        frames, mask = self.sampler.sample(length, int(length), train=False, generator=None)
        picked = [torch.from_numpy(a)[frames[0]] for a in arrays]
        return picked, mask[0], torch.from_numpy(self.labels[i])


def pad_collate(items):
    steps = max(m.shape[0] for _, m, _ in items)
    out = []
    for s in range(len(STREAMS)):
        dim = items[0][0][s].shape[1]
        padded = torch.zeros(len(items), steps, dim)
        for b, (feats, mask, _) in enumerate(items):
            padded[b, : mask.shape[0]] = feats[s] * mask[:, None]
        out.append(padded)
    masks = torch.zeros(len(items), steps, dtype=torch.bool)
    for b, (_, mask, _) in enumerate(items):
        masks[b, : mask.shape[0]] = mask
    return out, masks, torch.stack([label for _, _, label in items]).float()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bank_epoch(bank: FeatureBank, sampler: FrameSampler) -> int:
    checksum = 0.0
    # bucket=False: the same batches (and padding) as the DataLoader, which is not bucketed.
    for batch in bank.batches(BATCH, sampler, bucket=False, labels=True):
        coarse, fine = batch.read("coarse"), batch.read("fine")
        checksum += float(fine[:, 0, 0].sum()) + float(coarse[:, 0, 0].sum()) + float(batch.labels[:, 0].sum())
    return checksum


def loader_epoch(loader: DataLoader, device: torch.device) -> float:
    checksum = 0.0
    for (coarse, fine), mask, labels in loader:
        coarse, fine = coarse.to(device), fine.to(device)
        labels, mask = labels.to(device), mask.to(device)
        checksum += float(fine[:, 0, 0].sum()) + float(coarse[:, 0, 0].sum()) + float(labels[:, 0].sum())
    return checksum


def timed(fn, device) -> tuple[float, float]:
    best, result = float("inf"), None
    for _ in range(ROUNDS):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, result


@pytest.mark.parametrize("sampling", sorted(SAMPLERS))
@pytest.mark.parametrize("workers", [0, 2])
def test_bank_vs_npy_dataloader(benchmark, store_path, npy_dir, device, sampling, workers):
    sampler = SAMPLERS[sampling]
    bank = FeatureBank(store_path, "train", device=device, show_progress=False)
    labels = bank.labels.cpu().numpy()
    dataset = NpyVideos(npy_dir, bank.video_ids, labels, sampler)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=False, num_workers=workers, collate_fn=pad_collate,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    loader_time, loader_sum = timed(lambda: loader_epoch(loader, device), device)
    bank_time = benchmark.pedantic(lambda: (bank_epoch(bank, sampler), sync(device)), rounds=ROUNDS, iterations=1)
    bank_best, bank_sum = timed(lambda: bank_epoch(bank, sampler), device)
    assert bank_sum == pytest.approx(loader_sum, rel=1e-4)  # both loaders served the same data
    ratio = loader_time / bank_best
    benchmark.extra_info.update(
        device=str(device), sampling=sampling, workers=workers, videos=bank.num_videos,
        bank_epoch_s=round(bank_best, 4), dataloader_epoch_s=round(loader_time, 4), speedup=round(ratio, 1),
    )
    print(f"\n[{device}, {sampling}, workers={workers}] bank {bank_best * 1e3:.1f} ms/epoch, "
          f"npy DataLoader {loader_time * 1e3:.1f} ms/epoch: {ratio:.1f}x")
    del bank_time
    assert ratio >= 10, f"the bank is only {ratio:.1f}x faster than the npy DataLoader"
