"""The feature store format: its layout and manifest, reading, writing and checking it.

``layout`` names every file and version; ``manifest`` parses the JSON half into typed
records; ``reader`` opens a store (``FeatureStore``) and reads whole splits; ``writer`` builds
one atomically; ``checks`` holds the cheap header checks every loader runs; ``validate`` adds
the full scan of ``python -m datasets validate``. The format is documented in
docs/feature-store.md.
"""
