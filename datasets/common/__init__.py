"""Utilities shared by the data layer and the benchmark harness.

Errors with their fixes (``errors``), atomic writes and checksums (``atomic``), the command
line frame (``cli``), progress bars (``progress``), the git commit (``gitinfo``) and torchrun
ranks (``distributed``).
"""
