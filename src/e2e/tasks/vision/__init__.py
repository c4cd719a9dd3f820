"""Image classification from raw pixels: task.py (data, loss, metrics, predict) and model.py."""
