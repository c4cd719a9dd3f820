"""Translation and summarization from raw text.

Read top to bottom: config.py (settings and recipe), tokenizer.py (byte-level BPE learned
from the data), model.py (the encoder-decoder Transformer with its copy head), decode.py
(greedy and beam search with a key/value cache), metrics.py (BLEU, chrF, ROUGE-L,
placeholders), task.py (the task), export.py (ONNX graphs), cli.py (`e2e translate`,
`e2e summarize`).
"""
