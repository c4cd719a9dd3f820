"""Speech recognition from the raw waveform.

Read top to bottom: synth.py (the espeak-ng corpus), augment.py (waveform augmentation),
model.py (learned front end + conformer), ctc.py (the loss and decoding), task.py (the
task that ties them to the engine), cli.py (`e2e transcribe`, `e2e data speech-synth`).
"""
