"""Sweeps (SPEC 9): one history folded under a grid of configurations, ranked by a metric.

``grid`` parses ``--grid KEY=V1,V2`` and builds the configurations, ``sharing``
groups them into folds that give the same trades, ``runner`` reads the input
once and folds each group once (over processes), ``table`` writes sweep.csv
and sweep_streams.csv.
"""
