"""Frame samplers: positions, masks and jitter, on hand-computed cases."""

from __future__ import annotations

import torch

from datasets.loading.sampling import AllFrames, ConsecutiveFrames, UniformFrames

LENGTHS = torch.tensor([10, 3, 7])


def test_all_frames_pads_to_longest_and_masks():
    frames, mask = AllFrames().sample(LENGTHS, 10, train=False, generator=None)
    assert frames.shape == mask.shape == (3, 10)
    assert mask.sum(1).tolist() == [10, 3, 7]
    assert frames[0].tolist() == list(range(10))
    assert frames[1].tolist() == [0, 1, 2] + [2] * 7  # padding clamps into the video
    assert AllFrames(max_frames=4).sample(LENGTHS, 10, train=False, generator=None)[0].shape == (3, 4)


def test_uniform_eval_takes_segment_centres():
    frames, mask = UniformFrames(4).sample(torch.tensor([8, 10, 2]), 10, train=False, generator=None)
    assert mask.all()
    assert frames[0].tolist() == [1, 3, 5, 7]  # floor((j + 0.5) * 8 / 4)
    assert frames[1].tolist() == [1, 3, 6, 8]  # floor((j + 0.5) * 10 / 4) = 1.25, 3.75, 6.25, 8.75
    assert frames[2].tolist() == [0, 0, 1, 1]  # short videos repeat frames


def test_uniform_eval_is_deterministic_and_training_jitters_within_segments():
    sampler = UniformFrames(5)
    lengths = torch.full((200,), 50)
    a, _ = sampler.sample(lengths, 50, train=False, generator=None)
    b, _ = sampler.sample(lengths, 50, train=False, generator=None)
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(0)
    jittered, _ = sampler.sample(lengths, 50, train=True, generator=g)
    segment = torch.arange(5) * 10
    assert ((jittered >= segment) & (jittered < segment + 10)).all()
    assert len(torch.unique(jittered[:, 0])) > 5  # really random within the first segment
    again, _ = sampler.sample(lengths, 50, train=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(jittered, again)


def test_consecutive_eval_starts_at_zero_and_masks_short_videos():
    frames, mask = ConsecutiveFrames(4).sample(LENGTHS, 10, train=False, generator=None)
    assert frames[0].tolist() == [0, 1, 2, 3]
    assert frames[1].tolist() == [0, 1, 2, 2] and mask[1].tolist() == [True, True, True, False]


def test_consecutive_training_start_stays_inside_the_video():
    lengths = torch.full((500,), 12)
    frames, mask = ConsecutiveFrames(5).sample(lengths, 12, train=True, generator=torch.Generator().manual_seed(1))
    assert mask.all()
    starts = frames[:, 0]
    assert starts.min() == 0 and starts.max() == 7  # every start in [0, 12 - 5] is reachable
    assert (frames - starts[:, None] == torch.arange(5)).all()
