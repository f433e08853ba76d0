"""The feature bank: batches, padding, metering, and the streaming path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.loading.bank import FeatureBank, LabelsHiddenError
from datasets.loading.sampling import AllFrames, ConsecutiveFrames, UniformFrames
from tests.helpers import DIMS, decode, write_store

LENGTHS = [3, 5, 2, 4, 6, 1, 7]
SPLITS = ["train"] * 5 + ["test"] * 2


@pytest.fixture
def store(tmp_path):
    write_store(tmp_path / "s", lengths=LENGTHS, splits=SPLITS)
    return tmp_path / "s"


@pytest.fixture
def bank(store):
    return FeatureBank(store, "train", device="cpu", show_progress=False)


def test_bank_holds_the_split_in_float16(bank):
    assert bank.num_videos == 5 and bank.video_ids == ["v0", "v1", "v2", "v3", "v4"]
    assert bank.resident and bank.features["fine"].dtype == torch.float16
    assert bank.lengths.tolist() == LENGTHS[:5]
    assert bank.offsets.tolist() == [0, 3, 8, 10, 14, 20]
    assert bank.labels.shape == (5, 3) and bank.labels.dtype == torch.float32


def test_padded_batch_matches_the_stored_frames(bank):
    batch = next(bank.batches(4, AllFrames(), bucket=False))
    fine = batch.read("fine")
    assert fine.shape == (4, 5, DIMS["fine"]) and fine.dtype == torch.float32
    assert batch.mask.sum(1).tolist() == [3, 5, 2, 4]
    video, frame = decode(fine)
    for b in range(4):
        n = LENGTHS[b]
        assert (video[b, :n] == b).all() and frame[b, :n].tolist() == list(range(n))
        assert (fine[b, n:] == 0).all()  # padding is zero
    with pytest.raises(LabelsHiddenError, match="labels are for the loss"):
        batch.labels  # an evaluation batch carries no labels
    labelled = next(bank.batches(4, AllFrames(), bucket=False, labels=True))
    assert torch.equal(labelled.labels, bank.labels[:4])
    assert batch.video_ids == ["v0", "v1", "v2", "v3"]


def test_every_video_is_served_once_per_epoch(bank):
    seen = [vid for b in bank.batches(2, UniformFrames(3), train=True, seed=0) for vid in b.video_ids]
    assert sorted(seen) == bank.video_ids and seen != bank.video_ids  # shuffled
    again = [vid for b in bank.batches(2, UniformFrames(3), train=True, seed=0) for vid in b.video_ids]
    assert seen == again


def test_training_needs_a_seed(bank):
    with pytest.raises(ValueError, match="seed"):
        next(bank.batches(2, UniformFrames(3), train=True))


def test_meter_records_exactly_what_was_read(bank):
    meter = bank.new_meter()
    batch = next(bank.batches(5, AllFrames(), meter=meter, bucket=False))
    assert meter.frames_read("fine").tolist() == [0] * 5  # sampling alone reads nothing
    where = torch.zeros_like(batch.mask)
    where[0, 1] = where[1, 4] = where[4, 0] = where[4, 5] = True
    where[2, 3] = True  # beyond v2's 2 frames: masked out, not read
    out = batch.read("fine", where=where)
    assert meter.frames_read("fine").tolist() == [1, 1, 0, 0, 2]
    assert meter.frames_read("coarse").tolist() == [0] * 5
    assert (out[~where] == 0).all()
    assert meter.frames_of("fine", 4).tolist() == [0, 5]
    batch.read("fine", where=where)  # reading again costs nothing more
    assert meter.frames_read("fine").tolist() == [1, 1, 0, 0, 2]
    batch.read("coarse")
    assert meter.frames_read("coarse").tolist() == LENGTHS[:5]


def test_read_step_reads_only_selected_rows(bank):
    meter = bank.new_meter()
    batch = next(bank.batches(5, AllFrames(), meter=meter, bucket=False))
    rows = torch.tensor([1, 4])
    step = batch.features.read_step("fine", 2, rows)
    assert step.shape == (2, DIMS["fine"])
    video, frame = decode(step)
    assert video.tolist() == [1, 4] and frame.tolist() == [2, 2]
    assert meter.frames_read("fine").tolist() == [0, 1, 0, 0, 1]
    # Step 4 does not exist for v2 (2 frames): zeros, not metered.
    beyond = batch.features.read_step("fine", 4, torch.tensor([2]))
    assert (beyond == 0).all() and meter.frames_read("fine")[2] == 0


def test_read_frames_jumps_anywhere_inside_the_video(bank):
    meter = bank.new_meter()
    batch = next(bank.batches(5, UniformFrames(1), meter=meter))
    got = batch.features.read_frames("fine", torch.tensor([[0, 2], [4, 4]]), rows=torch.tensor([0, 4]))
    video, frame = decode(got)
    assert video.tolist() == [[0, 0], [4, 4]] and frame.tolist() == [[0, 2], [4, 4]]
    assert meter.frames_read("fine").tolist() == [2, 0, 0, 0, 1]
    with pytest.raises(IndexError, match="read frame 5 of video 'v1', which has 5 frames"):
        batch.features.read_frames("fine", torch.tensor([5]), rows=torch.tensor([1]))


def test_unread_frames_cannot_leak_into_results(bank):
    """Poison every frame a method does not read: its outputs must not change."""
    meter = bank.new_meter()
    batch = next(bank.batches(5, AllFrames(), meter=meter, bucket=False))
    where = batch.mask & (torch.arange(batch.mask.shape[1]) % 2 == 0)
    clean = batch.read("fine", where=where)
    read = meter.read_mask("fine")
    bank.features["fine"][:-1][~read] = float("nan")  # the last row is the shared zero row
    poisoned = next(bank.batches(5, AllFrames(), bucket=False)).read("fine", where=where)
    assert torch.isfinite(poisoned).all() and torch.equal(clean, poisoned)


def test_uniform_and_consecutive_grids(bank):
    batch = next(bank.batches(5, UniformFrames(4)))
    _, frame = decode(batch.read("coarse"))
    assert frame[1].tolist() == [0, 1, 3, 4]  # 5 frames, centres of 4 segments
    batch = next(bank.batches(5, ConsecutiveFrames(4)))
    _, frame = decode(batch.read("coarse"))
    assert frame[4].tolist() == [0, 1, 2, 3] and batch.mask[2].tolist() == [True, True, False, False]


def test_reduced_precision_reads(bank):
    batch = next(bank.batches(2, AllFrames(), dtype=torch.bfloat16))
    assert batch.read("fine").dtype == torch.bfloat16


def test_streaming_path_serves_identical_batches(store, bank):
    """A split that does not fit the budget is streamed; batches must not change."""
    streamed = FeatureBank(store, "train", device="cpu", memory_budget_bytes=16, show_progress=False)
    assert not streamed.resident and streamed.features == {}
    meters = [bank.new_meter(), streamed.new_meter()]
    runs = [
        list(b.batches(2, UniformFrames(3), train=True, seed=7, meter=m))
        for b, m in zip([bank, streamed], meters)
    ]
    assert len(runs[0]) == len(runs[1]) == 3
    for a, b in zip(*runs):
        assert a.video_ids == b.video_ids
        assert torch.equal(a.frames, b.frames)
        assert torch.equal(a.read("fine"), b.read("fine"))
        rows = torch.tensor([0])
        assert torch.equal(a.features.read_frames("coarse", torch.tensor([0]), rows),
                           b.features.read_frames("coarse", torch.tensor([0]), rows))
    for stream in ("coarse", "fine"):
        assert torch.equal(meters[0].counts[stream], meters[1].counts[stream])


def test_subset_of_streams_and_rows(store):
    bank = FeatureBank(store, "test", device="cpu", streams=["fine"], show_progress=False)
    assert bank.streams == ["fine"] and bank.num_videos == 2
    batch = next(bank.batches(8, AllFrames(), rows=[1]))
    assert batch.video_ids == ["v6"]
    with pytest.raises(KeyError, match="not loaded"):
        batch.read("coarse")


def test_unknown_split_and_device_are_clear_errors(store):
    from datasets.common.errors import StoreError

    with pytest.raises(StoreError, match="no split 'val'"):
        FeatureBank(store, "val", device="cpu", show_progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            FeatureBank(store, "train", device="cuda", show_progress=False)


def test_bank_on_synthetic_store(tiny_store):
    bank = FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    meter = bank.new_meter()
    total = 0
    for batch in bank.batches(16, UniformFrames(5), meter=meter):
        x = batch.read("fine")
        assert torch.isfinite(x).all()
        total += batch.size
    assert total == bank.num_videos
    expected = np.minimum(bank.lengths_host, 5)  # short videos repeat frames, paid once
    assert meter.frames_read("fine").numpy().tolist() == expected.tolist()


def test_variable_length_batches_are_bucketed_by_length(tiny_store):
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    lengths = bank.lengths_host

    def padding(batches):
        return sum(b.mask.numel() - int(b.mask.sum()) for b in batches)

    bucketed = list(bank.batches(8, AllFrames(), train=True, seed=0))
    plain = list(bank.batches(8, AllFrames(), train=True, seed=0, bucket=False))
    assert padding(bucketed) < padding(plain) / 2
    seen = sorted(i for b in bucketed for i in b.index.tolist())
    assert seen == list(range(bank.num_videos))  # still every video once
    assert [b.video_ids for b in bucketed] == [b.video_ids for b in bank.batches(8, AllFrames(), train=True, seed=0)]
    # Evaluation passes are sorted by length; fixed-width samplers are not bucketed.
    evaluation = [int(lengths[i]) for b in bank.batches(8, AllFrames()) for i in b.index.tolist()]
    assert evaluation == sorted(evaluation)
    assert [i for b in bank.batches(8, UniformFrames(3)) for i in b.index.tolist()] == list(range(bank.num_videos))
