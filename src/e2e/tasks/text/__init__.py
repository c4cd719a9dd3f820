"""Translation and summarization from raw text.

Read top to bottom: tokenizer.py (byte-level BPE learned from the data), model.py (the
encoder-decoder Transformer), decode.py (greedy and beam search), metrics.py (BLEU, chrF,
ROUGE-L), task.py (the task), export.py (ONNX graphs), cli.py (`e2e translate`, `e2e summarize`).
"""
