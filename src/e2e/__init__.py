"""e2e: train neural networks end to end, and test the claim against stepwise pipelines."""

from e2e.api import Predictor, load, train
from e2e.config import Config, TrainConfig
from e2e.errors import E2EError
from e2e.tasks import load_config

__version__ = "0.1.0"
__all__ = ["Config", "E2EError", "Predictor", "TrainConfig", "__version__", "load",
           "load_config", "train"]
