"""From raw videos to a feature store: decoding, backbones, sharded extraction, merging.

``decode`` reads frames at a fixed rate with PyAV; ``backbones`` names the torchvision models
behind the streams and counts their per-frame cost (the one place that does); ``features``
loads their weights, preprocesses frames and runs them; ``pipeline`` is ``python -m datasets
extract``; ``shards`` keeps each process's finished videos safe across interruptions;
``merge`` joins the shards into one validated store.
"""
