"""The rules of a fair comparison: the held-out split, the one training budget, the one selection
rule (checkpoints and trials alike), the same tuning effort for every method, and where the
shipped presets were chosen."""
