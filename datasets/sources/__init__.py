"""Ways to build a feature store from what a user has.

``annotations`` reads the datasets' annotation formats (FCVID, ActivityNet v1.3, CSV, JSON);
``ingest`` turns per-video ``.npy`` features plus annotations into a store; ``synthetic``
generates the embedded synthetic dataset. Extraction from raw videos lives in
``datasets.extraction``.
"""
