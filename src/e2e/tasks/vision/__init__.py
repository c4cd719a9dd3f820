"""Image classification from raw pixels.

Read top to bottom: config.py (the data and model settings and the training recipe),
model.py (the residual CNN that normalizes raw uint8 pixels itself), task.py (data splits,
augmentation, the loss, metrics, the report, predict and export), augment.py (the changes a
camera and a scene bring, drawn per image on the batch), corruptions.py (the same changes as
a fixed benchmark: `e2e robustness RUN`), user_images.py (`e2e evaluate RUN --data FOLDER`).
"""
