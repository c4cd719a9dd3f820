"""Text to text: BPE tokenizer, encoder-decoder Transformer, greedy and beam decoding."""
