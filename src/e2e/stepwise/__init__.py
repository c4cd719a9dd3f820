"""Stepwise counterparts of the end-to-end models: hand-made features, layer-wise training,
modular pipelines. Each runs on the same data splits as its end-to-end twin."""
