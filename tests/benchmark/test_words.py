"""One rule turns a paired interval into words (benchmark/presentation/words.py)."""

from __future__ import annotations

import pytest

from benchmark.presentation import words


@pytest.mark.parametrize(("low", "high", "margin", "said"), [
    (0.5, 2.0, None, words.MORE),
    (-2.0, -0.1, None, words.LESS),
    (-0.25, 0.87, None, words.UNDETECTED),  # README once called this "level with"
    (-0.25, 0.87, 1.0, words.EQUIVALENT),
    (-2.19, 0.99, 1.0, words.UNDETECTED),  # wider than the margin: nothing detected, nothing shown
    (0.2, 0.6, 1.0, words.EQUIVALENT),  # inside the margin: equivalent, though above zero
    (0.0, 0.0, None, words.UNDETECTED),
])
def test_the_interval_alone_chooses_the_words(low, high, margin, said):
    assert words.verdict(low, high, margin) == said


def test_sentences_say_the_verdict_with_its_numbers():
    assert words.sentence("LiteEval", "Uniform", 6.24, 4.98, 7.49) == \
        "LiteEval is more accurate than Uniform (+6.24 [+4.98, +7.49] mAP)"
    assert words.sentence("SCSampler", "LiteEval", 0.32, -0.25, 0.87) == \
        "SCSampler against LiteEval: no difference detected (+0.32 [-0.25, +0.87] mAP)"
    assert words.sentence("A", "B", 0.1, -0.3, 0.5, margin=1.0) == \
        "A is equivalent to B within ±1 mAP (+0.10 [-0.30, +0.50] mAP)"
    with pytest.raises(ValueError):
        words.verdict(1.0, -1.0)
