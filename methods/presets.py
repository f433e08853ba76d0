"""Where the methods' shipped presets were chosen: the committed tuning records, as data.

Each method's ``default`` preset (methods/<method>.py) names the ``Origin`` of its settings,
one of these. ``python -m benchmark methods --verbose`` and the results page print them, and
tests/benchmark/test_selection.py checks each against its record: the values its tuned.json chose, and the
split its trials' records say they were scored on. A tune that scored on the test split (the
tunes run with worker processes before issue 24's fix) is said so here, and every table row
resting on it says so in its caption (benchmark/preset_origin.py), until a tune on
validation replaces it.
"""

from __future__ import annotations

from methods.base import Origin

#: What ``python -m benchmark tune`` searches for the built-in methods (methods/base.py STANDARD_SEARCH_SPACE).
OPTIMISER_AND_DROPOUT = ("dropout", "train.lr", "train.weight_decay")

#: Table 1's optimiser and dropout: `python -m benchmark reproduce`'s tune (seed 0; with each method's
#: studies, 10 selection trainings each: benchmark/reproduce.py ``evened_trials``).
TABLE1_TUNE = Origin("default-tune", OPTIMISER_AND_DROPOUT, scored_on="validation", date="2026-12-07")
#: The later methods, in the same tune.
EXTENDED_TUNE = Origin("default-tune", OPTIMISER_AND_DROPOUT, scored_on="validation", date="2026-12-07")
#: AR-Net, in the same tune.
ARNET_TUNE = Origin("default-tune", OPTIMISER_AND_DROPOUT, scored_on="validation", date="2026-12-07")
#: LiteEval-RL's policy gradient: where it flows and its entropy bonus (issue 26), 6 trials on validation.
RL_TUNE = Origin("default-liteeval-rl-tune", ("policy_through", "entropy_weight"), scored_on="validation",
                 date="2026-12-02")
#: The same question on the `small` store (short videos, 48 validation videos), where it answered otherwise.
SMALL_RL_TUNE = Origin("small-liteeval-rl-tune", ("policy_through", "entropy_weight"), scored_on="validation",
                       date="2026-12-02")
#: Where LiteEval's dropout sits and how strong it is (issue 26: the official code has none), 4 trials on validation.
DROPOUT_TUNE = Origin("default-liteeval-dropout-tune", ("dropout", "dropout_at"), scored_on="validation",
                      date="2026-12-07")
#: The later methods' readings of their authors' code against the suite's first ones (issue 26), on validation.
OCSAMPLER_READINGS = Origin("default-ocsampler-readings", ("reading", "frames"), scored_on="validation",
                            date="2026-12-07")
SCSAMPLER_READINGS = Origin("default-scsampler-readings", ("reading",), scored_on="validation", date="2026-12-02")
FRAMEEXIT_ARCHITECTURE = Origin("default-frameexit-architectures", ("architecture",), scored_on="validation",
                                date="2026-12-07")
ARNET_READINGS = Origin("default-arnet-readings", ("reading",), scored_on="validation", date="2026-12-07")

# Retired on 2026-12-07 (benchmark/commands/studies.py says why): LiteEval-RL's usage weight, reward
# baseline and dropout studies. No preset cites them and their folders are in git history only. The
# names stay because methods/liteeval.py imports them: an import is code, so removing it would change
# that file's fingerprint (benchmark/code_fingerprint.py) and make every LiteEval pair stale.
RL_LAM_TUNE = Origin("default-liteeval-rl-lam-tune", ("lam",), scored_on="validation", date="2026-12-02")
RL_BASELINE_TUNE = Origin("default-liteeval-rl-baseline-tune", ("reward_baseline",), scored_on="validation",
                          date="2026-12-02")
RL_DROPOUT_TUNE = Origin("default-liteeval-rl-dropout-tune", ("dropout",), scored_on="validation", date="2026-12-02")
