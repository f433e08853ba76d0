"""Serving a store to methods: loaded once onto the device, read only through a meter.

``bank`` loads a split onto the device and serves batches; ``sampling`` decides which
frames each method sees; ``access`` is the metered accessor, the only way a method reads a
feature; ``meter`` records every read, from which costs are computed; ``device`` chooses the
device and checks that a split fits; ``guard`` keeps a selection run's process from loading
any split but the training split. Documented in docs/loaders.md.
"""
