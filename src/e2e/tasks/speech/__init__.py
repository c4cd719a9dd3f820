"""Speech recognition from the raw waveform.

Read top to bottom: config.py (settings and recipe), synth.py (the espeak-ng / flite corpus),
mix.py (real human voices + synthetic ones, split by speaker), augment.py (waveform
augmentation), model.py (learned front end + conformer), ctc.py (the loss, greedy and beam
decoding, the word bigram LM of the stepwise variant), task.py (the task that ties them to the
engine), cli.py (`e2e transcribe`, `e2e data speech-synth`, `e2e data speech-real`).
"""
