"""Names that become one folder: a store's name, a results folder's ``--name``.

A name from a manifest or a command line is joined to a root (``results/<name>``); a name such
as ``../..``, ``/elsewhere`` or ``.`` would put the results, and the clean-up of a killed
writer's temporaries, outside that root or on top of it. ``name_problem`` says what is wrong
with a name that is not one plain path component, so each place that reads a name can refuse it
with its own one line.
"""

from __future__ import annotations

MAX_NAME_BYTES = 200


def name_problem(name: object) -> str:
    """Why ``name`` cannot be one folder under a root ("" when it can)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} names the root or its parent, not a folder of its own"
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = "".join(repr(c) for c in bad)
        return f"it contains {shown}; a name is one folder, with no separator or control character"
    if name.startswith((".", "-")):
        return "it starts with '.' or '-' (a hidden file or an option); start it with a letter or digit"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return ""
