"""The settings every built-in method starts from on a store nobody has chosen settings on.

A store's own selection (``python -m benchmark run`` chooses it first: benchmark/select_first.py)
fits that store. What it starts from (its first trial), and what a try-out store runs, should be
what holds up on stores of other shapes. So these were chosen across stores: the same four
candidates of each method (the class defaults and three draws of its search space: optimiser and
dropout) tuned on each store's validation part, one rule over all of them (the cheapest within the
noise on every store, else the best worst case: benchmark/commands/transfer.py), on stores of
three shapes (results/shipped-defaults/transfer.md: every method's validation mAP on each).

They apply on top of the class defaults where nothing else gives a method's settings
(benchmark/plans.py): a store's settings record, ``--config`` or a preset for the dataset holds
choices made against the class defaults and replaces them, and ``--no-presets`` leaves them out.
The numbers are written once, here; a test holds them to the record that chose them (``ORIGIN``).

The design settings (a reading of the authors' code, an architecture, where a policy gradient or
dropout goes: ``DESIGN``) are chosen the same way (``DESIGN_ORIGIN``): the default store's design
studies, the same studies on the other two stores (each on top of that store's tune's choices),
one rule over the three. A new store's selection searches optimiser and dropout from them, so its
table's methods run the readings that hold up across stores rather than their class defaults
(SCSampler's and OCSampler's best candidate in their class-default official reading was 6.8 to
17.5 validation points behind their best in the suite's on each of the three:
results/shipped-design/transfer.md). LiteEval's dropout is both kinds: its design study's choice
comes last, as on the default store. The class defaults stay the authors' readings (faithful
first); ``--no-presets`` runs them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from methods.base import Origin
from methods.presets import OPTIMISER_AND_DROPOUT

#: Where they were chosen: results/<record>/tuned.json holds the same values.
ORIGIN = Origin("shipped-defaults", OPTIMISER_AND_DROPOUT, scored_on="validation", date="2026-12-06")

#: Method -> its table of a config file (hyper-parameters; training settings under "train").
SETTINGS: dict[str, dict[str, Any]] = {
    "uniform": {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "lstm": {"dropout": 0.0, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "frameglimpse": {"dropout": 0.2, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "fastforward": {"dropout": 0.2, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "liteeval_rl": {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "liteeval": {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "adaframe": {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0}},
    "scsampler": {"dropout": 0.0, "train": {"lr": 0.0003, "weight_decay": 0.0001}},
    "arnet": {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0}},
    "frameexit": {"dropout": 0.0, "train": {"lr": 0.001, "weight_decay": 0.0001}},
    "ocsampler": {"dropout": 0.2, "train": {"lr": 0.003, "weight_decay": 0.0001}},
}


#: Method -> its design settings (the methods that have some).
DESIGN: dict[str, dict[str, Any]] = {
    "liteeval_rl": {"entropy_weight": 0.0, "policy_through": "network"},
    "liteeval": {"dropout": 0.0, "dropout_at": "classifier"},
    "scsampler": {"reading": "suite"},
    "arnet": {"reading": "official"},
    "frameexit": {"architecture": "official"},
    "ocsampler": {"frames": 10, "reading": "suite"},
}
#: Where the design settings were chosen: results/<record>/tuned.json holds the same values.
DESIGN_ORIGIN = Origin("shipped-design", tuple(dict.fromkeys(key for table in DESIGN.values() for key in table)),
                       scored_on="validation", date="2026-12-07")


def settings(method: str) -> dict[str, Any]:
    """The shipped defaults of ``method`` (a registry name), its design settings last; none for a plug-in."""
    return {**SETTINGS.get(method, {}), **DESIGN.get(method, {})}


def origins(method: str) -> tuple[Origin, ...]:
    """Where each of ``method``'s shipped defaults was chosen, with the keys of each."""
    design = (replace(DESIGN_ORIGIN, keys=tuple(DESIGN[method])),) if method in DESIGN else ()
    return ((ORIGIN,) if method in SETTINGS else ()) + design
