"""Training: the Python API (api.py: ``train`` -> :class:`TrainResult`), the loop (loop.py: setup
-> fit -> finish), callbacks (callbacks.py), what each step sees (schedule.py), checkpoints and
Ctrl-C (checkpoint.py), the final model and evaluation (finish.py)."""

from .api import TrainResult, train
from .callbacks import Callback

__all__ = ["Callback", "TrainResult", "train"]
