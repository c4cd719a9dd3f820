"""Speech recognition pieces: the end-to-end model, CTC loss and decoding, the CLI verbs."""
