"""Training: the loop (loop.py: setup -> fit -> finish), what each step sees (schedule.py),
checkpoints and Ctrl-C (checkpoint.py), the final model and evaluation (finish.py)."""

from .loop import train

__all__ = ["train"]
