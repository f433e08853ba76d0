"""Accuracy-cost curves: each method at several operating points, compared at matched budgets."""
