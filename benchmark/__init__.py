"""The harness: trains and evaluates methods on shared feature banks, counts their costs,
scores them, and writes the comparison table (``python -m benchmark run``), LiteEval's
ablations (``python -m benchmark ablate``) and the list of methods (``... methods``)."""
