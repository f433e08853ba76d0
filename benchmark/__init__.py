"""The harness that trains and evaluates every method and writes the comparison table
(issue 3). Empty until the harness lands; the data layer lives in datasets/."""
